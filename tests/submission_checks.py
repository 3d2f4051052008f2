"""Test helper: a run's submission passes the checks of the organisers' ``score.py``.

The facts of the official ``codalab_scoring/score.py`` (varunj/cvpr-vqe, ``read_data``), restated:
the results folder holds exactly two ``*.csv`` files (a glob of ``<folder>/*.csv``), named
``metrics_supervised.csv`` and ``metrics_unsupervised.csv``; read with pandas, the unsupervised
table has the column set ``{video_i, m_1 … m_12}`` and 3000 rows, the supervised one
``{video_i, rmse}`` and 500 rows (a local subset: as many rows as it has videos). CodaLab unpacks
the uploaded zip into that folder, so the two files sit at the zip root.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import pandas as pd

from vqe.cli.score import main as score_main

SUPERVISED, UNSUPERVISED = "metrics_supervised.csv", "metrics_unsupervised.csv"
OFFICIAL_COLUMNS = {
    UNSUPERVISED: {"video_i", *(f"m_{i}" for i in range(1, 13))},
    SUPERVISED: {"video_i", "rmse"},
}


def check_official_folder(folder: Path, rows: dict[str, int]) -> None:
    """The official read_data's assertions on ``folder``; ``rows``: file name → row count."""
    names = sorted(path.name for path in folder.glob("*.csv"))
    assert names == sorted(OFFICIAL_COLUMNS), f"{folder} holds {names}"
    for name, columns in OFFICIAL_COLUMNS.items():
        table = pd.read_csv(folder / name)
        assert set(table.columns) == columns, (name, list(table.columns))
        assert len(table) == rows[name], (name, len(table))


#: The zip of a run: the upload, and its name when random critics scored the run.
UPLOAD_ZIP, RANDOM_CRITICS_ZIP = "submission.zip", "submission-random-critics.zip"


def check_run_submission(
    run: Path, supervised_rows: int, unsupervised_rows: int, zip_name: str = UPLOAD_ZIP
) -> None:
    """``run/submission/`` holds exactly the two CSVs and passes the official checks;
    ``run/<zip_name>`` holds exactly those two files, byte for byte, at its root, and the zip
    of the other name is absent; our ``codalab_scoring/score.py`` (``vqe.cli.score.main``)
    scores both. ``zip_name``: :data:`RANDOM_CRITICS_ZIP` for a run scored by random critics."""
    rows = {SUPERVISED: supervised_rows, UNSUPERVISED: unsupervised_rows}
    folder = run / "submission"
    assert sorted(path.name for path in folder.iterdir()) == sorted(OFFICIAL_COLUMNS)
    check_official_folder(folder, rows)
    other = RANDOM_CRITICS_ZIP if zip_name == UPLOAD_ZIP else UPLOAD_ZIP
    assert not (run / other).exists(), f"{run} holds {other} beside {zip_name}"
    with zipfile.ZipFile(run / zip_name) as archive:
        assert sorted(archive.namelist()) == sorted(OFFICIAL_COLUMNS)
        for name in OFFICIAL_COLUMNS:
            assert archive.read(name) == (folder / name).read_bytes(), name
        unpacked = run.parent / f"{run.name}_unzipped"
        archive.extractall(unpacked)
    check_official_folder(unpacked, rows)
    for results in (folder, run, run / zip_name):
        assert score_main(["--results", str(results), "--subset"]) == 0, results
