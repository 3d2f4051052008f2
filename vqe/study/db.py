"""The study database: SQLite in WAL mode, one file per study (``STUDY/study.sqlite``).

Every write is its own committed transaction with ``synchronous=FULL``, so a vote the server
acknowledged survives the server being killed (``kill -9``) or the machine losing power. The
schema itself enforces the rules the server checks: one vote per assignment (the vote's primary
key is its assignment), votes 1–5, a rater never assigned the same comparison twice (a partial
unique index). Several server threads (and processes) may use the file at once; a new rater's
plan is made inside ``BEGIN IMMEDIATE`` so two raters joining together see each other's
assignments.
"""

from __future__ import annotations

import secrets
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from vqe.study.design import KINDS, PAIR, Trial

SCHEMA = f"""
CREATE TABLE IF NOT EXISTS raters (
    id INTEGER PRIMARY KEY,
    key TEXT NOT NULL UNIQUE,           -- the rater's secret, kept by their browser
    name TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS assignments (
    id INTEGER PRIMARY KEY,
    rater_id INTEGER NOT NULL REFERENCES raters(id),
    position INTEGER NOT NULL,
    video TEXT NOT NULL,
    left_method TEXT NOT NULL,
    right_method TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN {KINDS!r}),
    comparison TEXT NOT NULL,           -- video + sorted methods: the same for both placements
    shown_at REAL,
    UNIQUE (rater_id, position)
);
CREATE UNIQUE INDEX IF NOT EXISTS one_comparison_per_rater
    ON assignments (rater_id, comparison) WHERE kind = '{PAIR}';
CREATE TABLE IF NOT EXISTS votes (
    assignment_id INTEGER PRIMARY KEY REFERENCES assignments(id),
    vote INTEGER NOT NULL CHECK (vote BETWEEN 1 AND 5),
    factor TEXT NOT NULL,
    created REAL NOT NULL,
    seconds REAL                        -- from the trial being shown to the vote
);
"""


class VoteRejected(ValueError):
    """A vote the server refuses; ``status`` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Assignment:
    id: int
    position: int  # 0-based
    total: int  # the rater's assignments
    done: int  # of them voted
    trial: Trial


def connect(path: str | Path) -> sqlite3.Connection:
    """Open (creating) the database; autocommit, WAL, durable commits, foreign keys on."""
    connection = sqlite3.connect(
        str(path), timeout=30, isolation_level=None, check_same_thread=False
    )
    connection.row_factory = sqlite3.Row
    mode = connection.execute("PRAGMA journal_mode=WAL").fetchone()[0]
    if mode.lower() != "wal":
        raise sqlite3.OperationalError(f"{path}: cannot switch to WAL mode (got {mode!r})")
    connection.execute("PRAGMA synchronous=FULL")
    connection.execute("PRAGMA foreign_keys=ON")
    connection.executescript(SCHEMA)
    return connection


def _comparison_key(trial: Trial) -> str:
    return "\x1f".join(trial.comparison)


def _trial(row: sqlite3.Row) -> Trial:
    return Trial(row["video"], row["left_method"], row["right_method"], row["kind"])


def assigned_trials(connection: sqlite3.Connection) -> list[Trial]:
    rows = connection.execute("SELECT video, left_method, right_method, kind FROM assignments")
    return [_trial(row) for row in rows]


def add_rater(
    connection: sqlite3.Connection, name: str, plan: Callable[[list[Trial]], list[Trial]]
) -> tuple[int, str, int]:
    """Create a rater with the trials ``plan(assigned so far)`` returns; (id, key, trials)."""
    key = secrets.token_urlsafe(18)
    connection.execute("BEGIN IMMEDIATE")  # the plan must see every other rater's assignments
    try:
        trials = plan(assigned_trials(connection))
        cursor = connection.execute(
            "INSERT INTO raters (key, name, created) VALUES (?, ?, ?)", (key, name, time.time())
        )
        rater_id = int(cursor.lastrowid)
        connection.executemany(
            "INSERT INTO assignments (rater_id, position, video, left_method, right_method, "
            "kind, comparison) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                (rater_id, index, t.video, t.left, t.right, t.kind, _comparison_key(t))
                for index, t in enumerate(trials)
            ],
        )
        connection.execute("COMMIT")
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    return rater_id, key, len(trials)


def rater_by_key(connection: sqlite3.Connection, key: str) -> sqlite3.Row | None:
    if not isinstance(key, str) or not key:
        return None
    return connection.execute("SELECT * FROM raters WHERE key = ?", (key,)).fetchone()


def progress(connection: sqlite3.Connection, rater_id: int) -> tuple[int, int]:
    """(voted, assigned) of one rater."""
    row = connection.execute(
        "SELECT COUNT(a.id), COUNT(v.assignment_id) FROM assignments a "
        "LEFT JOIN votes v ON v.assignment_id = a.id WHERE a.rater_id = ?",
        (rater_id,),
    ).fetchone()
    return int(row[1]), int(row[0])


def next_assignment(connection: sqlite3.Connection, rater_id: int) -> Assignment | None:
    """The rater's first assignment without a vote (None when all are voted); marks it shown."""
    row = connection.execute(
        "SELECT a.* FROM assignments a LEFT JOIN votes v ON v.assignment_id = a.id "
        "WHERE a.rater_id = ? AND v.assignment_id IS NULL ORDER BY a.position LIMIT 1",
        (rater_id,),
    ).fetchone()
    if row is None:
        return None
    connection.execute(
        "UPDATE assignments SET shown_at = ? WHERE id = ? AND shown_at IS NULL",
        (time.time(), row["id"]),
    )
    done, total = progress(connection, rater_id)
    return Assignment(int(row["id"]), int(row["position"]), total, done, _trial(row))


def assignment_of(
    connection: sqlite3.Connection, rater_id: int, assignment_id: int
) -> sqlite3.Row | None:
    """The assignment if it is this rater's (None otherwise, whoever it belongs to)."""
    return connection.execute(
        "SELECT * FROM assignments WHERE id = ? AND rater_id = ?", (assignment_id, rater_id)
    ).fetchone()


def record_vote(
    connection: sqlite3.Connection, rater_id: int, assignment_id: int, vote: int, factor: str
) -> None:
    """Store one validated vote; :class:`VoteRejected` for another rater's or an unknown
    assignment (404) and for a second vote on one assignment (409)."""
    row = assignment_of(connection, rater_id, assignment_id)
    if row is None:
        raise VoteRejected(404, f"assignment {assignment_id} is not one of this rater's")
    now = time.time()
    seconds = now - row["shown_at"] if row["shown_at"] is not None else None
    try:
        connection.execute(
            "INSERT INTO votes (assignment_id, vote, factor, created, seconds) "
            "VALUES (?, ?, ?, ?, ?)",
            (assignment_id, vote, factor, now, seconds),
        )
    except sqlite3.IntegrityError as error:
        if "UNIQUE" in str(error) or "PRIMARY KEY" in str(error):
            raise VoteRejected(409, f"assignment {assignment_id} already has a vote") from error
        raise


VOTE_COLUMNS = (
    "assignment", "rater_id", "rater_name", "position", "video", "left", "right", "kind",
    "vote", "factor", "created", "seconds",
)


def votes_frame(connection: sqlite3.Connection) -> pd.DataFrame:
    """Every vote with its assignment and rater, in the order they were cast."""
    rows = connection.execute(
        "SELECT a.id, r.id, r.name, a.position, a.video, a.left_method, a.right_method, a.kind, "
        "v.vote, v.factor, v.created, v.seconds FROM votes v "
        "JOIN assignments a ON a.id = v.assignment_id JOIN raters r ON r.id = a.rater_id "
        "ORDER BY v.created, a.id"
    ).fetchall()
    return pd.DataFrame([tuple(row) for row in rows], columns=list(VOTE_COLUMNS))


def raters_frame(connection: sqlite3.Connection) -> pd.DataFrame:
    rows = connection.execute(
        "SELECT r.id, r.name, COUNT(a.id), COUNT(v.assignment_id) FROM raters r "
        "LEFT JOIN assignments a ON a.rater_id = r.id "
        "LEFT JOIN votes v ON v.assignment_id = a.id GROUP BY r.id ORDER BY r.id"
    ).fetchall()
    return pd.DataFrame(
        [tuple(row) for row in rows], columns=["rater_id", "rater_name", "assigned", "voted"]
    )
