"""Interval plot of Bradley–Terry scores: methods along x (best first), score with its interval
on a log axis (strengths multiply), the overall ranking and each factor side by side."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display needed
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import FormatStrFormatter  # noqa: E402

from vqe.metrics.bt_fit import Analysis, Ranking  # noqa: E402

_OFFSET = 0.18  # horizontal spread of the overall / per-factor markers of one method


def plot_analysis(analysis: Analysis, path: str | Path) -> Path:
    """Save the interval plot as PNG (folders created); returns the path."""
    path = Path(path)
    order = [item.method for item in analysis.overall.scores]
    rankings: dict[str, Ranking] = {"overall": analysis.overall}
    rankings.update({name: r for name, r in analysis.factors.items() if isinstance(r, Ranking)})
    offsets = [_OFFSET * (k - (len(rankings) - 1) / 2) for k in range(len(rankings))]

    figure, axes = plt.subplots(figsize=(max(6.0, 0.6 * len(order) + 2), 4.5))
    for (name, ranking), offset in zip(rankings.items(), offsets):
        by_method = {item.method: item for item in ranking.scores}
        shown = [m for m in order if m in by_method]
        x = [order.index(m) + offset for m in shown]
        y = [by_method[m].score for m in shown]
        below = [by_method[m].score - by_method[m].ci_low for m in shown]
        above = [by_method[m].ci_high - by_method[m].score for m in shown]
        axes.errorbar(
            x,
            y,
            yerr=[below, above],
            fmt="o" if name == "overall" else "s",
            markersize=6 if name == "overall" else 4,
            capsize=3,
            label=name,
            linewidth=1.8 if name == "overall" else 1.0,
        )
    axes.set_yscale("log")
    for axis_format in (axes.yaxis.set_major_formatter, axes.yaxis.set_minor_formatter):
        axis_format(FormatStrFormatter("%g"))
    axes.axhline(1.0, color="grey", linewidth=0.8, linestyle=":")
    crowded = len(order) > 6
    axes.set_xticks(
        range(len(order)), order, rotation=45 if crowded else 0, ha="right" if crowded else "center"
    )
    axes.set_ylabel("Bradley–Terry score (geometric mean 1)")
    axes.set_title(f"Bradley–Terry scores, {analysis.overall.interval}", fontsize="medium")
    axes.grid(axis="y", which="both", alpha=0.3)
    if len(rankings) > 1:
        axes.legend(fontsize="small")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png", dpi=120)
    plt.close(figure)
    return path
