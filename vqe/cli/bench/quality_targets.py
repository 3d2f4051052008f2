"""The quality targets of :mod:`vqe.cli.bench.quality`, judged per clip and on the mean.

Issue 26 holds the final model to five targets against the hand-written baseline, on the
reported (test) split:

1. mean PSNR at least ``baseline + PSNR_MARGIN_DB``;
2. PSNR above the baseline's on **every** clip;
3. CIEDE2000 and colour cast below the baseline's on every clip;
4. mean SSIM at least the baseline's;
5. mean flicker no higher than the baseline's.

A mean can hide a clip that got worse, which is why 2 and 3 are per clip: each verdict lists
the clips that fail it. Pure functions of the benchmark's per-clip metric dictionaries, so the
verdicts can be recomputed from any saved ``quality.json``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

#: Mean PSNR margin over the baseline that the final model must reach (issue 26).
PSNR_MARGIN_DB = 3.0

PerClip = Mapping[str, Mapping[str, float | None]]  # clip name → metric → value


@dataclass(frozen=True)
class Verdict:
    target: str  # what is asked, in words
    met: bool
    detail: str  # the figures behind the verdict
    failing_clips: tuple[str, ...] = ()  # clips that miss a per-clip target


def _mean(per_clip: PerClip, clips: Sequence[str], metric: str) -> float:
    values = [per_clip[name][metric] for name in clips]
    numbers = [float(value) for value in values if value is not None]
    if len(numbers) != len(values):
        raise ValueError(f"metric {metric!r} is missing for some clips: cannot judge its target")
    return sum(numbers) / len(numbers)


def _per_clip(
    final: PerClip, baseline: PerClip, clips: Sequence[str], metric: str, higher_is_better: bool
) -> tuple[str, ...]:
    """Clips where ``final`` is not strictly better than ``baseline`` on ``metric``."""
    failing = []
    for name in clips:
        ours, theirs = final[name][metric], baseline[name][metric]
        if ours is None or theirs is None:
            failing.append(name)
        elif (ours <= theirs) if higher_is_better else (ours >= theirs):
            failing.append(name)
    return tuple(failing)


def judge(
    final: PerClip, baseline: PerClip, clips: Sequence[str], margin_db: float = PSNR_MARGIN_DB
) -> list[Verdict]:
    """The five verdicts of ``final`` against ``baseline`` over ``clips`` (names)."""
    if not clips:
        raise ValueError("no clips to judge the quality targets on")
    verdicts: list[Verdict] = []

    gain = _mean(final, clips, "psnr") - _mean(baseline, clips, "psnr")
    verdicts.append(
        Verdict(
            f"mean PSNR ≥ baseline + {margin_db:g} dB",
            gain >= margin_db,
            f"final − baseline = {gain:+.2f} dB",
        )
    )
    failing = _per_clip(final, baseline, clips, "psnr", higher_is_better=True)
    verdicts.append(
        Verdict(
            "PSNR above the baseline on every clip",
            not failing,
            f"{len(clips) - len(failing)} of {len(clips)} clips above",
            failing,
        )
    )
    for metric, words in (("ciede2000", "CIEDE2000"), ("cast", "colour cast")):
        failing = _per_clip(final, baseline, clips, metric, higher_is_better=False)
        verdicts.append(
            Verdict(
                f"{words} below the baseline on every clip",
                not failing,
                f"{len(clips) - len(failing)} of {len(clips)} clips below",
                failing,
            )
        )
    for metric, words, higher in (("ssim", "SSIM", True), ("flicker", "flicker", False)):
        ours, theirs = _mean(final, clips, metric), _mean(baseline, clips, metric)
        met = ours >= theirs if higher else ours <= theirs
        relation = "≥" if higher else "≤"
        verdicts.append(
            Verdict(
                f"mean {words} {relation} the baseline's",
                met,
                f"final {ours:.4f} vs baseline {theirs:.4f}",
            )
        )
    return verdicts


def as_records(verdicts: Sequence[Verdict]) -> list[dict[str, object]]:
    """JSON-ready verdicts."""
    return [
        {**asdict(verdict), "failing_clips": list(verdict.failing_clips)} for verdict in verdicts
    ]


def markdown_lines(records: Sequence[Mapping[str, object]], split: str) -> list[str]:
    """A table for ``quality.md`` of the verdicts as :func:`as_records` saved them."""
    lines = [
        f"| target ({split} split) | verdict | figures | clips that miss it |",
        "|---|---|---|---|",
    ]
    for record in records:
        failing = record["failing_clips"]
        assert isinstance(failing, list)
        clips = ", ".join(str(name) for name in failing) or "–"
        lines.append(
            f"| {record['target']} | {'met' if record['met'] else '**NOT met**'} | "
            f"{record['detail']} | {clips} |"
        )
    return lines


__all__ = ["PSNR_MARGIN_DB", "Verdict", "as_records", "judge", "markdown_lines"]
