"""The staged training recipe of :mod:`vqe.cli.bench.quality`, run within a wall-clock budget.

Three stages, each a Hydra experiment composed from ``configs/`` and trained by the project's
own :func:`vqe.training.train.train` (no shelling out), each initialised from the previous
stage's last checkpoint through ``init_from``:

1. ``experiment=quality_stage1_lut``   — the LUT stage alone (``stage1_lut``), colour loss;
2. ``experiment=quality_stage2_unet``  — the U-Net on the frozen LUT (``stage2_unet``), L1 + MSE;
3. ``experiment=quality_stage3_joint`` — both stages together at a lower rate, L1 + MSE.

All losses are supervised (no critic is loaded: random critics carry no signal) and the data is
the clean-photo training pool (``configs/dataset/demo.yaml``'s ``train_pairs``: fresh degraded
crops of :data:`vqe.data.photos.TRAIN_PHOTOS` only, plus the demo's stored synthetic clips of
train photos; the demo's own validation clips are only watched, never selected on). Recipe
choices are made on the benchmark's VALIDATION clips (:data:`vqe.data.photos.VALIDATION_PHOTOS`)
and the TEST clips are only reported (``docs/evaluation.md``); the figures quoted below were
measured before that split, on the test photograph, and will be re-measured on validation.

**Budget.** ``minutes`` of wall time cover the three stages together, shared in the ratio of
:attr:`Stage.share`; each stage's share is taken of what is left when it starts, so a stage
that ends early or late passes the difference on. A stage runs by time, not by a step count
guessed in advance — on a shared 2-core machine the speed of a step changes several-fold within
minutes: ``trainer.max_time`` stops it, and its learning rate follows :func:`wall_clock_cosine`,
the project's warm-up + cosine schedule (:func:`vqe.training.schedules.warmup_cosine`) with
elapsed time in place of the step index, so the decay ends when the time does, however many
steps fitted. The steps each stage managed are recorded. A fixed ``steps`` per stage replaces
all that with the configured step-based schedule (CI's tiny run, or a reproducible recipe).
"""

from __future__ import annotations

import logging
import math
import shutil
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, OmegaConf
from torch.optim import SGD, Optimizer
from torch.optim.lr_scheduler import LambdaLR

from vqe.models.enhancer import CONFIG_DIR
from vqe.training.schedules import warmup_cosine
from vqe.training.train import train

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Stage:
    name: str  # stage1 / stage2 / stage3: run folder name
    experiment: str  # configs/experiment/<experiment>.yaml
    share: float  # fraction of the training budget
    checkpoint: str  # file name of its last checkpoint in the benchmark's folder


#: Most of the budget goes to the U-Net stages. The LUT stage learns its global correction in a
#: few hundred steps and then fits the five training photographs' colours more than unseen
#: ones (test clips: 300 steps 17.8 dB, 1391 steps 17.4 dB), while the U-Net's denoising and
#: deblocking keeps improving with steps. At a quiet 2-core machine's step rates (stage 1
#: ≈ 2.9 steps/s, stages 2–3 ≈ 1.4 steps/s) 20 minutes give about 520 / 770 / 650 steps.
STAGES = (
    Stage("stage1", "quality_stage1_lut", 0.15, "stage1.ckpt"),
    Stage("stage2", "quality_stage2_unet", 0.45, "stage2.ckpt"),
    Stage("stage3", "quality_stage3_joint", 0.40, "final.ckpt"),
)

#: Seconds of a stage spent before ``fit`` starts its clock (config, data, MAC count, trainer).
STARTUP_S = 5.0
#: A stage never gets less training time than this, even when earlier ones overran.
MIN_STAGE_S = 10.0
#: With a time budget the epoch count must stay finite (the module sizes its step-based
#: scheduler from it) but never be what stops a stage.
MANY_EPOCHS = 100_000

#: Overrides of every stage: no test loop (the benchmark measures the checkpoints itself, on its
#: own clips; the demo's test loop would load random critics) and no sanity validation.
COMMON_OVERRIDES = (
    "test=false",
    "trainer.num_sanity_val_steps=0",
    "trainer.min_epochs=0",  # else max_time could not stop a stage within its first epoch
)
#: What ``--tiny`` adds: the few-thousand-parameter preset, small crops and batches, one val batch.
TINY_OVERRIDES = (
    "model_vqe=tiny",
    "dataset.crop_size=[32,32]",
    "dataloader.batch_size=2",
    "dataloader.num_workers=0",
    "dataset.train_pairs.samples_per_epoch=8",
    "trainer.limit_val_batches=1",
    "trainer.log_every_n_steps=1",
    "callbacks.progress_bar.refresh_rate=0",
)


@dataclass
class StageResult:
    name: str
    experiment: str
    overrides: list[str]  # on top of COMMON_OVERRIDES and the experiment
    steps: int  # optimizer steps done
    seconds: float  # wall time of the whole stage, start-up included
    budget_seconds: float | None  # its share of the budget (None with fixed steps)
    checkpoint: str
    metrics: dict[str, float] = field(default_factory=dict)  # last logged train/ and val/ values


def compose_stage(
    stage: Stage, output_dir: Path, init_from: Path | None, overrides: Sequence[str]
) -> DictConfig:
    """The composed ``vqe.yaml`` of one stage (its run directory is ``output_dir``)."""
    arguments = [
        f"experiment={stage.experiment}",
        f"paths.output_dir={output_dir}",
        *COMMON_OVERRIDES,
        *overrides,
    ]
    if init_from is not None:
        arguments.append(f"init_from={init_from}")
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return compose(config_name="vqe", overrides=arguments)


def wall_clock_cosine(
    optimizer: Optimizer,
    total_steps: int,
    seconds: float,
    warmup_fraction: float = 0.05,
    final_lr_factor: float = 0.01,
) -> LambdaLR:
    """:func:`~vqe.training.schedules.warmup_cosine` over ``seconds`` of wall time from its
    creation (the start of ``fit``) instead of over ``total_steps`` steps, which it ignores.

    The factor of a step is that of the step-based schedule at the same fraction of the time;
    after ``seconds`` it stays at ``final_lr_factor``. A scheduler config: ``_partial_`` with
    ``seconds`` set, as :func:`run_recipe` does.
    """
    if seconds <= 0:
        raise ValueError(f"wall_clock_cosine: seconds must be positive, got {seconds}")
    resolution = 10_000  # the step-based schedule's factor, sampled at 10⁻⁴ of the time
    # Its factor function, taken from a scheduler on a throw-away optimizer (the real one's
    # learning rates stay untouched until the LambdaLR below).
    dummy = SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    shape = warmup_cosine(dummy, resolution, warmup_fraction, final_lr_factor).lr_lambdas[0]
    started = time.perf_counter()

    def factor(step: int) -> float:
        progress = min(1.0, (time.perf_counter() - started) / seconds)
        return shape(round(progress * resolution))

    return LambdaLR(optimizer, factor)


def _max_time(seconds: float) -> str:
    """Lightning's ``max_time`` as DD:HH:MM:SS (whole seconds, at least one)."""
    total = max(1, math.ceil(seconds))
    minutes, secs = divmod(total, 60)
    hours, minutes = divmod(minutes, 60)
    return f"00:{hours:02d}:{minutes:02d}:{secs:02d}"


def timed_overrides(seconds: float) -> list[str]:
    """Overrides that make a stage train for ``seconds`` with the wall-clock schedule."""
    return [
        f"+trainer.max_time={_max_time(seconds)}",
        "trainer.max_steps=-1",
        f"trainer.max_epochs={MANY_EPOCHS}",
        f"scheduler._target_={wall_clock_cosine.__module__}.{wall_clock_cosine.__name__}",
        f"+scheduler.seconds={seconds:.1f}",
    ]


def _last_checkpoint(outcome: dict[str, Any], run_dir: Path) -> Path:
    """The checkpoint of the weights a stage ended with, checked to hold its last step."""
    reported = outcome.get("last_checkpoint")
    path = Path(reported) if reported else run_dir / "checkpoints" / "last.ckpt"
    if not path.is_file():
        raise RuntimeError(f"training wrote no last checkpoint under {run_dir / 'checkpoints'}")
    saved = torch.load(path, map_location="cpu", weights_only=True).get("global_step")
    if saved != outcome.get("global_step"):
        raise RuntimeError(
            f"{path} holds step {saved}, but training ended at step {outcome.get('global_step')}: "
            "the stage's final weights were not saved"
        )
    return path


def run_recipe(
    out: Path,
    minutes: float | None,
    steps: Sequence[int] | None = None,
    tiny: bool = False,
    extra_overrides: Sequence[str] = (),
) -> list[StageResult]:
    """Train the three stages into ``out/runs/<stage>/`` and leave their last checkpoints at
    ``out/stage1.ckpt``, ``out/stage2.ckpt`` and ``out/final.ckpt``. Exactly one of
    ``minutes`` (the training budget) and ``steps`` (one count per stage) must be given."""
    if (minutes is None) == (steps is None):
        raise ValueError("give either a training budget in minutes or a fixed number of steps")
    if minutes is not None and not minutes > 0:
        raise ValueError(f"the training budget must be positive, got {minutes} minutes")
    if steps is not None and (len(steps) != len(STAGES) or min(steps) < 1):
        raise ValueError(f"give {len(STAGES)} step counts ≥ 1 (one per stage), got {list(steps)}")
    overrides = [*(TINY_OVERRIDES if tiny else ()), *extra_overrides]
    deadline = None if minutes is None else time.perf_counter() + 60.0 * minutes
    results: list[StageResult] = []
    init_from: Path | None = None
    for index, stage in enumerate(STAGES):
        started = time.perf_counter()
        run_dir = out / "runs" / stage.name
        if run_dir.exists():  # an earlier benchmark's run: start the stage afresh
            shutil.rmtree(run_dir)
        budget_s = None
        if deadline is not None:
            shares = sum(later.share for later in STAGES[index:])
            budget_s = max(0.0, deadline - started) * stage.share / shares
            seconds = max(MIN_STAGE_S, budget_s - STARTUP_S)
            stage_overrides = [*overrides, *timed_overrides(seconds)]
            plan = f"{seconds:.0f} s of training"
        else:
            assert steps is not None
            stage_steps = steps[index]
            stage_overrides = [
                *overrides, f"trainer.max_steps={stage_steps}", "trainer.max_epochs=-1"
            ]
            plan = f"{stage_steps} steps"
        print(f"[quality] {stage.name} ({stage.experiment}): {plan}", flush=True)
        outcome = train(compose_stage(stage, run_dir, init_from, stage_overrides))
        last = _last_checkpoint(outcome, run_dir)
        checkpoint = out / stage.checkpoint
        shutil.copyfile(last, checkpoint)
        # The run folder keeps its logs; its checkpoints are the copy above and a
        # best-by-validation pick the benchmark does not use (~15 MB each).
        shutil.rmtree(Path(last).parent, ignore_errors=True)
        result = StageResult(
            name=stage.name,
            experiment=stage.experiment,
            overrides=stage_overrides,
            steps=int(outcome.get("global_step", 0)),
            seconds=time.perf_counter() - started,
            budget_seconds=budget_s,
            checkpoint=str(checkpoint),
            metrics={
                key: value
                for key, value in outcome.items()
                if isinstance(value, float)
                and key.startswith(("train/", "val/"))
                and math.isfinite(value)
            },
        )
        log.info("%s: %d steps in %.0f s", stage.name, result.steps, result.seconds)
        results.append(result)
        init_from = checkpoint
    return results


def describe(results: Sequence[StageResult]) -> list[dict[str, Any]]:
    """JSON-ready stage records."""
    return [asdict(result) for result in results]


def recipe_summary(overrides: Sequence[str] = ()) -> dict[str, Any]:
    """What each stage's experiment sets, read from the composed configs (for the report)."""
    summary: dict[str, Any] = {}
    for stage in STAGES:
        cfg = compose_stage(stage, Path("unused"), None, overrides)
        weights = OmegaConf.to_container(cfg.loss.weights)
        assert isinstance(weights, dict)
        summary[stage.name] = {
            "experiment": stage.experiment,
            "share_of_budget": stage.share,
            "model": "lut" if cfg.model_vqe.unet is None else "lut_unet",
            "freeze_lut": bool(cfg.model_vqe.freeze_lut),
            "loss": {name: weight for name, weight in weights.items() if weight},
            "optimizer": str(cfg.optimizer._target_).rsplit(".", 1)[-1],
            "lr": float(cfg.optimizer.lr),
            "batch_size": int(cfg.dataloader.batch_size),
            "crop_size": list(cfg.dataset.crop_size),
            "train_query": cfg.dataset.train_query,
            "train_pairs_per_epoch": int(cfg.dataset.train_pairs.samples_per_epoch),
            "train_pairs_scale": list(cfg.dataset.train_pairs.scale),
        }
    return summary


__all__ = [
    "STAGES",
    "Stage",
    "StageResult",
    "compose_stage",
    "describe",
    "recipe_summary",
    "run_recipe",
    "timed_overrides",
    "wall_clock_cosine",
]
