"""Score a folder of enhanced videos the way the training test loop scores a checkpoint.

    python -m vqe.metrics.score_outputs --enhanced DIR --data-root ROOT [--split test]
        --vqa VQA.ckpt --dover DOVER.pth [--allow-random-critics] --out RESULTS
        [--fps 30|none] [--dover-num-frames 32] [--dover-technical-clips 3] [--batch-size 8]
        [--device auto] [--official] [--overwrite] [--no-progress]
        [--no-quality] [--no-lpips] [--lpips-backbone alexnet-owt-7be5be79.pth]

This lets the baseline, any external method — anything that writes videos — be scored exactly
like ``python -m vqe.evaluate`` scores a checkpoint. It writes the layout of
:mod:`vqe.metrics.results` into ``--out``: ``submission/`` holding exactly
``metrics_supervised.csv`` and ``metrics_unsupervised.csv`` (what the official ``score.py``
accepts), ``submission.zip`` (the upload), ``score.json`` and ``tables/quality.csv`` (PSNR, SSIM
and — when its backbone file is there — LPIPS per synthetic video, :mod:`vqe.metrics.quality`);
it prints the objective score and the quality means.

**Expected names in ``--enhanced``** (one folder may hold both):

* ``video_XXXX_x.mp4`` — the enhanced ``ROOT/<split>/unsupervised/video_XXXX_x.mp4``, same file
  name (what ``vqe.enhance`` and the baseline write);
* ``video_XXXX.mp4`` — the enhanced synthetic video ``video_XXXX``, i.e. the enhancer's output
  for ``python -m vqe.metrics.synthetic_inputs`` (which encodes ``…/synthetic/video_XXXX/x/*.jpg``
  as ``video_XXXX.mp4``, losslessly by default).

Unsupervised inputs are resampled to 30 fps before enhancement by both tools (their default,
like the official frame extraction), so enhanced frame k is the enhancement of the input's frame
k at 30 fps; synthetic input mp4s are 30 fps already, so their frames stay one for one.

**Same functions as the test loop.** Per frame, the unsupervised rows get ``[p, a1 … a11]`` from
:class:`~vqe.critics.scorer.CriticScorer` (``VQA(ŷ, x, DOVER(ŷ), DOVER(x))`` in float32,
``exact=True``; DOVER(x) computed on the decoded input frame, which is what the test loop's cache
holds for the stored frame), the synthetic rows the RMSE of
:func:`~vqe.conventions.vqa_scale_rmse` against the ``y/`` jpgs (read by OpenCV like the
dataset); :class:`~vqe.metrics.video_metrics.VideoMetrics` averages per video,
:func:`~vqe.metrics.submission.write_submission` writes the CSVs and
:func:`~vqe.metrics.score.score_submission` scores them (over the videos of the data root;
``--official`` checks the official 500 + 3000 instead).

**Which frames.** The test loop scores the frames the dataset builder extracted: the input video
resampled to 30 fps (:func:`vqe.video.read_frames`), so a frame of a 20 fps clip can be scored
twice. Here the input is resampled the same way (``--fps``, default 30; ``none`` keeps every
decoded frame, for outputs of ``--fps none`` enhancers) and paired with the enhanced video's
decoded frames in order; synthetic videos pair enhanced frame k with target frame k. Frame
counts and sizes must match, or the video is listed as failed.

**What differs from the test loop**, by construction: the enhanced frames went through the
method's own encoding (official: H.264 yuv420p CRF 18) and whatever temporal processing it does
(``vqe.enhance`` smooths the LUT weights over time; the test loop enhances frame by frame). For a
model that is the identity both ways give the same numbers (tested).

**Bad videos.** An expected video that is missing from ``--enhanced``, cannot be decoded, or has
the wrong number or size of frames is listed, and its row is written as ``nan`` — the scorer
counts it as missing with the official fill (−9999 / 9999). The exit status is then 1; the good
videos are still scored.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from vqe.conventions import rgb_uint8_to_tensor, vqa_scale_rmse
from vqe.critics.dover import DoverCritic, build_dover
from vqe.critics.dover.views import OFFICIAL_NUM_FRAMES, OFFICIAL_TECHNICAL_CLIPS
from vqe.critics.scorer import CriticScorer, build_critic_scorer
from vqe.critics.vqa import VQA, load_vqa
from vqe.data.extract import ItemError
from vqe.data.layout import Item, list_items
from vqe.metrics.quality import FrameQuality, build_frame_quality
from vqe.metrics.results import RunLayout, RunResults, write_results
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
from vqe.output_paths import OutputPathError, check_writable
from vqe.schema import (
    NUM_VQA_SCORES,
    SPLITS,
    SUBSET_REAL,
    SUBSET_SYNTHETIC,
    SUBSET_UNSUPERVISED,
)
from vqe.video import OFFICIAL_FPS, VideoError, parse_fps, read_frames

#: The dataset builder's (and the enhancers') default rate: the frames the test loop scores.
DEFAULT_FPS = float(OFFICIAL_FPS)
DEFAULT_BATCH_SIZE = 8


class FrameMismatchError(ValueError):
    """Enhanced and reference frames cannot be paired; the message names both files."""


# --------------------------------------------------------------------------- critics (CLI)


def add_critic_arguments(parser: argparse.ArgumentParser) -> None:
    """The critic options shared by score_outputs and the tournament."""
    parser.add_argument("--vqa", type=Path, help="VQA.ckpt (organisers' starter kit)")
    parser.add_argument("--dover", type=Path, help="DOVER.pth (public DOVER weights)")
    parser.add_argument(
        "--allow-random-critics", action="store_true",
        help="without --vqa/--dover use seeded RANDOM critics: scores are meaningless "
        "(tests and demos only)",
    )  # fmt: skip
    parser.add_argument(
        "--dover-num-frames", type=int, default=OFFICIAL_NUM_FRAMES,
        help=f"identical frames per DOVER clip ({OFFICIAL_NUM_FRAMES} is official)",
    )  # fmt: skip
    parser.add_argument(
        "--dover-technical-clips", type=int, default=OFFICIAL_TECHNICAL_CLIPS,
        help=f"DOVER fragment mosaics per frame ({OFFICIAL_TECHNICAL_CLIPS} is official)",
    )  # fmt: skip
    parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE, help="frames")
    parser.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda:0…")


def check_critic_arguments(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Exit with a usage error for weights paths that are not files or a bad batch size."""
    for option, path in (("--vqa", args.vqa), ("--dover", args.dover)):
        if path is not None and not path.is_file():
            parser.error(f"{option} {path}: no such file")
        if path is None and not args.allow_random_critics:
            parser.error(
                f"{option} is required (the critic's weights); pass --allow-random-critics to "
                "use a random critic whose scores are meaningless"
            )
    if args.batch_size < 1:
        parser.error(f"--batch-size must be ≥ 1, got {args.batch_size}")
    try:
        resolve_device(args.device)
    except (RuntimeError, ValueError) as error:
        parser.error(f"--device {args.device}: {error}")


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("CUDA is not available on this machine")
    return device


def random_critics_used(args: argparse.Namespace) -> bool:
    return args.vqa is None or args.dover is None


def load_critics(args: argparse.Namespace) -> tuple[VQA, DoverCritic]:
    """The frozen VQA and DOVER (with the requested clip setting) from parsed arguments."""
    vqa = load_vqa(args.vqa, allow_random=args.allow_random_critics)
    dover = build_dover(
        args.dover,
        allow_random_critics=args.allow_random_critics,
        num_frames=args.dover_num_frames,
        num_technical_clips=args.dover_technical_clips,
    )
    return vqa, dover


def critics_label(args: argparse.Namespace) -> str:
    """One line naming the critics, loud when random."""
    vqa = "RANDOM (meaningless)" if args.vqa is None else str(args.vqa)
    dover = "RANDOM (meaningless)" if args.dover is None else str(args.dover)
    setting = f"T={args.dover_num_frames}, K={args.dover_technical_clips}"
    official = (args.dover_num_frames, args.dover_technical_clips) == (
        OFFICIAL_NUM_FRAMES,
        OFFICIAL_TECHNICAL_CLIPS,
    )
    return (
        f"critics: VQA {vqa}; DOVER {dover} ({setting}, "
        f"{'official' if official else 'cheaper than official: not comparable'})"
    )


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


def _unsupervised_metrics(
    item: Item,
    enhanced: Path,
    scorer: CriticScorer,
    fps: float | None,
    batch_size: int,
    device: torch.device,
) -> VideoMetrics:
    metrics = VideoMetrics()
    pairs = unsupervised_frame_pairs(enhanced, item.source, fps)
    for frames, outputs, inputs in _batches(pairs, batch_size, device):
        with torch.no_grad():
            rows = scorer(outputs, inputs, exact=True).metric_row()
        count = len(frames)
        metrics.add_scores([item.subset] * count, [item.video_id] * count, frames, rows)
    return metrics


def _synthetic_metrics(
    item: Item,
    data_root: Path,
    enhanced: Path,
    batch_size: int,
    device: torch.device,
    quality: FrameQuality | None = None,
) -> VideoMetrics:
    video = synthetic_video(item, data_root)
    metrics = VideoMetrics()
    pairs = synthetic_frame_pairs(enhanced, video)
    for frames, outputs, targets in _batches(pairs, batch_size, device):
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
    """Where the enhanced version of ``item`` is expected (see the module doc)."""
    if item.subset == SUBSET_SYNTHETIC:
        return enhanced_dir / synthetic_video_name(item.video_id)
    return enhanced_dir / item.source.name  # video_XXXX_x.mp4, as enhancers write it


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
    layout of :mod:`vqe.metrics.results` into ``out_dir``. See the module doc.

    ``quality`` (:func:`vqe.metrics.quality.build_frame_quality`) adds ``tables/quality.csv``
    for the synthetic videos; ``None`` leaves it out."""
    enhanced_dir, data_root, out_dir = Path(enhanced_dir), Path(data_root), Path(out_dir)
    if not enhanced_dir.is_dir():
        raise ValueError(f"{enhanced_dir}: the enhanced-videos folder does not exist")
    submission_dir = RunLayout(out_dir).submission_dir
    existing = [path for name in SUBMISSION_FILES if (path := submission_dir / name).exists()]
    if existing and not overwrite:  # checked before hours of scoring, not after
        raise FileExistsError(
            f"{', '.join(map(str, existing))} already exist; pass --overwrite to replace them"
        )
    device = device or torch.device("cpu")
    if quality is not None:
        quality.to(device)
    unsupervised, synthetic, notes = expected_items(data_root, split)
    if not unsupervised and not synthetic:
        raise ValueError(
            f"{data_root / split}: holds no unsupervised or synthetic videos to score against"
        )
    # The scorer of the test loop, with DOVER(x) computed on the decoded input frame.
    scorer = build_critic_scorer(vqa, dover, input_dover="online", enhanced_dover="online")
    report = OutputsReport(notes=notes)
    parts: list[VideoMetrics] = []
    supervised: dict[str, float] = {}
    scores: dict[str, list[float]] = {}
    videos = [*synthetic, *unsupervised]
    for item in tqdm(videos, desc="scoring", unit="video", disable=not progress):
        if item.problem is not None:  # a bad input name or folder: the test loop's index lacks it
            report.failed.append((item.video_id or item.name, f"{item.source}: {item.problem}"))
            continue
        path = enhanced_path(enhanced_dir, item)
        part: VideoMetrics | None = None
        if not path.is_file():
            report.missing.append(path)
        else:
            try:
                if item.subset == SUBSET_SYNTHETIC:
                    part = _synthetic_metrics(item, data_root, path, batch_size, device, quality)
                else:
                    part = _unsupervised_metrics(item, path, scorer, fps, batch_size, device)
            except (VideoError, FrameMismatchError, ItemError, OSError) as error:
                report.failed.append((item.video_id, str(error)))
        if part is not None:
            parts.append(part)
            report.scored.append(item.video_id)
        elif item.subset == SUBSET_SYNTHETIC:  # a nan row: scored as missing (official fill)
            supervised[item.video_id] = math.nan
        else:
            scores[item.video_id] = [math.nan] * NUM_VQA_SCORES
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
    )
    report.score, report.score_error = report.results.score, report.results.score_error
    return report


# --------------------------------------------------------------------------- command line


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m vqe.metrics.score_outputs",
        description="Submission CSVs and objective score of a folder of enhanced videos.",
    )
    parser.add_argument("--enhanced", type=Path, required=True, help="folder of enhanced mp4s")
    parser.add_argument("--data-root", type=Path, required=True, help="official layout root")
    parser.add_argument("--split", choices=SPLITS, default="test")
    parser.add_argument(
        "--out", type=Path, required=True,
        help="run folder: submission/ (the two CSVs), submission.zip, score.json, tables/",
    )  # fmt: skip
    parser.add_argument(
        "--fps", type=parse_fps, default=DEFAULT_FPS,
        help="rate the unsupervised inputs are resampled to, as the dataset builder and the "
        "enhancers do (default 30); 'none' when the enhancer kept the decoded frames one for one",
    )  # fmt: skip
    parser.add_argument(
        "--official", action="store_true",
        help="require the official 500 synthetic + 3000 unsupervised video ids",
    )  # fmt: skip
    parser.add_argument("--overwrite", action="store_true", help="replace CSVs in --out")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument(
        "--no-quality", action="store_true", help="no tables/quality.csv (PSNR, SSIM, LPIPS)"
    )
    parser.add_argument("--no-lpips", action="store_true", help="leave the LPIPS column out")
    parser.add_argument(
        "--lpips-backbone", type=Path,
        help="torchvision alexnet checkpoint for LPIPS (default: torchvision's cache file; "
        "without it the LPIPS column is left out)",
    )  # fmt: skip
    add_critic_arguments(parser)
    args = parser.parse_args(argv)
    check_critic_arguments(parser, args)
    try:  # before scoring, which takes minutes
        check_writable(args.out, "--out", folder=True)
    except OutputPathError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(critics_label(args))
    vqa, dover = load_critics(args)
    quality = None
    if not args.no_quality:
        quality = build_frame_quality(
            lpips=not args.no_lpips, lpips_backbone_weights=args.lpips_backbone
        )
    try:
        report = score_outputs(
            args.enhanced,
            args.data_root,
            args.out,
            vqa,
            dover,
            split=args.split,
            fps=args.fps,
            batch_size=args.batch_size,
            device=resolve_device(args.device),
            official_rows=args.official,
            overwrite=args.overwrite,
            progress=not args.no_progress,
            quality=quality,
        )
    except (ValueError, FileNotFoundError, FileExistsError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(report.summary())
    if report.score is not None:
        print(f"objective score of {args.enhanced} ({len(report.scored)} videos scored):")
        print(report.score.format())
        print(f"wrote {RunLayout(args.out).score_json}")
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
