"""Getting an enhancer: the one home for presets and trained checkpoints.

* **Presets.** :func:`compose_preset` composes ``configs/model_vqe/<name>.yaml`` (the config root
  is :data:`vqe.config_root.CONFIG_DIR`; inside a running Hydra app its search path is reused)
  and :func:`enhancer_from_preset` builds it.
* **Checkpoints.** :func:`enhancer_from_checkpoint` rebuilds the enhancer a ``train_vqe.py``
  checkpoint was trained with, from the ``model_vqe`` config its hyper-parameters record — checked
  and built by :mod:`vqe.models.config_tree`, never by Hydra, since the file is the user's — and
  loads its weights strictly (evaluation, export, enhancement).
* **Stage initialisation** (``init_from=<checkpoint>``): :func:`init_enhancer` copies the
  previous stage's enhancer weights into a freshly built enhancer, stage by stage. Every stage
  (``lut``, ``unet``) the checkpoint holds is loaded **strictly** into the same stage of the new
  model (shapes and keys must match: same preset); a stage the new model has but the checkpoint
  lacks keeps its fresh initialisation (stage 1 → stage 2 adds the U-Net); a stage the checkpoint
  has but the new model lacks is an error (its weights would be silently dropped).

:func:`read_checkpoint` and :func:`enhancer_state_dict` are the reading steps both share (and
the resume check of :mod:`vqe.training.checkpoint_guards`). Lightning's own resume
(``ckpt_path=…``) restores the whole training state instead. Training, evaluation, export and
enhancement all load through here; a checkpoint that cannot be used raises
:class:`CheckpointError` (a ValueError naming the file and the config key). Critics are never in
these checkpoints (:class:`~vqe.critics.frozen.CriticHandle`); their weight files are read by
:mod:`vqe.critics.weights`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from vqe.config_root import CONFIG_DIR
from vqe.models.config_tree import UnsafeConfigError, build_from_tree
from vqe.models.enhancer import Enhancer
from vqe.torch_files import listed, load_error_reason, unsafe_globals

if TYPE_CHECKING:
    from omegaconf import DictConfig

log = logging.getLogger(__name__)

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
    """Load a checkpoint dict on the CPU; ``key`` names the config key in error messages.

    Tensors and plain data only (``weights_only=True``): a file that would unpickle anything
    else is refused as such, naming what it would import, not called damaged."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(
            f"{key}={path}: no such checkpoint; point it at a .ckpt written by train_vqe.py "
            "(<run dir>/checkpoints/last.ckpt or the best-*.ckpt beside it)"
        )
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises several types for a file it cannot unpickle
        unsafe = unsafe_globals(path)
        if unsafe:
            raise CheckpointError(
                f"{key}={path}: refused, it would unpickle code ({listed(unsafe)}) — not a "
                "checkpoint train_vqe.py writes; do not load it unless you trust whoever made it"
            ) from error
        raise CheckpointError(
            f"{key}={path}: cannot be read as a checkpoint, it is damaged (e.g. truncated by "
            f"an interrupted copy) or not one; copy it again or use another "
            f"({load_error_reason(error)})"
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


def _grouped(kind: str, names: list[str]) -> list[str]:
    """``missing unet.* (79 keys)`` for a whole group, the key itself when it is alone."""
    groups: dict[str, list[str]] = {}
    for name in names:
        groups.setdefault(name.split(".")[0], []).append(name)
    return [
        f"{kind} {keys[0]}" if len(keys) == 1 else f"{kind} {stage}.* ({len(keys)} keys)"
        for stage, keys in groups.items()
    ]


def shape_mismatches(model: nn.Module, state: Mapping[str, Tensor]) -> list[str]:
    """How ``state`` differs from ``model``'s own state dict: wrongly shaped, then unexpected
    and missing keys, grouped by stage (empty when a strict load would succeed). Works on a
    meta-device model."""
    own = {name: tuple(value.shape) for name, value in model.state_dict().items()}
    given = {name: tuple(value.shape) for name, value in state.items()}
    problems = [
        f"{name} is {list(given[name])}, the config makes {list(shape)}"
        for name, shape in own.items()
        if name in given and given[name] != shape
    ]
    problems += _grouped("unexpected", [name for name in given if name not in own])
    problems += _grouped("missing", [name for name in own if name not in given])
    return problems


def enhancer_from_checkpoint(path: str | Path, key: str = "ckpt") -> tuple[Enhancer, dict]:
    """Rebuild the enhancer a checkpoint was trained with and load its weights strictly.

    The recorded ``model_vqe`` config comes from the user's file: it is checked whole by
    :func:`vqe.models.config_tree.build_from_tree` (the project's model classes, plain values)
    and never given to Hydra. The model is first built on the meta device and compared with the
    stored weights, so a config that does not match them allocates nothing.

    Returns the enhancer (in eval mode) and its ``model_vqe`` config.
    """
    checkpoint = read_checkpoint(path, key)
    hyper_parameters = checkpoint.get("hyper_parameters")
    model_config = (
        hyper_parameters.get(MODEL_CONFIG_KEY) if isinstance(hyper_parameters, Mapping) else None
    )
    if not isinstance(model_config, Mapping):
        raise CheckpointError(
            f"{key}={path}: the checkpoint does not record its model_vqe config "
            f"(hyper_parameters.{MODEL_CONFIG_KEY}); was it written by train_vqe.py?"
        )
    where = f"hyper_parameters.{MODEL_CONFIG_KEY}"
    try:
        with torch.device("meta"):
            skeleton = build_from_tree(model_config, where)
    except UnsafeConfigError as error:
        raise CheckpointError(f"{key}={path}: refused, {error}") from error
    except (TypeError, ValueError) as error:  # the classes' own argument checks
        raise CheckpointError(f"{key}={path}: its model config cannot be built: {error}") from error
    state = enhancer_state_dict(checkpoint, path)
    problems = shape_mismatches(skeleton, state)
    if problems:
        shown = "; ".join(problems[:5]) + (
            f"; and {len(problems) - 5} more" if len(problems) > 5 else ""
        )
        raise CheckpointError(f"{key}={path}: weights do not match its model config: {shown}")
    enhancer = build_from_tree(model_config, where)
    enhancer.load_state_dict(state, strict=True)
    return enhancer.eval(), dict(model_config)


def _stage_states(state: Mapping[str, Tensor], path: str | Path) -> dict[str, dict[str, Tensor]]:
    stages: dict[str, dict[str, Tensor]] = {}
    for name, value in state.items():
        stage, _, rest = name.partition(".")
        if stage not in STAGES:
            raise CheckpointError(f"{path}: unexpected enhancer key {name!r}")
        stages.setdefault(stage, {})[rest] = value
    return stages


def init_enhancer(enhancer: Enhancer, path: str | Path, key: str = "init_from") -> list[str]:
    """Load the stages ``path`` holds into ``enhancer`` (strictly, per stage); returns them.

    See the module docstring for the rules.
    """
    stages = _stage_states(enhancer_state_dict(read_checkpoint(path, key), path), path)
    for stage, state in stages.items():
        module = getattr(enhancer, stage)
        if module is None:
            raise CheckpointError(
                f"{key}={path}: the checkpoint has a {stage!r} stage but model_vqe.{stage} is "
                "null; use a model_vqe preset with that stage"
            )
        try:
            module.load_state_dict(state, strict=True)
        except RuntimeError as error:
            raise CheckpointError(
                f"{key}={path}: its {stage!r} stage does not match model_vqe.{stage} (was it "
                f"trained with another preset?): {error}"
            ) from error
    fresh = [
        stage for stage in STAGES if getattr(enhancer, stage) is not None and stage not in stages
    ]
    log.info(
        "initialised the enhancer from %s: loaded %s; freshly initialised %s",
        path,
        sorted(stages) or "nothing",
        fresh or "nothing",
    )
    return sorted(stages)


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
    "init_enhancer",
    "read_checkpoint",
    "shape_mismatches",
]
