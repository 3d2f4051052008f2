"""Stage 2, plain: a stack of residual blocks on a pixel-unshuffled copy of the frame.

The restoration stage of the challenge's Summer entry — "7 residual blocks" after a 5-LUT stage,
15.4 GMAC in all (NTIRE 2025 VQE report, Table 1 and §4). The report gives the count, not the
block's form, width or resolution; the plainest choices are taken and said here:

* the block is EDSR's (Lim et al., CVPRW 2017): 3×3 conv → ReLU → 3×3 conv, plus the identity,
  no normalisation (nothing to fold at export, nothing that erases absolute brightness);
* it runs after a pixel-unshuffle by ``unshuffle`` (2: H/2×W/2, as vqe's U-Net does), so the
  width that fits the budget is twice the full-resolution one;
* a 3×3 head conv in, a 3×3 tail conv + pixel-shuffle out, and a global residual: the tail
  starts near zero and ICNR (:func:`~vqe.models.unet.icnr_`), so the untrained stage is the
  identity to ~1e-4 and every layer gets a gradient from the first step.

Plain convs only (conv, ReLU, add, pixel-(un)shuffle): the deploy graph is this graph, and it
converts to CoreML fp16 and ONNX as is. Any H×W works: frames are padded (edge-replicated) to a
multiple of ``unshuffle`` and cropped back.
"""

from __future__ import annotations

import torch
from torch import nn

from vqe.models.blocks import conv_forward
from vqe.models.unet import icnr_, pad_to_multiple


class ResidualBlock(nn.Module):
    """EDSR block: ``x + conv(relu(conv(x)))`` at constant width."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        # conv_forward: the ReLU fused into the conv in eager CPU inference, plain ops otherwise.
        return features + conv_forward(conv_forward(features, self.conv1, relu=True), self.conv2)


class ResidualBlocksStage(nn.Module):
    """head conv → ``num_blocks`` × :class:`ResidualBlock` → tail conv, on unshuffled frames;
    the output is the input plus the predicted residual."""

    def __init__(self, channels: int = 22, num_blocks: int = 7, unshuffle: int = 2) -> None:
        super().__init__()
        if channels < 1 or num_blocks < 0 or unshuffle < 1:
            raise ValueError(
                "ResidualBlocksStage: need channels >= 1, num_blocks >= 0, unshuffle >= 1, got "
                f"channels={channels}, num_blocks={num_blocks}, unshuffle={unshuffle}"
            )
        self.unshuffle_factor = int(unshuffle)
        # The sizes a frame must divide by (the CoreML export and tiled inference read it).
        self.size_multiple = self.unshuffle_factor
        packed_channels = 3 * self.unshuffle_factor**2
        self.unshuffle = nn.PixelUnshuffle(self.unshuffle_factor)
        self.head = nn.Conv2d(packed_channels, int(channels), 3, padding=1)
        self.blocks = nn.Sequential(*(ResidualBlock(int(channels)) for _ in range(num_blocks)))
        self.tail = nn.Conv2d(int(channels), packed_channels, 3, padding=1)
        self.shuffle = nn.PixelShuffle(self.unshuffle_factor)
        # Residual ≈ 0 at init (not exactly: zeros would starve the earlier layers of gradient),
        # each sub-pixel alike (ICNR: no checkerboard after the shuffle).
        icnr_(self.tail, self.unshuffle_factor, near_zero=True)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        height, width = frames.shape[-2:]
        padded = pad_to_multiple(frames, self.size_multiple)
        features = conv_forward(self.unshuffle(padded), self.head)
        features = self.blocks(features)
        residual = self.shuffle(conv_forward(features, self.tail))
        return (padded + residual)[..., :height, :width]


__all__ = ["ResidualBlock", "ResidualBlocksStage"]
