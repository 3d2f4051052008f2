"""The files a scoring run leaves in its folder — the test loop after training,
``python -m vqe.evaluate`` and ``python -m vqe.metrics.score_outputs`` write the same layout::

    <run>/submission/metrics_supervised.csv     official schema: video_i, rmse
    <run>/submission/metrics_unsupervised.csv   official schema: video_i, m_1 … m_12
    <run>/submission.zip                        those two files at the zip root: the upload
    <run>/score.json                            the objective score (vqe.metrics.score)
    <run>/tables/quality.csv                    video_i, subset, frames, psnr, ssim[, lpips]
    <run>/tables/temporal.csv                   video_i, subset, flicker[, warping_error]

``submission/`` holds exactly the two CSVs because the official ``score.py`` asserts that its
folder holds exactly two ``*.csv`` files; every other table lives in ``tables/``. Rows of the
tables are sorted by video id; values are written with ``repr`` (``nan`` where a measure has no
value, ``inf`` for the PSNR of a frame equal to its target).
"""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vqe.atomic import atomic_path
from vqe.metrics.score import ScoreReport, SubmissionError, score_submission, write_json
from vqe.metrics.submission import (
    SUBMISSION_DIR,
    SUBMISSION_ZIP,
    write_submission,
    zip_submission,
)
from vqe.metrics.video_metrics import VideoKey
from vqe.schema import SUBSET, SUPERVISED_METRICS_CSV, UNSUPERVISED_METRICS_CSV, VIDEO_KEY

TABLES_DIR = "tables"
SCORE_JSON = "score.json"
QUALITY_CSV = "quality.csv"
TEMPORAL_CSV = "temporal.csv"
FRAMES = "frames"


@dataclass(frozen=True)
class RunLayout:
    """Where each file of a run goes (see the module notes)."""

    root: Path

    @property
    def submission_dir(self) -> Path:
        return self.root / SUBMISSION_DIR

    @property
    def submission_zip(self) -> Path:
        return self.root / SUBMISSION_ZIP

    @property
    def score_json(self) -> Path:
        return self.root / SCORE_JSON

    @property
    def quality_csv(self) -> Path:
        return self.root / TABLES_DIR / QUALITY_CSV

    @property
    def temporal_csv(self) -> Path:
        return self.root / TABLES_DIR / TEMPORAL_CSV


def _by_video(key: tuple[VideoKey, Any]) -> tuple[str, str]:
    (subset, video), _ = key
    return video, subset


def _write_rows(path: Path, header: Sequence[str], rows: list[list[Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as temporary, temporary.open("w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
    return path


def write_quality_table(
    path: str | Path,
    means: Mapping[VideoKey, tuple[int, Sequence[float]]],
    columns: Sequence[str],
) -> Path:
    """``video_i, subset, frames, <columns>``: per-video means of the quality rows."""
    rows = []
    for (subset, video), (frames, values) in sorted(means.items(), key=_by_video):
        if len(values) != len(columns):
            raise ValueError(f"quality of {video}: {len(values)} values for columns {columns}")
        rows.append([video, subset, frames, *(repr(float(value)) for value in values)])
    return _write_rows(Path(path), [VIDEO_KEY, SUBSET, FRAMES, *columns], rows)


def write_temporal_table(
    path: str | Path, values: Mapping[VideoKey, Mapping[str, float]], measures: Sequence[str]
) -> Path:
    """``video_i, subset, <measures>`` per video."""
    rows = [
        [video, subset, *(repr(float(row[name])) for name in measures)]
        for (subset, video), row in sorted(values.items(), key=_by_video)
    ]
    return _write_rows(Path(path), [VIDEO_KEY, SUBSET, *measures], rows)


def finite_means(rows: Sequence[Sequence[float]], columns: Sequence[str]) -> dict[str, float]:
    """Per column, the mean over the rows with a finite value (columns without one are left
    out): an ``inf`` PSNR or a NaN flicker does not swamp the summary."""
    means = {}
    for index, name in enumerate(columns):
        finite = [row[index] for row in rows if math.isfinite(row[index])]
        if finite:
            means[name] = math.fsum(finite) / len(finite)
    return means


@dataclass
class RunResults:
    """What :func:`write_results` wrote and found."""

    layout: RunLayout
    supervised_videos: int
    unsupervised_videos: int
    mean_rmse: float | None = None
    quality_means: dict[str, float] = field(default_factory=dict)
    temporal_means: dict[str, float] = field(default_factory=dict)
    wrote_quality: bool = False
    wrote_temporal: bool = False
    score: ScoreReport | None = None
    score_error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Flat results (paths as strings, ``mean_<measure>`` for the table means)."""
        layout = self.layout
        results: dict[str, Any] = {
            "submission_dir": str(layout.submission_dir),
            "submission_zip": str(layout.submission_zip),
            "supervised_csv": str(layout.submission_dir / SUPERVISED_METRICS_CSV),
            "unsupervised_csv": str(layout.submission_dir / UNSUPERVISED_METRICS_CSV),
            "supervised_videos": self.supervised_videos,
            "unsupervised_videos": self.unsupervised_videos,
        }
        if self.mean_rmse is not None:
            results["mean_rmse"] = self.mean_rmse
        if self.wrote_quality:
            results["quality_csv"] = str(layout.quality_csv)
        if self.wrote_temporal:
            results["temporal_csv"] = str(layout.temporal_csv)
        for name, value in {**self.quality_means, **self.temporal_means}.items():
            results[f"mean_{name}"] = value
        if self.score is not None:
            results["score"] = self.score.score
            results["means"] = self.score.means
            results["score_json"] = str(layout.score_json)
        if self.score_error is not None:
            results["score_error"] = self.score_error
        return results

    def summary(self) -> str:
        """The lines a user reads after a run: where the files are, the table means."""
        layout = self.layout
        lines = [f"submission: {layout.submission_dir} (upload {layout.submission_zip})"]
        if self.wrote_quality:
            means = ", ".join(f"{name} {value:.4f}" for name, value in self.quality_means.items())
            lines.append(f"quality (mean over supervised videos): {means or 'no finite value'}")
            lines.append(f"  per video: {layout.quality_csv}")
        if self.wrote_temporal:
            means = ", ".join(f"{name} {value:.6g}" for name, value in self.temporal_means.items())
            lines.append(f"temporal (mean over videos): {means or 'no finite value'}")
            lines.append(f"  per video: {layout.temporal_csv}")
        return "\n".join(lines)


def write_results(
    root: str | Path,
    supervised: Mapping[str, float],
    unsupervised: Mapping[str, Sequence[float]],
    *,
    quality: Mapping[VideoKey, tuple[int, Sequence[float]]] | None = None,
    quality_columns: Sequence[str] = (),
    temporal: Mapping[VideoKey, Mapping[str, float]] | None = None,
    temporal_measures: Sequence[str] = (),
    subset: bool = False,
    overwrite: bool = False,
) -> RunResults:
    """Write every file of the layout under ``root`` and score the submission.

    ``subset`` scores whatever videos the CSVs hold instead of the official 500 + 3000 ids. A
    submission that cannot be scored leaves ``score_error`` set (and no ``score.json``).
    """
    layout = RunLayout(Path(root))
    write_submission(layout.submission_dir, supervised, unsupervised, overwrite=overwrite)
    zip_submission(layout.submission_dir, layout.submission_zip)
    results = RunResults(layout, len(supervised), len(unsupervised))
    if supervised:
        results.mean_rmse = math.fsum(supervised.values()) / len(supervised)
    if quality:
        write_quality_table(layout.quality_csv, quality, quality_columns)
        rows = [values for _, values in quality.values()]
        results.quality_means = finite_means(rows, quality_columns)
        results.wrote_quality = True
    if temporal and temporal_measures:
        write_temporal_table(layout.temporal_csv, temporal, temporal_measures)
        rows = [[row[name] for name in temporal_measures] for row in temporal.values()]
        results.temporal_means = finite_means(rows, temporal_measures)
        results.wrote_temporal = True
    row_counts = {"supervised_rows": None, "unsupervised_rows": None} if subset else {}
    try:
        results.score = score_submission(layout.submission_dir, **row_counts)
    except SubmissionError as error:
        results.score_error = str(error)
        return results
    write_json(results.score, layout.score_json)
    return results


__all__ = [
    "QUALITY_CSV",
    "SCORE_JSON",
    "TABLES_DIR",
    "TEMPORAL_CSV",
    "RunLayout",
    "RunResults",
    "finite_means",
    "write_quality_table",
    "write_results",
    "write_temporal_table",
]
