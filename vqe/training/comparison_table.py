"""Input vs baseline vs model on the supervised rows of a test set: the demo run's last word.

After the test loop, :func:`comparison_table` runs over the same test dataset (the datamodule's
``test_set``, so the same frames and eval transform) and compares three things against the
targets: the input unchanged, the tone-curve baseline (:class:`vqe.baseline.tone.ToneMapper`,
as ``baseline/baseline.py`` runs it: one mapper per video, frames in order) and the model.
Figures are per video first (the mean over its frames), then the mean over videos — the way
``metrics_supervised.csv`` and the official score average the RMSE:

* RMSE on the official ``(v − 128)/128`` scale (:func:`vqe.conventions.vqa_scale_rmse`);
* PSNR in dB on [0, 1] values.

The model's output is scored as the test loop scores it (float, not rounded to 8 bits); the
baseline works on 8-bit frames by nature. Only the demo prints it (the config key
``quality_table``, off in ``configs/vqe.yaml``, on in ``configs/demo/demo.yaml``): on the
challenge data the baseline pass over every test frame would cost as much as the test loop
itself.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from vqe.baseline.tone import ToneMapper
from vqe.conventions import rgb_uint8_to_tensor, tensor_to_rgb_uint8, vqa_scale_rmse
from vqe.metrics.full_reference import frame_psnr

log = logging.getLogger(__name__)

Enhance = Callable[[Tensor], Tensor]
METHODS = ("input", "baseline", "model")


@dataclass(frozen=True)
class ComparisonRow:
    method: str
    rmse: float  # mean over videos of the mean per-frame RMSE, (v − 128)/128 scale
    psnr: float  # mean over videos of the mean per-frame PSNR, dB on [0, 1]


@dataclass(frozen=True)
class ComparisonTable:
    rows: tuple[ComparisonRow, ...]
    videos: int
    frames: int

    def row(self, method: str) -> ComparisonRow:
        return next(row for row in self.rows if row.method == method)

    def as_dict(self) -> dict[str, Any]:
        return {
            "videos": self.videos,
            "frames": self.frames,
            **{row.method: {"rmse": row.rmse, "psnr": row.psnr} for row in self.rows},
        }

    def markdown(self, title: str = "test split, supervised rows") -> str:
        lines = [
            f"{title}: {self.videos} videos, {self.frames} frames",
            "| method | RMSE, (v−128)/128 | PSNR dB |",
            "|---|---:|---:|",
        ]
        lines += [f"| {row.method} | {row.rmse:.4f} | {row.psnr:.2f} |" for row in self.rows]
        return "\n".join(lines)


def _videos(dataset: Any) -> list[list[int]]:
    """Row numbers of the rows with a target, grouped by video, in frame order."""
    table = dataset.index
    groups: dict[tuple[str, str], list[tuple[int, int]]] = {}
    for row in range(len(dataset)):
        if dataset.has_target(row):
            key = (str(table.at[row, "subset"]), str(table.at[row, "video_id"]))
            groups.setdefault(key, []).append((int(table.at[row, "frame_index"]), row))
    return [[row for _, row in sorted(frames)] for _, frames in sorted(groups.items())]


def _tone_mapped(frames: Sequence[Tensor]) -> Tensor:
    mapper = ToneMapper()  # one per video, as the baseline CLI runs it
    return torch.stack([rgb_uint8_to_tensor(mapper(tensor_to_rgb_uint8(f))) for f in frames])


@torch.no_grad()
def comparison_table(enhance: Enhance, dataset: Any, batch_size: int = 8) -> ComparisonTable | None:
    """The three methods on ``dataset``'s rows with a target; None when it has none.

    ``dataset`` is a :class:`vqe.data.datasets.FrameDataset`; ``enhance`` maps an N×3×H×W batch
    to the enhanced batch (e.g. the trained enhancer in eval mode).
    """
    videos = _videos(dataset)
    if not videos:
        return None
    per_video: dict[str, list[tuple[float, float]]] = {method: [] for method in METHODS}
    frames = 0
    for rows in videos:
        items = [dataset[row] for row in rows]
        x = torch.stack([item["x"] for item in items]).float()
        y = torch.stack([item["y"] for item in items]).float()
        outputs = {
            "input": x,
            "baseline": _tone_mapped(list(x)),
            "model": torch.cat(
                [enhance(x[i : i + batch_size]).float().cpu() for i in range(0, len(x), batch_size)]
            ),
        }
        for method, output in outputs.items():
            per_video[method].append(
                (
                    float(vqa_scale_rmse(output, y).mean()),
                    float(frame_psnr(output.clamp(0.0, 1.0), y).mean()),
                )
            )
        frames += len(rows)
    result = []
    for method in METHODS:
        values = np.array(per_video[method])
        result.append(ComparisonRow(method, float(values[:, 0].mean()), float(values[:, 1].mean())))
    assert all(math.isfinite(row.rmse) for row in result)
    return ComparisonTable(tuple(result), videos=len(videos), frames=frames)


def report_comparison(enhancer: torch.nn.Module, dataset: Any) -> dict[str, Any] | None:
    """Log (and return as a dict) the table of ``enhancer`` on ``dataset``; None without rows."""
    parameter = next(enhancer.parameters(), None)
    device = parameter.device if parameter is not None else torch.device("cpu")
    was_training = enhancer.training
    enhancer.eval()
    try:
        table = comparison_table(lambda batch: enhancer(batch.to(device)), dataset)
    finally:
        enhancer.train(was_training)
    if table is None:
        return None
    log.info("quality on the test set:\n%s", table.markdown())
    return table.as_dict()


__all__ = ["ComparisonRow", "ComparisonTable", "comparison_table", "report_comparison"]
