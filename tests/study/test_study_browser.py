"""The study in a real browser: headless Chromium (Debian's ``chromium`` + ``chromium-driver``,
driven by Selenium) runs a short study with two raters at once, by keyboard.

Rater A answers the gold questions right and prefers ours > baseline > input (weak votes, some
with a deciding factor); rater B answers every trial with 1, so fails the gold questions and is
excluded. Checked: synchronised playback, the database rows, the export, the results page. The
screenshots go to the test's tmp dir and to ``/tmp/study_shots/``.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import time
from pathlib import Path

import pytest
from study_helpers import ServerProcess

from vqe.preference.bradley_terry import analyse_votes, read_votes
from vqe.study.config import DB_NAME
from vqe.study.design import DEGRADED, GOLD_DEGRADED, GOLD_SAME
from vqe.study.export import export_votes

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
MISSING = (
    "needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver; "
    ".ci/run installs them)"
)
if (CHROMIUM is None or DRIVER is None) and os.environ.get("VQE_REQUIRE_BROWSER"):
    raise RuntimeError(f"VQE_REQUIRE_BROWSER is set but the browser is missing: {MISSING}")
pytestmark = pytest.mark.skipif(CHROMIUM is None or DRIVER is None, reason=MISSING)
SHOTS = Path("/tmp/study_shots")
RANK = {"input": 0, "baseline": 1, "ours": 2}
FACTOR_KEYS = ("c", "b", "s", "")


def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
        "--autoplay-policy=no-user-gesture-required", "--window-size=1280,900",
        "--disable-extensions", "--no-first-run",
    ):
        options.add_argument(argument)
    return webdriver.Chrome(service=Service(executable_path=DRIVER), options=options)


def trial_of(study: Path, assignment: int) -> sqlite3.Row:
    with sqlite3.connect(study / DB_NAME) as connection:
        connection.row_factory = sqlite3.Row
        return connection.execute("SELECT * FROM assignments WHERE id = ?", (assignment,)).fetchone()


def good_answer(row: sqlite3.Row) -> str:
    """What an attentive rater presses: gold right, else a weak vote for the better method."""
    left, right = row["left_method"], row["right_method"]
    if row["kind"] == GOLD_SAME:
        return "3"
    if row["kind"] == GOLD_DEGRADED:
        return "5" if left == DEGRADED else "1"
    return "2" if RANK[left] > RANK[right] else "4"


class Rater:
    def __init__(self, name: str, url: str, study: Path, attentive: bool) -> None:
        self.name, self.study, self.attentive = name, study, attentive
        self.driver = browser()
        self.driver.get(url)
        self.votes = 0
        self.first_ready: float | None = None
        self.finished: float | None = None
        self.synced_checks: list[float] = []

    def state(self) -> str:
        return self.driver.execute_script("return document.body.dataset.state")

    def start(self) -> None:
        from selenium.webdriver.common.by import By

        self.driver.find_element(By.ID, "name").send_keys(self.name)
        self.driver.find_element(By.ID, "start").click()

    def wait(self, timeout: float = 30.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = self.state()
            if state in ("ready", "done"):
                return state
            time.sleep(0.02)
        raise AssertionError(f"{self.name}: page stuck in state {self.state()!r}")

    def check_sync(self, timeout: float = 10.0) -> None:
        """Both videos play, and at nearly the same time. Playback may start a moment after the
        page is ready (the browser buffers first; longer on a loaded machine), so poll."""
        deadline = time.monotonic() + timeout
        while True:
            left_t, right_t, paused, ready = self.driver.execute_script(
                "const l = document.getElementById('left'), r = document.getElementById('right');"
                "return [l.currentTime, r.currentTime, l.paused || r.paused, "
                "Math.min(l.readyState, r.readyState)];"
            )
            if (not paused and ready >= 2) or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert not paused and ready >= 2, f"{self.name}: the videos do not play"
        self.synced_checks.append(abs(left_t - right_t))

    def step(self, shot: Path | None = None) -> bool:
        """Answer the trial shown; False when the rater is done."""
        from selenium.webdriver.common.action_chains import ActionChains

        if self.wait() == "done":
            self.finished = self.finished or time.monotonic()
            return False
        self.first_ready = self.first_ready or time.monotonic()
        assignment = int(self.driver.execute_script("return document.body.dataset.assignment"))
        self.check_sync()
        if shot is not None:
            time.sleep(0.4)  # let a few frames play so the shot shows the videos moving
            self.driver.save_screenshot(str(shot))
        row = trial_of(self.study, assignment)
        keys = good_answer(row) if self.attentive else "1"
        factor = FACTOR_KEYS[self.votes % len(FACTOR_KEYS)] if keys in "1245" else ""
        ActionChains(self.driver).send_keys(factor + keys).perform()
        self.votes += 1
        deadline = time.monotonic() + 10  # the next trial (or the end) replaces this one
        while self.driver.execute_script("return document.body.dataset.assignment") == str(
            assignment
        ) and self.state() != "done":
            assert time.monotonic() < deadline, f"{self.name}: vote {keys} was not taken"
            time.sleep(0.01)
        return True

    def close(self) -> None:
        self.driver.quit()


def test_two_raters_in_chromium(study, tmp_path: Path) -> None:
    root, config = study
    server = ServerProcess(root).start()
    raters: list[Rater] = []
    try:
        url = f"{server.base}/s/{config.token}/"
        raters = [Rater("alice", url, root, True), Rater("bob", url, root, False)]
        for rater in raters:
            rater.start()
        voting_shot = tmp_path / "voting_page.png"
        active = list(raters)
        while active:  # the two browsers take turns, so both are mid-study at once
            for rater in list(active):
                shot = voting_shot if rater is raters[0] and rater.votes == 2 else None
                if not rater.step(shot):
                    active.remove(rater)
        alice = raters[0]
        minutes = (alice.finished - alice.first_ready) / 60
        rate = alice.votes / minutes
        print(f"\nkeyboard rater: {alice.votes} votes in {minutes * 60:.1f} s = {rate:.0f} votes/min; "
              f"max left/right time gap at the checks {max(alice.synced_checks):.3f} s")
        assert max(alice.synced_checks) < 0.25

        with sqlite3.connect(root / DB_NAME) as connection:
            raters_rows = connection.execute("SELECT id, name FROM raters ORDER BY id").fetchall()
            per_rater = connection.execute(
                "SELECT a.rater_id, COUNT(a.id), COUNT(v.assignment_id) FROM assignments a "
                "LEFT JOIN votes v ON v.assignment_id = a.id GROUP BY a.rater_id"
            ).fetchall()
            factors = connection.execute("SELECT DISTINCT factor FROM votes").fetchall()
        assert [name for _, name in raters_rows] == ["alice", "bob"]
        expected = config.per_rater + -(-config.per_rater * 3 // 10)  # + ceil(0.3 · n) gold
        assert [(n, m) for _, n, m in per_rater] == [(expected, expected)] * 2
        assert {f for (f,) in factors} >= {"colors", "brightness", "skintone", ""}

        exported = export_votes(root, tmp_path / "votes.csv")
        assert exported.excluded == ["2-bob"]
        votes = read_votes(exported.path)
        assert len(votes) == config.per_rater and set(votes["rater"]) == {"1-alice"}
        order = [s.method for s in analyse_votes(votes, n_bootstrap=200).overall.scores]
        assert order == ["ours", "baseline", "input"]

        driver = alice.driver
        driver.get(f"{server.base}/admin/{config.admin_token}/")
        from selenium.webdriver.common.by import By

        ranking = [row.text.split()[0] for row in driver.find_elements(
            By.CSS_SELECTOR, "#ranking tr")[1:]]
        assert ranking == ["ours", "baseline", "input"]
        assert "2-bob" in driver.find_element(By.ID, "excluded").text
        assert driver.find_element(By.ID, "plot").get_attribute("naturalWidth") != "0"
        height = driver.execute_script("return document.body.scrollHeight")
        driver.set_window_size(1280, max(900, height + 40))
        results_shot = tmp_path / "results_page.png"
        driver.save_screenshot(str(results_shot))
        SHOTS.mkdir(parents=True, exist_ok=True)
        for shot in (voting_shot, results_shot):
            assert shot.stat().st_size > 10_000
            shutil.copy(shot, SHOTS / shot.name)
    finally:
        for rater in raters:
            rater.close()
        server.kill()
