"""A ``CSVLogger`` for resumed runs: it continues ``metrics.csv`` instead of deleting it.

Lightning's CSV writer deletes ``metrics.csv`` when its folder is not empty, so a run resumed in
its own directory (``ckpt_path=last hydra.run.dir=…``) lost the rows logged before the
interruption. :func:`vqe.training.train.train` builds the configured stock ``CSVLogger`` as
:class:`HistoryCSVLogger` when it resumes.
"""

from __future__ import annotations

import csv

from pytorch_lightning.loggers import CSVLogger
from pytorch_lightning.loggers.csv_logs import ExperimentWriter
from pytorch_lightning.loggers.logger import rank_zero_experiment


class HistoryWriter(ExperimentWriter):
    """An ``ExperimentWriter`` that appends to an existing ``metrics.csv``."""

    def _check_log_dir_exists(self) -> None:
        # Lightning deletes the file here. Adopt its header instead, so that the next save
        # appends (or rewrites it with the old rows when new columns appear).
        if not self._fs.isfile(self.metrics_file_path):
            return
        with self._fs.open(self.metrics_file_path, "r", newline="") as file:
            header = next(csv.reader(file), [])
        if header != sorted(header):  # Lightning appends in sorted column order
            self._rewrite_with_new_header(sorted(header))
        self.metrics_keys = sorted(header)


class HistoryCSVLogger(CSVLogger):
    """``CSVLogger`` whose writer keeps the rows already in ``metrics.csv``."""

    @property
    @rank_zero_experiment
    def experiment(self) -> ExperimentWriter:
        if self._experiment is None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = HistoryWriter(log_dir=self.log_dir)
        return self._experiment


__all__ = ["HistoryCSVLogger", "HistoryWriter"]
