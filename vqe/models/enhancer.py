"""The two-stage enhancer: image-adaptive 3-D LUT (light and colour) → U-Net (noise, artifacts).

Stage 1 is a global :class:`~vqe.models.lut.LutStage` or a region-wise
:class:`~vqe.models.spatial_lut.SpatialLutStage`; stage 2 a
:class:`~vqe.models.unet.UNetStage` or a plain :class:`~vqe.models.resblocks.ResidualBlocksStage`.

Frames go in and come out as RGB float in [0, 1], N×3×H×W (see :mod:`vqe.conventions`). Either
stage can be left out (``lut: null`` / ``unet: null`` in the config) or frozen
(``freeze_lut`` / ``freeze_unet``): a frozen stage has ``requires_grad=False`` and stays in eval
mode, so its batch-norm statistics do not drift either.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from vqe.config_root import CONFIG_DIR  # noqa: F401  (kept importable here; defined there)
from vqe.models.lut import LutStage
from vqe.models.resblocks import ResidualBlocksStage
from vqe.models.spatial_lut import SpatialLutStage
from vqe.models.unet import UNetStage


@dataclass
class EnhancerOutput:
    frames: torch.Tensor  # B×3×H×W enhanced frames in [0, 1]
    lut_frames: torch.Tensor | None  # B×3×H×W after stage 1 (None without a LUT stage)
    # B×K LUT-stage coefficients used (vqe.models.lut.split_coefficients)
    lut_weights: torch.Tensor | None
    # B×3×D×D×D blended LUTs used (a spatial stage: B×cells×3×D×D×D, each cell's LUT)
    luts: torch.Tensor | None


def check_frames(frames: torch.Tensor, who: str) -> None:
    if frames.ndim != 4 or frames.shape[1] != 3:
        raise ValueError(f"{who}: expected N×3×H×W RGB frames, got shape {tuple(frames.shape)}")


class Enhancer(nn.Module):
    """LUT stage → U-Net stage; each optional and freezable."""

    def __init__(
        self,
        lut: LutStage | SpatialLutStage | None = None,
        unet: UNetStage | ResidualBlocksStage | None = None,
        freeze_lut: bool = False,
        freeze_unet: bool = False,
    ) -> None:
        super().__init__()
        if lut is None and unet is None:
            raise ValueError(
                "Enhancer: enable at least one stage (model_vqe.lut or model_vqe.unet)"
            )
        self.lut = lut
        self.unet = unet
        self.freeze_lut = bool(freeze_lut) and lut is not None
        self.freeze_unet = bool(freeze_unet) and unet is not None
        for stage in self.frozen_stages():
            stage.requires_grad_(False)
        self.train()

    def frozen_stages(self) -> list[nn.Module]:
        stages = [(self.lut, self.freeze_lut), (self.unet, self.freeze_unet)]
        return [stage for stage, frozen in stages if frozen and stage is not None]

    def train(self, mode: bool = True) -> Enhancer:
        super().train(mode)
        for stage in self.frozen_stages():
            stage.eval()
        return self

    def predict_lut_weights(self, frames: torch.Tensor) -> torch.Tensor:
        """B×K LUT-stage coefficients of each frame (N blending weights, then the gain map's
        log-gains if the stage has one) — to smooth over time for video."""
        if self.lut is None:
            raise RuntimeError("Enhancer.predict_lut_weights: this enhancer has no LUT stage")
        check_frames(frames, "Enhancer.predict_lut_weights")
        return self.lut.predict_weights(frames)

    def forward_with_weights(
        self, frames: torch.Tensor, lut_weights: torch.Tensor | None = None
    ) -> EnhancerOutput:
        """Enhance and report the LUT stage's weights; ``lut_weights`` overrides the predictor."""
        check_frames(frames, "Enhancer")
        lut_frames = lut_weights_used = luts = None
        enhanced = frames
        if self.lut is not None:
            stage_output = self.lut(frames, lut_weights)
            enhanced = lut_frames = stage_output.frames
            lut_weights_used, luts = stage_output.weights, stage_output.luts
        elif lut_weights is not None:
            raise ValueError("Enhancer: lut_weights given but this enhancer has no LUT stage")
        if self.unet is not None:
            enhanced = self.unet(enhanced)
        return EnhancerOutput(
            frames=enhanced.clamp(0.0, 1.0),
            lut_frames=lut_frames,
            lut_weights=lut_weights_used,
            luts=luts,
        )

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return self.forward_with_weights(frames).frames

