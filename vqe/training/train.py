"""``train(cfg) -> dict``: build everything from a composed ``configs/vqe.yaml``, fit, test.

Called by ``train_vqe.py`` (Hydra) and by the tests (``hydra.compose``). Order of work:

1. seed everything; build the datamodule, the enhancer (and load ``init_from``);
2. check the MAC budget on the deploy graph (refuse an over-budget model unless
   ``allow_over_budget=true``); log MACs and parameter counts once;
3. build the loss (critics only when a term needs them), the metric critics (only when
   ``test``), the module, callbacks, loggers and trainer;
4. ``trainer.fit`` (``ckpt_path`` resumes), then ``trainer.test`` on the best checkpoint (or
   the current weights when there is none), which writes the submission CSVs.

The config is never modified: run-time choices are made by interpolation in the configs.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.callbacks import ModelCheckpoint

from vqe.critics.scorer import CriticScorer
from vqe.losses import WeightedLoss, build_loss
from vqe.macs import MacReport, check_budget
from vqe.models.enhancer import Enhancer
from vqe.training import resolvers  # noqa: F401  (registers the config resolvers)
from vqe.training.callbacks import SubmissionWriter
from vqe.training.checkpoints import init_enhancer
from vqe.training.module import VQEModule
from vqe.training.quality_table import report_quality

log = logging.getLogger(__name__)


def build(node: Any, **kwargs: Any) -> Any:
    """``hydra.utils.instantiate`` on a resolved copy of ``node``.

    Instantiating the live config would resolve node interpolations such as
    ``critics.vqa: ${model_vqa}`` in place — writing into ``cfg.model_vqa``. The copy keeps the
    composed config exactly as it was.
    """
    return instantiate(OmegaConf.to_container(node, resolve=True), **kwargs)


def instantiate_group(group: Mapping[str, Any] | None) -> list[Any]:
    """Build every ``_target_`` entry of a callbacks / logger group (None: nothing)."""
    if not group:
        return []
    built = []
    for name, node in group.items():
        if not isinstance(node, Mapping) or "_target_" not in node:
            raise ValueError(f"config entry {name!r} has no _target_; cannot build it")
        built.append(build(node))
    return built


def check_dataset_path(path: str | None) -> None:
    """A clear error, with the ways to make a dataset, when ``dataset.path`` is not a folder."""
    if path is None or Path(path).expanduser().is_dir():
        return
    raise FileNotFoundError(
        f"dataset.path={path}: no such folder. A dataset root holds train.csv, test.csv and the "
        "frames they list. Build one from the challenge data (official layout) with "
        "`python -m vqe.data.build source_dir=<challenge data> out_dir=<root>`, or the small demo "
        "set with `python -m vqe.data.demo <root>`; or leave dataset.path null to train on the "
        "embedded demo set."
    )


def _check_config(cfg: DictConfig) -> None:
    check_dataset_path(cfg.dataset.path)
    if cfg.previous_stage and not cfg.init_from:
        raise ValueError(
            f"experiment {cfg.task_name} starts from a {cfg.previous_stage} checkpoint: set "
            f"init_from=<{cfg.previous_stage} run dir>/checkpoints/last.ckpt (or its best-*.ckpt)"
        )


def _check_input_dover(cfg: DictConfig) -> None:
    """``critics.input_dover=cache`` needs training inputs that are stored frames as they are."""
    if cfg.critics.get("input_dover") != "cache":
        return
    changes = [
        key
        for key, value in (
            ("dataset.pair_synthesis", cfg.dataset.get("pair_synthesis")),
            ("dataset.crop_size", cfg.dataset.get("crop_size")),
            ("dataset.train_pairs", cfg.dataset.get("train_pairs")),
        )
        if value is not None
    ]
    if changes:
        raise ValueError(
            f"critics.input_dover=cache reads DOVER(x) of whole stored frames, but {changes} "
            "change the training inputs, and DOVER(x) must be computed on the view DOVER(ŷ) "
            "sees. Use critics.input_dover=auto (the default: cache where the input is a "
            "stored frame, computed otherwise), or train on whole frames with view=official"
        )


def build_enhancer(cfg: DictConfig) -> Enhancer:
    enhancer = build(cfg.model_vqe)
    if not isinstance(enhancer, Enhancer):
        raise TypeError(f"model_vqe built a {type(enhancer).__name__}, not a vqe Enhancer")
    if cfg.init_from:
        init_enhancer(enhancer, cfg.init_from)
    return enhancer


def model_size(enhancer: Enhancer, report: MacReport) -> dict[str, float]:
    """What is logged once per run: GMAC per 720p frame, total and trainable parameters."""
    parameters = list(enhancer.parameters())
    return {
        "model/gmac_per_720p_frame": report.gmacs,
        "model/parameters": float(sum(p.numel() for p in parameters)),
        "model/trainable_parameters": float(sum(p.numel() for p in parameters if p.requires_grad)),
    }


def _log_once(trainer: pl.Trainer, cfg: DictConfig, size: Mapping[str, float]) -> None:
    hyperparameters = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(hyperparameters, dict)
    for logger in trainer.loggers:
        logger.log_hyperparams(hyperparameters)
        logger.log_metrics(dict(size), step=0)


def build_module(cfg: DictConfig, enhancer: Enhancer) -> VQEModule:
    loss: WeightedLoss = build_loss(OmegaConf.to_container(cfg.loss, resolve=True))
    if loss.needs_critics:
        _check_input_dover(cfg)
    train_critics: CriticScorer | None = build(cfg.critics) if loss.needs_critics else None
    metric_critics: CriticScorer | None = build(cfg.evaluation.critics) if cfg.test else None
    scheduler = cfg.get("scheduler")
    model_config = OmegaConf.to_container(cfg.model_vqe, resolve=True)
    assert isinstance(model_config, dict)
    return VQEModule(
        enhancer,
        loss=loss,
        optimizer=build(cfg.optimizer),
        scheduler=build(scheduler) if scheduler else None,
        train_critics=train_critics,
        metric_critics=metric_critics,
        model_config=model_config,
    )


def train(cfg: DictConfig) -> dict[str, Any]:
    """Fit and/or test as ``cfg`` says; returns the final metrics, test results and paths."""
    _check_config(cfg)
    pl.seed_everything(int(cfg.seed), workers=True)
    datamodule = build(cfg.dataset)
    enhancer = build_enhancer(cfg)
    report = check_budget(enhancer, limit=float(cfg.mac_limit), allow_over=cfg.allow_over_budget)
    size = model_size(enhancer, report)
    log.info(
        "enhancer: %.3f GMAC per 1280×720 frame (limit %.1f), %d parameters (%d trainable)",
        report.gmacs,
        float(cfg.mac_limit) / 1e9,
        int(size["model/parameters"]),
        int(size["model/trainable_parameters"]),
    )
    module = build_module(cfg, enhancer)
    callbacks = instantiate_group(cfg.get("callbacks"))
    loggers = instantiate_group(cfg.get("logger"))
    trainer: pl.Trainer = build(cfg.trainer, callbacks=callbacks, logger=loggers or False)
    _log_once(trainer, cfg, size)

    results: dict[str, Any] = {"output_dir": str(cfg.paths.output_dir), **size}
    if cfg.train:
        trainer.fit(module, datamodule=datamodule, ckpt_path=cfg.ckpt_path, weights_only=True)
        results.update(_scalars(trainer.callback_metrics))
    best, last = _checkpoint_paths(trainer)
    results["best_checkpoint"] = best or None
    results["last_checkpoint"] = last or None
    results["global_step"] = trainer.global_step
    if cfg.test:
        # The best checkpoint when fit wrote one; otherwise the weights in memory.
        trainer.test(module, datamodule=datamodule, ckpt_path=best or None, weights_only=True)
        results.update(_scalars(trainer.callback_metrics))
        writers = [c for c in trainer.callbacks if isinstance(c, SubmissionWriter)]
        if writers:
            results["test"] = writers[0].results
        if cfg.get("quality_table") and getattr(datamodule, "test_set", None) is not None:
            # Input vs baseline vs model on the frames the test loop just scored.
            results["quality_table"] = report_quality(module.enhancer, datamodule.test_set)
    return results


def _checkpoint_paths(trainer: pl.Trainer) -> tuple[str, str]:
    """The best checkpoint (of the monitored ModelCheckpoint) and the latest one: the
    unmonitored ModelCheckpoint's file, or a ``save_last`` file; "" where there is none."""
    best = last = ""
    for callback in trainer.checkpoint_callbacks:
        if not isinstance(callback, ModelCheckpoint):
            continue
        if callback.monitor is not None:
            best = best or callback.best_model_path
        latest = callback.last_model_path or (
            callback.best_model_path if callback.monitor is None else ""
        )
        last = last or latest
    return best, last if last and Path(last).is_file() else ""


def _scalars(metrics: Mapping[str, Any]) -> dict[str, float]:
    return {
        name: float(value)
        for name, value in metrics.items()
        if isinstance(value, (int, float)) or (torch.is_tensor(value) and value.numel() == 1)
    }


__all__ = [
    "build",
    "build_enhancer",
    "build_module",
    "check_dataset_path",
    "instantiate_group",
    "model_size",
    "train",
]
