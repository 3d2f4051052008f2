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

* Eager execution. Run directly (not traced), the stage returns its frames in the input's
  memory format, so a channels-last U-Net after it stays channels-last (fed NCHW it ran NCHW,
  at the eager speed). ``paired_lookup = True`` switches eager runs to
  :func:`paired_atlas_lookup`, the same lookup at about 60 % of the time: a 6-channel *paired*
  atlas holds, beside slice b, the step from slice b to b + 1 in every tile, so one
  ``grid_sample`` reads both and the lerp is one fused multiply-add; the tile offsets come
  from two multiply-adds on b₀ and its tile row. It rounds sample positions differently, up to
  ~1e-4 from the atlas graph after a U-Net on rough LUTs — the ONNX export's parity tolerance
  — so it is off by default and the eager graph computes exactly what is exported. Anything
  traced — the CoreML and ONNX exports, the MAC count — records :func:`atlas_lookup`.

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


def paired_atlas(luts: torch.Tensor) -> torch.Tensor:
    """(N, 3, D, D, D) LUTs → (N, 6, Ha, Wa): channels 0–2 the atlas, channels 3–5 the atlas of
    the step to the next blue slice (tile b holds slice b + 1 − slice b; the last holds 0), so
    the lerp needs no subtraction per pixel. Linear in the LUT, like the atlas."""
    step = torch.cat([luts[:, :, 1:] - luts[:, :, :-1], torch.zeros_like(luts[:, :, -1:])], dim=2)
    return torch.cat([lut_atlas(luts), lut_atlas(step)], dim=1)


def paired_atlas_lookup(
    frames: torch.Tensor, paired: torch.Tensor, lut_size: int
) -> torch.Tensor:
    """:func:`atlas_lookup` through B×6×Ha×Wa paired atlases: one sample reads both slices."""
    rows, columns = atlas_grid(lut_size)
    tile = lut_size + 2
    scale = torch.tensor(
        [2.0 / (columns * tile - 1), 2.0 / (rows * tile - 1)], dtype=frames.dtype,
        device=frames.device,
    )  # fmt: skip
    lattice = frames.clamp(0.0, 1.0).mul_(lut_size - 1)
    # (r + 1) · sx − 1, (g + 1) · sy − 1: the position inside a tile, B×H×W×2.
    grid = torch.addcmul(scale - 1.0, lattice[:, :2].permute(0, 2, 3, 1), scale)
    blue = lattice[:, 2]
    lower = blue.floor().clamp_(max=lut_size - 2)
    fraction = (blue - lower).unsqueeze_(1)
    # Tile row of slice b₀ (an integer): the +0.5 keeps floor() clear of rounding.
    tile_row = lower.add(0.5).mul_(1.0 / columns).floor_()
    column_step = scale.new_tensor([tile, 0.0]) * scale  # one tile to the right
    row_step = scale.new_tensor([-columns * tile, tile]) * scale  # next row, first column
    grid = grid.addcmul_(lower.unsqueeze(-1), column_step).addcmul_(tile_row.unsqueeze(-1), row_step)
    both = F.grid_sample(paired, grid, mode="bilinear", padding_mode="border", align_corners=True)
    return torch.addcmul(both[:, :3], both[:, 3:], fraction)  # lower + t · (upper − lower)


def _memory_format(frames: torch.Tensor) -> torch.memory_format:
    channels_last = frames.is_contiguous(memory_format=torch.channels_last)
    return torch.channels_last if channels_last else torch.contiguous_format


def is_exporting() -> bool:
    """True while the graph is being traced (CoreML, ONNX, the MAC count) or exported."""
    return (
        torch.jit.is_tracing()
        or torch.onnx.is_in_onnx_export()
        or torch.compiler.is_exporting()
    )


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
        # Opt-in eager lookup (see the module doc); derived, so not in the state dict (nor in
        # the traced export graph).
        self.paired_lookup = False
        paired = paired_atlas(stage.basis.detach().clone())
        self.register_buffer("paired_atlases", paired.flatten(1), persistent=False)

    def predict_weights(self, frames: torch.Tensor) -> torch.Tensor:
        return self.predictor(frames)

    def apply_weights(self, frames: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """Look ``frames`` up in the LUT blended with ``weights`` (B×N, e.g. time-smoothed)."""
        if is_exporting():
            atlases = (weights.to(self.basis_atlases.dtype) @ self.basis_atlases).view(
                -1, *self.atlas_shape
            )
            return atlas_lookup(frames, atlases, self.lut_size)
        # The lookup runs on NCHW planes, a channels-last input converted for it and back after
        # (identical values): at 720p on one thread up to 1.6× faster than on channels-last
        # frames when the machine is loaded, about even on a quiet one.
        planar = frames.contiguous()
        if self.paired_lookup:
            paired = (weights.to(self.paired_atlases.dtype) @ self.paired_atlases).view(
                -1, 2 * self.atlas_shape[0], *self.atlas_shape[1:]
            )
            looked_up = paired_atlas_lookup(planar, paired, self.lut_size)
        else:
            atlases = (weights.to(self.basis_atlases.dtype) @ self.basis_atlases).view(
                -1, *self.atlas_shape
            )
            looked_up = atlas_lookup(planar, atlases, self.lut_size)
        # Keep the input's memory format: a channels-last U-Net fed NCHW frames runs NCHW.
        return looked_up.contiguous(memory_format=_memory_format(frames))

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
