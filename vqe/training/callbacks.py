"""Callbacks of the training system (the stock ones — checkpoints, learning-rate monitor, progress
bar — are configured in ``configs/callbacks``):

* :class:`SubmissionWriter` — the test end: per-video means of what ``test_step`` returns,
  gathered over ranks, written by rank 0 as ``metrics_supervised.csv`` and
  ``metrics_unsupervised.csv`` (official schema, :func:`vqe.metrics.submission.write_submission`),
  scored with :func:`vqe.metrics.score.score_submission` (the function
  ``codalab_scoring/score.py`` runs), printed, saved as ``score.json`` and logged; per-video
  flicker goes to ``flicker.csv``.
* :class:`ValidationImageGrid` — a grid of input / output / target frames of the first
  validation batches, logged to TensorBoard and saved as a PNG.
"""

from __future__ import annotations

import csv
import logging
import math
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
import torch.distributed as dist
import torch.nn.functional as F
from pytorch_lightning.loggers import TensorBoardLogger
from pytorch_lightning.utilities import rank_zero_info
from torch import Tensor
from torchvision.utils import make_grid, save_image

from vqe.metrics.score import SubmissionError, score_submission, write_json
from vqe.metrics.submission import write_submission
from vqe.metrics.video_metrics import FlickerTracker, VideoMetrics
from vqe.schema import SUBSET, VIDEO_KEY

log = logging.getLogger(__name__)

SCORE_JSON = "score.json"
FLICKER_CSV = "flicker.csv"
FLICKER = "flicker"


def _gather(metrics: VideoMetrics, trainer: pl.Trainer) -> VideoMetrics:
    """Every rank's frames in one accumulator (on every rank)."""
    if trainer.world_size == 1 or not (dist.is_available() and dist.is_initialized()):
        return metrics
    parts: list[Any] = [None] * trainer.world_size
    dist.all_gather_object(parts, metrics)
    return VideoMetrics.merged(parts)


class SubmissionWriter(pl.Callback):
    """Writes the two submission CSVs (and ``score.json``, ``flicker.csv``) at the test end.

    Args:
        results_dir: folder for the files (the Hydra run directory).
        subset: score whatever videos the test set holds (a demo or local subset) instead of
            checking the official row counts (500 supervised, 3000 unsupervised videos).
        flicker: measure per-video flicker (single process only: it needs frames in order).
    """

    def __init__(self, results_dir: str | Path, subset: bool = False, flicker: bool = True) -> None:
        super().__init__()
        self.results_dir = Path(results_dir)
        self.subset = subset
        self.flicker = flicker
        self.metrics = VideoMetrics()
        self.flicker_tracker = FlickerTracker()
        #: What the last test run produced: score, mean rmse, column means, file paths.
        self.results: dict[str, Any] = {}

    def on_test_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.metrics = VideoMetrics()
        self.flicker_tracker = FlickerTracker()
        self.results = {}

    def on_test_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        subsets, videos = list(batch["subset"]), list(batch["video_id"])
        frames = [int(index) for index in batch["frame_index"].tolist()]
        if "rmse" in outputs:
            self.metrics.add_rmse(subsets, videos, frames, outputs["rmse"])
        if "scores" in outputs:
            self.metrics.add_scores(subsets, videos, frames, outputs["scores"])
        if self.flicker and trainer.world_size == 1:
            self.flicker_tracker.update(subsets, videos, frames, outputs["enhanced"], batch["x"])

    def _write_flicker(self) -> Path | None:
        values = self.flicker_tracker.values()
        if not values:
            return None
        path = self.results_dir / FLICKER_CSV
        with path.open("w", newline="") as handle:
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow([VIDEO_KEY, SUBSET, FLICKER])
            for (subset, video), value in sorted(values.items(), key=lambda item: item[0][::-1]):
                writer.writerow([video, subset, repr(value)])
        return path

    def _write_and_score(self, metrics: VideoMetrics) -> dict[str, Any]:
        supervised = metrics.supervised_means()
        unsupervised = metrics.unsupervised_means()
        supervised_path, unsupervised_path = write_submission(
            self.results_dir, supervised, unsupervised, overwrite=True
        )
        results: dict[str, Any] = {
            "supervised_csv": str(supervised_path),
            "unsupervised_csv": str(unsupervised_path),
            "supervised_videos": len(supervised),
            "unsupervised_videos": len(unsupervised),
        }
        if supervised:
            results["mean_rmse"] = math.fsum(supervised.values()) / len(supervised)
        flicker_path = self._write_flicker() if self.flicker else None
        if flicker_path is not None:
            finite = [v for v in self.flicker_tracker.values().values() if math.isfinite(v)]
            results["flicker_csv"] = str(flicker_path)
            if finite:
                results["mean_flicker"] = math.fsum(finite) / len(finite)
        # A local subset is scored over the videos it holds; otherwise the official counts.
        row_counts = {"supervised_rows": None, "unsupervised_rows": None} if self.subset else {}
        try:
            report = score_submission(self.results_dir, **row_counts)
        except SubmissionError as error:
            results["score_error"] = str(error)
            rank_zero_info(f"the submission in {self.results_dir} cannot be scored:\n{error}")
            return results
        write_json(report, self.results_dir / SCORE_JSON)
        results["score"] = report.score
        results["means"] = report.means
        kind = "local subset" if self.subset else "official row counts"
        rank_zero_info(
            f"objective score of {self.results_dir} ({kind}; {len(supervised)} supervised, "
            f"{len(unsupervised)} unsupervised videos):\n{report.format()}"
        )
        return results

    def on_test_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        metrics = _gather(self.metrics, trainer)
        results: dict[str, Any] = {}
        if trainer.is_global_zero:
            self.results_dir.mkdir(parents=True, exist_ok=True)
            results = self._write_and_score(metrics)
            logged = {
                f"test/{name}": float(results[name])
                for name in ("score", "mean_rmse", "mean_flicker")
                if name in results
            }
            for logger in trainer.loggers:
                logger.log_metrics(logged, step=trainer.global_step)
                logger.save()
        self.results = trainer.strategy.broadcast(results, src=0)


class ValidationImageGrid(pl.Callback):
    """Rows of input / output / target frames from the first validation batches.

    Logged to every TensorBoard logger as ``val/images`` and saved to
    ``<save_dir>/val_epoch<NNN>.png`` (rank 0). Frames are scaled to ``max_height`` pixels.
    """

    def __init__(
        self, max_images: int = 4, max_height: int = 256, save_dir: str | Path | None = None
    ) -> None:
        super().__init__()
        if max_images < 1:
            raise ValueError(f"ValidationImageGrid: max_images must be >= 1, got {max_images}")
        self.max_images = max_images
        self.max_height = max_height
        self.save_dir = Path(save_dir) if save_dir is not None else None
        self._rows: dict[str, list[Tensor]] = {}
        #: The PNG files written so far.
        self.saved: list[Path] = []

    def on_validation_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._rows = {"input": [], "output": [], "target": []}

    def _collected(self) -> int:
        return sum(frame.shape[0] for frame in self._rows.get("input", []))

    def _fit(self, frames: Tensor) -> Tensor:
        frames = frames.detach().float().clamp(0.0, 1.0).cpu()
        if frames.shape[-2] <= self.max_height:
            return frames
        width = round(frames.shape[-1] * self.max_height / frames.shape[-2])
        return F.interpolate(frames, size=(self.max_height, width), mode="area")

    def on_validation_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        if trainer.sanity_checking or not trainer.is_global_zero:
            return
        room = self.max_images - self._collected()
        if room <= 0 or "y" not in batch:
            return
        inputs = self._fit(batch["x"][:room])
        if self._rows["input"] and inputs.shape[-2:] != self._rows["input"][0].shape[-2:]:
            return  # frames of another size cannot share the grid
        self._rows["input"].append(inputs)
        self._rows["output"].append(self._fit(outputs["enhanced"][:room]))
        self._rows["target"].append(self._fit(batch["y"][:room]))

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking or not trainer.is_global_zero or not self._collected():
            return
        columns = self._collected()
        rows = [torch.cat(self._rows[name]) for name in ("input", "output", "target")]
        grid = make_grid(torch.cat(rows), nrow=columns, padding=2, pad_value=1.0)
        for logger in trainer.loggers:
            if isinstance(logger, TensorBoardLogger):
                logger.experiment.add_image("val/images", grid, trainer.global_step)
        if self.save_dir is not None:
            self.save_dir.mkdir(parents=True, exist_ok=True)
            path = self.save_dir / f"val_epoch{trainer.current_epoch:03d}.png"
            save_image(grid, path)
            self.saved.append(path)


__all__ = ["FLICKER_CSV", "SCORE_JSON", "SubmissionWriter", "ValidationImageGrid"]
