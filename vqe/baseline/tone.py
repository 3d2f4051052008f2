"""A global tone and colour curve per frame, re-estimated sporadically and smoothed over time.

In the spirit of the production baseline (a global colour mapping updated now and then), each
frame is mapped channel by channel through

    y_c = clip((x_c · gain_c − black) / (white − black), 0, 1) ** gamma      (x, y in [0, 1])

- ``gain_c``: grey-world white balance — the channel means of the mid-tone pixels are pulled
  towards their common mean (partially, ``white_balance_strength``; portraits are not grey);
- ``black`` / ``white``: auto-levels at low / high luma percentiles, the stretch capped;
- ``gamma``: exposure — brings the mean luma after levels towards ``target_mean`` (partially).

The six numbers are estimated on a thumbnail every ``interval`` frames and at scene cuts (a jump
of the luma histogram). Between estimates they glide towards the latest estimate with time
constant ``time_constant`` frames, so the curve never jumps within a scene — the flicker a
sporadically updated mapping would cause; at a cut they switch at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from vqe.conventions import LUMA_WEIGHTS, UINT8_MAX, WELL_EXPOSED_LUMA
from vqe.video import OFFICIAL_FPS, VideoWriter, audio_to_keep, output_pix_fmt, probe, read_frames

_LEVELS = np.arange(256, dtype=np.float32) / UINT8_MAX  # LUT input values in [0, 1]
_HISTOGRAM_BINS = 32


@dataclass(frozen=True)
class ToneSettings:
    interval: int = 8  # frames between estimates (within a scene)
    time_constant: float = 15.0  # frames for the curve to move 63 % towards a new estimate
    scene_cut: float = 0.35  # luma-histogram total-variation distance that marks a cut
    white_balance_strength: float = 0.6  # 0 = keep colours, 1 = full grey world
    max_white_balance_gain: float = 1.5
    black_percentile: float = 0.5
    white_percentile: float = 99.5
    max_black: float = 0.1  # never lift the black point above this
    max_stretch: float = 3.0  # cap on 1 / (white − black)
    target_mean: float = WELL_EXPOSED_LUMA  # mean luma the exposure correction aims at
    exposure_strength: float = 0.7  # fraction (in log gamma) of the full correction
    gamma_range: tuple[float, float] = (0.45, 1.6)
    thumbnail_width: int = 160

    def __post_init__(self) -> None:
        if self.interval < 1 or self.time_constant < 0 or self.thumbnail_width < 8:
            raise ValueError(
                f"tone settings need interval ≥ 1, time_constant ≥ 0 and thumbnail_width ≥ 8; got "
                f"interval={self.interval}, time_constant={self.time_constant}, "
                f"thumbnail_width={self.thumbnail_width}"
            )


@dataclass(frozen=True)
class ToneCurve:
    """The six numbers of one frame's curve."""

    gains: np.ndarray  # (3,) RGB white-balance gains
    black: float
    white: float
    gamma: float

    def as_vector(self) -> np.ndarray:
        return np.array([*self.gains, self.black, self.white, self.gamma], dtype=np.float64)

    @classmethod
    def from_vector(cls, vector: np.ndarray) -> ToneCurve:
        return cls(vector[:3].copy(), float(vector[3]), float(vector[4]), float(vector[5]))

    def lut(self) -> np.ndarray:
        """A 1×256×3 uint8 table for :func:`cv2.LUT` (channel order of the frames: RGB)."""
        scaled = _LEVELS[:, None] * self.gains[None, :].astype(np.float32)
        levelled = np.clip((scaled - self.black) / (self.white - self.black), 0.0, 1.0)
        curve = np.power(levelled, self.gamma) * UINT8_MAX
        return np.round(curve).astype(np.uint8)[None]


def thumbnail(frame: np.ndarray, width: int) -> np.ndarray:
    """A small float copy in [0, 1] for estimation (area interpolation averages the noise)."""
    height = max(1, round(frame.shape[0] * width / frame.shape[1]))
    if frame.shape[1] > width:
        frame = cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA)
    return frame.astype(np.float32) / UINT8_MAX


def luma_histogram(small: np.ndarray) -> np.ndarray:
    histogram, _ = np.histogram(small @ LUMA_WEIGHTS, bins=_HISTOGRAM_BINS, range=(0.0, 1.0))
    return histogram / max(histogram.sum(), 1)


def estimate_curve(small: np.ndarray, settings: ToneSettings) -> ToneCurve:
    """The curve for one thumbnail (H×W×3 RGB float in [0, 1])."""
    pixels = small.reshape(-1, 3)
    luma = pixels @ LUMA_WEIGHTS
    # Grey world on the mid-tones: clipped and near-black pixels carry no colour information.
    mid = pixels[(luma > 0.05) & (luma < 0.95)]
    if len(mid) < 16:
        mid = pixels
    channel_means = np.maximum(mid.mean(axis=0), 1e-3)
    full_gains = channel_means.mean() / channel_means
    gains = np.clip(
        full_gains**settings.white_balance_strength,
        1.0 / settings.max_white_balance_gain,
        settings.max_white_balance_gain,
    )

    balanced = np.clip(pixels * gains, 0.0, 1.0) @ LUMA_WEIGHTS
    black, white = np.percentile(balanced, [settings.black_percentile, settings.white_percentile])
    black = min(float(black), settings.max_black)
    white = max(float(white), black + 1.0 / settings.max_stretch)

    levelled_mean = float(np.clip((balanced - black) / (white - black), 0.0, 1.0).mean())
    levelled_mean = min(max(levelled_mean, 1e-3), 1 - 1e-3)
    full_gamma = np.log(settings.target_mean) / np.log(levelled_mean)
    gamma = float(np.clip(full_gamma**settings.exposure_strength, *settings.gamma_range))
    return ToneCurve(gains.astype(np.float64), black, white, gamma)


class ToneMapper:
    """Maps a stream of RGB uint8 frames; holds the smoothed curve between frames."""

    def __init__(self, settings: ToneSettings | None = None) -> None:
        self.settings = settings or ToneSettings()
        # Per-frame step of the exponential glide towards the latest estimate.
        tau = self.settings.time_constant
        self._step = 1.0 if tau == 0 else 1.0 - np.exp(-1.0 / tau)
        self._current: np.ndarray | None = None
        self._target: np.ndarray | None = None
        self._histogram: np.ndarray | None = None
        self._since_estimate = 0
        self.estimates = 0
        self.scene_cuts = 0

    def curve(self) -> ToneCurve:
        if self._current is None:
            raise RuntimeError("no frame mapped yet")
        return ToneCurve.from_vector(self._current)

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
            raise ValueError(f"expected an H×W×3 RGB uint8 frame, got {frame.dtype} {frame.shape}")
        small = thumbnail(frame, self.settings.thumbnail_width)
        histogram = luma_histogram(small)
        cut = (
            self._histogram is not None
            and 0.5 * np.abs(histogram - self._histogram).sum() > self.settings.scene_cut
        )
        self._histogram = histogram
        if self._target is None or cut or self._since_estimate >= self.settings.interval:
            self._target = estimate_curve(small, self.settings).as_vector()
            self._since_estimate = 0
            self.estimates += 1
        self._since_estimate += 1
        if self._current is None or cut:
            self._current = self._target.copy()
            self.scene_cuts += bool(cut)
        else:
            self._current += self._step * (self._target - self._current)
        return cv2.LUT(frame, ToneCurve.from_vector(self._current).lut())


def tone_map_video(
    source: Path,
    destination: Path,
    settings: ToneSettings | None = None,
    fps: float | None = OFFICIAL_FPS,
) -> int:
    """Map every frame of ``source`` (streamed) and encode ``destination`` with the official
    encoding (H.264, yuv420p, CRF 18, 30 fps). The input is first resampled to ``fps`` (the
    official 30-fps extraction, so the output keeps its duration; None: frames one for one).
    Odd frame sizes and the input's audio are kept as :mod:`vqe.inference` keeps them
    (:func:`~vqe.video.output_pix_fmt`, :func:`~vqe.video.audio_to_keep`). Returns frames
    written."""
    mapper = ToneMapper(settings)
    info = probe(source)
    writer = VideoWriter(
        destination, pix_fmt=output_pix_fmt(info), audio_from=audio_to_keep(info, fps)
    )
    with writer:
        for frame in read_frames(source, fps):
            writer.write(mapper(frame))
    if writer.frames_written == 0:
        raise ValueError(f"{source}: the video holds no frames")
    return writer.frames_written
