"""Build the frame index of the official layout: videos → PNG frames + ``train.csv``, ``test.csv``.

:func:`build_dataset` is the work of ``vqe build`` (:mod:`vqe.cli.build`, which also merges
shards on disk and turns SIGTERM / SIGINT into a clean stop); the demo set is indexed with it too.

What it writes (the *index root* is ``out_dir``, or ``source_dir`` when ``out_dir`` is not given):

- Frames of ``<split>/<subset>/<name>_x.mp4`` go to ``<name>/x/frame_0001.png`` … (``_y`` to
  ``<name>/y/``), under the index root at the same relative place as the video, extracted at
  ``fps`` (default 30 like the official tool; ``None`` keeps every decoded frame). Synthetic jpg
  pairs are indexed where they are and never copied.
- One CSV per split present, ``train.csv``/``test.csv`` at the index root, with the columns of
  :data:`vqe.schema.INDEX_COLUMNS`; paths are POSIX and relative to the index root (synthetic
  frames outside it get ``../`` paths). The CSVs are the build's summary and are rewritten by
  every build (the log says when one is replaced), atomically (temporary file, then rename). An
  existing CSV is kept, and the build fails, when the new one would lose rows of it: always when
  the new one is empty, otherwise unless ``overwrite``.

Resuming: ``<name>/extraction.json`` is written after a video's last frame. A video with that
marker, the same ``fps`` and source file size, and all its frames is skipped; one without it is
extracted again. A marker from other settings is reported as a failure unless ``overwrite``.

Shards: ``shard="k/n"`` (1 <= k <= n) builds every n-th item of the sorted item list, starting at
the k-th, so n machines can share one dataset. Each shard writes ``<split>.shard-k-of-n.csv``; the
shard that finds all n shard files present merges them into ``<split>.csv`` (identical to an
unsharded build); :func:`merge_shards` merges shard files copied into one index root.

Checks: an ``_x`` video without its ``_y`` (or the reverse), an unreadable video, x/y pairs of
different length or frame size, synthetic folders with unmatched or differently sized frames and
empty folders are each reported with the file they concern; every good video is still built and
indexed. So is a name that is not valid UTF-8, which the UTF-8 index cannot hold: rename it
(messages show its odd bytes as ``\\xNN``). A video that gives fewer frames than its header
declares (truncated) is built and listed as a warning. :class:`BuildReport` holds the failures,
the warnings, the kept indexes and the counts per subset.

Crashes: a worker process that dies (a crash in native code, the OOM killer) breaks the pool and
fails every item still queued; those items are run again one at a time, so only an item that
kills its worker even alone is reported, and every other one is built. An exception that breaks
off the build (an interruption) stops the worker processes at once: none outlives it.
"""

from __future__ import annotations

import logging
import math
import multiprocessing
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import astuple, dataclass, field, fields
from pathlib import Path

from tqdm import tqdm

from vqe.batch_jobs import printable, worker_pool_context
from vqe.dataprep.extract import Failure, ItemResult, Settings, process_item
from vqe.dataprep.index import (
    IndexedVideo,
    IndexKept,
    index_file_name,
    merge_shard_indexes,
    merge_shards,
    write_index,
)
from vqe.dataprep.layout import (
    SPLIT_ORDER,
    SUBSET_ORDER,
    Item,
    list_items,
    parse_shard,
    select_shard,
)
from vqe.schema import SPLITS

log = logging.getLogger(__name__)

__all__ = [
    "BuildReport",
    "Failure",
    "SubsetCounts",
    "build_dataset",
    "merge_shards",
]
#: How long terminated workers get to exit before they are killed.
_WORKER_EXIT_SECONDS = 5.0


@dataclass
class SubsetCounts:
    videos: int = 0  # videos (or synthetic clips) indexed, reused ones included
    frames: int = 0  # index rows
    reused: int = 0  # videos whose complete earlier extraction was kept
    failed: int = 0


@dataclass
class BuildReport:
    index_root: Path
    counts: dict[tuple[str, str], SubsetCounts] = field(default_factory=dict)  # (split, subset)
    failed: list[Failure] = field(default_factory=list)
    index_files: list[Path] = field(default_factory=list)  # CSVs written, shard and merged ones
    kept_indexes: list[str] = field(default_factory=list)  # why an existing CSV was kept
    warnings: list[Failure] = field(default_factory=list)  # built, but e.g. from a short video
    frames_written: int = 0  # PNG files written by this run
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failed and not self.kept_indexes

    def add(self, result: ItemResult) -> None:
        counts = self.counts.setdefault((result.item.split, result.item.subset), SubsetCounts())
        if result.failure is not None:
            counts.failed += 1
            self.failed.append(result.failure)
        for text in result.warnings:
            log.warning("%s: %s", result.item.name, printable(text))
            self.warnings.append(Failure(result.item.name, text))
        if result.video is not None:
            counts.videos += 1
            counts.frames += result.video.frame_count
            counts.reused += result.skipped
        self.frames_written += result.frames_written

    def summary_table(self) -> str:
        keys = sorted(self.counts, key=lambda key: (SPLIT_ORDER[key[0]], SUBSET_ORDER[key[1]]))
        columns = [column.name for column in fields(SubsetCounts)]
        lines = [_table_row("split", "subset", columns)]
        for split, subset in keys:
            lines.append(_table_row(split, subset or "-", astuple(self.counts[split, subset])))
        totals = [sum(values) for values in zip(*map(astuple, self.counts.values()), strict=True)]
        lines.append(_table_row("total", "", totals or [0] * len(columns)))
        return "\n".join(lines)

    def failure_list(self) -> str:
        lines = [f"{len(self.failed)} item(s) failed:"]
        lines += [
            f"  {failure.item}: {printable(failure.reason)}" for failure in sorted(self.failed)
        ]
        return "\n".join(lines)

    def warning_list(self) -> str:
        lines = [f"{len(self.warnings)} warning(s):"]
        lines += [
            f"  {warning.item}: {printable(warning.reason)}" for warning in sorted(self.warnings)
        ]
        return "\n".join(lines)

    def problems(self) -> str:
        """Failures, warnings and kept indexes, for the end of the command's output."""
        parts = [self.failure_list()] if self.failed else []
        parts += [self.warning_list()] if self.warnings else []
        parts += [f"index not written: {printable(reason)}" for reason in self.kept_indexes]
        return "\n".join(parts)


def _table_row(split: str, subset: str, cells: Sequence[object]) -> str:
    return f"{split:<6} {subset:<13}" + "".join(f"{cell:>8}" for cell in cells)


def _checked_fps(fps: float | None) -> float | None:
    if fps is None:
        return None
    if (
        isinstance(fps, bool)
        or not isinstance(fps, (int, float))
        or not math.isfinite(fps)
        or fps <= 0
    ):
        raise ValueError(f"fps must be a positive number or null (keep every frame), got {fps!r}")
    return float(fps)


def _pool_context() -> multiprocessing.context.BaseContext:
    return worker_pool_context(process_item.__module__)  # clean workers, see vqe.batch_jobs


def _stop_pool(pool: ProcessPoolExecutor) -> None:
    """Drop the queued items and end the running ones now, waiting until every worker is gone:
    shutdown() alone lets workers finish their items, racing a re-run of the build."""
    terminate = getattr(pool, "terminate_workers", None)  # Python >= 3.14
    processes = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    if terminate is not None:
        terminate()
    for process in processes:
        if process.is_alive():
            process.terminate()
    for process in processes:
        process.join(_WORKER_EXIT_SECONDS)
        if process.is_alive():
            process.kill()
            process.join()


ItemJob = Callable[[Item, Settings], ItemResult]


def _results(
    items: list[Item], settings: Settings, workers: int, bar: tqdm, job: ItemJob = process_item
) -> Iterator[ItemResult]:
    """The result of ``job`` on each item, in completion order. A worker that dies (a crash in
    native code, the kernel's OOM killer) breaks the whole pool, failing every item still
    queued: those items are run again one at a time, so only the item that kills its worker
    even alone is reported as failed."""
    if workers == 1:
        for item in items:
            yield job(item, settings)
            bar.update()
        return
    orphaned: list[Item] = []
    with ProcessPoolExecutor(workers, mp_context=_pool_context()) as pool:
        futures = {pool.submit(job, item, settings): item for item in items}
        try:
            for future in as_completed(futures):
                try:
                    result = future.result()
                except BrokenProcessPool:
                    orphaned.append(futures[future])
                    continue
                yield result
                bar.update()
        except BaseException:  # an interruption, or the caller stopped early
            _stop_pool(pool)
            raise
    if orphaned:
        log.warning(
            "a worker process died; running its %d unfinished items again one at a time",
            len(orphaned),
        )
        yield from _one_at_a_time(sorted(orphaned, key=lambda item: item.name), settings, bar, job)


def _one_at_a_time(
    items: list[Item], settings: Settings, bar: tqdm, job: ItemJob
) -> Iterator[ItemResult]:
    """Each item alone in a one-worker pool (a fresh one after a crash), so a crash names its
    item; the build itself never runs an item that may crash."""
    pool: ProcessPoolExecutor | None = None
    try:
        for item in items:
            pool = pool or ProcessPoolExecutor(1, mp_context=_pool_context())
            try:
                result = pool.submit(job, item, settings).result()
            except BrokenProcessPool:
                pool.shutdown(wait=True)
                pool = None
                reason = (
                    "its worker process died even with the video alone (a crash while decoding "
                    "or writing it, or out of memory); check the file, or replace it"
                )
                result = ItemResult(item, failure=Failure(item.name, reason))
            yield result
            bar.update()
    except BaseException:
        if pool is not None:
            _stop_pool(pool)
            pool = None
        raise
    finally:
        if pool is not None:
            pool.shutdown(wait=True)


def _merge_complete_shards(
    report: BuildReport, splits: list[str], count: int, overwrite: bool
) -> None:
    index_root = report.index_root
    for split in splits:
        parts = [index_root / index_file_name(split, (k, count)) for k in range(1, count + 1)]
        present = sum(path.exists() for path in parts)
        if present == count:
            try:
                report.index_files.append(merge_shard_indexes(index_root, split, count, overwrite))
            except IndexKept as kept:
                log.error("%s", kept)
                report.kept_indexes.append(str(kept))
        else:
            log.info(
                "%s: %d of %d shard indexes present; the last shard to finish (or merge=true) "
                "writes %s",
                split,
                present,
                count,
                index_file_name(split),
            )


def _write_split_indexes(
    report: BuildReport,
    videos: list[IndexedVideo],
    splits: list[str],
    shard: tuple[int, int] | None,
    overwrite: bool,
) -> None:
    """Write one index per split into the report's root; a kept one is logged and recorded."""
    for split in splits:
        path = report.index_root / index_file_name(split, shard)
        try:
            write_index(path, (video for video in videos if video.split == split), overwrite)
        except IndexKept as kept:
            log.error("%s", kept)
            report.kept_indexes.append(str(kept))
            continue
        report.index_files.append(path)


def build_dataset(
    source_dir: Path,
    out_dir: Path | None = None,
    fps: float | None = 30,
    workers: int = 1,
    shard: str | None = None,
    overwrite: bool = False,
    progress: bool = True,
) -> BuildReport:
    """Extract and index every video under ``source_dir``; see the module docstring.

    Raises ``ValueError``/``FileNotFoundError`` for bad arguments; problems with single videos are
    returned in ``BuildReport.failed`` instead.
    """
    started = time.perf_counter()
    fps = _checked_fps(fps)
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be a whole number >= 1, got {workers!r}")
    shard_spec = parse_shard(shard) if shard is not None else None
    source_dir = Path(source_dir).absolute()
    index_root = Path(out_dir).absolute() if out_dir is not None else source_dir

    items = list_items(source_dir)
    splits = sorted({item.split for item in items}, key=SPLITS.index)
    if shard_spec is not None:
        items = select_shard(items, *shard_spec)
    index_root.mkdir(parents=True, exist_ok=True)
    settings = Settings(index_root=index_root, fps=fps, overwrite=overwrite)

    report = BuildReport(index_root=index_root)
    videos = []
    with tqdm(total=len(items), unit="video", desc="build", disable=not progress) as bar:
        for result in _results(items, settings, workers, bar):
            report.add(result)
            if result.video is not None:
                videos.append(result.video)
    _write_split_indexes(report, videos, splits, shard_spec, overwrite)
    if shard_spec is not None:
        _merge_complete_shards(report, splits, shard_spec[1], overwrite)
    report.seconds = time.perf_counter() - started
    log.info(
        "built %d items in %.1f s: %d frames written, %d failed; index files: %s",
        len(items),
        report.seconds,
        report.frames_written,
        len(report.failed),
        ", ".join(path.name for path in report.index_files) or "none",
    )
    return report
