"""Batch jobs: run a per-video job over a folder in parallel, with a progress bar, finishing the
good videos and listing the bad ones; and the clean worker-pool context every batch tool uses.
Shared by the baseline (:mod:`vqe.cli.baseline`), the enhancer (:mod:`vqe.inference.enhance`),
the data builder (:mod:`vqe.dataprep.build`) and :mod:`vqe.metrics.synthetic_inputs`.

The job is ``job(source, destination) -> frames written``; it must be picklable (a module-level
function or a :func:`functools.partial` of one) so worker processes can run it.
:func:`process_folder` runs it on every ``.mp4`` of a folder under the same names;
:func:`run_jobs` on planned (source, destination) pairs, for a tool that plans its own inputs
(the enhancer takes files and folders of several formats, :mod:`vqe.inference.inputs`).
Each output is written under a temporary name beside its final place and renamed only when the
job succeeded, so a crash never leaves a half-written video that a rerun would take for
finished. Existing outputs are left alone (reported as skipped) unless ``overwrite`` is set. The
:class:`~vqe.video.VideoWarning` messages of a job (a truncated input, audio that was dropped…)
are collected per video and listed in the report as notes: the output is written, and the user
is told what it lacks.

File names reach messages through :func:`printable`: a name whose bytes are not UTF-8 (Python
holds those bytes as lone surrogates, see :func:`os.fsdecode`) cannot be printed as it is, and a
report that crashes while printing loses the list of what failed.

Worker processes come from a fork server (spawn where there is none,
:func:`worker_pool_context`): a child forked from a process whose torch or OpenCV thread pools
have run can hang on its first parallel call; a fork server that has imported only the worker's
module forks clean workers without importing torch again for each.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import warnings
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from vqe.output_paths import check_not_an_input
from vqe.video import VideoWarning

VIDEO_SUFFIXES = (".mp4",)
#: Outputs with these suffixes are counted as images in the summary (the enhancer writes them).
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")

Job = Callable[[Path, Path], int]


def _shown(char: str) -> str:
    if char.isprintable():
        return char
    code = ord(char)
    if 0xDC80 <= code <= 0xDCFF:  # a byte os.fsdecode could not decode (surrogateescape)
        return f"\\x{code - 0xDC00:02x}"
    return repr(char)[1:-1]  # \n, \x1b, \u200b …


def printable(text: str | os.PathLike[str]) -> str:
    """``text`` (a name, path or message) as it prints on one line to any terminal or log: the
    bytes of a file name that are not UTF-8 shown as ``\\xNN``, other unprintable characters
    (newlines, escape codes, lone surrogates) escaped as :func:`repr` escapes them."""
    text = os.fspath(text)
    return text if text.isprintable() else "".join(map(_shown, text))


@dataclass
class FolderReport:
    written: list[Path] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)  # the output already existed
    failed: list[tuple[Path, str]] = field(default_factory=list)  # input, why (names the file)
    ignored: list[Path] = field(default_factory=list)  # files in the folder that are not videos
    notes: list[str] = field(default_factory=list)  # VideoWarnings of the jobs (name the file)
    frames: int = 0
    readable: str = "/".join(VIDEO_SUFFIXES)  # what the tool reads, for the "ignored" line

    @property
    def ok(self) -> bool:
        return not self.failed

    def summary(self) -> str:
        images = sum(path.suffix.lower() in IMAGE_SUFFIXES for path in self.written)
        videos = len(self.written) - images
        lines = [f"wrote {videos} videos ({self.frames - images} frames)"]
        if images:
            lines[0] += f" and {images} images"
        if self.skipped:
            names = ", ".join(printable(path.name) for path in self.skipped[:5])
            lines.append(
                f"skipped {len(self.skipped)} whose output exists (pass --overwrite to redo "
                f"them): {names}{' …' if len(self.skipped) > 5 else ''}"
            )
        if self.ignored:
            names = ", ".join(printable(path.name) for path in self.ignored[:5])
            lines.append(
                f"ignored {len(self.ignored)} files that are not "
                f"{self.readable}: {names}{' …' if len(self.ignored) > 5 else ''}"
            )
        if self.notes:
            lines.append(f"notes ({len(self.notes)}):")
            lines += [f"  {printable(note)}" for note in self.notes]
        if self.failed:
            lines.append(f"FAILED {len(self.failed)}:")
            lines += [f"  {printable(reason)}" for _, reason in self.failed]
        return "\n".join(lines)


def worker_pool_context(preload_module: str) -> multiprocessing.context.BaseContext:
    """A fork-server context whose server has imported ``preload_module`` (spawn without fork)."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([preload_module])
    return context


def pool_context(job: Job) -> multiprocessing.context.BaseContext:
    """The clean worker context preloading the job's module."""
    function = getattr(job, "func", job)  # a functools.partial names its function in .func
    return worker_pool_context(function.__module__)


def _partial_path(destination: Path) -> Path:
    return destination.with_name(f".{destination.stem}.partial{destination.suffix}")


def _noted(job: Job, source: Path, destination: Path) -> tuple[int, list[str]]:
    """Run the job; its frames and the messages of the VideoWarnings it raised, in order."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", VideoWarning)
        frames = job(source, destination)
    for warning in caught:  # other warnings go on to the usual filters and output
        if not issubclass(warning.category, VideoWarning):
            warnings.warn_explicit(
                warning.message, warning.category, warning.filename, warning.lineno
            )
    notes = [str(item.message) for item in caught if issubclass(item.category, VideoWarning)]
    return frames, list(dict.fromkeys(notes))  # one warning per file and problem


def _run_one(job: Job, source: Path, destination: Path) -> tuple[int, str | None, list[str]]:
    """Run the job on a temporary output; (frames, None, notes) or (0, the reason it failed,
    [])."""
    partial = _partial_path(destination)
    try:
        frames, notes = _noted(job, source, partial)
        os.replace(partial, destination)
        return frames, None, notes
    except Exception as error:  # any failure of one video must not stop the others
        partial.unlink(missing_ok=True)
        reason = str(error)  # VideoError messages already name the file
        if str(source) not in reason:
            reason = f"{source}: {type(error).__name__}: {reason}"
        return 0, reason, []


def plan_folder(dir_in: Path, dir_out: Path, overwrite: bool) -> tuple[list[Path], FolderReport]:
    """The inputs to process and a report already holding the skipped and ignored files."""
    if not dir_in.is_dir():
        raise ValueError(f"{dir_in}: input folder not found")
    check_not_an_input(dir_out, "--dir_out", {"--dir_in": dir_in})
    report = FolderReport()
    todo = []
    for path in sorted(dir_in.iterdir()):
        if not path.is_file() or path.name.startswith("."):
            continue
        if path.suffix.lower() not in VIDEO_SUFFIXES:
            report.ignored.append(path)
        elif (dir_out / path.name).exists() and not overwrite:
            report.skipped.append(path)
        else:
            todo.append(path)
    if not todo and not report.skipped:
        raise ValueError(f"{dir_in}: no {'/'.join(VIDEO_SUFFIXES)} videos found")
    return todo, report


def process_folder(
    dir_in: str | Path,
    dir_out: str | Path,
    job: Job,
    workers: int | None = None,
    overwrite: bool = False,
    description: str = "videos",
) -> FolderReport:
    """Run ``job`` on every video of ``dir_in``, writing the same file names into ``dir_out``.

    ``workers``: processes to use (default: one per CPU, at most one per video); 1 runs in this
    process. Raises ValueError only for a bad folder; per-video failures go to the report.
    """
    dir_in, dir_out = Path(dir_in), Path(dir_out)
    todo, report = plan_folder(dir_in, dir_out, overwrite)
    dir_out.mkdir(parents=True, exist_ok=True)
    pairs = [(source, dir_out / source.name) for source in todo]
    return run_jobs(pairs, report, job, workers, description)


def run_jobs(
    todo: list[tuple[Path, Path]],
    report: FolderReport,
    job: Job,
    workers: int | None = None,
    description: str = "videos",
) -> FolderReport:
    """Run ``job`` on each (source, destination) pair (destination folders must exist), adding
    what was written and what failed to ``report`` (which may already list skipped, ignored
    and failed inputs). ``workers`` as in :func:`process_folder`."""
    workers = workers or min(os.cpu_count() or 1, max(len(todo), 1))
    progress = tqdm(total=len(todo), desc=description, unit="video", file=sys.stderr)

    def record(
        source: Path, destination: Path, frames: int, reason: str | None, notes: list[str]
    ) -> None:
        if reason is None:
            report.written.append(destination)
            report.frames += frames
        else:
            report.failed.append((source, reason))
        report.notes += notes
        progress.update()

    if workers == 1 or len(todo) <= 1:
        for source, destination in todo:
            record(source, destination, *_run_one(job, source, destination))
    else:
        with ProcessPoolExecutor(max_workers=workers, mp_context=pool_context(job)) as pool:
            futures = {
                pool.submit(_run_one, job, source, destination): (source, destination)
                for source, destination in todo
            }
            for future in as_completed(futures):
                try:
                    record(*futures[future], *future.result())
                except BrokenProcessPool as error:  # a worker died (out of memory, a crash)
                    record(*futures[future], 0, f"worker process died: {error}", [])
    progress.close()
    report.written.sort()
    report.failed.sort()
    report.notes.sort()
    return report
