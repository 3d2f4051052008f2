"""``export``: the study's votes as the CSV ``vqe bradley-terry`` reads.

Columns ``left, right, vote, factor, rater`` (the votes format of
:mod:`vqe.preference.bradley_terry`), regular comparisons only, raters failing the gold questions
left out unless ``keep_all``. The optional details CSV holds every answer, gold included, with
video, position and timing.

Output paths are checked before anything is read or written (:func:`check_output`): a path that
is, or lies inside, one of the study's own files — ``study.json``, ``study.sqlite`` and its
``-wal``/``-shm``/``-journal``, ``videos/``, ``gold/``, or the study folder itself — is refused,
however it gets there (``..``, a symlink, a hard link); so is an existing file that is not a
``.csv`` (somebody's other file), a folder, and the same file for both outputs. An earlier CSV
is replaced — re-exporting is a normal re-run — but atomically: the CSV is written to a
temporary file in the same folder and moved over the old one with :func:`os.replace`, so an
interrupted export leaves the earlier file whole.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from vqe.study.config import CONFIG_NAME, DB_NAME, GOLD_DIR, VIDEOS_DIR, StudyError, read_config
from vqe.study.db import connect, raters_frame, votes_frame
from vqe.study.report import DEFAULT_MIN_GOLD, bt_votes, gold_table

#: The study's own files and folders, and what each is (for the refusal).
OWN_FILES = {
    CONFIG_NAME: "config",
    DB_NAME: "database",
    f"{DB_NAME}-wal": "database log",
    f"{DB_NAME}-shm": "database index",
    f"{DB_NAME}-journal": "database journal",
    VIDEOS_DIR: "video folder",
    GOLD_DIR: "gold video folder",
}


@dataclass(frozen=True)
class Export:
    path: Path
    rows: int
    excluded: list[str]  # rater labels left out


def _refuse(path: Path, what: str) -> StudyError:
    return StudyError(
        f"{path}: is the study's own {what}; exporting there would destroy the study — "
        "choose an output path outside the study's own files (e.g. votes.csv)"
    )


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist
        return False


def check_output(root: Path, path: Path, option: str) -> Path:
    """Where ``path`` really writes (symlinks and ``..`` resolved), if it may be written;
    a one-line :class:`StudyError` otherwise (see the module docstring)."""
    study, target = root.resolve(), path.resolve()
    if target == study:
        raise _refuse(path, "folder")
    for name, what in OWN_FILES.items():
        own = study / name
        if target == own or target.is_relative_to(own) or _same_file(target, own):
            raise _refuse(path, what)
    if target.exists():
        if not target.is_file():
            raise StudyError(f"{path}: exists and is not a file; choose another {option} path")
        if target.suffix.lower() != ".csv":
            raise StudyError(
                f"{path}: exists and is not a .csv file, so it is not replaced; remove it or "
                f"choose another {option} path"
            )
    return target


def write_csv_atomically(frame: pd.DataFrame, path: Path) -> None:
    """Write ``frame`` beside ``path``, then move it over ``path`` in one step."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # umask applies
    try:
        with os.fdopen(descriptor, "w", newline="") as handle:
            frame.to_csv(handle, index=False)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def export_votes(
    root: str | Path,
    path: str | Path,
    min_gold: float = DEFAULT_MIN_GOLD,
    keep_all: bool = False,
    details: str | Path | None = None,
) -> Export:
    root, path = Path(root), Path(path)
    read_config(root)  # a clear error when root is not a study
    target = check_output(root, path, "output")
    details_target = None
    if details is not None:
        details_target = check_output(root, Path(details), "--details")
        if details_target == target:
            raise StudyError(
                f"{details}: the votes and --details would be the same file; give two paths"
            )
    connection = connect(root / DB_NAME)
    try:
        votes, raters = votes_frame(connection), raters_frame(connection)
    finally:
        connection.close()
    table = gold_table(votes, raters, min_gold)
    passed = table["passed"] | keep_all
    table_out = bt_votes(votes, set(table.loc[passed, "rater_id"]))
    write_csv_atomically(table_out, target)
    if details_target is not None:
        write_csv_atomically(votes, details_target)
    return Export(path, len(table_out), list(table.loc[~passed, "rater"]))
