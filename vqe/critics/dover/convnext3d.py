"""DOVER's aesthetic backbone: ConvNeXt-T inflated to 3-D.

Architecture facts (ConvNeXt; DOVER): a 2×4×4 stride-2×4×4 stem conv followed by a
channels-first LayerNorm; then, before stages 1–3, a channels-first LayerNorm and a 1×2×2
stride-1×2×2 conv; four stages of depths 3/3/9/3 at widths 96/192/384/768. Each block is a
depthwise k×7×7 conv, a channels-last LayerNorm, a 4× MLP with GELU and a LayerScale ``gamma``,
added to the input. The depthwise temporal extent k repeats the pattern 1, 3, 1 along each
stage's blocks (block j uses 3 when j mod 3 = 1), as DOVER's inflation did. All LayerNorms use
eps 1e-6. The output is the last stage's map, LayerNorm-ed per position: B×768×T/2×H/32×W/32.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

DEPTHS = (3, 3, 9, 3)
WIDTHS = (96, 192, 384, 768)
#: Temporal extent of the depthwise kernel of block j is INFLATION[j % 3].
INFLATION = (1, 3, 1)
SPATIAL_KERNEL = 7
MLP_RATIO = 4
LAYER_NORM_EPS = 1e-6
#: LayerScale starting value; only matters for randomly initialised critics.
LAYER_SCALE_INIT = 1e-6


class ChannelsFirstLayerNorm(nn.Module):
    """LayerNorm over the channel axis (dim 1) of a B×C×T×H×W tensor."""

    def __init__(self, channels: int, eps: float = LAYER_NORM_EPS) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        x = x.movedim(1, -1)
        x = F.layer_norm(x, x.shape[-1:], self.weight, self.bias, self.eps)
        return x.movedim(-1, 1)


class ConvNeXtBlock3D(nn.Module):
    """Depthwise k×7×7 conv → LayerNorm → Linear 4× → GELU → Linear → ×gamma, plus input."""

    def __init__(self, dim: int, temporal_kernel: int) -> None:
        super().__init__()
        kernel = (temporal_kernel, SPATIAL_KERNEL, SPATIAL_KERNEL)
        padding = (temporal_kernel // 2, SPATIAL_KERNEL // 2, SPATIAL_KERNEL // 2)
        self.dwconv = nn.Conv3d(dim, dim, kernel, padding=padding, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=LAYER_NORM_EPS)
        self.pwconv1 = nn.Linear(dim, MLP_RATIO * dim)
        self.act = nn.GELU()
        self.pwconv2 = nn.Linear(MLP_RATIO * dim, dim)
        self.gamma = nn.Parameter(torch.full((dim,), LAYER_SCALE_INIT))

    def forward(self, x: Tensor) -> Tensor:
        y = self.dwconv(x).permute(
            0, 2, 3, 4, 1
        )  # channels-last for the norm and the MLP
        y = self.pwconv2(self.act(self.pwconv1(self.norm(y))))
        return x + (self.gamma * y).permute(0, 4, 1, 2, 3)


def _stem(width: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv3d(3, width, kernel_size=(2, 4, 4), stride=(2, 4, 4)),
        ChannelsFirstLayerNorm(width),
    )


def _downsample(in_width: int, out_width: int) -> nn.Sequential:
    return nn.Sequential(
        ChannelsFirstLayerNorm(in_width),
        nn.Conv3d(in_width, out_width, kernel_size=(1, 2, 2), stride=(1, 2, 2)),
    )


class ConvNeXt3D(nn.Module):
    """The aesthetic backbone: B×3×T×H×W clips → B×768×T/2×H/32×W/32 feature maps."""

    def __init__(
        self,
        depths: Sequence[int] = DEPTHS,
        widths: Sequence[int] = WIDTHS,
        inflation: Sequence[int] = INFLATION,
    ) -> None:
        super().__init__()
        self.downsample_layers = nn.ModuleList(
            [_stem(widths[0])]
            + [_downsample(widths[i], widths[i + 1]) for i in range(len(widths) - 1)]
        )
        self.stages = nn.ModuleList(
            nn.Sequential(
                *(
                    ConvNeXtBlock3D(width, inflation[j % len(inflation)])
                    for j in range(depth)
                )
            )
            for depth, width in zip(depths, widths)
        )
        self.norm = nn.LayerNorm(widths[-1], eps=LAYER_NORM_EPS)

    def forward(self, clips: Tensor) -> Tensor:
        x = clips
        for downsample, stage in zip(self.downsample_layers, self.stages):
            x = stage(downsample(x))
        return self.norm(x.movedim(1, -1)).movedim(-1, 1)


__all__ = ["ChannelsFirstLayerNorm", "ConvNeXt3D", "ConvNeXtBlock3D"]
