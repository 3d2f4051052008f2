"""Every speed benchmark's accelerator rows in one run, for a session that is lent a GPU.

    vqe bench-gpu [--out DIR] [--device cuda] [--quick]

GPU time is scarce and comes in one sitting, so this is the prepared script: it runs, in order
of what the README needs most,

1. :mod:`vqe.cli.bench.inference` — every preset on the device in fp16 and bf16, eager,
   channels-last and ``torch.compile`` (the goal: ``lut_unet`` under 2 ms per 720p frame in
   fp16 on an H100-class GPU), with the same-run peak conv throughput;
2. :mod:`vqe.cli.bench.train_step` — the step with critics off, VQA (folded), VQA with cached
   input features and VQA + DOVER at the official 32×3 clips, in fp32 and bf16 autocast;
3. :mod:`vqe.cli.bench.enhance_throughput` — decode → model → H.264 on the device, serial,
   overlapped and model-only;

each into its own folder under ``--out`` (default ``outputs/benchmarks/gpu/``), each part
timed and reported even when another fails (a failing part is listed and the exit status is
1). ``--quick`` shrinks every size so that the whole chain runs in a minute on a CPU: the
check that the script itself works before a GPU is at hand (``--device cpu --quick``).
"""

from __future__ import annotations

import argparse
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path

from vqe.cli.bench import enhance_throughput, inference, train_step

DEFAULT_OUT = Path("outputs/benchmarks/gpu")


def parts(device: str, quick: bool) -> list[tuple[str, Callable[[list[str]], int], list[str]]]:
    """(folder name, benchmark main, its arguments) in the order they run."""
    if quick:  # tiny sizes: proves the chain, measures nothing worth reporting
        frame = ["--height", "32", "--width", "48"]
        infer = ["--presets", "tiny", *frame, "--repeats", "1", "--warmup", "0",
                 "--paths", "eager", "channels_last"]  # fmt: skip
        step = ["--preset", "tiny", "--batch", "2", *frame, "--repeats", "1", "--warmup", "0",
                "--modes", "off", "vqa_cached", "--dover", "2x1"]  # fmt: skip
        enhance = ["--preset", "tiny", "--frames", "8", *frame, "--no-export"]
    else:
        infer = ["--repeats", "20", "--warmup", "5"]
        step = ["--batch", "8", "--repeats", "5", "--warmup", "2",
                "--modes", "off", "vqa", "vqa_cached", "vqa_dover"]  # fmt: skip
        enhance = ["--frames", "240", "--batch-size", "8"]
    if device == "cpu":
        infer = [*infer, "--no-cuda"]
    return [
        ("inference", inference.main, infer),
        ("train_step_fp32", train_step.main, [*step, "--device", device, "--precision", "32"]),
        ("train_step_bf16", train_step.main, [*step, "--device", device, "--precision", "bf16"]),
        ("enhance_throughput", enhance_throughput.main, [*enhance, "--device", device]),
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="vqe bench-gpu",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help=f"one folder per benchmark under it (default {DEFAULT_OUT})")
    parser.add_argument("--device", default="cuda", help="cuda (default) or cpu")
    parser.add_argument("--quick", action="store_true",
                        help="tiny sizes: check the chain runs (e.g. on a CPU), measure nothing")
    args = parser.parse_args(argv)
    if args.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            parser.error("--device cuda: no CUDA device here (use --device cpu --quick to "
                         "check the chain)")

    failed: list[str] = []
    for name, run, arguments in parts(args.device, args.quick):
        start = time.perf_counter()
        print(f"== {name}: {' '.join(arguments)}", flush=True)
        try:
            code = run([*arguments, "--out", str(args.out / name)])
        except Exception:  # report it and go on: the other parts' rows are still worth having
            traceback.print_exc()
            code = 1
        print(f"== {name}: exit {code} after {time.perf_counter() - start:.0f} s", flush=True)
        if code != 0:
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)} (the others wrote their results under {args.out})")
        return 1
    print(f"all parts done; results under {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
