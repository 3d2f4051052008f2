"""The ``vqe tournament`` command: arguments, the report, the JSON and plot files and the exit
status around :mod:`vqe.preference.tournament`."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from vqe.atomic import atomic_write_text
from vqe.cli.critic_options import (
    add_critic_arguments,
    check_critic_arguments,
    critics_label,
    dover_cost_line,
    load_critics,
    random_critics_used,
)
from vqe.devices import resolve_device
from vqe.output_paths import OutputPathError, check_not_an_input, check_writable
from vqe.preference.bradley_terry import Analysis, Ranking, VoteError
from vqe.preference.tournament import (
    DEFAULT_FRAMES_PER_VIDEO,
    INPUT_METHOD,
    collect_comparisons,
    format_report,
    pair_table,
    rank_comparisons,
    report_json,
)
from vqe.video import OFFICIAL_FPS, parse_fps

EPILOG = f"""\
The videos are the mp4s of --inputs; each method's folder (as vqe enhance or the
baseline writes it) is matched by file name, and the inputs take part as the method
{INPUT_METHOD!r}. From every video --frames-per-video evenly spaced frames are compared, every
pair of methods in both orders of the VQA, P(a preferred over b) = (p(a, b) + 1 - p(b, a)) / 2;
each comparison counts as fractional wins in a Bradley-Terry fit, with intervals from a bootstrap
over whole videos.

Output: the ranking (score, interval, comparisons per method), a table per pair (mean preference
and the critic's first-slot bias mean(p(a, b) + p(b, a) - 1)), optionally --json and the interval
plot --plot.

A video missing from a method, or one that cannot be decoded, is listed and that method takes no
part for that video; the ranking is made from what is there. Mp4s of a method that are not among
the inputs are ignored and listed.

Exit status: 0 with a ranking and no problem; 1 when a video was missing or failed, the methods
cannot be ranked or an output cannot be written; 2 for bad arguments.
"""


def parse_methods(parser: argparse.ArgumentParser, specs: Sequence[str]) -> dict[str, Path]:
    """``NAME=DIR`` arguments → {name: folder}; a usage error for a bad or repeated one."""
    methods: dict[str, Path] = {}
    for spec in specs:
        name, separator, folder = spec.partition("=")
        name = name.strip()
        if not separator or not name or not folder:
            parser.error(f"--methods {spec!r}: expected NAME=DIR, e.g. baseline=outputs/baseline")
        if name == INPUT_METHOD:
            parser.error(f"--methods {spec!r}: the name {INPUT_METHOD!r} is reserved for --inputs")
        if name in methods:
            parser.error(f"--methods: the name {name!r} is given twice")
        if not Path(folder).is_dir():
            parser.error(f"--methods {spec!r}: {folder} is not a folder")
        methods[name] = Path(folder)
    return methods


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vqe tournament",
        description="Bradley–Terry ranking of methods (and the input) by the VQA critic's "
        "pairwise preference.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--methods", nargs="+", required=True, metavar="NAME=DIR")
    parser.add_argument("--inputs", type=Path, required=True, help="folder of the input mp4s")
    parser.add_argument("--json", type=Path, help="write the ranking, pairs and problems here")
    parser.add_argument("--plot", type=Path, help="interval plot PNG")
    parser.add_argument("--frames-per-video", type=int, default=DEFAULT_FRAMES_PER_VIDEO)
    parser.add_argument(
        "--fps", type=parse_fps, default=float(OFFICIAL_FPS),
        help=f"resample every video to this rate before sampling (default {OFFICIAL_FPS}, as the "
        "enhancers do); 'none' keeps every decoded frame (for methods run with --fps none)",
    )  # fmt: skip
    parser.add_argument("--bootstrap", type=int, default=1000, help="video-bootstrap resamples")
    parser.add_argument("--seed", type=int, default=0, help="seed of the bootstrap")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_critic_arguments(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    methods = parse_methods(parser, args.methods)
    if not args.inputs.is_dir():
        parser.error(f"--inputs {args.inputs}: not a folder")
    if args.frames_per_video < 1:
        parser.error(f"--frames-per-video must be ≥ 1, got {args.frames_per_video}")
    if args.bootstrap < 2:
        parser.error(f"--bootstrap must be ≥ 2, got {args.bootstrap}")
    check_critic_arguments(parser, args)
    try:  # before the comparisons, which take minutes
        for option, path in (("--json", args.json), ("--plot", args.plot)):
            if path is not None:
                check_writable(path, option)
                inputs = {f"--methods {name}": folder for name, folder in methods.items()}
                check_not_an_input(path, option, {"--inputs": args.inputs, **inputs})
    except OutputPathError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    label = critics_label(args)
    print(label)
    try:  # a missing, unreadable or refused weights file: one line naming it
        vqa, dover = load_critics(args)
    except (ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    device = resolve_device(args.device)
    cost = dover_cost_line(args, dover, args.inputs, device)
    if cost:
        frames = args.frames_per_video * (len(methods) + 1)
        print(f"{cost}; {frames} frames per video", flush=True)
    started = time.perf_counter()
    try:
        tournament = collect_comparisons(
            methods,
            args.inputs,
            vqa,
            dover,
            args.frames_per_video,
            args.fps,
            args.batch_size,
            device,
            progress=not args.no_progress,
        )
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    ranking: Ranking | None = None
    error: str | None = None
    try:
        ranking = rank_comparisons(tournament.comparisons, args.bootstrap, seed=args.seed)
    except VoteError as problem:
        error = f"no ranking: {problem}"
    pairs = pair_table(tournament.comparisons)
    print(format_report(tournament, ranking, pairs))
    print(f"time {time.perf_counter() - started:.1f} s")
    if error:
        print(f"error: {error}", file=sys.stderr)
    if ranking is not None and args.plot is not None:
        from vqe.preference.bradley_terry_plot import plot_analysis  # matplotlib only when plotting

        analysis = Analysis(ranking, {}, pairs, 0, 0.0, tournament.notes)
        print(f"wrote {plot_analysis(analysis, args.plot)}")
    if args.json is not None:
        settings = {
            "critics": label,
            "random_critics": random_critics_used(args),
            "frames_per_video": args.frames_per_video,
            "fps": args.fps,
            "methods": {INPUT_METHOD: str(args.inputs), **{k: str(v) for k, v in methods.items()}},
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        document = report_json(tournament, ranking, pairs, settings, error)
        atomic_write_text(args.json, json.dumps(document, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0 if tournament.ok and ranking is not None else 1


if __name__ == "__main__":
    sys.exit(main())
