"""The bar to beat: objective score and supervised RMSE of the baseline and of the identity.

    vqe bench-baseline-bar [--data-root ROOT] (--vqa VQA.ckpt --dover DOVER.pth |
        --allow-random-critics) [--dover-num-frames 2 --dover-technical-clips 1]
        [--out outputs/benchmarks] [--work DIR]

On the demo set (``--data-root`` unset: :func:`vqe.dataprep.demo.ensure_demo`) or any data root in
the official layout, the test split is scored exactly as a user would score any method:

1. the synthetic test inputs become lossless mp4s (:mod:`vqe.metrics.synthetic_inputs`);
2. **baseline** — ``baseline/baseline.py`` (its defaults: resampled to 30 fps, official
   encoding) over those and over ``test/unsupervised``;
   **identity** — the input unchanged: the lossless synthetic mp4s, and each unsupervised input
   resampled to 30 fps like the enhancers do, written losslessly;
3. :func:`vqe.metrics.method_scores.score_outputs` on each folder.

The DOVER clip setting defaults to 2 frames × 1 technical clip, the setting the demo evaluation
uses (``configs/evaluation``), so the figures compare with ``vqe evaluate`` on the
demo; it is cheaper than the official 32 × 3 and labelled so. With ``--allow-random-critics``
the critic terms (m_1 … m_12), and so the score, are meaningless — labelled as such in the
output; the RMSE does not depend on the critics and is real.

Writes ``baseline_bar.json`` and ``baseline_bar.md`` into ``--out``. Intermediate videos go to a
temporary folder unless ``--work`` names one to keep.
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import torch

from vqe.cli.baseline import main as baseline_main
from vqe.cli.bench.report import save_report
from vqe.cli.critic_options import (
    add_critic_arguments,
    check_critic_arguments,
    critics_label,
    load_critics,
    random_critics_used,
)
from vqe.dataprep.demo import ensure_demo, is_demo
from vqe.devices import resolve_device
from vqe.metrics.method_scores import OutputsReport, score_outputs
from vqe.metrics.synthetic_inputs import encode_lossless, write_synthetic_inputs
from vqe.schema import RMSE
from vqe.video import OFFICIAL_FPS, read_frames

DEFAULT_OUT = Path("outputs/benchmarks")
RESULT_NAME = "baseline_bar"
SPLIT = "test"
#: The demo evaluation's DOVER setting (configs/evaluation/default.yaml with demo=true).
DEMO_DOVER_FRAMES, DEMO_DOVER_CLIPS = 2, 1


def identity_outputs(data_root: Path, synthetic_inputs: Path, folder: Path) -> Path:
    """The input unchanged, as a method's output folder (lossless, 30 fps like the enhancers)."""
    folder.mkdir(parents=True, exist_ok=True)
    for path in sorted(synthetic_inputs.glob("*.mp4")):
        (folder / path.name).write_bytes(path.read_bytes())
    for source in sorted((data_root / SPLIT / "unsupervised").glob("*.mp4")):
        encode_lossless(folder / source.name, read_frames(source, OFFICIAL_FPS))
    return folder


def baseline_outputs(data_root: Path, synthetic_inputs: Path, folder: Path) -> Path:
    """``baseline/baseline.py`` with its defaults over both input folders."""
    for dir_in in (synthetic_inputs, data_root / SPLIT / "unsupervised"):
        code = baseline_main(["--dir_in", str(dir_in), "--dir_out", str(folder), "--workers", "1"])
        if code != 0:
            raise RuntimeError(f"the baseline failed on {dir_in} (exit status {code})")
    return folder


def summarise(report: OutputsReport, seconds: float) -> dict:
    if report.score is None:
        return {"error": report.score_error, "seconds": seconds}
    means = report.score.means
    return {
        "score": report.score.score,
        "mean_rmse": means[RMSE],
        # The score's numerator: the mean of the 12 oriented critic terms.
        "critic_terms_mean": report.score.score * means[RMSE],
        "means": means,
        "videos_scored": len(report.scored),
        "problems": [reason for _, reason in report.failed] + [str(p) for p in report.missing],
        "seconds": seconds,
    }


def markdown(result: dict) -> str:
    random = result["random_critics"]
    lines = [
        "# Baseline bar",
        "",
        f"Data: `{result['data_root']}` ({result['data']}), split `{SPLIT}`.",
        f"{result['critics']}.",
        "",
    ]
    if random:
        warning = "the critic terms and the score are meaningless; only the RMSE is real"
        lines += [f"**RANDOM critics: {warning}.**", ""]
    lines += [
        "| method | score | mean RMSE ((v−128)/128) | mean of the 12 critic terms | videos |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, entry in result["methods"].items():
        if "error" in entry:
            lines.append(f"| {name} | error: {entry['error']} | | | |")
            continue
        lines.append(
            f"| {name} | {entry['score']:.4f} | {entry['mean_rmse']:.4f} | "
            f"{entry['critic_terms_mean']:.4f} | {entry['videos_scored']} |"
        )
    machine = result["machine"]
    lines += [
        "",
        "score = mean of [m_1 … m_4, 1 − m_5, m_6 … m_12] / mean RMSE (official formula, "
        + "over the videos of the data root).",
        f"Machine: {machine['platform']}, {machine['threads']} torch threads; "
        + f"{result['seconds']:.0f} s in all.",
    ]
    return "\n".join(lines) + "\n"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vqe bench-baseline-bar",
        description="Objective score and RMSE of the baseline and the identity on the test split.",
    )
    parser.add_argument("--data-root", type=Path, help="official layout root (default: demo set)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="folder for JSON/markdown")
    parser.add_argument("--work", type=Path, help="keep the intermediate videos here")
    add_critic_arguments(parser)
    parser.set_defaults(
        dover_num_frames=DEMO_DOVER_FRAMES, dover_technical_clips=DEMO_DOVER_CLIPS
    )
    return parser


def run(args: argparse.Namespace, work: Path) -> dict:
    started = time.perf_counter()
    data_root = args.data_root if args.data_root is not None else ensure_demo()
    vqa, dover = load_critics(args)
    synthetic = work / "synthetic_inputs"
    report = write_synthetic_inputs(data_root, synthetic, SPLIT, progress=False)
    if not report.ok:
        raise RuntimeError(f"synthetic inputs could not be written:\n{report.summary()}")
    methods = {
        "identity": identity_outputs(data_root, synthetic, work / "identity"),
        "baseline": baseline_outputs(data_root, synthetic, work / "baseline"),
    }
    results = {}
    for name, folder in methods.items():
        start = time.perf_counter()
        scored = score_outputs(
            folder,
            data_root,
            work / f"scores_{name}",
            vqa,
            dover,
            split=SPLIT,
            batch_size=args.batch_size,
            device=resolve_device(args.device),
            overwrite=True,
            progress=False,
        )
        results[name] = summarise(scored, time.perf_counter() - start)
        print(f"{name}:\n{scored.summary()}")
    return {
        "data_root": str(data_root),
        "data": "the embedded demo set" if is_demo(data_root) else "a data root",
        "critics": critics_label(args),
        "random_critics": random_critics_used(args),
        "dover_setting": {
            "num_frames": args.dover_num_frames,
            "num_technical_clips": args.dover_technical_clips,
        },
        "methods": results,
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
        },
        "seconds": time.perf_counter() - started,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    check_critic_arguments(parser, args)
    if args.work is not None:
        args.work.mkdir(parents=True, exist_ok=True)
        result = run(args, args.work)
    else:
        with tempfile.TemporaryDirectory(prefix="baseline_bar-") as work:
            result = run(args, Path(work))
    save_report(args.out, RESULT_NAME, result, markdown(result))
    failed = any("error" in entry or entry["problems"] for entry in result["methods"].values())
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
