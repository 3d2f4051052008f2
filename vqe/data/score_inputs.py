"""Precompute DOVER(x) — or the VQA's input features — of every frame of a frame index,
sharded and resumable, into the cache training reads (:mod:`vqe.data.input_scores`).

    python -m vqe.data.score_inputs --data-root DATA --index DATA/train.csv [--index …]
        [--critic dover | --critic vqa]
        [--shard k/n | --shard auto] [--weights DOVER.pth | VQA.ckpt] [--frames 32 --clips 3]
        [--device cuda] [--batch-size 4] [--limit N] [--merge | --merge-only]
        [--project-frames 3900000]

DOVER(x) at the official setting (T = 32, K = 3) costs tens of seconds per frame on a CPU, so
the whole index is spread over devices and machines:

* ``--shard k/n`` scores every n-th distinct input of the sorted list, starting at the k-th
  (the builder's ``shard=k/n``), e.g. one SLURM array task per shard;
  ``--shard auto`` takes k/n from ``SLURM_ARRAY_TASK_ID``/``SLURM_ARRAY_TASK_COUNT`` or, under
  ``torchrun``, from ``RANK``/``WORLD_SIZE`` (one shard per GPU, on ``cuda:LOCAL_RANK``).
* ``--critic vqa`` fills the VQA's 512 features of each input frame instead
  (``vqa-<digest>.npz``: the fixed input view's embedding that training and the test loop
  read instead of encoding x; cheap next to DOVER, but worth sharding with it).
* Each shard writes ``<cache key>.shard-k-of-n.csv`` (``.npz``) beside the cache, flushed every
  :data:`~vqe.data.input_scores.FLUSH_EVERY` frames; a restarted shard reads it back and
  scores only what is missing (frames already in the merged cache are skipped too).
* A shard that finds the index fully covered by the shard files merges them into
  ``<cache key>.csv`` (``--merge`` forces the merge, ``--merge-only`` merges without scoring).
  With shards on different machines, copy the shard files into one ``.dover_cache`` first.

The cache key names the weights and clip settings, so training with the same DOVER reads these
scores. Each run prints frames/s on its device and the projected hours for the whole index (or
``--project-frames`` frames) on ``n`` such devices; ``--limit`` scores only the first N missing
frames of the shard (to measure).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import pandas as pd
import torch
from torch import Tensor

from vqe.conventions import bgr_uint8_to_tensor
from vqe.critics.dover import DoverCritic, DoverSettings, load_dover
from vqe.critics.vqa import VqaInputEncoder, load_vqa
from vqe.data.input_scores import DoverScoreCache, FeatureCache, FrameScorer, InputCache
from vqe.data.layout import parse_shard
from vqe.schema import IMG_SOURCE

log = logging.getLogger(__name__)

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


def select_shard(sources: list[str], shard: Shard) -> list[str]:
    """Shard k of n (1-based): every n-th source, starting at the k-th (as the builder)."""
    index, count = shard
    return sources[index - 1 :: count]


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


def frame_reader(data_root: Path):
    """relative path → 3×H×W RGB float frame in [0, 1], read as training reads it (OpenCV)."""

    def read(relative: str) -> Tensor:
        path = data_root / relative
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise FileNotFoundError(f"{path}: listed in the index but missing or undecodable")
        return bgr_uint8_to_tensor(image)

    return read


#: ``--critic`` → the cache it fills.
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
    owned = select_shard(sources, shard)
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


def build_critic(args: argparse.Namespace, device: torch.device) -> FrameScorer:
    """The DOVER at the given clip settings, or the VQA's input encoder (``--critic vqa``)."""
    if args.critic == "vqa":
        return VqaInputEncoder(load_vqa(args.weights, allow_random=args.allow_random)).to(device)
    network = load_dover(args.weights, allow_random=args.allow_random)
    settings = DoverSettings(num_frames=args.frames, num_technical_clips=args.clips, seed=args.seed)
    return DoverCritic(network, settings).to(device)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m vqe.data.score_inputs", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--data-root", type=Path, required=True)
    parser.add_argument("--index", type=Path, action="append", required=True,
                        help="frame-index CSV (repeat for several)")  # fmt: skip
    parser.add_argument("--shard", default="1/1", help="k/n (1-based) or auto (default 1/1)")
    parser.add_argument("--critic", choices=sorted(CACHE_TYPES), default="dover",
                        help="dover: DOVER(x) scores (default); vqa: the VQA's input features")  # fmt: skip
    parser.add_argument("--weights", type=Path, default=None, help="DOVER.pth or VQA.ckpt")
    parser.add_argument("--allow-random", action="store_true",
                        help="random critic when no weights (tests, timing only)")  # fmt: skip
    parser.add_argument("--frames", type=int, default=32, help="T (official 32)")
    parser.add_argument("--clips", type=int, default=3, help="K (official 3)")
    parser.add_argument("--seed", type=int, default=0, help="fragment seed (official 0)")
    parser.add_argument("--device", default=None, help="default: cuda[:LOCAL_RANK] when present")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--limit", type=int, default=None, help="score at most N (to measure)")
    parser.add_argument("--merge", action="store_true", help="merge the shards after scoring")
    parser.add_argument("--merge-only", action="store_true", help="merge without scoring")
    parser.add_argument("--project-frames", type=int, default=None,
                        help="frames to project the hours for (default: the index's)")  # fmt: skip
    parser.add_argument("--no-progress", action="store_true")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    shard = shard_from_environment() if args.shard == "auto" else parse_shard(args.shard)
    device = torch.device(args.device) if args.device else default_device()
    critic = build_critic(args, device)
    cache_type = CACHE_TYPES[args.critic]
    key = critic.cache_key
    sources = index_sources(args.index)
    if args.merge_only:
        print(f"merged into {cache_type.merge_shards(args.data_root, key)}")
        return 0
    with torch.inference_mode():
        report = score_shard(
            args.data_root, sources, critic, shard, args.batch_size, args.limit,
            progress=not args.no_progress, cache_type=cache_type,
        )  # fmt: skip
    if args.merge or is_covered(args.data_root, key, sources, cache_type):
        report.merged = str(cache_type.merge_shards(args.data_root, key))
    frames = args.project_frames or len(sources)
    hours = projected_hours(frames, report.frames_per_s, shard[1])
    summary = {**asdict(report), "cache_key": key, "index_frames": len(sources),
               "projected_frames": frames, "projected_hours_on_n_devices": hours}  # fmt: skip
    print(json.dumps(summary, indent=2))
    if report.scored:
        print(
            f"shard {report.shard} on {report.device}: {report.frames_per_s:.3f} frames/s; "
            f"{frames} frames on {shard[1]} such devices ≈ {hours:.1f} h"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
