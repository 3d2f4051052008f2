"""Enhancer weights from Lightning checkpoints written by ``train_vqe.py``.

Two uses, distinct from Lightning's own resume (``ckpt_path=…``, which restores the whole
training state — optimizer, scheduler, loops, callbacks):

* **Stage initialisation** (``init_from=<checkpoint>``): :func:`init_enhancer` copies the
  previous stage's enhancer weights into a freshly built enhancer, stage by stage. Every stage
  (``lut``, ``unet``) the checkpoint holds is loaded **strictly** into the same stage of the new
  model (shapes and keys must match: same preset); a stage the new model has but the checkpoint
  lacks keeps its fresh initialisation (stage 1 → stage 2 adds the U-Net); a stage the checkpoint
  has but the new model lacks is an error (its weights would be silently dropped).
* **Evaluation** (``python -m vqe.evaluate ckpt=…``): :func:`enhancer_from_checkpoint` rebuilds
  the enhancer from the ``model_vqe`` config stored in the checkpoint's hyper-parameters and
  loads its weights strictly. It and the reading steps live in :mod:`vqe.models.loading` (the one
  home of enhancer loading, also used by export and inference) and are re-exported here.

And two guards: :func:`read_resume_checkpoint` refuses a file Lightning could not resume a
fit from (truncated, not a Lightning checkpoint) with a message naming it, and
:func:`check_finite_state` refuses to save (or validate) a model whose weights are NaN / inf.

Critics are never in these checkpoints (:class:`~vqe.critics.frozen.CriticHandle`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from vqe.models.enhancer import Enhancer
from vqe.models.loading import (
    ENHANCER_PREFIX,
    MODEL_CONFIG_KEY,
    STAGES,
    CheckpointError,
    enhancer_from_checkpoint,
    enhancer_state_dict,
    read_checkpoint,
    shape_mismatches,
)

log = logging.getLogger(__name__)


#: What Lightning reads to resume a fit (a weights-only or foreign file lacks some).
RESUME_KEYS = ("pytorch-lightning_version", "state_dict", "optimizer_states", "loops")


class NonFiniteStateError(FloatingPointError):
    """A parameter or buffer holds NaN or inf: the model diverged; it is not saved."""


def read_resume_checkpoint(path: str | Path, key: str = "ckpt_path") -> dict[str, Any]:
    """:func:`read_checkpoint`, also refusing a checkpoint Lightning cannot resume a fit from."""
    checkpoint = read_checkpoint(path, key)
    missing = [name for name in RESUME_KEYS if name not in checkpoint]
    if missing:
        raise CheckpointError(
            f"{key}={path}: not a resumable Lightning checkpoint (no {', '.join(missing)}); "
            "resume from a checkpoint train_vqe.py wrote (<run dir>/checkpoints/last.ckpt), or "
            "start a new run from a checkpoint's weights with init_from=<checkpoint>"
        )
    return checkpoint


def non_finite_tensors(state: Mapping[str, Any]) -> list[str]:
    """Names of the floating-point tensors of ``state`` holding NaN or inf (one host sync)."""
    named = [(n, v) for n, v in state.items() if torch.is_tensor(v) and v.is_floating_point()]
    if not named:
        return []
    device = named[0][1].device
    finite = torch.stack([torch.isfinite(value).all().to(device) for _, value in named])
    return [name for (name, _), ok in zip(named, finite.tolist()) if not ok]


def check_finite_state(state: Mapping[str, Any], where: str) -> None:
    """Raise :class:`NonFiniteStateError` naming every non-finite tensor of ``state``."""
    bad = non_finite_tensors(state)
    if not bad:
        return
    shown = ", ".join(bad[:5]) + (f" and {len(bad) - 5} more" if len(bad) > 5 else "")
    raise NonFiniteStateError(
        f"the model diverged: NaN or inf in {shown} ({where}); no checkpoint was written with "
        "them, the ones written before are kept. Lower optimizer.lr (or set "
        "trainer.gradient_clip_val) and start again, or resume from an earlier checkpoint "
        "with ckpt_path=<run dir>/checkpoints/last.ckpt"
    )


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
    "ENHANCER_PREFIX",
    "MODEL_CONFIG_KEY",
    "RESUME_KEYS",
    "CheckpointError",
    "NonFiniteStateError",
    "check_finite_state",
    "enhancer_from_checkpoint",
    "enhancer_state_dict",
    "init_enhancer",
    "non_finite_tensors",
    "read_checkpoint",
    "read_resume_checkpoint",
    "shape_mismatches",
]
