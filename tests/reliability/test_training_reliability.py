"""Training is safe to interrupt and never overwrites something good (issue 12).

One test per case, so the list only grows: SIGTERM / Ctrl-C save a resumable checkpoint and
exit 143 / 130, a diverged model is never saved, a resume keeps the earlier metric rows and
``ckpt_path=last`` without a ``last.ckpt`` is refused, and user errors are one logged line (exit
1, no traceback). Cases about the process (signals, exit codes) run ``train_vqe.py`` in a
subprocess; the others call :func:`vqe.training.train.run_training` in this one. Everything is
tiny: the test enhancer, 32² crops, a few-frame index, supervised loss, no test loop.
"""

from __future__ import annotations

import csv
import errno
import logging
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from config_helpers import compose_config
from hydra.utils import instantiate
from index_helpers import write_train_and_test
from model_helpers import TINY_RUN
from omegaconf import DictConfig, OmegaConf

from vqe.training.checkpoint_guards import NonFiniteStateError
from vqe.training.module import VQEModule
from vqe.training.train import run_training

REPO = Path(__file__).resolve().parents[2]
CONFIG_DIR = REPO / "configs"

#: A tiny supervised run (no critics, no test loop) on the frames of ``frames_root``; debug=fast
#: makes it one epoch of 2 training and 1 validation batches unless a test says otherwise.
TINY = [
    *TINY_RUN,
    "loss=supervised",
    "dataset.train_query=\"subset in ['synthetic', 'real']\"",
    "test=false",
]
#: Overrides a user mistypes, and the key the one-line message must name.
BAD_NUMBERS = [
    ("optimizer.lr=abc", "optimizer.lr='abc' is not a number"),
    ("trainer.max_epochs=abc", "trainer.max_epochs='abc' is not an integer"),
    ("seed=abc", "seed='abc' is not an integer"),
    ("optimizer.lr=-1", "optimizer.lr=-1 must be above 0"),
    ("dataloader.batch_size=0", "dataloader.batch_size=0 must be above 0"),
    ("trainer.limit_train_batches=0", "trainer.limit_train_batches=0: the run would train nothing"),
    ("trainer.max_epochs=0", "trainer.max_epochs=0: the run would train nothing"),
]


@pytest.fixture(scope="module")
def frames_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("frames")
    write_train_and_test(root)
    return root


def tiny(root: Path, *overrides: str) -> list[str]:
    return [*TINY, "dataset=official", "dataset.val_videos=2", f"dataset.path={root}", *overrides]


def compose_run(output_dir: Path, root: Path, *overrides: str) -> DictConfig:
    return compose_config("vqe", [f"paths.output_dir={output_dir}", *tiny(root, *overrides)])


@pytest.fixture(scope="module")
def trained_run(frames_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One epoch of two steps: checkpoints/last.ckpt, best-*.ckpt and csv/metrics.csv."""
    run = tmp_path_factory.mktemp("trained") / "run"
    cfg = compose_run(run, frames_root)  # debug=fast's sizes
    assert run_training(cfg) == 0
    return run


def copy_run(run: Path, to: Path) -> Path:
    shutil.copytree(run, to)
    return to


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def assert_rows_kept(before: list[dict[str, str]], after: list[dict[str, str]]) -> None:
    """``after`` starts with the rows of ``before`` (the file may have gained columns)."""
    assert len(after) > len(before) > 0
    for old, new in zip(before, after):
        assert {key: new[key] for key in old} == old


def reported(caplog: pytest.LogCaptureFixture, level: int = logging.ERROR) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= level]


# --------------------------------------------------------------------------- signals


def _default_sigint() -> None:
    # A child of a background job inherits an ignored SIGINT, which Python then keeps ignored.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start_training(run: Path, root: Path, log_path: Path) -> subprocess.Popen[bytes]:
    """train_vqe.py for 60 steps, writing metrics.csv after every step (to see one happen)."""
    command = [
        sys.executable,
        "train_vqe.py",
        "--config-name=vqe",
        *tiny(
            root,
            "trainer.max_steps=60",
            "trainer.max_epochs=100",  # debug=fast's 1 epoch of 2 batches would end it first
            "trainer.limit_train_batches=1.0",
            "+logger.csv.flush_logs_every_n_steps=1",
        ),
        f"hydra.run.dir={run}",
    ]
    with log_path.open("wb") as log:
        return subprocess.Popen(
            command,
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "OMP_NUM_THREADS": "1"},
            preexec_fn=_default_sigint,
        )


def wait_for_a_step(process: subprocess.Popen[bytes], run: Path, log_path: Path) -> None:
    metrics = run / "csv" / "metrics.csv"
    deadline = time.monotonic() + 120
    while not (metrics.is_file() and "train/loss_step" in metrics.read_text()):
        assert process.poll() is None, f"training ended early:\n{log_path.read_text()}"
        assert time.monotonic() < deadline, f"no step within 120 s:\n{log_path.read_text()}"
        time.sleep(0.05)


def interrupt(process: subprocess.Popen[bytes], signum: signal.Signals, log_path: Path) -> str:
    process.send_signal(signum)
    try:
        process.wait(timeout=120)
    except subprocess.TimeoutExpired:
        process.kill()
        raise
    return log_path.read_text()


def logged_resume_command(output: str) -> list[str]:
    lines = output.splitlines()
    index = next(i for i, line in enumerate(lines) if "Resume it, from" in line)
    return shlex.split(lines[index + 1])


def step_of(checkpoint: Path) -> int:
    return int(torch.load(checkpoint, map_location="cpu", weights_only=True)["global_step"])


def test_sigterm_saves_a_checkpoint_exits_143_and_the_logged_command_resumes(
    tmp_path: Path, frames_root: Path
) -> None:
    run, log_path = tmp_path / "run", tmp_path / "first.log"
    process = start_training(run, frames_root, log_path)
    wait_for_a_step(process, run, log_path)
    output = interrupt(process, signal.SIGTERM, log_path)

    assert process.returncode == 143, output
    last = run / "checkpoints" / "last.ckpt"
    assert f"interrupted by SIGTERM at global step {step_of(last)}: saved {last}" in output
    assert 0 < step_of(last) < 60
    rows_before = read_rows(run / "csv" / "metrics.csv")
    command = logged_resume_command(output)
    assert command[-2:] == ["ckpt_path=last", f"hydra.run.dir={run}"]

    resumed = subprocess.run(
        command,
        cwd=REPO,
        capture_output=True,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert step_of(last) == 60  # continued to max_steps, not started again
    assert_rows_kept(rows_before, read_rows(run / "csv" / "metrics.csv"))


def test_ctrl_c_saves_a_checkpoint_and_exits_130(tmp_path: Path, frames_root: Path) -> None:
    run, log_path = tmp_path / "run", tmp_path / "run.log"
    process = start_training(run, frames_root, log_path)
    wait_for_a_step(process, run, log_path)
    output = interrupt(process, signal.SIGINT, log_path)

    assert process.returncode == 130, output
    last = run / "checkpoints" / "last.ckpt"
    assert f"interrupted by SIGINT at global step {step_of(last)}: saved {last}" in output
    assert "Traceback" not in output and "ckpt_path=last hydra.run.dir=" in output


# --------------------------------------------------------------------------- divergence


def first_norm(enhancer: torch.nn.Module) -> str:
    return next(n for n, m in enhancer.named_modules() if isinstance(m, torch.nn.BatchNorm2d))


def _poison_in_epoch_1(self: VQEModule, outputs: object, batch: object, batch_index: int) -> None:
    # A BatchNorm statistic goes inf while the training loss stays finite (training uses the
    # batch statistics), after a healthy epoch 0 that wrote best-*.ckpt and last.ckpt.
    if self.current_epoch == 1:
        self.enhancer.get_submodule(first_norm(self.enhancer)).running_var.fill_(float("inf"))


def test_a_diverged_model_stops_the_run_and_is_never_saved(
    tmp_path: Path, frames_root: Path, monkeypatch: pytest.MonkeyPatch, caplog
) -> None:
    run = tmp_path / "run"
    cfg = compose_run(run, frames_root, "trainer.max_epochs=2", "trainer.limit_train_batches=2")
    monkeypatch.setattr(VQEModule, "on_train_batch_end", _poison_in_epoch_1)

    assert run_training(cfg) == 1
    [message] = reported(caplog)
    poisoned = f"{first_norm(instantiate(cfg.model_vqe))}.running_var"
    assert "diverged" in message and poisoned in message
    assert "optimizer.lr" in message  # what to do
    checkpoints = sorted(path.name for path in (run / "checkpoints").iterdir())
    assert len(checkpoints) == 2 and checkpoints[0].startswith("best-epoch000-")
    for name in checkpoints:  # epoch 0's files, kept and finite
        checkpoint = torch.load(run / "checkpoints" / name, map_location="cpu", weights_only=True)
        assert checkpoint["epoch"] == 0
        assert all(torch.isfinite(t).all() for t in checkpoint["state_dict"].values())


def test_a_checkpoint_with_non_finite_weights_is_refused_before_it_is_written() -> None:
    module = VQEModule(instantiate(OmegaConf.load(CONFIG_DIR / "model_vqe" / "tiny.yaml")))
    checkpoint = {
        "state_dict": {"enhancer.a": torch.zeros(2)},
        "current_model_state": {"enhancer.b": torch.tensor([1.0, float("nan")])},  # EMA's raw
    }
    with pytest.raises(NonFiniteStateError, match=r"NaN or inf in enhancer\.b \("):
        module.on_save_checkpoint(checkpoint)


# --------------------------------------------------------------------------- resume


def test_a_resume_in_the_run_directory_keeps_the_earlier_metric_rows(
    tmp_path: Path, frames_root: Path, trained_run: Path
) -> None:
    run = copy_run(trained_run, tmp_path / "run")
    before = read_rows(run / "csv" / "metrics.csv")
    cfg = compose_run(
        run, frames_root, "trainer.max_epochs=2", "trainer.limit_train_batches=2", "ckpt_path=last"
    )
    assert run_training(cfg) == 0

    after = read_rows(run / "csv" / "metrics.csv")
    assert_rows_kept(before, after)
    epochs = [row["epoch"] for row in after if row["epoch"]]
    assert set(epochs) == {"0", "1"} and epochs == sorted(epochs)
    assert sum(1 for row in after if row["model/parameters"]) == 1  # sizes logged once per run


def test_ckpt_path_last_without_a_last_checkpoint_is_refused_naming_the_directory(
    tmp_path: Path, frames_root: Path, caplog
) -> None:
    run = tmp_path / "fresh"
    assert run_training(compose_run(run, frames_root, "ckpt_path=last")) == 1
    [message] = reported(caplog)
    assert f"ckpt_path=last: no last.ckpt in {run / 'checkpoints'}" in message
    assert "hydra.run.dir=" in message
    assert not (run / "checkpoints").exists()  # refused before anything was trained


# --------------------------------------------------------------------------- run directory


def test_a_full_disk_while_saving_leaves_every_earlier_checkpoint_whole(
    tmp_path: Path, frames_root: Path, trained_run: Path, caplog, monkeypatch
) -> None:
    """Issue 25: a disk-full save used to leave a truncated best-*.ckpt under a valid name."""
    run = copy_run(trained_run, tmp_path / "run")
    before = {p.name: p.read_bytes() for p in (run / "checkpoints").iterdir()}

    def full_disk(obj: object, target: object, *args: object, **kwargs: object) -> None:
        Path(str(target)).write_bytes(b"PK\x03\x04 half a checkpoint")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(target))

    monkeypatch.setattr(torch, "save", full_disk)
    cfg = compose_run(
        run, frames_root, "trainer.max_epochs=2", "trainer.limit_train_batches=2", "ckpt_path=last"
    )
    assert run_training(cfg) == 1
    [message] = reported(caplog)
    assert "No space left on device" in message and "ckpt_path=last" in message
    after = {p.name: p.read_bytes() for p in (run / "checkpoints").iterdir()}
    assert after == before  # no partial file, under a valid name or a temporary one




def test_a_fresh_run_into_an_earlier_run_directory_is_refused_and_loses_nothing(
    tmp_path: Path, frames_root: Path, trained_run: Path, caplog
) -> None:
    """Issue 25, item 3: a second run (not a resume) used to exit 0 having replaced last.ckpt
    (step 36 → 2) and wiped csv/metrics.csv."""
    run = copy_run(trained_run, tmp_path / "run")
    before = {path: path.read_bytes() for path in run.rglob("*") if path.is_file()}
    cfg = compose_run(run, frames_root, "trainer.max_epochs=1", "trainer.limit_train_batches=1")
    assert run_training(cfg) == 1
    [message] = reported(caplog)
    assert message.startswith(f"hydra.run.dir={run}: holds an earlier run (checkpoints, csv")
    assert "ckpt_path=last" in message and "overwrite=true" in message
    after = {path: path.read_bytes() for path in run.rglob("*") if path.is_file()}
    assert after == before


def test_overwrite_true_replaces_the_earlier_run_leaving_nothing_stale(
    tmp_path: Path, frames_root: Path, trained_run: Path
) -> None:
    run = copy_run(trained_run, tmp_path / "run")
    stale = run / "submission" / "old.csv"
    stale.parent.mkdir(exist_ok=True)
    stale.write_text("earlier\n")
    (run / "notes.txt").write_text("the user's own file\n")
    cfg = compose_run(
        run, frames_root, "trainer.max_epochs=1", "trainer.limit_train_batches=1", "overwrite=true"
    )
    assert run_training(cfg) == 0
    assert step_of(run / "checkpoints" / "last.ckpt") == 1
    assert not stale.exists()  # the earlier run's outputs went before the new ones came
    assert (run / "notes.txt").read_text() == "the user's own file\n"  # not a run output


def test_the_command_line_refuses_before_hydra_rewrites_the_config_record(
    tmp_path: Path, frames_root: Path
) -> None:
    """The Hydra callback runs before .hydra/ is written, so the earlier record survives."""
    run = tmp_path / "run"
    (run / ".hydra").mkdir(parents=True)
    (run / ".hydra" / "config.yaml").write_text("earlier: run\n")
    result = subprocess.run(
        [sys.executable, "train_vqe.py", *tiny(frames_root), f"hydra.run.dir={run}"],
        cwd=REPO, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"},
    )  # fmt: skip
    assert result.returncode == 1
    assert f"error: hydra.run.dir={run}: holds an earlier run (.hydra)" in result.stderr
    assert (run / ".hydra" / "config.yaml").read_text() == "earlier: run\n"
    assert sorted(p.name for p in run.iterdir()) == [".hydra"]


# --------------------------------------------------------------------------- user errors


@pytest.mark.parametrize(("override", "expected"), BAD_NUMBERS)
def test_a_value_that_is_not_a_number_is_one_line_naming_the_key(
    tmp_path: Path, frames_root: Path, caplog, override: str, expected: str
) -> None:
    assert run_training(compose_run(tmp_path / "run", frames_root, override)) == 1
    [message] = reported(caplog)
    assert message.startswith(expected) and "\n" not in message


def _truncated(trained: Path, to: Path) -> Path:
    to.write_bytes((trained / "checkpoints" / "last.ckpt").read_bytes()[:3000])
    return to


def _weights_only(trained: Path, to: Path) -> Path:
    checkpoint = torch.load(trained / "checkpoints" / "last.ckpt", weights_only=True)
    torch.save({"state_dict": checkpoint["state_dict"]}, to)  # no Lightning training state
    return to


@pytest.mark.parametrize(
    ("make", "expected"),
    [(_truncated, "cannot be read as a checkpoint"), (_weights_only, "pytorch-lightning_version")],
)
def test_resuming_from_a_bad_checkpoint_is_one_message_naming_the_file(
    tmp_path: Path, frames_root: Path, trained_run: Path, caplog, make, expected: str
) -> None:
    bad = make(trained_run, tmp_path / "bad.ckpt")
    assert run_training(compose_run(tmp_path / "run", frames_root, f"ckpt_path={bad}")) == 1
    [message] = reported(caplog)
    assert message.startswith(f"ckpt_path={bad}: ") and expected in message


def test_resuming_a_checkpoint_of_another_model_names_the_difference(
    tmp_path: Path, frames_root: Path, trained_run: Path, caplog
) -> None:
    """Issue 25: ckpt_path=<a lut checkpoint> model_vqe=<another> stopped with a traceback."""
    checkpoint = torch.load(trained_run / "checkpoints" / "last.ckpt", weights_only=True)
    lut_only = instantiate(compose_config(None, ["+model_vqe=lut"]).model_vqe)
    checkpoint["state_dict"] = {f"enhancer.{k}": v for k, v in lut_only.state_dict().items()}
    other = tmp_path / "lut.ckpt"
    torch.save(checkpoint, other)
    assert run_training(compose_run(tmp_path / "run", frames_root, f"ckpt_path={other}")) == 1
    [message] = reported(caplog)
    assert message.startswith(f"ckpt_path={other}: was trained with another model_vqe")
    assert "lut.basis is [3, 3, 33, 33, 33], the config makes [3, 3, 9, 9, 9]" in message
    assert "init_from=" in message and "\n" not in message


def test_the_command_line_reports_a_user_error_without_a_traceback(
    tmp_path: Path, frames_root: Path
) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "train_vqe.py",
            "--config-name=vqe",
            *tiny(frames_root, "optimizer.lr=abc"),
            f"hydra.run.dir={tmp_path / 'run'}",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "optimizer.lr='abc' is not a number" in output
    assert "Traceback" not in output and "Error executing job" not in output
