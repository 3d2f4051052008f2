"""Callbacks of the training system (the stock ones — checkpoints, learning-rate monitor, progress
bar — are configured in ``configs/callbacks``):

* :class:`SubmissionWriter` — the test end: per-video means of what ``test_step`` returns,
  gathered over ranks, written by rank 0 in the layout of :mod:`vqe.metrics.results`:
  ``submission/`` with exactly ``metrics_supervised.csv`` and ``metrics_unsupervised.csv``
  (official schema), ``submission.zip`` (the upload; ``submission-random-critics.zip`` when the
  module's critics are random), ``score.json`` (scored with
  :func:`vqe.metrics.score.score_submission`, the function ``codalab_scoring/score.py`` runs,
  and which critic weights scored it; printed and logged), ``tables/quality.csv`` (PSNR, SSIM, LPIPS per supervised video) and
  ``tables/temporal.csv`` (flicker and warping error per video).
* :class:`ValidationImageGrid` — a grid of input / output / target frames of the first
  validation batches, logged to TensorBoard and saved as a PNG.
* :class:`ResumeCheckpoint` — ``checkpoints/last.ckpt`` after every epoch and at an
  interruption (SIGTERM, Ctrl-C), which :func:`vqe.training.train.train` reports with the
  command that resumes the run.
"""

from __future__ import annotations

import logging
import signal
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
import torch.distributed as dist
import torch.nn.functional as F
from PIL import Image, ImageDraw, ImageFont
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.loggers import TensorBoardLogger
from pytorch_lightning.utilities import rank_zero_info
from pytorch_lightning.utilities.exceptions import SIGTERMException
from torch import Tensor
from torchvision.utils import make_grid

from vqe.atomic import atomic_path
from vqe.metrics.full_reference import FrameQuality, build_frame_quality
from vqe.metrics.results import CriticsUsed, RunResults, write_results
from vqe.metrics.temporal import DEFAULT_FLOW_HEIGHT
from vqe.metrics.video_metrics import TemporalTracker, VideoMetrics

log = logging.getLogger(__name__)

#: Results logged to the loggers as ``test/<name>`` when present.
LOGGED_RESULTS = (
    "score", "mean_rmse", "mean_psnr", "mean_ssim", "mean_lpips", "mean_flicker",
    "mean_warping_error",
)  # fmt: skip


def critics_used(pl_module: pl.LightningModule) -> CriticsUsed | None:
    """The weights of the module's metric critics (``metric_critics``, a
    :class:`~vqe.critics.scorer.CriticScorer`); None when it has none."""
    scorer = getattr(pl_module, "metric_critics", None)
    if scorer is None:
        return None
    return CriticsUsed.of(scorer.vqa.module, scorer.dover.module)


def _gather(metrics: VideoMetrics, trainer: pl.Trainer) -> VideoMetrics:
    """Every rank's frames in one accumulator (on every rank)."""
    if trainer.world_size == 1 or not (dist.is_available() and dist.is_initialized()):
        return metrics
    parts: list[Any] = [None] * trainer.world_size
    dist.all_gather_object(parts, metrics)
    return VideoMetrics.merged(parts)


class SubmissionWriter(pl.Callback):
    """Writes the run's submission, zip, score and tables at the test end (see the module doc).

    Args:
        results_dir: the run folder (the Hydra run directory); files go where
            :class:`vqe.metrics.results.RunLayout` says.
        subset: score whatever videos the test set holds (a demo or local subset) instead of
            checking the official row counts (500 supervised, 3000 unsupervised videos).
        flicker / warping_error: per-video temporal measures (single process only: they need
            frames in order); ``flow_height`` is the warping error's working height.
        quality: per-frame PSNR and SSIM of rows with a target; ``lpips`` adds LPIPS when its
            weights are there (``lpips_net``, ``lpips_backbone_weights`` — null: torchvision's
            cache file —, ``lpips_linear_weights`` — null: the ``lpips`` package's own).
    """

    def __init__(
        self,
        results_dir: str | Path,
        subset: bool = False,
        flicker: bool = True,
        warping_error: bool = True,
        flow_height: int | None = DEFAULT_FLOW_HEIGHT,
        quality: bool = True,
        lpips: bool = True,
        lpips_net: str = "alex",
        lpips_backbone_weights: str | Path | None = None,
        lpips_linear_weights: str | Path | None = None,
    ) -> None:
        super().__init__()
        self.results_dir = Path(results_dir)
        self.subset = subset
        self.flicker = flicker
        self.warping_error = warping_error
        self.flow_height = flow_height
        self.quality = quality
        self._lpips_options = {
            "lpips": lpips,
            "lpips_net": lpips_net,
            "lpips_backbone_weights": lpips_backbone_weights,
            "lpips_linear_weights": lpips_linear_weights,
        }
        self._frame_quality: FrameQuality | None = None  # built once, at the first test
        self.metrics = VideoMetrics()
        self.temporal = self._new_tracker()
        #: What the last test run produced: score, means, file paths (RunResults.to_dict()).
        self.results: dict[str, Any] = {}

    def _new_tracker(self) -> TemporalTracker:
        return TemporalTracker(self.flicker, self.warping_error, self.flow_height)

    def on_test_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.metrics = VideoMetrics()
        self.temporal = self._new_tracker()
        self.results = {}
        if self.quality:
            if self._frame_quality is None:
                self._frame_quality = build_frame_quality(**self._lpips_options)
            self._frame_quality.to(pl_module.device)

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
            if self._frame_quality is not None and "y" in batch:
                values = self._frame_quality(outputs["enhanced"], batch["y"])
                self.metrics.add_quality(subsets, videos, frames, values)
        if "scores" in outputs:
            self.metrics.add_scores(subsets, videos, frames, outputs["scores"])
        if trainer.world_size == 1:
            self.temporal.update(subsets, videos, frames, outputs["enhanced"], batch["x"])

    def _write_and_score(
        self, metrics: VideoMetrics, critics: CriticsUsed | None = None
    ) -> RunResults:
        quality_columns = self._frame_quality.columns if self._frame_quality is not None else ()
        written = write_results(
            self.results_dir,
            metrics.supervised_means(),
            metrics.unsupervised_means(),
            quality=metrics.quality_means(),
            quality_columns=quality_columns,
            temporal=self.temporal.values(),
            temporal_measures=self.temporal.measures,
            subset=self.subset,
            overwrite=True,
            critics=critics,
        )
        rank_zero_info(written.summary())
        if written.score is None:
            rank_zero_info(
                f"the submission in {written.layout.submission_dir} cannot be scored:\n"
                f"{written.score_error}"
            )
            return written
        kind = "local subset" if self.subset else "official row counts"
        rank_zero_info(
            f"objective score of {written.layout.submission_dir} ({kind}; "
            f"{written.supervised_videos} supervised, {written.unsupervised_videos} unsupervised "
            f"videos):\n{written.format_score()}"
        )
        return written

    def on_test_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        metrics = _gather(self.metrics, trainer)
        results: dict[str, Any] = {}
        if trainer.is_global_zero:
            self.results_dir.mkdir(parents=True, exist_ok=True)
            results = self._write_and_score(metrics, critics_used(pl_module)).to_dict()
            logged = {
                f"test/{name}": float(results[name]) for name in LOGGED_RESULTS if name in results
            }
            for logger in trainer.loggers:
                logger.log_metrics(logged, step=trainer.global_step)
                logger.save()
        self.results = trainer.strategy.broadcast(results, src=0)


GRID_ROWS = ("input", "output", "target")
_GRID_PADDING = 2


def label_rows(grid: Tensor, names: tuple[str, ...], padding: int = _GRID_PADDING) -> Tensor:
    """``grid`` (3×H×W in [0, 1], rows of equal height as :func:`make_grid` lays them out) with
    a white column on the left naming each row, so a saved grid reads without the docs."""
    row_height = (grid.shape[1] - padding) // len(names)
    font = ImageFont.load_default(size=max(10, min(24, row_height // 5)))
    width = max(int(font.getlength(name)) for name in names) + 12
    image = Image.new("RGB", (grid.shape[2] + width, grid.shape[1]), "white")
    pixels = (grid.clamp(0.0, 1.0) * 255).round().byte().permute(1, 2, 0).numpy()
    image.paste(Image.fromarray(pixels), (width, 0))
    draw = ImageDraw.Draw(image)
    for index, name in enumerate(names):
        middle = padding + index * row_height + row_height // 2
        draw.text((6, middle), name, fill="black", font=font, anchor="lm")
    return torch.from_numpy(np.asarray(image).copy()).permute(2, 0, 1).float() / 255.0


class ValidationImageGrid(pl.Callback):
    """Rows of input / output / target frames from the first validation batches, each row
    labelled on the left (:func:`label_rows`).

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
        self._rows = {name: [] for name in GRID_ROWS}

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
        rows = [torch.cat(self._rows[name]) for name in GRID_ROWS]
        grid = make_grid(torch.cat(rows), nrow=columns, padding=_GRID_PADDING, pad_value=1.0)
        grid = label_rows(grid, GRID_ROWS)
        for logger in trainer.loggers:
            if isinstance(logger, TensorBoardLogger):
                logger.experiment.add_image("val/images", grid, trainer.global_step)
        if self.save_dir is not None:
            self.save_dir.mkdir(parents=True, exist_ok=True)
            path = self.save_dir / f"val_epoch{trainer.current_epoch:03d}.png"
            pixels = (grid * 255).round().byte().permute(1, 2, 0).numpy()
            with atomic_path(path) as temporary:
                Image.fromarray(pixels).save(temporary, format="PNG")
            self.saved.append(path)


@dataclass(frozen=True)
class Interruption:
    """How a run was stopped: the signal, and the checkpoint that resumes it (None: none)."""

    signal: signal.Signals
    checkpoint: Path | None


class ResumeCheckpoint(ModelCheckpoint):
    """A ``ModelCheckpoint`` (``monitor=None``, ``filename=last``: ``last.ckpt`` after every
    epoch) that also saves when the run is interrupted, so that ``ckpt_path=last`` resumes it.

    Lightning stops a fit on SIGTERM at the next batch boundary (raising ``SIGTERMException``,
    an exit 0). Ctrl-C (SIGINT) is sent down the same path, so the state saved is one between
    two steps; a second Ctrl-C aborts at once, saving nothing. Any other exception saves
    nothing either: the last good checkpoint stays as it is. :attr:`interruption` says what
    happened, for :func:`vqe.training.train.train` to report and exit 143 / 130.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("save_on_exception", True)
        super().__init__(*args, **kwargs)
        self.interruption: Interruption | None = None
        self._signal: signal.Signals | None = None

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._route_sigint()

    def on_test_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._route_sigint()

    def _route_sigint(self) -> None:
        # Lightning has registered its SIGTERM handler by now and restores SIGINT's own handler
        # at teardown. An ignored SIGINT (nohup, a background job) stays ignored.
        if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
            try:
                signal.signal(signal.SIGINT, self._on_sigint)
            except ValueError:  # not the main thread: leave Ctrl-C as it is
                pass

    def _on_sigint(self, signum: int, frame: FrameType | None) -> None:
        self._signal = signal.SIGINT
        signal.signal(signal.SIGINT, signal.default_int_handler)  # a second Ctrl-C aborts now
        rank_zero_info("Ctrl-C: stopping after this step (press it again to abort at once)")
        sigterm = signal.getsignal(signal.SIGTERM)
        if callable(sigterm):
            sigterm(signum, frame)

    def on_exception(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException
    ) -> None:
        if not isinstance(exception, SIGTERMException):
            return
        super().on_exception(trainer, pl_module, exception)  # skipped when this step is saved
        path = Path(self.format_checkpoint_name(self._monitor_candidates(trainer)))
        saved = (
            trainer.global_step > 0
            and self._last_global_step_saved == trainer.global_step
            and path.is_file()
        )
        self.interruption = Interruption(self._signal or signal.SIGTERM, path if saved else None)


__all__ = [
    "LOGGED_RESULTS",
    "critics_used",
    "Interruption",
    "ResumeCheckpoint",
    "SubmissionWriter",
    "ValidationImageGrid",
]
