"""Test clips for :mod:`vqe.benchmarks.quality`: clean camera moves over the TEST photographs,
degraded like the challenge's synthetic sources, and the labelled comparison strip.

A clip is a slow pan and zoom (:func:`vqe.data.demo.pan_zoom_clip`: the crop drifts by up to 4 %
of the photo and zooms by up to 8 % over the clip — a little camera motion, so flicker and
warping error see moving content) across one of :data:`vqe.data.photos.TEST_PHOTOS`, which the
training pool never contains. The clean clip is the target. The input is that clip with one
sampled set of :mod:`vqe.data.degradations` applied to every frame (:data:`TEST_RANGES`): a
colour cast, an uneven light field, a dim exposure (mean 0.16–0.24, near the challenge's 50/255)
with a slow light flicker over time (3–8 % at 0.5–1.5 Hz), then blur, noise and JPEG, and last
the H.264 encode of the stored mp4 itself (CRF 28–34, webcam-like) — so what the enhancers
decode is exactly the degraded video, as in a submission.

Everything is drawn from ``np.random.default_rng([seed, clip])``: the same seed gives the same
clips on every run.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from vqe.conventions import rgb_uint8_to_tensor, tensor_to_rgb_uint8
from vqe.data.degradations import (
    DegradationRanges,
    apply_params,
    describe_params,
    image_to_tensor,
    sample_params,
    tensor_to_image,
    write_reproducible_video,
)
from vqe.data.demo import SYNTHETIC_RANGES, pan_zoom_clip
from vqe.data.photos import TEST_PHOTOS, load_photo
from vqe.video import OFFICIAL_FPS

#: The test degradations: the demo's synthetic (HDRI-only look, Real-ESRGAN ranges scaled to
#: small frames) with every lighting step on, a *slow* flicker (a 30-frame clip holds ½–1½
#: cycles) and H.264 on (applied as the mp4's own encode, see :func:`make_clip`).
TEST_RANGES = dataclasses.replace(
    SYNTHETIC_RANGES,
    color_cast_prob=1.0,
    uneven_light_prob=1.0,
    underexpose_prob=1.0,
    blur_prob=1.0,
    noise_prob=1.0,
    jpeg_prob=1.0,
    flicker_prob=1.0,
    flicker_amplitude=(0.03, 0.08),
    flicker_frequency=(0.5, 1.5),
    h264_prob=1.0,
    h264_crf=(28, 34),
)


@dataclass(frozen=True)
class TestClip:
    """One degraded test clip on disk and its clean target frames in memory."""

    name: str  # file stem, e.g. clip_01_astronaut
    photo: str
    input_path: Path  # the degraded H.264 mp4 the enhancers read
    target: list[np.ndarray]  # clean H×W×3 RGB uint8 frames
    degradations: dict[str, object]  # describe_params of what was applied


def to_uint8(image: np.ndarray) -> np.ndarray:
    """H×W×3 float32 [0, 1] → H×W×3 RGB uint8 (the conventions' rounding)."""
    return tensor_to_rgb_uint8(image_to_tensor(image))


def photo_float(name: str) -> np.ndarray:
    """A pool photograph as H×W×3 float32 RGB in [0, 1]."""
    return tensor_to_image(rgb_uint8_to_tensor(load_photo(name)))


def make_clip(
    folder: Path,
    index: int,
    photo: str,
    num_frames: int,
    width: int,
    height: int,
    seed: int,
    ranges: DegradationRanges = TEST_RANGES,
) -> TestClip:
    """Write clip ``index`` (a pan over ``photo``) as ``folder/<name>.mp4``; return it."""
    if width % 2 or height % 2:
        raise ValueError(f"clip size {width}×{height}: yuv420p needs even sides")
    if num_frames < 2:
        raise ValueError(
            f"a test clip needs at least 2 frames (temporal metrics), got {num_frames}"
        )
    rng = np.random.default_rng([seed, index])
    clean = pan_zoom_clip(photo_float(photo), num_frames, width, height, rng)
    params = sample_params(ranges, rng)
    crf = params.h264_crf
    # The mp4's own encode is the H.264 step (as for the demo's webcam clips): encoding a
    # re-encoded clip again would compress twice.
    degraded = apply_params(
        clean, dataclasses.replace(params, h264_crf=None), rng, fps=OFFICIAL_FPS
    )
    name = f"clip_{index + 1:02d}_{photo}"
    path = folder / f"{name}.mp4"
    frames = [to_uint8(image) for image in degraded]
    write_reproducible_video(path, frames, fps=OFFICIAL_FPS, crf=crf if crf is not None else 18)
    return TestClip(
        name, photo, path, [to_uint8(image) for image in clean], describe_params(params)
    )


def make_clips(
    folder: Path,
    count: int,
    num_frames: int,
    width: int,
    height: int,
    seed: int,
    photos: Sequence[str] = TEST_PHOTOS,
) -> list[TestClip]:
    """``count`` clips cycling over ``photos`` (default: the TEST photographs)."""
    if count < 1:
        raise ValueError(f"need at least one test clip, got {count}")
    if not photos:
        raise ValueError("no test photographs to make clips from")
    folder.mkdir(parents=True, exist_ok=True)
    return [
        make_clip(folder, index, photos[index % len(photos)], num_frames, width, height, seed)
        for index in range(count)
    ]


# --------------------------------------------------------------------------- the strip

_LABEL_HEIGHT = 22


def _labelled(image: np.ndarray, label: str) -> np.ndarray:
    """``image`` under a white band holding ``label`` in black."""
    band = np.full((_LABEL_HEIGHT, image.shape[1], 3), 255, dtype=np.uint8)
    scale = 0.45 if image.shape[1] >= 200 else 0.35
    cv2.putText(band, label, (4, 15), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 1, cv2.LINE_AA)
    return np.concatenate([band, image], axis=0)


def comparison_strip(
    rows: Sequence[tuple[str, Sequence[tuple[str, np.ndarray]]]], gap: int = 4
) -> np.ndarray:
    """One row per clip: its (label, frame) pairs left to right, each under its label, the clip
    name in the first label. All frames must share one size."""
    if not rows:
        raise ValueError("comparison_strip: no rows")
    lines = []
    for clip_name, panels in rows:
        parts = []
        for number, (label, image) in enumerate(panels):
            text = f"{clip_name}: {label}" if number == 0 else label
            parts.append(_labelled(image, text))
            parts.append(np.full((parts[-1].shape[0], gap, 3), 255, dtype=np.uint8))
        lines.append(np.concatenate(parts[:-1], axis=1))
        lines.append(np.full((gap, lines[-1].shape[1], 3), 255, dtype=np.uint8))
    return np.concatenate(lines[:-1], axis=0)


__all__ = [
    "TEST_RANGES",
    "TestClip",
    "comparison_strip",
    "make_clip",
    "make_clips",
    "photo_float",
    "to_uint8",
]
