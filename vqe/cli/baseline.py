"""``vqe baseline`` (= ``python baseline/baseline.py``): ``--dir_in DIR --dir_out DIR``.

Every ``*.mp4`` of ``--dir_in`` is tone-mapped (:mod:`vqe.baseline.tone`) and written with the
same name into ``--dir_out`` in the official encoding. Bad videos are listed at the end and make
the exit status 1; the others are still written.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from functools import partial
from pathlib import Path

from vqe.baseline.tone import ToneSettings, tone_map_video
from vqe.batch_jobs import process_folder
from vqe.video import OFFICIAL_FPS, parse_fps


def build_parser() -> argparse.ArgumentParser:
    defaults = ToneSettings()
    parser = argparse.ArgumentParser(
        description="Baseline enhancer: a smoothed global tone and colour curve per frame."
    )
    parser.add_argument("--dir_in", type=Path, required=True, help="folder of input .mp4 videos")
    parser.add_argument(
        "--dir_out", type=Path, required=True, help="folder for the enhanced videos"
    )
    parser.add_argument(
        "--workers", type=int, default=None, help="processes (default: one per CPU)"
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="replace outputs that already exist"
    )
    parser.add_argument(
        "--interval", type=int, default=defaults.interval, help="frames between curve estimates"
    )
    parser.add_argument(
        "--time_constant",
        type=float,
        default=defaults.time_constant,
        help="frames for the curve to move 63%% of the way to a new estimate",
    )
    parser.add_argument(
        "--fps",
        type=parse_fps,
        default=OFFICIAL_FPS,
        help=f"resample inputs to this rate first (default {OFFICIAL_FPS}, the official "
        "extraction rate); 'none' keeps every decoded frame one for one",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.workers is not None and args.workers < 1:
        print(f"error: --workers must be ≥ 1, got {args.workers}", file=sys.stderr)
        return 2
    try:
        settings = ToneSettings(interval=args.interval, time_constant=args.time_constant)
        report = process_folder(
            args.dir_in,
            args.dir_out,
            partial(tone_map_video, settings=settings, fps=args.fps),
            workers=args.workers,
            overwrite=args.overwrite,
            description="baseline",
        )
    except (ValueError, OSError) as error:  # OSError: an output that is an input, unwritable
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(report.summary())
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
