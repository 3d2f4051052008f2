"""Reliability of the Bradley–Terry analysis when the votes agree (issue: no ranking under
separation). A small pilot with a clear winner — every vote says baseline > ours > input — used to
stop the command with exit 1 and leave the study report without ``bt.png`` and ``bt.json``; the
weak prior of :mod:`vqe.preference.bradley_terry` now gives a finite, correctly ordered ranking."""

from __future__ import annotations

import json
import sqlite3
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from vqe.cli import bradley_terry
from vqe.preference.bradley_terry import DEFAULT_PRIOR_STRENGTH, PRIOR_KIND
from vqe.study.config import DB_NAME
from vqe.study.create import create_study
from vqe.video import write_video

with warnings.catch_warnings():  # newer Starlette prefers httpx2 for its TestClient
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

ORDER = ("baseline", "ours", "input")  # best first: what every vote says
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def unanimous_vote(left: str, right: str) -> int:
    """A strong vote (1 / 5, from the left method's side) for the better method of ORDER."""
    return 1 if ORDER.index(left) < ORDER.index(right) else 5


def unanimous_votes_csv(path: Path, per_pair: int = 9) -> Path:
    """27 strong votes, baseline > ours > input, each pair shown both ways round."""
    rows = []
    for index in range(per_pair):
        for better, worse in ((ORDER[0], ORDER[1]), (ORDER[1], ORDER[2]), (ORDER[0], ORDER[2])):
            left, right = (better, worse) if index % 2 else (worse, better)
            rows.append((left, right, unanimous_vote(left, right)))
    pd.DataFrame(rows, columns=["left", "right", "vote"]).to_csv(path, index=False)
    return path


def check_ranking(report: dict) -> None:
    """bt.json of the unanimous votes: the votes' order, finite intervals around the scores."""
    assert list(report) == list(ORDER)  # written best first
    scores = [report[name]["score"] for name in ORDER]
    assert scores[0] > scores[1] > scores[2]
    for name, entry in report.items():
        values = [entry["ci_low"], entry["score"], entry["ci_high"]]
        assert np.isfinite(values).all() and 0 < values[0] < values[1] < values[2], name
        assert entry["prior"] == {"kind": PRIOR_KIND, "strength": DEFAULT_PRIOR_STRENGTH}
    # Nine unanimous votes are real evidence: the best and the worst intervals do not overlap.
    assert report[ORDER[0]]["ci_low"] > report[ORDER[2]]["ci_high"]


def check_png(path: Path) -> None:
    assert path.read_bytes()[:8] == PNG_MAGIC
    with Image.open(path) as image:
        image.verify()


@pytest.mark.parametrize("ci", ["bootstrap", "information"])
def test_unanimous_votes_get_a_ranking_from_the_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], ci: str
) -> None:
    votes = unanimous_votes_csv(tmp_path / "votes.csv")
    json_path, png_path = tmp_path / "bt.json", tmp_path / "bt.png"
    code = bradley_terry.main(
        [str(votes), "--json", str(json_path), "--plot", str(png_path), "--ci", ci,
         "--bootstrap", "200"]
    )
    printed = capsys.readouterr()
    assert code == 0, printed.err
    check_ranking(json.loads(json_path.read_text()))
    check_png(png_path)
    assert "prior 1 virtual win + loss per method" in printed.out
    assert "never lost" in printed.out  # the note: the scores lean on the prior


def test_plain_maximum_likelihood_still_names_the_unbeaten_method(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    votes = unanimous_votes_csv(tmp_path / "votes.csv")
    code = bradley_terry.main([str(votes), "--prior-strength", "0", "--plot",
                               str(tmp_path / "bt.png")])
    assert code == 1
    assert "['baseline'] never lost" in capsys.readouterr().err
    assert not (tmp_path / "bt.png").exists()
    assert bradley_terry.main([str(votes), "--prior-strength", "-1"]) == 1
    assert "--prior-strength must be a finite number ≥ 0" in capsys.readouterr().err


# --------------------------------------------------------------------------- the study report


def method_folders(root: Path, videos: int = 3) -> dict[str, Path]:
    """Tiny real videos, one folder per method of ORDER, the same file names in each."""
    rng = np.random.default_rng(0)
    folders = {}
    for method in ORDER:
        folders[method] = root / method
        for index in range(videos):
            frames = [rng.integers(0, 255, (48, 64, 3), dtype=np.uint8) for _ in range(3)]
            write_video(folders[method] / f"clip_{index}.mp4", frames, crf=30, preset="ultrafast")
    return folders


def cast_unanimous_votes(root: Path, client: TestClient, token: str, raters: int) -> int:
    """Every rater votes every trial for the better method of ORDER through the HTTP API."""
    cast = 0
    with sqlite3.connect(root / DB_NAME) as connection:
        for index in range(raters):
            joined = client.post(f"/s/{token}/api/raters", json={"name": f"pilot{index}"})
            key = joined.json()["rater"]
            trial = client.get(f"/s/{token}/api/next", params={"rater": key}).json()
            while not trial["done"]:
                left, right = connection.execute(
                    "SELECT left_method, right_method FROM assignments WHERE id = ?",
                    (trial["assignment"],),
                ).fetchone()
                body = {"rater": key, "assignment": trial["assignment"],
                        "vote": unanimous_vote(left, right), "factor": "brightness"}
                answer = client.post(f"/s/{token}/api/votes", json=body)
                assert answer.status_code == 200, answer.text
                trial, cast = answer.json(), cast + 1
    return cast


def test_study_report_of_a_unanimous_pilot_writes_plot_and_json(tmp_path: Path) -> None:
    from vqe.study.report import write_report
    from vqe.study.server import create_app

    root = tmp_path / "study"
    # 3 videos × 3 pairs, 3 votes each: 27 votes, no gold questions (nobody is excluded).
    config = create_study(root, method_folders(tmp_path / "methods"), repeats=3, gold_rate=0.0)
    client = TestClient(create_app(root))
    assert cast_unanimous_votes(root, client, config.token, raters=3) == 27

    written = write_report(root, tmp_path / "report", n_bootstrap=200)
    assert {"plot", "json"} <= set(written)
    assert written["plot"].name == "bt.png" and written["json"].name == "bt.json"
    check_png(written["plot"])
    report = json.loads(written["json"].read_text())
    check_ranking(report)
    assert set(report[ORDER[0]]["factors"]) == {"brightness"}  # the factor's ranking, too
    assert "No ranking yet" not in written["report"].read_text()

    page = client.get(f"/admin/{config.admin_token}/").text  # the server's results page
    assert 'id="ranking"' in page and 'id="plot"' in page and "No ranking yet" not in page
    assert "prior 1 virtual win + loss per method" in page
    assert page.index(">baseline<") < page.index(">ours<") < page.index(">input<")
