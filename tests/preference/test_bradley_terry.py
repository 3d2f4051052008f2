"""Bradley–Terry (Davidson) analysis of pairwise votes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from scipy.stats import spearmanr

from vqe.cli.bradley_terry import main
from vqe.preference.bradley_terry import (
    DEFAULT_PRIOR_STRENGTH,
    VoteError,
    analyse_votes,
    count_pairs,
    fit,
    pair_summary,
    rank,
    read_votes,
    simulate_votes,
    validate_votes,
)

TRUTH = {"lut": 3.0, "unet": 1.6, "baseline": 1.0, "input": 0.45, "blurry": 0.3}


def normalised(strengths: dict[str, float]) -> dict[str, float]:
    geometric_mean = np.exp(np.mean(np.log(list(strengths.values()))))
    return {name: value / geometric_mean for name, value in strengths.items()}


def votes_frame(rows: list[tuple[str, str, int]]) -> pd.DataFrame:
    return validate_votes(pd.DataFrame(rows, columns=["left", "right", "vote"]))


def test_recovers_known_strengths_within_intervals() -> None:
    votes = validate_votes(simulate_votes(TRUTH, 400, tie=0.5, rng=np.random.default_rng(1)))
    # 99 % intervals: with five methods, all five 95 % intervals hold the truth only ~77 % of the
    # time; coverage itself is checked separately below.
    ranking = rank(count_pairs(votes), n_bootstrap=500, level=0.99, rng=np.random.default_rng(2))
    expected = normalised(TRUTH)
    estimated = {item.method: item for item in ranking.scores}
    correlation = spearmanr([expected[m] for m in TRUTH], [estimated[m].score for m in TRUTH])[0]
    assert correlation == pytest.approx(1.0)
    for method, item in estimated.items():
        assert item.ci_low <= expected[method] <= item.ci_high, method
        assert item.ci_low < item.score < item.ci_high
    assert np.prod([item.score for item in ranking.scores]) == pytest.approx(1.0)
    assert ranking.tie == pytest.approx(0.5, rel=0.15)


@pytest.mark.parametrize(
    ("interval", "datasets", "resamples"), [("information", 80, 2), ("bootstrap", 40, 200)]
)
def test_interval_coverage_is_near_nominal(interval: str, datasets: int, resamples: int) -> None:
    rng = np.random.default_rng(3)
    truth = {"a": 0.5, "b": 1.0, "c": 1.5, "d": 3.0}
    expected = normalised(truth)
    hits = []
    for _ in range(datasets):
        votes = validate_votes(simulate_votes(truth, 60, tie=0.6, rng=rng))
        ranking = rank(count_pairs(votes), interval, n_bootstrap=resamples, rng=rng)
        hits += [item.ci_low <= expected[item.method] <= item.ci_high for item in ranking.scores]
    assert 0.85 <= np.mean(hits) <= 0.995


def test_two_methods_match_the_closed_form_of_the_vote_mapping() -> None:
    # A against B; some votes with B on the left (mirrored: vote v for B is 6 − v for A).
    rows = [("A", "B", 1)] * 6 + [("A", "B", 2)] * 4 + [("B", "A", 5)] * 2 + [("A", "B", 3)] * 3
    rows += [("B", "A", 2)] * 2 + [("A", "B", 5)] * 1
    result = fit(count_pairs(votes_frame(rows)))
    # From A's side: strong wins 8, weak wins 4, ties 3, weak losses 2, strong losses 1.
    wins, ties, losses = 8 + 4 / 2, 4 / 2 + 3 + 2 / 2, 2 / 2 + 1
    # Two methods saturate Davidson's model: π_A/π_B = W/L and ν = T/√(W·L).
    assert result.scores[0] / result.scores[1] == pytest.approx(wins / losses, rel=1e-8)
    assert result.tie == pytest.approx(ties / np.sqrt(wins * losses), rel=1e-8)


def test_without_ties_it_is_plain_bradley_terry() -> None:
    rows = [("A", "B", 1)] * 30 + [("A", "B", 5)] * 10
    result = fit(count_pairs(votes_frame(rows)))
    assert result.tie == 0.0
    assert result.scores[0] == pytest.approx(np.sqrt(3.0), rel=1e-8)


def test_rater_bootstrap_widens_intervals_for_clustered_votes() -> None:
    base = validate_votes(simulate_votes(TRUTH, 40, rng=np.random.default_rng(4)))
    # Every vote repeated 10 times by one rater: 10× the votes but no new information.
    copies = base.loc[base.index.repeat(10)].reset_index(drop=True)
    copies["rater"] = [f"rater{index // 10}" for index in range(len(copies))]
    by_votes = analyse_votes(copies, n_bootstrap=300, resample="votes").overall
    by_raters = analyse_votes(copies, n_bootstrap=300, resample="raters").overall
    width = {
        name: np.mean([np.log(s.ci_high / s.ci_low) for s in ranking.scores])
        for name, ranking in (("votes", by_votes), ("raters", by_raters))
    }
    assert width["raters"] > 2 * width["votes"]
    with pytest.raises(VoteError, match="rater"):
        analyse_votes(base, resample="raters")


def test_pair_summary_reads_votes_from_the_first_method() -> None:
    summary = pair_summary(
        count_pairs(votes_frame([("A", "B", 1), ("A", "B", 2), ("B", "A", 5), ("B", "C", 4)]))
    )
    row = summary.iloc[0]
    assert (row["first"], row["second"], row["votes"]) == ("A", "B", 3)
    assert row["mean_vote"] == pytest.approx(4 / 3)
    assert row["prefer_first"] == 1.0 and row["no_preference"] == 0.0
    assert row["ci_low"] < row["mean_vote"] < row["ci_high"]
    assert np.isnan(summary.iloc[1]["ci_low"])  # a single vote has no spread


def test_methods_that_cannot_be_scaled_are_named() -> None:
    always_wins = [("A", "B", 1)] * 5 + [("B", "C", 3)] * 3 + [("B", "C", 5)] * 2
    with pytest.raises(VoteError, match=r"groups \[\['A'\], \['B', 'C'\]\].*\['A'\] never lost"):
        fit(count_pairs(votes_frame(always_wins)))
    separate = [("A", "B", 2), ("B", "A", 2), ("C", "D", 2), ("D", "C", 2)]
    with pytest.raises(VoteError, match="no votes compare"):
        fit(count_pairs(votes_frame(separate)))
    with pytest.raises(VoteError, match="every vote is 'no preference'"):
        fit(count_pairs(votes_frame([("A", "B", 3)] * 4)))


@pytest.mark.parametrize(
    ("rows", "order", "why"),
    [
        ([("A", "B", 1)] * 5 + [("B", "C", 3)] * 3 + [("B", "C", 5)] * 2, "ACB", "never lost"),
        ([("A", "B", 1)] * 4 + [("C", "D", 2)] * 3 + [("D", "C", 4)], "ACDB", "no votes compare"),
        ([("A", "B", 3)] * 4, "AB", "every vote is 'no preference'"),
    ],
)
def test_the_prior_ranks_what_maximum_likelihood_cannot(rows: list, order: str, why: str) -> None:
    analysis = analyse_votes(votes_frame(rows), n_bootstrap=100)
    scores = {item.method: item for item in analysis.overall.scores}
    for first, second in zip(order, order[1:]):  # ≥: equal where the votes cannot tell them apart
        assert scores[first].score >= scores[second].score
    for item in scores.values():
        assert np.isfinite([item.ci_low, item.ci_high]).all()
        assert item.ci_low < item.score < item.ci_high  # widened where the bootstrap is blind
    assert "widened to the posterior curvature" in analysis.overall.interval
    assert any(why in note and "lean on" in note for note in analysis.notes)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("left,right\nA,B\n", r"missing columns \['vote'\]"),
        ("left,right,vote,score\nA,B,1,0\n", r"unknown columns \['score'\]"),
        (
            "left,right,vote\nA,B,1\nA,B,6\nA,B,x\nA,B,2.5\n",
            r"integer 1–5 at line 3 \('6'\), line 4 \('x'\), line 5 \('2.5'\)",
        ),
        ("left,right,vote\nA,A,1\n", r"compared with itself at line 2"),
        ("left,right,vote\n,B,1\n", r"empty left at line 2"),
        (
            "left,right,vote,factor\nA,B,1,Colors\nA,B,1,light\n",
            r"factor must be one of .* line 3 \('light'\)",
        ),
        ("left,right,vote,rater\nA,B,1,\n", r"empty rater at line 2"),
        ("left,right,vote\n", "no votes"),
    ],
)
def test_malformed_votes_are_rejected(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "votes.csv"
    path.write_text(text)
    with pytest.raises(VoteError, match=message):
        read_votes(path)


def test_cli_prints_table_and_writes_png_and_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    votes = simulate_votes(TRUTH, 60, rng=np.random.default_rng(5))
    votes["factor"] = np.array(["colors", "brightness", "skintone"])[np.arange(len(votes)) % 3]
    csv_path = tmp_path / "votes.csv"
    votes.to_csv(csv_path, index=False)
    json_path = tmp_path / "out" / "bt.json"
    assert main([str(csv_path), "--json", str(json_path), "--bootstrap", "200"]) == 0
    printed = capsys.readouterr().out
    assert "factor skintone" in printed and "mean_vote" in printed

    png = tmp_path / "votes_bt.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(png) as image:
        image.verify()
    report = json.loads(json_path.read_text())
    assert set(report) == set(TRUTH)
    for entry in report.values():
        assert entry["ci_low"] <= entry["score"] <= entry["ci_high"]
        assert set(entry["factors"]) == {"colors", "brightness", "skintone"}
    assert max(report, key=lambda name: report[name]["score"]) == "lut"

    (tmp_path / "bad.csv").write_text("left,right,vote\nA,B,9\n")
    assert main([str(tmp_path / "bad.csv")]) == 1
    assert "line 2 ('9')" in capsys.readouterr().err


@pytest.mark.parametrize(("limits", "labelled"), [((0.3, 4.0), True), ((0.01, 30.0), False)])
def test_log_axis_minor_labels_only_where_they_fit(limits: tuple, labelled: bool) -> None:
    """Minor labels (2×, 5×) within two decades, none beyond, where they would overlap."""
    import matplotlib.pyplot as plt

    from vqe.preference.bradley_terry_plot import label_log_axis

    figure, axes = plt.subplots()
    axes.set_yscale("log")
    axes.set_ylim(*limits)
    label_log_axis(axes)
    figure.canvas.draw()
    minor = [tick.get_text() for tick in axes.get_yticklabels(minor=True) if tick.get_text()]
    plt.close(figure)
    assert (minor != []) is labelled
    assert set(minor) <= {"0.2", "0.5", "2", "5", "20"}


# --------------------------------------------------------------------------- the prior


def unanimous_rows(order: str, per_pair: int) -> list[tuple[str, str, int]]:
    """Strong votes that all agree with ``order`` (best first), shown both ways round."""
    rows = []
    for i, better in enumerate(order):
        for worse in order[i + 1 :]:
            for k in range(per_pair):
                rows.append((better, worse, 1) if k % 2 else (worse, better, 5))
    return rows


@pytest.mark.parametrize(
    ("dissent", "identified"),
    [(("ours", "baseline", 1), False), (("input", "baseline", 1), True)],
)
def test_one_dissenting_vote_keeps_the_order(dissent: tuple, identified: bool) -> None:
    """27 votes baseline > ours > input but one: one way the ML still does not exist (input
    never wins), the other way it does (a cycle) and the prior only shrinks it a little."""
    rows = unanimous_rows(["baseline", "ours", "input"], 9)
    rows[rows.index((dissent[1], dissent[0], 1))] = dissent
    pairs = count_pairs(votes_frame(rows))
    for ci in ("bootstrap", "information"):
        ranking = rank(pairs, ci, 200, prior_strength=DEFAULT_PRIOR_STRENGTH)
        assert [item.method for item in ranking.scores] == ["baseline", "ours", "input"]
        for item in ranking.scores:
            assert np.isfinite([item.ci_low, item.ci_high]).all()
            assert item.ci_low < item.score < item.ci_high
    posterior = fit(pairs, DEFAULT_PRIOR_STRENGTH)
    assert np.isfinite(posterior.log_strength).all()
    if not identified:
        with pytest.raises(VoteError, match=r"\['baseline', 'ours'\] never lost"):
            fit(pairs)
        return
    likelihood = fit(pairs)
    assert np.argsort(likelihood.log_strength).tolist() == np.argsort(
        posterior.log_strength
    ).tolist()
    # Shrunk towards equal strengths, but by less than the ML's own standard error.
    assert np.ptp(posterior.log_strength) < np.ptp(likelihood.log_strength)
    shift = np.abs(posterior.log_strength - likelihood.log_strength)
    assert (shift < np.sqrt(np.diag(likelihood.covariance))).all()


def test_a_method_that_never_loses_among_many() -> None:
    """A champion that wins every vote against six simulated methods: first, finite, clear of
    the rest; the rest keep their true order and almost exactly their fit without it."""
    truth = {f"m{i}": float(np.exp(x)) for i, x in enumerate(np.linspace(-1.0, 1.0, 6))}
    base = validate_votes(simulate_votes(truth, 40, rng=np.random.default_rng(0)))
    wins = [("champ", name, 1) if k % 2 else (name, "champ", 5) for name in truth for k in range(10)]
    votes = validate_votes(
        pd.concat([base[["left", "right", "vote"]], pd.DataFrame(wins, columns=base.columns[:3])])
    )
    analysis = analyse_votes(votes, n_bootstrap=300)
    ranking = analysis.overall.scores
    assert [item.method for item in ranking] == ["champ", *sorted(truth, key=truth.get)[::-1]]
    assert ranking[0].ci_low > ranking[1].score  # ten wins over each: clearly the best
    for item in ranking:
        assert np.isfinite([item.ci_low, item.ci_high]).all()
        assert item.ci_low < item.score < item.ci_high
    assert any("['champ'] never lost" in note for note in analysis.notes)

    with_champion = fit(count_pairs(votes), DEFAULT_PRIOR_STRENGTH)
    without = fit(count_pairs(base), DEFAULT_PRIOR_STRENGTH)
    first = dict(zip(with_champion.methods, with_champion.log_strength))
    others = np.array([first[name] for name in without.methods])
    # Log-strength differences among the others move by far less than their standard error.
    moved = np.abs((others - others.mean()) - without.log_strength)
    assert moved.max() < 0.2 * np.sqrt(np.diag(without.covariance)).min()


@pytest.mark.parametrize("ci", ["bootstrap", "information"])
def test_prior_intervals_cover_known_strengths(ci: str) -> None:
    """Many votes from known strengths, several seeds: the order is recovered every time and
    the 95 % intervals (narrower than the gap between neighbours) mostly hold the truth."""
    logs = np.linspace(-1.2, 1.2, 6)
    truth = {f"m{i}": float(np.exp(x)) for i, x in enumerate(logs)}
    expected = normalised(truth)
    hits, widths = [], []
    for seed in range(8):
        votes = validate_votes(simulate_votes(truth, 150, rng=np.random.default_rng(seed)))
        ranking = analyse_votes(votes, ci, n_bootstrap=200, seed=seed).overall
        assert [item.method for item in ranking.scores] == list(truth)[::-1]
        hits += [item.ci_low <= expected[item.method] <= item.ci_high for item in ranking.scores]
        widths += [np.log(item.ci_high / item.ci_low) for item in ranking.scores]
    assert np.mean(hits) >= 0.85
    assert max(widths) < logs[1] - logs[0]


def test_prior_is_negligible_with_many_votes() -> None:
    """2000 votes without separation: the posterior mode and curvature are the ML ones to well
    within the ML's standard errors."""
    votes = validate_votes(simulate_votes(TRUTH, 200, rng=np.random.default_rng(6)))
    assert len(votes) == 2000
    pairs = count_pairs(votes)
    likelihood, posterior = fit(pairs), fit(pairs, DEFAULT_PRIOR_STRENGTH)
    assert likelihood.prior_strength == 0 and posterior.prior_strength == DEFAULT_PRIOR_STRENGTH
    se = np.sqrt(np.diag(likelihood.covariance))
    assert (np.abs(posterior.log_strength - likelihood.log_strength) < 0.1 * se).all()
    np.testing.assert_allclose(np.sqrt(np.diag(posterior.covariance)), se, rtol=0.02)
    assert posterior.tie == pytest.approx(likelihood.tie, rel=0.01)


def test_prior_strength_is_validated_and_reported(tmp_path: Path) -> None:
    votes = votes_frame(unanimous_rows(["A", "B"], 4))
    for bad in (-1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="prior strength must be a finite number ≥ 0"):
            analyse_votes(votes, prior_strength=bad)
    for strength in (0.5, 2.0):
        analysis = analyse_votes(votes, n_bootstrap=50, prior_strength=strength)
        assert f"prior {strength:g} virtual win + loss" in analysis.overall.interval
        report = analysis.to_json()
        assert {entry["prior"]["strength"] for entry in report.values()} == {strength}
    weak, strong = (
        analyse_votes(votes, "information", prior_strength=strength).overall.scores[0].score
        for strength in (0.5, 2.0)
    )
    assert weak > strong > 1  # a stronger prior pulls the winner further towards the average
