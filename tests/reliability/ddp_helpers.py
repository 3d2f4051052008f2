"""Test-only pieces that ``train_vqe.py`` subprocesses import (their PYTHONPATH holds this folder).

:class:`NaNOnRank` is passed by config (``+callbacks.nan_on_rank._target_=ddp_helpers.NaNOnRank``)
so that every DDP rank builds it and one of them poisons its own batch: the failure one rank's
bad data causes, with nothing else changed.
"""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl


class NaNOnRank(pl.Callback):
    """Fills the input frames of the batch of global step ``step`` with NaN on rank ``rank``."""

    def __init__(self, rank: int, step: int = 1) -> None:
        super().__init__()
        self.rank = rank
        self.step = step

    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        if trainer.global_rank == self.rank and trainer.global_step == self.step:
            batch["x"].fill_(float("nan"))


__all__ = ["NaNOnRank"]
