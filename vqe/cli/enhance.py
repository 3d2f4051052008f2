"""``vqe enhance``: arguments, the summary and the exit status around
:func:`vqe.inference.enhance.enhance_inputs`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from vqe.inference.backends import ModelSpec
from vqe.inference.enhance import enhance_inputs
from vqe.inference.inputs import READABLE
from vqe.inference.stream import DEFAULT_ALPHA, DEFAULT_BATCH_SIZE, EnhanceSettings
from vqe.models.pretrained import DEFAULT_MODEL, resolve_model
from vqe.video import OFFICIAL_FPS, parse_fps

EPILOG = f"""\
Inputs: video files, image files and folders, given as arguments or after --dir_in (both may
be used); a folder stands for the videos and images directly in it ({READABLE}).
  vqe enhance --ckpt m.ckpt --dir_in test/ --dir_out submission/    (the submission layout)
  vqe enhance --ckpt m.ckpt talk.mov holiday/ photo.jpg --dir_out enhanced/

A video (any container above) is decoded, enhanced in batches (memory bounded by one batch)
with the LUT weights smoothed over time, and encoded with the official settings (H.264,
yuv420p, CRF 18, 30 fps; inputs at another rate are resampled to 30 fps first, see --fps) as
STEM.mp4 in --dir_out: a .mp4 keeps its name (the submission layout), a .mov/.mkv/.webm/.avi
becomes .mp4. An image is enhanced to an image of the same name and format (PNG stays
lossless, JPEG is saved at quality 95; EXIF rotation applied, alpha kept), so a folder of photos
gives a folder of enhanced photos; frames of a video stored as images are enhanced one by one
(encode them to a video first to get the temporal smoothing). Two inputs whose outputs would
have the same name (a.mov and a.mp4) are both refused; other files in a folder are listed as
ignored. The input's audio is copied; an odd frame size is encoded as yuv444p at the same size;
a truncated input is enhanced as far as it decodes. Each of these, and audio that had to be
dropped, is listed under "notes" in the summary.

An existing output is skipped unless --overwrite; outputs are written under a temporary name and
renamed when complete. An input that fails (or cannot be read: it is named with what to do) is
reported and the others still finish. An output that would be an input is refused.

Models: --ckpt runs the checkpoint's deploy graph in PyTorch on --device (--half: in fp16, CUDA
only; --tile N: the U-Net in N×N tiles with --tile-overlap pixels of context each, for frames
that do not fit in memory — the LUT weights still come from the whole frame); --onnx runs an
exported ONNX model with onnxruntime (LUT-weight smoothing needs the stage graphs written beside
it); --mlpackage runs only on macOS. --workers > 1 runs inputs in parallel processes, each
loading the model (useful on a many-core CPU; keep 1 on a GPU). vqe models lists the presets.

Exit status: 0 when every input was written or skipped; 1 when an input failed or the model
cannot be loaded (then before any input); 2 for bad arguments.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vqe enhance",
        description="Enhance videos and images: files, or every one in a folder (submission "
        "layout: a folder of .mp4 gives the same file names).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    model = parser.add_mutually_exclusive_group()
    model.add_argument(
        "--ckpt", type=str, metavar="CKPT|NAME",
        help=f"a train_vqe.py checkpoint or a shipped model's name (PyTorch; default: the shipped "
        f"{DEFAULT_MODEL}, see `vqe models`)",
    )  # fmt: skip
    model.add_argument("--onnx", type=Path, help="an export_coreml.py --format onnx model")
    model.add_argument("--mlpackage", type=Path, help="a CoreML package (macOS only)")
    parser.add_argument(
        "inputs", type=Path, nargs="*", metavar="INPUT",
        help=f"video or image files, or folders of them ({READABLE})",
    )  # fmt: skip
    parser.add_argument(
        "--dir_in", type=Path, nargs="+", default=[], metavar="INPUT",
        help="folder(s) (or files) to enhance, as INPUT; the submission layout's option",
    )  # fmt: skip
    parser.add_argument(
        "--dir_out", type=Path, required=True, help="folder for the enhanced videos and images"
    )
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
    parser.add_argument(
        "--half", action="store_true", help="fp16 inference (--ckpt on a CUDA device only)"
    )
    parser.add_argument(
        "--tile", type=int, metavar="N",
        help="run the U-Net in N×N tiles (frames too large for memory; --ckpt only)",
    )  # fmt: skip
    parser.add_argument(
        "--tile-overlap", type=int, default=32, metavar="PX",
        help="pixels of context around each tile (default 32; seams differ from the untiled "
        "frame only where the U-Net sees beyond it)",
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
    inputs = [*args.inputs, *args.dir_in]
    if not inputs:
        parser.error("give the videos, images or folders to enhance (as arguments or --dir_in)")
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
    kind = "onnx" if args.onnx else "mlpackage" if args.mlpackage else "ckpt"
    try:
        # No model named: the shipped default (a checkpoint file inside the package).
        model_path = args.onnx or args.mlpackage or resolve_model(args.ckpt or DEFAULT_MODEL)
    except FileNotFoundError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    try:
        spec = ModelSpec(
            kind, model_path, args.device,
            half=args.half, tile=args.tile, tile_overlap=args.tile_overlap,
        )  # fmt: skip
    except ValueError as error:
        parser.error(str(error))
    try:
        report = enhance_inputs(inputs, args.dir_out, spec, settings, args.workers, args.overwrite)
    except (OSError, ValueError, RuntimeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(report.summary())
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
