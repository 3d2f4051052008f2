"""What ``vqe enhance`` reads: files and folders of videos and images, planned into jobs.

Each input path is a video file, an image file or a folder; a folder stands for the videos and
images directly in it (sorted by name; hidden files and sub-folders are passed over, other files
listed as ignored). Every item becomes one output in ``--dir_out``:

* a video (any container PyAV reads: :data:`VIDEO_SUFFIXES`) → ``STEM.mp4``, official encoding
  (H.264, yuv420p, CRF 18, 30 fps), whatever the input's container;
* an image (:data:`IMAGE_SUFFIXES`) → an enhanced image of the same name and format, so a folder
  of photos comes back as a folder of enhanced photos. (Frames of a video stored as images are
  enhanced one by one, without smoothing the LUT weights over time; to get a video, encode them
  first, e.g. ``ffmpeg -i %05d.png clip.mp4``.)

The batch convention of :mod:`vqe.batch_jobs` holds: an input that cannot be enhanced (missing, a
format vqe does not read, or one whose output name another input also maps to) is listed as
failed, naming the file and what to do, and the others still run. An output that would be one of
the inputs, or a ``--dir_out`` inside an input folder, stops everything before any work
(:func:`vqe.output_paths.check_not_an_input`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from vqe.batch_jobs import FolderReport, printable
from vqe.output_paths import check_not_an_input

VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".webm", ".avi")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
READABLE = "mp4, mov, mkv, webm, avi, png, jpg"

Pair = tuple[Path, Path]  # (input, output)


def is_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES


def readable(path: Path) -> bool:
    return path.suffix.lower() in VIDEO_SUFFIXES + IMAGE_SUFFIXES


def output_name(source: Path) -> str:
    """The output's file name: images keep theirs, videos become ``STEM.mp4``."""
    return source.name if is_image(source) else f"{source.stem}.mp4"


def not_readable(path: Path) -> str:
    return f"{path}: not a video or image vqe reads ({READABLE}); convert it first"


def _expand(path: Path, report: FolderReport) -> list[Path]:
    """The items ``path`` stands for; what is wrong with it goes to ``report``."""
    if path.is_file():
        if readable(path):
            return [path]
        report.failed.append((path, not_readable(path)))
        return []
    if not path.is_dir():
        report.failed.append((path, f"{path}: no such file or folder; check the path"))
        return []
    items = []
    for child in sorted(path.iterdir()):
        if not child.is_file() or child.name.startswith("."):
            continue
        (items if readable(child) else report.ignored).append(child)
    if not items:
        report.failed.append(
            (path, f"{path}: no videos or images vqe reads ({READABLE}) in this folder")
        )
    return items


def _unique(paths: Iterable[Path]) -> list[Path]:
    """``paths`` without repeats of a file (given twice, or as a file and in its folder)."""
    seen: dict[Path, Path] = {}
    for path in paths:
        seen.setdefault(path.resolve(), path)
    return list(seen.values())


def plan_inputs(
    inputs: Sequence[str | Path], dir_out: str | Path, overwrite: bool
) -> tuple[list[Pair], FolderReport]:
    """The (input, output) pairs to enhance, and a report holding the skipped, ignored and
    failed inputs. Raises :class:`~vqe.output_paths.OutputPathError` when an output would be an
    input or ``dir_out`` lies inside an input folder."""
    dir_out = Path(dir_out)
    report = FolderReport(readable=READABLE)
    items: list[Path] = []
    for path in map(Path, inputs):
        if path.exists():
            check_not_an_input(dir_out, "--dir_out", {"input": path})
        items += _expand(path, report)
    by_output: dict[str, list[Path]] = {}
    for source in _unique(items):
        # casefold: on macOS and Windows A.mp4 and a.mp4 are the same file
        by_output.setdefault(output_name(source).casefold(), []).append(source)
    todo: list[Pair] = []
    for sources in by_output.values():
        destination = dir_out / output_name(sources[0])
        if len(sources) > 1:
            names = " and ".join(printable(source) for source in sources)
            for source in sources:
                report.failed.append((source, (
                    f"{source}: {names} would all be written to {destination}; rename one, or "
                    "enhance them into different --dir_out folders"
                )))  # fmt: skip
            continue
        source = sources[0]
        check_not_an_input(destination, "--dir_out", {"input": source})
        if destination.exists() and not overwrite:
            report.skipped.append(source)
        else:
            todo.append((source, destination))
    return todo, report
