"""ONNX export of the deploy graph, checked against onnxruntime on this machine.

``X.onnx`` is the whole enhancer, what other runtimes consume (the official starter shipped
ONNX): input ``frame`` 1×3×H×W, output ``enhanced`` 1×3×H×W, both float32 RGB in [0, 1]; the
shape is fixed at export, as in the CoreML package (a free batch axis makes the exporter lose
the spatial sizes the predictor's adaptive pooling needs). The graph is the deploy graph of
:func:`~vqe.models.deploy.build_deploy_model` (fused convs, 4-D atlas LUT lookup), opset
:data:`OPSET`.

For a model with a LUT stage two stage graphs are written beside it, which video enhancement
(:mod:`vqe.inference` ``--onnx``) needs to smooth the LUT weights over time:

* ``X.lut_weights.onnx``: ``frame`` → ``lut_weights`` (1×K blending weights);
* ``X.with_weights.onnx``: ``frame``, ``lut_weights`` → ``enhanced``.

Every graph is run with onnxruntime on a random frame after export and compared with the
PyTorch deploy graph; the largest absolute difference is reported and must stay within
:data:`PARITY_TOLERANCE`, else nothing is kept.

The exporter is torch's TorchScript-based one (``dynamo=False``, deprecated but working): the
torch.export-based one of torch 2.14 fails in its decomposition step on the atlas lookup's
``clamp`` (measured here; revisit when torch moves on).
"""

from __future__ import annotations

import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

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

OPSET = 17  # 4-D GridSample needs ≥ 16
WEIGHTS_NAME = "lut_weights"
#: Largest accepted |onnxruntime − PyTorch| (both fp32): ~1e-6 on random frames, up to ~1.2e-4
#: on rough random LUTs when the runtimes sum convolutions in another order (thread counts);
#: still a twentieth of one 8-bit step (1/255).
PARITY_TOLERANCE = 2e-4


class OnnxParityError(RuntimeError):
    """onnxruntime's output differs from PyTorch's by more than the tolerance."""


def stage_paths(path: Path) -> tuple[Path, Path]:
    """The LUT-weights and with-weights graphs that belong to ``path`` (``X.onnx``)."""
    return (
        path.with_name(f"{path.stem}.lut_weights.onnx"),
        path.with_name(f"{path.stem}.with_weights.onnx"),
    )


@dataclass
class OnnxExport:
    path: Path
    stage_graphs: list[Path]  # empty without a LUT stage
    height: int
    width: int
    macs_720p: int
    parameters: int
    size_bytes: int  # of X.onnx alone
    export_s: float  # export and the onnxruntime check
    max_abs_diff: dict[str, float]  # graph file name → max |onnxruntime − PyTorch|
    metadata: dict[str, str] = field(default_factory=dict)

    def summary(self) -> str:
        diffs = ", ".join(f"{name}: {diff:.2e}" for name, diff in self.max_abs_diff.items())
        lines = [
            f"ONNX model: {self.path}",
            f"  input/output     {INPUT_NAME} / {OUTPUT_NAME}: 1×3×{self.height}×{self.width} "
            "float32, RGB in [0, 1]",
            f"  MACs             {self.macs_720p / 1e9:.3f} GMAC per 1280×720 frame",
            f"  parameters       {self.parameters:,}",
            f"  file size        {self.size_bytes / 1e6:.2f} MB",
            f"  export + check   {self.export_s:.1f} s",
            f"  vs PyTorch       max |onnxruntime − PyTorch| {diffs} "
            f"(tolerance {PARITY_TOLERANCE:g})",
        ]
        if self.stage_graphs:
            names = ", ".join(path.name for path in self.stage_graphs)
            lines.append(f"  stage graphs     {names} (for LUT-weight smoothing in vqe.inference)")
        return "\n".join(lines)


class _LutWeightsGraph(nn.Module):
    def __init__(self, deploy: DeployEnhancer) -> None:
        super().__init__()
        self.deploy = deploy

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        assert self.deploy.lut is not None
        return self.deploy.lut.predict_weights(frames)


class _WithWeightsGraph(nn.Module):
    def __init__(self, deploy: DeployEnhancer) -> None:
        super().__init__()
        self.deploy = deploy

    def forward(self, frames: torch.Tensor, lut_weights: torch.Tensor) -> torch.Tensor:
        return self.deploy.enhance_with_weights(frames, lut_weights)


def _export_graph(
    module: nn.Module,
    example: tuple[torch.Tensor, ...],
    input_names: list[str],
    output_name: str,
    path: Path,
) -> None:
    with warnings.catch_warnings():  # tracer warnings on shape checks (the shape is fixed)
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module.eval(),
            example,
            str(path),
            input_names=input_names,
            output_names=[output_name],
            opset_version=OPSET,
            dynamo=False,
        )


def _annotate(
    path: Path, metadata: dict[str, str], doc: str, output_shape: tuple[int, ...]
) -> None:
    """Metadata, descriptions and the output's static shape (the tracer leaves it symbolic
    when the U-Net pads and crops, though the input's shape fixes it)."""
    import onnx

    model = onnx.load(str(path))
    (output,) = model.graph.output
    output.type.tensor_type.shape.ClearField("dim")
    for size in output_shape:
        output.type.tensor_type.shape.dim.add().dim_value = size
    model.doc_string = doc
    model.producer_name = "vqe"
    for key, value in metadata.items():
        model.metadata_props.add(key=key, value=value)
    descriptions = {INPUT_NAME: INPUT_DESCRIPTION, OUTPUT_NAME: OUTPUT_DESCRIPTION}
    for value in [*model.graph.input, *model.graph.output]:
        value.doc_string = descriptions.get(value.name, value.doc_string)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def session(path: str | Path):
    """An onnxruntime CPU session of ``path``."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3  # errors only
    # Idle workers must not spin: they share the cores with torch's own pool (video enhancement
    # runs both), and spinning pools starve each other (measured on 2 cores: 7× slower).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return onnxruntime.InferenceSession(
        str(path), sess_options=options, providers=["CPUExecutionProvider"]
    )


def _max_abs_diff(path: Path, inputs: dict[str, torch.Tensor], expected: torch.Tensor) -> float:
    feeds = {name: tensor.numpy() for name, tensor in inputs.items()}
    (result,) = session(path).run(None, feeds)
    return float(np.abs(result - expected.numpy()).max())


def export_onnx(
    enhancer: Enhancer,
    out: str | Path,
    source: ModelSource,
    height: int = 720,
    width: int = 1280,
    allow_over_budget: bool = False,
    overwrite: bool = False,
) -> OnnxExport:
    """Export ``enhancer`` to ``out`` (``X.onnx``) and its stage graphs; see the module doc.

    Raises MacBudgetError over budget (unless ``allow_over_budget``), FileExistsError if ``out``
    or a stage graph exists (unless ``overwrite``), OnnxParityError when onnxruntime disagrees
    with PyTorch (nothing is written then).
    """
    out = Path(out)
    if out.suffix != ".onnx":
        raise ValueError(f"{out}: name the ONNX file *.onnx")
    if height < 1 or width < 1:
        raise ValueError(f"height and width must be positive, got {height}×{width}")
    deploy = build_deploy_model(enhancer)
    finals = [out, *(stage_paths(out) if deploy.lut is not None else ())]
    for path in finals:
        check_output_path(path, overwrite, source)
    macs_720p = budget_report(deploy, allow_over_budget).total
    parameters = parameter_count(deploy)
    metadata = export_metadata(source, macs_720p, parameters, "fp32", height, width)

    generator = torch.Generator().manual_seed(0)
    frames = torch.rand(1, 3, height, width, generator=generator)
    graphs: list[tuple[nn.Module, dict[str, torch.Tensor], str]] = [
        (deploy, {INPUT_NAME: frames}, OUTPUT_NAME)
    ]
    if deploy.lut is not None:
        with torch.no_grad():
            weights = deploy.lut.predict_weights(frames)
        # Perturbed weights, so the with-weights graph is checked off the predicted path too.
        weights = weights + 0.1 * torch.randn(weights.shape, generator=generator)
        graphs += [
            (_LutWeightsGraph(deploy), {INPUT_NAME: frames}, WEIGHTS_NAME),
            (_WithWeightsGraph(deploy), {INPUT_NAME: frames, WEIGHTS_NAME: weights}, OUTPUT_NAME),
        ]

    out.parent.mkdir(parents=True, exist_ok=True)
    diffs: dict[str, float] = {}
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=f".{out.stem}.") as staging:
        built = [Path(staging) / path.name for path in finals]
        for (module, inputs, output_name), path in zip(graphs, built):
            _export_graph(module, tuple(inputs.values()), list(inputs), output_name, path)
            with torch.no_grad():
                expected = module(*inputs.values())
            _annotate(path, metadata, __doc__.split("\n\n")[0], tuple(expected.shape))
            diffs[path.name] = _max_abs_diff(path, inputs, expected)
        export_s = time.perf_counter() - start
        worst = max(diffs.values())
        if not worst <= PARITY_TOLERANCE:  # also catches NaN
            raise OnnxParityError(
                f"{out}: onnxruntime differs from PyTorch by {diffs} (tolerance "
                f"{PARITY_TOLERANCE:g}); not saved"
            )
        for path, final in zip(built, finals):
            replace_output(path, final)
    return OnnxExport(
        path=out,
        stage_graphs=finals[1:],
        height=height,
        width=width,
        macs_720p=macs_720p,
        parameters=parameters,
        size_bytes=size_bytes(out),
        export_s=export_s,
        max_abs_diff=diffs,
        metadata=metadata,
    )
