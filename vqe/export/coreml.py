"""CoreML export: the deploy graph as an fp16 ML Program ``.mlpackage`` for the Neural Engine.

The package has one fixed-size input and one output, both fp16 (no casts at the boundary, the
Neural Engine's native type):

* ``frame``: 1×3×H×W RGB in [0, 1] (0 black, 1 full scale; decode 8-bit video and divide by 255);
* ``enhanced``: 1×3×H×W RGB in [0, 1], the same layout.

The graph is :func:`~vqe.models.deploy.build_deploy_model`'s: re-parameterised convs and the LUT
looked up in a 2-D atlas, so every tensor has at most 4 dimensions. ``precision="fp16"`` keeps
fp16 weights; ``"int8"`` stores weights as 8-bit (per-channel symmetric linear quantisation,
dequantised to fp16 on load), which shrinks the package; compute stays fp16 either way.

After conversion :func:`check_program` reads the converted program back and refuses it unless
every op is one of :data:`SUPPORTED_OPS`, every computed float tensor is fp16, no tensor has more
than 4 dimensions, and input and output have the expected names, shapes and type. Running the
package needs macOS (coremltools' predictor is macOS-only): :func:`compare_with_torch` runs it
there and reports the largest difference from PyTorch, and says it could not elsewhere.
"""

from __future__ import annotations

import functools
import logging
import platform
import tempfile
import time
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vqe.export.metadata import (
    INPUT_DESCRIPTION,
    INPUT_NAME,
    OUTPUT_DESCRIPTION,
    OUTPUT_NAME,
    ModelSource,
    budget_report,
    check_output_path,
    export_metadata,
    parameter_count,
    replace_output,
    size_bytes,
)
from vqe.models.deploy import DeployEnhancer, build_deploy_model
from vqe.models.enhancer import Enhancer

log = logging.getLogger(__name__)

PRECISIONS = ("fp16", "int8")

#: MIL ops the deploy graph may use: Neural-Engine-friendly iOS16 ops. Anything else means the
#: graph changed in a way the Neural Engine may not run (or runs on the CPU); extend on purpose.
SUPPORTED_OPS = frozenset(
    {
        "const", "constexpr_affine_dequantize",  # weights (int8: dequantised at load)
        "conv", "linear", "matmul",
        "relu", "leaky_relu", "clip", "floor",
        "add", "sub", "mul", "real_div",
        "exp", "log",  # the LUT stage's gain map and log-space statistics (vqe.models.lut)
        "avg_pool", "reduce_mean", "upsample_bilinear", "resample",
        "pixel_shuffle", "pixel_unshuffle",
        "reshape", "slice_by_index", "stack", "concat", "expand_dims", "squeeze", "transpose",
    }
)  # fmt: skip
MAX_RANK = 4
#: Largest difference from PyTorch fp32 accepted on macOS, per precision (1/255 is one 8-bit
#: level). fp16: compute rounding; int8 adds weight rounding — its bound is an estimate, never
#: measured here (no macOS on this project's machines).
PARITY_TOLERANCE = {"fp16": 2.0 / 255, "int8": 8.0 / 255}


class CoreMLCheckError(RuntimeError):
    """The converted program breaks one of the deploy rules; the message lists each problem."""


@dataclass(frozen=True)
class TensorSpec:
    name: str
    shape: tuple[int, ...]
    dtype: str  # CoreML's name: FLOAT16, FLOAT32, …


@dataclass(frozen=True)
class ProgramSummary:
    """What the converted ML Program contains, read back from its spec."""

    op_counts: dict[str, int]  # MIL op type → occurrences
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    computed_float_dtypes: dict[str, int]  # dtype of every non-const float tensor → count
    max_rank: int  # of any tensor the program computes or holds


@dataclass(frozen=True)
class Comparison:
    """Package output vs PyTorch on the same frame; ``max_abs_diff`` None when it could not run."""

    max_abs_diff: float | None
    note: str


@dataclass
class CoreMLExport:
    path: Path
    precision: str
    height: int
    width: int
    macs_720p: int
    parameters: int
    size_bytes: int
    conversion_s: float
    program: ProgramSummary
    comparison: Comparison
    metadata: dict[str, str] = field(default_factory=dict)
    model: Any = None  # the coremltools MLModel that was saved

    def summary(self) -> str:
        ops = ", ".join(f"{op}×{n}" for op, n in sorted(self.program.op_counts.items()))
        io = "; ".join(
            f"{spec.name} {'×'.join(map(str, spec.shape))} {spec.dtype}"
            for spec in (*self.program.inputs, *self.program.outputs)
        )
        lines = [
            f"CoreML package: {self.path}",
            f"  precision        {self.precision} (compute fp16)",
            f"  input/output     {io}  (RGB in [0, 1])",
            f"  MACs             {self.macs_720p / 1e9:.3f} GMAC per 1280×720 frame",
            f"  parameters       {self.parameters:,}",
            f"  package size     {self.size_bytes / 1e6:.2f} MB",
            f"  conversion time  {self.conversion_s:.1f} s",
            f"  op types         {ops}",
            "  checks           only supported ops, fp16 tensors, rank ≤ 4, I/O shapes: passed",
            f"  vs PyTorch       {self.comparison.note}",
        ]
        return "\n".join(lines)


# --------------------------------------------------------------------------- conversion


class _NativeProxyFilter(logging.Filter):
    """Drops coremltools' "Failed to load _ML…Proxy" warnings: its native runtime exists on
    macOS only, so on Linux every import logs eight of them although conversion works."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Failed to load _ML")


@functools.cache  # once per process: one import, one note
def import_coremltools() -> Any:
    """``coremltools``, imported without the native-runtime noise; off macOS one log line says
    instead that packages are converted and checked here but not run."""
    quiet = _NativeProxyFilter()
    # The records are logged on coremltools' own loggers and reach the root's handlers by
    # propagation, where a logger's filter no longer applies; without handlers, lastResort.
    targets = [logging.getLogger("coremltools"), *logging.getLogger().handlers]
    if logging.lastResort is not None:
        targets.append(logging.lastResort)
    for target in targets:
        target.addFilter(quiet)
    try:
        import coremltools
    finally:
        for target in targets:
            target.removeFilter(quiet)
    if platform.system() != "Darwin":
        log.info(
            "coremltools on %s: packages are converted and checked here; running one "
            "(the comparison with PyTorch) needs macOS",
            platform.system(),
        )
    return coremltools


def convert(deploy: DeployEnhancer, height: int, width: int, precision: str = "fp16"):
    """Trace ``deploy`` on a 1×3×height×width frame and convert it to an ML Program."""
    ct = import_coremltools()

    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    example = torch.rand(1, 3, height, width)
    with warnings.catch_warnings():  # tracer warnings on shape checks; the shape is fixed
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(deploy.eval(), example)
        mlmodel = ct.convert(
            traced,
            inputs=[ct.TensorType(name=INPUT_NAME, shape=example.shape, dtype=np.float16)],
            outputs=[ct.TensorType(name=OUTPUT_NAME, dtype=np.float16)],
            convert_to="mlprogram",
            compute_precision=ct.precision.FLOAT16,
            minimum_deployment_target=ct.target.iOS16,
        )
    if precision == "int8":
        mlmodel = quantize_weights_int8(mlmodel)
    return mlmodel


def quantize_weights_int8(mlmodel):
    """8-bit per-channel symmetric weights; fp16 compute."""
    from coremltools.optimize.coreml import (
        OpLinearQuantizerConfig,
        OptimizationConfig,
        linear_quantize_weights,
    )

    config = OptimizationConfig(
        global_config=OpLinearQuantizerConfig(mode="linear_symmetric", dtype="int8")
    )
    # All-zero weights (e.g. untrained LUT bases) give a zero scale; the 0/0 is harmless because
    # dequantisation multiplies by that zero scale again.
    with np.errstate(divide="ignore", invalid="ignore"):
        return linear_quantize_weights(mlmodel, config)


# --------------------------------------------------------------------------- checks


def _feature_spec(feature) -> TensorSpec:
    from coremltools.proto import FeatureTypes_pb2

    array = feature.type.multiArrayType
    dtype = FeatureTypes_pb2.ArrayFeatureType.ArrayDataType.Name(array.dataType)
    return TensorSpec(feature.name, tuple(int(n) for n in array.shape), dtype)


def program_summary(spec) -> ProgramSummary:
    """Read op types, I/O and tensor types from a converted model's protobuf spec."""
    from coremltools.proto import MIL_pb2

    if not spec.HasField("mlProgram"):
        raise CoreMLCheckError("the converted model is not an ML Program")
    ops: Counter[str] = Counter()
    float_dtypes: Counter[str] = Counter()
    max_rank = 0
    for function in spec.mlProgram.functions.values():
        for block in function.block_specializations.values():
            for op in block.operations:
                ops[op.type] += 1
                for output in op.outputs:
                    tensor = output.type.tensorType
                    max_rank = max(max_rank, tensor.rank)
                    dtype = MIL_pb2.DataType.Name(tensor.dataType)
                    # Constants (weights, op attributes such as an alpha) are not computed; the
                    # converter keeps a few scalar attributes in fp32.
                    if dtype.startswith("FLOAT") and not op.type.startswith("const"):
                        float_dtypes[dtype] += 1
    return ProgramSummary(
        op_counts=dict(ops),
        inputs=tuple(_feature_spec(f) for f in spec.description.input),
        outputs=tuple(_feature_spec(f) for f in spec.description.output),
        computed_float_dtypes=dict(float_dtypes),
        max_rank=max_rank,
    )


def check_program(summary: ProgramSummary, height: int, width: int) -> list[str]:
    """Every way the program breaks the deploy rules (empty when it is fine)."""
    problems = []
    unsupported = sorted(set(summary.op_counts) - SUPPORTED_OPS)
    if unsupported:
        problems.append(f"unsupported ops {unsupported} (allowed: {sorted(SUPPORTED_OPS)})")
    other_floats = {k: n for k, n in summary.computed_float_dtypes.items() if k != "FLOAT16"}
    if other_floats:
        problems.append(f"tensors computed in other than fp16: {other_floats}")
    if summary.max_rank > MAX_RANK:
        problems.append(f"a tensor of rank {summary.max_rank} (the deploy graph allows ≤ 4)")
    shape = (1, 3, height, width)
    expected = {"input": (INPUT_NAME, summary.inputs), "output": (OUTPUT_NAME, summary.outputs)}
    for role, (name, found) in expected.items():
        wanted = TensorSpec(name, shape, "FLOAT16")
        if found != (wanted,):
            problems.append(f"{role}s are {list(found)}, expected [{wanted}]")
    return problems


def compare_with_torch(
    mlmodel, deploy: DeployEnhancer, height: int, width: int, precision: str
) -> Comparison:
    """Run the package on macOS and compare with the fp32 PyTorch deploy graph."""
    if platform.system() != "Darwin":
        return Comparison(
            None,
            f"not compared: running a CoreML package needs macOS (this is {platform.system()}); "
            "conversion and spec checks only",
        )
    frame = torch.rand(1, 3, height, width, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = deploy(frame).numpy()
    predicted = mlmodel.predict({INPUT_NAME: frame.numpy().astype(np.float16)})[OUTPUT_NAME]
    diff = float(np.abs(predicted.astype(np.float32) - expected).max())
    tolerance = PARITY_TOLERANCE[precision]
    verdict = "ok" if diff <= tolerance else f"ABOVE the tolerance {tolerance:.4f}"
    return Comparison(diff, f"max |CoreML − PyTorch| = {diff:.5f} on a random frame ({verdict})")


# --------------------------------------------------------------------------- export


def check_export_size(enhancer: Enhancer, height: int, width: int) -> None:
    """The U-Net pads frames to a multiple of its size; converted from a trace, that padding
    arithmetic on the input's shape fails in coremltools, so the package's size must need none
    (1280×720 needs none for every preset)."""
    if height < 1 or width < 1:
        raise ValueError(f"height and width must be positive, got {height}×{width}")
    multiple = enhancer.unet.size_multiple if enhancer.unet is not None else 1
    if height % multiple or width % multiple:
        raise ValueError(
            f"--height {height} --width {width}: the CoreML package of this model needs sizes "
            f"that are multiples of {multiple} (its U-Net's padding cannot be converted); "
            "use e.g. 720×1280, or the ONNX export, which handles any size"
        )


def export_coreml(
    enhancer: Enhancer,
    out: str | Path,
    source: ModelSource,
    height: int = 720,
    width: int = 1280,
    precision: str = "fp16",
    allow_over_budget: bool = False,
    overwrite: bool = False,
) -> CoreMLExport:
    """Convert, check and save ``enhancer`` as ``out`` (an ``.mlpackage``); see module doc.

    Raises MacBudgetError over 20 GMAC per 1280×720 frame (unless ``allow_over_budget``),
    FileExistsError if ``out`` exists (unless ``overwrite``), CoreMLCheckError when the converted
    program breaks a deploy rule (nothing is written then), and on macOS when the package's
    output differs from PyTorch by more than :data:`PARITY_TOLERANCE`.
    """
    out = Path(out)
    if out.suffix != ".mlpackage":
        raise ValueError(f"{out}: a CoreML ML Program is saved as a folder named *.mlpackage")
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    check_export_size(enhancer, height, width)
    check_output_path(out, overwrite, source)
    deploy = build_deploy_model(enhancer)
    macs_720p = budget_report(deploy, allow_over_budget).total

    start = time.perf_counter()
    mlmodel = convert(deploy, height, width, precision)
    conversion_s = time.perf_counter() - start

    summary = program_summary(mlmodel.get_spec())
    problems = check_program(summary, height, width)
    if problems:
        raise CoreMLCheckError(
            f"{out}: the converted program breaks the deploy rules, not saved:\n  "
            + "\n  ".join(problems)
        )
    comparison = compare_with_torch(mlmodel, deploy, height, width, precision)
    diff = comparison.max_abs_diff
    if diff is not None and not diff <= PARITY_TOLERANCE[precision]:  # NaN fails too
        raise CoreMLCheckError(f"{out}: {comparison.note}; not saved")

    parameters = parameter_count(deploy)
    metadata = export_metadata(source, macs_720p, parameters, precision, height, width)
    mlmodel.short_description = "vqe video-conferencing enhancer; input and output RGB in [0, 1]"
    mlmodel.version = metadata["vqe.vqe_version"]
    mlmodel.input_description[INPUT_NAME] = INPUT_DESCRIPTION
    mlmodel.output_description[OUTPUT_NAME] = OUTPUT_DESCRIPTION
    mlmodel.user_defined_metadata.update(metadata)

    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=f".{out.stem}.") as staging:
        built = Path(staging) / out.name
        mlmodel.save(str(built))
        replace_output(built, out)
    return CoreMLExport(
        path=out,
        precision=precision,
        height=height,
        width=width,
        macs_720p=macs_720p,
        parameters=parameters,
        size_bytes=size_bytes(out),
        conversion_s=conversion_s,
        program=summary,
        comparison=comparison,
        metadata=metadata,
        model=mlmodel,
    )


def read_package_summary(path: str | Path) -> tuple[ProgramSummary, dict[str, str]]:
    """Program summary and user metadata of a saved ``.mlpackage`` (works on Linux)."""
    ct = import_coremltools()

    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: no such .mlpackage folder")
    spec = ct.utils.load_spec(str(path))
    return program_summary(spec), dict(spec.description.metadata.userDefined)
