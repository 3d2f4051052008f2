"""Votes of the public P.910 crowdsourcing toolkit (github ``microsoft/P.910``), CCR method, as
the pairwise votes :mod:`vqe.preference.bradley_terry` reads.

The toolkit's result parser writes ``<answers>_votes_per_worker.csv``, one row per accepted
rating, with the columns ``workerid``, ``file`` (the URL of the *processed* clip) and ``vote``
(plus ``HITId``, ``short_file_name`` and the condition columns of its config). For CCR the vote
is the comparison category rating of the processed clip against its reference, from −3 (much
worse) to +3 (much better); the toolkit's page already undoes its random A/B order, so the sign
is always "processed relative to reference". Those are the rows this module reads.

**Conversion.** Each rating becomes one vote with the processed clip's method on the left and
the reference on the right: +3 / +2 → 1 (strong preference for the processed clip), +1 → 2,
0 → 3, −1 → 4, −2 / −3 → 5. The full 7-point scale's "better" (±2) counts as a strong
preference, "slightly" (±1) as weak; the 4-point JVET variant (±3, ±1) maps the same way. The
rater is the ``workerid``; no deciding factor is recorded.

**Which method a clip is.** ``method_column`` names a column that holds it (e.g. a condition
key of the toolkit's config); otherwise ``method_pattern``, a regular expression with a group
named ``method``, is searched in the clip URL; without either the method is the name of the
folder holding the clip (``https://host/clips/ours/video_01.mp4`` → ``ours``). All references
are one method, ``reference`` (CCR compares every clip with the same unprocessed source), so the
Bradley–Terry scores rank the methods against it and, through it, against each other.

The command is ``vqe p910`` (:mod:`vqe.cli.p910`)::

    vqe p910 batch_votes_per_worker.csv votes.csv [--reference input]
"""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath
from urllib.parse import urlparse

import pandas as pd

from vqe.preference.bradley_terry import (
    FACTOR,
    LEFT,
    RATER,
    RIGHT,
    VOTE,
    VoteError,
    read_vote_table,
    validate_votes,
)

WORKER, FILE, CCR_VOTE = "workerid", "file", "vote"
CCR_VALUES = (-3, -2, -1, 0, 1, 2, 3)
#: CCR rating (processed relative to reference) → vote 1–5 with the processed clip on the left.
CCR_TO_VOTE = {3: 1, 2: 1, 1: 2, 0: 3, -1: 4, -2: 5, -3: 5}
_LIST_LIMIT = 10


def _folder_method(url: str) -> str:
    """The name of the folder holding the clip, from a URL or a path."""
    path = urlparse(url).path if "://" in url else url
    parent = PurePosixPath(path.replace("\\", "/")).parent.name
    return parent


def _shown(rows: pd.Index, table: pd.DataFrame, column: str) -> str:
    listed = ", ".join(f"line {i + 2} ({table.at[i, column]!r})" for i in rows[:_LIST_LIMIT])
    more = len(rows) - _LIST_LIMIT
    return listed + (f" … and {more} more" if more > 0 else "")


def ccr_to_votes(
    table: pd.DataFrame,
    reference: str = "reference",
    method_pattern: str | None = None,
    method_column: str | None = None,
    source: str = "P.910 CCR votes",
) -> pd.DataFrame:
    """Convert a ``votes_per_worker`` table (text cells) to validated pairwise votes
    (:func:`vqe.preference.bradley_terry.validate_votes`); :class:`VoteError` names every bad row."""
    needed = [WORKER, CCR_VOTE] + ([method_column] if method_column else [FILE])
    missing = [name for name in needed if name not in table.columns]
    if missing:
        raise VoteError(
            f"{source}: missing columns {missing}; expected the P.910 result parser's "
            f"*_votes_per_worker.csv (columns {WORKER}, {FILE}, {CCR_VOTE}, …)"
        )
    table = table.reset_index(drop=True).astype(str)
    problems = []
    numbers = pd.to_numeric(table[CCR_VOTE].str.strip(), errors="coerce")
    bad = ~numbers.isin(CCR_VALUES)
    if bad.any():
        problems.append(
            f"{CCR_VOTE} must be an integer −3…3 at {_shown(table.index[bad], table, CCR_VOTE)}"
        )
    if method_column:
        methods = table[method_column].str.strip()
        origin = method_column
    elif method_pattern:
        try:
            pattern = re.compile(method_pattern)
        except re.error as error:
            raise VoteError(f"method pattern {method_pattern!r}: {error}") from error
        if "method" not in pattern.groupindex:
            raise VoteError(f"method pattern {method_pattern!r} needs a group (?P<method>…)")
        found = table[FILE].map(pattern.search)
        methods = found.map(lambda m: m.group("method") if m else "")
        origin = FILE
    else:
        methods = table[FILE].str.strip().map(_folder_method)
        origin = FILE
    no_method = methods == ""
    if no_method.any():
        problems.append(f"no method found at {_shown(table.index[no_method], table, origin)}")
    is_reference = methods == reference
    if is_reference.any():
        problems.append(
            f"a clip of the reference method {reference!r} was rated against itself at "
            f"{_shown(table.index[is_reference], table, origin)}; pass the reference's name "
            "with --reference"
        )
    if problems:
        raise VoteError(f"{source}: " + "; ".join(problems))
    votes = pd.DataFrame(
        {
            LEFT: methods,
            RIGHT: reference,
            VOTE: numbers.astype(int).map(CCR_TO_VOTE).astype(str),
            FACTOR: "",
            RATER: table[WORKER].str.strip(),
        }
    )
    return validate_votes(votes, source)


def read_ccr(
    path: str | Path,
    reference: str = "reference",
    method_pattern: str | None = None,
    method_column: str | None = None,
) -> pd.DataFrame:
    """Read a ``*_votes_per_worker.csv`` of a CCR test and convert it (:func:`ccr_to_votes`)."""
    table = read_vote_table(path)
    return ccr_to_votes(table, reference, method_pattern, method_column, str(path))
