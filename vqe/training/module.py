"""The LightningModule: an enhancer trained against frozen critics with a weighted loss.

* **fit** — ``training_step`` enhances the batch, asks the critics (only when a loss term needs
  them), applies :class:`~vqe.losses.WeightedLoss`, stops the run on a non-finite loss (naming
  the step and every term; under DDP on every rank at once, naming the rank — see
  :mod:`vqe.training.ranks`), and logs each term as ``train/<term>`` plus ``train/loss``.
* **validate** — the per-frame RMSE on the official ``(v − 128)/128`` scale against the targets,
  logged as ``val/rmse`` (the metric the best checkpoint is chosen by). Validation rows must
  have targets (``dataset.val_query`` selects supervised videos). Returns the enhanced frames
  so that :class:`~vqe.training.callbacks.ValidationImageGrid` can draw them.
* **divergence** — the enhancer's parameters and buffers are checked for NaN / inf at the start
  of each validation and in every checkpoint before it is written
  (:func:`~vqe.training.checkpoint_guards.check_finite_state`): a diverged model stops the run
  and is never saved (a BatchNorm statistic can go inf while the training loss stays finite).
* **test** — per frame: the RMSE (rows with a target) or ``[p, a1 … a11]`` from
  ``VQA(ŷ, x, DOVER(ŷ), DOVER(x))`` (rows without, computed in float32 with the metric
  critics); returned to :class:`~vqe.training.callbacks.SubmissionWriter`, which averages per
  video and writes the submission CSVs.

The critics are plain :class:`~vqe.critics.scorer.CriticScorer` objects, not submodules:
checkpoints hold the enhancer only. The resolved ``model_vqe`` config is saved as the
hyper-parameter ``model_config`` so a checkpoint can be evaluated without the training config.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytorch_lightning as pl
from torch import Tensor
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler

from vqe.conventions import vqa_scale_rmse
from vqe.critics.scorer import CriticScorer
from vqe.losses import LossInputs, WeightedLoss, check_finite
from vqe.models.enhancer import Enhancer
from vqe.training.checkpoint_guards import check_finite_state
from vqe.training.ranks import raise_on_every_rank

OptimizerFactory = Callable[..., Optimizer]
#: ``(optimizer, total_steps) -> scheduler``, see :mod:`vqe.training.schedules`.
SchedulerFactory = Callable[..., LRScheduler]


class VQEModule(pl.LightningModule):
    """Enhancer + frozen critics + weighted loss.

    Args:
        enhancer: the model being trained.
        loss: the training loss; None for a module that only validates / tests.
        optimizer: ``_partial_`` optimizer factory (``params`` is passed here).
        scheduler: ``_partial_`` of ``(optimizer, total_steps) -> LRScheduler``, or None.
        train_critics: critics for the loss (required when a loss term needs them).
        metric_critics: critics for the test metrics of rows without targets.
        model_config: the resolved ``model_vqe`` config, saved in checkpoints.
    """

    def __init__(
        self,
        enhancer: Enhancer,
        loss: WeightedLoss | None = None,
        optimizer: OptimizerFactory | None = None,
        scheduler: SchedulerFactory | None = None,
        train_critics: CriticScorer | None = None,
        metric_critics: CriticScorer | None = None,
        model_config: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters(
            ignore=[
                "enhancer",
                "loss",
                "optimizer",
                "scheduler",
                "train_critics",
                "metric_critics",
            ],
            logger=False,
        )
        if loss is not None and loss.needs_critics and train_critics is None:
            raise ValueError(
                "the loss has critic terms (vqa / dover) but no training critics were given"
            )
        self.enhancer = enhancer
        self.loss = loss
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        self.train_critics = train_critics
        self.metric_critics = metric_critics

    def forward(self, frames: Tensor) -> Tensor:
        return self.enhancer(frames)

    # ------------------------------------------------------------------ fit

    def training_step(self, batch: dict[str, Any], batch_index: int) -> Tensor:
        if self.loss is None:
            raise RuntimeError("VQEModule was built without a loss; it cannot train")
        inputs = batch["x"]
        output = self.enhancer.forward_with_weights(inputs)
        critics = None
        if self.loss.needs_critics:
            assert self.train_critics is not None
            critics = self.train_critics(
                output.frames,
                inputs,
                batch.get("dover_input"),
                known_input_features=batch.get("vqa_input"),
            )
        result = self.loss(LossInputs(inputs, output, batch.get("y"), critics))
        # On every rank at once: a rank stopping alone would leave the others in the all-reduce.
        raise_on_every_rank(self.trainer, lambda: check_finite(result, self.global_step))
        size = inputs.shape[0]
        logged = {f"train/{name}": value.detach() for name, value in result.terms.items()}
        logged["train/loss"] = result.total.detach()
        if critics is not None:
            logged["train/vqa_p"] = critics.p.detach().mean()
        # No sync_dist: under DDP, ranks may get batches of different kinds (with and without
        # targets) and so log different keys; a collective over them would hang.
        self.log_dict(logged, on_step=True, on_epoch=True, batch_size=size)
        return result.total

    def on_validation_epoch_start(self) -> None:
        # Collective too: BatchNorm statistics are updated per rank, so one rank can diverge.
        where = f"before validation, global step {self.global_step}"
        raise_on_every_rank(
            self.trainer, lambda: check_finite_state(self.enhancer.state_dict(), where)
        )

    def validation_step(self, batch: dict[str, Any], batch_index: int) -> dict[str, Tensor]:
        enhanced = self.enhancer(batch["x"])
        target = batch.get("y")
        if target is not None:
            rmse = vqa_scale_rmse(enhanced.float(), target.float())
            self.log("val/rmse", rmse.mean(), batch_size=rmse.numel(), sync_dist=True)
        return {"enhanced": enhanced}

    def test_step(self, batch: dict[str, Any], batch_index: int) -> dict[str, Tensor]:
        inputs = batch["x"]
        enhanced = self.enhancer(inputs).float()
        output: dict[str, Tensor] = {"enhanced": enhanced}
        target = batch.get("y")
        if target is not None:
            output["rmse"] = vqa_scale_rmse(enhanced, target.float())
        else:
            if self.metric_critics is None:
                raise RuntimeError(
                    "the test set has rows without targets, which are scored by the critics, but "
                    "this module has no metric critics"
                )
            scores = self.metric_critics(
                enhanced,
                inputs,
                batch.get("dover_input"),
                exact=True,
                known_input_features=batch.get("vqa_input"),
            )
            output["scores"] = scores.metric_row()
        return output

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # A checkpoint holds the model and the training state; the data settings live in the
        # run's .hydra/config.yaml. The datamodule's hyper-parameters would also carry objects
        # (its augmentation) that torch.load(weights_only=True) refuses on resume and evaluation.
        checkpoint.pop("datamodule_hyper_parameters", None)
        checkpoint.pop("datamodule_hparams_name", None)
        # Raising here stops Lightning before it writes the file: a diverged model is never
        # saved (nor does it replace the best one). EMA's raw weights are checked too.
        where = f"checkpoint at global step {self.global_step}"
        for key in ("state_dict", "current_model_state"):
            if key in checkpoint:
                check_finite_state(checkpoint[key], where)

    # ------------------------------------------------------------------ optimisation

    def configure_optimizers(self) -> Any:
        if self.optimizer_factory is None:
            raise RuntimeError("VQEModule was built without an optimizer; it cannot train")
        parameters = [p for p in self.enhancer.parameters() if p.requires_grad]
        if not parameters:
            raise ValueError(
                "every enhancer stage is frozen (model_vqe.freeze_lut / freeze_unet): nothing "
                "to train"
            )
        optimizer = self.optimizer_factory(params=parameters)
        if self.scheduler_factory is None:
            return optimizer
        total_steps = int(self.trainer.estimated_stepping_batches)
        scheduler = self.scheduler_factory(optimizer=optimizer, total_steps=max(1, total_steps))
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step", "frequency": 1},
        }


__all__ = ["VQEModule"]
