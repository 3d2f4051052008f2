"""``train(cfg) -> dict``: build everything from a composed ``configs/vqe.yaml``, fit, test.

Called by ``train_vqe.py`` (Hydra) and by the tests (``hydra.compose``). Order of work:

1. seed everything; build the datamodule, the enhancer (and load ``init_from``);
2. check the MAC budget on the deploy graph (refuse an over-budget model unless
   ``allow_over_budget=true``); log MACs and parameter counts once;
3. build the loss (critics only when a term needs them), the metric critics (only when
   ``test``), the module, callbacks, loggers and trainer;
4. ``trainer.fit`` (``ckpt_path`` resumes), then ``trainer.test`` on the best checkpoint (or
   the current weights when there is none), which writes the submission CSVs.

Safe to interrupt: SIGTERM or Ctrl-C stops at the next step with ``checkpoints/last.ckpt``
(:class:`~vqe.training.callbacks.ResumeCheckpoint`) and raises :class:`TrainingInterrupted`,
which names the command that resumes the run; a resume keeps the earlier rows of
``csv/metrics.csv`` (:class:`~vqe.training.loggers.HistoryCSVLogger`). :func:`run_training`
(what ``train_vqe.py`` calls) turns that, and the errors that are the user's to fix, into one
logged line and an exit code.

The config is never modified: run-time choices are made by interpolation in the configs.
"""

from __future__ import annotations

import errno
import logging
import os
import shlex
import signal
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.utilities.exceptions import SIGTERMException

from vqe.critics.scorer import CriticScorer
from vqe.losses import NonFiniteLossError, WeightedLoss, build_loss
from vqe.macs import MacBudgetError, MacReport, check_budget
from vqe.models.enhancer import Enhancer
from vqe.models.loading import (
    ENHANCER_PREFIX,
    CheckpointError,
    init_enhancer,
    read_checkpoint,
    shape_mismatches,
)
from vqe.training.callbacks import Interruption, ResumeCheckpoint, SubmissionWriter
from vqe.training.checkpoint_guards import NonFiniteStateError, read_resume_checkpoint
from vqe.training.comparison_table import report_comparison
from vqe.training.config_checks import ConfigError, check_numbers
from vqe.training.loggers import HistoryCSVLogger
from vqe.training.module import VQEModule
from vqe.training.run_dir import prepare_run_dir

log = logging.getLogger(__name__)

#: The stock CSVLogger deletes metrics.csv in a non-empty folder; a resume builds it as
#: HistoryCSVLogger, which keeps the rows.
STOCK_CSV_LOGGERS = (
    "pytorch_lightning.loggers.CSVLogger",
    "pytorch_lightning.loggers.csv_logs.CSVLogger",
)
#: The name Lightning (and ModelCheckpoint) give the latest checkpoint: ckpt_path=last.
LAST_CHECKPOINT = ModelCheckpoint.CHECKPOINT_NAME_LAST + ModelCheckpoint.FILE_EXTENSION


class TrainingInterrupted(Exception):
    """SIGTERM or Ctrl-C stopped the run; :attr:`exit_code` is 128 + the signal number."""

    def __init__(self, message: str, signum: signal.Signals, checkpoint: Path | None) -> None:
        super().__init__(message)
        self.signal = signum
        self.checkpoint = checkpoint
        self.exit_code = 128 + int(signum)


#: A write that failed for want of room (disk full, quota): reported in one line, exit 1.
FULL_DISK_ERRNOS = (errno.ENOSPC, errno.EDQUOT)
#: Errors that are the user's to fix: :func:`run_training` logs their message, no traceback.
REPORTED_ERRORS = (
    ConfigError,
    CheckpointError,
    FileNotFoundError,
    MacBudgetError,
    NonFiniteLossError,
    NonFiniteStateError,
)


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
            raise ConfigError(f"config entry {name!r} has no _target_; cannot build it")
        built.append(build(node))
    return built


def check_dataset_path(path: str | None) -> None:
    """A clear error, with the ways to make a dataset, when ``dataset.path`` is not a folder."""
    if path is None or Path(path).expanduser().is_dir():
        return
    raise FileNotFoundError(
        f"dataset.path={path}: no such folder. A dataset root holds train.csv, test.csv and the "
        "frames they list. Build one from the challenge data (official layout) with "
        "`vqe build source_dir=<challenge data> out_dir=<root>`, or the small demo set with "
        "`vqe demo <root>`; or leave dataset.path null to train on the "
        "embedded demo set."
    )


def _check_config(cfg: DictConfig) -> None:
    check_numbers(cfg)
    check_dataset_path(cfg.dataset.path)
    if cfg.previous_stage and not cfg.init_from:
        raise ConfigError(
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
        raise ConfigError(
            f"critics.input_dover=cache reads DOVER(x) of whole stored frames, but {changes} "
            "change the training inputs, and DOVER(x) must be computed on the view DOVER(ŷ) "
            "sees. Use critics.input_dover=auto (the default: cache where the input is a "
            "stored frame, computed otherwise), or train on whole frames with view=official"
        )


def deliver_input_caches(datamodule: Any, module: VQEModule) -> None:
    """Let the data pipeline serve DOVER(x) and the VQA's features of x for stored frames in
    the batches, computed by the critics that read them (training rows: the training critics;
    test rows: the metric critics), so that the critics work on tensors only and skip what a
    fixed input view makes constant. A datamodule without the hook is left alone: its critics
    then compute everything on the batch."""
    score_inputs_with = getattr(datamodule, "score_inputs_with", None)
    if score_inputs_with is None:
        return
    train, test = module.train_critics, module.metric_critics
    score_inputs_with(
        fit=train.cache_scorer if train is not None else None,
        test=test.cache_scorer if test is not None else None,
        fit_features=train.cache_encoder if train is not None else None,
        test_features=test.cache_encoder if test is not None else None,
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


def _log_once(
    trainer: pl.Trainer, cfg: DictConfig, size: Mapping[str, float], resuming: bool
) -> None:
    hyperparameters = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(hyperparameters, dict)
    for logger in trainer.loggers:
        logger.log_hyperparams(hyperparameters)
        if not resuming:  # the sizes are logged once per run, at step 0
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


def build_loggers(group: DictConfig | None, resuming: bool) -> list[Any]:
    """The ``logger`` group; when resuming, a stock CSVLogger keeps the rows already logged."""
    if not resuming or not group:
        return instantiate_group(group)
    nodes = OmegaConf.to_container(group, resolve=True)  # a resolved copy: cfg stays as it is
    assert isinstance(nodes, dict)
    for node in nodes.values():
        if isinstance(node, dict) and node.get("_target_") in STOCK_CSV_LOGGERS:
            node["_target_"] = _qualname(HistoryCSVLogger)
    return instantiate_group(OmegaConf.create(nodes))


def _qualname(kind: type) -> str:
    return f"{kind.__module__}.{kind.__qualname__}"


def _checkpoint_dirs(callbacks: Sequence[Any], output_dir: str | Path) -> list[Path]:
    """Where the ModelCheckpoint callbacks write (the run's checkpoints/ when unset)."""
    dirs = [Path(c.dirpath) for c in callbacks if isinstance(c, ModelCheckpoint) and c.dirpath]
    return list(dict.fromkeys(dirs)) or [Path(output_dir) / "checkpoints"]


def resume_path(
    ckpt_path: str | None, callbacks: Sequence[Any], output_dir: str | Path
) -> str | None:
    """``ckpt_path`` as a checked file: ``last`` is the run's newest ``last.ckpt`` (an error when
    there is none, where Lightning would silently start afresh); the file must be a checkpoint
    Lightning can resume from (else a :class:`CheckpointError` naming it)."""
    if ckpt_path is None:
        return None
    path = Path(str(ckpt_path)).expanduser()
    if str(ckpt_path) == ModelCheckpoint.CHECKPOINT_NAME_LAST:
        dirs = _checkpoint_dirs(callbacks, output_dir)
        found = [d / LAST_CHECKPOINT for d in dirs if (d / LAST_CHECKPOINT).is_file()]
        if not found:
            raise ConfigError(
                f"ckpt_path=last: no {LAST_CHECKPOINT} in {', '.join(map(str, dirs))}. Resume a "
                "run in its own directory with ckpt_path=last hydra.run.dir=<that run's "
                "directory>, or give the file: ckpt_path=<run dir>/checkpoints/last.ckpt"
            )
        path = max(found, key=lambda candidate: candidate.stat().st_mtime)
    read_resume_checkpoint(path, key="ckpt_path")
    return str(path)


def check_resume_matches(module: VQEModule, ckpt_path: str) -> None:
    """A :class:`CheckpointError` naming the differences when the checkpoint to resume holds
    another enhancer than ``model_vqe`` builds (Lightning would stop with a traceback)."""
    stored = read_checkpoint(ckpt_path, key="ckpt_path")["state_dict"]
    prefix = ENHANCER_PREFIX
    own = {k[len(prefix) :]: v for k, v in stored.items() if k.startswith(prefix)}
    problems = shape_mismatches(module.enhancer, own)
    if problems:
        shown = "; ".join(problems[:3]) + (
            f"; and {len(problems) - 3} more" if len(problems) > 3 else ""
        )
        raise CheckpointError(
            f"ckpt_path={ckpt_path}: was trained with another model_vqe than this run builds "
            f"({shown}); resume with the run's own model_vqe (see its .hydra/config.yaml), or "
            "start a new run from its weights with init_from=<checkpoint>"
        )


def resume_command(run_dir: str | Path) -> str:
    """The command line that resumes this run in ``run_dir`` (Hydra's overrides, if known)."""
    from hydra.core.hydra_config import HydraConfig

    if HydraConfig.initialized():
        hydra_cfg = HydraConfig.get()
        config_name = hydra_cfg.job.config_name
        overrides = [
            o
            for o in hydra_cfg.overrides.task
            if not o.startswith(("ckpt_path=", "hydra.run.dir="))
        ]
        program = [sys.executable, sys.argv[0]]  # train_vqe.py, run again by this interpreter
        main_spec = getattr(sys.modules.get("__main__"), "__spec__", None)
        if main_spec is not None and main_spec.name == "vqe.cli.train":  # vqe train, python -m
            program = ["vqe", "train"]
        head = [*program, f"--config-name={config_name}", *overrides]
    else:  # train(cfg) called from Python: the caller knows its overrides
        head = ["python", "train_vqe.py", "--config-name=vqe", "<the same overrides>"]
    return shlex.join([*head, "ckpt_path=last", f"hydra.run.dir={run_dir}"])


def _interrupted(trainer: pl.Trainer, cfg: DictConfig) -> TrainingInterrupted:
    """What stopped the run, where it was saved, and how to go on."""
    guards = [c for c in trainer.callbacks if isinstance(c, ResumeCheckpoint)]
    stop = (guards[0].interruption if guards else None) or Interruption(signal.SIGTERM, None)
    dirs = _checkpoint_dirs(trainer.callbacks, cfg.paths.output_dir)
    last = [d / LAST_CHECKPOINT for d in dirs if (d / LAST_CHECKPOINT).is_file()]
    head = f"training interrupted by {stop.signal.name} at global step {trainer.global_step}"
    if stop.checkpoint is not None:
        saved = f"saved {stop.checkpoint}"
    elif last:
        saved = f"nothing trained since {last[0]}"
    else:  # nothing to resume from: the same command starts the run again
        message = f"{head}: no checkpoint to resume from (no step was saved); run it again"
        return TrainingInterrupted(message, stop.signal, None)
    message = (
        f"{head}: {saved}. Resume it, from {os.getcwd()}, with:\n"
        f"  {resume_command(cfg.paths.output_dir)}"
    )
    return TrainingInterrupted(message, stop.signal, stop.checkpoint or last[0])


def train(cfg: DictConfig) -> dict[str, Any]:
    """Fit and/or test as ``cfg`` says; returns the final metrics, test results and paths.

    Raises :class:`TrainingInterrupted` on SIGTERM / Ctrl-C (see the module docstring)."""
    _check_config(cfg)
    pl.seed_everything(int(cfg.seed), workers=True)
    callbacks = instantiate_group(cfg.get("callbacks"))
    ckpt_path = resume_path(cfg.ckpt_path, callbacks, cfg.paths.output_dir) if cfg.train else None
    removed = prepare_run_dir(
        cfg.paths.output_dir, resuming=ckpt_path is not None, overwrite=bool(cfg.get("overwrite"))
    )
    if removed:
        log.warning("overwrite=true: removed the earlier run's %s", ", ".join(removed))
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
    if ckpt_path is not None:
        check_resume_matches(module, ckpt_path)
    deliver_input_caches(datamodule, module)
    loggers = build_loggers(cfg.get("logger"), resuming=ckpt_path is not None)
    trainer: pl.Trainer = build(cfg.trainer, callbacks=callbacks, logger=loggers or False)
    _log_once(trainer, cfg, size, resuming=ckpt_path is not None)
    try:
        return _fit_and_test(cfg, trainer, module, datamodule, ckpt_path, size)
    except SIGTERMException as stop:  # Lightning's SystemExit, which would exit 0
        raise _interrupted(trainer, cfg) from stop


def _fit_and_test(
    cfg: DictConfig,
    trainer: pl.Trainer,
    module: VQEModule,
    datamodule: Any,
    ckpt_path: str | None,
    size: Mapping[str, float],
) -> dict[str, Any]:
    results: dict[str, Any] = {"output_dir": str(cfg.paths.output_dir), **size}
    if cfg.train:
        trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True)
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
            results["quality_table"] = report_comparison(module.enhancer, datamodule.test_set)
    return results


def run_training(cfg: DictConfig) -> int:
    """:func:`train`, as ``train_vqe.py`` runs it: returns the exit code. An interruption
    (143 / 130) and the errors that are the user's to fix (1) are logged in one message each,
    without a traceback; anything else is a bug and raises."""
    try:
        train(cfg)
    except TrainingInterrupted as stop:
        log.warning("%s", stop)
        return stop.exit_code
    except REPORTED_ERRORS as error:
        log.error("%s", error)
        return 1
    except OSError as error:
        if error.errno not in FULL_DISK_ERRNOS:
            raise
        where = error.filename or cfg.paths.output_dir
        log.error(
            "%s: %s; what was written before is intact (checkpoints are renamed into place only "
            "when complete). Free some space, then resume with ckpt_path=last hydra.run.dir=%s",
            where,
            os.strerror(error.errno),
            cfg.paths.output_dir,
        )
        return 1
    return 0


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
    "REPORTED_ERRORS",
    "ConfigError",
    "TrainingInterrupted",
    "build",
    "build_loggers",
    "build_enhancer",
    "build_module",
    "check_dataset_path",
    "instantiate_group",
    "model_size",
    "resume_command",
    "resume_path",
    "run_training",
    "train",
]
