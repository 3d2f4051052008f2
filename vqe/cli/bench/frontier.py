"""The quality/speed frontier of the enhancer presets, in one command (issue 28, item 4).

    vqe bench-frontier [--presets lut_unet spatial_lut tmobile summer maqic]
        [--seeds 0 1 2] [--steps 520,770,650] [--clips 2] [--out outputs/benchmarks/frontier]
        [--overwrite] [--tiny] [--no-cuda] [--repeats 5] [--warmup 1] [KEY=VALUE …]

1. **Quality.** Every preset is trained by the quality benchmark's staged recipe with the same
   fixed steps per stage (:mod:`vqe.cli.bench.quality`, run in process with
   ``model_vqe=PRESET seed=N`` after any ``KEY=VALUE`` given here) and measured on the same
   validation and test clips (the clips' own seed stays 0, so only the training seed varies),
   into ``--out/PRESET/seedN/``. A preset/seed whose ``quality.json`` is already there is
   reused, not retrained (an interrupted frontier resumes; ``--overwrite`` retrains), after
   checking that it was made with the same steps, clips and overrides. A preset without a
   U-Net (``maqic``, ``lut``) would have nothing to train in the recipe's stage 2, which
   freezes the LUT; for those the LUT trains in every stage (``model_vqe.freeze_lut=false``).
2. **Cost** per 1280×720 frame: GMAC of the deploy graph (:func:`vqe.inference.presets.
   preset_cost`, as ``vqe models`` counts) and ms of the deploy graph, eager, fp32 on the CPU
   (and fp16 on CUDA when a GPU is present), median of ``--repeats`` runs after ``--warmup``,
   on an 8-bit photograph as :mod:`vqe.cli.bench.inference` times it, with untrained weights
   (speed does not depend on them).
3. **Report**: per preset the test split's final PSNR, the person-region PSNR on the backlit
   clips, CIEDE2000 and flicker (mean ± sample standard deviation over seeds; the validation
   PSNR too, where choices are made), beside the baseline tone curve's. ``frontier.json``,
   ``frontier.md`` and ``frontier.png`` (test PSNR and backlit person PSNR against CPU ms per
   frame, one labelled point per preset, the baseline as a horizontal line) in ``--out``.

``--tiny`` is a wiring check of a couple of minutes: each preset keeps its own architecture
(its ``model_vqe`` override comes after the quality benchmark's tiny ones) but trains two steps
per stage on tiny crops and is measured on tiny clips; the timing is one run at 720p after a
warm-up. Its quality numbers mean nothing.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from vqe.cli.bench import quality
from vqe.cli.bench.report import machine_description, save_report

log = logging.getLogger(__name__)

DEFAULT_OUT = Path("outputs/benchmarks/frontier")
RESULT_NAME = "frontier"
DEFAULT_PRESETS = ("lut_unet", "spatial_lut", "tmobile", "summer", "maqic")
#: The README's recipe (docs/benchmarks.md): steps of stage 1 / 2 / 3.
DEFAULT_STEPS = (520, 770, 650)
HEIGHT, WIDTH = 720, 1280
#: The quality benchmark's reported split, and the one choices are made on.
TEST, VALIDATION = "test", "validation"

#: Frontier metrics: key → (column heading, format, where in quality.json's method entry).
METRICS: dict[str, tuple[str, str, tuple[str, str, str]]] = {
    "psnr": ("test PSNR (dB) ↑", "{:.2f}", ("means_by_split", TEST, "psnr")),
    "backlit_person_psnr": (
        "backlit person PSNR (dB) ↑",
        "{:.2f}",
        ("foreground_means_by_split", TEST, "person_psnr"),
    ),  # fmt: skip
    "ciede2000": ("CIEDE2000 ↓", "{:.2f}", ("means_by_split", TEST, "ciede2000")),
    "flicker": ("flicker ↓", "{:.3f}", ("means_by_split", TEST, "flicker")),
    "validation_psnr": ("validation PSNR (dB) ↑", "{:.2f}", ("means_by_split", VALIDATION, "psnr")),
}


class FrontierError(Exception):
    """A mistake in the request or the output folder: reported in one line."""


# --------------------------------------------------------------------------- quality runs


def run_folder(out: Path, preset: str, seed: int) -> Path:
    return out / preset / f"seed{seed}"


def has_unet(preset: str) -> bool:
    from vqe.models.loading import enhancer_from_preset

    return enhancer_from_preset(preset).unet is not None


def check_presets(presets: Sequence[str]) -> None:
    """Every name a preset of ``configs/model_vqe``, each with a LUT stage (the recipe's stage
    1 trains the LUT alone)."""
    from vqe.inference.presets import PRESET_DIR, preset_names
    from vqe.models.loading import enhancer_from_preset

    known = preset_names()
    for name in presets:
        if name not in known:
            raise FrontierError(
                f"no such preset {name!r} in {PRESET_DIR}; choose from {', '.join(known)}"
            )
        if enhancer_from_preset(name).lut is None:
            raise FrontierError(
                f"preset {name!r} has no LUT stage, which the quality recipe's stage 1 trains"
            )


def preset_overrides(preset: str, seed: int, extra: Sequence[str]) -> list[str]:
    """Hydra overrides of every stage of one run. They follow the quality benchmark's tiny ones
    (quality_recipe.run_recipe), so ``model_vqe=PRESET`` wins over ``--tiny``'s model."""
    overrides = [f"model_vqe={preset}", f"seed={seed}"]
    if not has_unet(preset):
        # Stage 2 freezes the LUT to train the U-Net: without one it would have nothing to train.
        overrides.append("model_vqe.freeze_lut=false")
    return [*overrides, *extra]


def quality_argv(args: argparse.Namespace, folder: Path, overrides: Sequence[str]) -> list[str]:
    argv = ["--out", str(folder), "--steps", ",".join(map(str, args.steps))]
    argv += ["--clips", str(args.clips)]
    if args.tiny:
        argv.append("--tiny")
    return [*argv, *overrides]


def check_reusable(path: Path, args: argparse.Namespace, overrides: Sequence[str]) -> dict:
    """The earlier run's record, when it was made as this frontier would make it."""
    try:
        record = json.loads(path.read_text())
        settings = record["settings"]
        stage_overrides = record["recipe"]["stages"][0]["overrides"]
    except (OSError, ValueError, KeyError, IndexError, TypeError) as error:
        raise FrontierError(f"{path}: unreadable ({error}); rerun with --overwrite") from None
    made = (settings.get("steps"), settings.get("clips_per_source"), settings.get("tiny"))
    if made != (list(args.steps), args.clips, args.tiny) or not set(overrides) <= set(
        stage_overrides
    ):
        raise FrontierError(
            f"{path} was made with other settings (steps {made[0]}, clips {made[1]}, tiny "
            f"{made[2]}); rerun with --overwrite or another --out"
        )
    return record


def quality_runs(args: argparse.Namespace) -> dict[str, list[dict[str, Any]]]:
    """Train and measure every preset and seed (or reuse a finished one); per preset, one
    entry per seed: the quality record, or the error that stopped it."""
    runs: dict[str, list[dict[str, Any]]] = {}
    for preset in args.presets:
        runs[preset] = []
        for seed in args.seeds:
            folder = run_folder(args.out, preset, seed)
            path = folder / f"{quality.RESULT_NAME}.json"
            overrides = preset_overrides(preset, seed, args.overrides)
            entry: dict[str, Any] = {"seed": seed, "folder": str(folder), "reused": False}
            if path.is_file() and not args.overwrite:
                entry.update(reused=True, record=check_reusable(path, args, overrides))
                print(f"[frontier] {preset} seed {seed}: reusing {path}", flush=True)
            else:
                print(f"[frontier] {preset} seed {seed}: training into {folder}", flush=True)
                path.unlink(missing_ok=True)  # a failed rerun must not leave the old record
                started = time.perf_counter()
                try:
                    code = quality.main(quality_argv(args, folder, overrides))
                    if code != 0:
                        raise RuntimeError(f"the quality benchmark exited {code}")
                    entry["record"] = json.loads(path.read_text())
                except Exception as error:  # keep the other presets; this one is retried next run
                    log.exception("%s seed %d failed", preset, seed)
                    entry["error"] = f"{type(error).__name__}: {str(error).splitlines()[0][:200]}"
                entry["seconds"] = time.perf_counter() - started
            runs[preset].append(entry)
    return runs


# --------------------------------------------------------------------------- cost


def time_preset(
    preset: str, device: torch.device, dtype: torch.dtype, warmup: int, repeats: int
) -> float:
    """ms per 1×3×720×1280 frame of the preset's deploy graph, eager, as the video stream runs
    it (8-bit frames into the LUT stage)."""
    from vqe.cli.bench.inference import eight_bit_frame
    from vqe.cli.bench.timing import median_seconds
    from vqe.models.deploy import build_deploy_model
    from vqe.models.loading import enhancer_from_preset

    model = build_deploy_model(enhancer_from_preset(preset).eval()).to(device, dtype)
    if model.lut is not None:
        model.lut.eight_bit_frames = True  # as TorchBackend runs it
    frame = eight_bit_frame(HEIGHT, WIDTH).to(device, dtype)
    with torch.inference_mode():
        return 1e3 * median_seconds(lambda: model(frame), device, warmup, repeats)


def preset_costs(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    from vqe.host_memory import keep_freed_memory
    from vqe.inference.presets import preset_cost

    keep_freed_memory()  # as video enhancement runs the model (vqe.inference.backends)
    use_cuda = torch.cuda.is_available() and not args.no_cuda
    costs = {}
    for preset in args.presets:
        count = preset_cost(preset)
        cost: dict[str, Any] = {
            "gmac_720p": count.gmacs,
            "parameters": count.parameters,
            "cpu_ms": time_preset(
                preset, torch.device("cpu"), torch.float32, args.warmup, args.repeats
            ),
            "cuda_ms": None,
        }
        if use_cuda:
            cost["cuda_ms"] = time_preset(
                preset, torch.device("cuda"), torch.float16, args.warmup, args.repeats
            )
        print(
            f"[frontier] {preset}: {cost['gmac_720p']:.2f} GMAC, CPU {cost['cpu_ms']:.1f} ms"
            + ("" if cost["cuda_ms"] is None else f", CUDA fp16 {cost['cuda_ms']:.2f} ms")
            + " per 720p frame",
            flush=True,
        )
        costs[preset] = cost
    return costs


# --------------------------------------------------------------------------- summary


def method_metrics(record: dict[str, Any], method: str) -> dict[str, float | None]:
    """The frontier's metrics of one method of one quality run (None where not measured)."""
    entry = record["methods"][method]
    values: dict[str, float | None] = {}
    for key, (_, _, (table, split, metric)) in METRICS.items():
        value = entry.get(table, {}).get(split, {}).get(metric)
        values[key] = float(value) if isinstance(value, (int, float)) else None
    return values


def aggregate(per_seed: Sequence[dict[str, float | None]]) -> dict[str, dict[str, Any]]:
    """Per metric: the values of each seed, their mean and sample standard deviation (None with
    fewer than two seeds)."""
    summary = {}
    for key in METRICS:
        values = [run[key] for run in per_seed]
        present = [value for value in values if value is not None and math.isfinite(value)]
        summary[key] = {
            "values": values,
            "mean": statistics.fmean(present) if present else None,
            "spread": statistics.stdev(present) if len(present) > 1 else None,
        }
    return summary


def summarise(
    args: argparse.Namespace,
    runs: dict[str, list[dict[str, Any]]],
    costs: dict[str, dict[str, Any]],
) -> dict[str, Any]:
    rows: dict[str, Any] = {}
    baseline_runs: list[dict[str, float | None]] = []
    for preset, entries in runs.items():
        done = [entry for entry in entries if "record" in entry]
        baseline_runs += [method_metrics(entry["record"], "baseline") for entry in done]
        rows[preset] = {
            **costs[preset],
            "seeds": [entry["seed"] for entry in done],
            "failed": {str(e["seed"]): e["error"] for e in entries if "error" in e},
            "metrics": aggregate([method_metrics(entry["record"], "final") for entry in done]),
            "runs": [
                {
                    "seed": entry["seed"],
                    "folder": entry["folder"],
                    "reused": entry["reused"],
                    "seconds": entry.get("seconds"),
                    "steps": [stage["steps"] for stage in entry["record"]["recipe"]["stages"]]
                    if "record" in entry
                    else None,
                }
                for entry in entries
            ],
        }
    return {
        "benchmark": RESULT_NAME,
        "command": "vqe bench-frontier " + " ".join(args.argv),
        "settings": {
            "presets": list(args.presets),
            "seeds": list(args.seeds),
            "steps": list(args.steps),
            "clips_per_source": args.clips,
            "tiny": args.tiny,
            "overrides": list(args.overrides),
            "timing": {
                "height": HEIGHT,
                "width": WIDTH,
                "warmup": args.warmup,
                "repeats": args.repeats,
                "cpu": "deploy graph, eager, fp32",
                "cuda": "deploy graph, eager, fp16",
            },  # fmt: skip
        },
        "presets": rows,
        # The baseline does not train: every run measures it on the same clips.
        "baseline": {"metrics": aggregate(baseline_runs)},
        "machine": machine_description(
            torch.device("cuda" if torch.cuda.is_available() and not args.no_cuda else "cpu")
        ),
    }


def _cell(key: str, summary: dict[str, Any]) -> str:
    fmt = METRICS[key][1]
    if summary["mean"] is None:
        return "n/a"
    text = fmt.format(summary["mean"])
    return text if summary["spread"] is None else f"{text} ± {fmt.format(summary['spread'])}"


def markdown(result: dict[str, Any]) -> str:
    settings = result["settings"]
    cuda = any(row["cuda_ms"] is not None for row in result["presets"].values())
    headings = ["preset", "GMAC/720p", "CPU ms/720p"] + (["CUDA fp16 ms/720p"] if cuda else [])
    headings += [METRICS[key][0] for key in METRICS] + ["seeds"]
    lines = [
        "# Quality/speed frontier",
        "",
        f"Each preset trained by the quality recipe, steps {'/'.join(map(str, settings['steps']))}"
        f" (stage 1/2/3), {settings['clips_per_source']} clip(s) per source; training seeds "
        f"{', '.join(map(str, settings['seeds']))} (mean ± standard deviation over seeds). "
        "Quality on the test split (final model; the backlit clips for the person PSNR; "
        "validation PSNR is where choices are made); cost per 1280×720 frame of the deploy graph, "
        f"eager, median of {settings['timing']['repeats']} run(s), on {result['machine']['cpu']} "
        f"({result['machine']['cpu_threads']} threads)"
        + (f" and {result['machine']['gpu']}" if cuda and "gpu" in result["machine"] else "")
        + ".",
        "",
        "| " + " | ".join(headings) + " |",
        "|---|" + "---:|" * (len(headings) - 1),
    ]
    for preset, row in result["presets"].items():
        cells = [preset, f"{row['gmac_720p']:.2f}", f"{row['cpu_ms']:.1f}"]
        if cuda:
            cells.append("n/a" if row["cuda_ms"] is None else f"{row['cuda_ms']:.2f}")
        cells += [_cell(key, row["metrics"][key]) for key in METRICS]
        cells.append(str(len(row["seeds"])))
        lines.append("| " + " | ".join(cells) + " |")
    baseline = result["baseline"]["metrics"]
    cells = ["baseline (tone curve)", "—", "—", *(["—"] if cuda else [])]
    cells += [_cell(key, {**baseline[key], "spread": None}) for key in METRICS] + ["—"]
    lines.append("| " + " | ".join(cells) + " |")
    failed = [
        f"- {preset} seed {seed}: {error}"
        for preset, row in result["presets"].items()
        for seed, error in row["failed"].items()
    ]
    if failed:
        lines += ["", "Failed (rerun the same command to retry them):", "", *failed]
    if settings["tiny"]:
        lines += ["", "**--tiny: a wiring check; the quality numbers mean nothing.**"]
    return "\n".join(lines) + "\n"


def plot(result: dict[str, Any], path: Path) -> Path:
    """Test PSNR and backlit person PSNR against CPU ms per 720p frame."""
    import matplotlib

    matplotlib.use("Agg")  # file output only
    import matplotlib.pyplot as plt

    panels = (("psnr", "test PSNR (dB)"), ("backlit_person_psnr", "backlit person PSNR (dB)"))
    figure, axes = plt.subplots(1, 2, figsize=(10, 4), dpi=120)
    for axis, (key, label) in zip(axes, panels, strict=True):
        for preset, row in result["presets"].items():
            summary = row["metrics"][key]
            if summary["mean"] is None:
                continue
            # Named in the legend, not beside the point: presets of one cost and quality
            # (lut_unet, spatial_lut, tmobile) would print their names over each other.
            axis.errorbar(
                row["cpu_ms"], summary["mean"], yerr=summary["spread"] or 0.0,
                fmt="o", capsize=3, label=preset,
            )  # fmt: skip
        baseline = result["baseline"]["metrics"][key]["mean"]
        if baseline is not None:
            axis.axhline(baseline, color="grey", linestyle="--", label="baseline (tone curve)")
        axis.legend(loc="best", fontsize=8)
        axis.set_xscale("log")  # the presets span ~1 ms (LUT only) to ~1 s per frame
        axis.margins(x=0.2, y=0.15)
        axis.set_xlabel("CPU ms per 1280×720 frame (log)")
        axis.set_ylabel(label)
        axis.grid(True, alpha=0.3)
    title = "Quality against CPU time per frame"
    figure.suptitle(
        title + (" (--tiny: numbers mean nothing)" if result["settings"]["tiny"] else "")
    )
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    plt.close(figure)
    return path


# --------------------------------------------------------------------------- CLI


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vqe bench-frontier",
        description="Train every preset by the quality recipe, measure it on the same clips, "
        "and set its quality against its cost (GMAC, ms per 720p frame): table and plot.",
    )
    parser.add_argument(
        "--presets", nargs="+", default=list(DEFAULT_PRESETS),
        help=f"model_vqe presets (default: {' '.join(DEFAULT_PRESETS)})",
    )  # fmt: skip
    parser.add_argument(
        "--seeds", nargs="+", type=int, default=[0],
        help="training seeds (seed=N), each preset trained once per seed (default 0)",
    )  # fmt: skip
    parser.add_argument(
        "--steps", type=quality._stage_steps, default=DEFAULT_STEPS,
        help=f"steps per stage: N or N1,N2,N3 (default {','.join(map(str, DEFAULT_STEPS))})",
    )  # fmt: skip
    parser.add_argument(
        "--clips", type=int, default=1, help="clips per source (the quality benchmark's; default 1)"
    )
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help=f"result folder (default {DEFAULT_OUT})"
    )
    parser.add_argument(
        "--overwrite", action="store_true",
        help="retrain presets whose quality.json is already in --out (default: reuse them)",
    )  # fmt: skip
    parser.add_argument(
        "--tiny", action="store_true",
        help="wiring check: each preset 2 steps per stage on tiny crops and clips, one timing run",
    )  # fmt: skip
    parser.add_argument(
        "--no-cuda", action="store_true", help="no GPU timing even if one is present"
    )
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per preset (default 5)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed runs first (default 1)")
    parser.add_argument(
        "overrides", nargs="*", metavar="KEY=VALUE",
        help="Hydra overrides for every stage of every preset (not model_vqe= or seed=)",
    )  # fmt: skip
    return parser


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    args.argv = argv
    if args.tiny:
        # What the quality benchmark's --tiny runs (recorded as such), and one timed run at 720p
        # after a warm-up: the cost is real, the wait short.
        args.steps = (quality.TINY["steps"],) * len(quality.STAGES)
        args.clips = quality.TINY["clips"]
        defaults = parser.parse_args([])
        args.repeats = 1 if args.repeats == defaults.repeats else args.repeats
    args.presets = list(dict.fromkeys(args.presets))  # each once, in the order given
    args.seeds = list(dict.fromkeys(args.seeds))
    if args.repeats < 1 or args.warmup < 0 or args.clips < 1:
        parser.error("--repeats and --clips must be ≥ 1 and --warmup ≥ 0")
    for override in args.overrides:
        if override.split("=", 1)[0].lstrip("+~") in ("model_vqe", "seed"):
            parser.error(f"{override}: choose presets with --presets and seeds with --seeds")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        check_presets(args.presets)
        runs = quality_runs(args)
    except FrontierError as error:
        print(f"error: frontier: {error}", file=sys.stderr)
        return 2
    costs = preset_costs(args)
    result = summarise(args, runs, costs)
    save_report(args.out, RESULT_NAME, quality._jsonable(result), markdown(result))
    print(f"wrote {plot(result, args.out / f'{RESULT_NAME}.png')}")
    failed = sum(len(row["failed"]) for row in result["presets"].values())
    if failed:
        print(f"error: frontier: {failed} run(s) failed; rerun to retry them", file=sys.stderr)
        return 1
    return 0


__all__ = ["DEFAULT_PRESETS", "METRICS", "aggregate", "main", "markdown", "plot", "summarise"]


if __name__ == "__main__":
    sys.exit(main())
