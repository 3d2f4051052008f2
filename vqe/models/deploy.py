"""The export graph of a trained enhancer: fused convs and a LUT lookup with only 4-D ops.

coremltools cannot convert a 5-D ``grid_sample``, so the deploy graph looks the blended LUT up
in a 2-D *atlas* instead, an exact reformulation of the trilinear lookup:

* Atlas layout. The blue slices ``lut[:, b]`` (each a D×D image, green rows × red columns) are
  tiled ``columns`` per row; each tile is padded by one replicated texel, so a tile is
  (D + 2)² and the atlas is 3 × rows·(D + 2) × columns·(D + 2). The border keeps fp16 rounding
  of the sample position from bleeding into the neighbouring tile.
* Lookup. With lattice coordinates (r, g, b) = rgb · (D − 1), b₀ = min(⌊b⌋, D − 2) and
  t = b − b₀, two bilinear 4-D ``grid_sample`` s read slices b₀ and b₀ + 1 at (r, g), and a
  lerp along blue finishes the trilinear interpolation: lower + t · (upper − lower).
* Blending. The atlas is linear in the LUT, so the basis is converted to atlases once, at
  build time, and the per-frame blend is a plain matmul of the weights with the flattened
  basis atlases.

Everything else is the training graph with each :class:`~vqe.models.blocks.RepConvBlock` fused
into one 3×3 conv. The result equals the training graph (in eval mode) to float rounding.
"""

from __future__ import annotations

import copy
import math

import torch
import torch.nn.functional as F
from torch import nn

from vqe.models.blocks import reparameterize_blocks
from vqe.models.enhancer import Enhancer, check_frames
from vqe.models.lut import LutStage, LutWeightPredictor
from vqe.models.unet import UNetStage


def atlas_grid(lut_size: int) -> tuple[int, int]:
    """(rows, columns) of tiles: about √D × √D, so the atlas is close to square."""
    columns = math.ceil(math.sqrt(lut_size))
    return math.ceil(lut_size / columns), columns


def lut_atlas(luts: torch.Tensor) -> torch.Tensor:
    """(…, 3, D, D, D) LUTs → (…, 3, rows·(D+2), columns·(D+2)) atlases (see module doc)."""
    size = luts.shape[-1]
    rows, columns = atlas_grid(size)
    tile = size + 2
    leading = luts.shape[:-4]
    flat = luts.reshape(-1, 3, size, size, size)
    atlas = flat.new_zeros(flat.shape[0], 3, rows * tile, columns * tile)
    for blue in range(size):
        row, column = divmod(blue, columns)
        padded = F.pad(flat[:, :, blue], [1, 1, 1, 1], mode="replicate")
        atlas[:, :, row * tile : (row + 1) * tile, column * tile : (column + 1) * tile] = padded
    return atlas.reshape(*leading, 3, rows * tile, columns * tile)


def atlas_lookup(frames: torch.Tensor, atlases: torch.Tensor, lut_size: int) -> torch.Tensor:
    """Trilinear lookup of B×3×H×W frames in B×3×Ha×Wa LUT atlases, with 4-D ops only."""
    rows, columns = atlas_grid(lut_size)
    tile = lut_size + 2
    # Python numbers, not tensor shapes, so the traced graph holds constants.
    # align_corners=True maps texel index i to i · 2/(size − 1) − 1.
    scale_x = 2.0 / (columns * tile - 1)
    scale_y = 2.0 / (rows * tile - 1)
    lattice = frames.clamp(0.0, 1.0) * (lut_size - 1)
    red, green, blue = lattice[:, 0], lattice[:, 1], lattice[:, 2]
    # Position inside a tile, in grid coordinates (+1 skips the tile's border texel); the tile's
    # own offset is added per slice below.
    x_in_tile = (red + 1.0) * scale_x - 1.0
    y_in_tile = (green + 1.0) * scale_y - 1.0
    lower_slice = blue.floor().clamp(0.0, lut_size - 2)
    blue_fraction = (blue - lower_slice).unsqueeze(1)

    def sample_slice(slice_index: torch.Tensor) -> torch.Tensor:
        # +0.5 keeps floor() right if fp16 hardware divides via an inexact reciprocal.
        tile_row = torch.floor((slice_index + 0.5) / columns)
        tile_column = slice_index - tile_row * columns
        x = x_in_tile + tile_column * (tile * scale_x)
        y = y_in_tile + tile_row * (tile * scale_y)
        grid = torch.stack([x, y], dim=-1)
        return F.grid_sample(
            atlases, grid, mode="bilinear", padding_mode="border", align_corners=True
        )

    lower = sample_slice(lower_slice)
    upper = sample_slice(lower_slice + 1)
    return lower + blue_fraction * (upper - lower)


class DeployLutStage(nn.Module):
    """The LUT stage with basis atlases in place of the 5-D basis."""

    def __init__(self, stage: LutStage) -> None:
        super().__init__()
        self.lut_size = stage.lut_size
        self.predictor: LutWeightPredictor = copy.deepcopy(stage.predictor)
        atlases = lut_atlas(stage.basis.detach().clone())
        self.atlas_shape = tuple(atlases.shape[1:])
        self.register_buffer("basis_atlases", atlases.flatten(1))

    def predict_weights(self, frames: torch.Tensor) -> torch.Tensor:
        return self.predictor(frames)

    def apply_weights(self, frames: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """Look ``frames`` up in the LUT blended with ``weights`` (B×N, e.g. time-smoothed)."""
        atlases = (weights.to(self.basis_atlases.dtype) @ self.basis_atlases).view(
            -1, *self.atlas_shape
        )
        return atlas_lookup(frames, atlases, self.lut_size)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return self.apply_weights(frames, self.predict_weights(frames))


class DeployEnhancer(nn.Module):
    """Export form of :class:`~vqe.models.enhancer.Enhancer`: RGB [0, 1] N×3×H×W in and out."""

    def __init__(self, lut: DeployLutStage | None, unet: UNetStage | None) -> None:
        super().__init__()
        self.lut = lut
        self.unet = unet

    def enhance_with_weights(self, frames: torch.Tensor, lut_weights: torch.Tensor) -> torch.Tensor:
        """Enhance with given (e.g. time-smoothed) LUT weights instead of predicted ones."""
        if self.lut is None:
            raise RuntimeError("DeployEnhancer.enhance_with_weights: no LUT stage")
        return self._finish(self.lut.apply_weights(frames, lut_weights))

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        check_frames(frames, "DeployEnhancer")
        return self._finish(self.lut(frames) if self.lut is not None else frames)

    def _finish(self, frames: torch.Tensor) -> torch.Tensor:
        if self.unet is not None:
            frames = self.unet(frames)
        return frames.clamp(0.0, 1.0)


def build_deploy_model(enhancer: Enhancer) -> DeployEnhancer:
    """A new eval-mode export graph of ``enhancer`` (which is left untouched)."""
    lut = DeployLutStage(enhancer.lut) if enhancer.lut is not None else None
    unet = None
    if enhancer.unet is not None:
        unet = reparameterize_blocks(copy.deepcopy(enhancer.unet).eval())
    deploy = DeployEnhancer(lut, unet).eval()
    return deploy.requires_grad_(False)
