"""Stage 1: an image-adaptive 3-D LUT (after Zeng et al., TPAMI 2020).

A bank of N basis LUTs is blended per frame with N weights that a small CNN predicts from a
downsampled copy of the frame; every pixel is then looked up in the blended LUT by trilinear
interpolation.

Initialisation: basis 0 is the identity, bases 1…N−1 are small noise (std
:data:`BASIS_INIT_STD`), and the predictor's linear head has small random weights
(:func:`~vqe.models.blocks.near_zero_`) with bias (1, 0, …, 0). So every frame starts with
weights within ~1e-4 of (1, 0, …, 0), and the untrained stage returns its input to ~1e-4. Both factors of each product ``weight_k · basis_k`` are non-zero, which is
the point: with zero bases *and* zero head rows (an earlier version), the gradient of basis k is
∝ weight k and that of weight k is ∝ basis k, so bases 1…N−1 and their head rows stayed exactly
zero however long one trained. Zeng et al. (TPAMI 2020) also start the other bases at zero but
give the predictor a random (not zero) head.

LUT layout and coordinates (used everywhere in vqe):

* A LUT is a tensor ``lut[..., c, b, g, r]`` of shape (…, 3, D, D, D): output channel ``c``
  (RGB order) at the lattice point with red index ``r`` on the **last** axis, green ``g`` on the
  second-to-last and blue ``b`` on the third-to-last.
* Lattice index ``i`` stands for the input value ``i / (D − 1)``: index 0 ↔ 0.0 and
  index D − 1 ↔ 1.0 (corner-aligned). Inputs are clamped to [0, 1] before the lookup.
* So the identity LUT is ``lut[0, b, g, r] = r/(D−1)``, ``lut[1, b, g, r] = g/(D−1)``,
  ``lut[2, b, g, r] = b/(D−1)``, and trilinear interpolation reproduces any input exactly.

The lookup is ``grid_sample`` on the 5-D LUT with ``align_corners=True``: the grid's last axis
holds (x, y, z) = (r, g, b), which index the LUT's (W, H, D) = (r, g, b) axes. It is
differentiable with respect to both the image and the LUT. (The export graph uses an equivalent
4-D formulation, see :mod:`vqe.models.deploy`.)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from vqe.models.blocks import near_zero_

#: Std of the noise that bases 1…N−1 start with. It enters the output only multiplied by their
#: near-zero weights (≲ 1e-4 · 1e-3), but it gives those weights' head rows a gradient from step 1.
BASIS_INIT_STD = 1e-3

#: Index of the LUT axis that each output channel should grow along (c → its own input axis).
_CHANNEL_AXIS = {0: -1, 1: -2, 2: -3}


def identity_lut(
    size: int, dtype: torch.dtype = torch.float32, device: torch.device | str | None = None
) -> torch.Tensor:
    """The 3×D×D×D identity LUT in the layout described in the module docstring."""
    if size < 2:
        raise ValueError(f"identity_lut: LUT size must be >= 2, got {size}")
    ramp = torch.linspace(0.0, 1.0, size, dtype=dtype, device=device)
    red = ramp.view(1, 1, size).expand(size, size, size)
    green = ramp.view(1, size, 1).expand(size, size, size)
    blue = ramp.view(size, 1, 1).expand(size, size, size)
    return torch.stack([red, green, blue])


def trilinear_lookup(frames: torch.Tensor, luts: torch.Tensor) -> torch.Tensor:
    """Map B×3×H×W RGB frames through B×3×D×D×D LUTs (one per frame) by trilinear lookup."""
    if luts.ndim != 5 or luts.shape[1] != 3 or luts.shape[0] != frames.shape[0]:
        raise ValueError(
            f"trilinear_lookup: expected LUTs of shape ({frames.shape[0]}, 3, D, D, D) for "
            f"frames {tuple(frames.shape)}, got {tuple(luts.shape)}"
        )
    # grid: B×1×H×W×3 with the last axis (r, g, b) in grid_sample's [-1, 1] coordinates.
    grid = frames.clamp(0.0, 1.0).permute(0, 2, 3, 1).unsqueeze(1) * 2.0 - 1.0
    looked_up = F.grid_sample(
        luts, grid.to(luts.dtype), mode="bilinear", padding_mode="border", align_corners=True
    )
    return looked_up.squeeze(2)


# --------------------------------------------------------------------------- regularisers


def lut_total_variation(luts: torch.Tensor) -> torch.Tensor:
    """Smoothness: mean squared step between lattice neighbours, summed over the three axes.

    For (…, 3, D, D, D) LUTs. A constant LUT scores 0; the identity scores 1/(D−1)² (each
    channel steps by 1/(D−1) along its own axis only, i.e. in 1 of the 3 channels per axis).
    """
    steps_r = luts[..., :, :, 1:] - luts[..., :, :, :-1]
    steps_g = luts[..., :, 1:, :] - luts[..., :, :-1, :]
    steps_b = luts[..., 1:, :, :] - luts[..., :-1, :, :]
    return steps_r.pow(2).mean() + steps_g.pow(2).mean() + steps_b.pow(2).mean()


def lut_monotonicity(luts: torch.Tensor) -> torch.Tensor:
    """Mean amount by which an output channel *falls* along its own input axis.

    Red output should not fall as red input grows (likewise green, blue); cross-channel
    effects (e.g. saturation changes) are left free. 0 for the identity, 1/(D−1) for the
    inverted LUT 1 − identity.
    """
    penalties = []
    for channel, axis in _CHANNEL_AXIS.items():
        values = luts[..., channel, :, :, :]
        steps = values.narrow(axis, 1, values.shape[axis] - 1) - values.narrow(
            axis, 0, values.shape[axis] - 1
        )
        penalties.append(F.relu(-steps).mean())
    return torch.stack(penalties).mean()


def weight_sparsity(weights: torch.Tensor) -> torch.Tensor:
    """L1 norm of each frame's B×N blending weights, averaged over frames."""
    return weights.abs().sum(dim=-1).mean()


# --------------------------------------------------------------------------- modules


class LutWeightPredictor(nn.Module):
    """Small CNN from a frame to its N blending weights.

    Bilinear resize to ``input_size``², strided 3×3 conv + LeakyReLU layers, average pooling to
    a ``pooled_grid``² map (keeps a coarse layout: where the face and the light are), linear → N.
    No normalisation layers: they would erase the absolute brightness and colour cast that the
    LUT has to correct.
    """

    def __init__(
        self, num_luts: int, channels: Sequence[int], input_size: int, pooled_grid: int
    ) -> None:
        super().__init__()
        channels = [int(c) for c in channels]
        feature_size = int(input_size) // 2 ** len(channels) if channels else 0
        if not channels or feature_size < 1 or feature_size % int(pooled_grid) != 0:
            raise ValueError(
                "LutWeightPredictor: input_size / 2**len(channels) must be a positive multiple "
                f"of pooled_grid, got channels={channels}, input_size={input_size}, "
                f"pooled_grid={pooled_grid}"
            )
        self.input_size = int(input_size)
        self.pooled_grid = int(pooled_grid)
        layers: list[nn.Module] = []
        previous = 3
        for width in channels:
            layers += [nn.Conv2d(previous, width, 3, stride=2, padding=1), nn.LeakyReLU(0.2)]
            previous = width
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(previous * self.pooled_grid**2, num_luts)
        # Weights ≈ (1, 0, …, 0) for every frame: the blend starts as basis 0, the identity.
        # Small random (not zero) weights, so that the features and every basis get a gradient.
        near_zero_(self.head)
        with torch.no_grad():
            self.head.bias[0] = 1.0

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        size = (self.input_size, self.input_size)
        if frames.is_contiguous():
            # NCHW frames are resized as single-channel planes: the same bilinear values (to
            # 1e-7), but PyTorch's CPU kernel would first convert a 3-channel NCHW input to
            # channels-last and back — at 720p 3.4 ms against 0.9 ms per frame. (No shape
            # arithmetic: traced for export, sizes must stay constants.)
            planes = frames.flatten(0, 1).unsqueeze(1)
            small = F.interpolate(planes, size=size, mode="bilinear", align_corners=False)
            small = small.view(-1, 3, *size)  # RGB
        else:  # e.g. channels-last frames, which that kernel takes as they are
            small = F.interpolate(frames, size=size, mode="bilinear", align_corners=False)
        pooled = F.adaptive_avg_pool2d(self.features(small), self.pooled_grid)
        return self.head(pooled.flatten(1))


@dataclass
class LutStageOutput:
    frames: torch.Tensor  # B×3×H×W, the frames after the LUT
    weights: torch.Tensor  # B×N, the blending weights used
    luts: torch.Tensor  # B×3×D×D×D, the blended LUTs used


class LutStage(nn.Module):
    """N basis LUTs of size D³×3 blended per frame by predicted weights; trilinear lookup."""

    def __init__(
        self,
        num_luts: int = 3,
        lut_size: int = 33,
        predictor_channels: Sequence[int] = (16, 32, 64, 128),
        predictor_input_size: int = 256,
        predictor_pooled_grid: int = 4,
    ) -> None:
        super().__init__()
        if num_luts < 1:
            raise ValueError(f"LutStage: num_luts must be >= 1, got {num_luts}")
        self.num_luts = int(num_luts)
        self.lut_size = int(lut_size)
        shape = (self.num_luts, 3, self.lut_size, self.lut_size, self.lut_size)
        # Identity + small noise, not zeros: see "Initialisation" in the module docstring.
        basis = torch.randn(shape) * BASIS_INIT_STD
        basis[0] = identity_lut(self.lut_size)
        self.basis = nn.Parameter(basis)
        self.predictor = LutWeightPredictor(
            self.num_luts, predictor_channels, predictor_input_size, predictor_pooled_grid
        )

    def predict_weights(self, frames: torch.Tensor) -> torch.Tensor:
        """B×N blending weights for B×3×H×W frames (smooth these over time for video)."""
        return self.predictor(frames)

    def blend(self, weights: torch.Tensor) -> torch.Tensor:
        """B×N weights → B×3×D×D×D LUTs, the weighted sum of the basis."""
        if weights.ndim != 2 or weights.shape[1] != self.num_luts:
            raise ValueError(
                f"LutStage.blend: expected B×{self.num_luts} weights, got {tuple(weights.shape)}"
            )
        blended = weights.to(self.basis.dtype) @ self.basis.flatten(1)
        return blended.view(-1, 3, self.lut_size, self.lut_size, self.lut_size)

    def forward(self, frames: torch.Tensor, weights: torch.Tensor | None = None) -> LutStageOutput:
        """Enhance ``frames``; pass ``weights`` (e.g. smoothed over time) to skip the predictor."""
        if weights is None:
            weights = self.predict_weights(frames)
        luts = self.blend(weights)
        return LutStageOutput(frames=trilinear_lookup(frames, luts), weights=weights, luts=luts)
