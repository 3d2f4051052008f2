"""Real 2-process DDP on the CPU (gloo): the rank split, the cross-rank merge and stopping (issue 12).

Three ``train_vqe.py`` / ``vqe evaluate`` jobs on the embedded demo set with the tiny model,
each in its own process group under a timeout, so that a hang fails in seconds instead of
waiting for gloo's 30-minute timeout:

* **ddp run** — ``trainer.devices=2 trainer.strategy=ddp``: two training steps per rank, one
  validation batch per rank, the best checkpoint, then the test loop on 2 ranks. Its test set is
  3 batches (2 synthetic, 1 unsupervised), so the sampler pads rank 1 with a repeated batch.
* **single** — ``vqe evaluate`` of that best checkpoint in one process: its submission
  CSVs must equal the ddp run's (same rows, same order, values to 1e-6).
* **nan run** — rank 1's batch of step 1 is NaN (``ddp_helpers.NaNOnRank``): both ranks must
  stop with the one-line message (exit 1), neither with a gloo traceback, neither left waiting.

The nan run runs alongside the other two: each job spends most of its time importing, one rank
after the other, so the two jobs share the 2 cores well.
"""

from __future__ import annotations

import csv
import math
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
from model_helpers import TINY_RUN

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
#: Seconds one job may take: generous for 2 busy cores, far below any gloo timeout.
JOB_TIMEOUT = 150
SUBMISSION_FILES = ("metrics_supervised.csv", "metrics_unsupervised.csv")

#: Tiny settings of every job: tiny model and crops, in-process loading, no progress bars.
TINY = [*TINY_RUN, "loss=supervised", "quality_table=false"]
DDP = ["trainer.accelerator=cpu", "trainer.devices=2", "trainer.strategy=ddp"]
#: 6 synthetic rows (2 batches of ≤ 4) + 2 unsupervised rows (1 batch): 3 batches for 2 ranks.
TEST_QUERY = "dataset.test_query=\"(subset == 'synthetic' and frame_index < 3) or frame_index < 1\""
EVAL_SETTINGS = ["dataloader.num_workers=0", "dataloader.eval_batch_size=4", TEST_QUERY]
NAN_MESSAGE = "rank 1 of 2: non-finite loss at global step 1: total=nan"


@dataclass(frozen=True)
class Job:
    """A finished subprocess: exit code, stdout and stderr together, wall time, run folder."""

    returncode: int
    output: str
    seconds: float
    run_dir: Path


def run_job(args: list[str], run_dir: Path, env: dict[str, str]) -> Job:
    """``python args… hydra.run.dir=run_dir``; its whole process group is killed on timeout.

    Waiting for the end of the output waits for every rank: Lightning's rank 1 shares it."""
    start = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, *args, f"hydra.run.dir={run_dir}"],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group, holding Lightning's rank processes
    )
    try:
        output, _ = process.communicate(timeout=JOB_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        output, _ = process.communicate()
        pytest.fail(f"{args[0]} still running after {JOB_TIMEOUT} s (a hang?):\n{output[-4000:]}")
    return Job(process.returncode, output, time.monotonic() - start, run_dir)


@pytest.fixture(scope="module")
def job_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """One thread per process, the helpers importable, the demo set built once up front (so
    that no rank builds it while another reads it)."""
    from vqe.dataprep.demo import DEMO_DIR_ENV, ensure_demo

    demo = ensure_demo(tmp_path_factory.mktemp("demo") / "demo")
    path = os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": path, DEMO_DIR_ENV: str(demo)}


@pytest.fixture(scope="module")
def nan_run(
    job_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Future[Job]]:
    """The nan run, started in the background (see the module notes)."""
    args = [
        "train_vqe.py",
        "--config-name=vqe",
        *TINY,
        *DDP,
        "trainer.max_steps=4",
        "test=false",
        "+callbacks.nan_on_rank._target_=ddp_helpers.NaNOnRank",
        "+callbacks.nan_on_rank.rank=1",
        "+callbacks.nan_on_rank.step=1",
    ]
    with ThreadPoolExecutor(max_workers=1) as pool:
        yield pool.submit(run_job, args, tmp_path_factory.mktemp("nan") / "run", job_env)


@pytest.fixture(scope="module")
def ddp_run(
    job_env: dict[str, str], nan_run: Future[Job], tmp_path_factory: pytest.TempPathFactory
) -> Job:
    # Through the vqe command (python -m vqe.cli train): the other rank is started from the
    # tool's own module, not from the dispatcher (the nan run covers train_vqe.py).
    args = [
        "-m",
        "vqe.cli",
        "train",
        "--config-name=vqe",
        *TINY,
        *DDP,
        "trainer.max_epochs=1",
        "trainer.limit_train_batches=2",
        TEST_QUERY,
    ]
    return run_job(args, tmp_path_factory.mktemp("ddp") / "run", job_env)


def best_checkpoint(run: Job) -> Path:
    [best] = (run.run_dir / "checkpoints").glob("best-*.ckpt")
    return best


def read_rows(path: Path) -> list[list[str]]:
    with path.open(newline="") as handle:
        return list(csv.reader(handle))


def assert_same_table(single: Path, ddp: Path) -> None:
    """Same header, video ids in the same order, values equal to a relative 1e-6."""
    expected, got = read_rows(single), read_rows(ddp)
    assert got[0] == expected[0], ddp.name
    assert [row[0] for row in got] == [row[0] for row in expected], ddp.name
    for want, have in zip(expected[1:], got[1:], strict=True):
        for a, b in zip(want[1:], have[1:], strict=True):
            assert math.isclose(float(a), float(b), rel_tol=1e-6, abs_tol=1e-9), (
                ddp.name,
                want,
                have,
            )


def test_a_2_process_ddp_run_trains_validates_and_tests(ddp_run: Job) -> None:
    assert ddp_run.returncode == 0, ddp_run.output[-4000:]
    assert "Starting with 2 processes" in ddp_run.output  # really DDP, not one process
    metrics = (ddp_run.run_dir / "csv" / "metrics.csv").read_text()
    assert "train/loss_step" in metrics and "val/rmse" in metrics
    best_checkpoint(ddp_run)  # written after the validation
    for name in SUBMISSION_FILES:
        assert len(read_rows(ddp_run.run_dir / "submission" / name)) > 1, name


def test_the_2_process_submission_equals_a_1_process_evaluation_of_the_checkpoint(
    ddp_run: Job, job_env: dict[str, str], tmp_path: Path
) -> None:
    assert ddp_run.returncode == 0, ddp_run.output[-4000:]
    args = ["-m", "vqe.cli.evaluate", f"ckpt={best_checkpoint(ddp_run)}", *EVAL_SETTINGS]
    single = run_job(args, tmp_path / "single", job_env)
    assert single.returncode == 0, single.output[-4000:]
    assert "Starting with 2 processes" not in single.output
    for name in SUBMISSION_FILES:
        assert_same_table(
            single.run_dir / "submission" / name, ddp_run.run_dir / "submission" / name
        )


def test_a_nan_on_one_rank_stops_both_ranks_with_the_message(nan_run: Future[Job]) -> None:
    job = nan_run.result()
    assert job.returncode == 1, job.output[-4000:]
    # Neither rank crashed on its peer's exit (gloo's "Connection closed by peer")...
    assert "Traceback" not in job.output, job.output[-4000:]
    # ...both raised the error themselves: one logged line per rank, naming the rank.
    assert job.output.count(NAN_MESSAGE) == 2, job.output[-4000:]
    assert not list((job.run_dir / "checkpoints").glob("*.ckpt"))  # stopped before any save
