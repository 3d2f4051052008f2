"""Getting an enhancer: the one home for presets and trained checkpoints.

* **Presets.** :func:`compose_preset` composes ``configs/model_vqe/<name>.yaml`` (the config root
  is :data:`vqe.config_root.CONFIG_DIR`; inside a running Hydra app its search path is reused)
  and :func:`enhancer_from_preset` builds it.
* **Checkpoints.** :func:`enhancer_from_checkpoint` rebuilds the enhancer a ``train_vqe.py``
  checkpoint was trained with, from the ``model_vqe`` config its hyper-parameters record, and
  loads its weights strictly. :func:`read_checkpoint` and :func:`enhancer_state_dict` are the
  reading steps, shared with stage initialisation (:mod:`vqe.training.checkpoints`).

Training, evaluation, export and enhancement all load through here; a checkpoint that cannot be
used raises :class:`CheckpointError` (a ValueError naming the file and the config key).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from vqe.config_root import CONFIG_DIR
from vqe.models.enhancer import Enhancer

if TYPE_CHECKING:
    from omegaconf import DictConfig

#: The LightningModule attribute holding the enhancer, i.e. the key prefix of its weights.
ENHANCER_PREFIX = "enhancer."
#: Hyper-parameter holding the resolved ``model_vqe`` config (see VQEModule).
MODEL_CONFIG_KEY = "model_config"
STAGES = ("lut", "unet")


class CheckpointError(ValueError):
    """The checkpoint cannot be used for what was asked."""


def compose_preset(name: str, overrides: Sequence[str] = ()) -> DictConfig:
    """The composed ``model_vqe`` node of preset ``name``; ``overrides`` like ``"lut=null"``."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    group_overrides = [f"+model_vqe={name}", *(f"model_vqe.{item}" for item in overrides)]
    if GlobalHydra.instance().is_initialized():  # inside a Hydra app: reuse its search path
        cfg = compose(overrides=group_overrides)
    else:
        with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
            cfg = compose(overrides=group_overrides)
    return cfg.model_vqe


def enhancer_from_preset(name: str, overrides: Sequence[str] = ()) -> Enhancer:
    """Build ``configs/model_vqe/<name>.yaml``; ``overrides`` like ``"unet.widths=[8,16]"``."""
    from hydra.utils import instantiate

    return instantiate(compose_preset(name, overrides))


def read_checkpoint(path: str | Path, key: str = "ckpt") -> dict[str, Any]:
    """Load a checkpoint dict on the CPU; ``key`` names the config key in error messages."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(
            f"{key}={path}: no such checkpoint; point it at a .ckpt written by train_vqe.py "
            "(<run dir>/checkpoints/last.ckpt or the best-*.ckpt beside it)"
        )
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises several types for a file it cannot unpickle
        raise CheckpointError(
            f"{key}={path}: cannot be read as a checkpoint, it is damaged (e.g. truncated by "
            f"an interrupted copy) or not one; copy it again or use another ({error})"
        ) from error
    if not isinstance(checkpoint, Mapping) or "state_dict" not in checkpoint:
        raise CheckpointError(
            f"{key}={path}: not a Lightning checkpoint (no 'state_dict'); use a .ckpt written "
            "by train_vqe.py"
        )
    return dict(checkpoint)


def enhancer_state_dict(checkpoint: Mapping[str, Any], path: str | Path) -> dict[str, Tensor]:
    """The enhancer's weights of a checkpoint, without the ``enhancer.`` prefix."""
    state = {
        name[len(ENHANCER_PREFIX) :]: value
        for name, value in checkpoint["state_dict"].items()
        if name.startswith(ENHANCER_PREFIX)
    }
    if not state:
        raise CheckpointError(f"{path}: holds no enhancer weights (no '{ENHANCER_PREFIX}*' keys)")
    return state


def enhancer_from_checkpoint(path: str | Path, key: str = "ckpt") -> tuple[Enhancer, dict]:
    """Rebuild the enhancer a checkpoint was trained with and load its weights strictly.

    Returns the enhancer (in eval mode) and its ``model_vqe`` config.
    """
    from hydra.utils import instantiate

    checkpoint = read_checkpoint(path, key)
    model_config = checkpoint.get("hyper_parameters", {}).get(MODEL_CONFIG_KEY)
    if not isinstance(model_config, Mapping):
        raise CheckpointError(
            f"{key}={path}: the checkpoint does not record its model_vqe config "
            f"(hyper_parameters.{MODEL_CONFIG_KEY}); was it written by train_vqe.py?"
        )
    enhancer = instantiate(dict(model_config))
    if not isinstance(enhancer, Enhancer):
        raise CheckpointError(f"{key}={path}: its model config built a {type(enhancer).__name__}")
    try:
        enhancer.load_state_dict(enhancer_state_dict(checkpoint, path), strict=True)
    except RuntimeError as error:
        raise CheckpointError(
            f"{key}={path}: weights do not match its model config: {error}"
        ) from error
    return enhancer.eval(), dict(model_config)


__all__ = [
    "CONFIG_DIR",
    "ENHANCER_PREFIX",
    "MODEL_CONFIG_KEY",
    "STAGES",
    "CheckpointError",
    "compose_preset",
    "enhancer_from_checkpoint",
    "enhancer_from_preset",
    "enhancer_state_dict",
    "read_checkpoint",
]
