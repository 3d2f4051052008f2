"""How much of a pure colour cast each method removes, per photograph (:mod:`vqe.metrics.cast_probe`).

    vqe bench-cast [MODEL …] [--photos NAME …] [--height 180] [--out outputs/benchmarks]

MODEL: a checkpoint or a shipped model's name (default: the shipped ``vqe-lut-unet``); the
baseline's tone curve is always measured beside them. Photos: the validation and test
photographs by default (never trained on), resized to ``--height``, the quality clips' size.
Writes ``cast.json`` and ``cast.md`` into ``--out``: the share of each probe cast (warm, cool,
magenta, green) removed, its mean per photograph and per split, and the a*b* each method adds
where no cast came in.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from vqe.baseline.tone import ToneMapper
from vqe.cli.bench.report import machine_description, save_report
from vqe.conventions import rgb_uint8_to_tensor, tensor_to_rgb_uint8
from vqe.data.photos import TEST_PHOTOS, VALIDATION_PHOTOS, load_photo, split_of
from vqe.inference.backends import ModelSpec, load_backend
from vqe.metrics.cast_probe import PROBE_CASTS, Enhance, probe_cast
from vqe.models.pretrained import resolve_model

DEFAULT_OUT = Path("outputs/benchmarks")
RESULT_NAME = "cast"
DEFAULT_MODEL = "vqe-lut-unet"
CAST_NAMES = ("warm", "cool", "magenta", "green")
assert len(CAST_NAMES) == len(PROBE_CASTS)


def baseline_enhancer() -> Enhance:
    """The tone curve, fresh per image (its smoothing over frames must not carry over)."""
    return lambda image: ToneMapper()(image)


def model_enhancer(name_or_path: str) -> Enhance:
    """A checkpoint's deploy graph on the CPU, as ``vqe enhance`` runs it."""
    backend = load_backend(ModelSpec("ckpt", resolve_model(name_or_path), "cpu"))

    def enhance(image: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            out = backend.enhance(rgb_uint8_to_tensor(image)[None].to(backend.device))
        return tensor_to_rgb_uint8(out[0])

    return enhance


def resized_photo(name: str, height: int) -> np.ndarray:
    """Photo ``name`` as H×W×3 RGB float in [0, 1], ``height`` pixels high (even width)."""
    image = load_photo(name)
    width = max(2, round(image.shape[1] * height / image.shape[0] / 2) * 2)
    small = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
    return small.astype(np.float32) / 255.0


def measure(methods: dict[str, Enhance], photos: Sequence[str], height: int) -> dict[str, Any]:
    """Per method and photo: the share of each probe cast removed, and the a*b* it adds."""
    images = {name: resized_photo(name, height) for name in photos}
    return {
        method: {name: asdict(probe_cast(enhance, image)) for name, image in images.items()}
        for method, enhance in methods.items()
    }


def markdown(result: dict[str, Any]) -> str:
    probes: dict[str, dict[str, dict[str, Any]]] = result["probes"]
    methods = list(probes)
    photos = list(result["splits"])
    splits = result["splits"]
    lines = [
        "# Colour cast removed",
        "",
        "Share of a pure colour cast (red and blue gains of 0.8 or 1.2, the clips' range) that "
        "each method takes out of a clean photograph dimmed to mean 0.2: 1 = all, 0 = none "
        "(the identity), below 0 = made stronger. Mean of the warm, cool, magenta and green "
        f"casts; photos {result['height']} pixels high.",
        "",
        "| photo | split | " + " | ".join(methods) + " |",
        "|---|---|" + "---:|" * len(methods),
    ]
    for photo in photos:
        cells = [f"{np.nanmean(probes[m][photo]['removed']):+.2f}" for m in methods]
        lines.append(f"| {photo} | {splits[photo]} | " + " | ".join(cells) + " |")
    for split in dict.fromkeys(splits.values()):
        members = [p for p in photos if splits[p] == split]
        cells = [
            f"**{np.nanmean([probes[m][p]['removed'] for p in members]):+.2f}**" for m in methods
        ]
        lines.append(f"| mean | {split} | " + " | ".join(cells) + " |")
    lines += ["", "Warm / cool casts alone (the illuminant's axis, which scenes share):", ""]
    for method in methods:
        warm_cool = [s for p in photos for s in probes[method][p]["removed"][:2]]
        lines.append(f"- {method}: {np.nanmean(warm_cool):+.2f}")
    lines += [
        "",
        "The cast each method adds where none came in (mean a\\*, b\\* of its output minus "
        "the clean photograph's):",
        "",
        "| photo | " + " | ".join(methods) + " |",
        "|---|" + "---:|" * len(methods),
    ]
    for photo in photos:
        cells = ["{:+.1f}, {:+.1f}".format(*probes[m][photo]["added"]) for m in methods]
        lines.append(f"| {photo} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vqe bench-cast",
        description="The share of a pure colour cast each method removes, per photograph.",
    )
    parser.add_argument(
        "models",
        nargs="*",
        default=[DEFAULT_MODEL],
        metavar="MODEL",
        help=f"checkpoints or shipped models' names (default {DEFAULT_MODEL})",
    )
    parser.add_argument(
        "--photos",
        nargs="+",
        default=[*VALIDATION_PHOTOS, *TEST_PHOTOS],
        help="photographs by pool name (default: the validation and test photos)",
    )
    parser.add_argument("--height", type=int, default=180, help="photo height in pixels")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="result folder")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.height < 16:
        raise SystemExit(f"vqe bench-cast: --height must be at least 16, got {args.height}")
    try:
        methods = {"baseline": baseline_enhancer()}
        methods |= {str(model): model_enhancer(model) for model in args.models}
        probes = measure(methods, args.photos, args.height)
    except (FileNotFoundError, KeyError, ValueError) as error:
        raise SystemExit(f"vqe bench-cast: {error}") from None
    result = {
        "height": args.height,
        "casts": dict(zip(CAST_NAMES, PROBE_CASTS, strict=True)),
        "splits": {photo: _split_of(photo) for photo in args.photos},
        "probes": probes,
        "machine": machine_description(torch.device("cpu")),
    }
    save_report(args.out, RESULT_NAME, result, markdown(result))
    return 0


def _split_of(photo: str) -> str:
    try:
        return split_of(photo)
    except KeyError:
        return "other"


if __name__ == "__main__":
    sys.exit(main())
