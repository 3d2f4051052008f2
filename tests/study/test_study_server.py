"""The study server over HTTP (Starlette's TestClient): pages, tokens, vote validation, path
safety, results, export, and a simulated 3-method study with known strengths."""

from __future__ import annotations

import os
import sqlite3
import warnings
from pathlib import Path

import numpy as np
import pytest

from vqe.preference.bradley_terry import analyse_votes, read_votes
from vqe.study.config import DB_NAME, VIDEOS_DIR
from vqe.study.create import create_study
from vqe.study.design import DEGRADED, GOLD_DEGRADED, GOLD_SAME, PAIR
from vqe.study.export import export_votes
from vqe.study.server import create_app

with warnings.catch_warnings():  # newer Starlette prefers httpx2 for its TestClient
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient


@pytest.fixture
def client(study) -> TestClient:
    root, _ = study
    return TestClient(create_app(root))


def join(client: TestClient, token: str, name: str = "r") -> str:
    answer = client.post(f"/s/{token}/api/raters", json={"name": name})
    assert answer.status_code == 201, answer.text
    return answer.json()["rater"]


def next_trial(client: TestClient, token: str, key: str) -> dict:
    answer = client.get(f"/s/{token}/api/next", params={"rater": key})
    assert answer.status_code == 200, answer.text
    return answer.json()


def post_vote(client: TestClient, token: str, body: dict):
    return client.post(f"/s/{token}/api/votes", json=body)


def assignment_row(root: Path, assignment: int) -> sqlite3.Row:
    with sqlite3.connect(root / DB_NAME) as connection:
        connection.row_factory = sqlite3.Row
        return connection.execute("SELECT * FROM assignments WHERE id = ?", (assignment,)).fetchone()


# --------------------------------------------------------------------------- pages and tokens


def test_page_needs_the_token(client, study) -> None:
    _, config = study
    assert client.get(f"/s/{config.token}/").status_code == 200
    assert "Which video looks better" in client.get(f"/s/{config.token}/").text
    assert client.get(f"/s/{config.token}", follow_redirects=False).status_code == 308
    for path in ("/", "/s/wrong/", f"/s/{config.token}x/", f"/admin/{config.token}/",
                 f"/s/{config.admin_token}/", "/s/wrong/api/next?rater=x"):
        assert client.get(path).status_code == 404, path
    assert client.get(f"/admin/{config.admin_token}/").status_code == 200
    assert client.post("/s/wrong/api/raters", json={"name": "x"}).status_code == 404
    headers = client.get(f"/s/{config.token}/").headers
    assert headers["referrer-policy"] == "no-referrer" and "default-src 'self'" in headers[
        "content-security-policy"]


def test_page_loads_nothing_from_the_internet() -> None:
    static = Path(__file__).resolve().parents[2] / "vqe" / "study"
    for path in [*static.glob("static/*"), *static.glob("templates/*")]:
        text = path.read_text()
        assert "http://" not in text and "https://" not in text and "//cdn" not in text, path


# --------------------------------------------------------------------------- vote validation


def test_votes_are_validated(client, study) -> None:
    root, config = study
    token = config.token
    key, other = join(client, token, "a"), join(client, token, "b")
    trial = next_trial(client, token, key)
    mine = trial["assignment"]
    theirs = next_trial(client, token, other)["assignment"]
    good = {"rater": key, "assignment": mine, "vote": 3, "factor": ""}
    cases = [
        ({**good, "vote": 0}, 400), ({**good, "vote": 6}, 400), ({**good, "vote": 2.5}, 400),
        ({**good, "vote": "3"}, 400), ({**good, "vote": True}, 400), ({**good, "vote": None}, 400),
        ({**good, "factor": "sharpness"}, 400), ({**good, "factor": 1}, 400),
        ({**good, "assignment": "1"}, 400), ({**good, "assignment": 10**6}, 404),
        ({**good, "assignment": theirs}, 404),  # another rater's assignment
        ({**good, "rater": "not-a-key"}, 403), ({**good, "rater": 5}, 403),
    ]
    for body, status in cases:
        answer = post_vote(client, token, body)
        assert answer.status_code == status, (body, answer.text)
        assert "error" in answer.json()
    for raw in (b"not json", b"[1, 2]"):
        answer = client.post(f"/s/{token}/api/votes", content=raw,
                             headers={"content-type": "application/json"})
        assert answer.status_code == 400
    assert post_vote(client, token, good).status_code == 200
    again = post_vote(client, token, {**good, "vote": 5})
    assert again.status_code == 409 and "already has a vote" in again.json()["error"]
    with sqlite3.connect(root / DB_NAME) as connection:
        assert connection.execute("SELECT assignment_id, vote FROM votes").fetchall() == [(mine, 3)]
    assert client.post(f"/s/{token}/api/raters", json={"name": "x" * 65}).status_code == 400
    assert client.post(f"/s/{token}/api/raters", json=["x"]).status_code == 400


def test_the_database_refuses_what_the_server_refuses(study) -> None:
    """The rules hold in the schema too, for any other writer of the file."""
    root, _ = study
    from vqe.study.db import add_rater, connect
    from vqe.study.design import Trial

    connection = connect(root / DB_NAME)
    assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    twice = [Trial("clip_a.mp4", "ours", "input", PAIR), Trial("clip_a.mp4", "input", "ours", PAIR)]
    with pytest.raises(sqlite3.IntegrityError):  # the same comparison twice for one rater
        add_rater(connection, "x", lambda assigned: twice)
    _, _, count = add_rater(connection, "y", lambda assigned: twice[:1])
    with pytest.raises(sqlite3.IntegrityError):
        connection.execute("INSERT INTO votes VALUES (1, 7, '', 0, 0)")
    connection.execute("INSERT INTO votes VALUES (1, 2, '', 0, 0)")
    with pytest.raises(sqlite3.IntegrityError):
        connection.execute("INSERT INTO votes VALUES (1, 3, '', 0, 0)")
    assert count == 1 and connection.execute("SELECT COUNT(*) FROM raters").fetchone()[0] == 1


# --------------------------------------------------------------------------- files


def test_media_follow_the_assignment_and_the_rater(client, study) -> None:
    root, config = study
    key = join(client, config.token)
    trial = next_trial(client, config.token, key)
    row = assignment_row(root, trial["assignment"])
    video = client.get(f"/s/{config.token}/{trial['left']}")
    assert video.status_code == 200 and video.headers["content-type"] == "video/mp4"
    assert video.content == (root / VIDEOS_DIR / row["left_method"] / row["video"]).read_bytes()
    assert row["left_method"] not in trial["left"] and row["video"] not in trial["left"]
    partial = client.get(f"/s/{config.token}/{trial['left']}", headers={"range": "bytes=0-99"})
    assert partial.status_code == 206 and len(partial.content) == 100  # seeking needs ranges
    base = f"/s/{config.token}/media/{trial['assignment']}"
    assert client.get(f"{base}/left").status_code == 404  # no rater key
    assert client.get(f"{base}/left", params={"rater": "x"}).status_code == 404
    assert client.get(f"{base}/middle", params={"rater": key}).status_code == 404
    other = join(client, config.token, "other")
    assert client.get(f"{base}/left", params={"rater": other}).status_code == 404


TRAVERSALS = [
    "../study.json", "..%2fstudy.json", "%2e%2e/study.json", "%2e%2e%2fstudy.json",
    "%252e%252e%252fstudy.json", "..%5cstudy.json", "/etc/passwd", "%2fetc%2fpasswd",
    "//etc/passwd", "%2e/study.css", "C:/Windows/win.ini",
    "study.css%00.png", "",
]


@pytest.mark.parametrize("path", TRAVERSALS)
def test_static_refuses_traversal(client, study, path: str) -> None:
    _, config = study
    assert client.get(f"/s/{config.token}/static/study.css").status_code == 200
    answer = client.get(f"/s/{config.token}/static/{path}")
    assert answer.status_code == 404, (path, answer.text[:200])
    assert "token" not in answer.text and "root:" not in answer.text


def test_symlinks_out_of_the_study_are_refused(client, study, tmp_path: Path) -> None:
    root, config = study
    key = join(client, config.token)
    trial = next_trial(client, config.token, key)
    row = assignment_row(root, trial["assignment"])
    secret = tmp_path / "secret.mp4"
    secret.write_bytes(b"outside the study")
    served = root / VIDEOS_DIR / row["left_method"] / row["video"]
    served.unlink()
    os.symlink(secret, served)  # a video replaced by a link to a file outside the study
    assert client.get(f"/s/{config.token}/{trial['left']}").status_code == 404
    served.unlink()
    os.symlink(root / VIDEOS_DIR / row["right_method"] / row["video"], served)  # another folder
    assert client.get(f"/s/{config.token}/{trial['left']}").status_code == 404
    served.unlink()
    sibling = next(name for name in config.videos if name != row["video"])
    os.symlink(sibling, served)  # a relative link inside the method's own folder: served
    assert client.get(f"/s/{config.token}/{trial['left']}").status_code == 200


# --------------------------------------------------------------------------- the study


def test_gold_questions_and_exclusion(client, study, tmp_path: Path) -> None:
    root, config = study
    good, bad = join(client, config.token, "good"), join(client, config.token, "bad")
    kinds = []
    for key, attentive in ((good, True), (bad, False)):
        trial = next_trial(client, config.token, key)
        while not trial["done"]:
            row = assignment_row(root, trial["assignment"])
            kinds.append(row["kind"])
            if row["kind"] == GOLD_SAME:
                assert row["left_method"] == row["right_method"] == config.gold_source
                vote = 3 if attentive else 1
            elif row["kind"] == GOLD_DEGRADED:
                assert DEGRADED in (row["left_method"], row["right_method"])
                vote = (5 if row["left_method"] == DEGRADED else 1) if attentive else 3
            else:
                vote = 2
            trial = post_vote(client, config.token, {
                "rater": key, "assignment": trial["assignment"], "vote": vote, "factor": ""
            }).json()
        assert trial["voted"] == trial["total"]
    assert GOLD_SAME in kinds and GOLD_DEGRADED in kinds
    exported = export_votes(root, tmp_path / "votes.csv", details=tmp_path / "answers.csv")
    assert exported.excluded == ["2-bad"] and exported.rows == config.per_rater
    assert set(read_votes(exported.path)["rater"]) == {"1-good"}
    kept = export_votes(root, tmp_path / "all.csv", keep_all=True)
    assert kept.rows == 2 * config.per_rater and not kept.excluded
    page = client.get(f"/admin/{config.admin_token}/").text
    assert "Excluded from the ranking: 2-bad" in page
    csv = client.get(f"/admin/{config.admin_token}/votes.csv").text
    assert csv.splitlines()[0] == "left,right,vote,factor,rater"


def test_no_rater_sees_a_comparison_twice_and_the_study_fills_evenly(method_folders, tmp_path):
    root = tmp_path / "study"
    config = create_study(root, method_folders, repeats=3, per_rater=4, gold_rate=0.0)
    client = TestClient(create_app(root))
    keys = [join(client, config.token, f"r{i}") for i in range(5)]  # 20 of 18 slots asked
    with sqlite3.connect(root / DB_NAME) as connection:
        rows = connection.execute(
            "SELECT rater_id, comparison, left_method FROM assignments").fetchall()
    per_rater: dict[int, list[str]] = {}
    for rater, comparison, _ in rows:
        per_rater.setdefault(rater, []).append(comparison)
    assert all(len(c) == len(set(c)) for c in per_rater.values())
    counts = np.unique([c for _, c, _ in rows], return_counts=True)[1]
    assert len(counts) == config.comparisons and set(counts) == {3}  # every one exactly 3×
    assert sum(len(c) for c in per_rater.values()) == 18 and len(per_rater[5]) == 2
    trial = next_trial(client, config.token, keys[-1])
    assert trial["total"] == 2
    sixth = client.post(f"/s/{config.token}/api/raters", json={"name": "late"}).json()
    assert sixth["full"] and next_trial(client, config.token, sixth["rater"])["done"]


STRENGTHS = {"input": 0.25, "baseline": 1.0, "ours": 4.0}


def simulated_vote(rng: np.random.Generator, left: str, right: str, tie: float = 0.6) -> int:
    """A vote from Davidson's model with the strengths above; half the preferences weak."""
    a, b = STRENGTHS[left], STRENGTHS[right]
    total = a + b + tie * np.sqrt(a * b)
    outcome = rng.choice(3, p=[a / total, tie * np.sqrt(a * b) / total, b / total])
    weak = rng.random() < 0.5
    return [2 if weak else 1, 3, 4 if weak else 5][outcome]


def test_simulated_three_method_study(tmp_path: Path, method_folders) -> None:
    """Votes drawn from known strengths, cast through the HTTP API by 12 raters, recover the
    order with finite intervals that hold the true ratios."""
    root = tmp_path / "sim"
    config = create_study(root, method_folders, repeats=12, gold_rate=0.2, seed=3)
    client = TestClient(create_app(root))
    rng = np.random.default_rng(7)
    factors = ["colors", "brightness", "skintone", ""]
    for index in range(12):
        key = join(client, config.token, f"sim{index}")
        trial = next_trial(client, config.token, key)
        while not trial["done"]:
            row = assignment_row(root, trial["assignment"])
            if row["kind"] == GOLD_SAME:
                vote = 3
            elif row["kind"] == GOLD_DEGRADED:
                vote = 5 if row["left_method"] == DEGRADED else 1
            else:
                vote = simulated_vote(rng, row["left_method"], row["right_method"])
            answer = post_vote(client, config.token, {
                "rater": key, "assignment": trial["assignment"], "vote": vote,
                "factor": factors[int(rng.integers(4))] if vote != 3 else "",
            })
            assert answer.status_code == 200, answer.text
            trial = answer.json()
    from vqe.study.report import study_results, write_report

    results = study_results(root)
    ranking = results.analysis.overall
    print("\nsimulated study (true strengths input 0.25, baseline 1, ours 4; geometric mean 1):")
    for score in ranking.scores:
        print(f"  {score.method:9s} {score.score:6.3f}  95% [{score.ci_low:.3f}, {score.ci_high:.3f}]"
              f"  votes {score.votes}")
    assert [s.method for s in ranking.scores] == ["ours", "baseline", "input"]
    assert all(np.isfinite([s.ci_low, s.ci_high]).all() and s.ci_low < s.ci_high
               for s in ranking.scores)
    by_name = {s.method: s for s in ranking.scores}
    assert by_name["ours"].ci_low > by_name["input"].ci_high
    for name, true in STRENGTHS.items():  # their geometric mean is 1, as the scores'
        assert by_name[name].ci_low < true < by_name[name].ci_high, (name, by_name[name])
    written = write_report(root, tmp_path / "report", n_bootstrap=200)
    assert {"report", "votes", "raters", "plot", "json"} <= set(written)
    again = analyse_votes(read_votes(written["votes"]), n_bootstrap=200)
    assert [s.method for s in again.overall.scores] == ["ours", "baseline", "input"]
    assert results.excluded == [] and len(results.votes) == 12 * config.per_rater
