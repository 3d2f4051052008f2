"""The files a scoring run leaves in its folder — the test loop after training,
``python -m vqe.evaluate`` and ``vqe score-outputs`` write the same layout::

    <run>/submission/metrics_supervised.csv     official schema: video_i, rmse
    <run>/submission/metrics_unsupervised.csv   official schema: video_i, m_1 … m_12
    <run>/submission.zip                        those two files at the zip root: the upload
    <run>/score.json                            the objective score (vqe.metrics.score) and
                                                which critic weights scored it
    <run>/tables/quality.csv                    video_i, subset, frames, psnr, ssim[, lpips]
    <run>/tables/temporal.csv                   video_i, subset, flicker[, warping_error]

A submission whose unsupervised videos were scored by random critics (the demo, tests) is zipped
as ``submission-random-critics.zip`` instead — its m_1 … m_12 mean nothing, so it must not be
uploaded by mistake — and its ``score.json`` says ``"critics": "random"`` with a ``note``, as the
printed score does (:class:`CriticsUsed`).

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
from typing import TYPE_CHECKING, Any

from vqe.atomic import atomic_path
from vqe.metrics.score import (
    RANDOM_CRITICS_LABEL,
    RANDOM_CRITICS_NOTE,
    ScoreReport,
    SubmissionError,
    score_submission,
    write_json,
)
from vqe.metrics.submission import (
    RANDOM_CRITICS_ZIP,
    SUBMISSION_DIR,
    SUBMISSION_ZIP,
    write_submission,
    zip_submission,
)
from vqe.metrics.video_metrics import VideoKey
from vqe.schema import SUBSET, SUPERVISED_METRICS_CSV, UNSUPERVISED_METRICS_CSV, VIDEO_KEY

if TYPE_CHECKING:  # the critics are only read here: scoring CSVs needs no torch
    from torch import nn

TABLES_DIR = "tables"
SCORE_JSON = "score.json"
QUALITY_CSV = "quality.csv"
TEMPORAL_CSV = "temporal.csv"
FRAMES = "frames"

#: What :class:`CriticsUsed` says of a critic without weights from a file.
RANDOM = "random"


def _weights_name(critic: nn.Module) -> str:
    """``random``, or ``<file name> (sha256 <digest>)`` of the weights the critic loaded."""
    digest = str(getattr(critic, "weights_digest", ""))
    # The loaders mark their seeded random critics "random-…"; a critic built in code without
    # them has no digest and its initial, random weights.
    if not digest or digest.startswith(f"{RANDOM}-"):
        return RANDOM
    name = Path(str(getattr(critic, "weights_file", "") or "")).name
    return f"{name} (sha256 {digest})" if name else f"sha256 {digest}"


@dataclass(frozen=True)
class CriticsUsed:
    """The weights of the critics (VQA, DOVER) that scored a submission's unsupervised videos:
    ``random`` or the file each loaded (name and digest)."""

    vqa: str
    dover: str

    @classmethod
    def of(cls, vqa: nn.Module, dover: nn.Module) -> CriticsUsed:
        """From the critics themselves: a VQA and a DOVER network or ``DoverCritic``."""
        return cls(_weights_name(vqa), _weights_name(getattr(dover, "network", dover)))

    @property
    def random(self) -> bool:
        """Any critic random: the m_1 … m_12 columns, so the score, mean nothing."""
        return RANDOM in (self.vqa, self.dover)

    @property
    def note(self) -> str:
        if self.random:
            return RANDOM_CRITICS_NOTE
        return (
            "scored with the critic weights in critic_weights: the challenge score if they are "
            "the organisers' VQA.ckpt and DOVER.pth and DOVER ran its official setting"
        )

    def to_dict(self) -> dict[str, Any]:
        """The fields ``score.json`` gets: ``critics`` (``random`` or ``given``), the weights
        of each and a ``note`` on what the score is."""
        return {
            "critics": RANDOM if self.random else "given",
            "critic_weights": {"vqa": self.vqa, "dover": self.dover},
            "note": self.note,
        }


@dataclass(frozen=True)
class RunLayout:
    """Where each file of a run goes (see the module notes); ``random_critics``: the run's
    critics were random, so its zip is not named as the upload."""

    root: Path
    random_critics: bool = False

    @property
    def submission_dir(self) -> Path:
        return self.root / SUBMISSION_DIR

    @property
    def submission_zip(self) -> Path:
        return self.root / (RANDOM_CRITICS_ZIP if self.random_critics else SUBMISSION_ZIP)

    @property
    def other_zip(self) -> Path:
        """The zip name of the other kind of critics: an earlier scoring's, if present."""
        return self.root / (SUBMISSION_ZIP if self.random_critics else RANDOM_CRITICS_ZIP)

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
    critics: CriticsUsed | None = None  # None: no critic scored it (no unsupervised rows)

    @property
    def score_label(self) -> str | None:
        """What follows the printed score: None for a score of given critics."""
        return RANDOM_CRITICS_LABEL if self.critics is not None and self.critics.random else None

    def format_score(self) -> str:
        """The score's lines (:meth:`ScoreReport.format`), saying so when critics were random."""
        if self.score is None:
            return f"no score: {self.score_error}"
        return self.score.format(self.score_label)

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
        if self.critics is not None:
            results.update(self.critics.to_dict())
        return results

    def summary(self) -> str:
        """The lines a user reads after a run: where the files are, the table means."""
        layout = self.layout
        if layout.random_critics:
            zipped = f"zip {layout.submission_zip}: random critics, not for upload"
        else:
            zipped = f"upload {layout.submission_zip}"
        lines = [f"submission: {layout.submission_dir} ({zipped})"]
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
    critics: CriticsUsed | None = None,
) -> RunResults:
    """Write every file of the layout under ``root`` and score the submission.

    ``subset`` scores whatever videos the CSVs hold instead of the official 500 + 3000 ids. A
    submission that cannot be scored leaves ``score_error`` set (and no ``score.json``).
    ``critics``: the critics that scored the unsupervised rows; random ones name the zip
    ``submission-random-critics.zip`` and are recorded in ``score.json``.
    """
    layout = RunLayout(Path(root), random_critics=critics is not None and critics.random)
    write_submission(layout.submission_dir, supervised, unsupervised, overwrite=overwrite)
    zip_submission(layout.submission_dir, layout.submission_zip)
    if layout.other_zip.is_file():  # an earlier scoring's zip no longer matches submission/
        layout.other_zip.unlink()
    results = RunResults(layout, len(supervised), len(unsupervised), critics=critics)
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
    write_json(results.score, layout.score_json, critics.to_dict() if critics else None)
    return results


__all__ = [
    "RANDOM_CRITICS_LABEL",
    "QUALITY_CSV",
    "SCORE_JSON",
    "TABLES_DIR",
    "TEMPORAL_CSV",
    "CriticsUsed",
    "RunLayout",
    "RunResults",
    "finite_means",
    "write_quality_table",
    "write_results",
    "write_temporal_table",
]
