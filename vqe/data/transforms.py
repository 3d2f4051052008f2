"""Per-item transforms of (input, target) frame pairs: geometry shared, colour on the input only.

Frames are 3×H×W RGB float tensors in [0, 1] (see :mod:`vqe.conventions`). A transform has two
halves, so the dataset can synthesise an input from an already cropped target in between:

* :meth:`PairTransform.geometric` moves pixels — crop, resize, flip, shift-scale-rotate — and
  applies *the same* draw to every frame it is given (input and target are stacked into one
  batch and warped by one affine grid), so pairs stay pixel-aligned;
* :meth:`PairTransform.photometric` changes colours of the input alone. The target's colour and
  exposure are what the model should produce, so jittering only the input widens the range of
  casts and exposures the model learns to correct, without moving the goal.

All randomness comes from the ``torch.Generator`` the dataset seeds per item from
(seed, epoch, index), so an item is reproducible whatever worker loads it.
:class:`TrainTransform` draws; :class:`EvalTransform` is deterministic (full frames, or a centre
crop / resize for speed).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F

Size = tuple[int, int]  # (height, width)

#: Rec. 601 luma weights of R, G, B.
_LUMA = (0.299, 0.587, 0.114)
#: RGB → YIQ; hue is a rotation of the (I, Q) chroma plane.
_RGB_TO_YIQ = ((0.299, 0.587, 0.114), (0.596, -0.274, -0.322), (0.211, -0.523, 0.312))


def as_size(value: int | Sequence[int] | None, name: str) -> Size | None:
    """Read a (height, width) size from config: an int (square), a pair, or None."""
    if value is None:
        return None
    pair = (value, value) if isinstance(value, int) else tuple(value)
    if len(pair) != 2 or not all(isinstance(v, int) and v > 0 for v in pair):
        raise ValueError(f"{name} must be a positive int or [height, width], got {value!r}")
    return int(pair[0]), int(pair[1])


def _range(value: Sequence[float], name: str, low: float, high: float) -> tuple[float, float]:
    pair = tuple(float(v) for v in value)
    if len(pair) != 2 or not low <= pair[0] <= pair[1] <= high:
        raise ValueError(
            f"{name} must be [min, max] with {low} <= min <= max <= {high}, got {value!r}"
        )
    return pair[0], pair[1]


def _check_probability(value: float, name: str) -> float:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be a probability in [0, 1], got {value!r}")
    return float(value)


def _uniform(generator: torch.Generator, low: float, high: float) -> float:
    return low + (high - low) * float(torch.rand((), generator=generator))


def _chance(generator: torch.Generator, probability: float) -> bool:
    # Always draw, so one switch's probability does not shift the draws of the next.
    return float(torch.rand((), generator=generator)) < probability


# --------------------------------------------------------------------------- geometry


def _frame_size(frames: torch.Tensor) -> Size:
    return int(frames.shape[-2]), int(frames.shape[-1])


def crop(frames: torch.Tensor, top: int, left: int, size: Size) -> torch.Tensor:
    return frames[..., top : top + size[0], left : left + size[1]]


def resize(frames: torch.Tensor, size: Size) -> torch.Tensor:
    """Bilinear resize of an N×3×H×W batch; antialiased, so downscaling does not alias."""
    if _frame_size(frames) == size:
        return frames
    return F.interpolate(frames, size=size, mode="bilinear", align_corners=False, antialias=True)


def center_crop(frames: torch.Tensor, size: Size) -> torch.Tensor:
    height, width = _frame_size(frames)
    if height < size[0] or width < size[1]:
        raise ValueError(
            f"centre crop {size[0]}×{size[1]} (h×w) is larger than the frame {height}×{width}"
        )
    return crop(frames, (height - size[0]) // 2, (width - size[1]) // 2, size)


def random_crop(frames: torch.Tensor, size: Size, generator: torch.Generator) -> torch.Tensor:
    height, width = _frame_size(frames)
    if height < size[0] or width < size[1]:
        raise ValueError(
            f"crop {size[0]}×{size[1]} (h×w) is larger than the frame {height}×{width}; "
            "lower dataset.crop_size or use a resized crop (augmentation.crop_scale)"
        )
    top = int(torch.randint(height - size[0] + 1, (), generator=generator))
    left = int(torch.randint(width - size[1] + 1, (), generator=generator))
    return crop(frames, top, left, size)


def random_resized_crop(
    frames: torch.Tensor,
    size: Size,
    scale: tuple[float, float],
    ratio: tuple[float, float],
    generator: torch.Generator,
) -> torch.Tensor:
    """Crop a window of random area (``scale`` × frame area) and aspect, then resize to ``size``.

    ``ratio`` is relative to the output's aspect ratio (1 keeps the content undistorted) and is
    drawn log-uniformly; a window that does not fit is clamped to the frame.
    """
    height, width = _frame_size(frames)
    area = height * width * _uniform(generator, *scale)
    log_ratio = _uniform(generator, math.log(ratio[0]), math.log(ratio[1]))
    aspect = size[1] / size[0] * math.exp(log_ratio)  # width / height of the window
    window = (
        min(height, max(1, round(math.sqrt(area / aspect)))),
        min(width, max(1, round(math.sqrt(area * aspect)))),
    )
    return resize(random_crop(frames, window, generator), size)


def hflip(frames: torch.Tensor) -> torch.Tensor:
    return frames.flip(-1)


def affine_theta(
    angle_deg: float, scale: float, shift: tuple[float, float], size: Size
) -> torch.Tensor:
    """The 2×3 ``affine_grid`` matrix that rotates, zooms and shifts a frame about its centre.

    ``shift`` is (dx, dy) in fractions of the width and height; ``scale`` > 1 zooms in. The
    rotation is built in pixel units, so it stays a rotation on non-square frames.
    """
    height, width = size
    angle = math.radians(angle_deg)
    cos, sin = math.cos(angle) / scale, math.sin(angle) / scale
    # Output → source map in pixels about the centre, conjugated into normalised coordinates.
    half_w, half_h = width / 2.0, height / 2.0
    return torch.tensor(
        [
            [cos, -sin * half_h / half_w, -2.0 * shift[0]],
            [sin * half_w / half_h, cos, -2.0 * shift[1]],
        ]
    )


def warp(frames: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """Resample an N×3×H×W batch through one affine grid; borders are mirrored, not black."""
    grid_theta = theta.to(frames).expand(frames.shape[0], 2, 3)
    grid = F.affine_grid(grid_theta, list(frames.shape), align_corners=False)
    return F.grid_sample(
        frames, grid, mode="bilinear", padding_mode="reflection", align_corners=False
    )


# --------------------------------------------------------------------------- colour


def _luma(image: torch.Tensor) -> torch.Tensor:
    weights = torch.tensor(_LUMA, dtype=image.dtype, device=image.device).view(3, 1, 1)
    return (image * weights).sum(dim=0, keepdim=True)


def adjust_brightness(image: torch.Tensor, factor: float) -> torch.Tensor:
    return image * factor


def adjust_contrast(image: torch.Tensor, factor: float) -> torch.Tensor:
    mean = _luma(image).mean()
    return (image - mean) * factor + mean


def adjust_saturation(image: torch.Tensor, factor: float) -> torch.Tensor:
    gray = _luma(image)
    return (image - gray) * factor + gray


def adjust_hue(image: torch.Tensor, turns: float) -> torch.Tensor:
    """Rotate the chroma plane by ``turns`` of a full circle (YIQ rotation; luma unchanged)."""
    to_yiq = torch.tensor(_RGB_TO_YIQ, dtype=torch.float64)
    angle = 2.0 * math.pi * turns
    rotation = torch.tensor(
        [
            [1.0, 0.0, 0.0],
            [0.0, math.cos(angle), -math.sin(angle)],
            [0.0, math.sin(angle), math.cos(angle)],
        ],
        dtype=torch.float64,
    )
    matrix = (torch.linalg.inv(to_yiq) @ rotation @ to_yiq).to(image)
    return torch.einsum("ij,jhw->ihw", matrix, image)


# --------------------------------------------------------------------------- transforms


@dataclass(frozen=True)
class Augmentation:
    """Training augmentation settings (``configs/augmentation/*.yaml``); the defaults do nothing.

    crop_scale:  [min, max] area fraction of a random resized crop; None crops at full scale
    crop_ratio:  [min, max] aspect ratio of the resized-crop window relative to the output's
    hflip_p:     probability of a horizontal flip (input and target together)
    affine_p:    probability of a shift-scale-rotate (input and target through one grid)
    max_rotate_deg, max_shift (fraction of the size), scale_range: its ranges
    jitter_p:    probability of colour jitter on the input only
    brightness, contrast, saturation: factors drawn from [1 - v, 1 + v]
    hue:         chroma rotation drawn from [-hue, hue] turns (0.5 = half a circle)
    """

    crop_scale: tuple[float, float] | None = None
    crop_ratio: tuple[float, float] = (1.0, 1.0)
    hflip_p: float = 0.0
    affine_p: float = 0.0
    max_rotate_deg: float = 0.0
    max_shift: float = 0.0
    scale_range: tuple[float, float] = (1.0, 1.0)
    jitter_p: float = 0.0
    brightness: float = 0.0
    contrast: float = 0.0
    saturation: float = 0.0
    hue: float = 0.0

    def __post_init__(self) -> None:
        # Config lists arrive as ListConfig/list; store plain validated tuples.
        if self.crop_scale is not None:
            object.__setattr__(
                self, "crop_scale", _range(self.crop_scale, "augmentation.crop_scale", 1e-6, 1.0)
            )
        object.__setattr__(
            self, "crop_ratio", _range(self.crop_ratio, "augmentation.crop_ratio", 1e-3, 1e3)
        )
        object.__setattr__(
            self, "scale_range", _range(self.scale_range, "augmentation.scale_range", 1e-3, 1e3)
        )
        for name in ("hflip_p", "affine_p", "jitter_p"):
            _check_probability(getattr(self, name), f"augmentation.{name}")
        for name in ("brightness", "contrast", "saturation"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(
                    f"augmentation.{name} must be in [0, 1], got {getattr(self, name)!r}"
                )
        if not 0.0 <= self.hue <= 0.5:
            raise ValueError(f"augmentation.hue must be in [0, 0.5] turns, got {self.hue!r}")
        if not 0.0 <= self.max_shift <= 1.0 or not 0.0 <= self.max_rotate_deg <= 180.0:
            raise ValueError(
                "augmentation.max_shift must be in [0, 1] and max_rotate_deg in [0, 180], "
                f"got {self.max_shift!r} and {self.max_rotate_deg!r}"
            )


class PairTransform:
    """Base of the per-item transforms: ``geometric`` on every frame alike, ``photometric`` on x."""

    #: The (height, width) every output has, or None when outputs keep their frame size.
    output_size: Size | None = None

    def geometric(
        self, frames: Sequence[torch.Tensor], generator: torch.Generator
    ) -> list[torch.Tensor]:
        """Apply one geometric draw to all ``frames`` (3×H×W, the same size)."""
        stacked = self._geometry(torch.stack(list(frames)), generator)
        return list(stacked.unbind(0))

    def _geometry(self, frames: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        raise NotImplementedError

    def photometric(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return x

    @property
    def keeps_frames(self) -> bool:
        """True when every call returns its frames unchanged (no crop, resize or augmentation)."""
        return False

    def __call__(
        self, x: torch.Tensor, y: torch.Tensor | None, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        if y is None:
            (x,) = self.geometric([x], generator)
        else:
            x, y = self.geometric([x, y], generator)
        return self.photometric(x, generator), y


class TrainTransform(PairTransform):
    """Random (resized) crop to ``crop_size``, flip and shift-scale-rotate on x and y, jitter on x.

    ``crop_size=None`` keeps whole frames (the sampler then also groups by frame size).
    """

    def __init__(self, crop_size: Size | None, augmentation: Augmentation | None = None) -> None:
        self.output_size = crop_size
        self.augmentation = augmentation or Augmentation()

    @property
    def keeps_frames(self) -> bool:
        aug = self.augmentation
        return self.output_size is None and aug.hflip_p == aug.affine_p == aug.jitter_p == 0.0

    def _geometry(self, frames: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        aug = self.augmentation
        if self.output_size is not None:
            if aug.crop_scale is None:
                frames = random_crop(frames, self.output_size, generator)
            else:
                frames = random_resized_crop(
                    frames, self.output_size, aug.crop_scale, aug.crop_ratio, generator
                )
        if _chance(generator, aug.hflip_p):
            frames = hflip(frames)
        if _chance(generator, aug.affine_p):
            theta = affine_theta(
                angle_deg=_uniform(generator, -aug.max_rotate_deg, aug.max_rotate_deg),
                scale=_uniform(generator, *aug.scale_range),
                shift=(
                    _uniform(generator, -aug.max_shift, aug.max_shift),
                    _uniform(generator, -aug.max_shift, aug.max_shift),
                ),
                size=_frame_size(frames),
            )
            frames = warp(frames, theta)
        return frames

    def photometric(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        aug = self.augmentation
        if not _chance(generator, aug.jitter_p):
            return x
        x = adjust_brightness(x, _uniform(generator, 1.0 - aug.brightness, 1.0 + aug.brightness))
        x = adjust_contrast(x, _uniform(generator, 1.0 - aug.contrast, 1.0 + aug.contrast))
        x = adjust_saturation(x, _uniform(generator, 1.0 - aug.saturation, 1.0 + aug.saturation))
        x = adjust_hue(x, _uniform(generator, -aug.hue, aug.hue))
        return x.clamp(0.0, 1.0)


class EvalTransform(PairTransform):
    """No randomness: whole frames, or a centre crop / resize to ``size`` to evaluate faster."""

    def __init__(
        self, size: Size | None = None, fit: Literal["center_crop", "resize"] = "center_crop"
    ) -> None:
        if fit not in ("center_crop", "resize"):
            raise ValueError(f"eval fit must be 'center_crop' or 'resize', got {fit!r}")
        self.output_size = size
        self.fit = fit

    @property
    def keeps_frames(self) -> bool:
        return self.output_size is None

    def _geometry(self, frames: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        if self.output_size is None:
            return frames
        if self.fit == "resize":
            return resize(frames, self.output_size)
        return center_crop(frames, self.output_size)
