"""Temporal measures of an enhanced video: flicker and the temporal profile image.

**Luma.** Both work on BT.601 luma ``Y = 0.299 R + 0.587 G + 0.114 B`` of the gamma-encoded
8-bit RGB values (0–255), the weights JPEG and the webcam streams of the challenge use.

**Flicker** is the frame-to-frame brightness change of the output that the input's change does
not account for:

    flicker = 100 · mean_{t ≥ 1, r} | Δ log Y_out(t, r) − Δ log Y_in(t, r) |,

with Y(t, r) the mean luma (0–255, floored at 1) of region r of frame t on a ``grid × grid``
tiling (4 × 4 by default) and Δ the change from frame t − 1 to t. The unit is roughly "percent
of brightness per frame". It is 0 for a static clip, for an enhancer that returns its input and
for any fixed gain, whatever moves in the picture (the log turns a gain into an offset that Δ
removes); region means average out pixel noise, so a denoiser is not charged; pulses ±a added to
the output raise it by about 200·a/Y, with or without motion.

It measures how unsteady the input → output brightness relation is, so an enhancer that steadies
a flickering input scores above 0 as well; :meth:`FlickerMeter.changes` gives the mean brightness
change of the output and of the input on their own to tell the two apart. Changes finer than a
region, or that cancel within one, are not seen.

**Temporal profile**: one pixel column of every frame, placed side by side (x axis = time), the
picture NTIRE video reports use to show flicker and temporal jitter.

Frames are H×W×3 RGB uint8 arrays (what :func:`vqe.video.read_frames` yields) or internal
3×H×W RGB float tensors in [0, 1].
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image

from vqe.conventions import LUMA_WEIGHTS, tensor_to_rgb_uint8
from vqe.video import read_frames

DEFAULT_GRID = 4

Frame = np.ndarray | torch.Tensor


def as_rgb_uint8(frame: Frame) -> np.ndarray:
    """An H×W×3 RGB uint8 array from either frame type."""
    if isinstance(frame, torch.Tensor):
        return tensor_to_rgb_uint8(frame)
    if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError(f"expected an H×W×3 RGB uint8 frame, got {frame.dtype} {frame.shape}")
    return frame


def luma(frame: Frame) -> np.ndarray:
    """BT.601 luma of a frame as an H×W float32 array in 0–255."""
    return as_rgb_uint8(frame).astype(np.float32) @ LUMA_WEIGHTS


def region_means(plane: np.ndarray, grid: int) -> np.ndarray:
    """Means of a ``grid × grid`` tiling of an H×W plane (area-weighted at uneven borders)."""
    return cv2.resize(plane, (grid, grid), interpolation=cv2.INTER_AREA)


def _log_brightness(plane: np.ndarray, grid: int) -> np.ndarray:
    # The floor keeps black regions (where a log has no meaning) from dominating.
    return np.log(np.maximum(region_means(plane, grid), 1.0))


class FlickerMeter:
    """Accumulates flicker frame by frame, so a video never has to be held in memory."""

    def __init__(self, grid: int = DEFAULT_GRID) -> None:
        if grid < 1:
            raise ValueError(f"grid must be ≥ 1, got {grid}")
        self.grid = grid
        self.frames = 0
        self._unexplained = 0.0  # Σ_t mean_r |Δ log Y_out − Δ log Y_in|
        self._output_change = 0.0  # Σ_t mean_r |Δ log Y_out|
        self._input_change = 0.0
        self._previous: tuple[np.ndarray, np.ndarray] | None = None

    def update(self, output_frame: Frame, input_frame: Frame) -> None:
        output_luma, input_luma = luma(output_frame), luma(input_frame)
        if output_luma.shape != input_luma.shape:
            raise ValueError(
                f"frame {self.frames}: output is {output_luma.shape}, input is {input_luma.shape}; "
                "flicker needs frames of one size"
            )
        current = (_log_brightness(output_luma, self.grid), _log_brightness(input_luma, self.grid))
        if self._previous is not None:
            output_change = current[0] - self._previous[0]
            input_change = current[1] - self._previous[1]
            self._unexplained += float(np.abs(output_change - input_change).mean())
            self._output_change += float(np.abs(output_change).mean())
            self._input_change += float(np.abs(input_change).mean())
        self._previous = current
        self.frames += 1

    def _per_transition(self, total: float) -> float:
        if self.frames < 2:
            raise ValueError(f"flicker needs at least 2 frames, got {self.frames}")
        return 100.0 * total / (self.frames - 1)

    def value(self) -> float:
        """The flicker of the frames seen so far (see the module notes)."""
        return self._per_transition(self._unexplained)

    def changes(self) -> tuple[float, float]:
        """Mean brightness change per frame (same units) of the output and of the input alone."""
        return self._per_transition(self._output_change), self._per_transition(self._input_change)


def flicker(
    output_frames: Iterable[Frame], input_frames: Iterable[Frame], grid: int = DEFAULT_GRID
) -> float:
    """Flicker of an output video relative to its input (see the module notes)."""
    meter = FlickerMeter(grid)
    for output_frame, input_frame in zip(output_frames, input_frames, strict=True):
        meter.update(output_frame, input_frame)
    return meter.value()


def video_flicker(
    output_path: str | Path, input_path: str | Path, grid: int = DEFAULT_GRID
) -> float:
    """:func:`flicker` of two video files, decoded frame by frame."""
    try:
        return flicker(read_frames(output_path), read_frames(input_path), grid)
    except ValueError as error:  # zip(strict=True) names no file
        raise ValueError(f"{output_path} vs {input_path}: {error}") from error


def temporal_profile(frames: Iterable[Frame], column: int | None = None) -> np.ndarray:
    """Column ``column`` (default: the middle one) of every frame side by side: H×T×3 uint8."""
    strips = []
    for index, frame in enumerate(frames):
        image = as_rgb_uint8(frame)
        width = image.shape[1]
        chosen = width // 2 if column is None else column
        if not -width <= chosen < width:
            raise ValueError(f"column {chosen} is outside frame {index} of width {width}")
        if strips and image.shape[0] != strips[0].shape[0]:
            raise ValueError(
                f"frame {index} is {image.shape[0]} rows high, frame 0 {strips[0].shape[0]}"
            )
        strips.append(image[:, chosen])
    if not strips:
        raise ValueError("temporal_profile needs at least one frame")
    return np.stack(strips, axis=1)


def save_png(image: np.ndarray, path: str | Path) -> Path:
    """Save an H×W×3 RGB uint8 image as PNG (folders created)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(as_rgb_uint8(image)).save(path, format="PNG")
    return path


def side_by_side(images: Sequence[np.ndarray], gap: int = 4) -> np.ndarray:
    """Images of one height joined left to right with white gaps (input | output profiles)."""
    spacer = np.full((images[0].shape[0], gap, 3), 255, dtype=np.uint8)
    parts = [part for image in images for part in (image, spacer)][:-1]
    return np.concatenate(parts, axis=1)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Flicker of an enhanced video against its input.")
    parser.add_argument("output", type=Path, help="enhanced video")
    parser.add_argument("input", type=Path, help="the input it was made from")
    parser.add_argument("--grid", type=int, default=DEFAULT_GRID, help="regions per side")
    parser.add_argument(
        "--profile", type=Path, help="save input | output temporal profiles here (PNG)"
    )
    parser.add_argument("--column", type=int, help="pixel column of the profile (default: middle)")
    args = parser.parse_args(argv)
    try:
        print(f"flicker {video_flicker(args.output, args.input, args.grid):.4f}")
        if args.profile is not None:
            profiles = [
                temporal_profile(read_frames(path), args.column)
                for path in (args.input, args.output)
            ]
            print(f"wrote {save_png(side_by_side(profiles), args.profile)}")
    except (ValueError, RuntimeError) as error:  # VideoError is a RuntimeError
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
