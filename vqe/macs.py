"""Multiply–accumulate (MAC) counting and the 20 GMAC-per-720p-frame budget.

Counting is fvcore's ``FlopCountAnalysis`` (one multiply-add = one count) on a traced forward
pass, plus handles for the ops it leaves uncounted or counts wrongly here:

* ``grid_sampler``: per output value, 4 MACs for bilinear (4-D input), 8 for trilinear (5-D),
  16 for bicubic, 0 for nearest — the weighted sum of the corners read.
* ``upsample_bilinear2d``: 4 MACs per output value; bicubic 16.
* Elementwise multiplications (``mul``, ``div``, ``lerp``, ``addcmul``, ``square``,
  ``reciprocal``) and ``exp`` / ``log`` / ``mean`` (the LUT stage's statistics and gain map):
  1 MAC per output value.
  Pure additions, comparisons, clamps, floors, ReLUs and copies count 0 — they are not MACs.

An :class:`~vqe.models.enhancer.Enhancer` is counted as it ships: its deploy graph (fused convs,
atlas LUT lookup, :mod:`vqe.models.deploy`). Any other module is counted as given. The command
``vqe macs`` (:mod:`vqe.cli.macs`) prints a preset's table.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from math import prod
from typing import Any

import torch
from torch import nn

from vqe.conventions import BUDGET_HEIGHT, BUDGET_WIDTH, MAC_BUDGET
from vqe.models.deploy import build_deploy_model
from vqe.models.enhancer import Enhancer

with warnings.catch_warnings():  # fvcore's imports call the deprecated torch.jit.script
    warnings.simplefilter("ignore", FutureWarning)
    from fvcore.nn import FlopCountAnalysis
    from fvcore.nn.jit_handles import get_shape

log = logging.getLogger(__name__)

Handle = Callable[[list[Any], list[Any]], int]

# grid_sampler's interpolation_mode argument: 0 bilinear, 1 nearest, 2 bicubic.
_CORNERS_2D = {0: 4, 1: 0, 2: 16}


def _output_numel(outputs: list[Any]) -> int:
    shape = get_shape(outputs[0])
    return prod(shape) if shape is not None else 0


def grid_sampler_macs(inputs: list[Any], outputs: list[Any]) -> int:
    """Corners read per output value (bilinear 4, trilinear 8, bicubic 16, nearest 0)."""
    mode = inputs[2].toIValue()
    corners = _CORNERS_2D[int(mode)]
    if len(get_shape(inputs[0]) or ()) == 5:  # volumetric: one more axis to interpolate
        corners *= 2
    return corners * _output_numel(outputs)


def per_output_value(macs: int) -> Handle:
    def handle(inputs: list[Any], outputs: list[Any]) -> int:
        return macs * _output_numel(outputs)

    return handle


#: Handles added to (or replacing) fvcore's defaults. ``None`` = explicitly zero MACs.
EXTRA_OP_HANDLES: dict[str, Handle | None] = {
    "aten::grid_sampler": grid_sampler_macs,
    "aten::grid_sampler_2d": grid_sampler_macs,
    "aten::grid_sampler_3d": grid_sampler_macs,
    "aten::upsample_bilinear2d": per_output_value(4),
    "aten::upsample_bicubic2d": per_output_value(16),
    "aten::mul": per_output_value(1),
    "aten::mul_": per_output_value(1),
    "aten::div": per_output_value(1),
    "aten::div_": per_output_value(1),
    "aten::lerp": per_output_value(1),
    "aten::addcmul": per_output_value(1),
    # The LUT predictor's degradation statistics and gain map (vqe.models.lut): a square is a
    # multiply; exp / log are counted as one each (cheap next to the convs, not free).
    "aten::square": per_output_value(1),
    "aten::reciprocal": per_output_value(1),
    "aten::exp": per_output_value(1),
    "aten::log": per_output_value(1),
    "aten::mean": per_output_value(1),
    "aten::avg_pool2d": per_output_value(1),
    **{
        name: None
        for name in (
            "aten::add",
            "aten::add_",
            "aten::sub",
            "aten::rsub",
            "aten::relu",
            "aten::relu_",
            "aten::leaky_relu",
            "aten::clamp",
            "aten::clamp_max",
            "aten::clamp_min",
            "aten::floor",
            "aten::pixel_shuffle",
            "aten::pixel_unshuffle",
            "aten::pad",
            "aten::replication_pad2d",
            "aten::stack",
            "aten::select",
            "aten::unsqueeze",
            "aten::expand",
            "aten::squeeze",
            "aten::permute",
            "aten::view",
            "aten::reshape",
            "aten::slice",
            "aten::to",
            "aten::abs",
            "aten::neg",
            "aten::triu",
        )
    },
}


@dataclass(frozen=True)
class MacReport:
    """MACs of one forward pass of a 1×3×height×width frame."""

    total: int
    height: int
    width: int
    by_module: dict[str, int]  # "" is the whole model, "a.b" a submodule
    by_operator: dict[str, int]
    parameters: dict[str, int]  # parameter count per module name ("" = whole model)
    uncounted_ops: dict[str, int] = field(default_factory=dict)  # op → occurrences

    @property
    def gmacs(self) -> float:
        return self.total / 1e9

    def table(self, max_depth: int = 3) -> str:
        """Per-module MACs and parameters, modules nested up to ``max_depth`` levels."""
        rows = [("module", "MACs", "GMAC", "share", "params")]
        for name, macs in self.by_module.items():
            depth = 0 if name == "" else name.count(".") + 1
            if depth > max_depth:
                continue
            label = "(total)" if name == "" else "  " * (depth - 1) + name
            share = f"{100.0 * macs / self.total:.1f}%" if self.total else "-"
            params = self.parameters.get(name, 0)
            rows.append((label, f"{macs:,}", f"{macs / 1e9:.3f}", share, f"{params:,}"))
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        lines = [
            "  ".join(
                cell.ljust(widths[i]) if i == 0 else cell.rjust(widths[i])
                for i, cell in enumerate(row)
            )
            for row in rows
        ]
        lines.insert(1, "-" * len(lines[0]))
        if self.uncounted_ops:
            ops = ", ".join(f"{op}×{n}" for op, n in sorted(self.uncounted_ops.items()))
            lines.append(f"ops without a MAC handle (counted as 0): {ops}")
        return "\n".join(lines)


def _as_counted_graph(model: nn.Module) -> nn.Module:
    return build_deploy_model(model) if isinstance(model, Enhancer) else model


def count_macs(
    model: nn.Module, height: int = BUDGET_HEIGHT, width: int = BUDGET_WIDTH
) -> MacReport:
    """MACs of ``model`` (an Enhancer: its deploy graph) on one 3×height×width frame."""
    counted = _as_counted_graph(model)
    reference = next(counted.parameters(), None)
    device = reference.device if reference is not None else torch.device("cpu")
    dtype = reference.dtype if reference is not None else torch.float32
    frame = torch.rand(1, 3, height, width, device=device, dtype=dtype)
    was_training = counted.training
    counted.eval()
    try:
        with torch.no_grad():
            analysis = FlopCountAnalysis(counted, frame)
            analysis.set_op_handle(**EXTRA_OP_HANDLES)
            analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
            analysis.tracer_warnings("none")
            by_module = dict(analysis.by_module())
            total = int(analysis.total())
            by_operator = {op: int(n) for op, n in analysis.by_operator().items()}
            uncounted = {op: int(n) for op, n in analysis.unsupported_ops().items()}
    finally:
        counted.train(was_training)
    parameters: dict[str, int] = {}
    for name, module in counted.named_modules():
        parameters[name] = sum(p.numel() for p in module.parameters())
    return MacReport(
        total=total,
        height=height,
        width=width,
        by_module={name: int(macs) for name, macs in by_module.items()},
        by_operator=by_operator,
        parameters=parameters,
        uncounted_ops=uncounted,
    )


class MacBudgetError(RuntimeError):
    """The model needs more MACs per 720p frame than the budget allows."""


def check_budget(
    model_or_report: nn.Module | MacReport, limit: float = MAC_BUDGET, allow_over: bool = False
) -> MacReport:
    """Count (if needed) and compare with ``limit``; raise :class:`MacBudgetError` when over.

    A report must have been counted at 1280×720. ``allow_over=True`` (config:
    ``allow_over_budget=true``) only warns.
    """
    report = model_or_report
    if not isinstance(report, MacReport):
        report = count_macs(report)
    if (report.height, report.width) != (BUDGET_HEIGHT, BUDGET_WIDTH):
        raise ValueError(
            f"check_budget: the budget is per {BUDGET_WIDTH}×{BUDGET_HEIGHT} frame, but this "
            f"report was counted at {report.width}×{report.height}; count again with "
            "count_macs(model) (default size)"
        )
    if report.total > limit:
        message = (
            f"model needs {report.total:,} MACs ({report.gmacs:.2f} GMAC) per "
            f"{BUDGET_WIDTH}×{BUDGET_HEIGHT} frame, over the limit of {limit:,.0f} "
            f"({limit / 1e9:.1f} GMAC). Shrink the model_vqe preset, or override on purpose "
            "with allow_over_budget=true."
        )
        if not allow_over:
            raise MacBudgetError(message)
        log.warning("%s", message)  # allowed on purpose: said once, in the run's log
    return report


if __name__ == "__main__":
    from vqe.moved import run_moved

    run_moved("vqe.macs", "macs")
