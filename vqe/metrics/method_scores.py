"""Score a method's output videos the way the training test loop scores a checkpoint.

:func:`score_outputs` pairs every expected enhanced video with its reference — the input
resampled like the dataset builder (unsupervised), or the ``y/`` targets (synthetic) — and
scores the pairs with the test loop's functions: :class:`~vqe.critics.scorer.CriticScorer`
(``VQA(ŷ, x, DOVER(ŷ), DOVER(x))`` in float32, ``exact=True``; DOVER(x) on the decoded input
frame), :func:`~vqe.conventions.vqa_scale_rmse` against the targets, per-video means by
:class:`~vqe.metrics.video_metrics.VideoMetrics`; then writes the run layout of
:mod:`vqe.metrics.results`. A video that is missing, undecodable or mismatched in frame count or
size is listed in the :class:`OutputsReport` and written as ``nan`` (the official missing fill).
The command (``vqe score-outputs``) is :mod:`vqe.cli.score_outputs`.

**Each distinct frame is scored once.** Resampling a ~20 fps input to 30 fps repeats every
second or third frame, and an enhancer that follows it repeats its output too; the critics are
deterministic (DOVER's fragment offsets are seeded), so a repeated (enhanced, input) pair reuses
the scores of its first occurrence and a repeated input frame its DOVER(x). Frames are matched by
a hash of their decoded bytes, so nothing that differs by one value is ever reused. Every frame
still counts in the per-video means, as in the test loop.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from vqe.conventions import rgb_uint8_to_tensor, vqa_scale_rmse
from vqe.critics.dover import DoverCritic
from vqe.critics.scorer import CriticScorer, build_critic_scorer
from vqe.critics.vqa import VQA
from vqe.dataprep.extract import ItemError
from vqe.dataprep.layout import Item, list_items
from vqe.metrics.full_reference import FrameQuality
from vqe.metrics.results import CriticsUsed, RunLayout, RunResults, write_results
from vqe.metrics.score import ScoreReport
from vqe.metrics.submission import SUBMISSION_FILES
from vqe.metrics.synthetic_inputs import (
    SyntheticVideo,
    read_rgb,
    synthetic_items,
    synthetic_video,
    synthetic_video_name,
)
from vqe.metrics.video_metrics import VideoMetrics
from vqe.schema import (
    NUM_VQA_SCORES,
    SPLITS,
    SUBSET_REAL,
    SUBSET_SYNTHETIC,
    SUBSET_UNSUPERVISED,
)
from vqe.video import OFFICIAL_FPS, VideoError, probe, read_frames

#: The dataset builder's (and the enhancers') default rate: the frames the test loop scores.
DEFAULT_FPS = float(OFFICIAL_FPS)
DEFAULT_BATCH_SIZE = 8  # frames per critic call


class FrameMismatchError(ValueError):
    """Enhanced and reference frames cannot be paired; the message names both files."""


# --------------------------------------------------------------------------- frame pairing


def frame_pairs(
    enhanced: Path, references: Iterator[np.ndarray], reference: str, hint: str
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(enhanced frame k, reference frame k) for every reference frame; raises
    :class:`FrameMismatchError` (naming both, and ``hint``) when the counts or sizes differ."""
    outputs = read_frames(enhanced)
    count = 0
    for expected in references:
        output = next(outputs, None)
        if output is None:
            total = count + 1 + sum(1 for _ in references)
            raise FrameMismatchError(
                f"{enhanced} has {count} frames but {reference} has {total}; {hint}"
            )
        if output.shape != expected.shape:
            raise FrameMismatchError(
                f"{enhanced} is {output.shape[1]}×{output.shape[0]} but {reference} is "
                f"{expected.shape[1]}×{expected.shape[0]}; keep the input's size"
            )
        count += 1
        yield output, expected
    extra = sum(1 for _ in outputs)
    if extra:
        raise FrameMismatchError(
            f"{enhanced} has {count + extra} frames but {reference} has {count}; {hint}"
        )


def unsupervised_frame_pairs(
    enhanced: Path, source: Path, fps: float | None
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(enhanced frame k, input frame k) with the input resampled at ``fps`` — the test loop's
    frames; the enhancer must have resampled the same way (its default)."""
    rate = "decoded one for one" if fps is None else f"resampled at {fps:g} fps"
    hint = (
        f"score with the --fps the enhancer used (its default {OFFICIAL_FPS}; 'none' when it kept "
        "the decoded frames one for one)"
    )
    return frame_pairs(enhanced, read_frames(source, fps), f"its input {source} {rate}", hint)


def synthetic_frame_pairs(
    enhanced: Path, video: SyntheticVideo
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(enhanced frame k, target frame k) of a synthetic video, targets read like the dataset."""
    targets = (read_rgb(video.target_dir / name) for name in video.frame_names)
    hint = "an enhancer must keep the frames of the synthetic input mp4 one for one"
    return frame_pairs(enhanced, targets, f"its targets {video.target_dir}", hint)


def _batches(
    pairs: Iterator[tuple[np.ndarray, np.ndarray]], size: int, device: torch.device
) -> Iterator[tuple[list[int], torch.Tensor, torch.Tensor]]:
    """(frame indices, first frames, second frames) as N×3×H×W RGB [0, 1] tensors."""
    batch: list[tuple[np.ndarray, np.ndarray]] = []
    start = 0
    for pair in pairs:
        batch.append(pair)
        if len(batch) == size:
            yield _stacked(batch, start, device)
            start += len(batch)
            batch = []
    if batch:
        yield _stacked(batch, start, device)


def _stacked(
    batch: list[tuple[np.ndarray, np.ndarray]], start: int, device: torch.device
) -> tuple[list[int], torch.Tensor, torch.Tensor]:
    first = torch.stack([rgb_uint8_to_tensor(a) for a, _ in batch]).to(device)
    second = torch.stack([rgb_uint8_to_tensor(b) for _, b in batch]).to(device)
    return list(range(start, start + len(batch))), first, second


# --------------------------------------------------------------------------- scoring


@dataclass
class OutputsReport:
    """What was scored and what was not."""

    scored: list[str] = field(default_factory=list)  # video ids
    missing: list[Path] = field(default_factory=list)  # expected enhanced files not found
    failed: list[tuple[str, str]] = field(default_factory=list)  # (video id, why)
    notes: list[str] = field(default_factory=list)
    score: ScoreReport | None = None
    score_error: str | None = None
    results: RunResults | None = None  # the files written and the table means

    @property
    def ok(self) -> bool:
        return not self.missing and not self.failed and self.score is not None

    def summary(self) -> str:
        lines = [f"scored {len(self.scored)} videos"]
        if self.missing:
            lines.append(f"MISSING {len(self.missing)} enhanced videos (scored as missing):")
            lines += [f"  {path}" for path in self.missing]
        if self.failed:
            lines.append(f"FAILED {len(self.failed)} (scored as missing):")
            lines += [f"  {video}: {reason}" for video, reason in self.failed]
        lines += [f"note: {note}" for note in self.notes]
        if self.results is not None:
            lines.append(self.results.summary())
        if self.score_error:
            lines.append(f"the submission cannot be scored:\n{self.score_error}")
        return "\n".join(lines)


def frame_key(frame: np.ndarray) -> bytes:
    """A digest of a decoded frame's bytes: equal keys, equal frames."""
    return hashlib.blake2b(frame.tobytes(), digest_size=16).digest()


PairKey = tuple[bytes, bytes]  # (enhanced frame key, input frame key)


class DistinctPairScorer:
    """Critic rows of (enhanced, input) frame pairs, each distinct pair scored once and each
    distinct input frame's DOVER(x) computed once (see the module notes)."""

    def __init__(self, scorer: CriticScorer, batch_size: int, device: torch.device) -> None:
        self.scorer, self.batch_size, self.device = scorer, batch_size, device
        self.rows: dict[PairKey, torch.Tensor] = {}  # pair → its 12 metric values
        self.input_dover: dict[bytes, float] = {}
        self._pending: dict[PairKey, tuple[np.ndarray, np.ndarray]] = {}
        self.pairs_seen = 0

    def add(self, output: np.ndarray, source: np.ndarray) -> PairKey:
        """Queue a pair (scored in batches of distinct pairs); returns its key."""
        key = (frame_key(output), frame_key(source))
        self.pairs_seen += 1
        if key not in self.rows and key not in self._pending:
            self._pending[key] = (output, source)
            if len(self._pending) == self.batch_size:
                self.flush()
        return key

    def flush(self) -> None:
        """Score the queued distinct pairs."""
        if not self._pending:
            return
        keys, pairs = list(self._pending), list(self._pending.values())
        self._pending = {}
        outputs = torch.stack([rgb_uint8_to_tensor(a) for a, _ in pairs]).to(self.device)
        inputs = torch.stack([rgb_uint8_to_tensor(b) for _, b in pairs]).to(self.device)
        known = torch.tensor([self.input_dover.get(key[1], math.nan) for key in keys])
        with torch.no_grad():
            scores = self.scorer(outputs, inputs, known, exact=True)
        for key, row, dover_input in zip(
            keys, scores.metric_row().cpu(), scores.dover_input.cpu().tolist(), strict=True
        ):
            self.rows[key] = row
            self.input_dover.setdefault(key[1], dover_input)

    @property
    def distinct(self) -> int:
        return len(self.rows) + len(self._pending)


def _unsupervised_metrics(
    item: Item,
    enhanced: Path,
    scorer: CriticScorer,
    fps: float | None,
    batch_size: int,
    device: torch.device,
    progress: tqdm | None = None,
) -> tuple[VideoMetrics, str | None]:
    """The video's per-frame critic rows, and a note when repeated frames were reused."""
    distinct = DistinctPairScorer(scorer, batch_size, device)
    keys: list[PairKey] = []
    for output, source in unsupervised_frame_pairs(enhanced, item.source, fps):
        keys.append(distinct.add(output, source))
        if progress is not None:
            progress.update(1)
    distinct.flush()
    metrics = VideoMetrics()
    count = len(keys)
    if count:
        rows = torch.stack([distinct.rows[key] for key in keys])
        metrics.add_scores([item.subset] * count, [item.video_id] * count, range(count), rows)
    note = None
    if len(distinct.rows) < count:
        note = (
            f"{item.video_id}: {len(distinct.rows)} distinct of {count} frame pairs scored "
            "(repeats reuse their scores)"
        )
    return metrics, note


def _synthetic_metrics(
    item: Item,
    data_root: Path,
    enhanced: Path,
    batch_size: int,
    device: torch.device,
    quality: FrameQuality | None = None,
    progress: tqdm | None = None,
) -> VideoMetrics:
    video = synthetic_video(item, data_root)
    metrics = VideoMetrics()
    pairs = synthetic_frame_pairs(enhanced, video)
    for frames, outputs, targets in _batches(pairs, batch_size, device):
        if progress is not None:
            progress.update(len(frames))
        rmse = vqa_scale_rmse(outputs, targets)
        count = len(frames)
        subsets, videos = [item.subset] * count, [item.video_id] * count
        metrics.add_rmse(subsets, videos, frames, rmse)
        if quality is not None:
            metrics.add_quality(subsets, videos, frames, quality(outputs, targets))
    return metrics


def expected_items(data_root: Path, split: str) -> tuple[list[Item], list[Item], list[str]]:
    """(unsupervised items, synthetic items, notes) of the split."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {list(SPLITS)}, got {split!r}")
    items = [item for item in list_items(data_root) if item.split == split]
    unsupervised = [item for item in items if item.subset == SUBSET_UNSUPERVISED]
    notes = []
    real = [item for item in items if item.subset == SUBSET_REAL]
    if real:
        notes.append(
            f"{len(real)} real pairs in {split}/supervised/real are not scored (the official "
            "supervised metric uses the synthetic pairs only)"
        )
    return unsupervised, synthetic_items(data_root, split), notes


def enhanced_path(enhanced_dir: Path, item: Item) -> Path:
    """Where the enhanced version of ``item`` is expected: ``video_XXXX.mp4`` for a synthetic
    video (the name :mod:`vqe.metrics.synthetic_inputs` gives its input mp4), the input's own
    name ``video_XXXX_x.mp4`` for an unsupervised one."""
    if item.subset == SUBSET_SYNTHETIC:
        return enhanced_dir / synthetic_video_name(item.video_id)
    return enhanced_dir / item.source.name  # video_XXXX_x.mp4, as enhancers write it


def expected_frames(enhanced_dir: Path, items: list[Item]) -> int:
    """Frames of the enhanced videos there, from their headers (the progress bar's total)."""
    total = 0
    for item in items:
        path = enhanced_path(enhanced_dir, item)
        if item.problem is None and path.is_file():
            try:
                total += probe(path).num_frames
            except (VideoError, OSError):  # reported when it is scored
                pass
    return total


def _check_destinations(enhanced_dir: Path, out_dir: Path, overwrite: bool) -> None:
    """Fail before hours of scoring, not after: no enhanced folder, or results in the way."""
    if not enhanced_dir.is_dir():
        raise ValueError(f"{enhanced_dir}: the enhanced-videos folder does not exist")
    submission_dir = RunLayout(out_dir).submission_dir
    existing = [path for name in SUBMISSION_FILES if (path := submission_dir / name).exists()]
    if existing and not overwrite:
        raise FileExistsError(
            f"{', '.join(map(str, existing))} already exist; pass --overwrite to replace them"
        )


def _score_video(
    item: Item,
    path: Path,
    data_root: Path,
    scorer: CriticScorer,
    report: OutputsReport,
    *,
    fps: float | None,
    batch_size: int,
    device: torch.device,
    quality: FrameQuality | None,
    bar: tqdm,
) -> VideoMetrics | None:
    """One enhanced video's metrics; None (recorded in ``report``) if it is missing or fails."""
    if not path.is_file():
        report.missing.append(path)
        return None
    try:
        if item.subset == SUBSET_SYNTHETIC:
            return _synthetic_metrics(item, data_root, path, batch_size, device, quality, bar)
        part, note = _unsupervised_metrics(item, path, scorer, fps, batch_size, device, bar)
        report.notes += [note] if note else []
        return part
    except (VideoError, FrameMismatchError, ItemError, OSError) as error:
        report.failed.append((item.video_id, str(error)))
        return None


def score_outputs(
    enhanced_dir: str | Path,
    data_root: str | Path,
    out_dir: str | Path,
    vqa: VQA,
    dover: DoverCritic,
    split: str = "test",
    fps: float | None = DEFAULT_FPS,
    batch_size: int = DEFAULT_BATCH_SIZE,
    device: torch.device | None = None,
    official_rows: bool = False,
    overwrite: bool = False,
    progress: bool = True,
    quality: FrameQuality | None = None,
) -> OutputsReport:
    """Score the enhanced videos of ``enhanced_dir`` against ``data_root``'s ``split``; write the
    layout of :mod:`vqe.metrics.results` into ``out_dir``.

    ``fps``: the rate the unsupervised inputs are resampled to before pairing, the enhancer's
    own (None: decoded frames one for one). ``official_rows``: score over the official 500 + 3000
    video ids instead of those of the data root. ``quality``
    (:func:`vqe.metrics.full_reference.build_frame_quality`) adds ``tables/quality.csv`` for the
    synthetic videos; ``None`` leaves it out. Raises ValueError / FileExistsError before any
    scoring for a bad folder, an empty split or results that exist without ``overwrite``."""
    enhanced_dir, data_root, out_dir = Path(enhanced_dir), Path(data_root), Path(out_dir)
    _check_destinations(enhanced_dir, out_dir, overwrite)
    device = device or torch.device("cpu")
    if quality is not None:
        quality.to(device)
    unsupervised, synthetic, notes = expected_items(data_root, split)
    if not unsupervised and not synthetic:
        raise ValueError(
            f"{data_root / split}: holds no unsupervised or synthetic videos to score against"
        )
    # The scorer of the test loop, DOVER(x) computed on the decoded input frame ("auto": unless
    # the same input frame was scored before, see DistinctPairScorer).
    scorer = build_critic_scorer(vqa, dover, input_dover="auto", enhanced_dover="online")
    report = OutputsReport(notes=notes)
    parts: list[VideoMetrics] = []
    supervised: dict[str, float] = {}
    scores: dict[str, list[float]] = {}
    videos = [*synthetic, *unsupervised]
    bar = tqdm(
        total=expected_frames(enhanced_dir, videos) or None,
        desc="scoring",
        unit="frame",
        disable=not progress,
    )
    for item in videos:
        bar.set_postfix_str(item.video_id or item.name)
        if item.problem is not None:  # a bad input name or folder: the test loop's index lacks it
            report.failed.append((item.video_id or item.name, f"{item.source}: {item.problem}"))
            continue
        part = _score_video(
            item,
            enhanced_path(enhanced_dir, item),
            data_root,
            scorer,
            report,
            fps=fps,
            batch_size=batch_size,
            device=device,
            quality=quality,
            bar=bar,
        )
        if part is not None:
            parts.append(part)
            report.scored.append(item.video_id)
        elif item.subset == SUBSET_SYNTHETIC:  # a nan row: scored as missing (official fill)
            supervised[item.video_id] = math.nan
        else:
            scores[item.video_id] = [math.nan] * NUM_VQA_SCORES
    bar.close()
    metrics = VideoMetrics.merged(parts)
    supervised.update(metrics.supervised_means())
    scores.update(metrics.unsupervised_means())
    report.results = write_results(
        out_dir,
        supervised,
        scores,
        quality=metrics.quality_means(),
        quality_columns=quality.columns if quality is not None else (),
        subset=not official_rows,
        overwrite=overwrite,
        critics=CriticsUsed.of(vqa, dover),
    )
    report.score, report.score_error = report.results.score, report.results.score_error
    return report
