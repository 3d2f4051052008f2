"""Find the videos of the official data layout and split them into shards.

Under one root, each split (``train/``, ``test/``) may hold any of::

    supervised/synthetic/video_XXXX/{x,y}/*.jpg    paired frames, indexed as they are
    supervised/real/video_XXXX_x.mp4 + _y.mp4      paired videos
    unsupervised/video_XXXX_x.mp4                  input videos without target

Listing only looks at names. Anything wrong that names alone reveal (a ``_x`` without its
``_y``, an empty folder, a badly named video) becomes an :class:`Item` carrying a ``problem``, so
that it is reported by exactly one shard like any other video.

A name that is not valid UTF-8 (bytes Python holds as lone surrogates, see :func:`os.fsdecode`)
is such a problem: the index CSVs hold video ids and frame paths as UTF-8 text, which cannot
carry it, so the item is refused with a message asking to rename it. :attr:`Item.name` is always
printable (:func:`vqe.batch_jobs.printable` shows the odd bytes as ``\\xNN``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TypeVar

from vqe.batch_jobs import printable
from vqe.schema import (
    SPLITS,
    SUBSET_REAL,
    SUBSET_SYNTHETIC,
    SUBSET_UNSUPERVISED,
    SUBSETS,
)

#: Where each subset lives inside a split folder.
SUBSET_DIRS: dict[str, PurePosixPath] = {
    SUBSET_SYNTHETIC: PurePosixPath("supervised/synthetic"),
    SUBSET_REAL: PurePosixPath("supervised/real"),
    SUBSET_UNSUPERVISED: PurePosixPath("unsupervised"),
}
VIDEO_SUFFIX = ".mp4"
SOURCE_TAG = "_x"  # <name>_x.mp4 is the input video
TARGET_TAG = "_y"  # <name>_y.mp4 is its target
SOURCE_NAME_END = SOURCE_TAG + VIDEO_SUFFIX
TARGET_NAME_END = TARGET_TAG + VIDEO_SUFFIX
#: Sort orders as in vqe.schema; split-level problems (subset "") before the subsets.
SPLIT_ORDER = {split: position for position, split in enumerate(SPLITS)}
SUBSET_ORDER = {subset: position for position, subset in enumerate(("", *SUBSETS))}
#: Folder names of the input and target frames, inside a video's folder.
SOURCE_FRAMES_DIR = "x"
TARGET_FRAMES_DIR = "y"


@dataclass(frozen=True)
class Item:
    """One unit of work: a video (pair) to extract, a synthetic folder to index, or a problem."""

    split: str
    subset: str  # one of vqe.schema.SUBSETS, or "" for a problem with the split itself
    video_id: str  # e.g. "video_0001"; "" for a problem with a whole folder
    name: str  # path relative to the source root, printable, used in every message
    source: Path  # the _x.mp4, or the synthetic x/ folder (or the folder a problem is about)
    target: Path | None  # the _y.mp4, or the synthetic y/ folder; None when there is no target
    problem: str | None = None  # set when listing already shows the item cannot be built


def is_utf8_text(text: str) -> bool:
    """Whether ``text`` can be written as UTF-8 (a file name whose bytes are not UTF-8 cannot)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def not_utf8_problem(shown: str, what: str) -> str:
    """The refusal of a ``what`` (a file name, shown printable) the UTF-8 index cannot hold."""
    return (
        f"{shown}: the {what} is not valid UTF-8 (its odd bytes shown as \\xNN); the index CSV "
        "holds names as UTF-8 text, so rename it (letters, digits, _ and - are safe) and build "
        "again"
    )


def _item(root: Path, split: str, subset: str, video_id: str, source: Path, **fields) -> Item:
    relative = source.relative_to(root)
    name = printable(relative.as_posix())
    bad = [part for part in relative.parts if not is_utf8_text(part)]
    if bad and fields.get("problem") is None:
        what = "file name" if bad[0] == source.name and source.is_file() else "folder name"
        fields = {**fields, "target": None, "problem": not_utf8_problem(printable(bad[0]), what)}
    return Item(split, subset, video_id, name, source, **fields)


def _videos(folder: Path) -> dict[str, Path]:
    """The .mp4 files of a folder by stem (the extracted frame folders beside them are skipped)."""
    return {
        path.stem: path
        for path in sorted(folder.iterdir())
        if path.is_file() and path.suffix.lower() == VIDEO_SUFFIX
    }


def _synthetic(root: Path, split: str, folder: Path) -> list[Item]:
    video_dirs = sorted(path for path in folder.iterdir() if path.is_dir())
    return [
        _item(
            root,
            split,
            SUBSET_SYNTHETIC,
            video_dir.name,
            video_dir / SOURCE_FRAMES_DIR,
            target=video_dir / TARGET_FRAMES_DIR,
        )
        for video_dir in video_dirs
    ]


def _problem(root: Path, split: str, subset: str, video_id: str, path: Path, text: str) -> Item:
    return _item(root, split, subset, video_id, path, target=None, problem=text)


def _paired(root: Path, split: str, folder: Path) -> list[Item]:
    videos = _videos(folder)
    items = []
    for stem, path in videos.items():
        if stem.endswith(SOURCE_TAG):
            video_id = stem[: -len(SOURCE_TAG)]
            target = videos.get(video_id + TARGET_TAG)
            if target is None:
                text = (
                    f"no target video {video_id}{TARGET_NAME_END} beside it; add it, "
                    "or move the clip to unsupervised/ if it has no target"
                )
                items.append(_problem(root, split, SUBSET_REAL, video_id, path, text))
            else:
                items.append(_item(root, split, SUBSET_REAL, video_id, path, target=target))
        elif stem.endswith(TARGET_TAG):
            video_id = stem[: -len(TARGET_TAG)]
            if video_id + SOURCE_TAG not in videos:
                text = f"target video without its input {video_id}{SOURCE_NAME_END}"
                items.append(_problem(root, split, SUBSET_REAL, video_id, path, text))
        else:
            text = f"not named <name>{SOURCE_NAME_END} or <name>{TARGET_NAME_END}"
            items.append(_problem(root, split, SUBSET_REAL, stem, path, text))
    return items


def _unsupervised(root: Path, split: str, folder: Path) -> list[Item]:
    items = []
    for stem, path in _videos(folder).items():
        if stem.endswith(SOURCE_TAG):
            video_id = stem[: -len(SOURCE_TAG)]
            items.append(_item(root, split, SUBSET_UNSUPERVISED, video_id, path, target=None))
        else:
            text = f"unsupervised videos must be named <name>{SOURCE_NAME_END}"
            items.append(_problem(root, split, SUBSET_UNSUPERVISED, stem, path, text))
    return items


_LISTERS = {SUBSET_SYNTHETIC: _synthetic, SUBSET_REAL: _paired, SUBSET_UNSUPERVISED: _unsupervised}


def present_splits(root: Path) -> list[str]:
    """The split folders that exist under ``root``; an error when there are none."""
    if not root.is_dir():
        raise FileNotFoundError(f"source_dir {root} is not a folder; point it at the data root")
    splits = [split for split in SPLITS if (root / split).is_dir()]
    if not splits:
        raise FileNotFoundError(
            f"source_dir {root} holds neither {' nor '.join(s + '/' for s in SPLITS)}; "
            "point it at the root of the official layout"
        )
    return splits


def list_items(root: Path) -> list[Item]:
    """Every item under ``root``, sorted by split, subset and video name."""
    items: list[Item] = []
    for split in present_splits(root):
        split_dir = root / split
        subset_dirs = {s: split_dir / d for s, d in SUBSET_DIRS.items() if (split_dir / d).is_dir()}
        if not subset_dirs:
            expected = ", ".join(f"{d}/" for d in SUBSET_DIRS.values())
            text = f"holds none of {expected}"
            items.append(Item(split, "", "", f"{split}/", split_dir, None, problem=text))
        for subset, folder in subset_dirs.items():
            found = _LISTERS[subset](root, split, folder)
            items.extend(
                found
                or [_problem(root, split, subset, "", folder, "empty folder: holds no videos")]
            )
    return sorted(items, key=lambda i: (SPLIT_ORDER[i.split], SUBSET_ORDER[i.subset], i.video_id))


def parse_shard(shard: str) -> tuple[int, int]:
    """``"k/n"`` → (k, n), with shards numbered 1 … n."""
    parts = str(shard).split("/")
    try:
        index, count = (int(part) for part in parts)
    except ValueError:
        index, count = 0, 0
    if len(parts) != 2 or not 1 <= index <= count:
        raise ValueError(
            f"shard must look like k/n with 1 <= k <= n (e.g. shard=1/4), got {shard!r}"
        )
    return index, count


T = TypeVar("T")


def select_shard(items: list[T], index: int, count: int) -> list[T]:
    """Shard ``index`` of ``count`` (1-based): every count-th item of the sorted list, starting
    at the index-th (the frame builder's items, the input caches' sources alike)."""
    return items[index - 1 :: count]
