"""End-to-end video enhancement throughput, its breakdown, and the exported package sizes.

    vqe bench-enhance-throughput [--preset lut_unet] [--frames 300]
        [--height 720 --width 1280] [--batch-size 4] [--device auto] [--no-smoothing]
        [--threads N] [--rounds 2] [--no-export] [--out DIR]

**Throughput.** A synthetic clip (a slow pan and zoom across scikit-image's astronaut photo, the
demo set's motion, ``--frames`` frames at ``--height``×``--width``, stored with the official
encoding) is enhanced exactly as ``vqe enhance`` does it
(:func:`vqe.inference.stream.enhance_video`: PyAV decode, batches through the preset's deploy
graph with LUT-weight smoothing, libx264 CRF 18 encode). Frames/s is frames over the wall time
of the whole call; the time in each part (decode, model, encode) is measured inside the
pipeline and given as a share of that wall time (the rest, "other", is the per-video set-up and
the progress bookkeeping). One untimed batch warms the model up first. Untrained weights: speed
does not depend on them (the encode a little, through the content).

**Rounds.** The serial pipeline, the overlapped one and the model alone (the clip decoded into
memory first) run in turn, ``--rounds`` times; each figure is the median run, and "of model
only" the median of each round's own ratio, so that a shared machine's load swings reach all
three alike. **CPU budget:** the process's CPU time per frame (all threads) of the model alone
and of the overlapped pipeline tell how much work decode and encode add, and so how close to
model-only the pipeline can come at all on this many cores (:func:`cpu_budget`).

**Packages.** Unless ``--no-export``, the preset is exported at 1280×720 to CoreML fp16 and int8
(:mod:`vqe.export.coreml`) and to ONNX (:mod:`vqe.export.onnx`); their sizes and conversion
times are reported.

Results are printed and written to ``--out`` (default ``outputs/benchmarks/``) as
``enhance_throughput.json``, ``.md`` and ``.png`` (time per frame by part).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from vqe.cli.bench.report import machine_description
from vqe.dataprep.demo import load_photo, pan_zoom_clip
from vqe.export.metadata import preset_source
from vqe.host_memory import keep_freed_memory
from vqe.inference.backends import TorchBackend, resolve_device
from vqe.inference.stream import (
    EnhanceSettings,
    StageTimes,
    enhance_frames,
    enhance_video,
    should_overlap,
)
from vqe.models.loading import enhancer_from_preset
from vqe.video import read_frames, write_video

DEFAULT_OUT = Path("outputs/benchmarks")
RESULT_NAME = "enhance_throughput"
PARTS = ("decode", "model", "encode", "other")


def make_clip(path: Path, frames: int, height: int, width: int) -> Path:
    """The benchmark's input video, in the official encoding."""
    photo = load_photo("astronaut")
    clip = pan_zoom_clip(photo, frames, width, height, np.random.default_rng(0))
    write_video(path, ((frame * 255.0).round().astype(np.uint8) for frame in clip))
    return path


def model_only(clip: Path, model: TorchBackend, settings: EnhanceSettings) -> dict:
    """The model part alone: the clip decoded into memory first, then enhanced with nothing
    else running (``model`` time of :func:`enhance_frames`: weights, smoothing, enhancement,
    conversion to uint8) — the ceiling end-to-end enhancement can reach. ``cpu_s``: the
    process's CPU time while the model ran (all threads)."""
    frames = list(read_frames(clip, settings.fps))
    times = StageTimes()
    cpu_start = time.process_time()
    for _ in enhance_frames(frames, model, settings, times):
        pass
    return {"frames": times.frames, "model_s": times.model_s,
            "cpu_s": time.process_time() - cpu_start,
            "frames_per_s": times.frames / times.model_s}  # fmt: skip


def time_enhancement(
    clip: Path, workdir: Path, model: TorchBackend, settings: EnhanceSettings
) -> dict:
    """Enhance ``clip`` once (after one warm-up batch) and split the wall time by part;
    ``cpu_s``: the process's CPU time over the call (every thread: the model's, the decoder's,
    libx264's)."""
    warmup = torch.rand(settings.batch_size, 3, 64, 64, device=model.device)
    with torch.inference_mode():
        model.enhance(warmup)
    times = StageTimes()
    cpu_start, start = time.process_time(), time.perf_counter()
    frames = enhance_video(clip, workdir / "enhanced.mp4", model, settings, times)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    seconds = {"decode": times.decode_s, "model": times.model_s, "encode": times.encode_s}
    seconds["other"] = max(wall - sum(seconds.values()), 0.0)
    return {
        "frames": frames,
        "wall_s": wall,
        "cpu_s": cpu,
        "frames_per_s": frames / wall,
        "ms_per_frame": {part: 1e3 * s / frames for part, s in seconds.items()},
        "share": {part: s / wall for part, s in seconds.items()},
    }


def median_run(runs: list[dict]) -> dict:
    """The run with the median frames/s (an actual run, so its parts add up)."""
    ordered = sorted(runs, key=lambda run: run["frames_per_s"])
    return ordered[(len(ordered) - 1) // 2]


def cpu_budget(model_runs: list[dict], pipeline_runs: list[dict], cores: int) -> dict:
    """What the CPU allows overlap to reach. Per frame: the model's CPU time alone, the whole
    overlapped pipeline's (model + decode + encode), their difference (the codec's), and the
    bound ``cores × model-only wall / pipeline CPU``: with every core busy all the time the
    pipeline cannot run faster than its CPU time spread over the cores. Spin-waiting threads
    count as busy, so the bound is a little pessimistic."""
    model_cpu = statistics.median(run["cpu_s"] / run["frames"] for run in model_runs)
    model_wall = statistics.median(run["model_s"] / run["frames"] for run in model_runs)
    pipeline_cpu = statistics.median(run["cpu_s"] / run["frames"] for run in pipeline_runs)
    return {
        "cores": cores,
        "model_cpu_ms_per_frame": 1e3 * model_cpu,
        "model_cores_busy": model_cpu / model_wall,
        "pipeline_cpu_ms_per_frame": 1e3 * pipeline_cpu,
        "codec_cpu_ms_per_frame": 1e3 * (pipeline_cpu - model_cpu),
        "bound": min(1.0, cores * model_wall / pipeline_cpu),
    }


def usable_cores() -> int:
    """Cores this process may run on (its affinity where the OS tells, else all)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def package_sizes(preset: str, workdir: Path) -> list[dict]:
    """Export at 1280×720 to CoreML fp16 / int8 and ONNX; sizes and conversion times."""
    from vqe.export.coreml import export_coreml
    from vqe.export.onnx import export_onnx

    enhancer, source = enhancer_from_preset(preset), preset_source(preset)
    rows = []
    for precision in ("fp16", "int8"):
        start = time.perf_counter()
        export = export_coreml(
            enhancer, workdir / f"{preset}_{precision}.mlpackage", source, precision=precision
        )
        rows.append({"format": f"CoreML {precision}", "bytes": export.size_bytes,
                     "conversion_s": export.conversion_s,
                     "total_s": time.perf_counter() - start})  # fmt: skip
    start = time.perf_counter()
    onnx = export_onnx(enhancer, workdir / f"{preset}.onnx", source)
    rows.append({"format": "ONNX fp32", "bytes": onnx.size_bytes, "conversion_s": onnx.export_s,
                 "total_s": time.perf_counter() - start,
                 "stage_graph_bytes": sum(p.stat().st_size for p in onnx.stage_graphs)})  # fmt: skip
    return rows


def markdown(result: dict) -> str:
    env, run, cpu = result["environment"], result["enhancement"], result["cpu"]
    lines = [
        f"Enhancement of a {result['frames']}-frame {result['width']}×{result['height']} clip, "
        f"preset `{result['preset']}` on {result['device']}, batch {result['batch_size']}, "
        f"smoothing {'on' if result['smoothing'] else 'off'}; torch {env['torch']}, "
        f"{env['cpu']} ({env['cpu_threads']} threads)"
        + (f", {env['gpu']}" if env.get("gpu") else "")
        + ".",
        "",
        f"**{run['frames_per_s']:.2f} frames/s** end to end with decode and encode overlapping "
        f"the model, **{100 * result['of_model_only']:.0f} %** of the model-only "
        f"{result['model_only']['frames_per_s']:.2f} frames/s (serial pipeline: "
        f"{result['serial']['frames_per_s']:.2f} frames/s, "
        f"{100 * result['serial_of_model_only']:.0f} %); medians of {len(result['rounds'])} "
        "rounds of the three in turn, each ratio taken within its round.",
        "",
        "| pipeline | frames/s | of model only | decode ms/frame | model ms/frame "
        "| encode ms/frame | CPU ms/frame |",
        "|---|---:|---:|---:|---:|---:|---:|",
        *(
            f"| {name} | {result[key]['frames_per_s']:.2f} | {100 * ratio:.0f} % | "
            + " | ".join(f"{result[key]['ms_per_frame'][part]:.1f}" for part in PARTS[:3])
            + f" | {1e3 * result[key]['cpu_s'] / result[key]['frames']:.0f} |"
            for name, key, ratio in (
                ("serial", "serial", result["serial_of_model_only"]),
                ("overlapped", "enhancement", result["of_model_only"]),
            )
        ),
        f"| model only | {result['model_only']['frames_per_s']:.2f} | 100 % | – | "
        f"{1e3 * result['model_only']['model_s'] / result['model_only']['frames']:.1f} | – | "
        f"{result['cpu']['model_cpu_ms_per_frame']:.0f} |",
        "",
        "Rounds (frames/s, serial / overlapped / model only): "
        + "; ".join(
            f"{item['serial']:.2f} / {item['enhancement']:.2f} / {item['model_only']:.2f}"
            for item in result["rounds"]
        )
        + ".",
        "",
        f"CPU budget: the model alone keeps {cpu['model_cores_busy']:.2f} of the "
        f"{cpu['cores']} cores busy ({cpu['model_cpu_ms_per_frame']:.0f} CPU-ms per frame); "
        f"decode and encode add {cpu['codec_cpu_ms_per_frame']:.0f} CPU-ms per frame, so with "
        f"every core busy all the time overlap can reach at most **{100 * cpu['bound']:.0f} %** "
        "of model-only (cores × model-only wall / pipeline CPU time).",
        "",
        "Part times are each part's own work; overlapped, decode and encode run in their own "
        "threads beside the model, so they add up to more than the wall time. Default on this "
        f"machine: {'overlapped' if result['default_overlap'] else 'serial'} "
        "(vqe.inference.stream.should_overlap).",
    ]
    if result.get("packages"):
        lines += [
            "",
            "Exported at 1280×720:",
            "",
            "| format | size | conversion | whole export (incl. MAC count, checks) |",
            "|---|---:|---:|---:|",
            *(
                f"| {row['format']} | {row['bytes'] / 1e6:.2f} MB | {row['conversion_s']:.1f} s "
                f"| {row['total_s']:.1f} s |"
                for row in result["packages"]
            ),
        ]
    return "\n".join(lines) + "\n"


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ms = result["enhancement"]["ms_per_frame"]
    figure, axis = plt.subplots(figsize=(7, 1.8))
    left = 0.0
    for part, colour in zip(PARTS, ("#4c72b0", "#dd8452", "#55a868", "#999999")):
        axis.barh([0], [ms[part]], left=left, color=colour, label=f"{part} {ms[part]:.0f} ms")
        left += ms[part]
    axis.set_yticks([])
    axis.set_xlabel("ms per frame")
    axis.set_title(
        f"{result['preset']} at {result['width']}×{result['height']} on {result['device']}: "
        f"{result['enhancement']['frames_per_s']:.2f} frames/s"
    )
    axis.legend(loc="upper center", bbox_to_anchor=(0.5, -0.45), ncol=4, frameon=False)
    figure.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(figure)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="vqe bench-enhance-throughput", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--preset", default="lut_unet", help="model_vqe preset (default lut_unet)")
    parser.add_argument("--frames", type=int, default=300,
                        help="clip length (default 300: a 10-s test clip at 30 fps; the pipeline's "
                             "fill and drain weigh more in a shorter one)")
    parser.add_argument("--height", type=int, default=720)
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--batch-size", type=int, default=4, help="frames per model call")
    parser.add_argument("--device", default="auto", help="auto (default), cpu, cuda, …")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads for the model (default: torch's; fewer than the "
                             "cores leaves the decode and encode threads a core of their own)")
    parser.add_argument("--rounds", type=int, default=2,
                        help="rounds of serial, overlapped and model-only runs in turn (default 2)")
    parser.add_argument("--no-smoothing", action="store_true", help="time without the LUT EMA")
    parser.add_argument("--no-export", action="store_true", help="skip the package sizes")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    if args.frames < 1 or args.batch_size < 1 or args.rounds < 1:
        parser.error("--frames, --batch-size and --rounds must be ≥ 1")

    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    settings = EnhanceSettings(args.batch_size, not args.no_smoothing, progress=False)
    keep_freed_memory()  # as vqe.inference's model loading does
    model = TorchBackend(enhancer_from_preset(args.preset), device)
    result = {"preset": args.preset, "frames": args.frames, "height": args.height,
              "width": args.width, "batch_size": args.batch_size, "device": str(device),
              "smoothing": settings.smoothing, "torch_threads": torch.get_num_threads(),
              "environment": machine_description(device)}  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="vqe-enhance-bench-") as folder:
        workdir = Path(folder)
        clip = make_clip(workdir / "input.mp4", args.frames, args.height, args.width)
        serial = dataclasses.replace(settings, overlap=False)
        overlapped = dataclasses.replace(settings, overlap=True)
        runs: dict[str, list[dict]] = {"serial": [], "enhancement": [], "model_only": []}
        # Rounds of the three in turn, so that a shared machine's load swings reach them alike;
        # "of model only" is the median of each round's own ratio.
        for round_index in range(args.rounds):
            runs["serial"].append(time_enhancement(clip, workdir, model, serial))
            runs["enhancement"].append(time_enhancement(clip, workdir, model, overlapped))
            runs["model_only"].append(model_only(clip, model, settings))
            print(f"round {round_index + 1}/{args.rounds}: " + ", ".join(
                f"{name} {run[-1]['frames_per_s']:.2f}" for name, run in runs.items()
            ) + " frames/s", flush=True)
        for name, name_runs in runs.items():
            result[name] = median_run(name_runs)
        result["rounds"] = [
            {name: runs[name][index]["frames_per_s"] for name in runs}
            for index in range(args.rounds)
        ]
        result["of_model_only"] = statistics.median(
            overlapped_run["frames_per_s"] / model_run["frames_per_s"]
            for overlapped_run, model_run in zip(runs["enhancement"], runs["model_only"])
        )
        result["serial_of_model_only"] = statistics.median(
            serial_run["frames_per_s"] / model_run["frames_per_s"]
            for serial_run, model_run in zip(runs["serial"], runs["model_only"])
        )
        result["cpu"] = cpu_budget(runs["model_only"], runs["enhancement"], usable_cores())
        result["default_overlap"] = should_overlap(model, settings.overlap)
        if not args.no_export:
            result["packages"] = package_sizes(args.preset, workdir)

    args.out.mkdir(parents=True, exist_ok=True)
    paths = {suffix: args.out / f"{RESULT_NAME}.{suffix}" for suffix in ("json", "md", "png")}
    paths["json"].write_text(json.dumps(result, indent=2) + "\n")
    table = markdown(result)
    paths["md"].write_text(table)
    plot(result, paths["png"])
    print()
    print(table)
    print("wrote " + ", ".join(str(path) for path in paths.values()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
