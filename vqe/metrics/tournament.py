"""Objective tournament: rank methods (and the unprocessed input) by the VQA's pairwise preference.

    python -m vqe.metrics.tournament --methods NAME=DIR [NAME=DIR …] --inputs DIR
        --vqa VQA.ckpt --dover DOVER.pth [--allow-random-critics] [--json F] [--plot P]
        [--frames-per-video 8] [--fps 30|none] [--bootstrap 1000] [--seed 0]
        [--dover-num-frames 32] [--dover-technical-clips 3] [--batch-size 8] [--device auto]

The P.910 analysis (:mod:`vqe.metrics.bradley_terry`) ranks methods from human votes; this ranks
them from the frozen Siamese VQA critic, as a cheap stand-in before a subjective test.

**Comparisons.** The videos are the mp4s of ``--inputs``; each method's folder (as written by
``vqe.enhance`` or the baseline) is matched by file name, and the inputs themselves take part as
the method ``input``. Every video is first resampled to ``--fps`` (default 30, as the enhancers
and the official frame extraction do, so an input and its 30 fps enhancements line up frame for
frame; ``none`` keeps the decoded frames, for methods run with ``--fps none``). From every video,
``--frames-per-video`` frames are sampled at evenly spaced relative positions — frame
``floor((k + ½)·N / F)`` of its N frames, k = 0 … F−1 — so methods with the same frame count are
compared on the same frames (a method with another count is compared at the same relative
times, and this is noted). DOVER scores every sampled frame once (the VQA's d1/d2), and for every
pair of methods a, b present for the video and every sampled frame the VQA is run in **both
orders**, since the Siamese network need not be symmetric::

    q_ab = ( VQA(a, b, d_a, d_b).p + 1 − VQA(b, a, d_b, d_a).p ) / 2  =  P(a preferred over b)

so q_ab + q_ba = 1. Each (video, frame, pair) is one comparison.

**Fractional wins.** A comparison is one unit of weight split into q_ab wins for a and 1 − q_ab
wins for b. In the vote machinery's terms it adds q_ab strong votes for a and 1 − q_ab strong
votes for b (vote 1 and vote 5 of :data:`~vqe.metrics.bradley_terry.VOTE_OUTCOMES`, never a tie,
so the tie parameter is 0 and the model is plain Bradley–Terry). The fit maximises
Σ q_ab log σ(θ_a − θ_b) + (1 − q_ab) log σ(θ_b − θ_a), a weighted Bradley–Terry likelihood whose
maximum matches, for two methods, σ(θ_a − θ_b) = the mean q_ab. Scores are exp θ at geometric
mean 1, as for votes.

**Intervals** (95 %): frames of one video are not independent comparisons, so the bootstrap
resamples **whole videos** with replacement (each brings all its comparisons — the
``bradley_terry`` rater bootstrap with videos in the raters' place) and refits. With one video
the interval collapses to the point.

**Problems.** A video missing from a method, or one that cannot be decoded, is listed; that
method simply takes no part for that video. The ranking is still made from what is there, and
the exit status is then 1 (2 for bad arguments). Mp4s of a method that are not among the inputs
are ignored and listed.

Output: the ranking table of the vote analysis (score, interval, comparisons per method), a
table per pair (mean preference, and the critic's first-slot bias mean(p(a,b) + p(b,a) − 1)),
optionally JSON (``--json``) and the vote analysis's interval plot (``--plot``).
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import Tensor
from tqdm import tqdm

from vqe.conventions import rgb_uint8_to_tensor
from vqe.critics.dover import DoverCritic
from vqe.critics.frozen import CriticHandle
from vqe.critics.vqa import VQA
from vqe.metrics.bt_fit import Analysis, PairCounts, Ranking, VoteError, rank
from vqe.metrics.score_outputs import (
    add_critic_arguments,
    check_critic_arguments,
    critics_label,
    load_critics,
    random_critics_used,
    resolve_device,
)
from vqe.output_paths import OutputPathError, check_writable
from vqe.video import OFFICIAL_FPS, VideoError, parse_fps, read_frames

INPUT_METHOD = "input"
DEFAULT_FRAMES_PER_VIDEO = 8
VIDEO_SUFFIX = ".mp4"
#: Column of the vote counts that stands for "strong preference for the first method" (vote 1)
#: and for the second (vote 5); a comparison with preference q adds q to one and 1 − q to the other.
FIRST_WINS, SECOND_WINS = 0, 4
NUM_VOTE_COLUMNS = 5

# Columns of the comparisons table: one row per (video, frame, pair of methods).
VIDEO, FRAME, FIRST, SECOND = "video", "frame", "first", "second"
P_FORWARD, P_BACKWARD, PREFERENCE = "p_forward", "p_backward", "preference"


# --------------------------------------------------------------------------- frames


def sample_positions(count: int, per_video: int) -> list[int]:
    """``per_video`` evenly spaced indices of ``count`` frames: floor((k + ½)·count / per_video)."""
    if count < 1 or per_video < 1:
        raise ValueError(f"need count ≥ 1 and per_video ≥ 1, got {count} and {per_video}")
    return [min(int((k + 0.5) * count / per_video), count - 1) for k in range(per_video)]


def sampled_frames(path: Path, per_video: int, fps: float | None) -> tuple[Tensor, int]:
    """The sampled frames of a video as an F×3×H×W RGB [0, 1] tensor, and its frame count.

    Two decoding passes (count, then pick) keep only the sampled frames in memory.
    """
    count = sum(1 for _ in read_frames(path, fps))
    wanted = sample_positions(count, per_video)
    picked: dict[int, Tensor] = {}
    for index, image in enumerate(read_frames(path, fps)):
        if index in wanted:
            picked[index] = rgb_uint8_to_tensor(image)
    missing = [index for index in wanted if index not in picked]
    if missing:  # a second decode that ends early: the file changed or is damaged
        raise VideoError(f"{path}: frames {missing} could not be decoded again")
    return torch.stack([picked[index] for index in wanted]), count


# --------------------------------------------------------------------------- critics


def _in_batches(run: Callable[[slice], Tensor], count: int, batch_size: int) -> Tensor:
    return torch.cat([run(slice(i, i + batch_size)) for i in range(0, count, batch_size)])


def dover_scores(dover: CriticHandle, frames: Tensor, batch_size: int) -> Tensor:
    """Fused DOVER score of every frame (N,)."""
    with torch.no_grad():
        return _in_batches(lambda part: dover(frames[part]), len(frames), batch_size)


def preferences_both_orders(
    vqa: CriticHandle,
    frames_a: Tensor,
    frames_b: Tensor,
    dover_a: Tensor,
    dover_b: Tensor,
    batch_size: int,
) -> tuple[Tensor, Tensor]:
    """Per frame, (VQA(a, b).p, VQA(b, a).p); the symmetric preference for a is their
    ``(forward + 1 − backward) / 2``."""

    def both(part: slice) -> Tensor:
        a, b, da, db = frames_a[part], frames_b[part], dover_a[part], dover_b[part]
        forward = vqa.on(a).compare(a, b, da, db)[0][:, 0]
        backward = vqa.on(a).compare(b, a, db, da)[0][:, 0]
        return torch.stack([forward, backward], dim=1)

    with torch.no_grad():
        pairs = _in_batches(both, len(frames_a), batch_size)
    return pairs[:, 0], pairs[:, 1]


def symmetric_preference(forward: np.ndarray, backward: np.ndarray) -> np.ndarray:
    """P(a preferred over b) with both orders averaged: (p(a, b) + 1 − p(b, a)) / 2."""
    return (forward + 1.0 - backward) / 2.0


# --------------------------------------------------------------------------- collecting


@dataclass
class Tournament:
    """Every comparison made, and what could not be compared."""

    methods: list[str]  # as given, input first
    videos: list[str]  # file names of the inputs
    frames_per_video: int
    comparisons: pd.DataFrame  # VIDEO, FRAME, FIRST, SECOND, P_FORWARD, P_BACKWARD, PREFERENCE
    missing: dict[str, list[str]] = field(default_factory=dict)  # method → missing file names
    failed: list[tuple[str, str, str]] = field(default_factory=list)  # (method, file, why)
    extra: dict[str, list[str]] = field(default_factory=dict)  # method → files not in inputs
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not any(self.missing.values()) and not self.failed


def _videos(folder: Path) -> list[str]:
    return sorted(
        path.name
        for path in folder.iterdir()
        if path.is_file() and path.suffix.lower() == VIDEO_SUFFIX and not path.name.startswith(".")
    )


def collect_comparisons(
    methods: Mapping[str, Path],
    inputs: Path,
    vqa: VQA,
    dover: DoverCritic,
    frames_per_video: int = DEFAULT_FRAMES_PER_VIDEO,
    fps: float | None = OFFICIAL_FPS,
    batch_size: int = 8,
    device: torch.device | None = None,
    progress: bool = True,
) -> Tournament:
    """Run the VQA on every pair of ``{input, *methods}`` for every video of ``inputs``."""
    if INPUT_METHOD in methods:
        raise ValueError(f"the method name {INPUT_METHOD!r} is reserved for --inputs")
    device = device or torch.device("cpu")
    folders = {INPUT_METHOD: Path(inputs), **{name: Path(path) for name, path in methods.items()}}
    videos = _videos(folders[INPUT_METHOD])
    if not videos:
        raise ValueError(f"{inputs}: no {VIDEO_SUFFIX} videos to compare")
    tournament = Tournament(list(folders), videos, frames_per_video, pd.DataFrame())
    for name, folder in folders.items():
        tournament.missing[name] = [video for video in videos if not (folder / video).is_file()]
        if name != INPUT_METHOD:
            tournament.extra[name] = sorted(set(_videos(folder)) - set(videos))
    vqa_handle, dover_handle = CriticHandle(vqa), CriticHandle(dover)
    rows: list[pd.DataFrame] = []
    for video in tqdm(videos, desc="tournament", unit="video", disable=not progress):
        frames: dict[str, Tensor] = {}
        counts: dict[str, int] = {}
        for name, folder in folders.items():
            if video in tournament.missing[name]:
                continue
            try:
                sampled, counts[name] = sampled_frames(folder / video, frames_per_video, fps)
            except VideoError as error:
                tournament.failed.append((name, str(folder / video), str(error)))
                continue
            frames[name] = sampled.to(device)
        if len(set(counts.values())) > 1:
            tournament.notes.append(
                f"{video}: frame counts differ ({counts}); compared at the same relative positions"
            )
        scores = {name: dover_scores(dover_handle, x, batch_size) for name, x in frames.items()}
        for first, second in itertools.combinations(list(frames), 2):
            forward, backward = preferences_both_orders(
                vqa_handle, frames[first], frames[second], scores[first], scores[second], batch_size
            )
            forward_np = forward.cpu().double().numpy()
            backward_np = backward.cpu().double().numpy()
            rows.append(
                pd.DataFrame(
                    {
                        VIDEO: video,
                        FRAME: np.arange(frames_per_video),
                        FIRST: first,
                        SECOND: second,
                        P_FORWARD: forward_np,
                        P_BACKWARD: backward_np,
                        PREFERENCE: symmetric_preference(forward_np, backward_np),
                    }
                )
            )
    columns = [VIDEO, FRAME, FIRST, SECOND, P_FORWARD, P_BACKWARD, PREFERENCE]
    tournament.comparisons = (
        pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(columns=columns)
    )
    return tournament


# --------------------------------------------------------------------------- Bradley–Terry


def preference_counts(comparisons: pd.DataFrame) -> tuple[PairCounts, np.ndarray, list[str]]:
    """Fractional vote counts of the comparisons (see the module doc).

    Returns the :class:`~vqe.metrics.bradley_terry.PairCounts` of all comparisons, the same
    counts per video ((V, K, 5), for the video bootstrap) and the videos in that order.
    """
    if comparisons.empty:
        raise VoteError("no comparisons: at least two methods must share a video")
    methods = tuple(sorted(set(comparisons[FIRST]) | set(comparisons[SECOND])))
    index = pd.Index(methods)
    first = index.get_indexer(comparisons[FIRST])
    second = index.get_indexer(comparisons[SECOND])
    preference = comparisons[PREFERENCE].to_numpy(dtype=float)
    swapped = first > second  # PairCounts sees each pair from its first (lower) method
    low, high = np.minimum(first, second), np.maximum(first, second)
    wins_low = np.where(swapped, 1.0 - preference, preference)
    codes, pair_index = np.unique(low * len(methods) + high, return_inverse=True)
    video_index, videos = pd.factorize(comparisons[VIDEO], sort=True)
    per_video = np.zeros((len(videos), len(codes), NUM_VOTE_COLUMNS))
    np.add.at(per_video[..., FIRST_WINS], (video_index, pair_index), wins_low)
    np.add.at(per_video[..., SECOND_WINS], (video_index, pair_index), 1.0 - wins_low)
    pairs = PairCounts(methods, codes // len(methods), codes % len(methods), per_video.sum(axis=0))
    return pairs, per_video, list(videos)


def rank_comparisons(
    comparisons: pd.DataFrame, n_bootstrap: int = 1000, level: float = 0.95, seed: int = 0
) -> Ranking:
    """Bradley–Terry scores with video-bootstrap intervals; raises VoteError when the methods
    cannot be put on one scale (e.g. one method is preferred with p = 1 in every comparison)."""
    pairs, per_video, videos = preference_counts(comparisons)
    ranking = rank(pairs, "bootstrap", n_bootstrap, level, np.random.default_rng(seed), per_video)
    # Exact comparison counts (the float sums of q and 1 − q can fall a hair short).
    per_method = pd.concat([comparisons[FIRST], comparisons[SECOND]]).value_counts()
    scores = tuple(
        dataclasses.replace(item, votes=int(per_method[item.method])) for item in ranking.scores
    )
    interval = f"{level:.0%} bootstrap over videos ({n_bootstrap}, {len(videos)} videos)"
    return dataclasses.replace(ranking, scores=scores, interval=interval)


def pair_table(comparisons: pd.DataFrame) -> pd.DataFrame:
    """Per pair: videos, comparisons, mean preference for ``first`` (both orders averaged) and the
    critic's first-slot bias mean(p(a, b) + p(b, a) − 1) (0 for a symmetric critic)."""
    bias = comparisons[P_FORWARD] + comparisons[P_BACKWARD] - 1.0
    grouped = comparisons.assign(first_slot_bias=bias).groupby([FIRST, SECOND], sort=True)
    return grouped.agg(
        videos=(VIDEO, "nunique"),
        comparisons=(PREFERENCE, "size"),
        preference=(PREFERENCE, "mean"),
        first_slot_bias=("first_slot_bias", "mean"),
    ).reset_index()


# --------------------------------------------------------------------------- reporting


def format_report(tournament: Tournament, ranking: Ranking | None, pairs: pd.DataFrame) -> str:
    float_format = "{:.4f}".format
    parts = [
        f"{len(tournament.methods)} methods ({', '.join(tournament.methods)}), "
        + f"{len(tournament.videos)} videos, {tournament.frames_per_video} frames per video"
    ]
    if ranking is not None:
        table = ranking.as_frame().rename(columns={"votes": "comparisons"})
        parts += [
            f"\noverall ({ranking.interval}; fractional wins from the VQA, both orders averaged)",
            table.to_string(index=False, float_format=float_format),
        ]
    if not pairs.empty:
        parts += [
            "\npairs (preference = mean P(first preferred over second), both orders averaged)",
            pairs.to_string(index=False, float_format=float_format),
        ]
    for name, files in tournament.missing.items():
        if files:
            parts.append(f"MISSING from {name} ({len(files)}): {', '.join(files)}")
    for name, files in tournament.extra.items():
        if files:
            parts.append(f"ignored in {name} (not among the inputs): {', '.join(files)}")
    if tournament.failed:
        parts.append(f"FAILED {len(tournament.failed)}:")
        parts += [f"  {method}: {reason}" for method, _, reason in tournament.failed]
    parts += [f"note: {note}" for note in tournament.notes]
    return "\n".join(parts)


def report_json(
    tournament: Tournament,
    ranking: Ranking | None,
    pairs: pd.DataFrame,
    settings: Mapping[str, object],
    error: str | None,
) -> dict:
    return {
        "settings": dict(settings),
        "interval": ranking.interval if ranking is not None else None,
        "methods": {
            item.method: {
                "score": item.score,
                "ci_low": item.ci_low,
                "ci_high": item.ci_high,
                "comparisons": item.votes,
            }
            for item in (ranking.scores if ranking is not None else ())
        },
        "pairs": pairs.to_dict(orient="records"),
        "videos": tournament.videos,
        "missing": {name: files for name, files in tournament.missing.items() if files},
        "failed": [
            {"method": method, "file": path, "reason": reason}
            for method, path, reason in tournament.failed
        ],
        "ignored": {name: files for name, files in tournament.extra.items() if files},
        "notes": tournament.notes,
        "error": error,
    }


# --------------------------------------------------------------------------- command line


def parse_methods(parser: argparse.ArgumentParser, specs: Sequence[str]) -> dict[str, Path]:
    methods: dict[str, Path] = {}
    for spec in specs:
        name, separator, folder = spec.partition("=")
        name = name.strip()
        if not separator or not name or not folder:
            parser.error(f"--methods {spec!r}: expected NAME=DIR, e.g. baseline=outputs/baseline")
        if name == INPUT_METHOD:
            parser.error(f"--methods {spec!r}: the name {INPUT_METHOD!r} is reserved for --inputs")
        if name in methods:
            parser.error(f"--methods: the name {name!r} is given twice")
        if not Path(folder).is_dir():
            parser.error(f"--methods {spec!r}: {folder} is not a folder")
        methods[name] = Path(folder)
    return methods


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m vqe.metrics.tournament",
        description="Bradley–Terry ranking of methods (and the input) by the VQA critic's "
        "pairwise preference.",
    )
    parser.add_argument("--methods", nargs="+", required=True, metavar="NAME=DIR")
    parser.add_argument("--inputs", type=Path, required=True, help="folder of the input mp4s")
    parser.add_argument("--json", type=Path, help="write the ranking, pairs and problems here")
    parser.add_argument("--plot", type=Path, help="interval plot PNG")
    parser.add_argument("--frames-per-video", type=int, default=DEFAULT_FRAMES_PER_VIDEO)
    parser.add_argument(
        "--fps", type=parse_fps, default=float(OFFICIAL_FPS),
        help=f"resample every video to this rate before sampling (default {OFFICIAL_FPS}, as the "
        "enhancers do); 'none' keeps every decoded frame (for methods run with --fps none)",
    )  # fmt: skip
    parser.add_argument("--bootstrap", type=int, default=1000, help="video-bootstrap resamples")
    parser.add_argument("--seed", type=int, default=0, help="seed of the bootstrap")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_critic_arguments(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    methods = parse_methods(parser, args.methods)
    if not args.inputs.is_dir():
        parser.error(f"--inputs {args.inputs}: not a folder")
    if args.frames_per_video < 1:
        parser.error(f"--frames-per-video must be ≥ 1, got {args.frames_per_video}")
    if args.bootstrap < 2:
        parser.error(f"--bootstrap must be ≥ 2, got {args.bootstrap}")
    check_critic_arguments(parser, args)
    try:  # before the comparisons, which take minutes
        for option, path in (("--json", args.json), ("--plot", args.plot)):
            if path is not None:
                check_writable(path, option)
    except OutputPathError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    label = critics_label(args)
    print(label)
    vqa, dover = load_critics(args)
    started = time.perf_counter()
    try:
        tournament = collect_comparisons(
            methods,
            args.inputs,
            vqa,
            dover,
            args.frames_per_video,
            args.fps,
            args.batch_size,
            resolve_device(args.device),
            progress=not args.no_progress,
        )
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    ranking: Ranking | None = None
    error: str | None = None
    try:
        ranking = rank_comparisons(tournament.comparisons, args.bootstrap, seed=args.seed)
    except VoteError as problem:
        error = f"no ranking: {problem}"
    pairs = pair_table(tournament.comparisons)
    print(format_report(tournament, ranking, pairs))
    print(f"time {time.perf_counter() - started:.1f} s")
    if error:
        print(f"error: {error}", file=sys.stderr)
    if ranking is not None and args.plot is not None:
        from vqe.metrics.bt_plot import plot_analysis  # matplotlib only when plotting

        analysis = Analysis(ranking, {}, pairs, 0, 0.0, tournament.notes)
        print(f"wrote {plot_analysis(analysis, args.plot)}")
    if args.json is not None:
        settings = {
            "critics": label,
            "random_critics": random_critics_used(args),
            "frames_per_video": args.frames_per_video,
            "fps": args.fps,
            "methods": {INPUT_METHOD: str(args.inputs), **{k: str(v) for k, v in methods.items()}},
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        document = report_json(tournament, ranking, pairs, settings, error)
        args.json.write_text(json.dumps(document, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0 if tournament.ok and ranking is not None else 1


if __name__ == "__main__":
    sys.exit(main())
