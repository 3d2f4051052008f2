"""Objective tournament: methods (and the unprocessed input) compared pair by pair by the frozen
Siamese VQA critic, and ranked by Bradley–Terry — a cheap stand-in for a P.910 study
(:mod:`vqe.preference.bradley_terry` ranks human votes).

**Comparisons.** Every video is resampled to one rate, and ``frames_per_video`` frames are
sampled at the relative positions ``floor((k + ½)·N / F)`` of its N frames, so methods with the
same frame count are compared on the same frames. For every pair of methods and frame the VQA
runs in **both orders**, since the Siamese network need not be symmetric::

    q_ab = ( VQA(a, b, d_a, d_b).p + 1 − VQA(b, a, d_b, d_a).p ) / 2  =  P(a preferred over b)

**Cost: per method, not per pair.** The VQA's preference is its main head on the two sides'
embeddings ``z = [encode(x), DOVER(x)]`` (513 numbers), and a side's embedding does not depend
on what it is compared with. So each method's sampled frames go through DOVER and the VQA
encoder **once** per video, and every pair in both orders costs only the small head
(:func:`vqa_embeddings`, :func:`head_preference`); the result equals ``VQA.forward``.

**Fractional wins.** Each comparison adds q_ab strong votes for a and 1 − q_ab for b (votes 1
and 5 of :data:`~vqe.preference.bradley_terry.VOTE_OUTCOMES`, never a tie), so the fit is
plain, weighted Bradley–Terry; scores are exp θ at geometric mean 1. **Intervals** (95 %) come
from a bootstrap over **whole videos**, since the frames of one video are not independent
comparisons.

The command is ``vqe tournament`` (:mod:`vqe.cli.tournament`).
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import Tensor
from tqdm import tqdm

from vqe.conventions import rgb_uint8_to_tensor, to_vqa
from vqe.critics.dover import DoverCritic
from vqe.critics.frozen import CriticHandle
from vqe.critics.vqa import VQA
from vqe.preference.bradley_terry import PairCounts, Ranking, VoteError, rank
from vqe.video import OFFICIAL_FPS, VideoError, read_frames

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


def vqa_embeddings(vqa: CriticHandle, frames: Tensor, dover: Tensor, batch_size: int) -> Tensor:
    """``[encode(frames), DOVER]`` (N×513): one side of the VQA, as its ``forward`` builds it."""
    module = vqa.on(frames)

    def embed(part: slice) -> Tensor:
        features = module.encode(to_vqa(frames[part]))
        return torch.cat([features, dover[part].reshape(-1, 1).to(features.dtype)], dim=1)

    with torch.no_grad():
        return _in_batches(embed, len(frames), batch_size)


def head_preference(vqa: CriticHandle, first: Tensor, second: Tensor) -> Tensor:
    """``VQA(a, b).p`` per frame from the two sides' embeddings (:func:`vqa_embeddings`)."""
    with torch.no_grad():
        return vqa.on(first).main_head(torch.cat([first, second], dim=1)).clamp(0.0, 1.0)[:, 0]


def preferences_both_orders(
    vqa: CriticHandle,
    frames_a: Tensor,
    frames_b: Tensor,
    dover_a: Tensor,
    dover_b: Tensor,
    batch_size: int,
) -> tuple[Tensor, Tensor]:
    """Per frame, (VQA(a, b).p, VQA(b, a).p); the symmetric preference for a is their
    ``(forward + 1 − backward) / 2``. (The tournament reuses the embeddings across pairs.)"""
    z_a = vqa_embeddings(vqa, frames_a, dover_a, batch_size)
    z_b = vqa_embeddings(vqa, frames_b, dover_b, batch_size)
    return head_preference(vqa, z_a, z_b), head_preference(vqa, z_b, z_a)


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
    # Counted in critic frames (DOVER + VQA encoder, the cost), so the time left shows early.
    bar = tqdm(
        total=len(videos) * len(folders) * frames_per_video,
        desc="tournament",
        unit="frame",
        disable=not progress,
    )
    for video in videos:
        bar.set_postfix_str(video)
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
        # DOVER and the VQA encoder once per method; each pair below costs only the head.
        embeddings: dict[str, Tensor] = {}
        for name, x in frames.items():
            dover = dover_scores(dover_handle, x, batch_size)
            embeddings[name] = vqa_embeddings(vqa_handle, x, dover, batch_size)
            bar.update(frames_per_video)
        bar.update(frames_per_video * (len(folders) - len(frames)))  # missing or failed
        for first, second in itertools.combinations(list(frames), 2):
            forward = head_preference(vqa_handle, embeddings[first], embeddings[second])
            backward = head_preference(vqa_handle, embeddings[second], embeddings[first])
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
    bar.close()
    columns = [VIDEO, FRAME, FIRST, SECOND, P_FORWARD, P_BACKWARD, PREFERENCE]
    tournament.comparisons = (
        pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(columns=columns)
    )
    return tournament


# --------------------------------------------------------------------------- Bradley–Terry


def preference_counts(comparisons: pd.DataFrame) -> tuple[PairCounts, np.ndarray, list[str]]:
    """Fractional vote counts of the comparisons (see the module doc).

    Returns the :class:`~vqe.preference.bradley_terry.PairCounts` of all comparisons, the same
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
