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

**Prior (separation).** With votes that all agree (a small pilot with a clear winner) a
method that never loses has no finite maximum-likelihood strength. So the analysis of votes
(:func:`analyse_votes`, the command, the study report) maximises the posterior under a weak prior
of *virtual votes*: every method gets ``s`` virtual wins and ``s`` virtual losses against a
virtual method of average strength (π = 1), and ν gets ``s`` virtual ties and ``s`` virtual
preferences between two average methods. Its log-density is
``s·Σᵢ log[σ(θᵢ)σ(−θᵢ)] + s·log[ν/(2+ν) · 2/(2+ν)]`` with θ = log π. Default ``s = 1``
(:data:`DEFAULT_PRIOR_STRENGTH`): each log strength is then standard-logistic a priori (sd 1.8;
95 % of the mass between 1/39 and 39 times the average) and ν's mode is 2 (half the comparisons
of two equal methods ties). Why this prior:

- it is counted in the study's own currency: two virtual votes per method, to weigh against the
  real ones, so with hundreds of votes per method the estimates are the ML ones to well within
  their intervals, while a unanimous pilot gets finite, correctly ordered scores;
- it is the fictitious-games prior (see Whelan, *Prior distributions for the Bradley–Terry model
  of paired comparisons*, 2017): log-concave, so the posterior has one maximum and Newton's
  method stays safe, with exponential rather than Gaussian tails, so strong evidence is shrunk
  less than by a normal prior of the same curvature;
- it pins every method, so a comparison graph that falls apart (groups never compared) still
  gets finite scores; the analysis then says in a note that they lean on the prior.

``s = 0`` is plain maximum likelihood (the default of the low-level :func:`fit` and :func:`rank`,
which the VQA tournament uses for its exact fractional wins): then strengths exist only when the
methods cannot be split into two groups one of which never lost to (or never tied with) the
other, and the fit stops with a message naming the groups.

**Fit.** Votes are first summed per pair of methods; Newton's method with backtracking on the
concave log-posterior in (log π, log ν) then costs only a few iterations over the pairs, however
many votes there are. Scores are π normalised to geometric mean 1.

**Intervals** (95 % by default):

- ``bootstrap`` (default): votes are resampled with replacement within each pair (the pair
  design is kept), or whole raters are resampled (``resample="raters"``, which accounts for
  raters whose votes agree with each other); every resample is refitted under the same prior
  (all at once, batched) and the percentile interval of each score is reported. Resamples that
  cannot be fitted (without a prior: a method that never loses) are left out and counted. A pair
  in which one side never got a preference (not even a weak one) is the same in every resample,
  and groups of methods never compared with each other are placed by the prior alone, so the
  bootstrap cannot see that uncertainty; then each interval is widened to hold the
  ``information`` interval too, and the interval's description says so.
- ``information``: Wald intervals from the observed information of the log-posterior (its
  curvature; with ``s = 0`` the likelihood's), exp(log score ± z·se). They treat each weighted
  outcome as a draw of the model, so with weak votes they are a little wider than needed.

The command (``vqe bradley-terry``) is :mod:`vqe.cli.bradley_terry`; the interval plot is
:mod:`vqe.preference.bradley_terry_plot`. Both import this module, never the reverse.
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
from scipy.special import expit
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
#: Virtual wins and losses per method against an average one (and virtual ties and preferences
#: for ν) in the analysis of votes; 0 is plain maximum likelihood. See the module docstring.
DEFAULT_PRIOR_STRENGTH = 1.0
PRIOR_KIND = "virtual votes against an average method"
_LOG_2 = float(np.log(2.0))


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


def check_prior_strength(strength: float) -> float:
    """``strength`` as a float; ValueError unless it is a finite number ≥ 0."""
    value = float(strength)
    if not np.isfinite(value) or value < 0:
        raise ValueError(
            f"prior strength must be a finite number ≥ 0 (virtual wins and losses per method; "
            f"0 = plain maximum likelihood), got {strength!r}"
        )
    return value


def prior_text(strength: float) -> str:
    """The prior in a few words, for interval descriptions, captions and notes."""
    if strength == 0:
        return "no prior (maximum likelihood)"
    return f"prior {strength:g} virtual win + loss per method vs. an average one"


def prior_json(strength: float) -> dict:
    """The prior as the JSON outputs state it."""
    return {"kind": PRIOR_KIND if strength > 0 else "none", "strength": strength}


def _log_prior(theta: np.ndarray, log_tie: np.ndarray, prior: float, with_ties: bool) -> np.ndarray:
    """(B,) log-density of the virtual votes: each θᵢ one win and one loss against θ = 0 (times
    ``prior``), log ν one tie and one preference between two equal methods (times ``prior``)."""
    value = -2.0 * prior * np.logaddexp(theta / 2, -theta / 2).sum(axis=1)
    if with_ties:
        value = value + prior * (log_tie + _LOG_2 - 2.0 * np.logaddexp(_LOG_2, log_tie))
    return value


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
    information: np.ndarray  # (B, P, P) observed information of the free parameters
    converged: np.ndarray  # (B,) bool
    iterations: int


def _fit_batch(
    pairs: PairCounts, outcomes: np.ndarray, with_ties: bool, prior: float = 0.0
) -> _BatchFit:
    """Newton–Raphson with backtracking on the log-posterior of B outcome tables (B, K, 3) at once.

    Without a prior the likelihood only sees differences, so θ₀ is held at 0 and the free
    parameters are θ₁…θₘ₋₁ (and log ν); the prior pins every θ, so then all m are free. The
    result is centred either way.
    """
    batch, size = outcomes.shape[0], len(pairs.methods)
    incidence = np.zeros((len(pairs.first), size))  # ∂d/∂θ per pair
    incidence[np.arange(len(pairs.first)), pairs.first] = 0.5
    incidence[np.arange(len(pairs.first)), pairs.second] = -0.5
    outer = (incidence[:, :, None] * incidence[:, None, :]).reshape(len(pairs.first), size * size)
    first_free = 0 if prior > 0 else 1
    keep = np.r_[first_free:size, size] if with_ties else np.arange(first_free, size)
    theta = np.zeros((batch, size))
    wins, ties, losses = outcomes[..., 0], outcomes[..., 1], outcomes[..., 2]
    # Start ν where equal strengths would give the tie share (the virtual votes keep it in (0, 1)).
    tie_share = (ties.sum(axis=1) + prior) / (outcomes.sum(axis=(1, 2)) + 2 * prior)
    log_tie = np.log(2 * tie_share / (1 - tie_share)) if with_ties else np.zeros(batch)
    totals = wins + ties + losses
    active = np.ones(batch, dtype=bool)
    information = np.zeros((batch, len(keep), len(keep)))
    iterations = 0
    diagonal = np.arange(size)
    while active.any() and iterations < _MAX_ITERATIONS:
        iterations += 1
        loglik, p_first, p_second, p_tie = _log_likelihood(
            theta, log_tie, pairs, outcomes, with_ties
        )
        objective = loglik + _log_prior(theta, log_tie, prior, with_ties)
        margin = p_first - p_second
        grad_d = (wins - losses) - totals * margin
        curv_dd = totals * ((p_first + p_second) - margin**2)  # −∂²ℓ/∂d²
        hessian = np.zeros((batch, size + 1, size + 1))
        hessian[:, :size, :size] = (curv_dd @ outer).reshape(batch, size, size)
        gradient = np.zeros((batch, size + 1))
        gradient[:, :size] = grad_d @ incidence
        # The virtual win and loss of each θ: gradient −tanh(θ/2), curvature (1 − tanh²)/2.
        slope = np.tanh(theta / 2)
        gradient[:, :size] -= prior * slope
        hessian[:, diagonal, diagonal] += prior * (1 - slope**2) / 2
        if with_ties:
            gradient[:, size] = ties.sum(axis=1) - (totals * p_tie).sum(axis=1)
            cross = -(totals * margin * p_tie) @ incidence  # −∂²ℓ/∂d∂λ through ∂d/∂θ
            hessian[:, :size, size] = hessian[:, size, :size] = cross
            hessian[:, size, size] = (totals * (p_tie - p_tie**2)).sum(axis=1)
            # The virtual tie and preference of ν: q = P(tie) of two equal methods.
            share = expit(log_tie - _LOG_2)
            gradient[:, size] += prior * (1 - 2 * share)
            hessian[:, size, size] += 2 * prior * share * (1 - share)
        information = hessian[:, keep][:, :, keep]
        step = np.linalg.solve(information[active], gradient[:, keep][active][..., None])[..., 0]
        full_step = np.zeros((batch, len(keep)))
        full_step[active] = step
        # Backtracking: halve each sample's step until its log-posterior does not fall.
        scale = np.ones(batch)
        for _ in range(40):
            trial_theta = theta.copy()
            trial_theta[:, first_free:] += scale[:, None] * full_step[:, : size - first_free]
            trial_tie = log_tie + scale * full_step[:, -1] if with_ties else log_tie
            trial = _log_likelihood(trial_theta, trial_tie, pairs, outcomes, with_ties)[0]
            trial = trial + _log_prior(trial_theta, trial_tie, prior, with_ties)
            worse = trial < objective - 1e-12 * np.abs(objective)
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
    """Strengths of one set of votes: maximum likelihood, or the posterior mode under the prior."""

    methods: tuple[str, ...]
    log_strength: np.ndarray  # (m,), mean 0: scores are exp(log_strength), geometric mean 1
    tie: float  # Davidson's ν (0 when no vote was a tie or weak)
    covariance: np.ndarray  # (m, m) of log_strength, from the observed information
    iterations: int
    prior_strength: float = 0.0  # virtual wins and losses per method (0: maximum likelihood)

    @property
    def scores(self) -> np.ndarray:
        return np.exp(self.log_strength)


def _has_ties(pairs: PairCounts) -> bool:
    return bool(pairs.outcomes[:, 1].sum() > 0)


def fit(pairs: PairCounts, prior_strength: float = 0.0) -> Fit:
    """Fit strengths (and ν): the posterior mode under ``prior_strength`` virtual votes per method
    (module docstring), which always exists, or with 0 (the default here) maximum likelihood,
    which raises :class:`VoteError` naming the groups of methods when it does not exist."""
    prior = check_prior_strength(prior_strength)
    if prior == 0:
        problem = identifiability_problem(pairs)
        if problem:
            raise VoteError(problem)
    with_ties = _has_ties(pairs)
    result = _fit_batch(pairs, pairs.outcomes[None], with_ties, prior)
    if not result.converged[0]:
        hint = "set a prior strength > 0" if prior == 0 else "please report the votes as a bug"
        raise VoteError(f"the fit did not converge in {_MAX_ITERATIONS} Newton steps; {hint}")
    size = len(pairs.methods)
    inverse = np.linalg.inv(result.information[0])
    covariance = np.zeros((size, size))
    if prior > 0:
        covariance = inverse[:size, :size]
    else:  # θ₀ was held fixed: its row and column stay 0 before centring
        covariance[1:, 1:] = inverse[: size - 1, : size - 1]
    centring = np.eye(size) - 1.0 / size  # θ − mean(θ)
    return Fit(
        pairs.methods,
        result.log_strength[0],
        float(np.exp(result.log_tie[0])) if with_ties else 0.0,
        centring @ covariance @ centring.T,
        result.iterations,
        prior,
    )


def bootstrap_log_strengths(
    pairs: PairCounts, resampled_counts: np.ndarray, prior_strength: float = 0.0
) -> tuple[np.ndarray, int]:
    """Refit every (B, K, 5) resampled count table under the prior; returns the (B', m) log
    strengths of the resamples that could be fitted and the number left out (without a prior,
    those with no finite maximum; any that do not converge)."""
    prior = check_prior_strength(prior_strength)
    outcomes = resampled_counts @ VOTE_OUTCOMES
    with_ties = _has_ties(pairs)
    if prior > 0:  # every resample has a posterior mode
        result = _fit_batch(pairs, outcomes, with_ties, prior)
        return result.log_strength[result.converged], int(len(outcomes) - result.converged.sum())
    # Fast path: when every pair still has each side doing at least as well as the other once,
    # the comparison graph is strongly connected (the pairs are those of the identified data).
    both_ways = (
        (outcomes[..., 0] + outcomes[..., 1] > 0) & (outcomes[..., 2] + outcomes[..., 1] > 0)
    ).all(axis=1)
    usable = both_ways.copy()
    for index in np.flatnonzero(~both_ways):
        usable[index] = identifiability_problem(pairs, outcomes[index]) is None
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
    interval: str  # how the intervals were made, and the prior
    failed_resamples: int = 0
    prior_strength: float = 0.0  # virtual wins and losses per method (0: maximum likelihood)

    def as_frame(self) -> pd.DataFrame:
        return pd.DataFrame([vars(score) for score in self.scores])


def one_sided_pairs(pairs: PairCounts) -> bool:
    """Whether some pair has one side that never got a preference (not even a weak one)."""
    outcomes = pairs.outcomes
    return bool(((outcomes[:, 0] == 0) | (outcomes[:, 2] == 0)).any())


def bootstrap_blind_spot(pairs: PairCounts) -> str | None:
    """What the bootstrap cannot see, or None: a one-sided pair is the same in every resample,
    and groups of methods never compared with each other are placed by the prior alone."""
    if one_sided_pairs(pairs):
        return "one-sided pairs"
    size = len(pairs.methods)
    graph = csr_matrix((np.ones(len(pairs.first)), (pairs.first, pairs.second)), (size, size))
    if connected_components(graph, directed=False)[0] > 1:
        return "groups never compared"
    return None


def rank(
    pairs: PairCounts,
    ci: str = "bootstrap",
    n_bootstrap: int = 1000,
    level: float = 0.95,
    rng: np.random.Generator | None = None,
    per_rater: np.ndarray | None = None,
    prior_strength: float = 0.0,
) -> Ranking:
    """Fit and attach ``level`` intervals, under ``prior_strength`` virtual votes per method
    (0, the default here: maximum likelihood; :func:`analyse_votes` defaults to the prior).

    ``per_rater`` ((R, K, 5) counts from :func:`rater_counts`) resamples raters instead of votes.
    """
    if ci not in CI_METHODS:
        raise ValueError(f"ci must be one of {CI_METHODS}, got {ci!r}")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    point = fit(pairs, prior_strength)
    prior = point.prior_strength
    failed = 0
    spread = norm.ppf(0.5 + level / 2) * np.sqrt(np.diag(point.covariance))
    curvature = "posterior curvature" if prior > 0 else "observed information"
    if ci == "information":
        low, high = np.exp(point.log_strength - spread), np.exp(point.log_strength + spread)
        interval = f"{level:.0%} {curvature}"
    else:
        if n_bootstrap < 2:
            raise ValueError(f"n_bootstrap must be ≥ 2, got {n_bootstrap}")
        rng = rng if rng is not None else np.random.default_rng(0)
        resampled = (
            resample_votes(pairs, n_bootstrap, rng)
            if per_rater is None
            else resample_raters(per_rater, n_bootstrap, rng)
        )
        samples, failed = bootstrap_log_strengths(pairs, resampled, prior)
        if len(samples) < 2:
            raise VoteError(
                f"only {len(samples)} of {n_bootstrap} bootstrap resamples could be fitted"
            )
        tail = 50 * (1 - level)
        low, high = np.exp(np.percentile(samples, [tail, 100 - tail], axis=0))
        unit = "votes" if per_rater is None else "raters"
        interval = f"{level:.0%} bootstrap over {unit} ({n_bootstrap})"
        blind_spot = bootstrap_blind_spot(pairs)
        if blind_spot:
            low = np.minimum(low, np.exp(point.log_strength - spread))
            high = np.maximum(high, np.exp(point.log_strength + spread))
            interval += f" widened to the {curvature} ({blind_spot})"
    if prior > 0:
        interval += f", {prior_text(prior)}"
    votes = pairs.votes_per_method()
    scores = [
        MethodScore(name, float(point.scores[i]), float(low[i]), float(high[i]), int(votes[i]))
        for i, name in enumerate(point.methods)
    ]
    scores.sort(key=lambda item: item.score, reverse=True)
    return Ranking(tuple(scores), point.tie, interval, failed, prior)


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
        """Each method → {score, ci_low, ci_high, votes, prior: {kind, strength}, factors:
        {factor: {...}}}; the prior sits in every entry so the top level stays method names."""
        report = {}
        for item in self.overall.scores:
            entry = {
                "score": item.score,
                "ci_low": item.ci_low,
                "ci_high": item.ci_high,
                "votes": item.votes,
                "prior": prior_json(self.overall.prior_strength),
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
    prior_strength: float = DEFAULT_PRIOR_STRENGTH,
) -> Analysis:
    """Overall and per-factor rankings and the pair summary of validated votes (the output of
    :func:`read_votes` or :func:`validate_votes`), under ``prior_strength`` virtual votes per
    method (0: maximum likelihood, which fails when a method never loses)."""
    if FACTOR not in votes or RATER not in votes:
        raise ValueError("analyse_votes needs votes passed through validate_votes or read_votes")
    prior = check_prior_strength(prior_strength)
    if resample not in RESAMPLE_UNITS:
        raise ValueError(f"resample must be one of {RESAMPLE_UNITS}, got {resample!r}")
    rated = bool((votes[RATER] != "").any())
    if resample == "raters" and not rated:
        raise VoteError("resampling raters needs a non-empty 'rater' column")
    rng = np.random.default_rng(seed)
    start = time.perf_counter()

    notes: list[str] = []

    def ranking_of(name: str, subset: pd.DataFrame, pairs: PairCounts) -> Ranking:
        per_rater = (
            rater_counts(subset, pairs)[1] if resample == "raters" and ci == "bootstrap" else None
        )
        ranking = rank(pairs, ci, n_bootstrap, level, rng, per_rater, prior)
        problem = identifiability_problem(pairs) if prior > 0 else None
        if problem:  # say when the finite scores rest on the prior
            notes.append(
                f"{name}: without the prior there is no maximum-likelihood fit ({problem}); the "
                "prior keeps the scores finite, so their sizes and intervals lean on it"
            )
        return ranking

    all_pairs = count_pairs(votes)
    overall = ranking_of("overall", votes, all_pairs)
    factors: dict[str, Ranking | str] = {}
    for factor in FACTORS:
        subset = votes[votes[FACTOR] == factor]
        if subset.empty:
            continue
        try:
            factors[factor] = ranking_of(f"factor {factor}", subset, count_pairs(subset))
        except VoteError as error:
            factors[factor] = str(error)
            notes.append(f"factor {factor}: not fitted: {error}")
    without = int((votes[FACTOR] == "").sum())
    if factors and without:
        notes.append(f"{without} votes name no factor; they count only in the overall ranking")
    for name, ranking in {"overall": overall, **factors}.items():
        if isinstance(ranking, Ranking) and ranking.failed_resamples:
            why = "did not converge" if prior > 0 else "had no finite maximum"
            notes.append(
                f"{name}: {ranking.failed_resamples} bootstrap resamples {why} and were left out"
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
    overall = analysis.overall
    plain = f", {prior_text(0)}" if overall.prior_strength == 0 else ""
    parts = [
        f"overall ({overall.interval}{plain}; tie parameter ν = {overall.tie:.4f})",
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
