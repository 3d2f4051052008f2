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

* Eager execution. Run directly (not traced), the stage returns its frames in the layout asked
  for — :class:`DeployEnhancer` asks for the U-Net's own (channels-last after
  ``.to(memory_format=torch.channels_last)``), so NCHW frames as decoded reach a channels-last
  U-Net without a pass of their own. On the CPU in fp32 the lookup is one fused C++ pass
  (:mod:`vqe.models.lut_kernel`: the trilinear lookup of the blended 5-D LUT, written straight
  in that layout); where that kernel is not built, or on other devices, the ``grid_sample``
  forms below run and their NCHW result is converted.
* 8-bit frames (the ``grid_sample`` forms). Decoded video frames hold only the values k / 255,
  and on those red can be resolved exactly before the lookup: a *red-level atlas*
  (:func:`red_level_atlas`) holds, per frame, the blended LUT interpolated along red at all 256
  levels — 256 tiles of green × blue, 16 × 16 of them — so the trilinear lookup becomes ONE
  bilinear ``grid_sample`` in tile round(255 · red), with no second slice and no per-pixel
  lerp (:func:`red_level_lookup`; its grid is built as two planes with in-place contiguous
  passes, and a frame is cut into horizontal bands when the batch is smaller than the thread
  count, as PyTorch's CPU ``grid_sample`` spreads only the batch over threads:
  :func:`lookup_bands`).
  It is the same interpolation in another order, so it equals the atlas lookup to fp32
  rounding of positions (≈ 3e-5 on rough random LUTs, ≈ 1e-6 on smooth ones). Frames between
  the levels would have their red rounded to the nearest level, so it is opt-in:
  ``eight_bit_frames = True`` says the frames are decoded 8-bit (the video stream's backend
  sets it), and only fp32/fp64 frames use it (an fp16 position in a 560-texel atlas is off by
  up to a quarter texel). Anything traced — the CoreML and ONNX exports, the MAC count —
  records :func:`atlas_lookup` whatever the flag.

* Balance. A stage with ``white_balance`` scales the blended table's output channels
  (:func:`~vqe.models.lut.balance_luts`) — the 5-D LUT for the fused kernel, the atlas or the
  red-level atlas alike, as all keep the output channel on axis 1.
* Gain map. A stage with ``gain_grid`` multiplies the looked-up frames by
  :func:`~vqe.models.lut.gain_map` of the log-gains that end the coefficient vector
  (:func:`~vqe.models.lut.split_coefficients`; so ``enhance_with_weights`` with time-smoothed
  coefficients smooths the gain map too); eagerly in place on the lookup's result, keeping its layout; traced, as the
  4-D ``exp`` + bilinear upsample + multiply of the training graph. The predictor's
  degradation statistics are the training graph's own ops (4-D, no sort), copied as they are.

* Spatial LUT stage (:mod:`vqe.models.spatial_lut`). Its N basis LUTs are stacked into one
  3N-channel atlas, so one :func:`atlas_lookup` reads every basis for every pixel; the weight
  maps (a bilinear upsample of the cell weights), the per-pixel blend and the gain map are the
  training graph's own 4-D functions (:class:`DeploySpatialLutStage`). Eagerly in fp32 on the
  CPU each basis goes through the fused kernel instead, and the blend accumulates in place
  (no 8-bit red-level path for this stage).

Everything else is the training graph with each :class:`~vqe.models.blocks.RepConvBlock` fused
into one 3×3 conv. The result equals the training graph (in eval mode) to float rounding. Run
eagerly on the CPU, the U-Net takes its own fast paths (the head as one strided conv, oneDNN
convolutions with the ReLU fused in, shuffle and skip-add in one pass: :mod:`vqe.models.unet`,
:func:`vqe.models.blocks.conv_forward`); traced, it records the graph as built.
"""

from __future__ import annotations

import copy
import math

import torch
import torch.nn.functional as F
from torch import nn

from vqe.models.blocks import reparameterize_blocks
from vqe.models.enhancer import Enhancer, check_frames
from vqe.models.execution import eager_cpu_inference, is_exporting, memory_format_of
from vqe.models.lut import (
    LutStage,
    LutWeightPredictor,
    balance_luts,
    gain_map,
    split_coefficients,
)
from vqe.models.lut_kernel import fused_lookup_available, fused_trilinear_lookup
from vqe.models.resblocks import ResidualBlocksStage
from vqe.models.spatial_lut import SpatialLutStage, blend_lookups, weight_maps
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


#: Tiles per row of a red-level atlas: 16 × 16 tiles hold the 256 red levels, a square atlas.
RED_LEVEL_COLUMNS = 16
#: Levels of an 8-bit channel: the red-level atlas has one tile per red value k / 255.
RED_LEVELS = 256


def red_level_atlas(luts: torch.Tensor) -> torch.Tensor:
    """(…, 3, D, D, D) LUTs → (…, 3, 16·(D+2), 16·(D+2)) red-level atlases (see module doc).

    Tile k holds the LUT interpolated along red at k / 255, as an image with blue rows and green
    columns, padded by one replicated texel; tile k sits in row k // 16, column k % 16. Linear in
    the LUT, like :func:`lut_atlas`."""
    size = luts.shape[-1]
    tile = size + 2
    leading = luts.shape[:-4]
    # Red lerp weights as a D × 256 matrix, in float64: the levels add no rounding of their own.
    position = torch.arange(RED_LEVELS, dtype=torch.float64) * (size - 1) / (RED_LEVELS - 1)
    lower = position.floor().clamp(max=size - 2).long()
    fraction = position - lower
    levels = torch.arange(RED_LEVELS)
    lerp = torch.zeros(size, RED_LEVELS, dtype=torch.float64)
    lerp[lower, levels] += 1.0 - fraction
    lerp[lower + 1, levels] += fraction
    at_levels = (luts.reshape(-1, 3, size, size, size).double() @ lerp).permute(0, 1, 4, 2, 3)
    count = at_levels.shape[0]  # at_levels: N × 3 × level × blue × green
    planes = at_levels.reshape(count, 3 * RED_LEVELS, size, size)
    padded = F.pad(planes, [1, 1, 1, 1], mode="replicate")
    rows = RED_LEVELS // RED_LEVEL_COLUMNS
    tiles = padded.view(count, 3, rows, RED_LEVEL_COLUMNS, tile, tile).permute(0, 1, 2, 4, 3, 5)
    atlas = tiles.reshape(*leading, 3, rows * tile, RED_LEVEL_COLUMNS * tile)
    return atlas.to(luts.dtype)


def lookup_bands(batch: int, height: int) -> int:
    """Horizontal bands each frame is cut into for :func:`red_level_lookup`: PyTorch's CPU
    ``grid_sample`` spreads only the batch over its threads, so a batch smaller than the thread
    count is sampled as ``bands`` times as many bands (a number that divides ``height``)."""
    bands = max(1, torch.get_num_threads() // max(batch, 1))
    while height % bands:
        bands -= 1
    return bands


def red_level_lookup(
    frames: torch.Tensor, atlases: torch.Tensor, lut_size: int, bands: int | None = None
) -> torch.Tensor:
    """Trilinear lookup of *8-bit* B×3×H×W frames (values k / 255, so in [0, 1]) in B×3×Ha×Wa
    red-level atlases: red picks its tile, one bilinear ``grid_sample`` does green and blue.
    The result is NCHW; ``bands`` (default :func:`lookup_bands` on the CPU, else 1) only changes
    the speed."""
    planar = frames.contiguous()  # a channels-last input: one copy beats strided arithmetic
    batch, _, height, width = planar.shape
    if bands is None:  # on a GPU grid_sample is parallel over every pixel anyway
        bands = lookup_bands(batch, height) if planar.device.type == "cpu" else 1
    tile = lut_size + 2
    # Square atlas: one scale for x and y (align_corners=True: texel i ↔ i · scale − 1).
    scale = 2.0 / (RED_LEVEL_COLUMNS * tile - 1)
    red, green, blue = planar.unbind(1)
    # The grid as two planes, x (green) and y (blue), each built in place with plain
    # contiguous passes: an interleaved B×H×W×2 grid would be written with strided ones, 2–3×
    # slower here, and grid_sample reads a plane-wise grid as fast. No clamp: 8-bit values are
    # in [0, 1] already (and "border" keeps any other value inside the atlas).
    grid_planes = planar.new_empty(2, batch, height, width)
    x, y = grid_planes.unbind(0)
    torch.mul(red, RED_LEVELS - 1, out=x).round_()  # the level k
    torch.mul(x, 1.0 / RED_LEVEL_COLUMNS, out=y).floor_()  # its tile row; exact: k/16 is binary
    x.sub_(y, alpha=RED_LEVEL_COLUMNS)  # its tile column
    # Texel tile · column + 1 + (D − 1) · green (+1 skips the tile's border), likewise y.
    for plane, channel in ((x, green), (y, blue)):
        plane.mul_(tile * scale).add_(channel, alpha=(lut_size - 1) * scale).add_(scale - 1.0)
    band_height = height // bands
    grid = grid_planes.view(2, batch * bands, band_height, width).permute(1, 2, 3, 0)
    if bands > 1:  # each band looks up in its own frame's atlas: a view for one frame
        atlases = (
            atlases.expand(bands, -1, -1, -1)
            if batch == 1
            else (atlases.repeat_interleave(bands, dim=0))
        )
    looked_up = F.grid_sample(
        atlases, grid, mode="bilinear", padding_mode="border", align_corners=True
    )
    if bands == 1:
        return looked_up
    bands_view = looked_up.view(batch, bands, 3, band_height, width)
    return bands_view.transpose(1, 2).reshape(batch, 3, height, width)


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


def blend(weights: torch.Tensor, flat_bases: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    """B×N weights · N flattened basis atlases → B blended atlases of ``shape`` (linear in the
    LUT, so blending atlases equals the atlas of the blended LUT)."""
    return (weights.to(flat_bases.dtype) @ flat_bases).view(-1, *shape)


class DeployLutStage(nn.Module):
    """The LUT stage with basis atlases in place of the 5-D basis."""

    def __init__(self, stage: LutStage) -> None:
        super().__init__()
        self.lut_size = stage.lut_size
        self.num_luts = stage.num_luts
        self.num_coefficients = stage.num_coefficients
        self.white_balance = stage.white_balance
        self.gain_grid = stage.gain_grid
        self.predictor: LutWeightPredictor = copy.deepcopy(stage.predictor)
        basis = stage.basis.detach().clone()
        atlases = lut_atlas(basis)
        self.atlas_shape = tuple(atlases.shape[1:])
        self.register_buffer("basis_atlases", atlases.flatten(1))
        # The eager lookups' own forms of the basis; derived, so not in the state dict (nor in
        # the traced export graph): the 5-D LUTs for the fused CPU kernel, and red-level atlases
        # for the opt-in lookup of decoded 8-bit frames (see the module doc).
        self.lut_shape = tuple(basis.shape[1:])
        self.register_buffer("basis_luts", basis.flatten(1), persistent=False)
        self.eight_bit_frames = False
        red_levels = red_level_atlas(basis)
        self.red_level_shape = tuple(red_levels.shape[1:])
        self.register_buffer("basis_red_levels", red_levels.flatten(1), persistent=False)

    def predict_weights(self, frames: torch.Tensor) -> torch.Tensor:
        """B×K coefficients: N blending weights, then the balance and the gain map's log-gains
        (each if the stage has it)."""
        return self.predictor(frames)

    def apply_weights(
        self,
        frames: torch.Tensor,
        weights: torch.Tensor,
        memory_format: torch.memory_format | None = None,
    ) -> torch.Tensor:
        """Look ``frames`` up in the LUT blended with ``weights`` (B×K, e.g. time-smoothed: the
        N blending weights, the balance log-gains that scale it, the log-gains of the gain map
        that multiplies the result; :func:`~vqe.models.lut.split_coefficients`).

        Run eagerly, the result is laid out in ``memory_format`` (default: the input's), so a
        channels-last U-Net can be handed its layout without another pass; traced, the graph
        is the atlas lookup as exported."""
        if not is_exporting() and (weights.ndim != 2 or weights.shape[1] != self.num_coefficients):
            raise ValueError(
                f"DeployLutStage: expected B×{self.num_coefficients} coefficients ("
                f"{self.num_luts} LUT weights, then the balance and gain map's log-gains), "
                f"got {tuple(weights.shape)}"
            )
        weights, balance, gains = split_coefficients(
            weights, self.num_luts, self.white_balance, self.gain_grid
        )
        if is_exporting():
            looked_up = atlas_lookup(frames, self.blended_atlases(weights, balance), self.lut_size)
            if gains is None:
                return looked_up
            return looked_up * gain_map(gains, self.gain_grid, frames.shape[-2:])
        layout = memory_format if memory_format is not None else memory_format_of(frames)
        if eager_cpu_inference(frames, weights) and fused_lookup_available():
            luts = self.balanced(blend(weights, self.basis_luts, self.lut_shape), balance)
            looked_up = fused_trilinear_lookup(frames, luts, layout)
        else:
            if self.eight_bit_frames and frames.dtype in (torch.float32, torch.float64):
                red_levels = blend(weights, self.basis_red_levels, self.red_level_shape)
                red_levels = self.balanced(red_levels, balance)
                looked_up = red_level_lookup(frames, red_levels, self.lut_size)
            else:
                # NCHW planes, a channels-last input converted for it and back after (identical
                # values): at 720p on one thread up to 1.6× faster than on channels-last frames
                # when the machine is loaded, about even on a quiet one.
                planar = frames.contiguous()
                atlases = self.blended_atlases(weights, balance)
                looked_up = atlas_lookup(planar, atlases, self.lut_size)
            looked_up = looked_up.contiguous(memory_format=layout)
        if gains is None:
            return looked_up
        # The gain map (B×1×H×W) multiplied in place: the frames keep their layout, no copy.
        gain = gain_map(gains, self.gain_grid, frames.shape[-2:]).to(looked_up.dtype)
        if looked_up.requires_grad:
            return looked_up * gain
        return looked_up.mul_(gain)

    @staticmethod
    def balanced(tables: torch.Tensor, balance: torch.Tensor | None) -> torch.Tensor:
        """Blended tables (5-D LUTs or atlases, channel axis 1) with the balance gains applied."""
        return tables if balance is None else balance_luts(tables, balance)

    def blended_atlases(
        self, weights: torch.Tensor, balance: torch.Tensor | None = None
    ) -> torch.Tensor:
        """B×N weights (and B×3 balance log-gains) → B×3×Ha×Wa atlases of the blended LUTs
        (what the export looks up)."""
        return self.balanced(blend(weights, self.basis_atlases, self.atlas_shape), balance)

    def exported_form(self, frames: torch.Tensor) -> torch.Tensor:
        """The stage as CoreML and ONNX run it (the atlas lookup on NCHW planes), eagerly: to
        time it beside the eager paths (``vqe bench-inference``)."""
        planar = frames.contiguous()
        weights, balance, gains = split_coefficients(
            self.predict_weights(planar), self.num_luts, self.white_balance, self.gain_grid
        )
        looked_up = atlas_lookup(planar, self.blended_atlases(weights, balance), self.lut_size)
        if gains is None:
            return looked_up
        return looked_up * gain_map(gains, self.gain_grid, planar.shape[-2:])

    def forward(
        self, frames: torch.Tensor, memory_format: torch.memory_format | None = None
    ) -> torch.Tensor:
        return self.apply_weights(frames, self.predict_weights(frames), memory_format)


class DeploySpatialLutStage(nn.Module):
    """:class:`~vqe.models.spatial_lut.SpatialLutStage` with its N basis LUTs as one 3N-channel
    atlas: one 4-D atlas lookup (:func:`atlas_lookup`) reads every basis at once, then the
    training graph's own weight maps and blend (:func:`~vqe.models.spatial_lut.weight_maps`,
    :func:`~vqe.models.spatial_lut.blend_lookups`) and gain map. The same interface as
    :class:`DeployLutStage` (``predict_weights``, ``apply_weights``), so the video stream smooths
    its coefficients and the ONNX stage graphs export as for the global stage."""

    def __init__(self, stage: SpatialLutStage) -> None:
        super().__init__()
        self.lut_size = stage.lut_size
        self.num_luts = stage.num_luts
        self.weight_grid = stage.weight_grid
        self.num_weights = stage.num_weights
        self.num_coefficients = stage.num_coefficients
        self.gain_grid = stage.gain_grid
        self.predictor: LutWeightPredictor = copy.deepcopy(stage.predictor)
        basis = stage.basis.detach().clone()
        atlases = lut_atlas(basis)  # N×3×Ha×Wa
        self.register_buffer("basis_atlases", atlases.flatten(0, 1).unsqueeze(0))
        # The bases for the fused CPU kernel: derived, so neither in the state dict nor in the
        # traced export graph; flat, as a 5-D buffer breaks .to(memory_format=channels_last).
        self.lut_shape = tuple(basis.shape[1:])
        self.register_buffer("basis_luts", basis.flatten(1), persistent=False)
        # Set by the video stream's backend for the global stage; this stage has no 8-bit path.
        self.eight_bit_frames = False

    def predict_weights(self, frames: torch.Tensor) -> torch.Tensor:
        """B×K coefficients: the N·gh·gw cell weights, then the gain map's log-gains (if any)."""
        return self.predictor(frames)

    def apply_weights(
        self,
        frames: torch.Tensor,
        weights: torch.Tensor,
        memory_format: torch.memory_format | None = None,
    ) -> torch.Tensor:
        """The stage with given (e.g. time-smoothed) B×K coefficients; run eagerly, the result
        is laid out in ``memory_format`` (default: the input's)."""
        exporting = is_exporting()
        if not exporting and (weights.ndim != 2 or weights.shape[1] != self.num_coefficients):
            raise ValueError(
                f"DeploySpatialLutStage: expected B×{self.num_coefficients} coefficients, "
                f"got {tuple(weights.shape)}"
            )
        layout = memory_format if memory_format is not None else memory_format_of(frames)
        size = frames.shape[-2:]
        maps = weight_maps(weights[:, : self.num_weights], self.num_luts, self.weight_grid, size)
        if not exporting and eager_cpu_inference(frames, weights) and fused_lookup_available():
            enhanced = self.fused_blend(frames, maps)
        else:
            enhanced = self.atlas_blend(frames if exporting else frames.contiguous(), maps)
        if self.gain_grid is not None:
            gains = weights[:, self.num_weights :]
            enhanced = enhanced * gain_map(gains, self.gain_grid, size).to(enhanced.dtype)
        return enhanced if exporting else enhanced.contiguous(memory_format=layout)

    def atlas_blend(self, planar: torch.Tensor, maps: torch.Tensor) -> torch.Tensor:
        """The exported lookup: every basis read by one atlas lookup of NCHW ``planar`` frames,
        blended by the B×N×H×W weight ``maps``."""
        atlases = self.basis_atlases
        if planar.shape[0] != 1:  # a view; the exported graph (batch 1) needs no expand op
            atlases = atlases.expand(planar.shape[0], -1, -1, -1)
        looked_up = atlas_lookup(planar, atlases.to(planar.dtype), self.lut_size)
        return blend_lookups(looked_up, maps.to(looked_up.dtype), self.num_luts)

    def exported_form(self, frames: torch.Tensor) -> torch.Tensor:
        """The stage as CoreML and ONNX run it, eagerly (see :meth:`DeployLutStage.exported_form`)."""
        planar = frames.contiguous()
        coefficients = self.predict_weights(planar)
        size = planar.shape[-2:]
        maps = weight_maps(
            coefficients[:, : self.num_weights], self.num_luts, self.weight_grid, size
        )
        enhanced = self.atlas_blend(planar, maps)
        if self.gain_grid is None:
            return enhanced
        return enhanced * gain_map(coefficients[:, self.num_weights :], self.gain_grid, size)

    def fused_blend(self, frames: torch.Tensor, maps: torch.Tensor) -> torch.Tensor:
        """Eager fp32 CPU: each basis by the fused C++ lookup (one pass per basis instead of
        the atlas ``grid_sample`` s of all 3N channels, ~10× slower at 720p on 2 threads),
        accumulated in place. The blend of :func:`~vqe.models.spatial_lut.blend_lookups`, to
        float rounding."""
        batch = frames.shape[0]
        enhanced = None
        for index in range(self.num_luts):
            luts = self.basis_luts[index].view(1, *self.lut_shape).expand(batch, -1, -1, -1, -1)
            looked_up = fused_trilinear_lookup(frames, luts, torch.contiguous_format)
            weight = maps[:, index : index + 1]
            if enhanced is None:
                enhanced = looked_up.mul_(weight)
            else:
                enhanced.addcmul_(looked_up, weight)
        assert enhanced is not None  # num_luts >= 1
        return enhanced

    def forward(
        self, frames: torch.Tensor, memory_format: torch.memory_format | None = None
    ) -> torch.Tensor:
        return self.apply_weights(frames, self.predict_weights(frames), memory_format)


DeployStage = DeployLutStage | DeploySpatialLutStage


class DeployEnhancer(nn.Module):
    """Export form of :class:`~vqe.models.enhancer.Enhancer`: RGB [0, 1] N×3×H×W in and out."""

    def __init__(
        self, lut: DeployStage | None, unet: UNetStage | ResidualBlocksStage | None
    ) -> None:
        super().__init__()
        self.lut = lut
        self.unet = unet

    def enhance_with_weights(self, frames: torch.Tensor, lut_weights: torch.Tensor) -> torch.Tensor:
        """Enhance with given (e.g. time-smoothed) LUT weights instead of predicted ones."""
        return self.finish(self.apply_lut(frames, lut_weights))

    def apply_lut(self, frames: torch.Tensor, lut_weights: torch.Tensor) -> torch.Tensor:
        """The LUT stage alone with given coefficients, laid out for the U-Net. Frame-wide (its
        gain map spans the frame), so a tiled run applies it before cutting tiles."""
        if self.lut is None:
            raise RuntimeError("DeployEnhancer.enhance_with_weights: no LUT stage")
        return self.lut.apply_weights(frames, lut_weights, self.unet_memory_format())

    def finish(self, frames: torch.Tensor) -> torch.Tensor:
        """The U-Net (if any) and the final clamp, on frames after the LUT stage."""
        return self._finish(frames)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        check_frames(frames, "DeployEnhancer")
        if self.lut is not None:
            frames = self.lut(frames, self.unet_memory_format())
        return self._finish(frames)

    def unet_memory_format(self) -> torch.memory_format | None:
        """The layout the U-Net runs in, eagerly: its weights' (channels-last after
        ``.to(memory_format=torch.channels_last)``); None without a U-Net or when traced."""
        if self.unet is None or is_exporting():
            return None
        return memory_format_of(self.unet.head.weight)

    def _finish(self, frames: torch.Tensor) -> torch.Tensor:
        if self.unet is not None:
            layout = self.unet_memory_format()
            if layout is not None:
                # Frames that did not come through the LUT stage in the U-Net's layout are
                # converted once, here (a no-op for those that did).
                frames = frames.contiguous(memory_format=layout)
            frames = self.unet(frames)
        return frames.clamp(0.0, 1.0)


def build_deploy_model(enhancer: Enhancer) -> DeployEnhancer:
    """A new eval-mode export graph of ``enhancer`` (which is left untouched)."""
    lut: DeployStage | None = None
    if isinstance(enhancer.lut, SpatialLutStage):
        lut = DeploySpatialLutStage(enhancer.lut)
    elif enhancer.lut is not None:
        lut = DeployLutStage(enhancer.lut)
    unet = None
    if enhancer.unet is not None:
        unet = reparameterize_blocks(copy.deepcopy(enhancer.unet).eval())
    deploy = DeployEnhancer(lut, unet).eval()
    return deploy.requires_grad_(False)
