"""Learning-rate schedules whose length follows the run (configs/scheduler).

A scheduler config is a ``_partial_`` of a function ``(optimizer, total_steps) -> LRScheduler``;
:class:`~vqe.training.module.VQEModule` calls it with the trainer's estimated number of optimizer
steps and steps it every optimizer step.
"""

from __future__ import annotations

import math

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR


def warmup_cosine(
    optimizer: Optimizer,
    total_steps: int,
    warmup_fraction: float = 0.05,
    final_lr_factor: float = 0.01,
) -> LambdaLR:
    """Linear warm-up over ``warmup_fraction`` of the steps, then a cosine decay to
    ``final_lr_factor`` × the base learning rate at ``total_steps``."""
    if total_steps < 1:
        raise ValueError(f"warmup_cosine: total_steps must be >= 1, got {total_steps}")
    if not 0.0 <= warmup_fraction < 1.0:
        raise ValueError(f"scheduler.warmup_fraction must be in [0, 1), got {warmup_fraction}")
    warmup_steps = int(warmup_fraction * total_steps)

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / (warmup_steps + 1)
        progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
        return final_lr_factor + (1.0 - final_lr_factor) * 0.5 * (
            1.0 + math.cos(math.pi * progress)
        )

    return LambdaLR(optimizer, factor)
