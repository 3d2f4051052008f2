"""``vqe models``: the models ``vqe enhance`` can run.

* The presets of ``configs/model_vqe/*.yaml`` (train one with ``train_vqe.py model_vqe=NAME``),
  each with its cost per 1280×720 frame on the deploy graph, its stored numbers and their size
  in fp16 (:mod:`vqe.inference.presets`).
* Shipped models (:mod:`vqe.models.pretrained`): the ``*.ckpt`` files of
  ``vqe/models/pretrained/``, each with a model card beside it, usable by name
  (``vqe enhance --ckpt NAME``; with no model named, ``vqe enhance`` runs the default one).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from vqe.inference.presets import PRESET_DIR, preset_cost, preset_names
from vqe.models.pretrained import DEFAULT_MODEL, shipped_models


def listing(presets: Sequence[str]) -> str:
    lines = ["Presets (configs/model_vqe; train with: python train_vqe.py model_vqe=NAME):",
             f"  {'name':<12}{'GMAC/720p':>10}{'params':>12}{'fp16 MB':>10}"]  # fmt: skip
    for name in presets:
        cost = preset_cost(name)
        lines.append(
            f"  {cost.name:<12}{cost.gmacs:>10.2f}{cost.parameters:>12,}{cost.fp16_mb:>10.2f}"
        )
    lines += ["", f"Shipped models (vqe enhance --ckpt NAME; default {DEFAULT_MODEL}):"]
    shipped = list(shipped_models().values())
    if not shipped:
        lines.append("  no shipped models yet")
    for path in shipped:
        lines.append(f"  {path.stem:<24}{path.stat().st_size / 1e6:>8.1f} MB  {path}")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vqe models",
        description="List the model presets (cost per 1280×720 frame, size) and shipped models.",
        epilog="GMAC: multiply-accumulates of the deploy graph per 1280×720 frame (the budget "
        "is 20). params: its parameters and buffers (fused convs, LUT atlases); fp16 MB: "
        "their size at 2 bytes each.",
    )
    parser.add_argument(
        "presets", nargs="*", metavar="PRESET", help="only these presets (default: all)"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    known = preset_names()
    unknown = [name for name in args.presets if name not in known]
    if unknown:
        print(
            f"error: {', '.join(unknown)}: no such preset in {PRESET_DIR}; "
            f"choose from {', '.join(known)}",
            file=sys.stderr,
        )
        return 2
    print(listing(args.presets or known))
    return 0


if __name__ == "__main__":
    sys.exit(main())
