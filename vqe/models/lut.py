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

Three options make the stage read and fix what the capture did rather than what the scene is
(:class:`LutStage`): ``statistics`` feeds the predictor's head scene-independent cues of the
cast and exposure (:func:`degradation_statistics`), ``white_balance`` scales each output channel
of the blended LUT by a predicted gain (:func:`balance_luts`: a von Kries correction of the
cast, which the bases learn slowly), and ``gain_grid`` multiplies the result
by a smooth low-resolution gain map (:func:`gain_map`) for uneven key light, which no global
colour map can undo. All start as the identity.

The lookup is ``grid_sample`` on the 5-D LUT with ``align_corners=True``: the grid's last axis
holds (x, y, z) = (r, g, b), which index the LUT's (W, H, D) = (r, g, b) axes. It is
differentiable with respect to both the image and the LUT. (The export graph uses an equivalent
4-D formulation, see :mod:`vqe.models.deploy`.)
"""

from __future__ import annotations

import math
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


def initial_basis(num_luts: int, lut_size: int) -> nn.Parameter:
    """N×3×D×D×D basis LUTs to start from: the identity, then small noise (not zeros: see
    "Initialisation" in the module docstring)."""
    basis = torch.randn(num_luts, 3, lut_size, lut_size, lut_size) * BASIS_INIT_STD
    basis[0] = identity_lut(lut_size)
    return nn.Parameter(basis)


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


#: Soft-histogram bins of each channel's log-scaled values (the percentiles are read off its CDF).
STAT_BINS = 32
#: Percentiles (as fractions) of each channel fed to the head: black level, shadows, mid-tones,
#: highlights — the tone curve and exposure the degradation applied, whatever the scene.
STAT_PERCENTILES = (0.01, 0.05, 0.25, 0.50, 0.75, 0.95, 0.99)
#: Bins per axis of the log-chroma histogram (log R/G × log B/G), spanning ±CHROMA_RANGE.
CHROMA_BINS = 8
CHROMA_RANGE = 1.0
#: Offset of the log scale: log(x + ε) keeps black finite and resolves the darkest clips.
LOG_EPS = 1.0 / 256
#: The statistics are read from this size (an average-pooled copy of the predictor's resize):
#: 4096 pixels give percentiles to well under a bin, at a few MACs per pixel.
STAT_SIZE = 64
#: Number of statistics: 3 channel means, 3 × percentiles, chroma means and second moments
#: (4), the 2-D chroma histogram.
NUM_STATISTICS = 3 + 3 * len(STAT_PERCENTILES) + 4 + CHROMA_BINS**2


def _abs(values: torch.Tensor) -> torch.Tensor:
    # relu(x) + relu(−x): CoreML's Neural-Engine op list (vqe.export.coreml) has no abs.
    return F.relu(values) + F.relu(-values)


def soft_histogram(values: torch.Tensor, bins: int, low: float, high: float) -> torch.Tensor:
    """B×C×H×W values → B×C×bins×(H·W) triangular (linear-interpolation) bin memberships.

    Each value splits between its two nearest bin centres (which span [low, high]), so the
    memberships sum to 1 per value and the histogram is a plain mean — 4-D ops only, no sort."""
    scaled = (values.clamp(low, high) - low) * ((bins - 1) / (high - low))
    batch, channels = values.shape[:2]
    flat = scaled.reshape(batch, channels, 1, -1)
    centres = torch.arange(bins, dtype=values.dtype, device=values.device).view(1, 1, bins, 1)
    return F.relu(1.0 - _abs(flat - centres))


def soft_percentiles(cdf: torch.Tensor, levels: Sequence[float], step: float) -> torch.Tensor:
    """B×C×K cumulative histograms (bin k = CDF at k · step) → B×C×L percentiles.

    The p-percentile is the length of the value range where the CDF is still below p: each bin
    contributes ``step`` × a ramp (width 1/K in CDF) of p − CDF. Monotone and piecewise linear in
    the CDF, and only clip / matmul ops (``torch.quantile`` / ``sort`` do not convert to CoreML)."""
    bins = cdf.shape[-1]
    targets = torch.tensor(list(levels), dtype=cdf.dtype, device=cdf.device).view(1, 1, -1, 1)
    below = ((targets - cdf.unsqueeze(2)) * bins + 0.5).clamp(0.0, 1.0)  # B×C×L×K
    return below.mean(dim=-1) * (bins * step)


def degradation_statistics(small: torch.Tensor, size: int) -> torch.Tensor:
    """B×3×S×S frames (the predictor's resize, S = ``size``, a Python int so that a traced
    graph holds constants) → B×:data:`NUM_STATISTICS` scene-independent cues.

    Why: the CNN features describe the scene (a face, a wall); the LUT must undo the capture's
    cast, exposure and tone curve, which show in global statistics whatever the scene —

    * channel means: exposure and cast, linear;
    * percentiles of each channel in log space (soft-histogram CDF, :func:`soft_percentiles`):
      black level (haze), the tone curve's shape, the clip point; log spacing resolves the dim
      clips (means 0.16–0.24) that a linear histogram would crowd into a few bins;
    * mean and second moment of log(R/G), log(B/G) and their 8×8 soft histogram: the
      white-balance cast as colour-constancy methods read it (a gain on R or B is a shift of
      the log-chroma histogram, independent of the scene's own colours).

    Only 4-D-or-smaller reshapes, relu/clip, log, means and matmuls: it exports to CoreML fp16
    and ONNX. No parameters, so it adds no gradient path and nothing to train."""
    factor = max(1, size // STAT_SIZE)
    pixels = F.avg_pool2d(small, factor) if factor > 1 else small
    count = (size // factor) ** 2
    means = pixels.mean(dim=(2, 3))
    log_low, log_high = math.log(LOG_EPS), math.log(1.0 + LOG_EPS)
    logs = torch.log(pixels.clamp(0.0, 1.0) + LOG_EPS)
    log_scaled = (logs - log_low) * (1.0 / (log_high - log_low))  # [0, 1]
    histogram = soft_histogram(log_scaled, STAT_BINS, 0.0, 1.0).mean(dim=-1)  # B×3×K
    upper = torch.ones(STAT_BINS, STAT_BINS, dtype=small.dtype, device=small.device).triu()
    cdf = histogram @ upper  # cumulative sum as a matmul: CoreML's op list has no cumsum
    percentiles = soft_percentiles(cdf, STAT_PERCENTILES, 1.0 / (STAT_BINS - 1))
    red, green, blue = logs[:, 0:1], logs[:, 1:2], logs[:, 2:3]
    chroma = torch.cat([red - green, blue - green], dim=1)  # B×2×s×s
    chroma_means = chroma.mean(dim=(2, 3))
    chroma_moments = chroma.square().mean(dim=(2, 3)) - chroma_means.square()
    members = soft_histogram(chroma, CHROMA_BINS, -CHROMA_RANGE, CHROMA_RANGE)  # B×2×K×P
    joint = members[:, 0] @ members[:, 1].transpose(1, 2) * (1.0 / count)
    return torch.cat(
        [means, percentiles.flatten(1), chroma_means, chroma_moments, joint.flatten(1)], dim=1
    )


class LutWeightPredictor(nn.Module):
    """Small CNN from a frame to its N blending weights (and any extra coefficients).

    Bilinear resize to ``input_size``², strided 3×3 conv + LeakyReLU layers, average pooling to
    a ``pooled_grid``² map (keeps a coarse layout: where the face and the light are), linear →
    ``num_outputs``. With ``statistics``, :func:`degradation_statistics` of the resize are
    concatenated to the pooled features before the head: cues of the cast and exposure that do
    not depend on the scene. No normalisation layers: they would erase the absolute brightness
    and colour cast that the LUT has to correct.
    """

    def __init__(
        self,
        num_outputs: int,
        channels: Sequence[int],
        input_size: int,
        pooled_grid: int,
        statistics: bool = False,
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
        self.statistics = bool(statistics)
        layers: list[nn.Module] = []
        previous = 3
        for width in channels:
            layers += [nn.Conv2d(previous, width, 3, stride=2, padding=1), nn.LeakyReLU(0.2)]
            previous = width
        self.features = nn.Sequential(*layers)
        extra = NUM_STATISTICS if self.statistics else 0
        self.head = nn.Linear(previous * self.pooled_grid**2 + extra, num_outputs)
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
        pooled = F.adaptive_avg_pool2d(self.features(small), self.pooled_grid).flatten(1)
        if self.statistics:
            pooled = torch.cat([pooled, degradation_statistics(small, self.input_size)], dim=1)
        return self.head(pooled)


#: Coefficients of the ``white_balance`` option: one log-gain per output channel (R, G, B).
NUM_BALANCE_GAINS = 3


def balance_luts(luts: torch.Tensor, log_gains: torch.Tensor) -> torch.Tensor:
    """B×3×… LUTs (or their atlases) with output channel c scaled by exp(log_gains[:, c]).

    A colour cast is a gain per channel (von Kries); the inverse gain on the LUT's output is
    exact for any layout that keeps the output channel on axis 1, so the training graph, the
    fused kernel and the atlas lookups of the deploy graph all apply it to the blended table
    before the lookup — three multiplies per lattice point, none per pixel."""
    shape = (-1, NUM_BALANCE_GAINS) + (1,) * (luts.ndim - 2)
    return luts * torch.exp(log_gains).reshape(shape).to(luts.dtype)


def gain_map(coefficients: torch.Tensor, grid: tuple[int, int], size: tuple[int, int]) -> torch.Tensor:
    """B×(gh·gw) log-gains on a coarse grid → B×1×H×W multiplicative gain map.

    exp on the coarse grid (positive, 1 at g = 0), then a bilinear 4-D upsample: a smooth field,
    like the uneven key light it corrects (a fall-off times a soft spot)."""
    coarse = torch.exp(coefficients.reshape(-1, 1, grid[0], grid[1]))
    return F.interpolate(coarse, size=size, mode="bilinear", align_corners=False)


@dataclass
class LutStageOutput:
    frames: torch.Tensor  # B×3×H×W, the frames after the LUT (and the gain map)
    weights: torch.Tensor  # B×K, the stage's coefficients used (see LutStage.split_coefficients)
    luts: torch.Tensor  # B×3×D×D×D, the blended LUTs used
    log_gains: torch.Tensor | None = None  # B×1×gh×gw coarse log-gain grid (None without one)


class LutStage(nn.Module):
    """N basis LUTs of size D³×3 blended per frame by predicted weights; trilinear lookup.

    Options:

    * ``statistics``: the predictor also reads :func:`degradation_statistics` (channel means,
      log-space percentiles, log-chroma histogram) — the cast and exposure to undo, which the
      scene-describing CNN features alone confuse with the scene (a warm wall vs. a warm cast).
    * ``white_balance``: three more coefficients, log-gains of the blended LUT's output
      channels (:func:`balance_luts`). Through the bases alone a cast correction must be
      learned as a basis shape times a predicted weight, and the recipe's 520 steps took out
      about a third of a known cast, with 3 bases or 6 alike (``vqe bench-cast``); one
      predicted gain per channel has a direct gradient. Start at ≈ 0 (gain ≈ 1).
    * ``gain_grid`` (gh, gw): after the LUT, the frame is multiplied by a smooth gain map,
      exp of gh×gw predicted log-gains upsampled bilinearly (:func:`gain_map`). A global LUT
      cannot fix uneven key light (a fall-off, a spot): the same colour needs a different
      correction in different places. They start at ≈ 0 (gain ≈ 1).

    All coefficients are one predicted vector — N blending weights, then the three balance
    log-gains, then the gh·gw map log-gains (:meth:`split_coefficients`) — so whatever smooths
    the weights over time (the video stream) smooths the balance and the gain map too.
    """

    def __init__(
        self,
        num_luts: int = 3,
        lut_size: int = 33,
        predictor_channels: Sequence[int] = (16, 32, 64, 128),
        predictor_input_size: int = 256,
        predictor_pooled_grid: int = 4,
        statistics: bool = False,
        gain_grid: Sequence[int] | None = None,
        white_balance: bool = False,
    ) -> None:
        super().__init__()
        if num_luts < 1:
            raise ValueError(f"LutStage: num_luts must be >= 1, got {num_luts}")
        self.num_luts = int(num_luts)
        self.lut_size = int(lut_size)
        self.white_balance = bool(white_balance)
        self.gain_grid = parse_gain_grid(gain_grid)
        num_gains = self.gain_grid[0] * self.gain_grid[1] if self.gain_grid else 0
        num_balance = NUM_BALANCE_GAINS if self.white_balance else 0
        self.num_coefficients = self.num_luts + num_balance + num_gains
        self.basis = initial_basis(self.num_luts, self.lut_size)
        self.predictor = LutWeightPredictor(
            self.num_coefficients,
            predictor_channels,
            predictor_input_size,
            predictor_pooled_grid,
            statistics=statistics,
        )

    def predict_weights(self, frames: torch.Tensor) -> torch.Tensor:
        """B×K coefficients for B×3×H×W frames (:meth:`split_coefficients`; smooth these over
        time for video)."""
        return self.predictor(frames)

    def check_weights(self, weights: torch.Tensor) -> None:
        if weights.ndim != 2 or weights.shape[1] != self.num_coefficients:
            raise ValueError(
                f"LutStage: expected B×{self.num_coefficients} coefficients ({self.num_luts} "
                f"LUT weights + {self.num_coefficients - self.num_luts} gains), "
                f"got {tuple(weights.shape)}"
            )

    def split_coefficients(
        self, coefficients: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """B×K coefficients → (B×N blending weights, B×3 balance log-gains or None, B×(gh·gw)
        map log-gains or None)."""
        return split_coefficients(coefficients, self.num_luts, self.white_balance, self.gain_grid)

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
        self.check_weights(weights)
        blending, balance, gains = self.split_coefficients(weights)
        luts = self.blend(blending)
        if balance is not None:
            luts = balance_luts(luts, balance)
        looked_up = trilinear_lookup(frames, luts)
        log_gains = None
        if gains is not None and self.gain_grid is not None:
            looked_up = looked_up * gain_map(gains, self.gain_grid, frames.shape[-2:]).to(
                looked_up.dtype
            )
            log_gains = gains.reshape(-1, 1, *self.gain_grid)
        return LutStageOutput(frames=looked_up, weights=weights, luts=luts, log_gains=log_gains)


def split_coefficients(
    coefficients: torch.Tensor,
    num_luts: int,
    white_balance: bool,
    gain_grid: tuple[int, int] | None,
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """A global LUT stage's B×K coefficient vector → its parts (see :class:`LutStage`)."""
    blending = coefficients[:, :num_luts]
    start = num_luts + (NUM_BALANCE_GAINS if white_balance else 0)
    balance = coefficients[:, num_luts:start] if white_balance else None
    gains = coefficients[:, start:] if gain_grid is not None else None
    return blending, balance, gains


def parse_gain_grid(grid: Sequence[int] | None) -> tuple[int, int] | None:
    """None / [] (no gain map) or [rows, columns] with both ≥ 1."""
    if grid is None or len(grid) == 0:
        return None
    if len(grid) != 2 or min(int(n) for n in grid) < 1:
        raise ValueError(f"LutStage: gain_grid must be [rows, columns] >= 1 or null, got {grid}")
    return int(grid[0]), int(grid[1])
