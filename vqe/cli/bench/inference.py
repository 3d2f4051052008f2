"""Inference speed of the enhancer presets, against the machine's own peak conv throughput.

    vqe bench-inference [--presets lut unet lut_unet] [--repeats 5] [--warmup 2]
        [--paths eager channels_last compile] [--height 720 --width 1280] [--no-cuda] [--out DIR]

Each preset's deploy graph (fused convs, atlas LUT — what ships, :mod:`vqe.models.deploy`) runs
on one 1×3×height×width frame with untrained weights (speed does not depend on them):

* CPU in fp32, and CUDA in fp16 and bf16 when a GPU is present;
* paths: ``eager`` (NCHW), ``channels_last`` (the model in NHWC, fed the NCHW frame a decoder
  gives; it converts after the LUT stage), ``compile`` (``torch.compile`` of the channels-last
  model; slow to compile, so opt-in on CPU).

Time per frame is the median of ``--repeats`` timed runs after ``--warmup`` untimed ones.
GMAC/frame is counted as in :mod:`vqe.macs`. The peak is one large 3×3 convolution
(64→64 channels on 360×640, 8.49 GMAC, the U-Net's busiest shape class) on the same device and
dtype, in the faster of NCHW and NHWC, timed in turn with each row's model (one call each per
round); "of peak" is the preset's GMAC/s divided by that same-time peak. Results are printed
and written to ``--out`` (default ``outputs/benchmarks/``) as ``inference.json`` and
``inference.md``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path

import skimage.data
import torch
import torch.nn.functional as F
from torch import nn

from vqe.cli.bench.report import machine_description, save_report
from vqe.cli.bench.timing import median_seconds
from vqe.conventions import rgb_uint8_to_tensor, tensor_to_rgb_uint8
from vqe.host_memory import keep_freed_memory
from vqe.macs import count_macs
from vqe.models.deploy import (
    DeployEnhancer,
    DeployLutStage,
    DeploySpatialLutStage,
    build_deploy_model,
)
from vqe.models.execution import eager_cpu_inference
from vqe.models.loading import enhancer_from_preset
from vqe.models.lut_kernel import fused_lookup_available

DEFAULT_OUT = Path("outputs/benchmarks")
RESULT_NAME = "inference"
PATHS = ("eager", "channels_last", "compile")
PEAK_CHANNELS, PEAK_HEIGHT, PEAK_WIDTH = 64, 360, 640


def peak_conv_gmacs(
    device: torch.device, dtype: torch.dtype, warmup: int, repeats: int
) -> tuple[dict, Callable[[], object]]:
    """GMAC/s of one large 3×3 conv, the best of NCHW and NHWC memory formats, and that conv in
    its faster format (to time again beside each preset: :func:`benchmark_preset`)."""
    macs = 9 * PEAK_CHANNELS**2 * PEAK_HEIGHT * PEAK_WIDTH
    frame = torch.rand(1, PEAK_CHANNELS, PEAK_HEIGHT, PEAK_WIDTH, device=device, dtype=dtype)
    best_ms, best_run = float("inf"), None
    for memory_format in (torch.contiguous_format, torch.channels_last):
        conv = nn.Conv2d(PEAK_CHANNELS, PEAK_CHANNELS, 3, padding=1).to(device, dtype).eval()
        conv = conv.to(memory_format=memory_format).requires_grad_(False)
        run = partial(conv, frame.contiguous(memory_format=memory_format))
        with torch.inference_mode():
            ms = 1e3 * median_seconds(run, device, warmup, repeats)
        if ms < best_ms:
            best_ms, best_run = ms, run
    assert best_run is not None
    return {"gmac": macs / 1e9, "ms": best_ms, "gmac_per_s": macs / 1e6 / best_ms}, best_run


def prepare(
    model: nn.Module, frame: torch.Tensor, path: str
) -> tuple[Callable[[], object], torch.Tensor]:
    """The callable to time for ``path`` and the input it takes."""
    if path == "eager":
        return model, frame
    # The frame stays NCHW, as decoded batches arrive: the deploy graph converts it for the
    # U-Net after the LUT stage (vqe.models.deploy), as the video backend runs it.
    model = model.to(memory_format=torch.channels_last)
    if path == "channels_last":
        return model, frame
    if path == "compile":
        return torch.compile(model), frame
    raise ValueError(f"unknown path {path!r}; choose from {PATHS}")


def lut_stage_ms(
    model: DeployEnhancer, frame: torch.Tensor, device: torch.device, warmup: int, repeats: int
) -> dict[str, float]:
    """ms of the deploy graph's LUT stage alone: as run (``eager``: predictor, lookup — the
    fused CPU kernel where it is built, else the red-level ``grid_sample`` of the 8-bit frame —
    and the result in the U-Net's layout, as the frame hands it on) and with its atlas lookup as
    exported (what CoreML/ONNX run, :func:`~vqe.models.deploy.atlas_lookup` on NCHW planes)."""
    stage = model.lut
    assert isinstance(stage, (DeployLutStage, DeploySpatialLutStage))
    planar = frame.contiguous()
    runs = {
        "eager": partial(stage, frame, model.unet_memory_format()),
        "atlas": partial(stage.exported_form, planar),
    }
    with torch.inference_mode():
        # Interleaved, one call of each per round, so that a shared machine's load swings
        # reach both forms alike.
        for run in runs.values():
            median_seconds(run, device, warmup, 1)
        times: dict[str, list[float]] = {name: [] for name in runs}
        for _ in range(repeats):
            for name, run in runs.items():
                times[name].append(1e3 * median_seconds(run, device, 0, 1))
    return {name: statistics.median(values) for name, values in times.items()}


def lookup_in_use(frame: torch.Tensor) -> str:
    """Which lookup :func:`lut_stage_ms` timed (eager, on every path; see vqe.models.deploy)."""
    if eager_cpu_inference(frame) and fused_lookup_available():
        return "fused C++ kernel"
    return "red-level grid_sample"


def eight_bit_frame(height: int, width: int) -> torch.Tensor:
    """A decoded-video-like 1×3×height×width frame: a photograph (scikit-image's astronaut)
    resized and quantised to 8 bits, batched as the video stream batches decoded frames (an
    NCHW stack). The convolutions do not care what the pixels are, but the LUT lookup's memory
    access follows the colours, and natural colours are coherent."""
    photo = rgb_uint8_to_tensor(skimage.data.astronaut())[None]
    resized = F.interpolate(photo, size=(height, width), mode="bilinear", align_corners=False)
    decoded = tensor_to_rgb_uint8(resized[0])  # H×W×3 uint8, as PyAV decodes
    return torch.stack([rgb_uint8_to_tensor(decoded)])  # as vqe.inference.stream batches


def benchmark_preset(
    preset: str,
    device: torch.device,
    dtype: torch.dtype,
    paths: Sequence[str],
    height: int,
    width: int,
    gmac_per_frame: float,
    peak: dict,
    peak_run: Callable[[], object],
    warmup: int,
    repeats: int,
) -> list[dict]:
    """One row per path. The model and the peak conv are timed in turn, one call each per
    round, so that "of peak" compares them under the same load of a shared machine (a peak
    measured once, minutes apart, moved by up to 2× here)."""
    rows = []
    base = build_deploy_model(enhancer_from_preset(preset)).to(device, dtype)
    if base.lut is not None:
        base.lut.eight_bit_frames = True  # as the video stream runs it (TorchBackend)
    frame = eight_bit_frame(height, width).to(device, dtype)
    for path in paths:
        row = {
            "preset": preset,
            "device": device.type,
            "dtype": str(dtype).removeprefix("torch."),
            "path": path,
            "gmac_per_frame": gmac_per_frame,
        }
        try:
            with torch.inference_mode():
                run_model, model_input = prepare(base, frame, path)
                compile_start = time.perf_counter()
                run_model(model_input)  # first call: compiles on the compile path
                row["first_call_s"] = time.perf_counter() - compile_start
                model_call = partial(run_model, model_input)
                for _ in range(warmup):
                    model_call()
                model_s, peak_s = [], []
                for _ in range(repeats):
                    model_s.append(median_seconds(model_call, device, 0, 1))
                    peak_s.append(median_seconds(peak_run, device, 0, 1))
                ms = 1e3 * statistics.median(model_s)
                peak_now = peak["gmac"] / statistics.median(peak_s)
        except Exception as error:  # a path this build/device lacks: report it, keep going
            row["error"] = f"{type(error).__name__}: {str(error).splitlines()[0][:160]}"
            rows.append(row)
            continue
        gmac_per_s = gmac_per_frame * 1e3 / ms
        row.update(
            ms_per_frame=ms,
            frames_per_s=1e3 / ms,
            gmac_per_s=gmac_per_s,
            peak_gmac_per_s=peak_now,
            fraction_of_peak=gmac_per_s / peak_now,
        )
        if base.lut is not None and base.unet is not None:
            with torch.inference_mode():
                lut_model, lut_input = prepare(base, frame, path)
                row["lut_stage_ms"] = lut_stage_ms(lut_model, lut_input, device, warmup, repeats)
                row["lut_lookup"] = lookup_in_use(frame)
        rows.append(row)
        print(format_row(row), flush=True)
    return rows


def format_row(row: dict) -> str:
    head = f"| {row['preset']} | {row['device']} | {row['dtype']} | {row['path']} |"
    if "error" in row:
        return f"{head} failed: {row['error']} | | | | | |"
    return (
        f"{head} {row['ms_per_frame']:.1f} | {row['frames_per_s']:.2f} | "
        f"{row['gmac_per_frame']:.2f} | {row['gmac_per_s']:.1f} | "
        f"{row['peak_gmac_per_s']:.1f} | {100 * row['fraction_of_peak']:.0f} % |"
    )


def lut_share_lines(rows: list[dict]) -> list[str]:
    """The LUT stage's ms and share of the frame, eager vs as exported, per LUT+U-Net row."""
    lines = []
    for row in rows:
        if "lut_stage_ms" not in row:
            continue
        stage, frame = row["lut_stage_ms"], row["ms_per_frame"]
        lines.append(
            f"- {row['preset']} {row['device']} {row['dtype']} {row['path']}: LUT stage "
            f"{stage['eager']:.1f} ms = {100 * stage['eager'] / frame:.1f} % of the frame "
            f"(with the exported atlas lookup instead: {stage['atlas']:.1f} ms, "
            f"{100 * stage['atlas'] / frame:.1f} %); lookup: {row['lut_lookup']}"
        )
    return ["", "LUT stage inside the frame (same run):", "", *lines] if lines else []


def markdown(result: dict) -> str:
    env = result["environment"]
    lines = [
        f"Inference at 1×3×{result['height']}×{result['width']}, deploy graph, median of "
        f"{result['repeats']} runs after {result['warmup']} warm-up; torch {env['torch']}, "
        f"{env['cpu']} ({env['cpu_threads']} threads)"
        + (f", {env['gpu']}" if env.get("gpu") else "")
        + ".",
        "",
        "| preset | device | dtype | path | ms/frame | frames/s | GMAC/frame | GMAC/s "
        "| peak GMAC/s | of peak |",
        "|---|---|---|---|---:|---:|---:|---:|---:|---:|",
        *(format_row(row) for row in result["rows"]),
        *lut_share_lines(result["rows"]),
        "",
        "Peak conv throughput (one 3×3 conv, 64→64 channels, 360×640, best of NCHW/NHWC) "
        "measured first; the table's peak column is that conv timed in turn with each row's "
        'model, and "of peak" divides by it:',
        "",
        *(
            f"- {key}: {peak['gmac_per_s']:.1f} GMAC/s "
            f"({peak['ms']:.1f} ms for {peak['gmac']:.2f} GMAC)"
            for key, peak in result["peaks"].items()
        ),
    ]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="vqe bench-inference", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--presets",
        nargs="+",
        default=["lut", "unet", "lut_unet"],
        help="model_vqe presets to time (default: lut unet lut_unet)",
    )
    parser.add_argument(
        "--paths",
        nargs="+",
        choices=PATHS,
        default=None,
        help="execution paths (default: eager channels_last on CPU, all on CUDA)",
    )
    parser.add_argument(
        "--repeats", type=int, default=5, help="timed runs per measurement (default 5)"
    )
    parser.add_argument("--warmup", type=int, default=2, help="untimed runs first (default 2)")
    parser.add_argument("--height", type=int, default=720)
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--no-cuda", action="store_true", help="skip the GPU even if present")
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help=f"result folder (default {DEFAULT_OUT})"
    )
    args = parser.parse_args(argv)
    if args.repeats < 1 or args.warmup < 0:
        parser.error("--repeats must be >= 1 and --warmup >= 0")

    keep_freed_memory()  # as video enhancement runs the model (vqe.inference.backends)
    use_cuda = torch.cuda.is_available() and not args.no_cuda
    targets = [(torch.device("cpu"), torch.float32, args.paths or ["eager", "channels_last"])]
    if use_cuda:
        cuda_paths = args.paths or list(PATHS)
        targets += [
            (torch.device("cuda"), dtype, cuda_paths) for dtype in (torch.float16, torch.bfloat16)
        ]

    macs = {
        p: count_macs(enhancer_from_preset(p), args.height, args.width).total / 1e9
        for p in args.presets
    }
    result = {
        "height": args.height,
        "width": args.width,
        "repeats": args.repeats,
        "warmup": args.warmup,
        "peaks": {},
        "rows": [],
        "environment": machine_description(targets[-1][0]),
    }
    for device, dtype, paths in targets:
        key = f"{device.type} {str(dtype).removeprefix('torch.')}"
        peak, peak_run = peak_conv_gmacs(device, dtype, args.warmup, args.repeats)
        result["peaks"][key] = peak
        print(f"peak conv on {key}: {peak['gmac_per_s']:.1f} GMAC/s", flush=True)
        for preset in args.presets:
            result["rows"] += benchmark_preset(
                preset,
                device,
                dtype,
                paths,
                args.height,
                args.width,
                macs[preset],
                peak,
                peak_run,
                args.warmup,
                args.repeats,
            )

    save_report(args.out, RESULT_NAME, result, markdown(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
