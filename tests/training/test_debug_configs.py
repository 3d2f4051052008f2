"""The ``debug`` group (configs/debug/) composes, runs and does what its header says.

``debug=fast`` is what the other tiny training tests and the README's quick line build on, so
it must run every stage; ``debug=overfit`` must show learning (the loss falls, an outcome, not
a setting); ``debug=profile`` must leave its timing table. All three on the embedded demo set,
built once for the module, with random critics.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterator
from pathlib import Path

import pytest
from config_helpers import compose_config
from omegaconf import DictConfig
from submission_checks import RANDOM_CRITICS_ZIP, check_run_submission

from vqe.dataprep.demo import DEMO_DIR_ENV, ensure_demo
from vqe.training.train import train


@pytest.fixture(scope="module", autouse=True)
def demo_set(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The demo set every run of this module trains on (``dataset=demo``, a null path)."""
    root = ensure_demo(tmp_path_factory.mktemp("demo") / "demo")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(DEMO_DIR_ENV, str(root))
        yield root


def compose(output_dir: Path, *overrides: str) -> DictConfig:
    return compose_config("vqe", [f"paths.output_dir={output_dir}", *overrides])


def training_losses(run: Path) -> list[float]:
    """``train/loss_step`` of every step, in order (debug=fast logs every step)."""
    with (run / "csv" / "metrics.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    return [float(row["train/loss_step"]) for row in rows if row.get("train/loss_step")]


def test_each_debug_config_composes_over_any_choice(tmp_path: Path) -> None:
    """Selected last, a debug config wins over the groups it sets (trainer=ddp stays on one
    CPU), while the command line still wins over it."""
    for name in ("fast", "overfit", "profile"):
        cfg = compose(tmp_path, f"debug={name}", "trainer=ddp", "experiment=stage1_lut")
        assert cfg.trainer.accelerator == "cpu" and cfg.trainer.strategy == "auto"
        assert cfg.model_vqe.lut.num_luts == 3 and cfg.model_vqe.unet is None  # tiny, stage 1
        assert cfg.dataloader.num_workers == 0 and cfg.trainer.num_sanity_val_steps == 0
    assert compose(tmp_path, "debug=fast", "trainer.max_epochs=3").trainer.max_epochs == 3
    assert compose(tmp_path).trainer.num_sanity_val_steps == 2  # no debug: untouched


def test_debug_fast_runs_every_stage(tmp_path: Path) -> None:
    out = tmp_path / "run"
    with pytest.warns(RuntimeWarning, match="RANDOM"):
        results = train(compose(out, "debug=fast"))
    assert results["global_step"] == 2 and math.isfinite(results["train/loss"])
    assert (out / "checkpoints" / "last.ckpt").is_file() and (out / "score.json").is_file()
    # One video of each test subset, so the submission is complete enough to score.
    check_run_submission(out, supervised_rows=1, unsupervised_rows=1, zip_name=RANDOM_CRITICS_ZIP)
    assert math.isfinite(results["test"]["score"])


def test_debug_overfit_drives_the_training_loss_down(tmp_path: Path) -> None:
    out = tmp_path / "run"
    results = train(compose(out, "debug=overfit", "trainer.max_epochs=8"))  # no critic built
    assert results["global_step"] == 16  # overfit_batches: the same 2 batches per epoch
    losses = training_losses(out)
    assert len(losses) == 16
    first, last = sum(losses[:2]) / 2, sum(losses[-2:]) / 2
    assert last < 0.5 * first, f"the loss did not fall on 4 fixed frames: {losses}"
    assert not (out / "submission").exists()  # no test loop


def test_debug_profile_writes_the_profiler_table(tmp_path: Path) -> None:
    out = tmp_path / "run"
    with pytest.warns(RuntimeWarning, match="RANDOM"):
        results = train(compose(out, "debug=profile"))
    assert results["global_step"] == 10
    report = (out / "profiler" / "fit-profile.txt").read_text(encoding="utf-8")
    assert "FIT Profiler Report" in report
    (batches,) = [line for line in report.splitlines() if "run_training_batch" in line]
    assert batches.split("|")[3].strip() == "10"  # calls: one per training step
    assert (out / "profiler" / "test-profile.txt").is_file() and (out / "score.json").is_file()
