"""Stopping every DDP rank together when one of them finds a problem.

A rank that raises alone leaves the others in their next collective (DDP's gradient all-reduce,
a ``sync_dist`` log): they learn of it only when the backend notices the dead peer — gloo
with a "Connection closed by peer" traceback, NCCL perhaps only at its timeout. So the checks
that can fail on one rank only (its batch gave a NaN loss, its BatchNorm statistics went inf)
decide collectively: every rank raises the same error, which names the ranks it came from.

Only for points that every rank reaches in step (``training_step``, the start of a validation
epoch): a collective that one rank skips would itself hang.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytorch_lightning as pl
import torch.distributed as dist

#: ``(rank, error class, message)`` of a rank whose check failed.
Failure = tuple[int, type[Exception], str]


def raise_on_every_rank(trainer: pl.Trainer, check: Callable[[], None]) -> None:
    """Run ``check`` on this rank; when it raises on any rank, raise on every rank.

    One all-reduce of a flag per call under DDP (nothing more on one process); the messages are
    gathered only when a rank failed. The error raised has the class of the first failing rank's
    error (built from one message, as the checks' errors are) and its message, prefixed with the
    failing ranks.
    """
    error: Exception | None = None
    try:
        check()
    except Exception as caught:  # re-raised below, on every rank
        error = caught
    if not _distributed(trainer):
        if error is not None:
            raise error
        return
    if trainer.strategy.reduce_boolean_decision(error is None, all=True):
        return
    failures = _gather_failures(trainer, error)
    _, kind, message = failures[0]
    ranks = ", ".join(str(failure[0]) for failure in failures)
    label = "ranks" if len(failures) > 1 else "rank"
    raise kind(f"{label} {ranks} of {trainer.world_size}: {message}") from error


def _distributed(trainer: pl.Trainer) -> bool:
    return trainer.world_size > 1 and dist.is_available() and dist.is_initialized()


def _gather_failures(trainer: pl.Trainer, error: Exception | None) -> list[Failure]:
    mine = None if error is None else (trainer.global_rank, type(error), str(error))
    parts: list[Any] = [None] * trainer.world_size
    dist.all_gather_object(parts, mine)
    return [part for part in parts if part is not None]


__all__ = ["raise_on_every_rank"]
