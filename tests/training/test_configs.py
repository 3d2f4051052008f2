"""Config composition: every option of every group, every experiment, the demo switch, errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import config_helpers
import pytest
import pytorch_lightning as pl
import torch
from hydra.errors import ConfigCompositionException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from vqe.critics.scorer import CriticScorer
from vqe.losses import WeightedLoss, build_loss
from vqe.models.enhancer import Enhancer
from vqe.training.train import build, instantiate_group

REPO = Path(__file__).resolve().parents[2]
CONFIG_DIR = REPO / "configs"
GROUPS = (
    "dataset",
    "dataloader",
    "augmentation",
    "model_vqe",
    "model_vqa",
    "model_dover",
    "loss",
    "optimizer",
    "scheduler",
    "trainer",
    "callbacks",
    "logger",
    "evaluation",
    "experiment",
    "debug",
)


def options(group: str) -> list[str]:
    return sorted(path.stem for path in (CONFIG_DIR / group).glob("*.yaml"))


def compose_config(name: str, overrides: list[str]) -> DictConfig:
    return config_helpers.compose_config(name, overrides)


#: Real-data mode: the demo leaves the critic term out (configs/demo/demo.yaml).
REAL = ("dataset=official", "dataset.path=/data/vqe")


def test_the_demo_trains_without_the_random_critics_term(tmp_path: Path) -> None:
    assert compose_vqe(tmp_path).loss.weights.vqa == 0
    assert compose_vqe(tmp_path, *REAL).loss.weights.vqa == 1
    assert compose_vqe(tmp_path, "loss.weights.vqa=1.0").loss.weights.vqa == 1


def compose_vqe(tmp_path: Path, *overrides: str) -> DictConfig:
    return compose_config("vqe", [f"paths.output_dir={tmp_path}", *overrides])


@pytest.mark.parametrize(
    ("group", "option"), [(group, option) for group in GROUPS for option in options(group)]
)
def test_every_group_option_composes_and_resolves(tmp_path: Path, group: str, option: str) -> None:
    extra = ["dataset.path=/data/vqe"] if (group, option) == ("dataset", "official") else []
    cfg = compose_vqe(tmp_path, f"{group}={option}", *extra)
    resolved = OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)
    assert isinstance(resolved, dict) and resolved["trainer"]["use_distributed_sampler"] is False


def test_every_group_has_options_and_vqe_yaml_selects_one_of_each() -> None:
    defaults = OmegaConf.to_container(OmegaConf.load(CONFIG_DIR / "vqe.yaml").defaults)
    chosen = {
        key: value for entry in defaults if isinstance(entry, dict) for key, value in entry.items()
    }
    for group in GROUPS:
        assert options(group), f"configs/{group}/ has no yaml"
        assert group in chosen and (chosen[group] is None or chosen[group] in options(group))


def test_the_demo_settings_follow_the_dataset_choice(tmp_path: Path) -> None:
    demo = compose_vqe(tmp_path)
    assert demo.dataset.path is None and demo.demo is True
    assert demo.model_vqa.allow_random_critics and demo.model_dover.allow_random_critics
    assert demo.loss.terms.lpips.allow_random_backbone
    assert (demo.model_dover.num_frames, demo.model_dover.num_technical_clips) == (2, 1)
    assert demo.evaluation.critics.dover.num_frames == 2 and demo.evaluation.subset
    assert demo.trainer.max_epochs == 2

    # A demo set built elsewhere keeps the demo settings (the datamodule checks its demo.json).
    elsewhere = compose_vqe(tmp_path, "dataset.path=/data/demo")
    assert elsewhere.demo and elsewhere.dataset.demo_set and elsewhere.trainer.max_epochs == 2

    real = compose_vqe(tmp_path, *REAL)
    assert real.demo is False and real.dataset.demo_set is False and not real.allow_random_critics
    assert not real.model_vqa.allow_random_critics and not real.model_dover.allow_random_critics
    assert (real.model_dover.num_frames, real.model_dover.num_technical_clips) == (32, 3)
    official = real.evaluation.critics.dover
    assert (official.num_frames, official.num_technical_clips, official.differentiable) == (
        32,
        3,
        False,
    )
    assert real.evaluation.subset is False and real.trainer.max_epochs == 100


def test_experiments_select_their_stage(tmp_path: Path) -> None:
    stage1 = compose_vqe(tmp_path, "experiment=stage1_lut")
    assert stage1.model_vqe.unet is None and stage1.model_vqe.lut is not None
    assert stage1.loss.weights.colour > 0 and stage1.loss.weights.vqa == 0
    assert stage1.previous_stage is None and stage1.task_name == "stage1_lut"

    stage2 = compose_vqe(tmp_path, "experiment=stage2_unet", "model_vqe=tiny")
    assert stage2.model_vqe.freeze_lut and stage2.model_vqe.unet is not None
    assert stage2.loss.weights.lpips > 0 and stage2.loss.weights.vqa == 0
    assert stage2.previous_stage == "stage1_lut"
    assert "unsupervised" not in stage2.dataset.train_query

    stage3 = compose_vqe(tmp_path, "experiment=stage3_joint", *REAL)
    assert stage3.loss.weights.vqa > 0 and not stage3.model_vqe.freeze_lut
    assert stage3.optimizer.lr < stage2.optimizer.lr and stage3.previous_stage == "stage2_unet"


def test_building_blocks_instantiate(tmp_path: Path) -> None:
    cfg = compose_vqe(tmp_path, "model_vqe=tiny", "dataloader.pin_memory=false")
    parameter = torch.nn.Parameter(torch.zeros(3))
    optimizer = instantiate(cfg.optimizer)(params=[parameter])
    assert isinstance(optimizer, torch.optim.Adam) and optimizer.defaults["lr"] == cfg.optimizer.lr
    scheduler = instantiate(cfg.scheduler)(optimizer=optimizer, total_steps=100)
    rates = []
    for _ in range(100):
        rates.append(scheduler.get_last_lr()[0])
        optimizer.step()
        scheduler.step()
    assert max(rates) == pytest.approx(cfg.optimizer.lr, rel=0.05) and rates[-1] < 0.05 * max(rates)
    assert isinstance(instantiate(cfg.model_vqe), Enhancer)
    names = {type(callback).__name__ for callback in instantiate_group(cfg.callbacks)}
    assert {"ModelCheckpoint", "LearningRateMonitor", "TQDMProgressBar"} <= names
    assert {"SubmissionWriter", "ValidationImageGrid"} <= names
    loggers = {type(logger).__name__ for logger in instantiate_group(cfg.logger)}
    assert loggers == {"CSVLogger", "TensorBoardLogger"}
    trainer = instantiate(cfg.trainer, logger=False, enable_progress_bar=False)
    assert isinstance(trainer, pl.Trainer)
    for preset in ("gpu", "ddp"):
        gpu = compose_vqe(tmp_path, f"trainer={preset}").trainer
        assert gpu.accelerator == "gpu" and gpu.precision == "bf16-mixed"
    ddp = compose_vqe(tmp_path, "trainer=ddp", "trainer.num_nodes=4").trainer
    assert ddp.strategy == "ddp" and ddp.num_nodes == 4 and ddp.sync_batchnorm


@pytest.mark.parametrize("preset", ["reference", "supervised", "colour", "joint"])
def test_loss_presets_build(tmp_path: Path, preset: str) -> None:
    loss = build_loss(compose_vqe(tmp_path, f"loss={preset}", *REAL).loss)
    assert isinstance(loss, WeightedLoss) and loss.terms
    assert loss.needs_critics == (preset in ("reference", "joint"))


def test_the_empty_base_loss_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no term has a non-zero weight"):
        build_loss(compose_vqe(tmp_path, "loss=base").loss)


def test_critics_and_metric_critics_build_from_config(tmp_path: Path) -> None:
    cfg = compose_vqe(tmp_path)
    with pytest.warns(RuntimeWarning, match="RANDOM"):
        scorer = build(cfg.critics)
    assert isinstance(scorer, CriticScorer) and scorer.input_dover == "auto"
    assert scorer.dover.module.settings.num_frames == 2


def test_evaluate_config_composes(tmp_path: Path) -> None:
    cfg = compose_config("evaluate", [f"paths.output_dir={tmp_path}", "ckpt=/runs/last.ckpt"])
    resolved = OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)
    assert resolved["demo"] is True and resolved["evaluation"]["subset"] is True
    with pytest.raises(Exception, match="ckpt"):
        OmegaConf.to_container(
            compose_config("evaluate", [f"paths.output_dir={tmp_path}"]),
            resolve=True,
            throw_on_missing=True,
        )


def test_an_unknown_key_is_hydras_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigCompositionException, match="Could not override 'trainer.epochs'"):
        compose_vqe(tmp_path, "trainer.epochs=3")


def test_the_entry_script_refuses_unknown_keys_in_one_line(tmp_path: Path) -> None:
    completed = subprocess.run(
        [sys.executable, str(REPO / "train_vqe.py"), "--config-name=vqe", "no_such_key=1"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode != 0
    # One line, naming the key and how to add a new one (no near match exists for this one).
    assert completed.stderr.strip() == (
        "error: no config key 'no_such_key' (to add a new one, write +no_such_key=VALUE)"
    )
    assert not (tmp_path / "outputs").exists()  # refused before any run directory was made
