"""Several training sources as one dataset the grouped batch sampler can draw from.

:class:`vqe.data.datamodule.VQEDataModule` trains on the frame-index rows and, optionally, on
an extra stream of generated pairs (e.g. :class:`vqe.data.photos.CleanPhotoPairs`). Both speak
the same small protocol — ``len``, ``[FrameKey]``, ``has_target(row)``, ``group_keys(by_size)``
and a ``transform`` with an ``output_size`` — and :class:`ConcatFrameSets` speaks it too, so the
loader code does not care how many sources there are.
"""

from __future__ import annotations

import bisect
from collections.abc import Hashable, Sequence
from typing import Any, Protocol

from torch.utils.data import Dataset

from vqe.data.sampler import FrameKey
from vqe.data.transforms import PairTransform


class FrameSource(Protocol):
    """What the datamodule's loader needs from a training dataset."""

    transform: PairTransform | None
    csv_path: object  # where the rows come from, named in error messages

    def __len__(self) -> int: ...

    def __getitem__(self, key: int | FrameKey) -> dict[str, Any]: ...

    def has_target(self, row: int) -> bool: ...

    def group_keys(self, by_size: bool) -> list[Hashable]: ...


class ConcatFrameSets(Dataset[dict[str, Any]]):
    """The rows of ``parts`` one after another; a :class:`FrameKey` keeps its epoch."""

    def __init__(self, parts: Sequence[FrameSource], csv_path: str) -> None:
        self.parts = [part for part in parts if len(part) > 0]
        if not self.parts:
            raise ValueError(f"{csv_path}: every training source is empty")
        self.csv_path = csv_path  # named in the loader's errors
        self._starts = [0]
        for part in self.parts:
            self._starts.append(self._starts[-1] + len(part))
        sizes = {getattr(part.transform, "output_size", None) for part in self.parts}
        # One shared output size: batches may mix sources. Otherwise the loader groups by size.
        self.transform = self.parts[0].transform if len(sizes) == 1 else None

    def __len__(self) -> int:
        return self._starts[-1]

    def _locate(self, row: int) -> tuple[FrameSource, int]:
        if not 0 <= row < len(self):
            raise IndexError(f"{self.csv_path}: row {row} out of range [0, {len(self)})")
        part = bisect.bisect_right(self._starts, row) - 1
        return self.parts[part], row - self._starts[part]

    def __getitem__(self, key: int | FrameKey) -> dict[str, Any]:
        row, epoch = (key.index, key.epoch) if isinstance(key, FrameKey) else (int(key), 0)
        part, local = self._locate(row)
        return part[FrameKey(local, epoch)]

    def has_target(self, row: int) -> bool:
        part, local = self._locate(row)
        return part.has_target(local)

    def group_keys(self, by_size: bool) -> list[Hashable]:
        return [key for part in self.parts for key in part.group_keys(by_size)]
