"""Batch sampling: one kind of row per batch, a seeded order per epoch, an even split over ranks.

:class:`GroupedBatchSampler` cuts the rows into batches whose rows share a group key (the
datamodule uses ``(subset, has_target)``, plus ``(h, w)`` when frames are not cropped to one size),
so a batch never mixes supervised and unsupervised rows and always stacks. Its row order comes
from :class:`EpochPermutation`, a seeded permutation that changes with :meth:`set_epoch`.

**Lightning.** Lightning calls ``set_epoch`` on ``dataloader.sampler`` and on
``dataloader.batch_sampler.sampler`` before every epoch — here that is the
:class:`EpochPermutation` held as ``GroupedBatchSampler.sampler``, so the order changes per epoch
without any extra hook. Lightning must not inject its own ``DistributedSampler``: this sampler
splits batches over ranks itself, so the trainer runs with ``use_distributed_sampler=False``
(:class:`vqe.data.datamodule.VQEDataModule` refuses to run distributed otherwise).

**Epoch in the worker processes.** Batches hold :class:`FrameKey` (row index, epoch) instead of
bare indices. The batch sampler runs in the main process, so the epoch reaches persistent
DataLoader workers with every batch, and the dataset can seed per-item randomness from
(seed, epoch, index) — a ``set_epoch`` on the dataset would never reach their copies.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterator, Sequence
from typing import NamedTuple

import numpy as np
import torch.distributed as dist
from torch.utils.data import Sampler

#: Salt that keeps the batch-order stream apart from the row-permutation stream of one epoch.
_BATCH_ORDER_STREAM = 1


class FrameKey(NamedTuple):
    """What a batch holds for each item: the dataset row and the epoch it is drawn in."""

    index: int
    epoch: int


class EpochPermutation(Sampler[int]):
    """Every row index once: a permutation seeded by (seed, epoch), or in order without shuffle."""

    def __init__(self, num_rows: int, shuffle: bool = True, seed: int = 0) -> None:
        if num_rows < 0:
            raise ValueError(f"EpochPermutation: num_rows must be >= 0, got {num_rows}")
        if seed < 0:
            raise ValueError(f"EpochPermutation: seed must be >= 0, got {seed}")
        self.num_rows = num_rows
        self.shuffle = shuffle
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        if epoch < 0:
            raise ValueError(f"set_epoch: epoch must be >= 0, got {epoch}")
        self.epoch = epoch

    def order(self) -> np.ndarray:
        """The row indices of the current epoch, as an int64 array."""
        if not self.shuffle:
            return np.arange(self.num_rows, dtype=np.int64)
        return np.random.default_rng([self.seed, self.epoch]).permutation(self.num_rows)

    def __iter__(self) -> Iterator[int]:
        return iter(self.order().tolist())

    def __len__(self) -> int:
        return self.num_rows


def _distributed_defaults(num_replicas: int | None, rank: int | None) -> tuple[int, int]:
    """Fill in world size and rank from torch.distributed when it is initialised, else 1 and 0."""
    running = dist.is_available() and dist.is_initialized()
    if num_replicas is None:
        num_replicas = dist.get_world_size() if running else 1
    if rank is None:
        rank = dist.get_rank() if running else 0
    if num_replicas < 1:
        raise ValueError(f"GroupedBatchSampler: num_replicas must be >= 1, got {num_replicas}")
    if not 0 <= rank < num_replicas:
        raise ValueError(f"GroupedBatchSampler: rank must be in [0, {num_replicas}), got {rank}")
    return num_replicas, rank


class GroupedBatchSampler(Sampler[list[FrameKey]]):
    """Batches of rows that share a group key, shuffled per epoch and split evenly over ranks.

    Each epoch: take the rows in :class:`EpochPermutation` order, cut every group into batches of
    ``batch_size`` (the last batch of a group may be short unless ``drop_last``), then shuffle the
    batch order (or, without shuffle, keep groups in order of first appearance and rows in index
    order — what evaluation wants). Rank ``r`` of ``w`` takes batches ``r, r + w, …``.

    So that every rank runs the same number of steps (collectives in DDP would hang otherwise),
    the batch count is made a multiple of the world size: with ``drop_last`` the last
    ``count % w`` batches are dropped along with short batches; without it the first batches of
    the epoch are repeated to fill up (a few rows are then seen twice in that epoch, as with
    torch's ``DistributedSampler``). Without padding or dropping, ranks get disjoint batches.
    """

    def __init__(
        self,
        sampler: EpochPermutation,
        group_keys: Sequence[Hashable],
        batch_size: int,
        drop_last: bool = False,
        num_replicas: int | None = None,
        rank: int | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"GroupedBatchSampler: batch_size must be >= 1, got {batch_size}")
        if len(group_keys) != sampler.num_rows:
            raise ValueError(
                f"GroupedBatchSampler: {len(group_keys)} group keys for {sampler.num_rows} rows; "
                "pass one key per dataset row"
            )
        self.sampler = sampler  # Lightning calls sampler.set_epoch through this attribute
        self.batch_size = batch_size
        self.drop_last = drop_last
        self.num_replicas, self.rank = _distributed_defaults(num_replicas, rank)
        # Group codes in order of first appearance, so the unshuffled order follows the index.
        codes: dict[Hashable, int] = {}
        self._row_groups = np.array(
            [codes.setdefault(key, len(codes)) for key in group_keys], dtype=np.int64
        )
        self._group_sizes = np.bincount(self._row_groups, minlength=len(codes)).tolist()

    def set_epoch(self, epoch: int) -> None:
        self.sampler.set_epoch(epoch)

    @property
    def epoch(self) -> int:
        return self.sampler.epoch

    def _batches_per_group(self, size: int) -> int:
        return size // self.batch_size if self.drop_last else math.ceil(size / self.batch_size)

    def _total_batches(self) -> int:
        """Batch count of one epoch over all ranks, after dropping or padding."""
        count = sum(self._batches_per_group(size) for size in self._group_sizes)
        if self.drop_last:
            return count - count % self.num_replicas
        return math.ceil(count / self.num_replicas) * self.num_replicas if count else 0

    def _epoch_batches(self) -> list[np.ndarray]:
        """All batches of the current epoch (every rank's), before the split over ranks."""
        order = self.sampler.order()
        batches: list[np.ndarray] = []
        for group in range(len(self._group_sizes)):
            rows = order[self._row_groups[order] == group]
            count = self._batches_per_group(len(rows))
            starts = range(0, count * self.batch_size, self.batch_size)
            batches.extend(rows[start : start + self.batch_size] for start in starts)
        if self.sampler.shuffle:
            seed = [self.sampler.seed, self.sampler.epoch, _BATCH_ORDER_STREAM]
            rng = np.random.default_rng(seed)
            batches = [batches[i] for i in rng.permutation(len(batches))]
        total = self._total_batches()
        if total <= len(batches):
            return batches[:total]
        # Pad by cycling from the start; the list can be shorter than the padding needed.
        return [batches[i % len(batches)] for i in range(total)]

    def __iter__(self) -> Iterator[list[FrameKey]]:
        epoch = self.sampler.epoch
        for batch in self._epoch_batches()[self.rank :: self.num_replicas]:
            yield [FrameKey(int(index), epoch) for index in batch]

    def __len__(self) -> int:
        return self._total_batches() // self.num_replicas
