"""The enhancement command, ``python -m vqe.inference`` (also ``vqe enhance``): arguments, the
summary and the exit status around :func:`vqe.inference.enhance.enhance_folder`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from vqe.inference.backends import ModelSpec
from vqe.inference.enhance import enhance_folder
from vqe.inference.stream import DEFAULT_ALPHA, DEFAULT_BATCH_SIZE, EnhanceSettings
from vqe.video import OFFICIAL_FPS, parse_fps

EPILOG = """\
Every *.mp4 directly in --dir_in is decoded, enhanced in batches (memory bounded by one batch)
with the LUT weights smoothed over time, and encoded with the official settings (H.264, yuv420p,
CRF 18, 30 fps; inputs at another rate are resampled to 30 fps first, see --fps) under the same
file name in --dir_out: the submission layout. Files that are not mp4 are listed as ignored.
The input's audio is copied; an odd frame size is encoded as yuv444p at the same size; a
truncated input is enhanced as far as it decodes. Each of these, and audio that had to be
dropped, is listed under "notes" in the summary.

An existing output is skipped unless --overwrite; outputs are written under a temporary name and
renamed when complete. A video that fails is reported and the others still finish.

Models: --ckpt runs the checkpoint's deploy graph in PyTorch on --device; --onnx runs an exported
ONNX model with onnxruntime (LUT-weight smoothing needs the stage graphs written beside it);
--mlpackage runs only on macOS. --workers > 1 runs videos in parallel processes, each loading
the model (useful on a many-core CPU; keep 1 on a GPU).

Exit status: 0 when every video was written or skipped; 1 when a video failed or the model
cannot be loaded (then before any video); 2 for bad arguments.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m vqe.inference",
        description="Enhance every mp4 of a folder (submission layout: same file names).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    model = parser.add_mutually_exclusive_group(required=True)
    model.add_argument("--ckpt", type=Path, help="a train_vqe.py checkpoint (PyTorch)")
    model.add_argument("--onnx", type=Path, help="an export_coreml.py --format onnx model")
    model.add_argument("--mlpackage", type=Path, help="a CoreML package (macOS only)")
    parser.add_argument("--dir_in", type=Path, required=True, help="folder of input .mp4 videos")
    parser.add_argument("--dir_out", type=Path, required=True, help="folder for enhanced videos")
    parser.add_argument(
        "--batch-size", type=int, default=DEFAULT_BATCH_SIZE,
        help=f"frames per model call (default {DEFAULT_BATCH_SIZE})",
    )  # fmt: skip
    parser.add_argument(
        "--smoothing-alpha", type=float, default=DEFAULT_ALPHA,
        help="weight of the newest frame in the LUT-weight moving average, in (0, 1]; "
        f"smaller is smoother (default {DEFAULT_ALPHA})",
    )  # fmt: skip
    parser.add_argument(
        "--no-smoothing", action="store_true", help="use each frame's own LUT weights"
    )
    parser.add_argument(
        "--device", default="auto", help="torch device for --ckpt: auto (default), cpu, cuda, …"
    )
    parser.add_argument(
        "--fps", type=parse_fps, default=OFFICIAL_FPS,
        help=f"resample inputs to this rate before enhancing (default {OFFICIAL_FPS}, the "
        "official extraction rate, so outputs keep the input's duration); 'none' keeps every "
        "decoded frame one for one",
    )  # fmt: skip
    parser.add_argument("--workers", type=int, default=1, help="parallel processes (default 1)")
    parser.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    parser.add_argument("--no-progress", action="store_true", help="no per-video progress bars")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.workers < 1:
        parser.error(f"--workers must be ≥ 1, got {args.workers}")
    try:
        settings = EnhanceSettings(
            batch_size=args.batch_size,
            smoothing=not args.no_smoothing,
            alpha=args.smoothing_alpha,
            progress=not args.no_progress,
            fps=args.fps,
        )
    except ValueError as error:
        parser.error(str(error))
    kind = "ckpt" if args.ckpt else "onnx" if args.onnx else "mlpackage"
    spec = ModelSpec(kind, args.ckpt or args.onnx or args.mlpackage, args.device)
    try:
        report = enhance_folder(
            args.dir_in, args.dir_out, spec, settings, args.workers, args.overwrite
        )
    except (OSError, ValueError, RuntimeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(report.summary())
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
