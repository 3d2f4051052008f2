"""Training-step time of the enhancer with the critics off, VQA only, and VQA + DOVER.

    vqe bench-train-step [--preset lut_unet] [--batch 8] [--height 368 --width 640]
        [--modes off vqa vqa_dover] [--dover 4x1] [--device cpu|cuda] [--precision 32|bf16]
        [--repeats 3] [--warmup 1] [--threads N] [--out DIR]

One optimizer step of the training system on a batch of ``--batch`` random frames (data
loading excluded; the modes are built together and step in turn, one step each per round, so
that "× off" compares steps taken under the same load), timed part by part with the classes training uses (``Enhancer``,
:class:`~vqe.critics.scorer.CriticScorer`'s critics, :class:`~vqe.losses.WeightedLoss`, Adam):

* ``off`` — supervised MSE only: no critic is called (``loss=supervised``);
* ``vqa`` — MSE + the VQA objective with DOVER(ŷ) reused from the input's cached score, i.e. no
  DOVER pass (``critics.enhanced_dover=input``), through the VQA as loaded: BatchNorms folded
  into the convs, channels-last (:class:`~vqe.critics.vqa.FoldedEncoder`);
* ``vqa_reference`` — the same through the stored layers, BatchNorm by BatchNorm in NCHW (the
  critic before folding: the same-run "before" of ``vqa``);
* ``vqa_cached`` — ``vqa`` with the input's 512 VQA features delivered in the batch, as
  training does for whole stored frames (``view=official``, ``critics.input_features=auto``:
  the feature cache of :mod:`vqe.data.input_cache`): one encoder pass per step instead of two;
* ``vqa_dover`` — the default training: DOVER(ŷ) computed every step without gradient, with
  the clip setting ``--dover TxK`` (default: official 32x3 on CUDA, the cheaper 4x1 on the
  CPU, where 32x3 takes tens of seconds per frame — labelled in the table);
* ``vqa_dover_grad`` (opt-in) — DOVER(ŷ) differentiable plus the DOVER loss term.

DOVER(x) comes from the on-disk cache in training, so it costs nothing per step and is
precomputed here. Parts: enhancer forward, DOVER(ŷ), VQA forward, loss, backward (through the
critics to the enhancer), optimizer step; each is synchronised on CUDA so that the parts add up
to the step (the median step is reported alongside). ``--precision bf16`` runs the forward
passes under bf16 autocast (``trainer.precision=bf16-mixed``). Critics have random weights:
speed does not depend on them. Memory per step: the bytes autograd keeps for the backward
(distinct storages saved by the forward, counted with saved-tensor hooks in the warm-up step)
and, on CUDA, the peak allocated. Results are printed and written to ``--out`` (default
``outputs/benchmarks/``) as ``train_step.json`` and ``train_step.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from vqe.cli.bench.report import machine_description, save_report
from vqe.critics.dover import DoverCritic, DoverSettings, load_dover
from vqe.critics.scorer import CriticScorer, CriticScores
from vqe.critics.vqa import VQA, load_vqa
from vqe.host_memory import keep_freed_memory
from vqe.losses import (
    DoverQuality,
    LossInputs,
    SupervisedMSE,
    VQAObjective,
    WeightedLoss,
)
from vqe.models.loading import enhancer_from_preset

DEFAULT_OUT = Path("outputs/benchmarks")
RESULT_NAME = "train_step"
MODES = ("off", "vqa_reference", "vqa", "vqa_cached", "vqa_dover", "vqa_dover_grad")
DEFAULT_MODES = ("off", "vqa_reference", "vqa", "vqa_cached", "vqa_dover")
VQA_ONLY = ("vqa_reference", "vqa", "vqa_cached")
PARTS = ("enhancer_forward", "dover_enhanced", "vqa_forward", "loss", "backward", "optimizer")


def parse_setting(text: str) -> tuple[int, int]:
    try:
        frames, clips = (int(part) for part in text.lower().split("x"))
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"--dover {text!r}: expected TxK, e.g. 32x3") from error
    return frames, clips


class PartTimer:
    """Wall time per named part, synchronising the device at each boundary."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.times: dict[str, float] = {}

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    @contextlib.contextmanager
    def part(self, name: str) -> Iterator[None]:
        self._sync()
        start = time.perf_counter()
        yield
        self._sync()
        self.times[name] = self.times.get(name, 0.0) + time.perf_counter() - start


class SavedTensorBytes:
    """Bytes of the distinct storages autograd saves for the backward inside the context."""

    def __init__(self) -> None:
        self.storages: dict[int, int] = {}

    def _pack(self, tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        self.storages[storage.data_ptr()] = storage.nbytes()
        return tensor

    def hooks(self) -> contextlib.AbstractContextManager:
        return torch.autograd.graph.saved_tensors_hooks(self._pack, lambda tensor: tensor)

    @property
    def total(self) -> int:
        return sum(self.storages.values())


def reference_vqa() -> VQA:
    """The VQA encoding through its stored layers (no folding): the "before" of ``vqa``."""
    critic = copy.deepcopy(load_vqa(None, allow_random=True))
    critic.folded = None
    return critic


def build_step(
    mode: str, preset: str, device: torch.device, dover_setting: tuple[int, int], bf16: bool
) -> Callable[[torch.Tensor, torch.Tensor, PartTimer], None]:
    """A closure running one timed training step of ``mode`` on (inputs, targets)."""
    enhancer = enhancer_from_preset(preset).to(device).train()
    optimizer = torch.optim.Adam([p for p in enhancer.parameters() if p.requires_grad], lr=1e-4)
    terms: dict = {"mse": SupervisedMSE()}
    weights = {"mse": 1.0}
    scorer = None
    if mode != "off":
        frames, clips = dover_setting
        differentiable = mode == "vqa_dover_grad"
        settings = DoverSettings(frames, clips, differentiable=differentiable)
        dover = DoverCritic(load_dover(None, allow_random=True), settings)
        enhanced_dover = "input" if mode in VQA_ONLY else "online"
        vqa = reference_vqa() if mode == "vqa_reference" else load_vqa(None, allow_random=True)
        scorer = CriticScorer(vqa, dover, "online", enhanced_dover, input_features="auto")
        terms["vqa"], weights["vqa"] = VQAObjective(), 1.0
        if differentiable:
            terms["dover"], weights["dover"] = DoverQuality(), 1.0
    loss = WeightedLoss(terms, weights)
    autocast = (
        torch.autocast(device_type=device.type, dtype=torch.bfloat16)
        if bf16
        else contextlib.nullcontext()
    )
    dover_input: torch.Tensor | None = None
    features_input: torch.Tensor | None = None

    def step(inputs: torch.Tensor, targets: torch.Tensor, timer: PartTimer) -> None:
        nonlocal dover_input, features_input
        if scorer is not None and dover_input is None:  # the caches: computed once, not timed
            with torch.no_grad():
                dover_input = scorer.dover(inputs)
                if mode == "vqa_cached":
                    # What the data pipeline's feature cache holds and serves (vqa_input).
                    encoder = scorer.cache_encoder
                    assert encoder is not None
                    features_input = encoder(inputs)
        optimizer.zero_grad(set_to_none=True)
        with autocast:
            with timer.part("enhancer_forward"):
                output = enhancer.forward_with_weights(inputs)
            critics = None
            if scorer is not None:
                assert dover_input is not None
                with timer.part("dover_enhanced"):
                    dover_enhanced = (
                        scorer.dover(output.frames)
                        if scorer.enhanced_dover == "online"
                        else dover_input
                    )
                with timer.part("vqa_forward"):
                    # As CriticScorer does: the input's features delivered (vqa_cached) or
                    # encoded on the batch without gradients, then the enhanced frames' pass.
                    features = scorer.input_features(inputs, features_input)
                    p, aux_enhanced, aux_input = scorer.vqa.on(output.frames).compare_with_features(
                        output.frames, features, dover_enhanced, dover_input
                    )
                critics = CriticScores(p, aux_enhanced, aux_input, dover_enhanced, dover_input)
            with timer.part("loss"):
                total = loss(LossInputs(inputs, output, targets, critics)).total
        with timer.part("backward"):
            total.backward()
        with timer.part("optimizer"):
            optimizer.step()

    return step


@dataclass
class PreparedMode:
    """One mode's training system, ready to step, and the part times of its timed steps."""

    mode: str
    step: Callable[[torch.Tensor, torch.Tensor, PartTimer], None]
    memory: dict[str, float]
    runs: list[dict[str, float]] = field(default_factory=list)

    @property
    def step_times(self) -> list[float]:
        return [sum(run.values()) for run in self.runs]


def prepare_mode(
    mode: str, args: argparse.Namespace, device: torch.device, batch: tuple[torch.Tensor, ...]
) -> PreparedMode:
    """Build ``mode``'s system, count its memory in an untimed step, then warm it up."""
    step = build_step(mode, args.preset, device, args.dover, args.precision == "bf16")
    saved = SavedTensorBytes()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    with saved.hooks():  # an untimed step: the hooks cost a little
        step(*batch, PartTimer(device))
    memory = {"saved_for_backward_mb": saved.total / 2**20}
    if device.type == "cuda":
        memory["cuda_peak_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
    for _ in range(args.warmup - 1):
        step(*batch, PartTimer(device))
    return PreparedMode(mode, step, memory)


def time_in_turn(prepared: Sequence[PreparedMode], batch: tuple[torch.Tensor, ...],
                 device: torch.device, repeats: int) -> None:
    """``repeats`` rounds of one step of every mode: a shared machine's load swings reach all
    modes alike, and each round gives a same-time ratio to the critics-off step."""
    for _ in range(repeats):
        for mode in prepared:
            timer = PartTimer(device)
            mode.step(*batch, timer)
            mode.runs.append(timer.times)


def mode_row(mode: PreparedMode, args: argparse.Namespace, off: PreparedMode | None) -> dict:
    parts = {name: statistics.median(run.get(name, 0.0) for run in mode.runs) for name in PARTS}
    row = {"mode": mode.mode, "step_s": statistics.median(mode.step_times), "parts_s": parts,
           "memory": mode.memory}  # fmt: skip
    if off is not None:
        # Median over rounds of this step over the critics-off step of the same round.
        ratios = [own / base for own, base in zip(mode.step_times, off.step_times)]
        row["x_off"] = statistics.median(ratios)
    if mode.mode != "off":
        frames, clips = args.dover
        official = (frames, clips) == (32, 3)
        row["dover_setting"] = f"T={frames}, K={clips}" + ("" if official else " (cheaper)")
    return row


def describe(mode: str, row: dict) -> str:
    return {
        "off": "critics off (MSE only)",
        "vqa_reference": "VQA only, stored layers (before folding)",
        "vqa": "VQA only, folded BN + channels-last (DOVER(ŷ) := cached DOVER(x))",
        "vqa_cached": "VQA only, folded, + cached input features",
        "vqa_dover": f"VQA + DOVER(ŷ) no grad, {row.get('dover_setting', '')}",
        "vqa_dover_grad": f"VQA + DOVER(ŷ) with grad + DOVER term, {row.get('dover_setting', '')}",
    }[mode]


def markdown(result: dict) -> str:
    env = result["environment"]
    header = (
        f"Training step of `{result['preset']}` on a batch of {result['batch']} frames at "
        f"{result['height']}×{result['width']}, {result['device']}, precision "
        f"{result['precision']}; median of {result['repeats']} steps after {result['warmup']} "
        f"warm-up; torch {env['torch']}, {env['cpu']} ({env['cpu_threads']} threads)"
        + (f", {env['gpu']}" if env.get("gpu") else "")
        + ". Random critics; data loading excluded; DOVER(x) from the cache (not timed); "
        "the first warm-up step also counts the memory; freed host memory "
        + ("kept for reuse, as in training (vqe.host_memory)." if result.get("freed_memory_kept")
           else "returned to the OS (no glibc mallopt here).")
    )
    columns = " | ".join(name.replace("_", " ") for name in PARTS)
    lines = [
        header,
        "",
        f"| critics | step (s) | × off | saved for backward (MB) | {columns} |",
        "|---|---:|---:|---:|" + "---:|" * len(PARTS),
    ]
    for row in result["rows"]:
        total = sum(row["parts_s"].values()) or 1.0
        shares = " | ".join(
            f"{row['parts_s'][name]:.3f} ({100 * row['parts_s'][name] / total:.0f} %)"
            for name in PARTS
        )
        ratio = f"{row['x_off']:.2f}" if "x_off" in row else "–"
        memory = row["memory"]["saved_for_backward_mb"]
        lines.append(
            f"| {describe(row['mode'], row)} | {row['step_s']:.3f} | {ratio} | {memory:.0f} | "
            f"{shares} |"
        )
    lines += [
        "",
        "Cells: seconds per step (share of the step); × off: the step over the critics-off "
        "step of the same round (the modes step in turn, one step each per round), median over "
        "the rounds; saved for backward: activation bytes autograd holds at the peak "
        "of the step (the step's memory beyond the weights)"
        + (", CUDA peak allocated in the JSON" if result["device"] == "cuda" else "")
        + ".",
    ]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="vqe bench-train-step", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--preset", default="lut_unet", help="model_vqe preset (default lut_unet)")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--height", type=int, default=368)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--modes", nargs="+", choices=MODES, default=list(DEFAULT_MODES))
    parser.add_argument(
        "--dover",
        type=parse_setting,
        default=None,
        help="DOVER clip setting TxK (default 32x3 on CUDA, 4x1 on CPU)",
    )
    parser.add_argument(
        "--device", choices=("cpu", "cuda"), default=None, help="default: cuda when present"
    )
    parser.add_argument("--precision", choices=("32", "bf16"), default="32")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    if args.repeats < 1 or args.warmup < 0 or args.batch < 1:
        parser.error("--repeats and --batch must be >= 1, --warmup >= 0")
    if args.threads:
        torch.set_num_threads(args.threads)
    # As train_vqe.py does: freed activations stay in the heap for the next step.
    kept = keep_freed_memory()
    device_name = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(device_name)
    if args.dover is None:
        args.dover = (32, 3) if device.type == "cuda" else (4, 1)

    result = {
        "preset": args.preset,
        "batch": args.batch,
        "height": args.height,
        "width": args.width,
        "device": device.type,
        "precision": args.precision,
        "repeats": args.repeats,
        "warmup": args.warmup,
        "environment": machine_description(device),
        "freed_memory_kept": kept,
        "rows": [],
    }
    generator = torch.Generator().manual_seed(0)
    shape = (args.batch, 3, args.height, args.width)
    batch = (torch.rand(shape, generator=generator).to(device),  # inputs, targets
             torch.rand(shape, generator=generator).to(device))  # fmt: skip
    prepared = [prepare_mode(mode, args, device, batch) for mode in args.modes]
    time_in_turn(prepared, batch, device, args.repeats)
    off = next((mode for mode in prepared if mode.mode == "off"), None)
    for mode in prepared:
        row = mode_row(mode, args, off)
        result["rows"].append(row)
        print(f"{describe(mode.mode, row)}: {row['step_s']:.3f} s/step", flush=True)

    save_report(args.out, RESULT_NAME, result, markdown(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
