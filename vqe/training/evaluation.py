"""Evaluate a checkpoint without training: the test loop of ``train_vqe.py`` on its own
(``vqe evaluate``, :mod:`vqe.cli.evaluate`, runs :func:`evaluate`).

Writes, into the run directory (``outputs/evaluate/<date>_<time>/``, or ``paths.output_dir=…``),
the layout of :mod:`vqe.metrics.results`: ``submission/`` holding exactly
``metrics_supervised.csv`` and ``metrics_unsupervised.csv`` (official schema — what the official
``score.py`` accepts), ``submission.zip`` (those two at the zip root, ready to upload;
``submission-random-critics.zip`` when the critics are random), ``score.json``,
``tables/quality.csv`` (PSNR, SSIM, LPIPS per supervised video) and ``tables/temporal.csv``
(flicker and warping error per video); prints the objective score (saying so when the critics
are random) and the table means, with a progress bar. ``evaluation.quality.*`` and
``evaluation.temporal.*`` choose the tables' measures. The enhancer is rebuilt from the
``model_vqe`` config stored in the checkpoint, so the training config is not needed. With
``dataset.path`` null it evaluates on the demo set's test split, with random critics allowed
(as the demo training run does).
"""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
from omegaconf import DictConfig
from pytorch_lightning.callbacks import TQDMProgressBar

from vqe.models.loading import enhancer_from_checkpoint
from vqe.training.callbacks import SubmissionWriter
from vqe.training.module import VQEModule
from vqe.training.run_dir import prepare_run_dir
from vqe.training.train import build, check_dataset_path, deliver_input_caches


def evaluate(cfg: DictConfig) -> dict[str, Any]:
    """Test ``cfg.ckpt`` on ``cfg.dataset``'s test split; returns the SubmissionWriter results."""
    check_dataset_path(cfg.dataset.path)
    pl.seed_everything(int(cfg.seed), workers=True)
    enhancer, model_config = enhancer_from_checkpoint(cfg.ckpt, key="ckpt")
    prepare_run_dir(cfg.paths.output_dir, False, bool(cfg.get("overwrite")), command="evaluation")
    datamodule = build(cfg.dataset)
    module = VQEModule(
        enhancer, metric_critics=build(cfg.evaluation.critics), model_config=model_config
    )
    deliver_input_caches(datamodule, module)
    quality, temporal = cfg.evaluation.quality, cfg.evaluation.temporal
    writer = SubmissionWriter(
        cfg.paths.output_dir,
        subset=cfg.evaluation.subset,
        flicker=temporal.flicker,
        warping_error=temporal.warping_error,
        flow_height=temporal.flow_height,
        quality=quality.enabled,
        lpips=quality.lpips,
        lpips_net=quality.lpips_net,
        lpips_backbone_weights=quality.lpips_backbone_weights,
        lpips_linear_weights=quality.lpips_linear_weights,
    )
    trainer: pl.Trainer = build(cfg.trainer, callbacks=[writer, TQDMProgressBar()], logger=False)
    trainer.test(module, datamodule=datamodule)
    return {"output_dir": str(cfg.paths.output_dir), "ckpt": str(cfg.ckpt), **writer.results}



__all__ = ["evaluate"]
