"""The study database: SQLite in WAL mode, one file per study (``STUDY/study.sqlite``).

Every write is its own committed transaction with ``synchronous=FULL``, so a vote the server
acknowledged survives the server being killed (``kill -9``) or the machine losing power. The
schema itself enforces the rules the server checks: one vote per assignment (the vote's primary
key is its assignment), votes 1–5, a rater never assigned the same comparison twice (a partial
unique index). Several server threads (and processes) may use the file at once; a new rater's
plan is made inside ``BEGIN IMMEDIATE`` so two raters joining together see each other's
assignments.

Idle raters. ``raters.seen`` is when a rater was last active (joined, fetched their next trial,
voted). When a plan is made with ``idle_after`` seconds, an assignment without a vote whose rater
has been idle longer than that no longer counts as taken (:func:`assigned_trials`), so a rater
who joins and walks away holds their comparisons only for that long. Nothing is deleted: the
idle rater keeps their assignments and may come back and vote on them; that vote is stored like
any other (a comparison may then get one vote more than ``repeats`` — extra data, never a lost
or refused vote). A rater whose plan was empty ("the study is full") gets one when they next
fetch a trial and released comparisons exist (:func:`fill_empty_rater`). Databases made before
the ``seen`` column get it on :func:`connect`, filled from their joins, trials shown and votes.
"""

from __future__ import annotations

import secrets
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from vqe.study.design import KINDS, PAIR, Trial

Clock = Callable[[], float]
#: SQLite's INTEGER range: an id outside it cannot name a row (and would not bind).
INTEGER_MIN, INTEGER_MAX = -(2**63), 2**63 - 1

SCHEMA = f"""
CREATE TABLE IF NOT EXISTS raters (
    id INTEGER PRIMARY KEY,
    key TEXT NOT NULL UNIQUE,           -- the rater's secret, kept by their browser
    name TEXT NOT NULL,
    created REAL NOT NULL,
    seen REAL                           -- last join, trial fetched or vote: idle since then
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
    _add_seen_column(connection)
    return connection


@contextmanager
def _immediate(connection: sqlite3.Connection) -> Iterator[None]:
    """One write transaction, taken at once (so what it reads no other writer changes)."""
    connection.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")


def _add_seen_column(connection: sqlite3.Connection) -> None:
    """Upgrade a database made before ``raters.seen``: last activity from the rows it has."""
    if "seen" in _rater_columns(connection):
        return
    with _immediate(connection):
        if "seen" not in _rater_columns(connection):  # another process may have just done it
            connection.execute("ALTER TABLE raters ADD COLUMN seen REAL")
            connection.execute(
                "UPDATE raters SET seen = MAX(created, "
                "COALESCE((SELECT MAX(a.shown_at) FROM assignments a "
                "WHERE a.rater_id = raters.id), 0), "
                "COALESCE((SELECT MAX(v.created) FROM votes v JOIN assignments a "
                "ON a.id = v.assignment_id WHERE a.rater_id = raters.id), 0))"
            )


def _rater_columns(connection: sqlite3.Connection) -> set[str]:
    return {row["name"] for row in connection.execute("PRAGMA table_info(raters)")}


def valid_id(value: int) -> bool:
    """Whether an integer can be a row id (False for one beyond SQLite's 64 bits)."""
    return INTEGER_MIN <= value <= INTEGER_MAX


def _comparison_key(trial: Trial) -> str:
    return "\x1f".join(trial.comparison)


def _trial(row: sqlite3.Row) -> Trial:
    return Trial(row["video"], row["left_method"], row["right_method"], row["kind"])


def assigned_trials(
    connection: sqlite3.Connection, active_since: float | None = None
) -> list[Trial]:
    """Every assigned trial; with ``active_since``, only those voted on or whose rater has
    been active since then (an idle rater's open trials are free for others)."""
    sql = "SELECT a.video, a.left_method, a.right_method, a.kind FROM assignments a"
    if active_since is None:
        return [_trial(row) for row in connection.execute(sql)]
    rows = connection.execute(
        sql + " JOIN raters r ON r.id = a.rater_id "
        "LEFT JOIN votes v ON v.assignment_id = a.id "
        "WHERE v.assignment_id IS NOT NULL OR COALESCE(r.seen, r.created) >= ?",
        (active_since,),
    )
    return [_trial(row) for row in rows]


Plan = Callable[[list[Trial]], list[Trial]]


def add_rater(
    connection: sqlite3.Connection,
    name: str,
    plan: Plan,
    now: Clock = time.time,
    idle_after: float | None = None,
) -> tuple[int, str, int]:
    """Create a rater with the trials ``plan(assigned so far)`` returns; (id, key, trials).

    With ``idle_after`` (seconds), the open assignments of raters idle longer than that are not
    counted as assigned (see the module docstring)."""
    key = secrets.token_urlsafe(18)
    with _immediate(connection):  # the plan must see every other rater's assignments
        at = now()
        cursor = connection.execute(
            "INSERT INTO raters (key, name, created, seen) VALUES (?, ?, ?, ?)",
            (key, name, at, at),
        )
        rater_id = int(cursor.lastrowid)
        count = _assign(connection, rater_id, plan, _since(at, idle_after))
    return rater_id, key, count


def fill_empty_rater(
    connection: sqlite3.Connection,
    rater_id: int,
    plan: Plan,
    now: Clock = time.time,
    idle_after: float | None = None,
) -> int:
    """Plan the trials of a rater who has none (they joined a full study) now that idle
    raters' comparisons may be free; the number of trials given (0: still full)."""
    if progress(connection, rater_id)[1]:
        return 0
    with _immediate(connection):
        if progress(connection, rater_id)[1]:  # another request has just filled it
            return 0
        return _assign(connection, rater_id, plan, _since(now(), idle_after))


def _since(now: float, idle_after: float | None) -> float | None:
    return None if idle_after is None else now - idle_after


def _assign(
    connection: sqlite3.Connection, rater_id: int, plan: Plan, active_since: float | None
) -> int:
    """Insert ``plan(...)``'s trials for the rater (inside the caller's transaction)."""
    trials = plan(assigned_trials(connection, active_since))
    connection.executemany(
        "INSERT INTO assignments (rater_id, position, video, left_method, right_method, "
        "kind, comparison) VALUES (?, ?, ?, ?, ?, ?, ?)",
        [
            (rater_id, index, t.video, t.left, t.right, t.kind, _comparison_key(t))
            for index, t in enumerate(trials)
        ],
    )
    return len(trials)


def rater_by_key(connection: sqlite3.Connection, key: str) -> sqlite3.Row | None:
    if not is_text(key) or not key:
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


def is_text(value: object) -> bool:
    """Text SQLite can store (JSON may hold lone surrogates, which UTF-8 cannot encode)."""
    if not isinstance(value, str):
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def next_assignment(
    connection: sqlite3.Connection, rater_id: int, now: Clock = time.time
) -> Assignment | None:
    """The rater's first assignment without a vote (None when all are voted); marks it shown
    and the rater active."""
    at = now()
    with _immediate(connection):  # one durable commit for both marks
        connection.execute("UPDATE raters SET seen = ? WHERE id = ?", (at, rater_id))
        row = connection.execute(
            "SELECT a.* FROM assignments a LEFT JOIN votes v ON v.assignment_id = a.id "
            "WHERE a.rater_id = ? AND v.assignment_id IS NULL ORDER BY a.position LIMIT 1",
            (rater_id,),
        ).fetchone()
        if row is not None:
            connection.execute(
                "UPDATE assignments SET shown_at = ? WHERE id = ? AND shown_at IS NULL",
                (at, row["id"]),
            )
    if row is None:
        return None
    done, total = progress(connection, rater_id)
    return Assignment(int(row["id"]), int(row["position"]), total, done, _trial(row))


def assignment_of(
    connection: sqlite3.Connection, rater_id: int, assignment_id: int
) -> sqlite3.Row | None:
    """The assignment if it is this rater's (None otherwise, whoever it belongs to)."""
    if not valid_id(assignment_id):
        return None
    return connection.execute(
        "SELECT * FROM assignments WHERE id = ? AND rater_id = ?", (assignment_id, rater_id)
    ).fetchone()


def record_vote(
    connection: sqlite3.Connection,
    rater_id: int,
    assignment_id: int,
    vote: int,
    factor: str,
    now: Clock = time.time,
) -> None:
    """Store one validated vote (and mark the rater active); :class:`VoteRejected` for another
    rater's or an unknown assignment (404) and for a second vote on one assignment (409)."""
    row = assignment_of(connection, rater_id, assignment_id)
    if row is None:
        raise VoteRejected(404, f"assignment {assignment_id} is not one of this rater's")
    at = now()
    seconds = at - row["shown_at"] if row["shown_at"] is not None else None
    try:
        with _immediate(connection):  # the vote and the activity: one durable commit
            connection.execute(
                "INSERT INTO votes (assignment_id, vote, factor, created, seconds) "
                "VALUES (?, ?, ?, ?, ?)",
                (assignment_id, vote, factor, at, seconds),
            )
            connection.execute("UPDATE raters SET seen = ? WHERE id = ?", (at, rater_id))
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
