"""Interval plot of Bradley–Terry scores: methods along x (best first), score with its interval
on a log axis (strengths multiply), the overall ranking and each factor side by side. The title
names the interval method and the prior (:attr:`Ranking.interval`), wrapped to the figure."""

from __future__ import annotations

import math
import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display needed
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.ticker import (  # noqa: E402
    FormatStrFormatter,
    LogLocator,
    NullFormatter,
)

from vqe.atomic import atomic_path
from vqe.preference.bradley_terry import Analysis, Ranking  # noqa: E402

_OFFSET = 0.18  # horizontal spread of the overall / per-factor markers of one method
_TITLE_CHARACTERS_PER_INCH = 12  # at fontsize "medium": wrap the title before it is cut off


class _SelectedFormatter(FormatStrFormatter):
    """``%g`` for the given tick values, nothing for the other minor ticks."""

    def __init__(self, shown: set[float]) -> None:
        super().__init__("%g")
        self.shown = shown

    def __call__(self, x: float, pos: int | None = None) -> str:
        return super().__call__(x, pos) if round(x, 12) in self.shown else ""


def label_log_axis(axes: Axes) -> None:
    """Readable labels on the log y axis: the decades always; within a span of under two
    decades also 2× and 5× (more minor labels would overlap), none beyond."""
    low, high = axes.get_ylim()
    decades = math.log10(high / low) if low > 0 else math.inf
    axes.yaxis.set_major_locator(LogLocator(base=10))
    axes.yaxis.set_major_formatter(FormatStrFormatter("%g"))
    axes.yaxis.set_minor_locator(LogLocator(base=10, subs=tuple(range(2, 10))))
    if decades < 2:
        labelled = LogLocator(base=10, subs=(2.0, 5.0))
        axes.yaxis.set_minor_formatter(
            _SelectedFormatter({round(v, 12) for v in labelled.tick_values(low, high)})
        )
    else:
        axes.yaxis.set_minor_formatter(NullFormatter())


def plot_analysis(analysis: Analysis, path: str | Path) -> Path:
    """Save the interval plot as PNG (folders created); returns the path."""
    path = Path(path)
    order = [item.method for item in analysis.overall.scores]
    rankings: dict[str, Ranking] = {"overall": analysis.overall}
    rankings.update({name: r for name, r in analysis.factors.items() if isinstance(r, Ranking)})
    offsets = [_OFFSET * (k - (len(rankings) - 1) / 2) for k in range(len(rankings))]

    width = max(6.0, 0.6 * len(order) + 2)
    figure, axes = plt.subplots(figsize=(width, 4.5))
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
    axes.axhline(1.0, color="grey", linewidth=0.8, linestyle=":")
    label_log_axis(axes)  # after everything that sets the limits
    crowded = len(order) > 6
    axes.set_xticks(
        range(len(order)), order, rotation=45 if crowded else 0, ha="right" if crowded else "center"
    )
    axes.set_ylabel("Bradley–Terry score (geometric mean 1)")
    title = f"Bradley–Terry scores, {analysis.overall.interval}"
    axes.set_title(
        textwrap.fill(title, int(width * _TITLE_CHARACTERS_PER_INCH)), fontsize="medium"
    )
    axes.grid(axis="y", which="both", alpha=0.3)
    if len(rankings) > 1:
        axes.legend(fontsize="small")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as temporary:
        figure.savefig(temporary, format="png", dpi=120)
    plt.close(figure)
    return path
