"""The ``vqe`` command: one entry point for every tool, ``vqe TOOL [ARGS …]``.

``vqe TOOL ARGS`` is ``python -m MODULE ARGS`` (both keep working), ``vqe --help`` lists the
tools and ``vqe TOOL --help`` is the tool's own help. :data:`TOOLS` is the one table of tools;
each module is imported by its dotted name only when its tool runs, so ``vqe --help`` is instant
and the table does not depend on what the tool modules import.

Training, export and the official score keep their documented scripts: ``train_vqe.py``,
``export_coreml.py`` (also ``vqe export``) and ``codalab_scoring/score.py`` (also ``vqe score``).
"""

from __future__ import annotations

import difflib
import importlib
import sys
from collections.abc import Sequence
from typing import NamedTuple


class Tool(NamedTuple):
    module: str  # dotted name of the module whose ``main`` the tool runs
    summary: str  # one line for ``vqe --help``


TOOLS: dict[str, Tool] = {
    # data, model, checkpoints
    "build": Tool("vqe.data.build", "frame index of the official layout (Hydra overrides)"),
    "demo": Tool("vqe.data.demo", "write the embedded demo set, indexed"),
    "score-inputs": Tool(
        "vqe.data.score_inputs", "DOVER(x) of a frame index into the cache: sharded k/n, resumable"
    ),
    "macs": Tool("vqe.macs", "MACs per 720p frame against the budget (Hydra overrides)"),
    "evaluate": Tool("vqe.evaluate", "test loop of a checkpoint, no training (Hydra overrides)"),
    "export": Tool("vqe.export.cli", "checkpoint → CoreML / ONNX package (= export_coreml.py)"),
    "enhance": Tool("vqe.inference.cli", "enhance videos / images / folders, official encoding"),
    "models": Tool("vqe.inference.models_list", "model presets (GMAC/720p, size), shipped models"),
    "pack": Tool("vqe.export.pack", "ship a checkpoint's enhancer (fp16) inside the package"),
    "baseline": Tool("vqe.baseline.cli", "the baseline enhancer (= baseline/baseline.py)"),
    # score and analyse
    "score": Tool("vqe.metrics.score", "official score (= codalab_scoring/score.py)"),
    "synthetic-inputs": Tool("vqe.metrics.synthetic_inputs", "synthetic jpg test inputs → mp4s"),
    "score-outputs": Tool("vqe.metrics.score_outputs", "score a folder of enhanced videos"),
    "tournament": Tool("vqe.metrics.tournament", "rank methods by the VQA's pairwise preference"),
    "bradley-terry": Tool("vqe.metrics.bradley_terry", "Bradley–Terry scores from human votes"),
    "temporal": Tool("vqe.metrics.temporal", "flicker, warping error, temporal profile"),
    "study": Tool("vqe.study.__main__", "pairwise preference study: create, serve, export, report, compare"),
    "p910": Tool("vqe.metrics.p910", "P.910 toolkit CCR votes → pairwise votes CSV"),
    # benchmarks (outputs/benchmarks/)
    "bench-inference": Tool("vqe.benchmarks.inference", "ms/frame at 720p per preset"),
    "bench-train-step": Tool("vqe.benchmarks.train_step", "training step time, critics off / on"),
    "bench-enhance-throughput": Tool(
        "vqe.benchmarks.enhance_throughput", "decode + model + encode frames/s at 720p"
    ),
    "bench-critics": Tool("vqe.benchmarks.critics", "VQA and DOVER forward cost"),
    "bench-build-throughput": Tool("vqe.benchmarks.build_throughput", "dataset builder frames/s"),
    "bench-bradley-terry-fit": Tool(
        "vqe.benchmarks.bradley_terry_fit", "Bradley–Terry fit time for 300k votes"
    ),
    "bench-quality": Tool("vqe.benchmarks.quality", "staged recipe in N minutes → quality table"),
    "bench-frontier": Tool(
        "vqe.benchmarks.frontier", "every preset by the quality recipe → quality against ms/frame"
    ),
    "bench-baseline-bar": Tool(
        "vqe.benchmarks.baseline_bar", "score and RMSE of the baseline and the identity"
    ),
    "bench-gpu": Tool("vqe.benchmarks.gpu_suite", "every benchmark's CUDA rows in one sitting"),
}


def usage() -> str:
    width = max(map(len, TOOLS)) + 2
    lines = [
        "usage: vqe TOOL [ARGS ...]   (vqe TOOL --help: the tool's options)",
        "",
        "vqe TOOL ARGS runs python -m MODULE ARGS. Tools:",
        "",
    ]
    lines += [f"  {name:<{width}}{tool.summary}  [{tool.module}]" for name, tool in TOOLS.items()]
    lines += ["", "Training: python train_vqe.py [overrides] (see README.md)."]
    return "\n".join(lines)


#: The tools that are Hydra apps, and the config each composes: a mistyped key gets one line
#: naming the nearest one (vqe.config_hints) before the tool is imported.
HYDRA_CONFIGS = {"build": "build", "macs": "macs", "evaluate": "evaluate"}


def main(argv: Sequence[str] | None = None) -> int:
    if argv is None:  # the command itself (not a caller passing arguments, such as a test)
        from vqe.quiet import install_warning_filters

        install_warning_filters()  # before the tool imports torch, Lightning or coremltools
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(usage(), file=sys.stdout if args else sys.stderr)
        return 0 if args else 2
    name, rest = args[0], args[1:]
    tool = TOOLS.get(name) or TOOLS.get(name.replace("_", "-"))
    if tool is None:
        close = difflib.get_close_matches(name, TOOLS, n=3)
        hint = f"; did you mean {' or '.join(close)}?" if close else "; vqe --help lists them"
        print(f"vqe: unknown tool {name!r}{hint}", file=sys.stderr)
        return 2
    config = next((c for n, c in HYDRA_CONFIGS.items() if TOOLS[n] is tool), None)
    if config is not None:
        from vqe.config_hints import check_overrides

        message = check_overrides(config, rest)
        if message is not None:
            print(message, file=sys.stderr)
            return 1
    entry = importlib.import_module(tool.module).main
    # The tools read their arguments from sys.argv when main() gets none — argparse and Hydra
    # (whose main takes no argv) alike — so the arguments go there, as with python -m.
    saved = sys.argv
    sys.argv = [f"vqe {name}", *rest]
    try:
        code = entry()
    finally:
        sys.argv = saved
    return code if isinstance(code, int) else 0  # None (Hydra tools), or a report (critics)


if __name__ == "__main__":
    sys.exit(main())
