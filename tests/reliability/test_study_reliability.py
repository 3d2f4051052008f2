"""Reliability of the preference study (``vqe.study``): each case as a user or a client meets it.

* ``export`` onto the study's own files (its database, config, videos — directly, through ``..``
  or a symlink) is refused and the study survives; a votes CSV is replaced atomically.
* Raters who join and never vote release their assignments after ``assignment_timeout`` (an
  injected clock: no sleeping), so later raters get trials; no vote is lost or doubled.
* The server caps request bodies (413 without reading the rest), and answers 4xx — never 500 —
  to ids beyond SQLite's 64-bit integers, deeply nested JSON and unencodable text.
* ``study.json`` is validated key by key; ``serve`` on a busy port fails before printing URLs.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import json
import os
import random
import socket
import sqlite3
import subprocess
import sys
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from vqe.cli.study import main as study_main
from vqe.study import db as study_db
from vqe.study import server as study_server
from vqe.study.config import CONFIG_NAME, DB_NAME, StudyConfig, StudyError, read_config
from vqe.study.create import create_study
from vqe.study.design import PAIR, plan_rater
from vqe.study.server import create_app
from vqe.video import write_video

with warnings.catch_warnings():  # newer Starlette prefers httpx2 for its TestClient
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

METHODS = ("input", "baseline", "ours")
VIDEOS = ("clip_a.mp4", "clip_b.mp4")  # 3 methods × 2 videos: 6 comparisons


@pytest.fixture(scope="module")
def method_folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("methods")
    folders = {}
    for index, name in enumerate(VIDEOS):
        for shade, method in enumerate(METHODS):
            frames = [np.full((32, 32, 3), 40 + 60 * shade + 10 * index + t, np.uint8)
                      for t in range(6)]
            write_video(root / method / name, frames, crf=23, preset="ultrafast")
            folders[method] = root / method
    return folders


def make_study(tmp_path: Path, folders: dict[str, Path], **options) -> tuple[Path, StudyConfig]:
    root = tmp_path / "study"
    options = {"repeats": 3, "gold_rate": 0.0, "seed": 1, **options}
    return root, create_study(root, folders, **options)


class Clock:
    """An injected ``time.time``: tests move it on instead of sleeping."""

    def __init__(self, start: float = 1_000_000.0) -> None:
        self.value = start

    def __call__(self) -> float:
        return self.value

    def advance(self, seconds: float) -> None:
        self.value += seconds


def client_for(root: Path, **options) -> TestClient:
    return TestClient(create_app(root, **options))


def join(client: TestClient, token: str, name: str) -> dict:
    answer = client.post(f"/s/{token}/api/raters", json={"name": name})
    assert answer.status_code == 201, answer.text
    return answer.json()


def next_trial(client: TestClient, token: str, key: str) -> dict:
    answer = client.get(f"/s/{token}/api/next", params={"rater": key})
    assert answer.status_code == 200, answer.text
    return answer.json()


def vote(client: TestClient, token: str, key: str, assignment: int, value: int = 2):
    return client.post(f"/s/{token}/api/votes",
                       json={"rater": key, "assignment": assignment, "vote": value, "factor": ""})


def rows(root: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(root / DB_NAME) as connection:
        return connection.execute(sql).fetchall()


def study_state(root: Path) -> tuple[list[tuple], list[tuple], list[tuple]]:
    """Raters, assignments and votes: what an overwritten database would lose."""
    return (rows(root, "SELECT id, name FROM raters ORDER BY id"),
            rows(root, "SELECT id, rater_id, comparison FROM assignments ORDER BY id"),
            rows(root, "SELECT assignment_id, vote FROM votes ORDER BY 1"))


def cast_votes(root: Path, config: StudyConfig, raters: int = 2, each: int = 2) -> None:
    client = client_for(root)
    for index in range(raters):
        key = join(client, config.token, f"r{index}")["rater"]
        for _ in range(each):
            trial = next_trial(client, config.token, key)
            assert vote(client, config.token, key, trial["assignment"]).status_code == 200


# --------------------------------------------------------------------------- 1. export paths


@pytest.fixture
def voted_study(tmp_path: Path, method_folders) -> tuple[Path, StudyConfig]:
    root, config = make_study(tmp_path, method_folders)
    cast_votes(root, config)
    return root, config


def run_cli(argv: list[str], capsys: pytest.CaptureFixture) -> tuple[int, str, str]:
    try:
        code = study_main(argv)
    except SystemExit as exit_:  # uvicorn exits on its own errors
        code = exit_.code
    out, err = capsys.readouterr()
    return code, out, err


OWN_FILES = [
    "study.sqlite", "study.json", "study.sqlite-wal", "study.sqlite-shm",
    "videos/ours/clip_a.mp4", "videos/ours/new.csv", "gold/clip_a.mp4", "gold/votes.csv",
    "videos", ".", "videos/../study.sqlite", "videos/ours/../../study.json",
]


@pytest.mark.parametrize("option", ["out", "--details"])
@pytest.mark.parametrize("target", OWN_FILES)
def test_export_refuses_the_study_own_files(voted_study, capsys, tmp_path, option, target) -> None:
    root, _ = voted_study
    before = study_state(root)
    config_text = (root / CONFIG_NAME).read_text()
    video = (root / "videos/ours/clip_a.mp4").read_bytes()
    own = str(root / target)
    argv = (["export", str(root), own] if option == "out"
            else ["export", str(root), str(tmp_path / "votes.csv"), "--details", own])
    code, out, err = run_cli(argv, capsys)
    assert code == 1 and "wrote" not in out
    assert err.count("\n") == 1 and err.startswith("error: ") and own in err, err
    assert "study's own" in err and "choose" in err
    assert study_state(root) == before and before[2]  # raters, assignments, votes all there
    assert (root / CONFIG_NAME).read_text() == config_text
    assert (root / "videos/ours/clip_a.mp4").read_bytes() == video
    assert not (root / "videos/ours/new.csv").exists() and not (root / "gold/votes.csv").exists()
    assert not (tmp_path / "votes.csv").exists()  # nothing written when one path is refused


def test_export_refuses_links_to_the_study(voted_study, capsys, tmp_path) -> None:
    root, _ = voted_study
    before = study_state(root)
    (tmp_path / "db_link.csv").symlink_to(root / DB_NAME)
    (tmp_path / "videos_link").symlink_to(root / "videos")
    (tmp_path / "hard.csv").hardlink_to(root / CONFIG_NAME)
    for out in ("db_link.csv", "videos_link/votes.csv", "hard.csv"):
        code, _, err = run_cli(["export", str(root), str(tmp_path / out)], capsys)
        assert code == 1 and str(tmp_path / out) in err and "study's own" in err, (out, err)
    assert study_state(root) == before
    assert json.loads((tmp_path / "hard.csv").read_text())["methods"] == list(METHODS)


def test_export_replaces_an_earlier_csv_atomically(voted_study, capsys, tmp_path, monkeypatch):
    root, config = voted_study
    out = tmp_path / "votes.csv"
    out.write_text("left,right,vote,factor,rater\nold,row,1,,x\n")
    code, printed, _ = run_cli(["export", str(root), str(out)], capsys)
    assert code == 0 and "wrote 4 votes" in printed
    assert len(pd.read_csv(out)) == 4  # a re-run replaces the earlier votes CSV
    earlier = out.read_text()

    def interrupted(frame, handle, *args, **kwargs):
        handle.write("left,right,vo")  # half a file, then the export dies
        raise KeyboardInterrupt

    monkeypatch.setattr(pd.DataFrame, "to_csv", interrupted)
    with pytest.raises(KeyboardInterrupt):
        study_main(["export", str(root), str(out)])
    assert out.read_text() == earlier  # the earlier export is whole
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_export_refuses_to_replace_what_is_not_a_votes_csv(voted_study, capsys, tmp_path):
    root, _ = voted_study
    notes = tmp_path / "notes.txt"
    notes.write_text("my notes")
    code, _, err = run_cli(["export", str(root), str(notes)], capsys)
    assert code == 1 and str(notes) in err and "not a .csv" in err
    assert notes.read_text() == "my notes"
    folder = tmp_path / "folder.csv"
    folder.mkdir()
    code, _, err = run_cli(["export", str(root), str(folder)], capsys)
    assert code == 1 and "not a file" in err
    same = tmp_path / "both.csv"
    code, _, err = run_cli(["export", str(root), str(same), "--details", str(same)], capsys)
    assert code == 1 and "the same file" in err and not same.exists()


# --------------------------------------------------------------------------- 2. idle raters


def test_idle_raters_release_their_assignments(tmp_path, method_folders) -> None:
    """The issue's case: an 18-vote study, three raters join and (nearly) never vote."""
    root, config = make_study(tmp_path, method_folders, repeats=3)
    clock = Clock()
    client = client_for(root, assignment_timeout=600, now=clock)
    token = config.token
    idle = [join(client, token, f"idle{i}") for i in range(3)]
    first = next_trial(client, token, idle[0]["rater"])
    assert vote(client, token, idle[0]["rater"], first["assignment"]).status_code == 200
    clock.advance(599)
    assert join(client, token, "early")["full"]  # the idle raters still hold their trials
    clock.advance(2)
    late = join(client, token, "late")
    assert not late["full"] and late["total"] == config.per_rater == 6
    trial = next_trial(client, token, late["rater"])
    assert vote(client, token, late["rater"], trial["assignment"]).status_code == 200
    # An idle rater coming back may still vote: the vote counts, nothing is refused or lost.
    back = next_trial(client, token, idle[0]["rater"])
    assert back["voted"] == 1 and back["total"] == 6
    assert vote(client, token, idle[0]["rater"], back["assignment"]).status_code == 200
    assert vote(client, token, idle[0]["rater"], back["assignment"]).status_code == 409
    votes = rows(root, "SELECT assignment_id FROM votes ORDER BY 1")
    assert sorted([first["assignment"], back["assignment"], trial["assignment"]]) == [
        a for (a,) in votes]
    per_rater = rows(root, "SELECT rater_id, COUNT(*), COUNT(DISTINCT comparison) "
                           "FROM assignments GROUP BY rater_id")
    assert all(count == distinct for _, count, distinct in per_rater)


def test_only_idle_unvoted_assignments_are_released(tmp_path, method_folders) -> None:
    """Votes and active raters' trials keep counting; only an idle rater's open ones free up."""
    root, config = make_study(tmp_path, method_folders, repeats=1, per_rater=3)
    clock = Clock()
    client = client_for(root, assignment_timeout=60, now=clock)
    token = config.token
    a = join(client, token, "a")["rater"]
    trial = next_trial(client, token, a)
    assert vote(client, token, a, trial["assignment"]).status_code == 200
    b = join(client, token, "b")["rater"]
    clock.advance(100)
    next_trial(client, token, b)  # b is active, a idle for 100 s
    c = join(client, token, "c")
    assert c["total"] == 2  # a's two unvoted comparisons; a's vote and b's three still count
    comparisons = dict(rows(root, "SELECT r.name, group_concat(a.comparison, '|') FROM "
                                  "assignments a JOIN raters r ON r.id = a.rater_id "
                                  "LEFT JOIN votes v ON v.assignment_id = a.id "
                                  "WHERE v.assignment_id IS NULL GROUP BY r.name"))
    assert set(comparisons["c"].split("|")) == set(comparisons["a"].split("|"))
    assert join(client, token, "d")["full"]  # c is active now


def test_a_rater_told_full_gets_released_trials_later(tmp_path, method_folders) -> None:
    root, config = make_study(tmp_path, method_folders, repeats=1)
    clock = Clock()
    client = client_for(root, assignment_timeout=60, now=clock)
    token = config.token
    join(client, token, "idle")
    full = join(client, token, "waiting")
    assert full["full"] and next_trial(client, token, full["rater"])["full"]
    clock.advance(61)
    again = next_trial(client, token, full["rater"])  # the page reloads with the same key
    assert not again["done"] and again["total"] == 6


def test_raters_joining_at_once_never_overfill(tmp_path, method_folders) -> None:
    root, config = make_study(tmp_path, method_folders, repeats=2, per_rater=4)
    clock = Clock()
    client = client_for(root, assignment_timeout=60, now=clock)
    for index in range(3):  # 12 slots of 12 taken, then all released
        join(client, config.token, f"idle{index}")
    clock.advance(61)
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def join_now(name: str) -> None:
        connection = study_db.connect(root / DB_NAME)
        try:
            barrier.wait()
            rng = random.Random(name)
            study_db.add_rater(connection, name, lambda assigned: plan_rater(config, assigned, rng),
                               now=clock, idle_after=60)
        except BaseException as error:  # noqa: B036 (reported below)
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=join_now, args=(f"new{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    live = rows(root, "SELECT a.comparison, COUNT(*) FROM assignments a JOIN raters r "
                      "ON r.id = a.rater_id WHERE r.name LIKE 'new%' GROUP BY 1")
    assert len(live) == 6 and {count for _, count in live} == {2}  # 12 slots, none twice


def test_an_old_database_is_upgraded(tmp_path, method_folders) -> None:
    """A study.sqlite from before the activity column still serves and keeps its votes."""
    root, config = make_study(tmp_path, method_folders, repeats=1)
    client = client_for(root)
    key = join(client, config.token, "old")["rater"]
    trial = next_trial(client, config.token, key)
    assert vote(client, config.token, key, trial["assignment"]).status_code == 200
    with sqlite3.connect(root / DB_NAME) as connection:
        connection.execute("ALTER TABLE raters DROP COLUMN seen")
    client = client_for(root)
    assert next_trial(client, config.token, key)["voted"] == 1
    assert rows(root, "SELECT COUNT(*) FROM votes") == [(1,)]
    assert read_config(root) == config


# --------------------------------------------------------------------------- 3. request limits


def post_stream(app, path: str, chunks: Iterator[bytes], headers=()) -> tuple[int, int]:
    """POST ``chunks`` straight to the ASGI app; (status, bytes the app consumed)."""
    consumed, status = 0, 0

    async def receive() -> dict:
        nonlocal consumed
        chunk = next(chunks, None)
        if chunk is None:
            return {"type": "http.request", "body": b"", "more_body": False}
        consumed += len(chunk)
        return {"type": "http.request", "body": chunk, "more_body": True}

    async def send(message: dict) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
        "root_path": "", "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80),
        "headers": [(b"content-type", b"application/json"), *headers],
    }
    asyncio.run(app(scope, receive, send))
    return status, consumed


HUNDRED_MB = 100 * 2**20


def megabytes(total: int = HUNDRED_MB) -> Iterator[bytes]:
    chunk = b" " * 2**16
    for _ in range(total // len(chunk)):
        yield chunk


@pytest.mark.parametrize("endpoint", ["raters", "votes"])
def test_a_huge_body_is_refused_unread(tmp_path, method_folders, endpoint) -> None:
    root, config = make_study(tmp_path, method_folders)
    app = create_app(root)
    path = f"/s/{config.token}/api/{endpoint}"
    status, consumed = post_stream(app, path, megabytes())  # chunked: no length given
    assert status == 413 and consumed <= study_server.MAX_BODY + 2**16
    declared = [(b"content-length", str(HUNDRED_MB).encode())]
    status, consumed = post_stream(app, path, megabytes(), declared)
    assert status == 413 and consumed == 0
    answer = client_for(root).post(path, content=b" " * (64 * 1024 + 1),
                                   headers={"content-type": "application/json"})
    assert answer.status_code == 413 and "64 KiB" in answer.json()["error"]


def peak_memory_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        return int(next(line for line in status if line.startswith("VmHWM")).split()[1])


def test_the_real_server_answers_413_without_holding_the_body(tmp_path, method_folders) -> None:
    """uvicorn in its own process (``--port 0``: the printed URL names the port it got)."""
    root, config = make_study(tmp_path, method_folders)
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    server = subprocess.Popen([sys.executable, "-m", "vqe.cli.study", "serve", str(root), "--port",
                               "0"], stdout=subprocess.PIPE, text=True, env=env)
    try:
        port = int(server.stdout.readline().split(":")[-1].split("/")[0])
        path = f"/s/{config.token}/api/votes"
        before = peak_memory_kib(server.pid)
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        connection.putrequest("POST", path)
        connection.putheader("content-length", str(HUNDRED_MB))
        connection.endheaders()
        answer = connection.getresponse()  # answered before any of the 100 MB is sent
        assert answer.status == 413 and b"64 KiB" in answer.read()
        connection.close()
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        connection.putrequest("POST", path)
        connection.putheader("transfer-encoding", "chunked")
        connection.endheaders()
        with contextlib.suppress(OSError):  # the server may close the connection early
            for chunk in megabytes():
                connection.send(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            connection.send(b"0\r\n\r\n")
        assert connection.getresponse().status == 413
        connection.close()
        assert peak_memory_kib(server.pid) - before < 20 * 1024  # the issue saw 459 MB
    finally:
        server.kill()
        server.wait(timeout=10)
        server.stdout.close()


def test_out_of_range_ids_and_deep_json_are_4xx(tmp_path, method_folders) -> None:
    root, config = make_study(tmp_path, method_folders)
    client = TestClient(create_app(root), raise_server_exceptions=False)
    token = config.token
    key = join(client, token, "r")["rater"]
    for assignment in (10**30, -(10**30), 2**63, -(2**63) - 1):
        answer = vote(client, token, key, assignment)
        assert answer.status_code == 404 and "error" in answer.json(), (assignment, answer.text)
    media = client.get(f"/s/{token}/media/{10**30}/left", params={"rater": key})
    assert media.status_code == 404
    headers = {"content-type": "application/json"}
    for endpoint in ("raters", "votes"):
        deep = b"[" * 30000 + b"]" * 30000  # under the body cap, deeper than Python's json goes
        answer = client.post(f"/s/{token}/api/{endpoint}", content=deep, headers=headers)
        assert answer.status_code == 400 and "error" in answer.json()
        deeper = b"[" * 100000 + b"]" * 100000
        answer = client.post(f"/s/{token}/api/{endpoint}", content=deeper, headers=headers)
        assert answer.status_code == 413
    surrogate = b'{"name": "\\ud800"}'  # valid JSON, not encodable text
    answer = client.post(f"/s/{token}/api/raters", content=surrogate, headers=headers)
    assert answer.status_code == 400 and "name" in answer.json()["error"]
    bad_key = b'{"rater": "\\udfff", "assignment": 1, "vote": 3}'
    assert client.post(f"/s/{token}/api/votes", content=bad_key,
                       headers=headers).status_code == 403
    trial = next_trial(client, token, key)  # the server is fine afterwards
    assert vote(client, token, key, trial["assignment"]).status_code == 200


# --------------------------------------------------------------------------- 4. study.json


BAD_CONFIGS = [
    ("methods", "ours", "a list of method names"),
    ("methods", ["ours", "a/b"], "a list of method names"),
    ("methods", ["ours", 3], "a list of method names"),
    ("methods", ["ours"], "at least 2"),
    ("methods", ["ours", "ours", "input"], "twice"),
    ("videos", ["../study.json"], "plain video file names"),
    ("videos", ["sub/clip.mp4"], "plain video file names"),
    ("videos", ["clip.exe"], "plain video file names"),
    ("videos", [], "at least one"),
    ("videos", "clip_a.mp4", "a list"),
    ("repeats", "3", "an integer ≥ 1"),
    ("repeats", True, "an integer ≥ 1"),
    ("repeats", 0, "an integer ≥ 1"),
    ("per_rater", 2.0, "an integer"),
    ("per_rater", 7, "1…6"),
    ("gold_rate", 1.5, "a number in [0, 1]"),
    ("gold_rate", "0.1", "a number in [0, 1]"),
    ("gold_source", "nobody", "one of the methods"),
    ("seed", None, "an integer"),
    ("token", "", "URL-safe text"),
    ("token", ["x"], "URL-safe text"),
    ("admin_token", "a/b", "URL-safe text"),
    ("extra", 1, "unknown key"),
]


@pytest.mark.parametrize(("key", "value", "message"), BAD_CONFIGS)
def test_study_json_is_validated(tmp_path, method_folders, key, value, message) -> None:
    root, _ = make_study(tmp_path, method_folders)
    path = root / CONFIG_NAME
    data = json.loads(path.read_text())
    data[key] = value
    path.write_text(json.dumps(data))
    with pytest.raises(StudyError) as raised:
        read_config(root)
    text = str(raised.value)
    assert str(path) in text and repr(key) in text and message in text and "\n" not in text


def test_study_json_shapes_and_secrets(tmp_path, method_folders, capsys) -> None:
    root, config = make_study(tmp_path, method_folders)
    path = root / CONFIG_NAME
    assert read_config(root) == config  # a file written by create (the old format) still reads
    data = json.loads(path.read_text())
    for text, expected in [
        ("[1, 2]", "a JSON object"), ("{", "not valid JSON"), ("[" * 100000, "not valid JSON"),
        (json.dumps({k: v for k, v in data.items() if k != "seed"}), "'seed' is missing"),
        (json.dumps({**data, "admin_token": data["token"]}), "must differ"),
        (json.dumps({**data, "version": 99}), "format version 99"),
    ]:
        path.write_text(text)
        with pytest.raises(StudyError, match="study.json") as raised:
            read_config(root)
        assert expected in str(raised.value), (text[:40], raised.value)
    path.write_bytes(b"\xff\xfe")
    code, _, err = run_cli(["export", str(root), str(tmp_path / "v.csv")], capsys)
    assert code == 1 and err.startswith(f"error: {path}") and err.count("\n") == 1


# --------------------------------------------------------------------------- 5. busy port


def test_serve_on_a_busy_port_fails_before_printing_urls(tmp_path, method_folders, capsys):
    root, _ = make_study(tmp_path, method_folders)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        code, out, err = run_cli(["serve", str(root), "--port", str(port)], capsys)
    assert code == 1
    assert err == f"error: port {port} on 127.0.0.1 is in use; choose another with --port\n"
    assert "http://" not in out and "raters" not in out


def test_serve_refuses_a_bad_timeout(tmp_path, method_folders, capsys) -> None:
    root, _ = make_study(tmp_path, method_folders)
    code, out, err = run_cli(["serve", str(root), "--assignment-timeout", "0"], capsys)
    assert code == 1 and "--assignment-timeout" in err and "http://" not in out


def test_idle_time_is_counted_with_the_rows_activity(tmp_path, method_folders) -> None:
    """Plans made outside the server (db.add_rater with no timeout) count every assignment."""
    root, config = make_study(tmp_path, method_folders, repeats=1)
    connection = study_db.connect(root / DB_NAME)
    try:
        plan = lambda assigned: plan_rater(config, assigned, random.Random(0))  # noqa: E731
        assert study_db.add_rater(connection, "a", plan)[2] == 6
        assert study_db.add_rater(connection, "b", plan)[2] == 0
        assert all(t.kind == PAIR for t in study_db.assigned_trials(connection))
    finally:
        connection.close()
