"""Build one listed item: extract a video (pair) to PNG frames, or index a synthetic jpg pair.

A video ``<split>/<subset>/<name>_x.mp4`` is decoded with :func:`vqe.video.read_frames` and its
frames written to ``<name>/x/frame_0001.png`` … (``_y`` to ``<name>/y/``) under the frames root.
``<name>/extraction.json`` is written last and only after every frame is on disk: a folder with
that marker, matching settings and all its frames is complete and is reused; a folder without it
was interrupted and is extracted again. A marker from other settings (fps, source file size) is
an error unless ``overwrite`` is set — finished work is never replaced silently.

Frames are encoded in memory (``cv2.imencode``) and written by Python, which takes any path the
file system does (OpenCV's ``imwrite`` crashed the process on a path that is not UTF-8). A
frame is not written atomically, on purpose: the marker decides what is complete, and a frame
is recorded before it is written, so a failed or interrupted extraction removes it too. The
marker is written atomically (:mod:`vqe.atomic`).

Names reach the UTF-8 index as text: a synthetic frame name, or a frame path relative to the
index root, that is not valid UTF-8 fails its item with a message asking to rename it (listing
already refuses such video and folder names, :mod:`vqe.dataprep.layout`).

A video that gives fewer frames than its header declares (a truncated copy decodes cleanly up to
where it ends) is still built, with a warning naming the file in :attr:`ItemResult.warnings`;
the warning is repeated whenever the short extraction is reused.

Each function here runs in a worker process and reports problems as :class:`ItemError`, whose
message names the file.
"""

from __future__ import annotations

import json
import logging
import os
import re
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import NamedTuple

import cv2
import numpy as np
from PIL import Image

from vqe.atomic import atomic_write_text
from vqe.batch_jobs import printable
from vqe.conventions import swap_rgb_bgr_uint8
from vqe.dataprep.index import IndexedVideo, frame_file_name
from vqe.dataprep.layout import (
    SOURCE_FRAMES_DIR,
    SUBSET_DIRS,
    TARGET_FRAMES_DIR,
    Item,
    is_utf8_text,
    not_utf8_problem,
)
from vqe.schema import SUBSET_SYNTHETIC
from vqe.video import VideoError, frames_at, probe, read_frames

log = logging.getLogger(__name__)

MARKER_FILE = "extraction.json"
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
_FRAME_FILE = re.compile(r"^frame_(\d+)\.png$")


class ItemError(Exception):
    """An item cannot be built; the message names the file and what is wrong."""


class Failure(NamedTuple):
    item: str  # the item's path relative to the source root
    reason: str


@dataclass(frozen=True)
class Settings:
    index_root: (
        Path  # frames are written here (mirroring the layout); index paths are relative to it
    )
    fps: float | None  # extraction frame rate; None keeps every decoded frame
    overwrite: bool


@dataclass(frozen=True)
class Extraction:
    """The completion marker of an extracted video."""

    requested_fps: float | None
    fps: (
        float | None
    )  # frame rate of the written frames (the stream's own rate when requested_fps is None)
    frame_count: int
    height: int
    width: int
    source_bytes: int
    target_bytes: int | None


@dataclass(frozen=True)
class ItemResult:
    item: Item
    video: IndexedVideo | None = None
    failure: Failure | None = None
    skipped: bool = False  # a complete earlier extraction was reused
    frames_written: int = 0  # PNG files written (input and target frames)
    warnings: tuple[str, ...] = ()  # built, but not quite as asked (e.g. a truncated video)


def process_item(item: Item, settings: Settings) -> ItemResult:
    """Build ``item``; never raises for bad data, returns the failure instead."""
    if item.problem is not None:
        return ItemResult(item, failure=Failure(item.name, item.problem))
    try:
        if item.subset == SUBSET_SYNTHETIC:
            result = ItemResult(item, video=index_frame_pairs(item, settings))
        else:
            result = extract_video(item, settings)
        if result.video is not None:
            _check_index_text(result.video)
        return result
    except (ItemError, VideoError, OSError) as error:
        return ItemResult(item, failure=Failure(item.name, str(error)))


def _check_index_text(video: IndexedVideo) -> None:
    """Refuse a video whose index rows the UTF-8 CSV cannot hold: writing them would fail the
    whole index, every good video's rows with it."""
    texts = [video.video_id, video.source_dir, video.target_dir or "", *(video.frame_names or ())]
    bad = next((text for text in texts if not is_utf8_text(text)), None)
    if bad is not None:
        raise ItemError(not_utf8_problem(printable(bad), "path in the index"))


def _relative(path: Path, root: Path) -> str:
    return Path(os.path.relpath(path, root)).as_posix()


def _size_text(height: int, width: int) -> str:
    return f"{width}×{height}"


# --------------------------------------------------------------------------- synthetic jpg pairs


def _natural_key(name: str) -> list[int | str]:
    """Sort 2.jpg before 10.jpg."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def _image_names(folder: Path) -> list[str]:
    if not folder.is_dir():
        raise ItemError(
            f"{folder}: missing; a synthetic video folder needs x/ and y/ holding frames "
            "of the same names"
        )
    names = [p.name for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES]
    bad = sorted(printable(name) for name in names if not is_utf8_text(name))
    if bad:
        raise ItemError(not_utf8_problem(f"{printable(folder)}: {_some(bad)}", "frame file name"))
    return sorted(names, key=_natural_key)


def _image_size(path: Path) -> tuple[int, int]:
    """(height, width) from the image header, without decoding the pixels."""
    try:
        with Image.open(path) as image:
            width, height = image.size
    except OSError as error:
        raise ItemError(f"{path}: not a readable image ({error})") from error
    return height, width


def _some(names: list[str], limit: int = 5) -> str:
    shown = ", ".join(names[:limit])
    return shown if len(names) <= limit else f"{shown} … ({len(names)} in all)"


def index_frame_pairs(item: Item, settings: Settings) -> IndexedVideo:
    """Index a synthetic ``x/``, ``y/`` folder pair in place."""
    assert item.target is not None
    video_dir = item.source.parent
    source_names, target_names = _image_names(item.source), _image_names(item.target)
    if not source_names and not target_names:
        raise ItemError(f"{video_dir}: x/ and y/ hold no frames ({', '.join(IMAGE_SUFFIXES)})")
    source_only = sorted(set(source_names) - set(target_names), key=_natural_key)
    target_only = sorted(set(target_names) - set(source_names), key=_natural_key)
    if source_only or target_only:
        raise ItemError(
            f"{video_dir}: frames without a partner (x/ only: {_some(source_only) or 'none'}; "
            f"y/ only: {_some(target_only) or 'none'}); every x/ frame needs a y/ frame "
            "of the same name"
        )
    clip_size: tuple[int, int] | None = None
    for name in source_names:
        source_size = _image_size(item.source / name)
        target_size = _image_size(item.target / name)
        if source_size != target_size:
            raise ItemError(
                f"{item.target / name} is {_size_text(*target_size)} but {item.source / name} is "
                f"{_size_text(*source_size)}; the frames of a pair must have one size"
            )
        clip_size = clip_size or source_size
        if source_size != clip_size:
            raise ItemError(
                f"{item.source / name} is {_size_text(*source_size)} but the clip's first frame is "
                f"{_size_text(*clip_size)}; a clip must keep one frame size"
            )
    assert clip_size is not None
    return IndexedVideo(
        split=item.split,
        subset=item.subset,
        video_id=item.video_id,
        source_dir=_relative(item.source, settings.index_root),
        target_dir=_relative(item.target, settings.index_root),
        frame_count=len(source_names),
        height=clip_size[0],
        width=clip_size[1],
        fps=None,
        frame_names=tuple(source_names),
    )


# --------------------------------------------------------------------------- videos


def _write_png(path: Path, rgb: np.ndarray, written: list[Path]) -> None:
    # imencode + Python's write: cv2.imwrite needs a path OpenCV can encode, and crashed (SIGSEGV)
    # on one that is not UTF-8.
    encoded, png = cv2.imencode(".png", swap_rgb_bgr_uint8(rgb))
    if not encoded:
        raise ItemError(f"{path}: OpenCV could not encode the frame as PNG")
    written.append(path)  # before writing: a write cut short is removed with the others
    try:
        path.write_bytes(png)
    except OSError as error:
        raise ItemError(
            f"{path}: could not write the frame ({error.strerror}); is the disk full, or is the "
            "folder not writable?"
        ) from error


def _fps_text(fps: float | None) -> str:
    return "every frame" if fps is None else f"{fps:g} fps"


def _write_frames(
    item: Item, source_dir: Path, target_dir: Path | None, fps: float | None, written: list[Path]
) -> tuple[int, int, int]:
    """Decode the input (and target) video and write its frames; returns (count, height, width)."""
    sources = read_frames(item.source, fps)
    targets = read_frames(item.target, fps) if item.target is not None else None
    shape: tuple[int, ...] | None = None
    count = 0
    for source in sources:
        target = next(targets, None) if targets is not None else None
        if targets is not None and target is None:
            source_count = count + 1 + sum(1 for _ in sources)
            raise ItemError(_length_mismatch(item, fps, source_count, count))
        shape = shape or source.shape
        if source.shape != shape:
            raise ItemError(
                f"{item.source}: frame {count + 1} is {_size_text(*source.shape[:2])} but the "
                f"first frame is {_size_text(*shape[:2])}; a video must keep one frame size"
            )
        if target is not None and target.shape != source.shape:
            raise ItemError(
                f"{item.target} is {_size_text(*target.shape[:2])} but {item.source.name} is "
                f"{_size_text(*source.shape[:2])} (frame {count + 1}); a pair must have one size"
            )
        count += 1
        _write_png(source_dir / frame_file_name(count), source, written)
        if target is not None and target_dir is not None:
            _write_png(target_dir / frame_file_name(count), target, written)
    if shape is None:
        raise ItemError(f"{item.source}: the video holds no frames")
    if targets is not None:
        extra = sum(1 for _ in targets)
        if extra:
            raise ItemError(_length_mismatch(item, fps, count, count + extra))
    return count, shape[0], shape[1]


def _videos_of(item: Item) -> list[Path]:
    return [item.source] + ([item.target] if item.target is not None else [])


def _shortfall(path: Path, fps: float | None, count: int) -> str | None:
    """A warning when ``path`` gave fewer frames than its header declares (a truncated file)."""
    declared = frames_at(probe(path), fps)
    # Resampling rounds the last slot, so a complete file may end one frame early at a set fps.
    slack = 0 if fps is None else 1
    if declared is None or count >= declared - slack:
        return None
    return (
        f"{path}: gave {count} frames ({_fps_text(fps)}) but its header declares {declared}; "
        "the file looks truncated, so its index rows are short; replace it with a complete "
        "copy and build again with overwrite=true"
    )


def _short_videos(item: Item, fps: float | None, count: int, noted: list[str]) -> list[str]:
    """Truncation warnings for the item's videos that ``noted`` does not already name."""
    found = []
    for path in _videos_of(item):
        if not any(text.startswith(f"{path}:") for text in noted):
            shortfall = _shortfall(path, fps, count)
            if shortfall is not None:
                found.append(shortfall)
    return found


def _length_mismatch(item: Item, fps: float | None, source_count: int, target_count: int) -> str:
    assert item.target is not None
    return (
        f"{item.source} gives {source_count} frames but {item.target.name} gives {target_count} "
        f"({_fps_text(fps)}); the videos of a pair must have the same length"
    )


def _frames_present(folder: Path, count: int) -> bool:
    names = set(os.listdir(folder)) if folder.is_dir() else set()
    return all(frame_file_name(number) in names for number in range(1, count + 1))


def _remove_surplus_frames(folder: Path, count: int) -> None:
    """Delete numbered frames past ``count``, left over from an earlier interrupted extraction."""
    for path in folder.iterdir():
        match = _FRAME_FILE.match(path.name)
        if match and int(match[1]) > count:
            path.unlink()
            log.info("%s: removed, left over from an earlier extraction", path)


def _remove_written(written: list[Path], folders: list[Path]) -> None:
    """Undo a failed extraction: its frames, then its folders if that left them empty."""
    for path in written:
        path.unlink(missing_ok=True)
    for folder in folders:
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()


def _read_marker(path: Path) -> Extraction | None:
    try:
        return Extraction(**json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        return None
    except (ValueError, TypeError) as error:
        log.warning("%s: damaged marker (%s); extracting the video again", path, error)
        return None


def _write_marker(path: Path, extraction: Extraction) -> None:
    atomic_write_text(path, json.dumps(asdict(extraction), indent=1) + "\n")


def _describe(fps: float | None, source_bytes: int, target_bytes: int | None) -> str:
    sizes = f"{source_bytes} bytes" + ("" if target_bytes is None else f" + {target_bytes} bytes")
    return f"{_fps_text(fps)} from {sizes} of video"


def frames_dir(item: Item, index_root: Path) -> Path:
    """The folder that receives the frames of a video item (``x/`` and ``y/`` inside)."""
    return index_root / item.split / SUBSET_DIRS[item.subset] / item.video_id


def extract_video(item: Item, settings: Settings) -> ItemResult:
    """Extract a video (pair) unless a complete extraction with the same settings exists."""
    video_dir = frames_dir(item, settings.index_root)
    source_dir = video_dir / SOURCE_FRAMES_DIR
    target_dir = video_dir / TARGET_FRAMES_DIR if item.target is not None else None
    marker_path = video_dir / MARKER_FILE
    wanted = (
        settings.fps,
        item.source.stat().st_size,
        item.target.stat().st_size if item.target is not None else None,
    )
    previous = _read_marker(marker_path)
    if previous is not None and not settings.overwrite:
        found = (previous.requested_fps, previous.source_bytes, previous.target_bytes)
        if found != wanted:
            raise ItemError(
                f"{video_dir}: already extracted at {_describe(*found)}, now asked for "
                f"{_describe(*wanted)}; pass overwrite=true to extract it again"
            )
        folders = [source_dir] + ([target_dir] if target_dir is not None else [])
        if all(_frames_present(folder, previous.frame_count) for folder in folders):
            noted = _short_videos(item, previous.requested_fps, previous.frame_count, [])
            video = _indexed(item, settings, previous)
            return ItemResult(item, video=video, skipped=True, warnings=tuple(noted))
        log.warning("%s: frames missing although marked complete; extracting again", video_dir)

    # From here on the folder counts as incomplete until the new marker is in place.
    marker_path.unlink(missing_ok=True)
    source_dir.mkdir(parents=True, exist_ok=True)
    if target_dir is not None:
        target_dir.mkdir(exist_ok=True)
    written: list[Path] = []
    try:
        # Warnings raised while decoding (vqe.video's) would only reach a worker's stderr: keep
        # them with the result, which the build reports.
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            count, height, width = _write_frames(
                item, source_dir, target_dir, settings.fps, written
            )
    except BaseException:  # an interruption too: leave no partial frames behind
        _remove_written(written, [d for d in (target_dir, source_dir, video_dir) if d is not None])
        raise
    noted = [str(warning.message) for warning in caught]
    noted += _short_videos(item, settings.fps, count, noted)
    for folder in (source_dir, target_dir):
        if folder is not None:
            _remove_surplus_frames(folder, count)
    fps = settings.fps if settings.fps is not None else (probe(item.source).fps or None)
    extraction = Extraction(settings.fps, fps, count, height, width, *wanted[1:])
    _write_marker(marker_path, extraction)
    video = _indexed(item, settings, extraction)
    return ItemResult(item, video=video, frames_written=len(written), warnings=tuple(noted))


def _indexed(item: Item, settings: Settings, extraction: Extraction) -> IndexedVideo:
    video_dir = frames_dir(item, settings.index_root)
    has_target = item.target is not None
    return IndexedVideo(
        split=item.split,
        subset=item.subset,
        video_id=item.video_id,
        source_dir=_relative(video_dir / SOURCE_FRAMES_DIR, settings.index_root),
        target_dir=_relative(video_dir / TARGET_FRAMES_DIR, settings.index_root)
        if has_target
        else None,
        frame_count=extraction.frame_count,
        height=extraction.height,
        width=extraction.width,
        fps=extraction.fps,
        frame_names=None,
    )
