"""Stage 2: a residual denoising U-Net that runs on a pixel-unshuffled copy of the frame.

Pixel-unshuffle by ``unshuffle`` turns an H×W×3 frame into an (H/f)×(W/f)×3f² tensor without
losing a pixel, so the widest level already works at reduced resolution. Levels halve the
resolution with strided :class:`~vqe.models.blocks.RepConvBlock` s, come back with a 1×1 conv +
pixel-shuffle, and merge the skip by addition. The last conv predicts a residual and starts
near zero (:func:`~vqe.models.blocks.near_zero_`), so an untrained stage returns its input to
within ~1e-4 while every layer already receives a gradient. Any H×W works: the frame is padded
(edge-replicated) to a multiple of ``unshuffle · 2^(levels−1)`` and the output cropped back.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from vqe.models.blocks import RepConvBlock, near_zero_


def pad_to_multiple(frames: torch.Tensor, multiple: int) -> torch.Tensor:
    """Pad the bottom and right edges (replicating them) so H and W divide by ``multiple``."""
    height, width = frames.shape[-2:]
    pad_bottom = -height % multiple
    pad_right = -width % multiple
    if pad_bottom == 0 and pad_right == 0:
        return frames
    return F.pad(frames, [0, pad_right, 0, pad_bottom], mode="replicate")


def _stack(channels: int, depth: int) -> nn.Sequential:
    return nn.Sequential(*(RepConvBlock(channels, channels) for _ in range(depth)))


class UNetStage(nn.Module):
    """Encoder–decoder with additive skips; level i: ``widths[i]`` channels, scale 1/(f·2^i)."""

    def __init__(
        self,
        widths: Sequence[int],
        encoder_depths: Sequence[int],
        middle_depth: int,
        decoder_depths: Sequence[int],
        unshuffle: int = 2,
    ) -> None:
        super().__init__()
        widths = [int(w) for w in widths]
        encoder_depths = [int(d) for d in encoder_depths]
        decoder_depths = [int(d) for d in decoder_depths]
        if len(widths) < 1 or not (len(encoder_depths) == len(decoder_depths) == len(widths) - 1):
            raise ValueError(
                "UNetStage: need len(encoder_depths) == len(decoder_depths) == len(widths) - 1, "
                f"got widths={widths}, encoder_depths={encoder_depths}, "
                f"decoder_depths={decoder_depths}"
            )
        if unshuffle < 1:
            raise ValueError(f"UNetStage: unshuffle must be >= 1, got {unshuffle}")
        self.unshuffle_factor = int(unshuffle)
        self.size_multiple = self.unshuffle_factor * 2 ** (len(widths) - 1)
        packed_channels = 3 * self.unshuffle_factor**2

        self.unshuffle = nn.PixelUnshuffle(self.unshuffle_factor)
        self.head = nn.Conv2d(packed_channels, widths[0], 3, padding=1)
        self.encoders = nn.ModuleList(
            _stack(width, depth) for width, depth in zip(widths[:-1], encoder_depths)
        )
        self.downs = nn.ModuleList(
            RepConvBlock(widths[i], widths[i + 1], stride=2) for i in range(len(widths) - 1)
        )
        self.middle = _stack(widths[-1], int(middle_depth))
        self.ups = nn.ModuleList(
            nn.Sequential(nn.Conv2d(widths[i + 1], 4 * widths[i], 1), nn.PixelShuffle(2))
            for i in range(len(widths) - 1)
        )
        self.decoders = nn.ModuleList(
            _stack(width, depth) for width, depth in zip(widths[:-1], decoder_depths)
        )
        self.tail = nn.Conv2d(widths[0], packed_channels, 3, padding=1)
        self.shuffle = nn.PixelShuffle(self.unshuffle_factor)
        # Residual output starts at ≈ 0 (not exactly: zeros would starve every earlier layer
        # of gradient on the first step), so the untrained stage is the identity to ~1e-4.
        near_zero_(self.tail)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        height, width = frames.shape[-2:]
        padded = pad_to_multiple(frames, self.size_multiple)
        features = self.head(self.unshuffle(padded))
        skips = []
        for encoder, down in zip(self.encoders, self.downs):
            features = encoder(features)
            skips.append(features)
            features = down(features)
        features = self.middle(features)
        for up, decoder, skip in zip(self.ups[::-1], self.decoders[::-1], skips[::-1]):
            features = decoder(up(features) + skip)
        residual = self.shuffle(self.tail(features))
        return (padded + residual)[..., :height, :width]
