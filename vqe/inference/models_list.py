"""``vqe models``: the models ``vqe enhance`` can run.

* The presets of ``configs/model_vqe/*.yaml`` (train one with ``train_vqe.py model_vqe=NAME``),
  each with its cost per 1280×720 frame, counted on the deploy graph that is exported and
  enhanced with (:func:`vqe.models.deploy.build_deploy_model`, :func:`vqe.macs.count_macs`, as
  the export's budget report does), its stored numbers and their size in fp16 (what a
  ``--half`` model or a CoreML package holds).
* Shipped models (:mod:`vqe.models.pretrained`): the ``*.ckpt`` files of
  ``vqe/models/pretrained/``, each with a model card beside it, usable by name
  (``vqe enhance --ckpt NAME``; with no model named, ``vqe enhance`` runs the default one).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from vqe.models.loading import CONFIG_DIR
from vqe.models.pretrained import DEFAULT_MODEL, shipped_models

PRESET_DIR = CONFIG_DIR / "model_vqe"


@dataclass(frozen=True)
class PresetCost:
    name: str
    gmacs: float  # per 1280×720 frame, deploy graph
    parameters: int  # stored numbers of the deploy graph (parameters and buffers)

    @property
    def fp16_mb(self) -> float:
        return self.parameters * 2 / 1e6


def preset_names() -> list[str]:
    return sorted(path.stem for path in PRESET_DIR.glob("*.yaml"))


def preset_cost(name: str) -> PresetCost:
    """Build preset ``name`` and count its deploy graph at 1280×720."""
    from vqe.export.metadata import parameter_count
    from vqe.macs import count_macs
    from vqe.models.deploy import build_deploy_model
    from vqe.models.loading import enhancer_from_preset

    deploy = build_deploy_model(enhancer_from_preset(name).eval())
    return PresetCost(name, count_macs(deploy).gmacs, parameter_count(deploy))


def pretrained_models(folder: Path | None = None) -> list[Path]:
    """The shipped models' files (:func:`vqe.models.pretrained.shipped_models`)."""
    return list(shipped_models(folder).values())


def listing(presets: Sequence[str], folder: Path | None = None) -> str:
    lines = ["Presets (configs/model_vqe; train with: python train_vqe.py model_vqe=NAME):",
             f"  {'name':<12}{'GMAC/720p':>10}{'params':>12}{'fp16 MB':>10}"]  # fmt: skip
    for name in presets:
        cost = preset_cost(name)
        lines.append(
            f"  {cost.name:<12}{cost.gmacs:>10.2f}{cost.parameters:>12,}{cost.fp16_mb:>10.2f}"
        )
    lines += ["", f"Shipped models (vqe enhance --ckpt NAME; default {DEFAULT_MODEL}):"]
    shipped = pretrained_models(folder)
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
