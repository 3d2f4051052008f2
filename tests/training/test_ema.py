"""EMA of the enhancer's weights (``callbacks=ema``): validated, saved, tested and exported.

A short CPU fit of the tiny enhancer with a recorder callback that keeps the raw weights after
every optimizer step and the weights the model holds while it validates and tests. The EMA is
then recomputed from that trajectory and compared with what each consumer actually used.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from config_helpers import compose_config
from index_helpers import write_train_and_test
from omegaconf import DictConfig

from vqe.models.loading import ENHANCER_PREFIX, enhancer_from_checkpoint
from vqe.training.train import train

DECAY = 0.5  # a short run: with 0.999 the average would barely leave the first step's weights
State = dict[str, torch.Tensor]


class WeightRecorder(pl.Callback):
    """Saves to ``path``: raw weights after each step, and those in use in validation / test."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.records: dict[str, Any] = {"start": None, "train": [], "val": [], "test": []}

    @staticmethod
    def weights(module: pl.LightningModule) -> State:
        return {k: v.detach().clone() for k, v in module.enhancer.state_dict().items()}

    def on_train_start(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        self.records["start"] = self.weights(module)  # after a resume has restored them

    def on_train_batch_end(
        self, trainer: pl.Trainer, module: pl.LightningModule, *args: Any
    ) -> None:
        self.records["train"].append(self.weights(module))

    def on_validation_batch_start(
        self,
        trainer: pl.Trainer,
        module: pl.LightningModule,
        batch: Any,
        batch_idx: int,
        *args: Any,
    ) -> None:
        if batch_idx == 0:
            self.records["val"].append((trainer.global_step, self.weights(module)))

    def on_test_batch_start(
        self,
        trainer: pl.Trainer,
        module: pl.LightningModule,
        batch: Any,
        batch_idx: int,
        *args: Any,
    ) -> None:
        if batch_idx == 0:
            self.records["test"].append(self.weights(module))

    def teardown(self, trainer: pl.Trainer, module: pl.LightningModule, stage: str) -> None:
        torch.save(self.records, self.path)


def ema_trajectory(raw: list[State], decay: float) -> list[State]:
    """EMA after each step: the first step's weights, then decay·ema + (1 − decay)·weights."""
    averages = [raw[0]]
    for weights in raw[1:]:
        averages.append(
            {
                k: decay * averages[-1][k] + (1 - decay) * v if v.is_floating_point() else v
                for k, v in weights.items()
            }
        )
    return averages


def assert_same_floats(actual: State, expected: State) -> None:
    # (Integer buffers — BN's num_batches_tracked — do not average meaningfully.)
    floats = [k for k, v in expected.items() if v.is_floating_point()]
    assert floats and set(floats) <= set(actual)
    for name in floats:
        assert torch.allclose(actual[name], expected[name], atol=1e-6, rtol=1e-5), name


def enhancer_weights(state: State) -> State:
    return {k[len(ENHANCER_PREFIX) :]: v for k, v in state.items() if k.startswith(ENHANCER_PREFIX)}


def max_difference(first: State, second: State) -> float:
    return max(
        (first[k] - second[k]).abs().max().item() for k in first if first[k].is_floating_point()
    )


def compose_run(output_dir: Path, root: Path, *extra: str) -> DictConfig:
    overrides = [
        f"paths.output_dir={output_dir}",
        "callbacks=ema",
        f"callbacks.ema.decay={DECAY}",
        f"+callbacks.recorder._target_={__name__}.WeightRecorder",
        f"+callbacks.recorder.path={output_dir / 'records.pt'}",
        "debug=fast",  # tiny model, 32² crops, batches of 2, no augmentation, cheap DOVER
        "loss=supervised",
        "dataset=official",
        "dataset.val_videos=2",  # the tiny index holds few synthetic videos
        f"dataset.path={root}",
        "dataset.train_query=\"subset in ['synthetic', 'real']\"",
        "dataset.test_query=\"subset == 'synthetic'\"",  # rows with targets: no critic passes
        "allow_random_critics=true",
        "trainer.max_epochs=2",
        "trainer.limit_train_batches=3",
        "optimizer.lr=1e-2",  # big steps, so the average is far from the last weights
        *extra,
    ]
    return compose_config("vqe", overrides)


def test_ema_is_composed_only_when_asked(tmp_path: Path) -> None:
    default = compose_config("vqe", [f"paths.output_dir={tmp_path}"])
    ema = compose_config("vqe", [f"paths.output_dir={tmp_path}", "callbacks=ema"])
    assert "ema" not in default.callbacks
    assert set(ema.callbacks) == {*default.callbacks, "ema"}  # the defaults, plus the EMA


def test_averaged_weights_are_validated_saved_tested_and_exported(tmp_path: Path) -> None:
    root = tmp_path / "frames"
    write_train_and_test(root)
    out = tmp_path / "run"
    results = train(compose_run(out, root))
    records = torch.load(out / "records.pt", weights_only=True)
    raw = records["train"]
    assert results["global_step"] == len(raw) == 6
    averages = ema_trajectory(raw, DECAY)

    # Validation (after epochs 1 and 2) ran on the average of the steps so far.
    assert [step for step, _ in records["val"]] == [3, 6]
    for step, weights in records["val"]:
        assert_same_floats(weights, averages[step - 1])
        assert max_difference(weights, raw[step - 1]) > 1e-3  # … not on the raw weights

    # Checkpoints: the average as state_dict, the raw weights kept aside for resuming.
    steps = []
    for path in (out / "checkpoints" / "last.ckpt",):
        checkpoint = torch.load(path, weights_only=True)
        steps.append(step := checkpoint["global_step"])
        assert_same_floats(enhancer_weights(checkpoint["state_dict"]), averages[step - 1])
        assert_same_floats(enhancer_weights(checkpoint["current_model_state"]), raw[step - 1])
    assert steps[0] == 6 and max_difference(averages[-1], raw[-1]) > 1e-3

    # What evaluation, init_from and export load is the average.
    enhancer, _ = enhancer_from_checkpoint(out / "checkpoints" / "last.ckpt")
    assert_same_floats(enhancer.state_dict(), averages[-1])

    # The test after fit ran on the best checkpoint's averaged weights.
    best = torch.load(results["best_checkpoint"], weights_only=True)
    best_saved = enhancer_weights(best["state_dict"])
    assert_same_floats(best_saved, averages[best["global_step"] - 1])
    [tested] = records["test"]
    assert_same_floats(tested, best_saved)
    assert max_difference(tested, raw[best["global_step"] - 1]) > 1e-3  # not the raw weights


def test_resume_continues_both_the_raw_weights_and_their_average(tmp_path: Path) -> None:
    root = tmp_path / "frames"
    write_train_and_test(root)
    out = tmp_path / "run"
    train(compose_run(out, root, "trainer.max_epochs=1", "test=false"))
    first = torch.load(out / "records.pt", weights_only=True)["train"]
    latest = out / "checkpoints" / "last.ckpt"
    train(compose_run(out, root, "trainer.max_epochs=2", "test=false", f"ckpt_path={latest}"))
    resumed = torch.load(out / "records.pt", weights_only=True)
    second = resumed["train"]
    assert len(first) == len(second) == 3
    # Training went on from the raw weights, not from the average the state_dict holds …
    assert_same_floats(resumed["start"], first[-1])
    assert max_difference(ema_trajectory(first, DECAY)[-1], first[-1]) > 1e-3
    # … and the average from the saved average: as if the run had never stopped.
    saved = enhancer_weights(torch.load(latest, weights_only=True)["state_dict"])
    assert_same_floats(saved, ema_trajectory(first + second, DECAY)[-1])
