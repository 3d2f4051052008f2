"""Stage 1, spatially aware: N basis 3-D LUTs blended per *region* by a low-resolution weight map.

The global stage (:class:`~vqe.models.lut.LutStage`, Zeng et al., TPAMI 2020) blends its basis
LUTs with one weight vector per frame, so a colour is corrected the same way wherever it sits:
a dim face before a bright window gets the window's correction. The challenge judges foreground
light first (NTIRE 2025 VQE report, §2.1 and §2.4), and the report names exactly this global
behaviour as the weakness of the AutoAdjust baseline.

This stage keeps the global stage's bank of basis LUTs and its weight predictor, but the
predictor's head outputs N weights for each cell of a gh×gw grid; the N weight maps are
upsampled bilinearly to the frame and each pixel is the weighted sum of its N basis lookups:

    out(x) = Σₙ wₙ(x) · Lₙ(rgb(x)),   wₙ(x) = bilinear upsample of the gh×gw cell weights.

Since trilinear interpolation is linear in the LUT, this is exactly the lookup of every pixel
in its own LUT Σₙ wₙ(x) Lₙ, a LUT that varies smoothly over the frame — the region-wise
image-adaptive LUT of the challenge's Maqic entry (report Table 1 and §4), and the spatially
varying LUT of LUTwithBGrid (Kim & Cho, ECCV 2024) with its grid reduced to the spatial axes.

Why this form, and not the two others the literature offers:

* **Bilateral-grid LUT weights** (LUTwithBGrid, ECCV 2024): the weights live in a 3-D grid
  over (x, y, intensity) and are read by trilinear slicing — a 5-D ``grid_sample`` per basis
  (coremltools does not convert 5-D ``grid_sample``), or an atlas of intensity slices with one
  more lerp. The intensity axis lets dark and bright pixels of one region differ, which a
  per-region 3-D LUT already does: the LUT itself is indexed by intensity. What the basis
  LUTs cannot do is tell *where* a pixel is; the x, y axes alone add that.
* **2-D LUTs with an SVD-compressed grid** (SVDLUT, ICCV 2025): cheaper per pixel, but 2-D
  LUTs drop the cross-channel terms of a 3-D LUT, and the SVD reconstruction of the grid is a
  new factorisation with its own regularisers; vqe's 3-D LUT machinery (trilinear lookup, 4-D
  atlas export, TV and monotonicity losses) would all have to be rebuilt for it.
* **A low-resolution map blending 3-D LUTs** (this module): reuses the basis, the atlas
  lookup and the regularisers unchanged, converts with 4-D ops only (one atlas
  ``grid_sample`` of all N bases at once, a bilinear upsample, multiplies and adds), and costs
  13 + 34·N MACs per pixel, 0.14 GMAC at 720p for N = 4 (0.21 with the predictor) — well
  inside the budget beside the U-Net. AdaInt (Yang et
  al., CVPR 2022) shows the other lever, adaptive lattice spacing; it is orthogonal to where
  the LUT applies and left out here.

The ``spatial_lut`` preset pairs this stage (4 bases of 17³, a 6×8 grid, statistics and gain
map) with the ``lut_unet`` U-Net; the ``maqic`` preset is the same stage at ICELUT scale (Yang et
al., ECCV 2024: a predictor of a few kMAC on a thumbnail), without a U-Net.

The reported FiveK numbers (as compared in the SVDLUT paper): 3D-LUT 25.29 dB, AdaInt 25.49,
LUTwithBGrid 25.66, SVDLUT 25.76 — the spatial methods gain 0.2–0.5 dB over global ones on a
dataset whose edits are mostly global; portrait relighting is the spatial case.

Initialisation (as :class:`~vqe.models.lut.LutStage`): basis 0 is the identity, the others
small noise; the head's bias is 1 for basis 0 in every cell and 0 elsewhere, its weights small
random, so every cell starts at ≈ (1, 0, …, 0) and the stage returns its input to ~1e-4.

Coefficient vector (what :meth:`SpatialLutStage.predict_weights` returns and the video stream
smooths over time): B×K with K = N·gh·gw (+ the gain map's log-gains): the N weight maps, basis
by basis, each row-major over the cells, then the gains. The options ``statistics`` and
``gain_grid`` are those of :class:`~vqe.models.lut.LutStage` and cost the same.

``luts`` of the stage output are the cells' LUTs, B×(gh·gw)×3×D×D×D. Every pixel's LUT is a
bilinear (convex) mix of its cells' LUTs, and the total-variation and monotonicity penalties
(:mod:`vqe.models.lut`, which take any leading shape) are convex, so penalising the cells
bounds the penalty of every pixel's LUT.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from vqe.models.lut import (
    LutStageOutput,
    LutWeightPredictor,
    gain_map,
    initial_basis,
    parse_gain_grid,
)


def parse_weight_grid(grid: Sequence[int]) -> tuple[int, int]:
    """[rows, columns], both ≥ 1: the cells of the weight map."""
    if grid is None or len(grid) != 2 or min(int(n) for n in grid) < 1:
        raise ValueError(f"SpatialLutStage: weight_grid must be [rows, columns] >= 1, got {grid}")
    return int(grid[0]), int(grid[1])


def basis_lookup(frames: torch.Tensor, basis: torch.Tensor) -> torch.Tensor:
    """B×3×H×W frames looked up in each of N×3×D×D×D basis LUTs → B×3N×H×W (basis-major).

    One 5-D ``grid_sample`` of all bases at once: the basis is viewed as one 3N-channel volume,
    expanded (not copied) over the batch. The training graph; the deploy graph does the same
    with a 4-D atlas (:class:`vqe.models.deploy.DeploySpatialLutStage`)."""
    num_luts, _, size = basis.shape[0], basis.shape[1], basis.shape[-1]
    volume = basis.reshape(1, 3 * num_luts, size, size, size).expand(frames.shape[0], -1, -1, -1, -1)
    grid = frames.clamp(0.0, 1.0).permute(0, 2, 3, 1).unsqueeze(1) * 2.0 - 1.0
    looked_up = F.grid_sample(
        volume, grid.to(basis.dtype), mode="bilinear", padding_mode="border", align_corners=True
    )
    return looked_up.squeeze(2)


def weight_maps(
    weights: torch.Tensor, num_luts: int, grid: tuple[int, int], size: tuple[int, int]
) -> torch.Tensor:
    """B×(N·gh·gw) cell weights → B×N×H×W per-pixel weights, bilinear (``align_corners=False``,
    as :func:`~vqe.models.lut.gain_map`): each pixel mixes its nearest cells convexly."""
    cells = weights.reshape(-1, num_luts, grid[0], grid[1])
    return F.interpolate(cells, size=size, mode="bilinear", align_corners=False)


def blend_lookups(looked_up: torch.Tensor, maps: torch.Tensor, num_luts: int) -> torch.Tensor:
    """Σₙ mapsₙ · lookupₙ for B×3N×H×W lookups and B×N×H×W maps → B×3×H×W.

    A loop of 4-D slices and multiplies (no B×N×3×H×W view): the training and deploy graphs
    share it, so both sum in the same order."""
    blended = looked_up[:, 0:3] * maps[:, 0:1]
    for index in range(1, num_luts):
        blended = blended + looked_up[:, 3 * index : 3 * index + 3] * maps[:, index : index + 1]
    return blended


class SpatialLutStage(nn.Module):
    """N basis LUTs blended per cell of a gh×gw grid, the weight maps upsampled bilinearly.

    Same interface as :class:`~vqe.models.lut.LutStage`: ``predict_weights(frames)`` → B×K
    coefficients (smooth them over time for video), ``forward(frames, weights=None)`` →
    :class:`~vqe.models.lut.LutStageOutput`. See the module docstring for the design.
    """

    def __init__(
        self,
        num_luts: int = 4,
        lut_size: int = 17,
        weight_grid: Sequence[int] = (6, 8),
        predictor_channels: Sequence[int] = (16, 32, 64, 128),
        predictor_input_size: int = 256,
        predictor_pooled_grid: int = 4,
        statistics: bool = False,
        gain_grid: Sequence[int] | None = None,
    ) -> None:
        super().__init__()
        if num_luts < 1:
            raise ValueError(f"SpatialLutStage: num_luts must be >= 1, got {num_luts}")
        self.num_luts = int(num_luts)
        self.lut_size = int(lut_size)
        self.weight_grid = parse_weight_grid(weight_grid)
        self.num_cells = self.weight_grid[0] * self.weight_grid[1]
        self.num_weights = self.num_luts * self.num_cells
        self.gain_grid = parse_gain_grid(gain_grid)
        num_gains = self.gain_grid[0] * self.gain_grid[1] if self.gain_grid else 0
        self.num_coefficients = self.num_weights + num_gains
        self.basis = initial_basis(self.num_luts, self.lut_size)
        self.predictor = LutWeightPredictor(
            self.num_coefficients,
            predictor_channels,
            predictor_input_size,
            predictor_pooled_grid,
            statistics=statistics,
        )
        with torch.no_grad():  # every cell starts at weights (1, 0, …, 0): the identity
            self.predictor.head.bias.zero_()
            self.predictor.head.bias[: self.num_cells] = 1.0

    def predict_weights(self, frames: torch.Tensor) -> torch.Tensor:
        """B×K coefficients: the N·gh·gw cell weights (basis-major), then the log-gains."""
        return self.predictor(frames)

    def check_weights(self, weights: torch.Tensor) -> None:
        if weights.ndim != 2 or weights.shape[1] != self.num_coefficients:
            raise ValueError(
                f"SpatialLutStage: expected B×{self.num_coefficients} coefficients "
                f"({self.num_luts} LUT weights × {self.num_cells} cells + "
                f"{self.num_coefficients - self.num_weights} gains), got {tuple(weights.shape)}"
            )

    def cell_luts(self, weights: torch.Tensor) -> torch.Tensor:
        """B×(N·gh·gw) cell weights → B×(gh·gw)×3×D×D×D, each cell's blended LUT."""
        per_cell = weights.reshape(-1, self.num_luts, self.num_cells).transpose(1, 2)
        blended = per_cell.to(self.basis.dtype) @ self.basis.flatten(1)
        size = self.lut_size
        return blended.view(-1, self.num_cells, 3, size, size, size)

    def forward(self, frames: torch.Tensor, weights: torch.Tensor | None = None) -> LutStageOutput:
        """Enhance ``frames``; pass ``weights`` (e.g. smoothed over time) to skip the predictor."""
        if weights is None:
            weights = self.predict_weights(frames)
        self.check_weights(weights)
        cell_weights = weights[:, : self.num_weights]
        size = frames.shape[-2:]
        looked_up = basis_lookup(frames, self.basis)
        maps = weight_maps(cell_weights, self.num_luts, self.weight_grid, size)
        enhanced = blend_lookups(looked_up, maps.to(looked_up.dtype), self.num_luts)
        log_gains = None
        if self.gain_grid is not None:
            gains = weights[:, self.num_weights :]
            enhanced = enhanced * gain_map(gains, self.gain_grid, size).to(enhanced.dtype)
            log_gains = gains.reshape(-1, 1, *self.gain_grid)
        return LutStageOutput(
            frames=enhanced, weights=weights, luts=self.cell_luts(cell_weights), log_gains=log_gains
        )
