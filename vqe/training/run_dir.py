"""A run directory belongs to one run: a fresh run refuses a folder an earlier run wrote into.

A second ``train_vqe.py`` pointed at an existing ``hydra.run.dir`` used to replace the earlier
run's ``last.ckpt``, wipe its ``csv/metrics.csv`` and leave its ``submission/`` beside checkpoints
it no longer described. Now a run that is not a resume (``ckpt_path=…``) refuses a folder
holding any of :data:`RUN_OUTPUTS`, naming them and the two ways on: resume it
(``ckpt_path=last hydra.run.dir=<dir>``) or replace it (``overwrite=true``, which first removes
the earlier run's outputs so that nothing stale is left beside the new ones).

Checked twice: by :class:`RunDirGuard`, a Hydra callback run before Hydra writes the new run's
``.hydra/`` config record over the old one, and by :func:`prepare_run_dir` inside ``train`` /
``evaluate`` for callers that compose configs in Python (there ``.hydra/`` is Hydra's own record
of the current run, so it does not count).
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from vqe.training.config_checks import ConfigError

#: What a run writes into its directory (vqe.metrics.results and the callbacks' folders).
RUN_OUTPUTS = (
    "checkpoints",
    "csv",
    "tensorboard",
    "images",
    "submission",
    "submission.zip",
    "submission-random-critics.zip",  # the zip of a run scored with random critics
    "score.json",
    "tables",
)
#: Hydra's record of the run's config, written before the task starts.
HYDRA_RECORD = ".hydra"
#: Set by Lightning's launcher and torchrun / SLURM for each process of a distributed run.
RANK_VARIABLES = ("LOCAL_RANK", "NODE_RANK", "RANK", "SLURM_PROCID")


class RunDirectoryError(ConfigError):
    """A fresh run was pointed at a directory an earlier run wrote; the message says how on."""


def earlier_outputs(run_dir: str | Path, names: tuple[str, ...] = RUN_OUTPUTS) -> list[str]:
    """The run outputs already in ``run_dir`` (empty for a new or unrelated folder)."""
    folder = Path(run_dir)
    return [name for name in names if (folder / name).exists()]


def refusal(run_dir: str | Path, found: list[str], command: str) -> RunDirectoryError:
    return RunDirectoryError(
        f"hydra.run.dir={run_dir}: holds an earlier run ({', '.join(found)}); a new {command} "
        "would overwrite it. Resume that run with ckpt_path=last (same hydra.run.dir), choose "
        "another hydra.run.dir, or replace it with overwrite=true"
    )


def is_secondary_rank() -> bool:
    """A process of a multi-process run other than the first: its directory is the first
    rank's, already checked there (and written to by it by the time this one looks)."""
    return any(os.environ.get(name, "0") != "0" for name in RANK_VARIABLES)


def prepare_run_dir(
    run_dir: str | Path, resuming: bool, overwrite: bool, command: str = "training run"
) -> list[str]:
    """Refuse (:class:`RunDirectoryError`) a run directory holding an earlier run's outputs,
    unless ``resuming`` (kept) or ``overwrite`` (removed first); returns what was removed.
    Secondary ranks of a distributed run leave it to the first."""
    found = earlier_outputs(run_dir)
    if not found or resuming or is_secondary_rank():
        return []
    if not overwrite:
        raise refusal(run_dir, found, command)
    for name in found:
        path = Path(run_dir) / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
    return found


class RunDirGuard(Callback):
    """The same check before Hydra writes ``.hydra/`` (which it does before the task starts):
    a refused run then leaves the earlier run's config record as it was."""

    def __init__(self, command: str = "training run") -> None:
        self.command = command

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        run_dir = OmegaConf.select(config, "hydra.run.dir")
        if run_dir is None or config.get("ckpt_path") or config.get("overwrite"):
            return
        if is_secondary_rank():
            return
        found = earlier_outputs(run_dir, (HYDRA_RECORD, *RUN_OUTPUTS))
        if found:
            # Hydra's logging is not configured yet: one plain line, then exit 1 like train().
            print(f"error: {refusal(run_dir, found, self.command)}", file=sys.stderr)
            sys.exit(1)


__all__ = [
    "RUN_OUTPUTS",
    "RunDirGuard",
    "RunDirectoryError",
    "earlier_outputs",
    "prepare_run_dir",
]
