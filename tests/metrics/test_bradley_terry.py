"""Bradley–Terry (Davidson) analysis of pairwise votes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from scipy.stats import spearmanr

from vqe.metrics.bradley_terry import (
    VoteError,
    analyse_votes,
    count_pairs,
    fit,
    main,
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

    from vqe.metrics.bt_plot import label_log_axis

    figure, axes = plt.subplots()
    axes.set_yscale("log")
    axes.set_ylim(*limits)
    label_log_axis(axes)
    figure.canvas.draw()
    minor = [tick.get_text() for tick in axes.get_yticklabels(minor=True) if tick.get_text()]
    plt.close(figure)
    assert (minor != []) is labelled
    assert set(minor) <= {"0.2", "0.5", "2", "5", "20"}
