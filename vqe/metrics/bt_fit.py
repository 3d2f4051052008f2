"""Bradley–Terry scores from pairwise human votes (P.910 style), with confidence intervals.

Input: a CSV with one row per vote and the columns ``left, right, vote`` plus optional
``factor`` (``colors`` / ``brightness`` / ``skintone``, any case; empty = not given) and
``rater``. ``vote`` is 1–5 from the left method's side: 1 strong preference for left, 2 weak,
3 no preference, 4 weak for right, 5 strong for right.

**Model.** Davidson's extension of Bradley–Terry to ties: method i has strength πᵢ and, for a
comparison of i with j,

    P(i preferred) = πᵢ / D,  P(no preference) = ν √(πᵢπⱼ) / D,  P(j preferred) = πⱼ / D,
    D = πᵢ + πⱼ + ν √(πᵢπⱼ).

**Votes → outcomes.** Every vote has weight 1. A strong vote (1 / 5) is a whole win; a weak vote
(2 / 4) sits halfway between a strong vote and no preference: half a win and half a tie; vote 3 is
a tie. The fit maximises the likelihood with these weighted outcomes (for weak votes a weighted
likelihood). When no vote is a tie or weak, ν = 0 and the model is plain Bradley–Terry.

**Fit.** Votes are first summed per pair of methods; Newton's method with backtracking on the
concave log-likelihood in (log π, log ν) then costs only a few iterations over the pairs, however
many votes there are. Scores are π normalised to geometric mean 1.

**Intervals** (95 % by default):

- ``bootstrap`` (default): votes are resampled with replacement within each pair (the pair
  design is kept), or whole raters are resampled (``resample="raters"``, which accounts for
  raters whose votes agree with each other); every resample is refitted (all at once, batched)
  and the percentile interval of each score is reported. Resamples in which the strengths do not
  exist (a method that never loses, see below) are left out and counted.
- ``information``: Wald intervals from the observed information, exp(log score ± z·se). They
  treat each weighted outcome as a draw of the model, so with weak votes they are a little wider
  than needed.

Strengths exist only when the methods cannot be split into two groups one of which never lost
to (or never tied with) the other; otherwise the analysis stops with a message naming the groups.

The command (``python -m vqe.metrics.bradley_terry``) is :mod:`vqe.metrics.bradley_terry`; the
interval plot is :mod:`vqe.metrics.bt_plot`. Both import this module, never the reverse.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components
from scipy.stats import norm

from vqe import schema

LEFT, RIGHT, VOTE = schema.VOTE_LEFT, schema.VOTE_RIGHT, schema.VOTE
FACTOR, RATER = schema.VOTE_FACTOR, schema.VOTE_RATER
REQUIRED_COLUMNS = schema.VOTE_REQUIRED_COLUMNS
OPTIONAL_COLUMNS = schema.VOTE_OPTIONAL_COLUMNS
FACTORS = schema.VOTE_FACTORS
VOTES = schema.VOTE_VALUES
#: Row v − 1: the weights of (left preferred, no preference, right preferred) for vote v.
VOTE_OUTCOMES = np.array(
    [[1.0, 0.0, 0.0], [0.5, 0.5, 0.0], [0.0, 1.0, 0.0], [0.0, 0.5, 0.5], [0.0, 0.0, 1.0]]
)
CI_METHODS = ("bootstrap", "information")
RESAMPLE_UNITS = ("votes", "raters")
_LIST_LIMIT = 10
_MAX_ITERATIONS = 100
_TOLERANCE = 1e-9


class VoteError(ValueError):
    """The votes cannot be analysed; the message names the rows, columns or methods at fault."""


# --------------------------------------------------------------------------- reading votes


def _lines(mask: pd.Series, table: pd.DataFrame, column: str) -> str:
    """'line N (value)' for the first offending rows; CSV line = data row + 2."""
    rows = table.index[mask.to_numpy()]
    shown = ", ".join(f"line {row + 2} ({table.at[row, column]!r})" for row in rows[:_LIST_LIMIT])
    more = len(rows) - _LIST_LIMIT
    return shown + (f" … and {more} more" if more > 0 else "")


def validate_votes(table: pd.DataFrame, source: str = "votes") -> pd.DataFrame:
    """Check a table of text cells and return it normalised.

    Returns the columns ``left, right`` (stripped text), ``vote`` (int), ``factor`` (lower case,
    '' when not given) and ``rater`` ('' when the column is absent). Raises :class:`VoteError`
    listing every malformed row.
    """
    missing = [name for name in REQUIRED_COLUMNS if name not in table.columns]
    unknown = [name for name in table.columns if name not in REQUIRED_COLUMNS + OPTIONAL_COLUMNS]
    if missing or unknown:
        raise VoteError(
            f"{source}: missing columns {missing}, unknown columns {unknown}; "
            f"the header must hold {', '.join(REQUIRED_COLUMNS)} and optionally "
            f"{', '.join(OPTIONAL_COLUMNS)}"
        )
    table = table.reset_index(drop=True).astype(str)
    problems: list[str] = []
    left, right = table[LEFT].str.strip(), table[RIGHT].str.strip()
    for name, names in ((LEFT, left), (RIGHT, right)):
        empty = names == ""
        if empty.any():
            problems.append(f"empty {name} at {_lines(empty, table, name)}")
    same = (left == right) & (left != "")
    if same.any():
        problems.append(f"a method compared with itself at {_lines(same, table, LEFT)}")
    numbers = pd.to_numeric(table[VOTE].str.strip(), errors="coerce")
    bad_vote = ~numbers.isin(VOTES)
    if bad_vote.any():
        problems.append(f"{VOTE} must be an integer 1–5 at {_lines(bad_vote, table, VOTE)}")
    factor = (
        table[FACTOR].str.strip().str.lower() if FACTOR in table else pd.Series("", table.index)
    )
    bad_factor = ~factor.isin(("", *FACTORS))
    if bad_factor.any():
        problems.append(
            f"{FACTOR} must be one of {FACTORS} or empty at {_lines(bad_factor, table, FACTOR)}"
        )
    rater = table[RATER].str.strip() if RATER in table else pd.Series("", table.index)
    if RATER in table and (rater == "").any():
        problems.append(f"empty {RATER} at {_lines(rater == '', table, RATER)}")
    if problems:
        raise VoteError(f"{source}: " + "; ".join(problems))
    if table.empty:
        raise VoteError(f"{source}: no votes")
    return pd.DataFrame(
        {LEFT: left, RIGHT: right, VOTE: numbers.astype(np.int64), FACTOR: factor, RATER: rater}
    )


def read_vote_table(path: str | Path) -> pd.DataFrame:
    """A CSV of votes as strings, unvalidated; VoteError naming the file when it is missing or
    unreadable (shared by :func:`read_votes` and the P.910 reader)."""
    path = Path(path)
    if not path.is_file():
        raise VoteError(f"{path}: file not found")
    try:
        return pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise VoteError(f"{path}: not a readable CSV ({error})") from error


def read_votes(path: str | Path) -> pd.DataFrame:
    """Read and validate a votes CSV (see :func:`validate_votes`)."""
    return validate_votes(read_vote_table(path), str(path))


# --------------------------------------------------------------------------- counting


@dataclass(frozen=True)
class PairCounts:
    """Votes summed per pair of methods, seen from the pair's first method (first < second)."""

    methods: tuple[str, ...]
    first: np.ndarray  # (K,) method index
    second: np.ndarray  # (K,) method index, > first
    counts: np.ndarray  # (K, 5) votes 1…5 from ``first``'s side (column 0: strong for first)

    @property
    def outcomes(self) -> np.ndarray:
        """(K, 3) weights of (first preferred, no preference, second preferred)."""
        return self.counts @ VOTE_OUTCOMES

    def votes_per_method(self) -> np.ndarray:
        per_pair = self.counts.sum(axis=1)
        return np.bincount(self.first, per_pair, len(self.methods)) + np.bincount(
            self.second, per_pair, len(self.methods)
        )


def _oriented(
    votes: pd.DataFrame, methods: Sequence[str]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Method indices (first < second) and the vote from first's side (mirrored: 6 − vote)."""
    index = pd.Index(methods)
    left = index.get_indexer(votes[LEFT])
    right = index.get_indexer(votes[RIGHT])
    vote = votes[VOTE].to_numpy()
    swapped = left > right
    first = np.where(swapped, right, left)
    second = np.where(swapped, left, right)
    return first, second, np.where(swapped, 6 - vote, vote)


def count_pairs(votes: pd.DataFrame) -> PairCounts:
    """Sum validated votes per pair of the methods they mention."""
    methods = tuple(sorted(pd.unique(pd.concat([votes[LEFT], votes[RIGHT]]))))
    first, second, vote = _oriented(votes, methods)
    pair_code = first * len(methods) + second
    codes, pair_index = np.unique(pair_code, return_inverse=True)
    cells = np.bincount(pair_index * len(VOTES) + vote - 1, minlength=len(codes) * len(VOTES))
    counts = cells.reshape(len(codes), len(VOTES)).astype(float)
    return PairCounts(methods, codes // len(methods), codes % len(methods), counts)


def rater_counts(votes: pd.DataFrame, pairs: PairCounts) -> tuple[list[str], np.ndarray]:
    """Per-rater counts aligned with ``pairs``: the raters and an (R, K, 5) array."""
    rater_index, raters = pd.factorize(votes[RATER], sort=True)
    first, second, vote = _oriented(votes, pairs.methods)
    pair_index = np.searchsorted(
        pairs.first * len(pairs.methods) + pairs.second, first * len(pairs.methods) + second
    )
    shape = (len(raters), len(pairs.first), len(VOTES))
    cells = np.ravel_multi_index((rater_index, pair_index, vote - 1), shape)
    counts = np.bincount(cells, minlength=int(np.prod(shape))).reshape(shape).astype(float)
    return list(raters), counts


# --------------------------------------------------------------------------- the model


def identifiability_problem(pairs: PairCounts, outcomes: np.ndarray | None = None) -> str | None:
    """Why the strengths (or the tie parameter) have no finite maximum, or None when they do."""
    outcomes = pairs.outcomes if outcomes is None else outcomes
    size = len(pairs.methods)
    # Edge a → b: a did at least as well as b in some vote. A finite maximum needs every method
    # to reach every other along such edges.
    forward = outcomes[:, 0] + outcomes[:, 1] > 0
    backward = outcomes[:, 2] + outcomes[:, 1] > 0
    sources = np.concatenate([pairs.first[forward], pairs.second[backward]])
    targets = np.concatenate([pairs.second[forward], pairs.first[backward]])
    graph = csr_matrix((np.ones(len(sources)), (sources, targets)), shape=(size, size))
    groups_found, labels = connected_components(graph, directed=True, connection="strong")
    if groups_found > 1:
        groups = sorted(
            [pairs.methods[i] for i in np.flatnonzero(labels == label)]
            for label in range(groups_found)
        )
        linked, _ = connected_components(graph, directed=True, connection="weak")
        if linked > 1:
            why = "no votes compare some of these groups"
        else:  # a group that no outsider ever did as well against: it won every comparison
            entered = set(labels[targets[labels[sources] != labels[targets]]])
            unbeaten = [
                [pairs.methods[i] for i in np.flatnonzero(labels == label)]
                for label in range(groups_found)
                if label not in entered
            ]
            why = f"{' and '.join(map(str, unbeaten))} never lost to (nor tied with) the others"
        return (
            f"the methods split into groups {groups} that cannot be put on one scale: {why}; "
            "collect more votes across them"
        )
    ties, total = outcomes[:, 1].sum(), outcomes.sum()
    if ties == total:
        return "every vote is 'no preference' (3): the strengths are equal and the tie rate is 1"
    return None


def _log_likelihood(
    theta: np.ndarray, log_tie: np.ndarray, pairs: PairCounts, outcomes: np.ndarray, with_ties: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Log-likelihood (B,) and the model's per-pair (B, K) P(first), P(second), P(tie)."""
    half_diff = (theta[:, pairs.first] - theta[:, pairs.second]) / 2.0  # (B, K)
    log_norm = np.logaddexp(half_diff, -half_diff)
    if with_ties:
        log_norm = np.logaddexp(log_norm, log_tie[:, None])
    wins, ties, losses = outcomes[..., 0], outcomes[..., 1], outcomes[..., 2]
    loglik = ((wins - losses) * half_diff - (wins + ties + losses) * log_norm).sum(axis=1)
    if with_ties:
        loglik = loglik + ties.sum(axis=1) * log_tie
    p_first = np.exp(half_diff - log_norm)
    p_second = np.exp(-half_diff - log_norm)
    p_tie = np.exp(log_tie[:, None] - log_norm) if with_ties else np.zeros_like(p_first)
    return loglik, p_first, p_second, p_tie


@dataclass(frozen=True)
class _BatchFit:
    log_strength: np.ndarray  # (B, m), centred to mean 0
    log_tie: np.ndarray  # (B,)
    information: np.ndarray  # (B, P, P) observed information, θ₀ fixed
    converged: np.ndarray  # (B,) bool
    iterations: int


def _fit_batch(pairs: PairCounts, outcomes: np.ndarray, with_ties: bool) -> _BatchFit:
    """Newton–Raphson with backtracking for B outcome tables (B, K, 3) at once.

    θ₀ is held at 0 during the fit (the likelihood only sees differences); the result is centred.
    """
    batch, size = outcomes.shape[0], len(pairs.methods)
    incidence = np.zeros((len(pairs.first), size))  # ∂d/∂θ per pair
    incidence[np.arange(len(pairs.first)), pairs.first] = 0.5
    incidence[np.arange(len(pairs.first)), pairs.second] = -0.5
    outer = (incidence[:, :, None] * incidence[:, None, :]).reshape(len(pairs.first), size * size)
    free = size - 1 + with_ties
    theta = np.zeros((batch, size))
    tie_share = outcomes[..., 1].sum(axis=1) / outcomes.sum(axis=(1, 2))
    log_tie = np.log(2 * tie_share / (1 - tie_share)) if with_ties else np.zeros(batch)
    wins, ties, losses = outcomes[..., 0], outcomes[..., 1], outcomes[..., 2]
    totals = wins + ties + losses
    active = np.ones(batch, dtype=bool)
    information = np.zeros((batch, free, free))
    iterations = 0
    while active.any() and iterations < _MAX_ITERATIONS:
        iterations += 1
        loglik, p_first, p_second, p_tie = _log_likelihood(
            theta, log_tie, pairs, outcomes, with_ties
        )
        margin = p_first - p_second
        grad_d = (wins - losses) - totals * margin
        curv_dd = totals * ((p_first + p_second) - margin**2)  # −∂²ℓ/∂d²
        hessian = np.zeros((batch, size + 1, size + 1))
        hessian[:, :size, :size] = (curv_dd @ outer).reshape(batch, size, size)
        gradient = np.zeros((batch, size + 1))
        gradient[:, :size] = grad_d @ incidence
        if with_ties:
            gradient[:, size] = ties.sum(axis=1) - (totals * p_tie).sum(axis=1)
            cross = -(totals * margin * p_tie) @ incidence  # −∂²ℓ/∂d∂λ through ∂d/∂θ
            hessian[:, :size, size] = hessian[:, size, :size] = cross
            hessian[:, size, size] = (totals * (p_tie - p_tie**2)).sum(axis=1)
        keep = np.r_[1:size, size] if with_ties else np.arange(1, size)
        information = hessian[:, keep][:, :, keep]
        step = np.linalg.solve(information[active], gradient[:, keep][active][..., None])[..., 0]
        full_step = np.zeros((batch, free))
        full_step[active] = step
        # Backtracking: halve each sample's step until its log-likelihood does not fall.
        scale = np.ones(batch)
        for _ in range(40):
            trial_theta = theta.copy()
            trial_theta[:, 1:] += scale[:, None] * full_step[:, : size - 1]
            trial_tie = log_tie + scale * full_step[:, -1] if with_ties else log_tie
            trial = _log_likelihood(trial_theta, trial_tie, pairs, outcomes, with_ties)[0]
            worse = trial < loglik - 1e-12 * np.abs(loglik)
            if not worse.any():
                break
            scale[worse] /= 2
        theta, log_tie = trial_theta, trial_tie
        active &= np.abs(scale[:, None] * full_step).max(axis=1) > _TOLERANCE
    return _BatchFit(
        theta - theta.mean(axis=1, keepdims=True), log_tie, information, ~active, iterations
    )


@dataclass(frozen=True)
class Fit:
    """Maximum-likelihood strengths of one set of votes."""

    methods: tuple[str, ...]
    log_strength: np.ndarray  # (m,), mean 0: scores are exp(log_strength), geometric mean 1
    tie: float  # Davidson's ν (0 when no vote was a tie or weak)
    covariance: np.ndarray  # (m, m) of log_strength, from the observed information
    iterations: int

    @property
    def scores(self) -> np.ndarray:
        return np.exp(self.log_strength)


def _has_ties(pairs: PairCounts) -> bool:
    return bool(pairs.outcomes[:, 1].sum() > 0)


def fit(pairs: PairCounts) -> Fit:
    """Fit strengths (and ν) by maximum likelihood; raises :class:`VoteError` when none exist."""
    problem = identifiability_problem(pairs)
    if problem:
        raise VoteError(problem)
    with_ties = _has_ties(pairs)
    result = _fit_batch(pairs, pairs.outcomes[None], with_ties)
    if not result.converged[0]:
        raise VoteError(f"the fit did not converge in {_MAX_ITERATIONS} Newton steps")
    size = len(pairs.methods)
    fixed_first = np.linalg.inv(result.information[0])[: size - 1, : size - 1]
    covariance = np.zeros((size, size))
    covariance[1:, 1:] = fixed_first
    centring = np.eye(size) - 1.0 / size  # θ − mean(θ)
    return Fit(
        pairs.methods,
        result.log_strength[0],
        float(np.exp(result.log_tie[0])) if with_ties else 0.0,
        centring @ covariance @ centring.T,
        result.iterations,
    )


def bootstrap_log_strengths(
    pairs: PairCounts,
    resampled_counts: np.ndarray,
) -> tuple[np.ndarray, int]:
    """Refit every (B, K, 5) resampled count table; returns the (B', m) log strengths of the
    resamples that have a finite maximum and the number left out."""
    outcomes = resampled_counts @ VOTE_OUTCOMES
    # Fast path: when every pair still has each side doing at least as well as the other once,
    # the comparison graph is strongly connected (the pairs are those of the identified data).
    both_ways = (
        (outcomes[..., 0] + outcomes[..., 1] > 0) & (outcomes[..., 2] + outcomes[..., 1] > 0)
    ).all(axis=1)
    usable = both_ways.copy()
    for index in np.flatnonzero(~both_ways):
        usable[index] = identifiability_problem(pairs, outcomes[index]) is None
    with_ties = _has_ties(pairs)
    if with_ties:  # a resample without any tie would send ν to 0 and log ν to −∞
        usable &= outcomes[..., 1].sum(axis=1) > 0
    if not usable.any():
        return np.empty((0, len(pairs.methods))), len(outcomes)
    result = _fit_batch(pairs, outcomes[usable], with_ties)
    return result.log_strength[result.converged], int(len(outcomes) - result.converged.sum())


def resample_votes(pairs: PairCounts, n_resamples: int, rng: np.random.Generator) -> np.ndarray:
    """(B, K, 5) counts: each pair's votes drawn with replacement from its own votes."""
    per_pair = pairs.counts.sum(axis=1)
    return rng.multinomial(
        per_pair.astype(np.int64),
        pairs.counts / per_pair[:, None],
        size=(n_resamples, len(per_pair)),
    ).astype(float)


def resample_raters(
    per_rater: np.ndarray, n_resamples: int, rng: np.random.Generator
) -> np.ndarray:
    """(B, K, 5) counts: raters drawn with replacement, each bringing all their votes."""
    raters = per_rater.shape[0]
    weights = rng.multinomial(raters, np.full(raters, 1.0 / raters), size=n_resamples).astype(float)
    return (weights @ per_rater.reshape(raters, -1)).reshape(n_resamples, *per_rater.shape[1:])


# --------------------------------------------------------------------------- rankings


@dataclass(frozen=True)
class MethodScore:
    method: str
    score: float  # strength, geometric mean 1 over the methods of the fit
    ci_low: float
    ci_high: float
    votes: int  # votes that compared this method


@dataclass(frozen=True)
class Ranking:
    """Scores with intervals from one set of votes, best first."""

    scores: tuple[MethodScore, ...]
    tie: float
    interval: str  # how the intervals were made
    failed_resamples: int = 0

    def as_frame(self) -> pd.DataFrame:
        return pd.DataFrame([vars(score) for score in self.scores])


def rank(
    pairs: PairCounts,
    ci: str = "bootstrap",
    n_bootstrap: int = 1000,
    level: float = 0.95,
    rng: np.random.Generator | None = None,
    per_rater: np.ndarray | None = None,
) -> Ranking:
    """Fit and attach ``level`` intervals.

    ``per_rater`` ((R, K, 5) counts from :func:`rater_counts`) resamples raters instead of votes.
    """
    if ci not in CI_METHODS:
        raise ValueError(f"ci must be one of {CI_METHODS}, got {ci!r}")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    point = fit(pairs)
    failed = 0
    if ci == "information":
        spread = norm.ppf(0.5 + level / 2) * np.sqrt(np.diag(point.covariance))
        low, high = np.exp(point.log_strength - spread), np.exp(point.log_strength + spread)
        interval = f"{level:.0%} observed information"
    else:
        if n_bootstrap < 2:
            raise ValueError(f"n_bootstrap must be ≥ 2, got {n_bootstrap}")
        rng = rng if rng is not None else np.random.default_rng(0)
        resampled = (
            resample_votes(pairs, n_bootstrap, rng)
            if per_rater is None
            else resample_raters(per_rater, n_bootstrap, rng)
        )
        samples, failed = bootstrap_log_strengths(pairs, resampled)
        if len(samples) < 2:
            raise VoteError(
                f"only {len(samples)} of {n_bootstrap} bootstrap resamples could be fitted"
            )
        tail = 50 * (1 - level)
        low, high = np.exp(np.percentile(samples, [tail, 100 - tail], axis=0))
        unit = "votes" if per_rater is None else "raters"
        interval = f"{level:.0%} bootstrap over {unit} ({n_bootstrap})"
    votes = pairs.votes_per_method()
    scores = [
        MethodScore(name, float(point.scores[i]), float(low[i]), float(high[i]), int(votes[i]))
        for i, name in enumerate(point.methods)
    ]
    scores.sort(key=lambda item: item.score, reverse=True)
    return Ranking(tuple(scores), point.tie, interval, failed)


def pair_summary(pairs: PairCounts, level: float = 0.95) -> pd.DataFrame:
    """Per pair: vote count, mean vote from the first method's side (1 = strong preference for
    it) with a normal-approximation interval, and the shares preferring each side."""
    n = pairs.counts.sum(axis=1)
    values = np.arange(1, 6)
    mean = pairs.counts @ values / n
    variance = (pairs.counts @ values**2 / n - mean**2) * n / np.maximum(n - 1, 1)
    half = norm.ppf(0.5 + level / 2) * np.sqrt(np.maximum(variance, 0) / n)
    half[n < 2] = np.nan
    return pd.DataFrame(
        {
            "first": [pairs.methods[i] for i in pairs.first],
            "second": [pairs.methods[i] for i in pairs.second],
            "votes": n.astype(int),
            "mean_vote": mean,
            "ci_low": mean - half,
            "ci_high": mean + half,
            "prefer_first": pairs.counts[:, :2].sum(axis=1) / n,
            "no_preference": pairs.counts[:, 2] / n,
            "prefer_second": pairs.counts[:, 3:].sum(axis=1) / n,
        }
    )


@dataclass(frozen=True)
class Analysis:
    overall: Ranking
    factors: dict[str, Ranking | str]  # factor → ranking, or why it could not be fitted
    pairs: pd.DataFrame
    raters: int  # distinct raters (0 when the votes name none)
    seconds: float  # time spent fitting (all fits and resamples)
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        """Each method → {score, ci_low, ci_high, votes, factors: {factor: {...}}}."""
        report = {}
        for item in self.overall.scores:
            entry = {
                "score": item.score,
                "ci_low": item.ci_low,
                "ci_high": item.ci_high,
                "votes": item.votes,
                "factors": {},
            }
            for factor, ranking in self.factors.items():
                for other in ranking.scores if isinstance(ranking, Ranking) else ():
                    if other.method == item.method:
                        entry["factors"][factor] = {
                            "score": other.score,
                            "ci_low": other.ci_low,
                            "ci_high": other.ci_high,
                        }
            report[item.method] = entry
        return report


def analyse_votes(
    votes: pd.DataFrame,
    ci: str = "bootstrap",
    n_bootstrap: int = 1000,
    level: float = 0.95,
    resample: str = "votes",
    seed: int = 0,
) -> Analysis:
    """Overall and per-factor rankings and the pair summary of validated votes (the output of
    :func:`read_votes` or :func:`validate_votes`)."""
    if FACTOR not in votes or RATER not in votes:
        raise ValueError("analyse_votes needs votes passed through validate_votes or read_votes")
    if resample not in RESAMPLE_UNITS:
        raise ValueError(f"resample must be one of {RESAMPLE_UNITS}, got {resample!r}")
    rated = bool((votes[RATER] != "").any())
    if resample == "raters" and not rated:
        raise VoteError("resampling raters needs a non-empty 'rater' column")
    rng = np.random.default_rng(seed)
    start = time.perf_counter()

    def ranking_of(subset: pd.DataFrame, pairs: PairCounts) -> Ranking:
        per_rater = (
            rater_counts(subset, pairs)[1] if resample == "raters" and ci == "bootstrap" else None
        )
        return rank(pairs, ci, n_bootstrap, level, rng, per_rater)

    all_pairs = count_pairs(votes)
    overall = ranking_of(votes, all_pairs)
    factors: dict[str, Ranking | str] = {}
    notes = []
    for factor in FACTORS:
        subset = votes[votes[FACTOR] == factor]
        if subset.empty:
            continue
        try:
            factors[factor] = ranking_of(subset, count_pairs(subset))
        except VoteError as error:
            factors[factor] = str(error)
            notes.append(f"factor {factor}: not fitted: {error}")
    without = int((votes[FACTOR] == "").sum())
    if factors and without:
        notes.append(f"{without} votes name no factor; they count only in the overall ranking")
    for name, ranking in {"overall": overall, **factors}.items():
        if isinstance(ranking, Ranking) and ranking.failed_resamples:
            notes.append(
                f"{name}: {ranking.failed_resamples} bootstrap resamples had no finite "
                "maximum and were left out"
            )
    seconds = time.perf_counter() - start
    raters = votes[RATER].nunique() if rated else 0
    return Analysis(overall, factors, pair_summary(all_pairs, level), raters, seconds, notes)


# --------------------------------------------------------------------------- simulation


def simulate_votes(
    strengths: Mapping[str, float],
    votes_per_pair: int,
    tie: float = 0.5,
    weak_share: float = 0.5,
    raters: int = 0,
    rng: np.random.Generator | None = None,
) -> pd.DataFrame:
    """Votes drawn from the model of this module, for tests and benchmarks.

    Each pair is compared ``votes_per_pair`` times with random left/right placement. Outcomes
    follow Davidson's model; ``weak_share`` of the smaller of P(preferred) and P(tie) is moved to
    weak votes in a way that keeps the expected weighted outcomes of the model unchanged.
    """
    rng = rng if rng is not None else np.random.default_rng(0)
    names = list(strengths)
    frames = []
    for i, first in enumerate(names):
        for second in names[i + 1 :]:
            a, b = strengths[first], strengths[second]
            total = a + b + tie * np.sqrt(a * b)
            p_win, p_tie, p_loss = a / total, tie * np.sqrt(a * b) / total, b / total
            weak_win, weak_loss = weak_share * min(p_win, p_tie), weak_share * min(p_loss, p_tie)
            probabilities = [
                p_win - weak_win / 2,
                weak_win,
                p_tie - (weak_win + weak_loss) / 2,
                weak_loss,
                p_loss - weak_loss / 2,
            ]
            vote = rng.choice(VOTES, size=votes_per_pair, p=probabilities)
            swap = rng.random(votes_per_pair) < 0.5
            frames.append(
                pd.DataFrame(
                    {
                        LEFT: np.where(swap, second, first),
                        RIGHT: np.where(swap, first, second),
                        VOTE: np.where(swap, 6 - vote, vote),
                    }
                )
            )
    votes = pd.concat(frames, ignore_index=True)
    if raters:
        votes[RATER] = [f"r{index}" for index in rng.integers(0, raters, len(votes))]
    return votes


# --------------------------------------------------------------------------- command line


def format_analysis(analysis: Analysis) -> str:
    float_format = "{:.4f}".format
    parts = [
        f"overall ({analysis.overall.interval}; tie parameter ν = {analysis.overall.tie:.4f})",
        analysis.overall.as_frame().to_string(index=False, float_format=float_format),
    ]
    for factor, ranking in analysis.factors.items():
        if isinstance(ranking, Ranking):
            parts += [
                f"\nfactor {factor} ({ranking.interval})",
                ranking.as_frame().to_string(index=False, float_format=float_format),
            ]
    parts += [
        "\npairs (mean vote from the first method's side; 1 = strong preference for it)",
        analysis.pairs.to_string(index=False, float_format=float_format),
    ]
    if analysis.raters:
        parts.append(f"\n{analysis.raters} raters")
    parts += [f"note: {note}" for note in analysis.notes]
    parts.append(f"fit time {analysis.seconds:.2f} s")
    return "\n".join(parts)
