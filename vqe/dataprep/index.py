"""The frame-index CSVs: one row per frame, written per split and merged from shards.

Columns are :data:`vqe.schema.INDEX_COLUMNS`; paths are POSIX and relative to the folder that
holds the CSV (the index root). Rows are ordered by subset (in :data:`vqe.schema.SUBSETS` order),
video id and frame index, so a merged set of shard indexes is byte-identical to an unsharded one.
Every index is written atomically (:mod:`vqe.atomic`): an interrupted or disk-full write leaves
the previous file whole under its name.
"""

from __future__ import annotations

import csv
import filecmp
import logging
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from vqe.atomic import atomic_path
from vqe.dataprep.layout import SUBSET_ORDER
from vqe.schema import (
    FRAME_INDEX,
    IMG_SOURCE,
    INDEX_COLUMNS,
    SPLITS,
    SUBSET,
    TEST_CSV,
    TRAIN_CSV,
    VIDEO_ID,
)

log = logging.getLogger(__name__)

INDEX_FILES = dict(zip(SPLITS, (TRAIN_CSV, TEST_CSV), strict=True))
_SHARD_FILE = re.compile(r"^(?P<split>\w+)\.shard-(?P<index>\d+)-of-(?P<count>\d+)\.csv$")
_COLUMN = {name: position for position, name in enumerate(INDEX_COLUMNS)}


def frame_file_name(number: int) -> str:
    """Name of extracted frame ``number`` (1-based, like ffmpeg's ``frame_%04d.png``)."""
    return f"frame_{number:04d}.png"


def format_fps(fps: float | None) -> str:
    return "" if fps is None else f"{fps:g}"


@dataclass(frozen=True)
class IndexedVideo:
    """The index rows of one video, kept compact: a few fields instead of one row per frame."""

    split: str
    subset: str
    video_id: str
    source_dir: str  # folder of the input frames, POSIX, relative to the index root
    target_dir: str | None  # folder of the target frames; None without target
    frame_count: int
    height: int
    width: int
    fps: float | None  # extraction frame rate; None for jpg sequences
    frame_names: tuple[str, ...] | None = None  # None: numbered frame_0001.png …

    @property
    def sort_key(self) -> tuple[int, str]:
        return SUBSET_ORDER[self.subset], self.video_id

    def rows(self) -> Iterator[tuple[str, ...]]:
        names = self.frame_names or (frame_file_name(n + 1) for n in range(self.frame_count))
        fps = format_fps(self.fps)
        for position, name in enumerate(names):
            target = f"{self.target_dir}/{name}" if self.target_dir is not None else ""
            yield (
                f"{self.source_dir}/{name}",
                target,
                str(self.height),
                str(self.width),
                self.subset,
                self.video_id,
                str(position),
                fps,
            )


def index_file_name(split: str, shard: tuple[int, int] | None = None) -> str:
    """``train.csv``, or ``train.shard-1-of-4.csv`` for shard 1 of 4."""
    if shard is None:
        return INDEX_FILES[split]
    return f"{split}.shard-{shard[0]}-of-{shard[1]}.csv"


class IndexKept(ValueError):
    """A new index was not written because it would lose rows of the existing one."""


def _sources(path: Path) -> set[str] | None:
    """The ``img_source`` values of an existing index; None when there is no readable one."""
    try:
        with path.open(newline="", encoding="utf-8") as stream:
            reader = csv.reader(stream)
            header = next(reader, None)
            if header is None or IMG_SOURCE not in header:
                return None
            column = header.index(IMG_SOURCE)
            return {row[column] for row in reader if len(row) > column}
    except FileNotFoundError:
        return None


def _refusal(path: Path, old: set[str], new: set[str], overwrite: bool) -> str | None:
    """Why ``path`` (holding ``old``) must be kept rather than replaced by ``new``; None if not."""
    lost = old - new
    if not lost:
        return None
    if not new:
        # Never: an empty index is what a build that refused every video writes (issue 12).
        return (
            f"kept {path} ({len(old)} rows): the new index would be empty; fix the failures "
            "listed above, or delete the file if an empty index is really wanted"
        )
    if overwrite:
        return None
    example = min(lost)
    return (
        f"kept {path} ({len(old)} rows): the new index would lose {len(lost)} of them "
        f"(e.g. {example}) and hold {len(new)}; fix the failures listed above, or pass "
        "overwrite=true (or delete the file) to write the smaller index"
    )


def _unreadable(path: Path, error: Exception, overwrite: bool) -> str | None:
    """Why an existing ``path`` that is not a readable index must be kept; None to replace it."""
    if overwrite:
        return None
    return (
        f"kept {path}: it is not a readable index ({error}), so the new one cannot be checked "
        "against it; move it away, or pass overwrite=true to replace it"
    )


def _write_rows(path: Path, rows: Iterable[tuple[str, ...]], overwrite: bool = False) -> int:
    """Write a whole index atomically (:func:`vqe.atomic.atomic_path`); returns the row count.

    Raises :class:`IndexKept` (and leaves ``path`` as it was) when the new rows would drop rows
    of the existing file: always when the new index is empty, else unless ``overwrite``.
    """
    sources: set[str] = set()
    count = 0
    # Each writer has its own temporary: two shards may merge the same index at the same time.
    with atomic_path(path) as temporary:
        with temporary.open("w", newline="", encoding="utf-8") as stream:
            writer = csv.writer(stream, lineterminator="\n")
            writer.writerow(INDEX_COLUMNS)
            for row in rows:
                writer.writerow(row)
                sources.add(row[_COLUMN[IMG_SOURCE]])
                count += 1
        try:
            old = _sources(path)
        except (UnicodeDecodeError, csv.Error) as error:
            old, refusal = None, _unreadable(path, error, overwrite)
        else:
            refusal = _refusal(path, old, sources, overwrite) if old is not None else None
        if refusal is not None:
            raise IndexKept(refusal)  # the temporary goes, the existing index stays
        if old is not None and not filecmp.cmp(temporary, path, shallow=False):
            log.info(
                "replacing %s (its rows changed; %d rows before, %d now)", path, len(old), count
            )
    return count


def write_index(path: Path, videos: Iterable[IndexedVideo], overwrite: bool = False) -> int:
    """Write the rows of ``videos`` in index order; returns the row count.

    Raises :class:`IndexKept` when that would lose rows of the existing ``path`` (see
    :func:`_write_rows`).
    """
    ordered = sorted(videos, key=lambda video: video.sort_key)
    return _write_rows(path, (row for video in ordered for row in video.rows()), overwrite)


def _read_rows(path: Path) -> list[list[str]]:
    with path.open(newline="", encoding="utf-8") as stream:
        reader = csv.reader(stream)
        header = next(reader, None)
        if header is None or tuple(header) != INDEX_COLUMNS:
            raise ValueError(
                f"{path}: header {header} is not the frame-index header {list(INDEX_COLUMNS)}; "
                "delete the file and build that shard again"
            )
        return list(reader)


def _row_key(row: list[str]) -> tuple[int, str, int]:
    return (
        SUBSET_ORDER[row[_COLUMN[SUBSET]]],
        row[_COLUMN[VIDEO_ID]],
        int(row[_COLUMN[FRAME_INDEX]]),
    )


def merge_shard_indexes(root: Path, split: str, count: int, overwrite: bool = False) -> Path:
    """Merge ``<split>.shard-k-of-<count>.csv`` (k = 1 … count) into ``<split>.csv``."""
    paths = [root / index_file_name(split, (index, count)) for index in range(1, count + 1)]
    missing = [path.name for path in paths if not path.exists()]
    if missing:
        raise FileNotFoundError(
            f"{root}: cannot merge the {split} index, shard files missing: {', '.join(missing)}; "
            "run those shards (or copy their CSVs here) first"
        )
    rows: list[list[str]] = []
    for path in paths:
        rows.extend(_read_rows(path))
    rows.sort(key=_row_key)
    seen: set[str] = set()
    for row in rows:
        if row[_COLUMN[IMG_SOURCE]] in seen:
            raise ValueError(
                f"{root}: frame {row[_COLUMN[IMG_SOURCE]]} appears in more than one of "
                f"{', '.join(p.name for p in paths)}; were the shards built with different "
                "settings?"
            )
        seen.add(row[_COLUMN[IMG_SOURCE]])
    target = root / index_file_name(split)
    _write_rows(target, (tuple(row) for row in rows), overwrite)
    return target


def shard_counts(root: Path) -> dict[str, int]:
    """Per split, the shard count ``n`` of the ``<split>.shard-k-of-n.csv`` files in ``root``."""
    counts: dict[str, set[int]] = {}
    for path in sorted(root.glob("*.shard-*-of-*.csv")):
        match = _SHARD_FILE.match(path.name)
        if match and match["split"] in SPLITS:
            counts.setdefault(match["split"], set()).add(int(match["count"]))
    mixed = {split: sorted(found) for split, found in counts.items() if len(found) > 1}
    if mixed:
        raise ValueError(
            f"{root}: shard indexes of different shard counts {mixed}; delete the stale ones"
        )
    return {split: found.pop() for split, found in counts.items()}


def merge_shards(root: Path, overwrite: bool = False) -> list[Path]:
    """Merge every complete set of shard indexes found in ``root``; returns the CSVs written."""
    counts = shard_counts(Path(root))
    if not counts:
        raise FileNotFoundError(f"{root}: no <split>.shard-k-of-n.csv files to merge")
    return [
        merge_shard_indexes(Path(root), split, count, overwrite) for split, count in counts.items()
    ]
