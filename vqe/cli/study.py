"""``vqe study create | serve | export | report | compare``.

    vqe study create STUDY --methods input=in/ baseline=base/ ours=ours/ [--repeats 3]
    vqe study serve STUDY [--host 127.0.0.1] [--port 8000] [--assignment-timeout 1800]
    vqe study export STUDY votes.csv [--details answers.csv] [--keep-all-raters]
    vqe study report STUDY --out results/
    vqe study compare --methods in/ base/ ours/ --out compare/index.html [--targets gt/]
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from vqe.study.config import StudyError

_DESCRIPTION = "A local pairwise preference study of videos, analysed with Bradley–Terry."


def _add_min_gold(parser: argparse.ArgumentParser) -> None:
    from vqe.study.report import DEFAULT_MIN_GOLD

    parser.add_argument(
        "--min-gold", type=float, default=DEFAULT_MIN_GOLD,
        help="gold accuracy a rater needs to count (default %(default)s)",
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vqe study", description=_DESCRIPTION)
    commands = parser.add_subparsers(dest="command", required=True)

    create = commands.add_parser("create", help="make a study folder from method folders")
    create.add_argument("study", type=Path, help="new (or empty) folder for the study")
    create.add_argument("--methods", nargs="+", required=True, metavar="NAME=DIR",
                        help="method folders with the same video names (DIR alone: its name)")
    create.add_argument("--repeats", type=int, default=3,
                        help="votes per (video, method pair) over the study (default 3)")
    create.add_argument("--per-rater", type=int, default=None,
                        help="comparisons per rater (default: all videos × method pairs)")
    create.add_argument("--gold-rate", type=float, default=0.1,
                        help="gold questions per comparison (default 0.1; at least 1 if > 0)")
    create.add_argument("--gold-source", default=None,
                        help="method whose videos the gold questions use (default: the first)")
    create.add_argument("--seed", type=int, default=0)

    serve = commands.add_parser("serve", help="serve the study to raters (and the results page)")
    serve.add_argument("study", type=Path)
    serve.add_argument("--host", default="127.0.0.1",
                       help="address to bind (default 127.0.0.1: this machine only)")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--assignment-timeout", type=float, default=30 * 60.0, metavar="SECONDS",
                       help="a rater idle this long (no vote, no trial fetched) frees their "
                            "unvoted comparisons for new raters; they may still vote on them "
                            "(default %(default)s; inf: never)")

    export = commands.add_parser("export", help="votes CSV for vqe bradley-terry")
    export.add_argument("study", type=Path)
    export.add_argument("out", type=Path,
                        help="votes CSV to write (outside the study's own files; an earlier "
                             "CSV there is replaced)")
    export.add_argument("--details", type=Path, help="also every answer (gold too) with timing")
    export.add_argument("--keep-all-raters", action="store_true",
                        help="keep raters who fail the gold questions")
    _add_min_gold(export)

    report = commands.add_parser("report", help="results page, plot, JSON and CSVs")
    report.add_argument("study", type=Path)
    report.add_argument("--out", type=Path, required=True, help="folder for report.html etc.")
    report.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples")
    report.add_argument("--resample", choices=("votes", "raters"), default="votes")
    report.add_argument("--seed", type=int, default=0)
    _add_min_gold(report)

    compare = commands.add_parser("compare", help="static side-by-side comparison page")
    compare.add_argument("--methods", nargs="+", required=True, metavar="NAME=DIR")
    compare.add_argument("--out", type=Path, required=True, help="HTML file to write")
    compare.add_argument("--targets", type=Path, help="ground-truth videos: PSNR, SSIM")
    compare.add_argument("--inputs", type=Path,
                         help="input videos the methods enhanced: flicker against them "
                              "(default: against --targets)")
    compare.add_argument("--vqa", type=Path, help="VQA.ckpt: VQA preference over --inputs")
    compare.add_argument("--dover", type=Path, help="DOVER.pth: DOVER score per video")
    compare.add_argument("--copy", action="store_true",
                         help="copy the videos beside the page (default: link them relatively)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "create":
            from vqe.study.create import create_study, parse_methods
            from vqe.study.server import urls

            config = create_study(
                args.study, parse_methods(args.methods), args.repeats, args.per_rater,
                args.gold_rate, args.gold_source, args.seed,
            )
            rater_url, admin_url = urls(config, "127.0.0.1", 8000)
            print(
                f"created {args.study}: {len(config.methods)} methods × {len(config.videos)} "
                f"videos, {config.comparisons} comparisons × {config.repeats} votes, "
                f"{config.per_rater} per rater\nserve it with: vqe study serve "
                f"{args.study}\nraters:  {rater_url}\nresults: {admin_url}"
            )
        elif args.command == "serve":
            from vqe.study.server import serve

            serve(args.study, args.host, args.port, args.assignment_timeout)
        elif args.command == "export":
            from vqe.study.export import export_votes

            result = export_votes(
                args.study, args.out, args.min_gold, args.keep_all_raters, args.details
            )
            print(f"wrote {result.rows} votes to {result.path}")
            if result.excluded:
                print(f"left out (gold accuracy < {args.min_gold}): {', '.join(result.excluded)}")
        elif args.command == "report":
            from vqe.study.report import write_report

            written = write_report(
                args.study, args.out, min_gold=args.min_gold, n_bootstrap=args.bootstrap,
                resample=args.resample, seed=args.seed,
            )
            for path in written.values():
                print(f"wrote {path}")
        else:
            from vqe.study.compare_page import write_compare_page
            from vqe.study.create import parse_methods

            path = write_compare_page(
                parse_methods(args.methods), args.out, targets=args.targets,
                inputs=args.inputs, vqa=args.vqa, dover=args.dover, copy=args.copy,
            )
            print(f"wrote {path}")
    except StudyError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
