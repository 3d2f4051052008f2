"""Guards on the checkpoints a training run resumes from and writes.

Reading an enhancer out of a checkpoint (evaluation, export, ``init_from=`` stage
initialisation) is :mod:`vqe.models.loading`'s. Here, for Lightning's own resume and save:
:func:`read_resume_checkpoint` refuses a file Lightning could not resume a fit from (truncated,
not a Lightning checkpoint) with a message naming it, and :func:`check_finite_state` refuses to
save (or validate) a model whose weights are NaN / inf. That a save is whole or nothing is
:mod:`vqe.training.checkpoint_io`'s.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from vqe.models.loading import CheckpointError, read_checkpoint

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


__all__ = [
    "RESUME_KEYS",
    "NonFiniteStateError",
    "check_finite_state",
    "non_finite_tensors",
    "read_resume_checkpoint",
]
