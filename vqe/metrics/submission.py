"""Write the two submission CSVs from per-video values, and the zip to upload.

Evaluation computes, per video, the RMSE (supervised) or the 12 VQA scores (unsupervised) and
hands them here; :mod:`vqe.metrics.score` reads the files back. Rows are sorted by video id.
A NaN value is written as ``nan`` — the scorer counts it as missing (the official rule) instead
of this writer dropping the video. Existing files are never replaced unless ``overwrite=True``.

The official ``score.py`` asserts that its folder holds exactly two ``*.csv`` files, these two;
so the writer refuses a folder that holds any other CSV, and a run keeps its other tables out of
``<run>/submission/`` (:mod:`vqe.metrics.results`). :func:`zip_submission` packs the two files at
the zip root — the CodaLab upload (``submission.zip``; ``submission-random-critics.zip`` when
random critics scored it, which is not one).
"""

from __future__ import annotations

import csv
import math
import numbers
import os
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from vqe.atomic import atomic_path
from vqe.schema import (
    SCORE_COLUMNS,
    SUPERVISED_METRICS_COLUMNS,
    SUPERVISED_METRICS_CSV,
    UNSUPERVISED_METRICS_COLUMNS,
    UNSUPERVISED_METRICS_CSV,
)

#: The folder of a run that holds the two CSVs and nothing else, and the zip beside it.
SUBMISSION_DIR = "submission"
SUBMISSION_ZIP = "submission.zip"
#: The zip's name when random critics scored the unsupervised videos: its m_1 … m_12 mean
#: nothing, and a name other than the upload's keeps anyone from uploading it by mistake.
RANDOM_CRITICS_ZIP = "submission-random-critics.zip"
SUBMISSION_FILES = (SUPERVISED_METRICS_CSV, UNSUPERVISED_METRICS_CSV)


def other_csvs(folder: str | Path) -> list[str]:
    """Names of ``*.csv`` files in ``folder`` besides the two submission files (sorted)."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted(path.name for path in folder.glob("*.csv") if path.name not in SUBMISSION_FILES)


def _checked_rows(values: Mapping[str, Sequence[float]], width: int, what: str) -> list[list[str]]:
    rows = []
    for video_id in sorted(values):
        cells = list(values[video_id])
        if not isinstance(video_id, str) or not video_id.strip() or "," in video_id:
            raise ValueError(
                f"{what}: video id {video_id!r} must be a non-empty string without commas"
            )
        if len(cells) != width:
            raise ValueError(
                f"{what}: video {video_id!r} has {len(cells)} values, expected {width}"
            )
        for cell in cells:
            if not isinstance(cell, numbers.Real) or math.isinf(cell):
                raise ValueError(
                    f"{what}: video {video_id!r} has value {cell!r}; need finite floats or NaN"
                )
        rows.append([video_id, *(repr(float(cell)) for cell in cells)])
    return rows


def _write_csv(path: Path, header: Sequence[str], rows: list[list[str]]) -> None:
    with atomic_path(path) as temporary, temporary.open("w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


def write_submission(
    results_dir: str | Path,
    supervised: Mapping[str, float],
    unsupervised: Mapping[str, Sequence[float]],
    overwrite: bool = False,
) -> tuple[Path, Path]:
    """Write ``metrics_supervised.csv`` (video id → rmse) and ``metrics_unsupervised.csv``
    (video id → ``m_1 … m_12``) into ``results_dir``; returns their paths.

    Floats are written with ``repr`` so reading them back gives the same numbers. Everything is
    checked before either file is written, so a bad value leaves no half-written submission.
    """
    results_dir = Path(results_dir)
    supervised_path = results_dir / SUPERVISED_METRICS_CSV
    unsupervised_path = results_dir / UNSUPERVISED_METRICS_CSV
    supervised_rows = _checked_rows(
        {video_id: [rmse] for video_id, rmse in supervised.items()}, 1, SUPERVISED_METRICS_CSV
    )
    unsupervised_rows = _checked_rows(unsupervised, len(SCORE_COLUMNS), UNSUPERVISED_METRICS_CSV)
    strangers = other_csvs(results_dir)
    if strangers:
        raise FileExistsError(
            f"{results_dir} holds other CSV files ({', '.join(strangers)}); the official score.py "
            f"requires a folder with exactly {' and '.join(SUBMISSION_FILES)}: write the "
            "submission into a folder of its own, or move those files out"
        )
    if not overwrite:
        existing = [str(path) for path in (supervised_path, unsupervised_path) if path.exists()]
        if existing:
            raise FileExistsError(
                f"{', '.join(existing)} already exist; pass overwrite=True to replace them"
            )
    results_dir.mkdir(parents=True, exist_ok=True)
    _write_csv(supervised_path, SUPERVISED_METRICS_COLUMNS, supervised_rows)
    _write_csv(unsupervised_path, UNSUPERVISED_METRICS_COLUMNS, unsupervised_rows)
    return supervised_path, unsupervised_path


def zip_submission(submission_dir: str | Path, zip_path: str | Path) -> Path:
    """Pack the two CSVs of ``submission_dir`` at the root of ``zip_path`` (replaced if it
    exists) — the file to upload to CodaLab."""
    submission_dir, zip_path = Path(submission_dir), Path(zip_path)
    missing = [name for name in SUBMISSION_FILES if not (submission_dir / name).is_file()]
    if missing:
        raise FileNotFoundError(f"{submission_dir}: {', '.join(missing)} not found; nothing to zip")
    partial = zip_path.with_name(zip_path.name + ".partial")  # never leave half a zip behind
    with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name in SUBMISSION_FILES:
            archive.write(submission_dir / name, arcname=name)
    os.replace(partial, zip_path)
    return zip_path
