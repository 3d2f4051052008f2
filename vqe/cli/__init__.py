"""The ``vqe`` command: one entry point for every tool, ``vqe TOOL [ARGS …]``.

``vqe TOOL ARGS`` is ``python -m MODULE ARGS`` (both keep working), ``vqe --help`` lists the
tools and ``vqe TOOL --help`` is the tool's own help. :data:`TOOLS` is the one table of tools;
each module is imported by its dotted name only when its tool runs, so ``vqe --help`` is instant
and the table does not depend on what the tool modules import.

Training, export and the official score keep their documented scripts: ``train_vqe.py`` (also
``vqe train``), ``export_coreml.py`` (also ``vqe export``) and ``codalab_scoring/score.py`` (also
``vqe score``).
"""

from __future__ import annotations

import difflib
import importlib
import runpy
import sys
from collections.abc import Sequence
from typing import NamedTuple


class Tool(NamedTuple):
    module: str  # dotted name of the module whose ``main`` the tool runs
    summary: str  # one line for ``vqe --help``


TOOLS: dict[str, Tool] = {
    # data, model, checkpoints
    "build": Tool("vqe.cli.build", "frame index of the official layout (Hydra overrides)"),
    "demo": Tool("vqe.cli.demo", "write the embedded demo set, indexed"),
    "score-inputs": Tool(
        "vqe.cli.score_inputs", "DOVER(x) of a frame index into the cache: sharded k/n, resumable"
    ),
    "train": Tool("vqe.cli.train", "train, validate and test an enhancer (= train_vqe.py)"),
    "macs": Tool("vqe.cli.macs", "MACs per 720p frame against the budget (Hydra overrides)"),
    "evaluate": Tool(
        "vqe.cli.evaluate", "test loop of a checkpoint, no training (Hydra overrides)"
    ),
    "export": Tool("vqe.cli.export", "checkpoint → CoreML / ONNX package (= export_coreml.py)"),
    "enhance": Tool("vqe.cli.enhance", "enhance videos / images / folders, official encoding"),
    "models": Tool("vqe.cli.models", "model presets (GMAC/720p, size), shipped models"),
    "pack": Tool("vqe.cli.pack", "ship a checkpoint's enhancer (fp16) inside the package"),
    "baseline": Tool("vqe.cli.baseline", "the baseline enhancer (= baseline/baseline.py)"),
    # score and analyse
    "score": Tool("vqe.cli.score", "official score (= codalab_scoring/score.py)"),
    "synthetic-inputs": Tool("vqe.cli.synthetic_inputs", "synthetic jpg test inputs → mp4s"),
    "score-outputs": Tool("vqe.cli.score_outputs", "score a folder of enhanced videos"),
    "tournament": Tool("vqe.cli.tournament", "rank methods by the VQA's pairwise preference"),
    "bradley-terry": Tool("vqe.cli.bradley_terry", "Bradley–Terry scores from human votes"),
    "temporal": Tool("vqe.cli.temporal", "flicker, warping error, temporal profile"),
    "study": Tool(
        "vqe.cli.study", "pairwise preference study: create, serve, export, report, compare"
    ),
    "p910": Tool("vqe.cli.p910", "P.910 toolkit CCR votes → pairwise votes CSV"),
    # benchmarks (outputs/benchmarks/)
    "bench-inference": Tool("vqe.cli.bench.inference", "ms/frame at 720p per preset"),
    "bench-train-step": Tool("vqe.cli.bench.train_step", "training step time, critics off / on"),
    "bench-enhance-throughput": Tool(
        "vqe.cli.bench.enhance_throughput", "decode + model + encode frames/s at 720p"
    ),
    "bench-critics": Tool("vqe.cli.bench.critics", "VQA and DOVER forward cost"),
    "bench-build-throughput": Tool("vqe.cli.bench.build_throughput", "dataset builder frames/s"),
    "bench-bradley-terry-fit": Tool(
        "vqe.cli.bench.bradley_terry_fit", "Bradley–Terry fit time for 300k votes"
    ),
    "bench-quality": Tool("vqe.cli.bench.quality", "staged recipe in N minutes → quality table"),
    "bench-frontier": Tool(
        "vqe.cli.bench.frontier", "every preset by the quality recipe → quality against ms/frame"
    ),
    "bench-cast": Tool(
        "vqe.cli.bench.cast", "share of a pure colour cast each method removes, per photo"
    ),
    "bench-baseline-bar": Tool(
        "vqe.cli.bench.baseline_bar", "score and RMSE of the baseline and the identity"
    ),
    "bench-gpu": Tool("vqe.cli.bench.gpu_suite", "every benchmark's CUDA rows in one sitting"),
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
    lines += ["", "Training: vqe train [overrides] (= python train_vqe.py; see README.md)."]
    return "\n".join(lines)


#: The tools that are Hydra apps. They run as ``python -m`` runs them (see :func:`_run_as_main`),
#: so their ``__main__`` block, which answers a mistyped key with one line naming the nearest
#: one (vqe.cli.config_hints), runs for ``vqe TOOL`` too.
HYDRA_TOOLS = frozenset({"build", "train", "macs", "evaluate"})


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
    hydra_app = any(TOOLS[n] is tool for n in HYDRA_TOOLS)
    saved = sys.argv
    # The tools read their arguments from sys.argv when main() gets none — argparse and Hydra
    # (whose main takes no argv) alike — so the arguments go there, as with python -m.
    sys.argv = [f"vqe {name}", *rest]
    try:
        if not hydra_app:
            code = importlib.import_module(tool.module).main()
        else:
            code = _run_as_main(tool.module)
    finally:
        sys.argv = saved
    return code if isinstance(code, int) else 0  # None (Hydra tools), or a report (critics)


def _run_as_main(module: str) -> int | None:
    """``python -m module`` in this process: a Hydra tool runs as ``__main__`` with the module's
    own spec and file as ``sys.argv[0]``, so that Lightning's DDP launcher, which starts the other
    ranks from ``__main__``, starts ``python -m module ARGS`` rather than a ``vqe`` it cannot find."""
    try:
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    except SystemExit as exit_:
        return exit_.code if isinstance(exit_.code, int) or exit_.code is None else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
