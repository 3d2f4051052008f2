"""Precompute DOVER(x) — or the VQA's input features — of every frame of a frame index,
sharded and resumable, into the cache training reads (:mod:`vqe.data.input_cache`).

    vqe score-inputs --data-root DATA --index DATA/train.csv [--index …]
        [--critic dover | --critic vqa]
        [--shard k/n | --shard auto] [--weights DOVER.pth | VQA.ckpt] [--frames 32 --clips 3]
        [--device cuda] [--batch-size 4] [--limit N] [--merge | --merge-only]
        [--project-frames 3900000]

The work is :mod:`vqe.dataprep.precompute` (sharding, resuming, merging):

* ``--shard k/n`` scores every n-th distinct input of the sorted list, starting at the k-th
  (the builder's ``shard=k/n``), e.g. one SLURM array task per shard;
  ``--shard auto`` takes k/n from ``SLURM_ARRAY_TASK_ID``/``SLURM_ARRAY_TASK_COUNT`` or, under
  ``torchrun``, from ``RANK``/``WORLD_SIZE`` (one shard per GPU, on ``cuda:LOCAL_RANK``).
* ``--critic vqa`` fills the VQA's 512 features of each input frame instead of DOVER(x).
* A shard that finds the index fully covered by the shard files merges them into
  ``<cache key>.csv`` (``--merge`` forces the merge, ``--merge-only`` merges without scoring).

Each run prints its report as JSON, then frames/s on its device and the projected hours for the
whole index (or ``--project-frames`` frames) on ``n`` such devices; ``--limit`` scores only the
first N missing frames of the shard (to measure).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import torch

from vqe.critics.dover import DoverCritic, DoverSettings, load_dover
from vqe.critics.vqa import VqaInputEncoder, load_vqa
from vqe.data.input_cache import FrameScorer
from vqe.dataprep.layout import parse_shard
from vqe.dataprep.precompute import (
    CACHE_TYPES,
    default_device,
    index_sources,
    is_covered,
    projected_hours,
    score_shard,
    shard_from_environment,
)


def build_critic(args: argparse.Namespace, device: torch.device) -> FrameScorer:
    """The DOVER at the given clip settings, or the VQA's input encoder (``--critic vqa``)."""
    if args.critic == "vqa":
        return VqaInputEncoder(load_vqa(args.weights, allow_random=args.allow_random)).to(device)
    network = load_dover(args.weights, allow_random=args.allow_random)
    settings = DoverSettings(num_frames=args.frames, num_technical_clips=args.clips, seed=args.seed)
    return DoverCritic(network, settings).to(device)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="vqe score-inputs", description=__doc__.split("\n\n")[0])
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
    sys.exit(main())
