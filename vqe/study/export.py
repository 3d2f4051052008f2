"""``export``: the study's votes as the CSV :mod:`vqe.metrics.bradley_terry` reads.

Columns ``left, right, vote, factor, rater`` (the votes format of :mod:`vqe.metrics.bt_fit`),
regular comparisons only, raters failing the gold questions left out unless ``keep_all``. The
optional details CSV holds every answer, gold included, with video, position and timing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from vqe.study.config import DB_NAME, read_config
from vqe.study.db import connect, raters_frame, votes_frame
from vqe.study.report import DEFAULT_MIN_GOLD, bt_votes, gold_table


@dataclass(frozen=True)
class Export:
    path: Path
    rows: int
    excluded: list[str]  # rater labels left out


def export_votes(
    root: str | Path,
    path: str | Path,
    min_gold: float = DEFAULT_MIN_GOLD,
    keep_all: bool = False,
    details: str | Path | None = None,
) -> Export:
    root, path = Path(root), Path(path)
    read_config(root)  # a clear error when root is not a study
    connection = connect(root / DB_NAME)
    try:
        votes, raters = votes_frame(connection), raters_frame(connection)
    finally:
        connection.close()
    table = gold_table(votes, raters, min_gold)
    passed = table["passed"] | keep_all
    table_out = bt_votes(votes, set(table.loc[passed, "rater_id"]))
    path.parent.mkdir(parents=True, exist_ok=True)
    table_out.to_csv(path, index=False)
    if details is not None:
        Path(details).parent.mkdir(parents=True, exist_ok=True)
        votes.to_csv(details, index=False)
    return Export(path, len(table_out), list(table.loc[~passed, "rater"]))
