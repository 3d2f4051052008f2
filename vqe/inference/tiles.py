"""Tiled enhancement (``--tile N``): frames too large for memory go through the U-Net in pieces.

Like Real-ESRGAN's ``--tile`` / ``--tile_pad``, the frame is cut into N×N cores; each core is
enhanced with ``overlap`` pixels of its neighbours around it (the U-Net sees at most
(N + 2·overlap)² pixels) and only the core is kept ("take the centre"), so no blending is
needed: where the overlap covers the U-Net's receptive field the tiled frame equals the whole
one, and with less overlap only pixels near a seam can differ.

Two things keep the tiles exact away from the seams:

* The LUT stage's weights come from a predictor that sees the whole frame (resized to its small
  input), so they are predicted ONCE per frame and the same weights are applied to every tile;
  the LUT lookup itself is per pixel. Tiling only splits the U-Net's work.
* Tiles start on multiples of the U-Net's size multiple (its pixel-unshuffle factor times its
  downsamplings), so every tile sees the same unshuffle and stride phase as the whole frame:
  ``N`` and ``overlap`` are rounded up to such a multiple.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import torch

from vqe.models.deploy import DeployEnhancer

Run = Callable[[torch.Tensor], torch.Tensor]


class DeployBackend(Protocol):
    """What is tiled: :class:`vqe.inference.backends.TorchBackend` (named here by its shape, as
    backends imports this module)."""

    model: DeployEnhancer
    device: torch.device
    has_lut: bool
    description: str

    def predict_lut_weights(self, frames: torch.Tensor) -> torch.Tensor: ...

    def enhance_with_weights(self, frames: torch.Tensor, weights: torch.Tensor) -> torch.Tensor: ...

    def enhance(self, frames: torch.Tensor) -> torch.Tensor: ...


def round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


def tiled(run: Run, frames: torch.Tensor, tile: int, overlap: int) -> torch.Tensor:
    """``run`` (N×3×h×w → N×3×h×w, translation-equivariant away from its edges) applied to
    ``frames`` tile by tile: N×N cores, each run with ``overlap`` pixels of context."""
    batch, _, height, width = frames.shape
    result: torch.Tensor | None = None
    for top in range(0, height, tile):
        for left in range(0, width, tile):
            y0, x0 = max(top - overlap, 0), max(left - overlap, 0)
            y1 = min(top + tile + overlap, height)
            x1 = min(left + tile + overlap, width)
            piece = run(frames[:, :, y0:y1, x0:x1].contiguous())
            if result is None:
                result = piece.new_empty(batch, piece.shape[1], height, width)
            rows, cols = min(tile, height - top), min(tile, width - left)
            result[:, :, top : top + rows, left : left + cols] = piece[
                :, :, top - y0 : top - y0 + rows, left - x0 : left - x0 + cols
            ]
    assert result is not None  # frames have at least one pixel
    return result


class TiledBackend:
    """A :class:`~vqe.inference.backends.TorchBackend` run in tiles (see the module doc)."""

    def __init__(self, inner: DeployBackend, tile: int, overlap: int) -> None:
        if tile < 1 or overlap < 0:
            raise ValueError(f"--tile must be ≥ 1 and --tile-overlap ≥ 0, got {tile}, {overlap}")
        unet = inner.model.unet
        multiple = unet.size_multiple if unet is not None else 1
        self.inner = inner
        self.tile = round_up(tile, multiple)
        self.overlap = round_up(overlap, multiple)
        self.device = inner.device
        self.has_lut = inner.has_lut
        self.description = f"{inner.description}, tiles of {self.tile}² + {self.overlap} overlap"

    def predict_lut_weights(self, frames: torch.Tensor) -> torch.Tensor:
        return self.inner.predict_lut_weights(frames)  # from the whole frame, once

    def enhance_with_weights(self, frames: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        def run(piece: torch.Tensor) -> torch.Tensor:
            return self.inner.enhance_with_weights(piece, weights)

        return tiled(run, frames, self.tile, self.overlap)

    def enhance(self, frames: torch.Tensor) -> torch.Tensor:
        if self.has_lut:
            return self.enhance_with_weights(frames, self.predict_lut_weights(frames))
        return tiled(self.inner.enhance, frames, self.tile, self.overlap)
