"""Time the Bradley–Terry analysis on simulated votes (default 300k votes, 20 methods).

    vqe bench-bradley-terry-fit [--votes 300000] [--methods 20] [--out DIR]

Prints the median of ``--repeats`` runs per stage and saves them as JSON in ``--out``
(default ``outputs/benchmarks/bradley_terry_fit.json``). Every stage fits under the analysis's
default prior (``DEFAULT_PRIOR_STRENGTH``), as the command does.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from vqe.preference.bradley_terry import (
    DEFAULT_PRIOR_STRENGTH,
    analyse_votes,
    count_pairs,
    fit,
    rank,
    read_votes,
    simulate_votes,
)


def _median_seconds(work: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--votes", type=int, default=300_000)
    parser.add_argument("--methods", type=int, default=20)
    parser.add_argument("--raters", type=int, default=500)
    parser.add_argument("--bootstrap", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("outputs/benchmarks"))
    args = parser.parse_args(argv)

    rng = np.random.default_rng(0)
    strengths = {
        f"method_{i:02d}": float(np.exp(x))
        for i, x in enumerate(np.linspace(-1.5, 1.5, args.methods))
    }
    pairs_count = args.methods * (args.methods - 1) // 2
    votes = simulate_votes(strengths, -(-args.votes // pairs_count), raters=args.raters, rng=rng)
    with tempfile.TemporaryDirectory() as folder:
        csv_path = Path(folder) / "votes.csv"
        votes.to_csv(csv_path, index=False)
        read_s = _median_seconds(lambda: read_votes(csv_path), args.repeats)
        validated = read_votes(csv_path)
    pairs = count_pairs(validated)
    prior = DEFAULT_PRIOR_STRENGTH
    stages = {
        "read_and_validate_csv": read_s,
        "count_pairs": _median_seconds(lambda: count_pairs(validated), args.repeats),
        "point_fit": _median_seconds(lambda: fit(pairs, prior), args.repeats),
        "fit_with_information_ci": _median_seconds(
            lambda: rank(pairs, "information", prior_strength=prior), args.repeats
        ),
        f"fit_with_bootstrap_ci_{args.bootstrap}": _median_seconds(
            lambda: rank(
                pairs, "bootstrap", args.bootstrap, rng=np.random.default_rng(1),
                prior_strength=prior,
            ),
            args.repeats,
        ),
        f"analyse_votes_bootstrap_{args.bootstrap}": _median_seconds(
            lambda: analyse_votes(validated, n_bootstrap=args.bootstrap), args.repeats
        ),
        f"analyse_votes_rater_bootstrap_{args.bootstrap}": _median_seconds(
            lambda: analyse_votes(validated, n_bootstrap=args.bootstrap, resample="raters"),
            args.repeats,
        ),
    }
    result = {
        "votes": len(validated),
        "methods": args.methods,
        "pairs": pairs_count,
        "raters": args.raters,
        "prior_strength": prior,
        "newton_iterations": fit(pairs, prior).iterations,
        "seconds_median": stages,
        "repeats": args.repeats,
        "machine": {
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "numpy": np.__version__,
        },
    }
    print(
        f"{result['votes']} votes, {args.methods} methods, {pairs_count} pairs, "
        f"{args.raters} raters"
    )
    for stage, seconds in stages.items():
        print(f"  {stage:<40} {seconds * 1000:10.1f} ms")
    args.out.mkdir(parents=True, exist_ok=True)
    out_file = args.out / "bradley_terry_fit.json"
    out_file.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out_file}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
