"""P.910 toolkit CCR results → pairwise votes → Bradley–Terry."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from vqe.cli.p910 import main
from vqe.preference.bradley_terry import VoteError, analyse_votes, read_votes
from vqe.preference.p910 import CCR_TO_VOTE, ccr_to_votes, read_ccr


def per_worker_csv(path: Path, rows: list[tuple[str, str, int]]) -> Path:
    """The columns the toolkit's result parser writes to *_votes_per_worker.csv."""
    frame = pd.DataFrame(
        [
            {"HITId": f"h{i}", "workerid": w, "file": f, "short_file_name": f.rsplit("/", 1)[-1],
             "vote": v, "Unknown": "NoCondition"}
            for i, (w, f, v) in enumerate(rows)
        ]
    )
    frame.to_csv(path, index=False)
    return path


def test_conversion_of_each_rating(tmp_path: Path) -> None:
    rows = [("w1", f"https://host/clips/ours/v{v + 3}.mp4", v) for v in range(-3, 4)]
    votes = read_ccr(per_worker_csv(tmp_path / "b_votes_per_worker.csv", rows))
    assert list(votes["left"]) == ["ours"] * 7 and set(votes["right"]) == {"reference"}
    assert list(votes["vote"]) == [5, 5, 4, 3, 2, 1, 1] == [CCR_TO_VOTE[v] for v in range(-3, 4)]
    assert set(votes["rater"]) == {"w1"} and set(votes["factor"]) == {""}


def test_methods_from_a_pattern_or_a_column() -> None:
    table = pd.DataFrame({"workerid": ["a", "b"], "file": ["x/D1_mBASE_s1.mp4", "x/D1_mOURS_s2.mp4"],
                          "vote": ["1", "-2"], "cond": ["base", "ours"]})
    by_pattern = ccr_to_votes(table, "input", method_pattern=r"_m(?P<method>[A-Z]+)_")
    assert list(by_pattern["left"]) == ["BASE", "OURS"] and set(by_pattern["right"]) == {"input"}
    assert list(ccr_to_votes(table, method_column="cond")["left"]) == ["base", "ours"]
    with pytest.raises(VoteError, match=r"needs a group \(\?P<method>"):
        ccr_to_votes(table, method_pattern=r"_m([A-Z]+)_")


def test_errors_name_the_rows(tmp_path: Path) -> None:
    table = pd.DataFrame({"workerid": ["a", "b", "c"], "file": ["h/ours/1.mp4", "2.mp4", "h/ours/3.mp4"],
                          "vote": ["4", "1", "x"]})
    with pytest.raises(VoteError) as error:
        ccr_to_votes(table, source="t.csv")
    text = str(error.value)
    assert "line 2 ('4')" in text and "line 4 ('x')" in text and "no method found at line 3" in text
    with pytest.raises(VoteError, match="missing columns"):
        ccr_to_votes(pd.DataFrame({"worker": ["a"], "vote": ["1"]}))
    rated_itself = pd.DataFrame({"workerid": ["a"], "file": ["h/reference/1.mp4"], "vote": ["0"]})
    with pytest.raises(VoteError, match="--reference"):
        ccr_to_votes(rated_itself)
    with pytest.raises(VoteError, match="file not found"):
        read_ccr(tmp_path / "missing.csv")


def test_a_simulated_crowd_study_ranks_the_methods(tmp_path: Path) -> None:
    """Three methods rated against one reference by 30 workers; CMOS grows with quality."""
    rng = np.random.default_rng(0)
    quality = {"base": 0.3, "ours": 1.2, "worse": -0.8}  # mean CCR against the reference
    rows = []
    for worker in range(30):
        for method, mean in quality.items():
            for clip in range(4):
                vote = int(np.clip(np.rint(rng.normal(mean, 1.0)), -3, 3))
                rows.append((f"w{worker}", f"https://h/c/{method}/clip{clip}.mp4", vote))
    source = per_worker_csv(tmp_path / "batch_votes_per_worker.csv", rows)
    out = tmp_path / "votes.csv"
    assert main([str(source), str(out), "--reference", "input"]) == 0
    votes = read_votes(out)  # the file vqe bradley-terry reads
    ranking = analyse_votes(votes, n_bootstrap=200).overall
    assert [s.method for s in ranking.scores] == ["ours", "base", "input", "worse"]
    assert all(np.isfinite([s.ci_low, s.ci_high]).all() for s in ranking.scores)
    assert main([str(tmp_path / "nope.csv"), str(out)]) == 1


def test_bradley_terry_reads_ccr_results_directly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from vqe.cli import bradley_terry

    # Mostly better / mostly worse than the reference, never unanimous (else no common scale).
    rows = [(f"w{w}", f"https://h/c/{m}/clip{c}.mp4", v if (w + c) % 4 else -v)
            for w in range(6) for c in range(3) for m, v in (("ours", 2), ("base", -1))]
    source = per_worker_csv(tmp_path / "b_votes_per_worker.csv", rows)
    out_json = tmp_path / "bt.json"
    code = bradley_terry.main(
        [str(source), "--format", "p910-ccr", "--reference", "input", "--json", str(out_json),
         "--bootstrap", "50", "--plot", str(tmp_path / "bt.png")]
    )
    assert code == 0 and out_json.is_file() and (tmp_path / "bt.png").is_file()
    printed = capsys.readouterr().out
    assert printed.index("ours") < printed.index("input") < printed.index("base")
    assert bradley_terry.main([str(source), "--format", "p910-ccr", "--reference", "ours"]) == 1
