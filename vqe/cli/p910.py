"""The ``vqe p910`` command: the P.910 toolkit's CCR ``*_votes_per_worker.csv`` → the pairwise
votes CSV ``vqe bradley-terry`` reads; the conversion is :mod:`vqe.preference.p910`::

    vqe p910 batch_votes_per_worker.csv votes.csv [--reference input]
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from vqe.atomic import atomic_write_text
from vqe.output_paths import OutputPathError, check_not_an_input, check_writable
from vqe.preference.bradley_terry import LEFT, VoteError
from vqe.preference.p910 import read_ccr


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="P.910 toolkit CCR votes (*_votes_per_worker.csv) → pairwise votes CSV "
        "for vqe bradley-terry"
    )
    parser.add_argument("ccr", type=Path, help="the result parser's *_votes_per_worker.csv")
    parser.add_argument("out", type=Path, help="votes CSV to write (left,right,vote,factor,rater)")
    parser.add_argument("--reference", default="reference", help="name of the reference method")
    parser.add_argument("--method-pattern", help="regex with (?P<method>…) applied to the clip URL")
    parser.add_argument("--method-column", help="column holding each clip's method")
    args = parser.parse_args(argv)
    try:
        check_not_an_input(args.out, "out", {"ccr": args.ccr})
        check_writable(args.out, "out")
        votes = read_ccr(args.ccr, args.reference, args.method_pattern, args.method_column)
    except (VoteError, OutputPathError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out, votes.to_csv(index=False))
    print(
        f"wrote {len(votes)} votes ({votes[LEFT].nunique()} methods vs {args.reference}) to {args.out}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
