"""``vqe export`` (= ``python export_coreml.py``): a ``train_vqe.py`` checkpoint → CoreML or ONNX.

    python export_coreml.py CKPT [--out PATH] [--height 720 --width 1280]
        [--precision fp16|int8] [--format coreml|onnx] [--allow-over-budget] [--overwrite]

* ``--format coreml`` (default): an fp16 ML Program ``.mlpackage`` (:mod:`vqe.export.coreml`);
  ``--precision int8`` stores 8-bit weights. Default ``--out``: ``CKPT`` with the suffix
  ``.<precision>.mlpackage``.
* ``--format onnx``: ``.onnx`` in float32 checked against onnxruntime (:mod:`vqe.export.onnx`);
  default ``--out``: ``CKPT`` with the suffix ``.onnx``.

Both take a fixed input of 1×3×H×W (``--height``/``--width``, default 1280×720) named
``frame`` and give ``enhanced`` of the same shape, RGB in [0, 1]. A model over 20 GMAC per
1280×720 frame is refused unless ``--allow-over-budget``; an existing output is kept unless
``--overwrite``. Exit status: 0 written, 1 refused or failed (the reason is printed), 2 bad
arguments.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from vqe.macs import MacBudgetError
from vqe.models.pretrained import resolve_model

FORMATS = ("coreml", "onnx")
PRECISIONS = ("fp16", "int8")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python export_coreml.py",
        description="Export a trained vqe enhancer (train_vqe.py checkpoint) to CoreML or ONNX.",
    )
    parser.add_argument(
        "checkpoint", metavar="CKPT|NAME",
        help="a train_vqe.py .ckpt, or a shipped model's name (see `vqe models`)",
    )  # fmt: skip
    parser.add_argument("--out", type=Path, default=None, help="output path (see --format)")
    parser.add_argument("--format", choices=FORMATS, default="coreml", help="default: coreml")
    parser.add_argument("--height", type=int, default=720, help="input height (default 720)")
    parser.add_argument("--width", type=int, default=1280, help="input width (default 1280)")
    parser.add_argument(
        "--precision",
        choices=PRECISIONS,
        default="fp16",
        help="CoreML weights: fp16 (default) or int8 (8-bit weights, fp16 compute)",
    )
    parser.add_argument(
        "--allow-over-budget",
        action="store_true",
        help="export even above 20 GMAC per 1280×720 frame (prints a warning)",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output")
    return parser


def default_out(checkpoint: Path, export_format: str, precision: str) -> Path:
    if export_format == "onnx":
        return checkpoint.with_suffix(".onnx")
    return checkpoint.with_suffix(f".{precision}.mlpackage")


def run(args: argparse.Namespace) -> int:
    """Load, export and print the summary; 1 with a printed reason when refused or failed."""
    from vqe.export.coreml import CoreMLCheckError, export_coreml
    from vqe.export.metadata import load_checkpoint
    from vqe.export.onnx import OnnxParityError, export_onnx

    try:
        checkpoint = resolve_model(args.checkpoint)
    except FileNotFoundError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    # A shipped model's export lands in the current folder, not inside the installed package.
    named = not Path(args.checkpoint).expanduser().is_file()
    beside = Path(checkpoint.name) if named else checkpoint
    out = args.out or default_out(beside, args.format, args.precision)
    options = {"allow_over_budget": args.allow_over_budget, "overwrite": args.overwrite}
    try:
        enhancer, source = load_checkpoint(checkpoint)
        if args.format == "coreml":
            result = export_coreml(
                enhancer, out, source, args.height, args.width, args.precision, **options
            )
        else:
            result = export_onnx(enhancer, out, source, args.height, args.width, **options)
    except (OSError, ValueError, MacBudgetError, CoreMLCheckError, OnnxParityError) as error:
        # OSError: missing checkpoint, existing output; ValueError: CheckpointError, bad size.
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(result.summary())
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.height < 1 or args.width < 1:
        parser.error(f"--height and --width must be positive, got {args.height}×{args.width}")
    if args.format == "onnx" and args.precision != "fp16":
        parser.error("--precision applies to CoreML only; the ONNX model is float32")
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
