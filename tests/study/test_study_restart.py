"""The real server process: votes survive ``kill -9`` and a restart mid-study, and raw HTTP
requests (no client-side URL clean-up) cannot leave the study's folders."""

from __future__ import annotations

import http.client
import json
import sqlite3

import pytest
from study_helpers import ServerProcess

from vqe.study.config import DB_NAME


def request(server: ServerProcess, method: str, path: str, body: dict | None = None):
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        headers = {"content-type": "application/json"} if body is not None else {}
        connection.request(method, path, json.dumps(body) if body is not None else None, headers)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def test_votes_survive_kill_and_restart(study) -> None:
    root, config = study
    token = config.token
    server = ServerProcess(root).start()
    try:
        status, body = request(server, "POST", f"/s/{token}/api/raters", {"name": "kim"})
        assert status == 201
        key = json.loads(body)["rater"]
        trial = json.loads(request(server, "GET", f"/s/{token}/api/next?rater={key}")[1])
        voted = []
        for _ in range(3):
            status, body = request(server, "POST", f"/s/{token}/api/votes",
                                   {"rater": key, "assignment": trial["assignment"], "vote": 2})
            assert status == 200
            voted.append(trial["assignment"])
            trial = json.loads(body)
        server.kill()  # SIGKILL right after the third acknowledged vote
        with sqlite3.connect(root / DB_NAME) as connection:  # what is on disk now
            rows = connection.execute("SELECT assignment_id FROM votes ORDER BY 1").fetchall()
        assert [r for (r,) in rows] == voted
        server.start()
        resumed = json.loads(request(server, "GET", f"/s/{token}/api/next?rater={key}")[1])
        assert resumed["assignment"] == trial["assignment"] and resumed["voted"] == 3
        status, _ = request(server, "POST", f"/s/{token}/api/votes",
                            {"rater": key, "assignment": voted[0], "vote": 4})
        assert status == 409  # the vote from before the kill still counts as the one vote
        while not resumed["done"]:
            status, body = request(server, "POST", f"/s/{token}/api/votes",
                                   {"rater": key, "assignment": resumed["assignment"], "vote": 3})
            assert status == 200
            resumed = json.loads(body)
        with sqlite3.connect(root / DB_NAME) as connection:
            count = connection.execute("SELECT COUNT(*) FROM votes").fetchone()[0]
            assigned = connection.execute("SELECT COUNT(*) FROM assignments").fetchone()[0]
        assert count == assigned == resumed["total"]
    finally:
        server.kill()


@pytest.fixture(scope="module")
def running(tmp_path_factory, method_folders):
    from vqe.study.create import create_study

    root = tmp_path_factory.mktemp("raw") / "study"
    config = create_study(root, method_folders, repeats=1, gold_rate=0.0)
    (root.parent / "outside.txt").write_text("secret")
    server = ServerProcess(root).start()
    yield server, config
    server.kill()


@pytest.mark.parametrize("tail", [
    "../../../study.json", "../api/raters", "..%2f..%2fstudy.json", "%2e%2e/%2e%2e/study.json",
    "%2e%2e%2f%2e%2e%2f%2e%2e%2foutside.txt", "..\\..\\study.json", "/etc/passwd",
    "%2Fetc%2Fpasswd", "....//....//study.json", "%c0%ae%c0%ae/study.json",
])
def test_raw_traversal_is_refused(running, tail: str) -> None:
    server, config = running
    status, body = request(server, "GET", f"/s/{config.token}/static/{tail}")
    assert status == 404, (tail, body[:200])
    assert b"secret" not in body and config.token.encode() not in body
