"""EMA of the enhancer's weights: Lightning's ``EMAWeightAveraging``, with one fix for vqe's flow.

Lightning's callback keeps an :class:`~torch.optim.swa_utils.AveragedModel` of the whole
LightningModule (the critics are shared, not copied: :class:`~vqe.critics.frozen.CriticHandle`),
swaps the average in for validation, writes it as each checkpoint's ``state_dict`` (the raw
weights go to ``current_model_state``) and copies it into the model when fit ends.

The fix: its ``on_load_checkpoint`` puts ``current_model_state`` — the *raw* weights — back into
the module whenever it holds an averaged model. That is right when resuming a fit, but
:func:`vqe.training.train.train` runs ``trainer.test(ckpt_path=best)`` on the same trainer after
fit, where the callback still holds its average: the test would silently score the raw weights.
Outside fit we keep the checkpoint's ``state_dict``, i.e. the average.
"""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.callbacks import EMAWeightAveraging
from pytorch_lightning.trainer.states import TrainerFn


class EMAWeights(EMAWeightAveraging):
    """``EMAWeightAveraging`` whose checkpoints load as their averaged weights outside fit."""

    def on_load_checkpoint(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        if trainer.state.fn == TrainerFn.FITTING:  # resuming: raw weights and average both back
            super().on_load_checkpoint(trainer, pl_module, checkpoint)


__all__ = ["EMAWeights"]
