"""Models that ship inside the package: trained by the project on public photographs, stored in
fp16, each with a model card (``vqe/models/pretrained/<name>.ckpt`` and ``<name>.md``).

A shipped file is a minimal checkpoint in the layout ``train_vqe.py`` writes — the enhancer's
weights under ``state_dict`` (``enhancer.``-prefixed keys, fp16) and the ``model_vqe`` config
under ``hyper_parameters.model_config`` — so every tool reads it the one way it reads any
checkpoint (:func:`vqe.models.loading.enhancer_from_checkpoint`: tensors and plain data only,
the config checked whole and built without Hydra, the weights loaded strictly and widened to
fp32). :func:`pack_checkpoint` makes one from a training checkpoint; :func:`resolve_model` turns
a shipped name (``vqe enhance`` with no model, ``export_coreml.py NAME``) into its file.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path
from typing import Any

import torch

from vqe.atomic import atomic_write_bytes
from vqe.models.config_tree import check_tree
from vqe.models.loading import (
    ENHANCER_PREFIX,
    MODEL_CONFIG_KEY,
    CheckpointError,
    read_checkpoint,
)

PRETRAINED_DIR = Path(__file__).resolve().parent / "pretrained"
SUFFIX = ".ckpt"
#: What ``vqe enhance`` runs and ``export_coreml.py`` exports when no model is named.
DEFAULT_MODEL = "vqe-lut-unet"
#: Marks a shipped file (and the fields it records beside the weights).
FORMAT = "vqe-pretrained-1"


def shipped_models(folder: Path | None = None) -> dict[str, Path]:
    """Name → file of every shipped model (empty when none ships)."""
    folder = folder if folder is not None else PRETRAINED_DIR
    if not folder.is_dir():
        return {}
    return {path.stem: path for path in sorted(folder.glob(f"*{SUFFIX}"))}


def resolve_model(name_or_path: str | Path, folder: Path | None = None) -> Path:
    """An existing file as it is; otherwise a shipped model's file by name. FileNotFoundError
    naming the shipped models when it is neither."""
    path = Path(name_or_path).expanduser()
    if path.is_file():
        return path
    shipped = shipped_models(folder)
    if str(name_or_path) in shipped:
        return shipped[str(name_or_path)]
    names = ", ".join(shipped) or "none ships with this install"
    if "/" in str(name_or_path) or path.suffix:  # meant as a file
        raise FileNotFoundError(
            f"{name_or_path}: no such checkpoint; point it at a .ckpt written by train_vqe.py, "
            f"or name a shipped model (shipped: {names})"
        )
    raise FileNotFoundError(
        f"{name_or_path}: neither a checkpoint file nor a shipped model (shipped: {names}; "
        "list them with `vqe models`)"
    )


def pack_checkpoint(
    checkpoint: str | Path, out: str | Path, notes: dict[str, Any] | None = None
) -> Path:
    """Write the enhancer of a ``train_vqe.py`` checkpoint as a shipped model: fp16 weights, its
    checked ``model_vqe`` config, where it came from (file digest, global step) and ``notes``
    (plain values: the command, the data, the benchmark figures)."""
    checkpoint = Path(checkpoint)
    stored = read_checkpoint(checkpoint, key="checkpoint")
    config = stored.get("hyper_parameters", {}).get(MODEL_CONFIG_KEY)
    check_tree(config)  # a shipped model must load through the same checks
    weights = {
        name: value.half() if value.is_floating_point() else value
        for name, value in stored["state_dict"].items()
        if name.startswith(ENHANCER_PREFIX)
    }
    if not weights:
        raise CheckpointError(f"{checkpoint}: holds no enhancer weights")
    packed = {
        "format": FORMAT,
        "state_dict": weights,
        "hyper_parameters": {MODEL_CONFIG_KEY: config},
        "source_sha256": hashlib.sha256(checkpoint.read_bytes()).hexdigest(),
        "global_step": int(stored.get("global_step", -1)),
        "notes": dict(notes or {}),
    }
    buffer = io.BytesIO()
    torch.save(packed, buffer)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out, buffer.getvalue())
    return out


__all__ = [
    "DEFAULT_MODEL",
    "FORMAT",
    "PRETRAINED_DIR",
    "pack_checkpoint",
    "resolve_model",
    "shipped_models",
]
