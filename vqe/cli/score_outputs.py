"""The ``vqe score-outputs`` command: arguments, the summary and the exit status around
:func:`vqe.metrics.method_scores.score_outputs`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from vqe.cli.critic_options import (
    add_critic_arguments,
    check_critic_arguments,
    critics_label,
    dover_cost_line,
    load_critics,
)
from vqe.devices import resolve_device
from vqe.metrics.full_reference import build_frame_quality
from vqe.metrics.method_scores import DEFAULT_FPS, score_outputs
from vqe.output_paths import OutputPathError, check_not_an_input, check_writable
from vqe.schema import SPLITS
from vqe.video import parse_fps

EPILOG = """\
Scores any method's output videos (the baseline, an external method) exactly as
vqe evaluate scores a checkpoint, and writes the same layout into --out: submission/
(metrics_supervised.csv and metrics_unsupervised.csv, what the official score.py accepts),
submission.zip (submission-random-critics.zip with --allow-random-critics: not an upload),
score.json and tables/quality.csv.

Expected names in --enhanced (one folder may hold both):
  video_XXXX_x.mp4  the enhanced ROOT/<split>/unsupervised/video_XXXX_x.mp4 (same file name, as
                    vqe enhance and the baseline write it)
  video_XXXX.mp4    the enhanced synthetic video video_XXXX: the enhancer's output for the mp4
                    that vqe synthetic-inputs writes from .../x/*.jpg

Frames: the unsupervised inputs are resampled to --fps (30 by default, as the dataset builder and
the enhancers do) and paired with the enhanced video's frames in order; synthetic videos pair
enhanced frame k with target frame k. The enhanced frames went through the method's own encoding
and temporal processing, which the test loop does not have.

Bad videos: one that is missing, cannot be decoded, or has the wrong number or size of frames is
listed and scored as missing (the official fill); the good ones are still scored.

Exit status: 0 when every expected video was scored; 1 when one was not, the submission cannot
be scored or --out cannot be written; 2 for bad arguments.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vqe score-outputs",
        description="Submission CSVs and objective score of a folder of enhanced videos.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--enhanced", type=Path, required=True, help="folder of enhanced mp4s")
    parser.add_argument("--data-root", type=Path, required=True, help="official layout root")
    parser.add_argument("--split", choices=SPLITS, default="test")
    parser.add_argument(
        "--out", type=Path, required=True,
        help="run folder: submission/ (the two CSVs), submission.zip (random critics: "
        "submission-random-critics.zip), score.json, tables/",
    )  # fmt: skip
    parser.add_argument(
        "--fps", type=parse_fps, default=DEFAULT_FPS,
        help="rate the unsupervised inputs are resampled to, as the dataset builder and the "
        "enhancers do (default 30); 'none' when the enhancer kept the decoded frames one for one",
    )  # fmt: skip
    parser.add_argument(
        "--official", action="store_true",
        help="require the official 500 synthetic + 3000 unsupervised video ids",
    )  # fmt: skip
    parser.add_argument("--overwrite", action="store_true", help="replace CSVs in --out")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument(
        "--no-quality", action="store_true", help="no tables/quality.csv (PSNR, SSIM, LPIPS)"
    )
    parser.add_argument("--no-lpips", action="store_true", help="leave the LPIPS column out")
    parser.add_argument(
        "--lpips-backbone", type=Path,
        help="torchvision alexnet checkpoint for LPIPS (default: torchvision's cache file; "
        "without it the LPIPS column is left out)",
    )  # fmt: skip
    add_critic_arguments(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    check_critic_arguments(parser, args)
    try:  # before scoring, which takes minutes
        check_writable(args.out, "--out", folder=True)
        check_not_an_input(
            args.out, "--out", {"--enhanced": args.enhanced, "--data-root": args.data_root}
        )
    except OutputPathError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(critics_label(args))
    try:  # a missing, unreadable or refused weights file: one line naming it
        vqa, dover = load_critics(args)
    except (ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    device = resolve_device(args.device)
    cost = dover_cost_line(args, dover, args.enhanced, device)
    if cost:  # each unsupervised frame needs DOVER(ŷ), and DOVER(x) once per distinct input
        print(f"{cost}; up to two per enhanced frame", flush=True)
    quality = None
    if not args.no_quality:
        quality = build_frame_quality(
            lpips=not args.no_lpips, lpips_backbone_weights=args.lpips_backbone
        )
    try:
        report = score_outputs(
            args.enhanced,
            args.data_root,
            args.out,
            vqa,
            dover,
            split=args.split,
            fps=args.fps,
            batch_size=args.batch_size,
            device=device,
            official_rows=args.official,
            overwrite=args.overwrite,
            progress=not args.no_progress,
            quality=quality,
        )
    except (ValueError, FileNotFoundError, FileExistsError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(report.summary())
    if report.score is not None and report.results is not None:
        print(f"objective score of {args.enhanced} ({len(report.scored)} videos scored):")
        print(report.results.format_score())
        print(f"wrote {report.results.layout.score_json}")
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
