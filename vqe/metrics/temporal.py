"""Temporal measures of an enhanced video: flicker, warping error and the temporal profile.

**Luma.** Flicker and the optical flow work on BT.601 luma ``Y = 0.299 R + 0.587 G + 0.114 B`` of the gamma-encoded
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

**Warping error** is how far the output departs from following the input's motion: the
previous output frame, carried along the input's optical flow, should equal the current one,

    warping_error = mean_{t ≥ 1} mean_{p reliable, c} ( Ô_{t−1}(p) − O_t(p, c) )²,
    Ô_{t−1}(p) = O_{t−1}(p + F_t(p)),

on RGB values in [0, 1] (an MSE, as in Lai et al., "Learning blind video temporal consistency",
ECCV 2018). ``F_t`` is the backward flow of the INPUT frames (frame t → frame t − 1), from OpenCV's
DIS optical flow (no weights) on BT.601 luma; ``Ô`` is bilinear (``cv2.remap``). A pixel is
*reliable* when it lands inside frame t − 1 and passes the forward–backward consistency check of
Sundaram et al. (ECCV 2010): with ``G`` the forward flow (t − 1 → t) read at ``p + F_t(p)``,
``|F + G|² ≤ 0.01 (|F|² + |G|²) + 0.5`` — occluded pixels and flow the estimator got wrong fail it
and are left out. A transition without a reliable pixel is skipped. Frames taller than
``max_height`` (360 by default) are area-downscaled first, both for the flow and the error (DIS on
720p is ~10× slower, and the test loop runs it on every frame). It is 0 for a static clip, and
for an output that follows a clean moving input exactly (the input itself, or any fixed
per-pixel colour mapping of it); per-frame noise or flicker in the output raise it. The input's
own sensor and codec noise count too, so an enhancer that returns its input scores the input's
own warping error, which :meth:`WarpingErrorMeter.input_value` reports beside it (the same flow
and mask, on the input frames): below it, the enhancer steadied the video; above it, it added
temporal noise. Unlike flicker it sees changes finer than a region, but it charges pixel noise
and is not invariant to a gain.

**Temporal profile**: one pixel column of every frame, placed side by side (x axis = time), the
picture NTIRE video reports use to show flicker and temporal jitter.

Frames are H×W×3 RGB arrays — uint8 (what :func:`vqe.video.read_frames` yields) or float in
[0, 1] — or internal 3×H×W RGB float tensors in [0, 1]. Public functions for frame sequences:

* ``flicker(outputs, inputs, grid=4) -> float``;
* ``warping_error(outputs, inputs, max_height=360) -> float``;
* the per-video accumulators :class:`FlickerMeter` and :class:`WarpingErrorMeter`
  (``update(output_frame, input_frame)`` frame by frame, then ``value()``);
* ``compare_videos(enhanced_path, input_path)`` for files: both measures on a common time base.

The command (``vqe temporal``) is :mod:`vqe.cli.temporal`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image

from vqe.atomic import atomic_path
from vqe.conventions import LUMA_WEIGHTS, tensor_to_rgb_uint8
from vqe.video import probe, read_frames

log = logging.getLogger(__name__)

DEFAULT_GRID = 4
#: Frames taller than this are area-downscaled before the warping error (see the module notes).
DEFAULT_FLOW_HEIGHT = 360
#: Tolerance on float frames, which must hold values in [0, 1].
_FLOAT_SLACK = 1e-3

Frame = np.ndarray | torch.Tensor
#: ``flow(first, second)`` on H×W uint8 luma planes → H×W×2 float32 (dx, dy) such that
#: ``first(p) ≈ second(p + flow(p))`` (OpenCV's convention).
FlowEstimator = Callable[[np.ndarray, np.ndarray], np.ndarray]


def _float_hwc(frame: np.ndarray) -> np.ndarray:
    """A float H×W×3 array checked to hold values in [0, 1], clipped there."""
    low, high = float(frame.min()), float(frame.max())
    if low < -_FLOAT_SLACK or high > 1 + _FLOAT_SLACK:
        raise ValueError(
            f"float frames must hold RGB values in [0, 1], got [{low:g}, {high:g}]; "
            "pass 0–255 values as uint8"
        )
    return np.clip(frame, 0.0, 1.0)


def _check_hwc(frame: np.ndarray) -> None:
    if (
        frame.ndim != 3
        or frame.shape[2] != 3
        or not (frame.dtype == np.uint8 or np.issubdtype(frame.dtype, np.floating))
    ):
        raise ValueError(
            f"expected an H×W×3 RGB uint8 (0–255) or float ([0, 1]) frame, got {frame.dtype} "
            f"{frame.shape}"
        )


def as_rgb_uint8(frame: Frame) -> np.ndarray:
    """An H×W×3 RGB uint8 array from any frame type (floats rounded)."""
    if isinstance(frame, torch.Tensor):
        return tensor_to_rgb_uint8(frame)
    _check_hwc(frame)
    if frame.dtype == np.uint8:
        return frame
    return np.rint(_float_hwc(frame) * 255.0).astype(np.uint8)


def as_rgb_float(frame: Frame) -> np.ndarray:
    """An H×W×3 RGB float32 array in [0, 1] from any frame type (no rounding of floats)."""
    if isinstance(frame, torch.Tensor):
        if frame.ndim != 3 or frame.shape[0] != 3:
            raise ValueError(f"expected a 3×H×W RGB tensor, got {tuple(frame.shape)}")
        array = frame.detach().float().clamp(0.0, 1.0).permute(1, 2, 0).cpu().numpy()
        return np.ascontiguousarray(array)
    _check_hwc(frame)
    if frame.dtype == np.uint8:
        return frame.astype(np.float32) / 255.0
    return _float_hwc(frame).astype(np.float32)


def luma(frame: Frame) -> np.ndarray:
    """BT.601 luma of a frame as an H×W float32 array in 0–255."""
    return as_rgb_uint8(frame).astype(np.float32) @ LUMA_WEIGHTS


def region_means(plane: np.ndarray, grid: int) -> np.ndarray:
    """Means of a ``grid × grid`` tiling of an H×W plane (area-weighted at uneven borders)."""
    return cv2.resize(plane, (grid, grid), interpolation=cv2.INTER_AREA)


def _log_brightness(plane: np.ndarray, grid: int) -> np.ndarray:
    # The floor keeps black regions (where a log has no meaning) from dominating.
    return np.log(np.maximum(region_means(plane, grid), 1.0))


# --------------------------------------------------------------------------- flicker


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


# --------------------------------------------------------------------------- warping error


#: OpenCV's DIS flow refuses frames whose width and height are both below this.
MIN_FLOW_SIDE = 12


def dis_flow(preset: int = cv2.DISOPTICAL_FLOW_PRESET_MEDIUM) -> FlowEstimator:
    """OpenCV's DIS optical flow as a :data:`FlowEstimator` (one engine, not thread-safe)."""
    engine = cv2.DISOpticalFlow_create(preset)

    def estimate(first: np.ndarray, second: np.ndarray) -> np.ndarray:
        height, width = first.shape[:2]
        if max(height, width) < MIN_FLOW_SIDE:
            raise ValueError(
                f"frames of {width}×{height} are too small for the warping error's optical flow "
                f"(it needs a side of at least {MIN_FLOW_SIDE} pixels); skip it with --no-warping"
            )
        return engine.calc(first, second, None)

    return estimate


def _sample(image: np.ndarray, map_x: np.ndarray, map_y: np.ndarray) -> np.ndarray:
    """``image(x + …, y + …)`` bilinear at the given positions; 0 outside the image."""
    return cv2.remap(image, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)


def reliable_warp(
    backward: np.ndarray, forward: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(map_x, map_y, reliable) for warping frame t − 1 onto frame t.

    ``backward`` is the flow t → t − 1 and ``forward`` t − 1 → t (H×W×2, :data:`FlowEstimator`
    convention). A pixel is reliable when ``p + backward(p)`` lies inside the frame and the
    forward–backward check of the module notes passes.
    """
    height, width = backward.shape[:2]
    grid_x, grid_y = np.meshgrid(
        np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32)
    )
    map_x = grid_x + backward[..., 0]
    map_y = grid_y + backward[..., 1]
    inside = (map_x >= 0) & (map_x <= width - 1) & (map_y >= 0) & (map_y <= height - 1)
    forward_there = _sample(np.ascontiguousarray(forward, dtype=np.float32), map_x, map_y)
    round_trip = ((backward + forward_there) ** 2).sum(axis=2)
    scale = (backward**2).sum(axis=2) + (forward_there**2).sum(axis=2)
    return map_x, map_y, inside & (round_trip <= 0.01 * scale + 0.5)


def transition_error(
    previous_output: np.ndarray,
    output: np.ndarray,
    backward: np.ndarray,
    forward: np.ndarray,
) -> tuple[float, float]:
    """(masked MSE, reliable fraction) of one transition; the MSE is NaN without a reliable
    pixel. Outputs are H×W×3 float32 in [0, 1]; flows as in :func:`reliable_warp`."""
    map_x, map_y, reliable = reliable_warp(backward, forward)
    if not reliable.any():
        return math.nan, 0.0
    warped = _sample(previous_output, map_x, map_y)
    squared = ((warped - output) ** 2).mean(axis=2)  # mean over the 3 channels
    return float(squared[reliable].mean(dtype=np.float64)), float(reliable.mean())


def _working_size(height: int, width: int, max_height: int | None) -> tuple[int, int] | None:
    if max_height is None or height <= max_height:
        return None
    return max_height, max(1, round(width * max_height / height))


class WarpingErrorMeter:
    """Accumulates the warping error (module notes) frame by frame.

    Args:
        flow: the optical flow on input luma (default: :func:`dis_flow`, preset medium).
        max_height: frames taller than this are area-downscaled first; ``None`` keeps them.
    """

    def __init__(
        self, flow: FlowEstimator | None = None, max_height: int | None = DEFAULT_FLOW_HEIGHT
    ) -> None:
        if max_height is not None and max_height < 8:
            raise ValueError(f"max_height must be ≥ 8 or None, got {max_height}")
        self.flow = flow if flow is not None else dis_flow()
        self.max_height = max_height
        self.frames = 0
        self._errors: list[float] = []  # per transition with a reliable pixel
        self._input_errors: list[float] = []  # the same, of the input frames themselves
        self._reliable: list[float] = []  # reliable fraction, per transition
        self._previous: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    def _prepared(
        self, output_frame: Frame, input_frame: Frame
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(output, input, input luma plane) at the working size."""
        output, source = as_rgb_float(output_frame), as_rgb_float(input_frame)
        plane = np.clip(np.rint(luma(input_frame)), 0, 255).astype(np.uint8)
        if output.shape != source.shape:
            raise ValueError(
                f"frame {self.frames}: output is {output.shape[:2]}, input is {source.shape[:2]}; "
                "the warping error needs frames of one size"
            )
        size = _working_size(*plane.shape, self.max_height)
        if size is not None:
            output, source, plane = (
                cv2.resize(image, size[::-1], interpolation=cv2.INTER_AREA)
                for image in (output, source, plane)
            )
        return output, source, plane

    def update(self, output_frame: Frame, input_frame: Frame) -> None:
        current = self._prepared(output_frame, input_frame)
        if self._previous is not None:
            (previous_output, previous_input, previous_plane) = self._previous
            output, source, plane = current
            backward = self.flow(plane, previous_plane)  # t → t − 1
            forward = self.flow(previous_plane, plane)  # t − 1 → t
            error, reliable = transition_error(previous_output, output, backward, forward)
            self._reliable.append(reliable)
            if not math.isnan(error):
                self._errors.append(error)
                self._input_errors.append(
                    transition_error(previous_input, source, backward, forward)[0]
                )
        self._previous = current
        self.frames += 1

    def _check_frames(self) -> None:
        if self.frames < 2:
            raise ValueError(f"the warping error needs at least 2 frames, got {self.frames}")

    def value(self) -> float:
        """Mean masked MSE over the transitions; NaN when no pixel was ever reliable."""
        self._check_frames()
        return math.fsum(self._errors) / len(self._errors) if self._errors else math.nan

    def input_value(self) -> float:
        """The input's own warping error (same flow and mask): what the identity would score."""
        self._check_frames()
        errors = self._input_errors
        return math.fsum(errors) / len(errors) if errors else math.nan

    def reliable_fraction(self) -> float:
        """Mean share of pixels that passed the reliability mask, over the transitions."""
        self._check_frames()
        return math.fsum(self._reliable) / len(self._reliable)


def warping_error(
    output_frames: Iterable[Frame],
    input_frames: Iterable[Frame],
    max_height: int | None = DEFAULT_FLOW_HEIGHT,
    flow: FlowEstimator | None = None,
) -> float:
    """Warping error of an output video, with the flow of its input (see the module notes)."""
    meter = WarpingErrorMeter(flow, max_height)
    for output_frame, input_frame in zip(output_frames, input_frames, strict=True):
        meter.update(output_frame, input_frame)
    return meter.value()


# --------------------------------------------------------------------------- video files


@dataclass
class VideoComparison:
    """Temporal measures of an enhanced video file against its input file."""

    flicker: float
    warping_error: float
    input_warping_error: float  # the input's own: what returning the input would score
    reliable_fraction: float
    frames: int  # frame pairs compared
    notes: list[str] = field(default_factory=list)  # how the frames were paired


def _rate(path: Path) -> float:
    return probe(path).fps


def paired_frames(
    output_path: str | Path, input_path: str | Path, notes: list[str]
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(enhanced frame, input frame) pairs on a common time base.

    When the frame rates differ (an enhancer resampled a 20 fps webcam clip to 30 fps, as
    ``vqe.inference`` does by default), the input is resampled to the enhanced video's rate, the
    way :func:`vqe.video.read_frames` and the enhancers do. When the counts still differ, the
    overlapping frames are compared. What was done is appended to ``notes``.
    """
    output_path, input_path = Path(output_path), Path(input_path)
    output_fps, input_fps = _rate(output_path), _rate(input_path)
    resample: float | None = None
    if output_fps > 0 and input_fps > 0 and abs(output_fps - input_fps) > 1e-3 * output_fps:
        resample = output_fps
        notes.append(
            f"{input_path} is {input_fps:g} fps and {output_path} {output_fps:g} fps: the input "
            f"was resampled to {output_fps:g} fps to compare frames at the same times"
        )
    outputs, inputs = read_frames(output_path), read_frames(input_path, resample)
    count = 0
    for output_frame in outputs:
        input_frame = next(inputs, None)
        if input_frame is None:
            extra = 1 + sum(1 for _ in outputs)
            notes.append(
                f"{output_path} has {count + extra} frames, its input {count}: the last "
                f"{extra} enhanced frames were left out"
            )
            return
        count += 1
        yield output_frame, input_frame
    extra = sum(1 for _ in inputs)
    if extra:
        notes.append(
            f"{input_path} has {count + extra} frames, the enhanced video {count}: the last "
            f"{extra} input frames were left out"
        )


def compare_videos(
    output_path: str | Path,
    input_path: str | Path,
    grid: int = DEFAULT_GRID,
    max_height: int | None = DEFAULT_FLOW_HEIGHT,
    warping: bool = True,
    on_pair: Callable[[np.ndarray, np.ndarray], None] | None = None,
) -> VideoComparison:
    """Flicker and (``warping``) warping error of two video files, decoded frame by frame on a
    common time base (:func:`paired_frames`); ``on_pair`` sees every pair (e.g. for profiles)."""
    notes: list[str] = []
    flicker_meter = FlickerMeter(grid)
    warping_meter = WarpingErrorMeter(max_height=max_height) if warping else None
    try:
        for output_frame, input_frame in paired_frames(output_path, input_path, notes):
            flicker_meter.update(output_frame, input_frame)
            if warping_meter is not None:
                warping_meter.update(output_frame, input_frame)
            if on_pair is not None:
                on_pair(output_frame, input_frame)
        flicker_value = flicker_meter.value()
        warping_value = warping_meter.value() if warping_meter else math.nan
        input_value = warping_meter.input_value() if warping_meter else math.nan
        reliable = warping_meter.reliable_fraction() if warping_meter else math.nan
    except ValueError as error:  # the meters' messages name no file
        raise ValueError(f"{output_path} vs {input_path}: {error}") from error
    for note in notes:
        log.info(note)
    return VideoComparison(
        flicker_value, warping_value, input_value, reliable, flicker_meter.frames, notes
    )


def video_flicker(
    output_path: str | Path, input_path: str | Path, grid: int = DEFAULT_GRID
) -> float:
    """:func:`flicker` of two video files, decoded frame by frame on a common time base."""
    return compare_videos(output_path, input_path, grid, warping=False).flicker


# --------------------------------------------------------------------------- profiles


class ProfileBuilder:
    """:func:`temporal_profile` built frame by frame."""

    def __init__(self, column: int | None = None) -> None:
        self.column = column
        self._strips: list[np.ndarray] = []

    def add(self, frame: Frame) -> None:
        image = as_rgb_uint8(frame)
        index, width = len(self._strips), image.shape[1]
        chosen = width // 2 if self.column is None else self.column
        if not -width <= chosen < width:
            raise ValueError(f"column {chosen} is outside frame {index} of width {width}")
        if self._strips and image.shape[0] != self._strips[0].shape[0]:
            raise ValueError(
                f"frame {index} is {image.shape[0]} rows high, frame 0 {self._strips[0].shape[0]}"
            )
        self._strips.append(image[:, chosen])

    def image(self) -> np.ndarray:
        if not self._strips:
            raise ValueError("temporal_profile needs at least one frame")
        return np.stack(self._strips, axis=1)


def temporal_profile(frames: Iterable[Frame], column: int | None = None) -> np.ndarray:
    """Column ``column`` (default: the middle one) of every frame side by side: H×T×3 uint8."""
    builder = ProfileBuilder(column)
    for frame in frames:
        builder.add(frame)
    return builder.image()


def save_png(image: np.ndarray, path: str | Path) -> Path:
    """Save an H×W×3 RGB uint8 image as PNG (folders created)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as temporary:
        Image.fromarray(as_rgb_uint8(image)).save(temporary, format="PNG")
    return path


def save_profile_plot(
    profiles: Sequence[tuple[str, np.ndarray]], path: str | Path, column: int | None = None
) -> Path:
    """Temporal profiles (H×T×3 uint8, one row of panels each) as a labelled PNG: frame index
    along x, pixel row along y; a profile is a few frames wide, so each frame is drawn as a
    wide band (nearest neighbour) rather than a 1-pixel strip."""
    import matplotlib

    matplotlib.use("Agg")  # files only
    import matplotlib.pyplot as plt

    path = Path(path)
    height, frames = profiles[0][1].shape[:2]
    figure, axes = plt.subplots(
        len(profiles), 1, figsize=(8.0, 2.2 * len(profiles) + 0.6), sharex=True, squeeze=False
    )
    where = "the middle column" if column is None else f"column {column}"
    for axis, (name, image) in zip(axes[:, 0], profiles, strict=True):
        axis.imshow(
            image, aspect="auto", interpolation="nearest", extent=(-0.5, frames - 0.5, height, 0)
        )
        axis.set_title(f"{name}: {where} of every frame", fontsize="medium")
        axis.set_ylabel("pixel row")
    axes[-1, 0].set_xlabel(f"frame ({frames} compared)")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as temporary:
        figure.savefig(temporary, format="png", dpi=100)
    plt.close(figure)
    return path


if __name__ == "__main__":
    from vqe.moved import run_moved

    run_moved("vqe.metrics.temporal", "temporal")
