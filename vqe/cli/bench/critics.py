"""Cost of the frozen critics: parameters, time per frame, peak memory.

    vqe bench-critics [--settings 32x3 8x3 4x3 4x1] [--repeats 2] [--warmup 1]
        [--height 720 --width 1280] [--device cpu] [--threads N] [--no-vqa] [--no-backward]
        [--out DIR]

DOVER scores one frame (1×3×height×width, internal RGB) with each setting ``TxK`` (T identical
frames per clip, K technical clips; ``32x3`` is the official setting, everything else is
cheaper than official and gives different scores). Time per frame is the median of
``--repeats`` timed runs after ``--warmup`` untimed ones, views included; with
``--no-backward`` unset, the differentiable path (forward + backward to the frame) is timed
too for the cheaper settings — the cost of DOVER(enhanced) in training. The VQA (when
``vqe.critics.vqa`` is importable) compares one pair of frames. Critics have random weights:
speed and memory do not depend on them.

GFLOP/frame counts the matmuls and convolutions (torch's ``FlopCounterMode``) on the meta
device, so it is exact and independent of the machine's load. Memory: on CPU, the process's peak resident set size (``getrusage`` max RSS, which only grows)
read after each setting; settings run cheapest first, so each reading is that setting's peak
(or an earlier, cheaper one's). On CUDA, ``torch.cuda.max_memory_allocated`` per setting.
Results are printed and written to ``--out`` (default ``outputs/benchmarks/``) as
``critics.json`` and ``critics.md``.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import platform
import resource
import sys
from collections.abc import Sequence
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from vqe.cli.bench.report import save_report
from vqe.cli.bench.timing import median_seconds
from vqe.critics.dover import DOVER, DoverSettings, load_dover

DEFAULT_OUT = Path("outputs/benchmarks")
RESULT_NAME = "critics"
DEFAULT_SETTINGS = ("4x1", "4x3", "8x3", "32x3")


def parse_setting(text: str, differentiable: bool = False) -> DoverSettings:
    """``"TxK"`` → DoverSettings(num_frames=T, num_technical_clips=K)."""
    try:
        frames, clips = (int(part) for part in text.lower().split("x"))
    except ValueError as error:
        raise argparse.ArgumentTypeError(
            f"setting {text!r}: expected TxK, e.g. 32x3 (official) or 4x3"
        ) from error
    return DoverSettings(
        num_frames=frames, num_technical_clips=clips, differentiable=differentiable
    )


def peak_memory_mib(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    # ru_maxrss is KiB on Linux, bytes on macOS.
    scale = 1 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2**20


def reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def score_once(dover: DOVER, frame: torch.Tensor, settings: DoverSettings) -> None:
    """One DOVER score of ``frame``; with ``settings.differentiable``, back to the frame too."""
    if settings.differentiable:
        source = frame.clone().requires_grad_(True)
        dover.score(source, settings).sum().backward()
    else:
        dover.score(frame, settings)


def dover_gflop(
    settings: DoverSettings, height: int, width: int, backward: bool
) -> float:
    """GFLOP per frame of matmuls and convolutions (torch's FlopCounterMode), counted on the
    meta device: shapes only, no arithmetic, so it does not depend on the machine's load."""
    with torch.device("meta"):
        network = DOVER().eval().requires_grad_(False)  # frozen, like the critic
        frame = torch.empty(1, 3, height, width, requires_grad=backward)
    with FlopCounterMode(display=False) as counter:
        score = network.score(frame, settings)
        if backward:
            score.sum().backward()
    return counter.get_total_flops() / 1e9


def dover_rows(
    dover: DOVER,
    settings: Sequence[DoverSettings],
    frame: torch.Tensor,
    backward: bool,
    warmup: int,
    repeats: int,
) -> list[dict]:
    rows = []
    cost = sorted(settings, key=lambda s: s.num_frames * (s.num_technical_clips + 1))
    for setting in cost:
        modes = [False] + ([True] if backward and not setting.is_official else [])
        for differentiable in modes:
            used = dataclasses.replace(setting, differentiable=differentiable)

            reset_peak(frame.device)
            run = functools.partial(score_once, dover, frame, used)
            seconds = median_seconds(run, frame.device, warmup, repeats)
            row = {
                "critic": "DOVER",
                "setting": f"T={used.num_frames}, K={used.num_technical_clips}",
                "official": used.is_official,
                "pass": "forward+backward" if differentiable else "forward (no grad)",
                "s_per_frame": seconds,
                "peak_memory_mib": peak_memory_mib(frame.device),
                "gflop_per_frame": dover_gflop(used, *frame.shape[-2:], differentiable),
            }
            rows.append(row)
            print(format_row(row), flush=True)
    return rows


def vqa_rows(
    frame: torch.Tensor, warmup: int, repeats: int
) -> tuple[list[dict], int | None]:
    try:
        from vqe.critics.vqa import load_vqa
    except ImportError as error:
        print(f"VQA not measured: {error}", flush=True)
        return [], None
    vqa = load_vqa(None, allow_random=True).to(frame.device, frame.dtype)
    scores = torch.full((1,), 0.5, device=frame.device, dtype=frame.dtype)
    other = frame.flip(-1)
    reset_peak(frame.device)
    with torch.no_grad():
        seconds = median_seconds(
            lambda: vqa.compare(frame, other, scores, scores),
            frame.device,
            warmup,
            repeats,
        )
    row = {
        "critic": "VQA",
        "setting": "one pair",
        "official": True,
        "pass": "forward (no grad)",
        "s_per_frame": seconds,
        "peak_memory_mib": peak_memory_mib(frame.device),
        "gflop_per_frame": None,
    }
    print(format_row(row), flush=True)
    return [row], sum(p.numel() for p in vqa.parameters())


def format_row(row: dict) -> str:
    official = "official" if row["official"] else "cheaper than official"
    gflop = "" if row["gflop_per_frame"] is None else f"{row['gflop_per_frame']:.1f}"
    return (
        f"| {row['critic']} | {row['setting']} ({official}) | {row['pass']} | {gflop} | "
        f"{row['s_per_frame']:.3f} | {row['peak_memory_mib']:.0f} |"
    )


def markdown(result: dict) -> str:
    env = result["environment"]
    params = result["parameters"]
    lines = [
        (
            f"Critics on one {result['height']}×{result['width']} frame, {env['device']}, "
            f"{env['threads']} threads, torch {env['torch']}, {env['cpu']}; median of "
            f"{result['repeats']} runs after {result['warmup']} warm-up. Random weights."
        ),
        "",
        (
            f"DOVER parameters: {params['dover'] / 1e6:.3f} M (technical branch "
            f"{params['dover_technical'] / 1e6:.3f} M, aesthetic branch "
            f"{params['dover_aesthetic'] / 1e6:.3f} M, heads {params['dover_heads'] / 1e3:.1f} k)"
        )
        + (
            f"; VQA parameters: {params['vqa'] / 1e6:.3f} M."
            if params.get("vqa")
            else "."
        ),
        "",
        (
            "| critic | setting | pass | GFLOP/frame | s/frame | peak memory (MiB, "
            f"{result['memory']}) |"
        ),
        "|---|---|---|---:|---:|---:|",
        *(format_row(row) for row in result["rows"]),
    ]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--settings", nargs="+", default=list(DEFAULT_SETTINGS))
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--height", type=int, default=720)
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--no-vqa", action="store_true")
    parser.add_argument("--no-backward", action="store_true")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)

    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    settings = [parse_setting(text) for text in args.settings]
    frame = torch.rand(
        1, 3, args.height, args.width, generator=torch.Generator().manual_seed(0)
    )
    frame = frame.to(device)

    dover = load_dover(None, allow_random=True).to(device)

    def count(module: torch.nn.Module) -> int:
        return sum(p.numel() for p in module.parameters())

    parameters = {
        "dover": count(dover),
        "dover_technical": count(dover.technical_backbone),
        "dover_aesthetic": count(dover.aesthetic_backbone),
        "dover_heads": count(dover.technical_head) + count(dover.aesthetic_head),
    }
    print(f"DOVER parameters: {parameters['dover']:,}", flush=True)
    print(
        "| critic | setting | pass | GFLOP/frame | s/frame | peak memory (MiB) |",
        flush=True,
    )
    rows = dover_rows(
        dover, settings, frame, not args.no_backward, args.warmup, args.repeats
    )
    if not args.no_vqa:
        more, vqa_parameters = vqa_rows(frame, args.warmup, args.repeats)
        rows += more
        parameters["vqa"] = vqa_parameters

    result = {
        "height": args.height,
        "width": args.width,
        "repeats": args.repeats,
        "warmup": args.warmup,
        "memory": "CUDA max allocated"
        if device.type == "cuda"
        else "process max RSS so far",
        "environment": {
            "device": torch.cuda.get_device_name(device)
            if device.type == "cuda"
            else "CPU",
            "threads": torch.get_num_threads(),
            "torch": torch.__version__,
            "cpu": platform.processor() or platform.machine(),
        },
        "parameters": parameters,
        "rows": rows,
    }
    save_report(args.out, RESULT_NAME, result, markdown(result))
    return result


if __name__ == "__main__":
    main()
