"""The ``vqe score`` command (also ``codalab_scoring/score.py``): the official objective score of a
submission folder, run directory or zip, printed and optionally written as JSON.

The formula, the validation and the size caps are :mod:`vqe.metrics.score`; this module holds
the arguments, the printing and the exit status (0 scored, 1 not scorable or ``--json`` not
writable, 2 bad arguments).
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from pathlib import Path

from vqe.metrics.score import (
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_ROWS,
    RANDOM_CRITICS_LABEL,
    RANDOM_CRITICS_NOTE,
    SubmissionError,
    score_submission,
    score_zip,
    scored_by_random_critics,
    submission_folder,
    write_json,
)
from vqe.metrics.submission import SUBMISSION_DIR
from vqe.output_paths import OutputPathError, check_writable
from vqe.schema import (
    OFFICIAL_SUPERVISED_VIDEOS,
    OFFICIAL_UNSUPERVISED_VIDEOS,
    SUPERVISED_METRICS_CSV,
    UNSUPERVISED_METRICS_CSV,
)


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive row count, got {value}")
    return value


_BYTE_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}


def _byte_count(text: str) -> int:
    """``16M``, ``64MB``, ``1G``, ``500000``: a positive byte count (K, M, G are powers of 1024)."""
    match = re.fullmatch(r"\s*(\d+)\s*([kmg]?)i?b?\s*", text, re.IGNORECASE)
    if match is None or int(match[1]) < 1:
        raise argparse.ArgumentTypeError(f"must be a positive size like 64M or 1G, got {text!r}")
    return int(match[1]) * _BYTE_UNITS[match[2].lower()]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Score a VQE submission: metrics_supervised.csv + metrics_unsupervised.csv."
    )
    parser.add_argument(
        "--results", required=True, type=Path,
        help=f"folder holding the two CSVs, a run directory (its {SUBMISSION_DIR}/ folder is "
        "scored) or the submission zip",
    )  # fmt: skip
    parser.add_argument("--json", type=Path, help="also write the report to this JSON file")
    parser.add_argument(
        "--supervised-rows",
        type=_positive_int,
        default=OFFICIAL_SUPERVISED_VIDEOS,
        help=f"expected rows of {SUPERVISED_METRICS_CSV} (default: official %(default)s)",
    )
    parser.add_argument(
        "--unsupervised-rows",
        type=_positive_int,
        default=OFFICIAL_UNSUPERVISED_VIDEOS,
        help=f"expected rows of {UNSUPERVISED_METRICS_CSV} (default: official %(default)s)",
    )
    parser.add_argument(
        "--subset",
        action="store_true",
        help="local subset: score whatever video ids the files hold (no row-count check)",
    )
    parser.add_argument(
        "--max-bytes",
        type=_byte_count,
        default=DEFAULT_MAX_BYTES,
        metavar="SIZE",
        help="most bytes of CSV read: per file of a folder, all CSVs of a zip together "
        f"(uncompressed); K/M/G suffixes (default {DEFAULT_MAX_BYTES >> 20}M)",
    )
    parser.add_argument(
        "--max-rows",
        type=_positive_int,
        default=DEFAULT_MAX_ROWS,
        help="most data rows read per CSV (default %(default)s)",
    )
    parser.add_argument(
        "--strict",
        action="store_true",
        help="treat missing cells, missing video ids and values outside what the critic "
        "outputs as errors instead of filling / scoring them",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    options = {
        "supervised_rows": None if args.subset else args.supervised_rows,
        "unsupervised_rows": None if args.subset else args.unsupervised_rows,
        "strict": args.strict,
        "max_bytes": args.max_bytes,
        "max_rows": args.max_rows,
    }
    try:
        if args.json is not None:
            check_writable(args.json, "--json")
        if args.results.suffix.lower() == ".zip" and args.results.is_file():
            report = score_zip(args.results, **options)
        else:
            report = score_submission(submission_folder(args.results), **options)
    except (SubmissionError, OutputPathError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    random = scored_by_random_critics(args.results)
    print(report.format(RANDOM_CRITICS_LABEL if random else None))
    if args.json is not None:
        extra = {"critics": "random", "note": RANDOM_CRITICS_NOTE} if random else None
        replaced = write_json(report, args.json, extra)
        print(f"{'replaced' if replaced else 'wrote'} {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
