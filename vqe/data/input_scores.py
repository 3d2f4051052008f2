"""On-disk cache of the DOVER scores of input frames, beside the frame index (data-side: the
datamodule fills it and serves the scores in the batches, so no critic reads a frame file).

The DOVER score of an input frame never changes, so it is computed once and stored in
``<data_root>/.dover_cache/<cache key>.csv`` with the columns ``img_source`` (the frame path
relative to the data root, as in the frame index) and ``dover``. The cache key is the critic's
:attr:`~vqe.critics.dover.model.DoverCritic.cache_key` — the weights digest plus the clip
settings — so other weights or settings never read these scores.

Writes are atomic (a temporary file in the same folder, then ``os.replace``) and merge with
what is on disk at that moment, so concurrent processes lose nothing but repeated work.

Sharded precompute (:mod:`vqe.data.score_inputs`): shard k of n fills its own file
``<cache key>.shard-k-of-n.csv`` beside the cache (``shard=`` of :class:`DoverScoreCache`),
and :func:`merge_shard_caches` folds every shard file into ``<cache key>.csv``, the one file
training reads.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

import pandas as pd
import torch
from torch import Tensor
from tqdm.auto import tqdm

from vqe.schema import DOVER_CACHE_COLUMNS, DOVER_CACHE_DIR, DOVER_SCORE, IMG_SOURCE

log = logging.getLogger(__name__)

CACHE_DIR = DOVER_CACHE_DIR
SCORE_COLUMN = DOVER_SCORE
CACHE_COLUMNS = DOVER_CACHE_COLUMNS
#: Scores are written to disk at least this often while filling (frames), to survive crashes.
FLUSH_EVERY = 512

FrameLoader = Callable[[str], Tensor]


class FrameScorer(Protocol):
    """What the cache needs of a critic: a key and frames → scores (e.g. a DoverCritic)."""

    @property
    def cache_key(self) -> str: ...

    def __call__(self, frames: Tensor) -> Tensor: ...


class DoverCacheError(ValueError):
    """The cache file exists but cannot be used."""


def read_scores(path: Path) -> dict[str, float]:
    """The scores in one cache (or shard) file; empty when there is none."""
    if not path.is_file():
        return {}
    try:
        table = pd.read_csv(path, dtype={IMG_SOURCE: str, SCORE_COLUMN: float})
    except (ValueError, pd.errors.ParserError) as error:
        raise DoverCacheError(
            f"{path}: unreadable DOVER cache ({error}); delete the file and it will be "
            "recomputed"
        ) from error
    if tuple(table.columns) != CACHE_COLUMNS:
        raise DoverCacheError(
            f"{path}: columns {list(table.columns)}, expected {list(CACHE_COLUMNS)}; "
            "delete the file and it will be recomputed"
        )
    return dict(zip(table[IMG_SOURCE], table[SCORE_COLUMN].astype(float)))


def write_scores(path: Path, scores: dict[str, float]) -> dict[str, float]:
    """Merge ``scores`` with the file as it is now and replace it atomically; returns the
    merged scores (what the file now holds)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    merged = {**read_scores(path), **scores}
    table = pd.DataFrame({IMG_SOURCE: list(merged), SCORE_COLUMN: list(merged.values())})
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", newline="") as stream:
            table.to_csv(stream, index=False, float_format="%.9g")
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return merged


def cache_path(data_root: str | Path, key: str, shard: tuple[int, int] | None = None) -> Path:
    """``<data_root>/.dover_cache/<key>.csv``, or shard k of n's ``<key>.shard-k-of-n.csv``."""
    suffix = "" if shard is None else f".shard-{shard[0]}-of-{shard[1]}"
    return Path(data_root) / CACHE_DIR / f"{key}{suffix}.csv"


def shard_cache_paths(data_root: str | Path, key: str) -> list[Path]:
    """The shard files of ``key`` present under ``data_root``, sorted."""
    return sorted((Path(data_root) / CACHE_DIR).glob(f"{key}.shard-*-of-*.csv"))


def merge_shard_caches(data_root: str | Path, key: str, remove: bool = False) -> Path:
    """Fold every shard file of ``key`` into the cache file training reads; returns its path.

    Safe to repeat and to run while shards still write (each write is atomic; a later merge
    picks up what was added). ``remove`` deletes the shard files once merged.
    """
    shards = shard_cache_paths(data_root, key)
    scores: dict[str, float] = {}
    for shard in shards:
        scores.update(read_scores(shard))
    target = cache_path(data_root, key)
    write_scores(target, scores)
    if remove:
        for shard in shards:
            shard.unlink()
    log.info("DOVER cache %s: merged %d shard files (%d scores)", target, len(shards), len(scores))
    return target


class DoverScoreCache:
    """Maps frame paths (relative to ``data_root``) to the DOVER scores of ``scorer``.

    ``scorer`` is called on batches of up to ``batch_size`` same-sized frames, under
    ``torch.no_grad``; frames are moved to ``device`` (default: the scorer's parameters')
    and dtype first.
    """

    def __init__(
        self,
        data_root: str | Path,
        scorer: FrameScorer,
        batch_size: int = 4,
        progress: bool = True,
        shard: tuple[int, int] | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError(
                f"DoverScoreCache: batch_size must be ≥ 1, got {batch_size}"
            )
        key = scorer.cache_key
        if not key or "/" in key or os.sep in key:
            raise ValueError(
                f"DoverScoreCache: unusable cache key {key!r} from {scorer!r}"
            )
        self.data_root = Path(data_root)
        self.scorer = scorer
        self.batch_size = batch_size
        self.progress = progress
        # A shard fills its own file (merged later by merge_shard_caches).
        self.path = cache_path(self.data_root, key, shard)
        self._scores: dict[str, float] = self._read()

    # ----------------------------------------------------------------------- disk

    def _read(self) -> dict[str, float]:
        return read_scores(self.path)

    def _write(self) -> None:
        """Merge with the file as it is now, then replace it atomically."""
        self._scores = {**self._scores, **write_scores(self.path, self._scores)}

    # ----------------------------------------------------------------------- keys

    def _key(self, path: str | Path) -> str:
        """The index's relative POSIX path; absolute paths under ``data_root`` are relativised."""
        candidate = Path(path)
        if candidate.is_absolute():
            try:
                candidate = candidate.relative_to(self.data_root)
            except ValueError as error:
                raise ValueError(
                    f"DoverScoreCache: {path} is not under the data root {self.data_root}; "
                    "give frame paths relative to the data root, as in the frame index"
                ) from error
        return candidate.as_posix()

    def __contains__(self, path: str | Path) -> bool:
        return self._key(path) in self._scores

    def __len__(self) -> int:
        return len(self._scores)

    # ----------------------------------------------------------------------- scoring

    def _device_and_dtype(self) -> tuple[torch.device, torch.dtype]:
        parameters = getattr(self.scorer, "parameters", None)
        reference = next(parameters(), None) if callable(parameters) else None
        if reference is None:
            return torch.device("cpu"), torch.float32
        return reference.device, reference.dtype

    def _score_batch(self, keys: list[str], frames: list[Tensor]) -> None:
        device, dtype = self._device_and_dtype()
        batch = torch.stack(frames).to(device=device, dtype=dtype)
        with torch.no_grad():
            scores = self.scorer(batch).detach().float().cpu()
        if scores.shape != (len(keys),):
            raise ValueError(
                f"DoverScoreCache: the scorer returned shape {tuple(scores.shape)} for "
                f"{len(keys)} frames; expected one score per frame"
            )
        self._scores.update(zip(keys, scores.tolist()))

    def _fill(self, missing: list[str], frames_loader: FrameLoader) -> None:
        pending_keys: list[str] = []
        pending_frames: list[Tensor] = []
        unflushed = 0
        bar = tqdm(
            missing,
            desc=f"DOVER scores → {self.path.name}",
            unit="frame",
            disable=not self.progress,
        )
        for key in bar:
            frame = frames_loader(key)
            if not isinstance(frame, Tensor) or frame.ndim != 3 or frame.shape[0] != 3:
                shape = (
                    tuple(frame.shape)
                    if isinstance(frame, Tensor)
                    else type(frame).__name__
                )
                raise ValueError(
                    f"DoverScoreCache: the frame loader returned {shape} for {key}; it must "
                    "return one 3×H×W RGB float frame in [0, 1]"
                )
            if pending_frames and frame.shape != pending_frames[0].shape:
                self._score_batch(
                    pending_keys, pending_frames
                )  # sizes differ: close the batch
                unflushed += len(pending_keys)
                pending_keys, pending_frames = [], []
            pending_keys.append(key)
            pending_frames.append(frame)
            if len(pending_frames) == self.batch_size:
                self._score_batch(pending_keys, pending_frames)
                unflushed += len(pending_keys)
                pending_keys, pending_frames = [], []
            if unflushed >= FLUSH_EVERY:
                self._write()
                unflushed = 0
        if pending_frames:
            self._score_batch(pending_keys, pending_frames)
        self._write()

    def get_or_compute(
        self, paths: Sequence[str | Path], frames_loader: FrameLoader
    ) -> Tensor:
        """DOVER scores of ``paths`` (float32 tensor, same order), computing only missing ones.

        ``frames_loader(relative_path)`` returns that frame as a 3×H×W RGB float tensor in
        [0, 1]; it is called once per missing frame, never for cached ones.
        """
        keys = [self._key(path) for path in paths]
        missing = list(dict.fromkeys(key for key in keys if key not in self._scores))
        if missing:
            log.info("DOVER cache %s: scoring %d new frames", self.path, len(missing))
            self._fill(missing, frames_loader)
        return torch.tensor([self._scores[key] for key in keys], dtype=torch.float32)


__all__ = [
    "CACHE_DIR",
    "cache_path",
    "merge_shard_caches",
    "read_scores",
    "shard_cache_paths",
    "write_scores",
    "SCORE_COLUMN",
    "DoverCacheError",
    "DoverScoreCache",
    "FrameScorer",
]
