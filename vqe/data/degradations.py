"""Seeded, composable degradations that turn a clean frame into a webcam-like one.

Two families, applied in this order by :class:`DegradationPipeline`:

* **Lighting** — the "before" side of the challenge's synthetic pairs, whose inputs are lit only
  by an HDRI: a white-balance colour cast (:func:`color_cast`), an uneven, smooth spatial gain
  field (:func:`light_field`, :func:`uneven_light`) and under-exposure to a mean intensity near
  50/255 (:func:`tone` then one :func:`exposure_gain` per clip; :func:`underexpose` for one
  image). Clips may also get a light flicker (:func:`flicker_gains`), and the subject may be lit
  darker than the room (:func:`subject_field`: a backlit person), both off by default.
* **Real-ESRGAN first-order degradations** — a blur with a random anisotropic generalised-Gaussian
  or plateau kernel (:func:`blur_kernel`, :func:`blur`), a random resize (:func:`resize`), colour
  or grey Gaussian noise (:func:`gaussian_noise`) or Poisson noise (:func:`poisson_noise`), JPEG
  at a random quality (:func:`jpeg`); clips may be H.264 re-encoded as a whole
  (:func:`h264_reencode`). The resize happens before noise and JPEG and the frame is resized back
  to its own size at the end, so the sensor and codec artifacts are scaled with the content.

Images are H×W×3 float32 RGB numpy arrays in [0, 1]; every function returns a new array of that
kind, clipped to [0, 1]. Functions that draw random numbers take an explicit
``np.random.Generator``; the others are deterministic given their parameters.

A pipeline first *samples* one :class:`DegradationParams` from :class:`DegradationRanges` and then
*applies* it, so one sampled set can be applied to every frame of a clip (temporally consistent
apart from the noise, which is drawn afresh per frame, and the optional flicker). Calling the
pipeline on a 3×H×W (or T×3×H×W) tensor does both, for datasets that synthesise pairs on the
fly. The parameter ranges live in ``configs/degradation/realesrgan.yaml``; :data:`SYNTHETIC_RANGES`
is the demo set's look, which its training stream draws per sample (:func:`training_degradation`).
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

import cv2
import numpy as np
import torch

from vqe.conventions import (
    bgr_uint8_to_tensor,
    rgb_uint8_to_tensor,
    tensor_to_bgr_uint8,
    tensor_to_rgb_uint8,
)
from vqe.data.person_region import Ellipse, ellipse_membership
from vqe.video import REPRODUCIBLE_X264_PARAMS, read_frames, write_video

#: The challenge's synthetic inputs have a mean intensity near this value (of 1).
CHALLENGE_DARK_MEAN = 50.0 / 255.0

#: Interpolation names accepted by :func:`resize`.
INTERPOLATIONS = {"area": cv2.INTER_AREA, "bilinear": cv2.INTER_LINEAR, "bicubic": cv2.INTER_CUBIC}

#: Blur kernel families: shape of the profile × isotropic or anisotropic covariance.
KERNEL_TYPES = (
    "iso",
    "aniso",
    "generalized_iso",
    "generalized_aniso",
    "plateau_iso",
    "plateau_aniso",
)

#: Poisson noise counts this many photons at full white (256 levels, as for 8-bit images).
POISSON_LEVELS = 256.0

Range = tuple[float, float]


# --------------------------------------------------------------------------- helpers


def _check_image(image: np.ndarray, what: str) -> None:
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3:
        shape = getattr(image, "shape", None)
        raise ValueError(f"{what}: expected an H×W×3 numpy array, got shape {shape}")
    if image.dtype != np.float32:
        raise ValueError(
            f"{what}: expected float32 RGB in [0, 1], got dtype {image.dtype}; "
            "convert with vqe.conventions (e.g. rgb_uint8_to_tensor) first"
        )


def _clip(image: np.ndarray) -> np.ndarray:
    return np.clip(image, 0.0, 1.0).astype(np.float32, copy=False)


def image_to_tensor(image: np.ndarray) -> torch.Tensor:
    """H×W×3 array → 3×H×W tensor view (layout only; the value scale is unchanged)."""
    return torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)


def tensor_to_image(frame: torch.Tensor) -> np.ndarray:
    """3×H×W tensor → H×W×3 float32 array (layout only; the value scale is unchanged)."""
    return np.ascontiguousarray(frame.detach().cpu().permute(1, 2, 0).numpy(), dtype=np.float32)


def _require_generator(rng: object, what: str) -> np.random.Generator:
    if not isinstance(rng, np.random.Generator):
        raise TypeError(
            f"{what}: rng must be a numpy.random.Generator (np.random.default_rng(seed)), "
            f"got {type(rng).__name__}"
        )
    return rng


# --------------------------------------------------------------------------- lighting


def color_cast(image: np.ndarray, gains: Sequence[float]) -> np.ndarray:
    """Multiply each RGB channel by a white-balance gain.

    ``gains`` is (red, green, blue); the pipeline keeps green at 1 and samples red and blue from
    ``red_gain``/``blue_gain`` (default 0.75–1.25 each): red > blue looks warm/tungsten, blue >
    red cold/daylight-through-window.
    """
    _check_image(image, "color_cast")
    if len(gains) != 3 or min(gains) <= 0:
        raise ValueError(f"color_cast: gains must be three positive numbers, got {tuple(gains)}")
    return _clip(image * np.asarray(gains, dtype=np.float32))


@dataclass(frozen=True)
class LightFieldParams:
    """A smooth gain field: a linear fall-off across the frame times a soft spot.

    angle: direction (radians, 0 = towards +x) in which the light *falls off*; any value.
    gradient_strength: gain lost from the bright to the dark edge, in [0, 1) (default 0.2–0.7).
    spot_center: (x, y) of the spot's centre as fractions of width and height, each in [0, 1].
    spot_radius: Gaussian radius of the spot as a fraction of the frame diagonal (0.25–0.6).
    spot_strength: gain lost far from the spot, in [0, 1) (default 0.2–0.6).
    """

    angle: float
    gradient_strength: float
    spot_center: tuple[float, float]
    spot_radius: float
    spot_strength: float


def light_field(height: int, width: int, params: LightFieldParams) -> np.ndarray:
    """H×W float32 gain field in (0, 1]: uneven foreground light as one smooth surface."""
    if not (0 <= params.gradient_strength < 1 and 0 <= params.spot_strength < 1):
        raise ValueError(f"light_field: strengths must lie in [0, 1), got {params}")
    if params.spot_radius <= 0:
        raise ValueError(f"light_field: spot_radius must be positive, got {params.spot_radius}")
    diagonal = math.hypot(height, width)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    xs = (xs + 0.5) / diagonal
    ys = (ys + 0.5) / diagonal
    # Linear ramp along the fall-off direction, normalised to [0, 1] over the frame's corners.
    along = xs * math.cos(params.angle) + ys * math.sin(params.angle)
    along = (along - along.min()) / max(float(along.max() - along.min()), 1e-6)
    gradient = 1.0 - params.gradient_strength * along
    cx = params.spot_center[0] * width / diagonal
    cy = params.spot_center[1] * height / diagonal
    spot_profile = np.exp(-((xs - cx) ** 2 + (ys - cy) ** 2) / (2.0 * params.spot_radius**2))
    spot = 1.0 - params.spot_strength * (1.0 - spot_profile)
    return (gradient * spot).astype(np.float32)


def uneven_light(image: np.ndarray, field: np.ndarray) -> np.ndarray:
    """Multiply the image by an H×W gain field (see :func:`light_field`)."""
    _check_image(image, "uneven_light")
    if field.shape != image.shape[:2]:
        raise ValueError(
            f"uneven_light: field is {field.shape}, the image is {image.shape[:2]}; "
            "build the field with light_field(height, width, ...)"
        )
    return _clip(image * field[:, :, None])


@dataclass(frozen=True)
class SubjectLightParams:
    """The subject lit darker than the room: a backlit person, a key light too weak or aimed
    past them. Inside ``region`` (a soft ellipse whose edge is ``softness`` of its radii wide)
    the light is multiplied by ``gain`` in (0, 1]; the background keeps its own."""

    region: Ellipse
    gain: float
    softness: float


def subject_field(height: int, width: int, params: SubjectLightParams) -> np.ndarray:
    """H×W float32 gain field in (0, 1]: ``gain`` on the subject, 1 on the background."""
    if not 0 < params.gain <= 1:
        raise ValueError(f"subject_field: gain must lie in (0, 1], got {params.gain}")
    inside = ellipse_membership(height, width, params.region, params.softness)
    return (1.0 - (1.0 - params.gain) * inside).astype(np.float32)


def exposure_gain(images: Sequence[np.ndarray], target_mean: float) -> float:
    """One global gain that brings the mean intensity of ``images`` (a frame or a clip) to
    ``target_mean`` in (0, 1), counting the clipping at 1 that a brightening gain causes.

    One gain for a whole clip keeps the exposure steady from frame to frame. Black images get 1.
    """
    if not 0 < target_mean < 1:
        raise ValueError(f"exposure_gain: target_mean must lie in (0, 1), got {target_mean}")
    mean = float(np.mean([image.mean() for image in images]))
    if mean < 1e-6:
        return 1.0
    gain = target_mean / mean
    for _ in range(4):  # only clipping (gain > 1) makes more than one step necessary
        current = float(np.mean([np.minimum(image * gain, 1.0).mean() for image in images]))
        if abs(current - target_mean) < 1e-4:
            break
        gain *= target_mean / current
    return gain


def tone(image: np.ndarray, gamma: float) -> np.ndarray:
    """Raise intensities to ``gamma`` (> 1 crushes the shadows, like a dark camera exposure)."""
    _check_image(image, "tone")
    if gamma <= 0:
        raise ValueError(f"tone: gamma must be positive, got {gamma}")
    return np.power(image, np.float32(gamma), dtype=np.float32)


def underexpose(
    image: np.ndarray, target_mean: float = CHALLENGE_DARK_MEAN, gamma: float = 1.0
) -> np.ndarray:
    """Darken (or brighten) one image so its mean intensity becomes ``target_mean``.

    target_mean: mean over all pixels and channels, in (0, 1); the challenge's dark synthetic
        inputs sit near 50/255 (default range 0.12–0.28, i.e. 31/255–71/255).
    gamma: tone exponent applied before the gain (default range 1.0–1.6; see :func:`tone`).

    Clips use one gain for all frames (:func:`exposure_gain` over the clip), as the pipeline does.
    """
    toned = tone(image, gamma)
    return _clip(toned * np.float32(exposure_gain([toned], target_mean)))


def flicker_gains(
    num_frames: int, fps: float, amplitude: float, frequency: float, phase: float = 0.0
) -> np.ndarray:
    """Per-frame exposure gains of a light flicker: ``1 + amplitude · sin(2π·frequency·t + phase)``.

    amplitude: relative gain swing (webcam auto-exposure hunting: 0.02–0.1).
    frequency: oscillations per second (0.3–3 Hz). Multiply frame t by gains[t].
    """
    if num_frames < 1 or fps <= 0:
        raise ValueError(f"flicker_gains: need num_frames ≥ 1 and fps > 0, got {num_frames}, {fps}")
    if not 0 <= amplitude < 1:
        raise ValueError(f"flicker_gains: amplitude must lie in [0, 1), got {amplitude}")
    times = np.arange(num_frames, dtype=np.float64) / fps
    return (1.0 + amplitude * np.sin(2 * math.pi * frequency * times + phase)).astype(np.float32)


# --------------------------------------------------------------------------- blur


def blur_kernel(
    size: int,
    sigma_x: float,
    sigma_y: float,
    angle: float = 0.0,
    beta: float = 1.0,
    shape: str = "generalized",
) -> np.ndarray:
    """A size×size anisotropic blur kernel that sums to 1.

    With q = xᵀΣ⁻¹x for the covariance of standard deviations ``sigma_x``, ``sigma_y`` (pixels,
    default range 0.2–3) rotated by ``angle`` (radians, −π–π):

    * ``shape="generalized"``: k ∝ exp(−q^β / 2); β = 1 is the plain Gaussian, β < 1 has heavier
      tails, β > 1 a flatter top (default range 0.5–4);
    * ``shape="plateau"``: k ∝ 1 / (1 + q^β) (default β range 1–2).

    ``size`` must be odd and ≥ 3 (the pipeline samples 7–21).
    """
    if size < 3 or size % 2 == 0:
        raise ValueError(f"blur_kernel: size must be odd and at least 3, got {size}")
    if sigma_x <= 0 or sigma_y <= 0 or beta <= 0:
        raise ValueError(
            "blur_kernel: sigma_x, sigma_y and beta must be positive, "
            f"got {sigma_x}, {sigma_y}, {beta}"
        )
    half = size // 2
    ys, xs = np.mgrid[-half : half + 1, -half : half + 1].astype(np.float64)
    cos, sin = math.cos(angle), math.sin(angle)
    along = cos * xs + sin * ys
    across = -sin * xs + cos * ys
    quadratic = (along / sigma_x) ** 2 + (across / sigma_y) ** 2
    if shape == "generalized":
        kernel = np.exp(-0.5 * quadratic**beta)
    elif shape == "plateau":
        kernel = 1.0 / (1.0 + quadratic**beta)
    else:
        raise ValueError(f"blur_kernel: shape must be 'generalized' or 'plateau', got {shape!r}")
    return (kernel / kernel.sum()).astype(np.float32)


def blur(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Convolve each channel with ``kernel`` (reflected borders)."""
    _check_image(image, "blur")
    if kernel.ndim != 2:
        raise ValueError(f"blur: kernel must be 2-D, got shape {kernel.shape}")
    return _clip(cv2.filter2D(image, -1, kernel, borderType=cv2.BORDER_REFLECT_101))


# --------------------------------------------------------------------------- resize


def resize(
    image: np.ndarray, height: int, width: int, interpolation: str = "bicubic"
) -> np.ndarray:
    """Resize to height×width with ``interpolation`` in ``INTERPOLATIONS`` (area/bilinear/bicubic).

    The pipeline scales by a factor in [1, 1.5] (up) or [0.15, 1] (down) with weights
    0.2/0.7/0.1 for up/down/keep, degrades at that size and resizes back, each way with a random
    interpolation.
    """
    _check_image(image, "resize")
    if interpolation not in INTERPOLATIONS:
        raise ValueError(
            f"resize: interpolation must be one of {sorted(INTERPOLATIONS)}, got {interpolation!r}"
        )
    if height < 1 or width < 1:
        raise ValueError(f"resize: target size must be positive, got {width}×{height}")
    resized = cv2.resize(image, (width, height), interpolation=INTERPOLATIONS[interpolation])
    return _clip(resized)


# --------------------------------------------------------------------------- noise


def gaussian_noise(
    image: np.ndarray, sigma: float, gray: bool, rng: np.random.Generator
) -> np.ndarray:
    """Add zero-mean Gaussian noise of standard deviation ``sigma`` in 0–255 units (1–30).

    ``gray=True`` adds the same noise to all three channels (luma noise); otherwise each channel
    gets its own (colour noise).
    """
    _check_image(image, "gaussian_noise")
    if sigma < 0:
        raise ValueError(f"gaussian_noise: sigma must be non-negative, got {sigma}")
    channels = 1 if gray else 3
    noise = rng.standard_normal((*image.shape[:2], channels), dtype=np.float32)
    return _clip(image + noise * np.float32(sigma / 255.0))


def poisson_noise(
    image: np.ndarray, scale: float, gray: bool, rng: np.random.Generator
) -> np.ndarray:
    """Add shot noise: photon counts ~ Poisson(v · 256), the deviation scaled by ``scale`` (0.05–3).

    With ``gray=True`` the noise is drawn once on the luma (channel mean) and added to every
    channel; otherwise per channel.
    """
    _check_image(image, "poisson_noise")
    if scale < 0:
        raise ValueError(f"poisson_noise: scale must be non-negative, got {scale}")
    signal = image.mean(axis=2, keepdims=True) if gray else image
    counts = rng.poisson(signal.astype(np.float64) * POISSON_LEVELS)
    noise = (counts / POISSON_LEVELS - signal).astype(np.float32)
    return _clip(image + noise * np.float32(scale))


# --------------------------------------------------------------------------- codecs


def jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    """Round-trip through JPEG at ``quality`` (0–100; default range 30–95) with OpenCV."""
    _check_image(image, "jpeg")
    if not 0 <= quality <= 100:
        raise ValueError(f"jpeg: quality must lie in 0–100, got {quality}")
    bgr = tensor_to_bgr_uint8(image_to_tensor(image))
    ok, encoded = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise RuntimeError(
            f"jpeg: OpenCV could not encode a {bgr.shape} image at quality {quality}"
        )
    decoded = cv2.imdecode(encoded, cv2.IMREAD_COLOR)
    return tensor_to_image(bgr_uint8_to_tensor(decoded))


def write_reproducible_video(
    path: str | Path, frames: Sequence[np.ndarray], fps: int, crf: int
) -> int:
    """Encode H×W×3 RGB uint8 frames like :func:`vqe.video.write_video` (H.264, yuv420p), but
    byte-identical for identical frames. The ``veryfast`` preset is what real-time (webcam,
    conferencing) encoders use."""
    return write_video(
        path, frames, fps=fps, crf=crf, preset="veryfast", x264_params=REPRODUCIBLE_X264_PARAMS
    )


def h264_reencode(frames: Sequence[np.ndarray], crf: int, fps: int = 30) -> list[np.ndarray]:
    """Encode a clip with libx264 (yuv420p) at ``crf`` (0–51; webcam-like 23–38) and decode it.

    Frames must share one size with even sides. A temporary mp4 is written through
    :mod:`vqe.video`; the frames come back in order, as float32 RGB.
    """
    if not frames:
        raise ValueError("h264_reencode: the clip holds no frames")
    if not 0 <= crf <= 51:
        raise ValueError(f"h264_reencode: crf must lie in 0–51, got {crf}")
    for index, image in enumerate(frames):
        _check_image(image, f"h264_reencode frame {index}")
    encoded = [tensor_to_rgb_uint8(image_to_tensor(image)) for image in frames]
    with tempfile.TemporaryDirectory(prefix="vqe_h264_") as folder:
        path = Path(folder) / "clip.mp4"
        write_reproducible_video(path, encoded, fps=fps, crf=int(crf))
        decoded = [tensor_to_image(rgb_uint8_to_tensor(image)) for image in read_frames(path)]
    if len(decoded) != len(frames):
        raise RuntimeError(f"h264_reencode: encoded {len(frames)} frames, decoded {len(decoded)}")
    return decoded


# --------------------------------------------------------------------------- pipeline


def _pair(value: object, name: str) -> Range:
    try:
        low, high = (float(v) for v in value)  # type: ignore[union-attr]
    except (TypeError, ValueError) as error:
        raise ValueError(
            f"DegradationRanges.{name}: expected [low, high], got {value!r}"
        ) from error
    if low > high:
        raise ValueError(f"DegradationRanges.{name}: low {low} exceeds high {high}")
    return low, high


@dataclass
class DegradationRanges:
    """Probabilities and [low, high] ranges the pipeline samples from (uniformly unless noted).

    The defaults are Real-ESRGAN's first-order settings plus the challenge's lighting; they are
    mirrored by ``configs/degradation/realesrgan.yaml``. Set a ``*_prob`` to 0 to switch a step off.
    """

    # Lighting (the challenge's HDRI-only "before" side).
    color_cast_prob: float = 0.5
    red_gain: Range = (0.75, 1.25)
    blue_gain: Range = (0.75, 1.25)
    uneven_light_prob: float = 0.5
    gradient_strength: Range = (0.2, 0.7)
    spot_radius: Range = (0.25, 0.6)
    spot_strength: Range = (0.2, 0.6)
    # A subject darker than its background (see SubjectLightParams); off unless asked for.
    subject_light_prob: float = 0.0
    subject_gain: Range = (0.3, 0.6)
    subject_radius: Range = (0.15, 0.35)  # half-width as a fraction of the frame width
    subject_aspect: Range = (1.2, 2.0)  # half-height / half-width, in frame fractions × 16/9
    subject_softness: Range = (0.3, 0.8)
    underexpose_prob: float = 0.5
    target_mean: Range = (0.12, 0.28)  # 31/255–71/255, centred near 50/255
    gamma: Range = (1.0, 1.6)
    # Blur: kernel family weights (normalised), odd sizes, sigmas and shape exponents.
    blur_prob: float = 1.0
    kernel_weights: dict[str, float] = field(
        default_factory=lambda: {
            "iso": 0.45,
            "aniso": 0.25,
            "generalized_iso": 0.12,
            "generalized_aniso": 0.03,
            "plateau_iso": 0.12,
            "plateau_aniso": 0.03,
        }
    )
    kernel_size: Range = (7, 21)
    blur_sigma: Range = (0.2, 3.0)
    generalized_beta: Range = (0.5, 4.0)
    plateau_beta: Range = (1.0, 2.0)
    # Resize: probabilities of (up, down, keep); scale drawn in [1, high] or [low, 1].
    resize_probs: tuple[float, float, float] = (0.2, 0.7, 0.1)
    resize_scale: Range = (0.15, 1.5)
    # Noise: Gaussian with gaussian_noise_prob, else Poisson; grey (luma) with gray_noise_prob.
    noise_prob: float = 1.0
    gaussian_noise_prob: float = 0.5
    noise_sigma: Range = (1.0, 30.0)
    poisson_scale: Range = (0.05, 3.0)
    gray_noise_prob: float = 0.4
    # Codecs: JPEG per frame, H.264 over the whole clip.
    jpeg_prob: float = 1.0
    jpeg_quality: Range = (30, 95)
    h264_prob: float = 0.5
    h264_crf: Range = (23, 38)
    # Light flicker over a clip (deliberately not temporally consistent; off by default).
    flicker_prob: float = 0.0
    flicker_amplitude: Range = (0.02, 0.08)
    flicker_frequency: Range = (0.3, 2.0)

    def __post_init__(self) -> None:
        # Hydra hands lists (ListConfig/DictConfig) over; store plain tuples/dicts and validate.
        for spec in fields(self):
            value = getattr(self, spec.name)
            if spec.name.endswith("_prob"):
                if not 0.0 <= float(value) <= 1.0:
                    raise ValueError(
                        f"DegradationRanges.{spec.name}: must lie in [0, 1], got {value}"
                    )
                setattr(self, spec.name, float(value))
            elif spec.name == "kernel_weights":
                weights = {str(k): float(v) for k, v in dict(value).items()}
                unknown = set(weights) - set(KERNEL_TYPES)
                if unknown or sum(weights.values()) <= 0 or min(weights.values()) < 0:
                    raise ValueError(
                        f"DegradationRanges.kernel_weights: keys must be among {KERNEL_TYPES} with "
                        f"non-negative weights of positive sum, got {weights}"
                    )
                self.kernel_weights = weights
            elif spec.name == "resize_probs":
                probs = tuple(float(v) for v in value)
                if len(probs) != 3 or min(probs) < 0 or sum(probs) <= 0:
                    raise ValueError(
                        f"DegradationRanges.resize_probs: expected three non-negative (up, down, "
                        f"keep) weights, got {value!r}"
                    )
                self.resize_probs = probs  # type: ignore[assignment]
            else:
                setattr(self, spec.name, _pair(value, spec.name))
        low_size, high_size = self.kernel_size
        if low_size < 3 or high_size < 3:
            raise ValueError(
                f"DegradationRanges.kernel_size: sizes must be ≥ 3, got {self.kernel_size}"
            )
        if not (0 < self.target_mean[0] and self.target_mean[1] < 1):
            raise ValueError(
                f"DegradationRanges.target_mean: must lie in (0, 1), got {self.target_mean}"
            )
        if self.resize_scale[0] <= 0 or self.resize_scale[0] > 1 or self.resize_scale[1] < 1:
            raise ValueError(
                "DegradationRanges.resize_scale: expected low in (0, 1] and high ≥ 1, "
                f"got {self.resize_scale}"
            )


@dataclass(frozen=True, eq=False)
class DegradationParams:
    """One sampled set of degradations; ``None`` means the step is skipped."""

    color_gains: tuple[float, float, float] | None = None
    light: LightFieldParams | None = None
    exposure: tuple[float, float] | None = None  # (target_mean, gamma)
    kernel: np.ndarray | None = field(default=None, repr=False)
    resize: tuple[float, str, str] | None = None  # (scale, interpolation there, interpolation back)
    noise: tuple[str, float, bool] | None = (
        None  # ("gaussian" sigma | "poisson" scale, level, gray)
    )
    jpeg_quality: int | None = None
    h264_crf: int | None = None
    flicker: tuple[float, float, float] | None = None  # (amplitude, frequency in Hz, phase)
    subject: SubjectLightParams | None = None  # a subject darker than the room


def describe_params(params: DegradationParams) -> dict[str, object]:
    """A JSON-ready summary of ``params``: rounded numbers, the blur kernel as its size."""

    def rounded(value: object) -> object:
        if isinstance(value, float):
            return round(value, 4)
        if isinstance(value, tuple):
            return [rounded(item) for item in value]
        return value

    summary: dict[str, object] = {}
    for spec in fields(params):
        value = getattr(params, spec.name)
        if value is None:
            continue
        if spec.name == "kernel":
            summary["blur_kernel_size"] = int(value.shape[0])
        elif isinstance(value, LightFieldParams):
            summary[spec.name] = {
                key.name: rounded(getattr(value, key.name)) for key in fields(value)
            }
        elif isinstance(value, SubjectLightParams):
            summary[spec.name] = {
                "center": rounded(value.region.center),
                "radii": rounded(value.region.radii),
                "gain": rounded(value.gain),
                "softness": rounded(value.softness),
            }
        else:
            summary[spec.name] = rounded(value)
    return summary


def _uniform(rng: np.random.Generator, bounds: Range) -> float:
    return float(rng.uniform(bounds[0], bounds[1]))


def _integer(rng: np.random.Generator, bounds: Range) -> int:
    return int(rng.integers(round(bounds[0]), round(bounds[1]), endpoint=True))


def _sample_kernel(ranges: DegradationRanges, rng: np.random.Generator) -> np.ndarray:
    names = list(ranges.kernel_weights)
    weights = np.array([ranges.kernel_weights[name] for name in names])
    kind = names[int(rng.choice(len(names), p=weights / weights.sum()))]
    low, high = round(ranges.kernel_size[0]), round(ranges.kernel_size[1])
    sizes = [size for size in range(low, high + 1) if size % 2 == 1]
    if not sizes:
        raise ValueError(f"DegradationRanges.kernel_size {ranges.kernel_size} holds no odd size")
    size = int(rng.choice(sizes))
    sigma_x = _uniform(rng, ranges.blur_sigma)
    if kind.endswith("aniso"):
        sigma_y = _uniform(rng, ranges.blur_sigma)
        angle = _uniform(rng, (-math.pi, math.pi))
    else:
        sigma_y, angle = sigma_x, 0.0
    if kind.startswith("plateau"):
        return blur_kernel(
            size, sigma_x, sigma_y, angle, _uniform(rng, ranges.plateau_beta), "plateau"
        )
    beta = _uniform(rng, ranges.generalized_beta) if kind.startswith("generalized") else 1.0
    return blur_kernel(size, sigma_x, sigma_y, angle, beta, "generalized")


def sample_params(ranges: DegradationRanges, rng: np.random.Generator) -> DegradationParams:
    """Draw one :class:`DegradationParams` from ``ranges``.

    Every step draws its numbers whether or not it is switched on, so changing one probability
    does not reshuffle the other steps' values for a seed.
    """
    rng = _require_generator(rng, "sample_params")
    switches = (
        "color_cast",
        "uneven_light",
        "underexpose",
        "blur",
        "noise",
        "jpeg",
        "h264",
        "flicker",
    )
    on = {name: bool(rng.random() < getattr(ranges, f"{name}_prob")) for name in switches}
    gains = (_uniform(rng, ranges.red_gain), 1.0, _uniform(rng, ranges.blue_gain))
    light = LightFieldParams(
        angle=_uniform(rng, (-math.pi, math.pi)),
        gradient_strength=_uniform(rng, ranges.gradient_strength),
        spot_center=(_uniform(rng, (0.2, 0.8)), _uniform(rng, (0.2, 0.8))),
        spot_radius=_uniform(rng, ranges.spot_radius),
        spot_strength=_uniform(rng, ranges.spot_strength),
    )
    exposure = (_uniform(rng, ranges.target_mean), _uniform(rng, ranges.gamma))
    kernel = _sample_kernel(ranges, rng)

    resize_weights = np.asarray(ranges.resize_probs)
    direction = int(rng.choice(3, p=resize_weights / resize_weights.sum()))  # up, down, keep
    up, down = (
        _uniform(rng, (1.0, ranges.resize_scale[1])),
        _uniform(rng, (ranges.resize_scale[0], 1.0)),
    )
    scale = (up, down, 1.0)[direction]
    modes = sorted(INTERPOLATIONS)
    there, back = (modes[int(i)] for i in rng.integers(len(modes), size=2))

    gaussian = bool(rng.random() < ranges.gaussian_noise_prob)
    gray = bool(rng.random() < ranges.gray_noise_prob)
    sigma, poisson = _uniform(rng, ranges.noise_sigma), _uniform(rng, ranges.poisson_scale)
    noise = ("gaussian", sigma, gray) if gaussian else ("poisson", poisson, gray)
    quality = _integer(rng, ranges.jpeg_quality)
    crf = _integer(rng, ranges.h264_crf)
    flicker = (
        _uniform(rng, ranges.flicker_amplitude),
        _uniform(rng, ranges.flicker_frequency),
        _uniform(rng, (0.0, 2 * math.pi)),
    )

    # Drawn after everything else, so adding this step left every earlier draw of a seed as it was.
    subject_on = bool(rng.random() < ranges.subject_light_prob)
    radius_x = _uniform(rng, ranges.subject_radius)
    subject = SubjectLightParams(
        region=Ellipse(
            (_uniform(rng, (0.3, 0.7)), _uniform(rng, (0.45, 0.75))),
            (radius_x, radius_x * _uniform(rng, ranges.subject_aspect) * 16 / 9),
        ),
        gain=_uniform(rng, ranges.subject_gain),
        softness=_uniform(rng, ranges.subject_softness),
    )

    return DegradationParams(
        color_gains=gains if on["color_cast"] else None,
        light=light if on["uneven_light"] else None,
        exposure=exposure if on["underexpose"] else None,
        kernel=kernel if on["blur"] else None,
        resize=(scale, there, back) if direction != 2 else None,
        noise=noise if on["noise"] else None,
        jpeg_quality=quality if on["jpeg"] else None,
        h264_crf=crf if on["h264"] else None,
        flicker=flicker if on["flicker"] else None,
        subject=subject if subject_on else None,
    )


def _relight(image: np.ndarray, params: DegradationParams) -> np.ndarray:
    """Colour cast, uneven light and tone curve; the exposure gain comes later, per clip."""
    out = image
    if params.color_gains is not None:
        out = color_cast(out, params.color_gains)
    if params.light is not None:
        out = uneven_light(out, light_field(*out.shape[:2], params.light))
    if params.subject is not None:
        out = uneven_light(out, subject_field(*out.shape[:2], params.subject))
    if params.exposure is not None:
        out = tone(out, params.exposure[1])
    return out


def _sensor_and_codec(
    image: np.ndarray, params: DegradationParams, rng: np.random.Generator
) -> np.ndarray:
    """Blur, resize there, noise, JPEG, resize back (Real-ESRGAN's first order)."""
    height, width = image.shape[:2]
    out = image
    if params.kernel is not None:
        out = blur(out, params.kernel)
    if params.resize is not None:
        scale, there, _ = params.resize
        out = resize(out, max(2, round(height * scale)), max(2, round(width * scale)), there)
    if params.noise is not None:
        kind, level, gray = params.noise
        noisy = gaussian_noise if kind == "gaussian" else poisson_noise
        out = noisy(out, level, gray, rng)
    if params.jpeg_quality is not None:
        out = jpeg(out, params.jpeg_quality)
    if params.resize is not None:
        out = resize(out, height, width, params.resize[2])
    return out


def apply_params(
    frames: Sequence[np.ndarray],
    params: DegradationParams,
    rng: np.random.Generator,
    fps: float = 30.0,
) -> list[np.ndarray]:
    """Degrade a clip (one frame is a clip of one) with one parameter set.

    Every frame gets the same colour cast, light field, tone curve, blur kernel, resize and JPEG
    quality, and one exposure gain computed over the whole clip; ``rng`` draws only the noise,
    afresh for each frame. Flicker (if sampled) varies that gain over time at ``fps``. H.264 (if
    sampled) re-encodes the clip as a whole, and is skipped when a side is odd (yuv420p cannot
    hold it).
    """
    rng = _require_generator(rng, "apply_params")
    if not frames:
        raise ValueError("apply_params: the clip holds no frames")
    for index, image in enumerate(frames):
        _check_image(image, f"apply_params frame {index}")
    lit = [_relight(image, params) for image in frames]
    gains = np.ones(len(lit), dtype=np.float32)
    if params.exposure is not None:
        gains *= np.float32(exposure_gain(lit, params.exposure[0]))
    if params.flicker is not None:
        gains *= flicker_gains(len(lit), fps, *params.flicker)
    exposed = [_clip(image * gain) for image, gain in zip(lit, gains, strict=True)]
    degraded = [_sensor_and_codec(image, params, rng) for image in exposed]
    height, width = degraded[0].shape[:2]
    if params.h264_crf is not None and height % 2 == 0 and width % 2 == 0:
        degraded = h264_reencode(degraded, params.h264_crf, fps=round(fps))
    return [
        image if image is not original else image.copy()
        for image, original in zip(degraded, frames, strict=True)
    ]


class DegradationPipeline:
    """Samples degradations from :class:`DegradationRanges` and applies them to frames or clips.

    ``pipeline(frames, rng)`` takes a 3×H×W frame or a T×3×H×W clip (RGB float in [0, 1]) and
    returns a degraded tensor of the same shape, dtype and device; one parameter set is sampled
    per call and shared by all frames (see :func:`apply_params`).
    """

    def __init__(self, ranges: DegradationRanges | None = None) -> None:
        self.ranges = DegradationRanges() if ranges is None else ranges

    def sample(self, rng: np.random.Generator) -> DegradationParams:
        return sample_params(self.ranges, rng)

    def apply_clip(
        self,
        frames: Sequence[np.ndarray],
        rng: np.random.Generator,
        params: DegradationParams | None = None,
        fps: float = 30.0,
    ) -> list[np.ndarray]:
        """Degrade H×W×3 float32 frames with one parameter set (drawn from ``rng`` unless given)."""
        params = self.sample(rng) if params is None else params
        return apply_params(frames, params, rng, fps)

    def __call__(self, frames: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        if (
            not isinstance(frames, torch.Tensor)
            or frames.ndim not in (3, 4)
            or frames.shape[-3] != 3
        ):
            shape = (
                tuple(frames.shape) if isinstance(frames, torch.Tensor) else type(frames).__name__
            )
            raise ValueError(
                f"DegradationPipeline: expected a 3×H×W or T×3×H×W tensor, got {shape}"
            )
        clip = frames.unsqueeze(0) if frames.ndim == 3 else frames
        degraded = self.apply_clip([tensor_to_image(frame.float()) for frame in clip], rng)
        out = torch.stack([image_to_tensor(image) for image in degraded])
        out = out.to(device=frames.device, dtype=frames.dtype)
        return out[0] if frames.ndim == 3 else out

    def __repr__(self) -> str:
        return f"DegradationPipeline({self.ranges!r})"


# --------------------------------------------------------------------------- the demo set's look
# Here rather than with the demo set's writer (vqe.dataprep.demo): training draws it at run time.

#: HDRI-only look of the demo's synthetic inputs, Real-ESRGAN ranges scaled to 320×180 frames.
SYNTHETIC_RANGES = DegradationRanges(
    color_cast_prob=1.0,
    red_gain=(0.8, 1.2),
    blue_gain=(0.8, 1.2),
    uneven_light_prob=1.0,
    underexpose_prob=1.0,
    target_mean=(0.16, 0.24),
    gamma=(1.0, 1.4),
    kernel_size=(7, 13),
    blur_sigma=(0.2, 1.5),
    resize_probs=(0.2, 0.6, 0.2),
    resize_scale=(0.5, 1.5),
    noise_sigma=(1.0, 12.0),
    poisson_scale=(0.05, 1.0),
    jpeg_quality=(50, 95),
    h264_prob=0.0,
    flicker_prob=1.0,
    flicker_amplitude=(0.03, 0.08),
    flicker_frequency=(2.0, 5.0),  # at least half a cycle within the short demo clips
)


def training_degradation(
    h264_prob: float = 0.0,
    subject_light_prob: float = 0.0,
    cast_gain: Sequence[float] = SYNTHETIC_RANGES.red_gain,
) -> DegradationPipeline:
    """The demo's synthetic clips' degradation for single frames: what the demo's training
    stream (:class:`vqe.data.photos.CleanPhotoPairs`) applies per sample. Flicker needs a clip,
    so it is off; everything else is :data:`SYNTHETIC_RANGES`, plus an H.264 re-encode of the
    frame with probability ``h264_prob`` (CRF from :class:`DegradationRanges`' default range)
    and, with probability ``subject_light_prob``, a random soft ellipse lit darker than the rest
    (a backlit subject: the training photos show no people, so any region may stand for one).
    ``cast_gain`` is the [low, high] range of the red and of the blue gain of the colour cast
    (the clips' own by default); a wider range makes a cast stand out from a scene's colours."""
    try:
        low, high = (float(v) for v in cast_gain)
        valid = 0.0 < low <= high
    except (TypeError, ValueError):
        valid = False
    if not valid:
        raise ValueError(
            f"training_degradation: cast_gain must be [low, high] with 0 < low <= high, "
            f"got {cast_gain!r}"
        )
    return DegradationPipeline(
        replace(
            SYNTHETIC_RANGES,
            flicker_prob=0.0,
            h264_prob=h264_prob,
            subject_light_prob=subject_light_prob,
            red_gain=(low, high),
            blue_gain=(low, high),
        )
    )
