"""The study's analysis: gold accuracy per rater, the votes kept, Bradley–Terry with intervals.

Raters whose gold accuracy is below ``min_gold`` (once they answered at least one gold question)
are excluded from the ranking and the export, and listed. Gold questions never enter the
Bradley–Terry votes. The fit, the intervals and the plot are
:mod:`vqe.preference.bradley_terry` and :mod:`vqe.preference.bradley_terry_plot`; the same HTML
serves the results page of the server and the file ``report`` writes. The fit uses that weak
prior (``prior_strength`` virtual wins and losses per method, default
:data:`~vqe.preference.bradley_terry.DEFAULT_PRIOR_STRENGTH`), so a pilot whose votes
all agree already gets a ranking, a plot and ``bt.json``; the page and the plot title state it.
"""

from __future__ import annotations

import base64
import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from jinja2 import Environment, FileSystemLoader, select_autoescape

from vqe.atomic import atomic_write_bytes, atomic_write_text
from vqe.preference.bradley_terry import (
    DEFAULT_PRIOR_STRENGTH,
    FACTORS,
    Analysis,
    Ranking,
    VoteError,
    analyse_votes,
    validate_votes,
)
from vqe.study.config import DB_NAME, GOLD_DIR, VIDEOS_DIR, StudyConfig, StudyError, read_config
from vqe.study.db import connect, raters_frame, votes_frame
from vqe.study.design import PAIR, gold_correct

DEFAULT_MIN_GOLD = 0.75
TEMPLATES = Path(__file__).parent / "templates"
NO_FACTOR = "(none)"


def rater_label(rater_id: int, name: str) -> str:
    """The ``rater`` cell of the votes CSV: the id keeps two raters of one name apart."""
    clean = " ".join(str(name).split())
    return f"{rater_id}-{clean}" if clean else str(rater_id)


def gold_table(votes: pd.DataFrame, raters: pd.DataFrame, min_gold: float) -> pd.DataFrame:
    """Per rater: votes, gold answered / correct, accuracy and whether they pass."""
    gold = votes[votes["kind"] != PAIR].copy()
    gold["correct"] = [
        bool(gold_correct(kind, left, int(vote)))
        for kind, left, vote in zip(gold["kind"], gold["left"], gold["vote"])
    ]
    rows = []
    for rater in raters.itertuples():
        mine = gold[gold["rater_id"] == rater.rater_id]
        answered, correct = len(mine), int(mine["correct"].sum())
        accuracy = correct / answered if answered else float("nan")
        rows.append(
            {
                "rater_id": rater.rater_id,
                "rater": rater_label(rater.rater_id, rater.rater_name),
                "assigned": rater.assigned,
                "voted": rater.voted,
                "gold_answered": answered,
                "gold_correct": correct,
                "gold_accuracy": accuracy,
                # No gold answered yet: nothing to judge them on, so they count.
                "passed": answered == 0 or accuracy >= min_gold,
            }
        )
    columns = ["rater_id", "rater", "assigned", "voted", "gold_answered", "gold_correct",
               "gold_accuracy", "passed"]
    return pd.DataFrame(rows, columns=columns)


def bt_votes(votes: pd.DataFrame, kept_raters: set[int]) -> pd.DataFrame:
    """The regular votes of the kept raters as the CSV table ``vqe bradley-terry``
    reads: ``left, right, vote, factor, rater``."""
    regular = votes[(votes["kind"] == PAIR) & votes["rater_id"].isin(kept_raters)]
    return pd.DataFrame(
        {
            "left": regular["left"].to_numpy(),
            "right": regular["right"].to_numpy(),
            "vote": regular["vote"].astype(int).to_numpy(),
            "factor": regular["factor"].to_numpy(),
            "rater": [rater_label(i, n) for i, n in zip(regular["rater_id"], regular["rater_name"])],
        }
    )


@dataclass
class StudyResults:
    config: StudyConfig
    raters: pd.DataFrame  # gold_table
    votes: pd.DataFrame  # bt_votes of the kept raters
    all_votes: int
    gold_votes: int
    min_gold: float
    analysis: Analysis | None
    problem: str | None  # why there is no analysis yet
    median_seconds: float
    notes: list[str] = field(default_factory=list)

    @property
    def excluded(self) -> list[str]:
        return list(self.raters.loc[~self.raters["passed"], "rater"])

    def factor_shares(self) -> pd.DataFrame:
        counts = self.votes["factor"].replace("", NO_FACTOR).value_counts()
        order = [*FACTORS, NO_FACTOR]
        counts = counts.reindex(order, fill_value=0)
        total = max(int(counts.sum()), 1)
        return pd.DataFrame(
            {"factor": order, "votes": counts.to_numpy(), "share": counts.to_numpy() / total}
        )


def study_results(
    root: str | Path,
    min_gold: float = DEFAULT_MIN_GOLD,
    n_bootstrap: int = 1000,
    resample: str = "votes",
    seed: int = 0,
    prior_strength: float = DEFAULT_PRIOR_STRENGTH,
) -> StudyResults:
    """The study's votes, raters and Bradley–Terry analysis (``problem`` says why there is
    none: no kept votes yet, or with ``prior_strength=0`` strengths that do not exist)."""
    root = Path(root)
    config = read_config(root)
    connection = connect(root / DB_NAME)
    try:
        votes, raters = votes_frame(connection), raters_frame(connection)
    finally:
        connection.close()
    table = gold_table(votes, raters, min_gold)
    kept = set(table.loc[table["passed"], "rater_id"])
    selected = bt_votes(votes, kept)
    analysis, problem = None, None
    if selected.empty:
        problem = "no regular votes from raters who pass the gold questions yet"
    else:
        try:
            analysis = analyse_votes(
                validate_votes(selected, "study votes"), n_bootstrap=n_bootstrap,
                resample=resample, seed=seed, prior_strength=prior_strength,
            )
        except VoteError as error:
            problem = str(error)
    seconds = votes["seconds"].dropna()
    return StudyResults(
        config=config,
        raters=table,
        votes=selected,
        all_votes=len(votes),
        gold_votes=int((votes["kind"] != PAIR).sum()),
        min_gold=min_gold,
        analysis=analysis,
        problem=problem,
        median_seconds=float(seconds.median()) if len(seconds) else float("nan"),
        notes=list(analysis.notes) if analysis else [],
    )


def plot_png(results: StudyResults) -> bytes | None:
    """The Bradley–Terry interval plot
    (:func:`vqe.preference.bradley_terry_plot.plot_analysis`) as PNG bytes."""
    if results.analysis is None:
        return None
    from vqe.preference.bradley_terry_plot import plot_analysis  # matplotlib only when plotting

    with tempfile.TemporaryDirectory() as folder:  # plot_analysis writes files
        return plot_analysis(results.analysis, Path(folder) / "bt.png").read_bytes()


def _environment() -> Environment:
    return Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]))


def render_results(results: StudyResults, png: bytes | None) -> str:
    rankings: dict[str, Ranking | str] = {}
    if results.analysis is not None:
        rankings = {"overall": results.analysis.overall, **results.analysis.factors}
    return _environment().get_template("results.html").render(
        r=results,
        rankings=rankings,
        plot=base64.b64encode(png).decode("ascii") if png else None,
        shares=results.factor_shares(),
        isinstance=isinstance,
        Ranking=Ranking,
    )


def write_report(root: str | Path, out: str | Path, **options: object) -> dict[str, Path]:
    """``report.html`` (self-contained), ``bt.png``, ``bt.json``, ``votes.csv`` and
    ``raters.csv`` under ``out``; returns them by name."""
    out = Path(out)
    for own in (VIDEOS_DIR, GOLD_DIR):  # served media folders: no report files among them
        if out.resolve().is_relative_to((Path(root) / own).resolve()):
            raise StudyError(
                f"--out {out}: lies inside the study's {own}/ folder; choose a folder outside "
                "the study's own files (e.g. results/)"
            )
    results = study_results(root, **options)  # type: ignore[arg-type]
    out.mkdir(parents=True, exist_ok=True)
    png = plot_png(results)
    written = {"report": out / "report.html", "votes": out / "votes.csv",
               "raters": out / "raters.csv"}  # fmt: skip
    atomic_write_text(written["report"], render_results(results, png))
    atomic_write_text(written["votes"], results.votes.to_csv(index=False))
    atomic_write_text(written["raters"], results.raters.to_csv(index=False))
    if png is not None and results.analysis is not None:
        written["plot"] = out / "bt.png"
        atomic_write_bytes(written["plot"], png)
        written["json"] = out / "bt.json"
        atomic_write_text(written["json"], json.dumps(results.analysis.to_json(), indent=2) + "\n")
    return written
