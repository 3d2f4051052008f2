"""The ``vqe bradley-terry`` command: pairwise votes (CSV) → scores with intervals, as text, JSON
and an interval plot::

    vqe bradley-terry votes.csv [--json bt.json] [--plot bt.png]
        [--prior-strength 1]

Scores are posterior modes under a weak prior of ``--prior-strength`` virtual wins and losses per
method against an average method (default 1), so votes that all agree still get finite, ordered
scores; ``--prior-strength 0`` is plain maximum likelihood, which stops with a message when a
method never loses. The text, the JSON (``prior`` in each entry) and the plot state the prior.

The model, the fit and the intervals are :mod:`vqe.preference.bradley_terry`, the plot is
:mod:`vqe.preference.bradley_terry_plot`, the P.910 reader :mod:`vqe.preference.p910`.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from vqe.atomic import atomic_write_text
from vqe.output_paths import OutputPathError, check_not_an_input, check_writable
from vqe.preference.bradley_terry import (
    CI_METHODS,
    DEFAULT_PRIOR_STRENGTH,
    RESAMPLE_UNITS,
    VoteError,
    analyse_votes,
    check_prior_strength,
    format_analysis,
    read_votes,
)


def _announce(path: Path, existed: bool) -> None:
    print(f"{'replaced' if existed else 'wrote'} {path}")


def _check_prior_option(value: float) -> None:
    """ValueError naming ``--prior-strength`` unless the value is finite and ≥ 0."""
    try:
        check_prior_strength(value)
    except ValueError:
        raise ValueError(
            f"--prior-strength must be a finite number ≥ 0 (virtual wins and losses per method; "
            f"0 = plain maximum likelihood), got {value}"
        ) from None


def _read(args: argparse.Namespace) -> Any:
    if args.format == "p910-ccr":
        from vqe.preference.p910 import read_ccr

        return read_ccr(args.votes, args.reference, args.method_pattern, args.method_column)
    return read_votes(args.votes)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Bradley–Terry scores from pairwise votes (left,right,vote[,factor,rater])."
    )
    parser.add_argument("votes", type=Path, help="CSV with one row per vote")
    parser.add_argument(
        "--format",
        choices=("votes", "p910-ccr"),
        default="votes",
        help="p910-ccr: the P.910 toolkit's CCR *_votes_per_worker.csv (clip vs reference)",
    )
    parser.add_argument("--reference", default="reference", help="p910-ccr: the reference method")
    parser.add_argument("--method-pattern", help="p910-ccr: regex with (?P<method>…) on the clip")
    parser.add_argument("--method-column", help="p910-ccr: the column naming each clip's method")
    parser.add_argument("--json", type=Path, help="write method → {score, ci_low, ci_high, …} here")
    parser.add_argument(
        "--plot", type=Path, help="interval plot PNG (default: <votes>_bt.png beside the CSV)"
    )
    parser.add_argument("--ci", choices=CI_METHODS, default="bootstrap")
    parser.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples")
    parser.add_argument("--resample", choices=RESAMPLE_UNITS, default="votes")
    parser.add_argument("--level", type=float, default=0.95, help="interval coverage")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--prior-strength",
        type=float,
        default=DEFAULT_PRIOR_STRENGTH,
        help="virtual wins and losses per method against an average one (keeps unanimous votes "
        "finite; 0 = plain maximum likelihood)",
    )
    args = parser.parse_args(argv)
    plot_path = (
        args.plot if args.plot is not None else args.votes.with_name(f"{args.votes.stem}_bt.png")
    )
    try:
        check_writable(plot_path, "--plot")
        check_not_an_input(plot_path, "--plot", {"votes": args.votes})
        if args.json is not None:
            check_writable(args.json, "--json")
            check_not_an_input(args.json, "--json", {"votes": args.votes})
        _check_prior_option(args.prior_strength)
        analysis = analyse_votes(
            _read(args),
            args.ci,
            args.bootstrap,
            args.level,
            args.resample,
            args.seed,
            args.prior_strength,
        )
    except (VoteError, ValueError, OutputPathError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(format_analysis(analysis))
    from vqe.preference.bradley_terry_plot import plot_analysis  # matplotlib only when plotting

    existed = plot_path.exists()
    _announce(plot_analysis(analysis, plot_path), existed)
    if args.json is not None:
        existed = args.json.exists()
        args.json.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(args.json, json.dumps(analysis.to_json(), indent=2) + "\n")
        _announce(args.json, existed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
