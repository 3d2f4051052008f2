"""Precompute the input caches of a frame index (:mod:`vqe.data.input_cache`): DOVER(x) — or
the VQA's input features — of every input frame, sharded and resumable; ``vqe score-inputs``
(:mod:`vqe.cli.score_inputs`) runs it.

DOVER(x) at the official setting (T = 32, K = 3) costs tens of seconds per frame on a CPU, so
the whole index is spread over devices and machines:

* shard ``(k, n)`` scores every n-th distinct input of the sorted list, starting at the k-th
  (the builder's ``shard=k/n``), e.g. one SLURM array task per shard;
  :func:`shard_from_environment` takes k/n from ``SLURM_ARRAY_TASK_ID``/``SLURM_ARRAY_TASK_COUNT``
  or, under ``torchrun``, from ``RANK``/``WORLD_SIZE`` (one shard per GPU, on ``cuda:LOCAL_RANK``).
* The VQA's input encoder fills its 512 features of each input frame instead
  (``vqa-<digest>.npz``: the fixed input view's embedding that training and the test loop
  read instead of encoding x; cheap next to DOVER, but worth sharding with it).
* Each shard writes ``<cache key>.shard-k-of-n.csv`` (``.npz``) beside the cache, flushed every
  :data:`~vqe.data.input_cache.FLUSH_EVERY` frames; a restarted shard reads it back and
  scores only what is missing (frames already in the merged cache are skipped too).
* Once the shard files cover the index (:func:`is_covered`) they merge into
  ``<cache key>.csv`` (``.npz``). With shards on different machines, copy the shard files into
  one ``.dover_cache`` first.

The cache key names the weights and clip settings, so training with the same DOVER reads these
scores. :class:`ShardReport` holds a run's throughput, from which :func:`projected_hours` gives
the hours for the whole index on ``n`` such devices.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import pandas as pd
import torch
from torch import Tensor

from vqe.conventions import bgr_uint8_to_tensor
from vqe.data.input_cache import (
    DoverScoreCache,
    FeatureCache,
    FrameLoader,
    FrameScorer,
    InputCache,
)
from vqe.dataprep.layout import select_shard
from vqe.schema import IMG_SOURCE

Shard = tuple[int, int]


@dataclass
class ShardReport:
    """What one run of a shard did, and the throughput it measured."""

    shard: str
    device: str
    inputs_in_shard: int  # distinct input frames the shard owns
    already_scored: int  # of those, found in the shard file or the merged cache
    scored: int  # scored by this run
    seconds: float
    frames_per_s: float
    merged: str | None  # the cache file, when this run merged the shards


def index_sources(index_files: Sequence[Path]) -> list[str]:
    """The distinct input frames (``img_source``, relative to the data root) of the indexes,
    sorted, so every shard of every machine sees the same list."""
    sources: set[str] = set()
    for path in index_files:
        sources.update(pd.read_csv(path, usecols=[IMG_SOURCE], dtype=str)[IMG_SOURCE])
    return sorted(sources)


def shard_from_environment() -> Shard:
    """k/n of a SLURM array task or a torchrun rank; 1/1 outside both."""
    environ = os.environ
    if "SLURM_ARRAY_TASK_ID" in environ and "SLURM_ARRAY_TASK_COUNT" in environ:
        first = int(environ.get("SLURM_ARRAY_TASK_MIN", "0"))
        return int(environ["SLURM_ARRAY_TASK_ID"]) - first + 1, int(
            environ["SLURM_ARRAY_TASK_COUNT"]
        )
    if "WORLD_SIZE" in environ:
        return int(environ.get("RANK", "0")) + 1, int(environ["WORLD_SIZE"])
    return 1, 1


def default_device() -> torch.device:
    """``cuda:LOCAL_RANK`` under torchrun with GPUs, else cuda, else the CPU."""
    if not torch.cuda.is_available():
        return torch.device("cpu")
    return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))


def frame_reader(data_root: Path) -> FrameLoader:
    """relative path → 3×H×W RGB float frame in [0, 1], read as training reads it (OpenCV)."""

    def read(relative: str) -> Tensor:
        path = data_root / relative
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise FileNotFoundError(f"{path}: listed in the index but missing or undecodable")
        return bgr_uint8_to_tensor(image)

    return read


#: Critic name (``vqe score-inputs --critic``) → the cache it fills.
CACHE_TYPES: dict[str, type[InputCache]] = {"dover": DoverScoreCache, "vqa": FeatureCache}


def is_covered(
    data_root: Path,
    key: str,
    sources: Sequence[str],
    cache_type: type[InputCache] = DoverScoreCache,
) -> bool:
    """True when the merged cache and the shard files together hold every source."""
    scored = set(cache_type.read_file(cache_type.path_for(data_root, key)))
    for path in cache_type.shard_paths(data_root, key):
        scored.update(cache_type.read_file(path))
    return scored.issuperset(sources)


def score_shard(
    data_root: Path,
    sources: list[str],
    critic: FrameScorer,
    shard: Shard,
    batch_size: int = 4,
    limit: int | None = None,
    progress: bool = True,
    cache_type: type[InputCache] = DoverScoreCache,
) -> ShardReport:
    """Score the shard's missing inputs into its shard file; resumable (see module doc)."""
    owned = select_shard(sources, *shard)
    cache = cache_type(data_root, critic, batch_size, progress=progress, shard=shard)
    merged = cache_type.read_file(cache_type.path_for(data_root, critic.cache_key))
    missing = [s for s in owned if s not in cache and s not in merged]
    todo = missing if limit is None else missing[:limit]
    device = scorer_device(critic)
    start = time.perf_counter()
    if todo:
        cache.get_or_compute(todo, frame_reader(data_root))
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - start
    return ShardReport(
        shard=f"{shard[0]}/{shard[1]}",
        device=str(device),
        inputs_in_shard=len(owned),
        already_scored=len(owned) - len(missing),
        scored=len(todo),
        seconds=seconds,
        frames_per_s=len(todo) / seconds if todo and seconds > 0 else 0.0,
        merged=None,
    )


def scorer_device(scorer: object) -> torch.device:
    """The device of a scorer's parameters (the CPU for one without any)."""
    parameters = getattr(scorer, "parameters", None)
    reference = next(parameters(), None) if callable(parameters) else None
    return reference.device if reference is not None else torch.device("cpu")


def projected_hours(frames: int, frames_per_s: float, devices: int) -> float:
    """Wall hours for ``frames`` on ``devices`` devices each scoring ``frames_per_s``."""
    return frames / (frames_per_s * devices) / 3600.0 if frames_per_s > 0 else float("inf")
