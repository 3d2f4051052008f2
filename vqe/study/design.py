"""Which comparisons a rater gets: balanced over methods × videos, randomised, gold mixed in.

A *comparison* is (video, unordered pair of methods). Over the whole study each comparison is
assigned ``repeats`` times. A rater joining gets up to ``per_rater`` comparisons, never the same
one twice, taken from those assigned least often so far (ties broken at random), so the
comparisons fill up evenly however many raters come. Left/right: the method that has been on the
left of that comparison less often goes left (ties at random), so each side is balanced too. The
order is shuffled.

Gold questions (``gold_rate`` per regular comparison, at least one when the rate is > 0) check
attention: *same* shows one video on both sides (expected vote 3); *degraded* shows a video
against its degraded copy made at ``create`` time (expected: a preference, 1–2 or 4–5, for the
original). They are kept out of the Bradley–Terry votes.

Raters who join and walk away. A rater's whole plan is made when they join (not one trial at a
time): it keeps their own trials free of repeats and balanced left/right, places the gold
questions, gives them a known total for the progress bar, and survives a server restart as rows
of the database. The price is that a rater who never votes holds ``per_rater`` comparisons, so
``assigned`` here is what :func:`vqe.study.db.assigned_trials` counts as *taken*: every voted
trial and the open trials of raters active within the server's ``assignment_timeout``. An idle
rater's open trials are re-planned for newcomers without being taken from the idle rater (who
may still come back and vote; a comparison then gets one vote more than ``repeats``, which only
adds data), so no vote is ever refused or lost.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import combinations

from vqe.study.config import StudyConfig

PAIR, GOLD_SAME, GOLD_DEGRADED = "pair", "gold_same", "gold_degraded"
KINDS = (PAIR, GOLD_SAME, GOLD_DEGRADED)
#: Stands for the degraded gold copy where a method name goes (never a valid method name).
DEGRADED = "~degraded"


@dataclass(frozen=True)
class Trial:
    video: str
    left: str  # method name, or DEGRADED
    right: str
    kind: str  # one of KINDS

    @property
    def comparison(self) -> tuple[str, str, str]:
        """(video, method, method) with the methods sorted: the same for both placements."""
        first, second = sorted((self.left, self.right))
        return self.video, first, second


def all_comparisons(config: StudyConfig) -> list[tuple[str, str, str]]:
    methods = sorted(config.methods)
    return [(video, a, b) for video in config.videos for a, b in combinations(methods, 2)]


def gold_correct(kind: str, left: str, vote: int) -> bool | None:
    """Whether a gold answer is right (None for a regular comparison)."""
    if kind == GOLD_SAME:
        return vote == 3
    if kind == GOLD_DEGRADED:
        return vote in (4, 5) if left == DEGRADED else vote in (1, 2)
    return None


def plan_rater(
    config: StudyConfig, assigned: Iterable[Trial], rng: random.Random
) -> list[Trial]:
    """The trials of a new rater, in order, given every regular trial assigned so far.

    Empty when every comparison already has ``repeats`` assignments (the study is full).
    """
    shown: Counter[tuple[str, str, str]] = Counter()
    on_left: Counter[tuple[str, str]] = Counter()  # (video, method) on the left, per comparison
    for trial in assigned:
        if trial.kind == PAIR:
            shown[trial.comparison] += 1
            on_left[trial.comparison + (trial.left,)] += 1
    open_ = [c for c in all_comparisons(config) if shown[c] < config.repeats]
    rng.shuffle(open_)  # random order among equally-shown comparisons (the sort is stable)
    open_.sort(key=lambda c: shown[c])
    trials = []
    for video, a, b in open_[: config.per_rater]:
        a_left, b_left = on_left[(video, a, b, a)], on_left[(video, a, b, b)]
        a_goes_left = a_left < b_left or (a_left == b_left and rng.random() < 0.5)
        left, right = (a, b) if a_goes_left else (b, a)
        trials.append(Trial(video, left, right, PAIR))
    rng.shuffle(trials)
    if not trials or config.gold_rate <= 0:
        return trials
    gold_count = max(1, math.ceil(config.gold_rate * len(trials)))
    first_kind = rng.random() < 0.5
    for index in range(gold_count):
        video = rng.choice(config.videos)
        source = config.gold_source
        if (index % 2 == 0) == first_kind:
            gold = Trial(video, source, source, GOLD_SAME)
        else:
            pair = [source, DEGRADED]
            rng.shuffle(pair)
            gold = Trial(video, pair[0], pair[1], GOLD_DEGRADED)
        # Never first: the first trial is where a rater learns the page.
        trials.insert(rng.randint(1, len(trials)), gold)
    return trials
