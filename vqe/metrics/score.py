"""The official objective score of a submission: reading, validation and the formula.

A submission folder holds two CSVs (names and columns from :mod:`vqe.schema`):

- ``metrics_unsupervised.csv``: ``video_i, m_1 … m_12`` — per test video, the mean of the VQA's
  ``[p, a1 … a11]`` for (enhanced, input);
- ``metrics_supervised.csv``: ``video_i, rmse`` — per synthetic test video, the mean per-frame
  RMSE on the ``(v − 128)/128`` scale.

The score is ``S = [(m_1 + m_2 + m_3 + m_4 + (1 − m_5) + m_6 + … + m_12)/12] / mean(rmse)``,
with the column means taken over the official video list.

What counts as *missing* (the official rule fills it with −9999 for an ``m_*`` cell and 9999 for
an ``rmse`` cell, after reporting it):

- a cell that is empty or one of ``nan, na, n/a, null, none`` (any case);
- a whole expected video id absent from the file: every cell of its row is missing.

Everything else that is wrong is an error (:class:`SubmissionError`, one message listing every
problem of both files): a folder holding other ``*.csv`` files besides the two (the official
``score.py`` asserts exactly two), a missing file, missing / extra / repeated columns, rows with the wrong
number of fields, empty / repeated / unknown video ids, non-numeric or infinite values, negative
RMSE. With ``strict=True`` missing cells and missing video ids are errors too.

Values the critic cannot produce (:data:`VALUE_RANGES`: ``m_1`` outside [0, 1], ``m_2 … m_12``
outside [-1, 1], ``rmse`` above 2) are scored as given, with a warning naming the file and the
lines; with ``strict=True`` they are errors.

Note that the rule is applied literally: a missing ``m_5`` counts as −9999, so its term
``1 − m_5`` becomes 10000; the report warns about it.

Every ``video_i`` must be a plain video name (:func:`plain_video_name`: one file-name part like
``video_0001``, without a path separator, a leading dot or control characters), in subset mode
too: an id such as ``../../etc/passwd`` is an error naming the line, since tools downstream turn
video ids into file names.

Size caps keep a hostile or broken submission from exhausting memory (a 580 KB zip can inflate to
hundreds of MB of rows): at most :data:`DEFAULT_MAX_BYTES` of CSV are read (each file of a
folder; a zip's CSV members together, uncompressed, checked against the sizes the zip declares
before anything is inflated and counted again while inflating) and at most
:data:`DEFAULT_MAX_ROWS` rows per CSV; ``--max-bytes`` / ``--max-rows`` raise them. A zip is
unpacked like CodaLab does, into a scratch folder, but only its ``*.csv`` members at the root,
the only ones the scorer reads: a member whose name leads elsewhere (``../x.csv``, ``/x.csv``)
is never written. The JSON report is written atomically (:mod:`vqe.atomic`).

The command (``vqe score``, ``codalab_scoring/score.py``) is :mod:`vqe.cli.score`.
"""

from __future__ import annotations

import csv
import json
import math
import re
import tempfile
import zipfile
import zlib
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from vqe.atomic import atomic_write_text
from vqe.metrics.submission import (
    RANDOM_CRITICS_ZIP,
    SUBMISSION_DIR,
    SUBMISSION_FILES,
    other_csvs,
)
from vqe.schema import (
    DECREASING_SCORE_COLUMN,
    OFFICIAL_SUPERVISED_VIDEOS,
    OFFICIAL_UNSUPERVISED_VIDEOS,
    RMSE,
    SCORE_COLUMNS,
    SUPERVISED_METRICS_CSV,
    UNSUPERVISED_METRICS_CSV,
    VIDEO_KEY,
)

#: The official fill values for missing cells.
MISSING_SCORE = -9999.0
MISSING_RMSE = 9999.0
#: Cell texts (compared lower-case, without surrounding spaces) that mean "no value".
MISSING_TOKENS = frozenset({"", "nan", "na", "n/a", "null", "none"})
#: What each column can hold: the VQA's p lies in [0, 1] and its auxiliary scores are clamped to
#: [-1, 1] (so are their per-video means); on the (v − 128)/128 scale two frames differ by at most
#: 255/128 per pixel, so an RMSE above 2 is not one (an RMSE on the 0–255 scale, say).
VALUE_RANGES: dict[str, tuple[float, float]] = {
    SCORE_COLUMNS[0]: (0.0, 1.0),
    **{column: (-1.0, 1.0) for column in SCORE_COLUMNS[1:]},
    RMSE: (0.0, 2.0),
}
#: How many offending cells / ids one message lists before it summarises the rest.
_LIST_LIMIT = 10
#: What a ``video_i`` may be: one plain file-name part, like video_0001 (tools downstream turn
#: ids into file names): no path separator, no leading dot or space, at most 255 characters.
#: Control characters are refused too (:func:`plain_video_name`).
VIDEO_NAME = re.compile(r"[^./\\\s][^/\\]{0,254}")
#: The most bytes of CSV read (per file of a folder; a zip's CSV members together, uncompressed).
#: The official submission (3,000 + 500 rows) is 473 KB and the largest local subset, the 10,000
#: training clips, about 1.6 MB. Parsing holds 8 to 20 bytes of memory per byte of CSV (190 MB of
#: rows once peaked at 3.75 GB); with the row cap this keeps a scoring run to a few hundred MB.
DEFAULT_MAX_BYTES = 16 << 20
#: The most data rows read per CSV: 30 times the official 3,000, 10 times the training clips.
DEFAULT_MAX_ROWS = 100_000
#: How much of a zip member is inflated at a time.
_CHUNK_BYTES = 1 << 20


class SubmissionError(ValueError):
    """The submission cannot be scored; the message lists every problem found."""


def official_video_ids(count: int) -> list[str]:
    """The official video ids ``video_0001 … video_<count>`` of a test split."""
    return [f"video_{index:04d}" for index in range(1, count + 1)]


def _listing(items: Sequence[str]) -> str:
    shown = ", ".join(items[:_LIST_LIMIT])
    more = len(items) - _LIST_LIMIT
    return shown + (f" … and {more} more" if more > 0 else "")


@dataclass(frozen=True)
class MetricsTable:
    """One metrics CSV after validation; missing cells are NaN, missing rows absent."""

    path: Path
    columns: tuple[str, ...]  # the value columns, in schema order
    values: dict[str, list[float]]  # video id → values in ``columns`` order (NaN = missing)
    missing_ids: tuple[str, ...]  # expected ids that have no row
    out_of_range: tuple[str, ...] = ()  # "line L column=text" of values outside VALUE_RANGES

    def missing_cells(self) -> dict[str, int]:
        """Number of missing (NaN) cells per column, not counting missing rows."""
        counts = dict.fromkeys(self.columns, 0)
        for row in self.values.values():
            for column, value in zip(self.columns, row):
                counts[column] += math.isnan(value)
        return counts


def plain_video_name(text: str) -> bool:
    """Whether ``text`` is a plain video name (:data:`VIDEO_NAME`, and printable)."""
    return text.isprintable() and VIDEO_NAME.fullmatch(text) is not None


def _parse_cell(text: str) -> float | str:
    """A cell's value, NaN when missing, or the reason it is invalid."""
    if text.strip().lower() in MISSING_TOKENS:
        return math.nan
    try:
        value = float(text)
    except ValueError:
        return "not a number"
    if not math.isfinite(value):
        return "not finite"
    return value


def _range_problem(column: str, value: float) -> str | None:
    """Why ``value`` cannot be a ``column`` value (None when it can; NaN is a missing cell)."""
    low, high = VALUE_RANGES[column]
    if math.isnan(value) or low <= value <= high:
        return None
    return f"outside [{low:g}, {high:g}]"


def _size_cap_error(what: str, size: int, max_bytes: int) -> SubmissionError:
    """``what`` ("FILE: N bytes") is over the cap; ``size`` is what --max-bytes would need."""
    return SubmissionError(
        f"{what}, over the {max_bytes}-byte cap on the CSV read for a submission (the official "
        f"one is under 1 MB); if it really is that big, pass --max-bytes {size}"
    )


def _read_rows(path: Path, max_bytes: int, max_rows: int) -> list[list[str]]:
    """The non-blank rows of a CSV, header included, refusing files over the caps before (bytes)
    or while (rows) reading them."""
    size = path.stat().st_size
    if size > max_bytes:
        raise _size_cap_error(f"{path}: {size} bytes", size, max_bytes)
    rows: list[list[str]] = []
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            for row in csv.reader(handle):
                if not row:  # blank lines carry nothing
                    continue
                if len(rows) > max_rows:  # the header and max_rows rows are in already
                    raise SubmissionError(
                        f"{path}: more than {max_rows} rows, the cap per CSV (the official test "
                        f"set has {OFFICIAL_UNSUPERVISED_VIDEOS} videos); if it really has more, "
                        "pass --max-rows with a higher count"
                    )
                rows.append(row)
    except (UnicodeDecodeError, csv.Error) as error:
        raise SubmissionError(f"{path}: not a readable UTF-8 CSV ({error})") from error
    return rows


def _header_problems(header: Sequence[str], wanted: Sequence[str]) -> list[str]:
    """What is wrong with a header that must be exactly ``wanted`` (in any order)."""
    problems: list[str] = []
    repeated = sorted(name for name, count in Counter(header).items() if count > 1)
    missing_columns = [name for name in wanted if name not in header]
    extra_columns = [name for name in header if name not in wanted]
    if repeated:
        problems.append(f"repeated columns {repeated}")
    if missing_columns:
        problems.append(f"missing columns {missing_columns}")
    if extra_columns:
        problems.append(f"unexpected columns {extra_columns} (write the CSV without an index)")
    return problems


def _parse_rows(
    rows: Sequence[Sequence[str]], value_columns: Sequence[str]
) -> tuple[dict[str, list[float]], list[str], list[str]]:
    """The data rows under ``rows[0]`` as {video id: values}, the problems that refuse the file
    and the values outside their possible range (refused only in strict mode)."""
    header = rows[0]
    positions = [header.index(name) for name in value_columns]
    key_position = header.index(VIDEO_KEY)
    values: dict[str, list[float]] = {}
    bad_rows: list[str] = []
    bad_cells: list[str] = []
    empty_ids: list[str] = []
    odd_ids: list[str] = []
    repeated_ids: list[str] = []
    out_of_range: list[str] = []
    for line, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):
            bad_rows.append(f"line {line} has {len(row)} fields")
            continue
        video_id = row[key_position].strip()
        if not video_id:
            empty_ids.append(f"line {line}")
            continue
        if not plain_video_name(video_id):
            odd_ids.append(f"line {line} {VIDEO_KEY}={video_id!r}")
            continue
        if video_id in values:
            repeated_ids.append(f"{video_id} (line {line})")
            continue
        parsed: list[float] = []
        for column, position in zip(value_columns, positions):
            cell = _parse_cell(row[position])
            if isinstance(cell, str):
                bad_cells.append(f"line {line} {column}={row[position]!r} ({cell})")
                cell = math.nan
            elif column == RMSE and cell < 0:
                bad_cells.append(f"line {line} {column}={row[position]!r} (negative)")
            elif reason := _range_problem(column, cell):
                out_of_range.append(f"line {line} {column}={row[position].strip()} ({reason})")
            parsed.append(cell)
        values[video_id] = parsed

    problems: list[str] = []
    if bad_rows:
        problems.append(f"rows with the wrong number of fields: {_listing(bad_rows)}")
    if empty_ids:
        problems.append(f"empty {VIDEO_KEY} at {_listing(empty_ids)}")
    if odd_ids:
        problems.append(
            f"{VIDEO_KEY} values that are not plain video names (one file-name part like "
            f"video_0001: no / or \\, no leading dot, no control characters): {_listing(odd_ids)}"
        )
    if repeated_ids:
        problems.append(f"repeated {VIDEO_KEY}: {_listing(repeated_ids)}")
    if bad_cells:
        problems.append(f"invalid values: {_listing(bad_cells)}")
    return values, problems, out_of_range


def _id_problems(
    values: Mapping[str, list[float]], expected_ids: Sequence[str], strict: bool
) -> tuple[list[str], tuple[str, ...]]:
    """Ids outside ``expected_ids`` (always refused) and the expected ids the file lacks
    (refused when ``strict``): (problems, missing ids)."""
    problems: list[str] = []
    expected = set(expected_ids)
    unknown = [video_id for video_id in values if video_id not in expected]
    missing_ids = tuple(video_id for video_id in expected_ids if video_id not in values)
    if unknown:
        problems.append(
            f"{len(unknown)} unknown {VIDEO_KEY} (expected {len(expected_ids)} videos "
            f"{expected_ids[0]} … {expected_ids[-1]}; for a local subset score with "
            f"subset mode): {_listing(unknown)}"
        )
    if strict and missing_ids:
        problems.append(
            f"expected {len(expected_ids)} rows, found {len(values)}; "
            f"{len(missing_ids)} missing {VIDEO_KEY}: {_listing(list(missing_ids))}"
        )
    return problems, missing_ids


def read_metrics_csv(
    path: str | Path,
    value_columns: Sequence[str],
    expected_ids: Sequence[str] | None,
    strict: bool = False,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_rows: int = DEFAULT_MAX_ROWS,
) -> MetricsTable:
    """Read and validate one metrics CSV.

    ``expected_ids=None`` accepts whatever ids the file holds (a local subset); otherwise ids
    outside the list are errors and ids absent from the file are reported as missing (an error
    when ``strict``). Either way every id must be a plain name (:func:`plain_video_name`). A file over
    ``max_bytes`` bytes or ``max_rows`` data rows is refused.
    """
    path = Path(path)
    if not path.is_file():
        raise SubmissionError(f"{path}: file not found; the results folder must hold it")
    rows = _read_rows(path, max_bytes, max_rows)
    if not rows:
        raise SubmissionError(f"{path}: the file is empty; expected a header row {VIDEO_KEY},...")
    wanted = (VIDEO_KEY, *value_columns)
    if problems := _header_problems(rows[0], wanted):
        raise SubmissionError(
            f"{path}: " + "; ".join(problems) + f"; the header must be {','.join(wanted)}"
        )

    values, problems, out_of_range = _parse_rows(rows, value_columns)
    missing_ids: tuple[str, ...] = ()
    if expected_ids is not None:
        id_problems, missing_ids = _id_problems(values, expected_ids, strict)
        problems += id_problems
    elif not values and not problems:
        problems.append("no data rows")

    table = MetricsTable(path, tuple(value_columns), values, missing_ids, tuple(out_of_range))
    if strict:
        nan_cells = {column: count for column, count in table.missing_cells().items() if count}
        if nan_cells:
            problems.append(f"missing cells per column {nan_cells} (strict mode)")
        if out_of_range:
            problems.append(
                f"{len(out_of_range)} values outside their possible range (strict mode): "
                f"{_listing(out_of_range)}"
            )
    if problems:
        raise SubmissionError(f"{path}: " + "; ".join(problems))
    return table


def official_score(means: Mapping[str, float]) -> float:
    """The formula on column means: ``m_1 … m_12`` (with ``1 − m_5``) averaged, over mean rmse."""
    terms = [
        1.0 - means[column] if column == DECREASING_SCORE_COLUMN else means[column]
        for column in SCORE_COLUMNS
    ]
    mean_rmse = means[RMSE]
    if mean_rmse <= 0:
        raise SubmissionError(
            f"mean {RMSE} is {mean_rmse}; the score divides by it, so it must be > 0"
        )
    return math.fsum(terms) / len(terms) / mean_rmse


def _filled_means(table: MetricsTable, fill: float) -> dict[str, float]:
    """Column means over every expected video, with missing cells and rows counted as ``fill``."""
    rows = len(table.values) + len(table.missing_ids)
    means = {}
    for index, column in enumerate(table.columns):
        cells = [row[index] for row in table.values.values()]
        cells = [fill if math.isnan(value) else value for value in cells]
        cells += [fill] * len(table.missing_ids)
        means[column] = math.fsum(cells) / rows
    return means


@dataclass
class ScoreReport:
    """Everything the scorer found: the score, the column means and what was missing."""

    score: float
    means: dict[str, float]  # m_1 … m_12 and rmse, after filling missing values
    rows: dict[str, int]  # file name → rows scored (present + filled)
    missing_cells: dict[str, int]  # column → missing cells in the file (rows present)
    missing_ids: dict[str, list[str]]  # file name → expected ids without a row
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "score": self.score,
            "means": self.means,
            "counts": {
                "rows": self.rows,
                "missing_cells": self.missing_cells,
                "missing_video_ids": {name: len(ids) for name, ids in self.missing_ids.items()},
            },
            "missing_video_ids": self.missing_ids,
            "warnings": self.warnings,
        }

    def format(self, label: str | None = None) -> str:
        """The means, warnings and score; ``label`` follows the score in brackets (what it
        is, e.g. ``random critics: not a challenge score``)."""
        lines = [f"{column:>6}  {mean:.4f}" for column, mean in self.means.items()]
        lines += [f"warning: {text}" for text in self.warnings]
        lines.append(f"score  {self.score:.4f}" + (f" ({label})" if label else ""))
        return "\n".join(lines)


def score_submission(
    results_dir: str | Path,
    supervised_rows: int | None = OFFICIAL_SUPERVISED_VIDEOS,
    unsupervised_rows: int | None = OFFICIAL_UNSUPERVISED_VIDEOS,
    strict: bool = False,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_rows: int = DEFAULT_MAX_ROWS,
) -> ScoreReport:
    """Validate and score the two CSVs in ``results_dir``.

    ``supervised_rows`` / ``unsupervised_rows`` are the expected video counts (official ids
    ``video_0001 …``); ``None`` scores whatever ids a file holds (a local subset).
    ``max_bytes`` / ``max_rows`` cap each CSV (see the module docstring).
    """
    results_dir = Path(results_dir)
    if not results_dir.is_dir():
        raise SubmissionError(f"{results_dir}: not a folder; pass the folder holding the CSVs")
    strangers = other_csvs(results_dir)
    if strangers:  # the official read_data asserts exactly two *.csv files
        count = len(list(results_dir.glob("*.csv")))
        raise SubmissionError(
            f"{results_dir}: holds {count} *.csv files but the official score.py accepts exactly "
            f"two, {' and '.join(SUBMISSION_FILES)}; move {', '.join(strangers)} out of the folder"
        )
    plan = (
        (SUPERVISED_METRICS_CSV, (RMSE,), supervised_rows, MISSING_RMSE),
        (UNSUPERVISED_METRICS_CSV, SCORE_COLUMNS, unsupervised_rows, MISSING_SCORE),
    )
    tables: list[tuple[MetricsTable, float]] = []
    errors: list[str] = []
    for name, columns, count, fill in plan:
        if count is not None and count < 1:
            raise ValueError(f"expected row count for {name} must be ≥ 1 or None, got {count}")
        expected = official_video_ids(count) if count is not None else None
        try:
            table = read_metrics_csv(
                results_dir / name, columns, expected, strict, max_bytes, max_rows
            )
            tables.append((table, fill))
        except SubmissionError as error:
            errors.append(str(error))
    if errors:
        raise SubmissionError("\n".join(errors))

    means: dict[str, float] = {}
    missing_cells: dict[str, int] = {}
    rows: dict[str, int] = {}
    missing_ids: dict[str, list[str]] = {}
    warnings: list[str] = []
    for table, fill in tables:
        name = table.path.name
        means.update(_filled_means(table, fill))
        missing_cells.update(table.missing_cells())
        rows[name] = len(table.values) + len(table.missing_ids)
        missing_ids[name] = list(table.missing_ids)
        if table.missing_ids:
            warnings.append(
                f"{name}: {len(table.missing_ids)} missing {VIDEO_KEY} counted as {fill:g}: "
                f"{_listing(list(table.missing_ids))}"
            )
        if table.out_of_range:
            warnings.append(
                f"{table.path}: {len(table.out_of_range)} values outside their possible range, "
                f"scored as given (--strict refuses them): {_listing(list(table.out_of_range))}"
            )
    holes = {column: count for column, count in missing_cells.items() if count}
    if holes:
        warnings.append(f"missing cells counted as {MISSING_SCORE:g} / {MISSING_RMSE:g}: {holes}")
    if missing_cells[DECREASING_SCORE_COLUMN] or missing_ids[UNSUPERVISED_METRICS_CSV]:
        warnings.append(
            f"a missing {DECREASING_SCORE_COLUMN} counts as {MISSING_SCORE:g}, so its term "
            f"1 − {DECREASING_SCORE_COLUMN} is {1 - MISSING_SCORE:g} "
            "(the official rule, kept as is)"
        )
    ordered = {column: means[column] for column in (*SCORE_COLUMNS, RMSE)}
    return ScoreReport(official_score(ordered), ordered, rows, missing_cells, missing_ids, warnings)


def write_json(
    report: ScoreReport, path: str | Path, extra: Mapping[str, Any] | None = None
) -> bool:
    """Write the report as JSON, with the ``extra`` fields after its own (what scored it);
    returns whether an existing file was replaced."""
    path = Path(path)
    replaced = path.exists()
    path.parent.mkdir(parents=True, exist_ok=True)
    fields = {**report.to_dict(), **(extra or {})}
    atomic_write_text(path, json.dumps(fields, indent=2) + "\n")
    return replaced


#: After a printed score computed with random critics, and what score.json says of it.
RANDOM_CRITICS_LABEL = "random critics: not a challenge score"
RANDOM_CRITICS_NOTE = (
    "scored with randomly initialised critics: m_1 to m_12 and the score only show that the "
    "chain works; not a challenge score, not for upload"
)


def scored_by_random_critics(results: Path) -> bool:
    """Whether ``--results`` is a run's submission that random critics scored: the run's zip
    (or the zip given) is named ``submission-random-critics.zip`` (:mod:`vqe.metrics.results`).
    A folder of CSVs alone says nothing about its critics."""
    if results.suffix.lower() == ".zip":
        return results.name == RANDOM_CRITICS_ZIP
    if submission_folder(results) != results:
        run = results  # a run directory
    elif results.name == SUBMISSION_DIR:
        run = results.parent  # the run's submission/ itself
    else:
        return False
    return (run / RANDOM_CRITICS_ZIP).is_file()


def submission_folder(results: Path) -> Path:
    """The folder to score for ``--results``: the folder itself, or a run directory's
    ``submission/`` when the run directory holds no submission CSV of its own."""
    nested = results / SUBMISSION_DIR
    if results.is_dir() and not any((results / name).exists() for name in SUBMISSION_FILES):
        if nested.is_dir():
            return nested
    return results


def _root_csvs(archive: zipfile.ZipFile) -> list[zipfile.ZipInfo]:
    """The members the scorer reads: ``*.csv`` files at the zip's root. Anything else, a name
    leading out of the folder (``../x.csv``, ``/x.csv``) included, is never unpacked."""
    return [
        info
        for info in archive.infolist()
        if not info.is_dir()
        and info.filename.endswith(".csv")
        and not any(mark in info.filename for mark in ("/", "\\", "\0"))
        and info.filename not in (".", "..")
    ]


def copy_capped(source: BinaryIO, destination: BinaryIO, budget: int, what: str) -> int:
    """Copy ``source`` into ``destination`` in chunks, refusing once more than ``budget`` bytes
    have come (a zip's declared sizes can lie); returns the bytes copied."""
    copied = 0
    while chunk := source.read(min(_CHUNK_BYTES, budget - copied + 1)):
        copied += len(chunk)
        if copied > budget:
            raise SubmissionError(
                f"{what}: inflates past the {budget} bytes left under the cap on the CSV read "
                "for a submission (its header declared less); pass --max-bytes with a higher "
                "size if it really is that big"
            )
        destination.write(chunk)
    return copied


def _unpack_csvs(path: Path, archive: zipfile.ZipFile, folder: Path, max_bytes: int) -> None:
    """Unpack the root ``*.csv`` members into ``folder``, after checking the sizes they declare
    against ``max_bytes`` (together) and counting again while inflating."""
    members = _root_csvs(archive)
    declared = 0
    for info in members:
        declared += info.file_size
        if declared > max_bytes:
            what = f"{path}: {info.filename} inflates to {info.file_size} bytes"
            if declared > info.file_size:
                what += f" ({declared} with the CSVs before it)"
            raise _size_cap_error(what, declared, max_bytes)
    left = max_bytes
    for info in members:
        with archive.open(info) as source, (folder / info.filename).open("wb") as destination:
            left -= copy_capped(source, destination, left, f"{path}: {info.filename}")


def score_zip(
    path: str | Path, max_bytes: int = DEFAULT_MAX_BYTES, **options: object
) -> ScoreReport:
    """Score a zip the way CodaLab does: unpacked into a folder, the CSVs at its root (only
    those, within ``max_bytes`` together); ``options`` as for :func:`score_submission`."""
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as archive, tempfile.TemporaryDirectory() as folder:
            try:
                _unpack_csvs(path, archive, Path(folder), max_bytes)
            except (RuntimeError, NotImplementedError) as error:  # encrypted, unknown compression
                message = f"{path}: cannot unpack ({error}); zip the CSVs without a password"
                raise SubmissionError(message) from error
            options = {**options, "max_bytes": max_bytes}
            try:
                return score_submission(folder, **options)  # type: ignore[arg-type]
            except SubmissionError as error:  # name the zip, not the temporary folder
                raise SubmissionError(str(error).replace(folder, f"{path}:")) from error
    except (zipfile.BadZipFile, zlib.error, EOFError) as error:
        raise SubmissionError(f"{path}: not a readable zip ({error})") from error


if __name__ == "__main__":
    from vqe.moved import run_moved

    run_moved("vqe.metrics.score", "score")
