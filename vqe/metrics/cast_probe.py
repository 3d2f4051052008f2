"""How much of a pure colour cast an enhancer takes out — a probe, not a clip metric.

The clip metrics (:mod:`vqe.metrics.colour`) mix a method's cast with everything else it does to
a clip. The probe isolates the white balance: a clean photograph gets a known cast (red and blue
gains, green kept: warm, cool, magenta, green) and is dimmed to the clips' exposure; the
enhancer runs on it and on the same photograph dimmed without the cast. The shift of the
output's mean a*b* between the two, projected on the shift the cast alone makes on the
uncast output, says what share of the cast survived:

    removed = 1 − ⟨shift_out, shift_cast⟩ / |shift_cast|²

1: the cast is gone; 0: left as it came (the identity); below 0: made stronger. Exposure does
not enter: both shifts are measured at the output's own mean (a cast that changes the mean, as
magenta and green do, would otherwise move a*b* by brightness alone). A grey-world white balance
at strength s removes about s of it on a neutral scene (the baseline's 0.6). With no cast in,
the probe also records the cast the method adds of its own (its bias).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

#: (red gain, blue gain) of each probe cast: warm, cool, magenta, green — the corners of the
#: quality clips' colour-cast range (vqe.data.degradations.SYNTHETIC_RANGES: 0.8–1.2 each).
PROBE_CASTS: tuple[tuple[float, float], ...] = ((1.2, 0.8), (0.8, 1.2), (1.2, 1.2), (0.8, 0.8))
#: Mean of the dimmed probe input: the middle of the clips' dim exposure (0.16–0.24).
PROBE_MEAN = 0.2

#: An enhancer as the probe sees it: H×W×3 RGB uint8 in, H×W×3 RGB uint8 out.
Enhance = Callable[[np.ndarray], np.ndarray]


def _to_uint8(image: np.ndarray) -> np.ndarray:
    return (np.clip(image, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def mean_ab(image: np.ndarray) -> np.ndarray:
    """Mean (a*, b*) of an RGB uint8 image (CIELAB, OpenCV's 8-bit scaling undone)."""
    lab = cv2.cvtColor(image, cv2.COLOR_RGB2LAB).reshape(-1, 3).astype(np.float64)
    return lab[:, 1:].mean(axis=0) - 128.0


def _cast(image: np.ndarray, red: float, blue: float) -> np.ndarray:
    return image * np.array([red, 1.0, blue], dtype=np.float32)


def _at_mean(image: np.ndarray, mean: float) -> np.ndarray:
    """``image`` scaled to mean ``mean`` (brightness alone moves a*b*, so shifts are compared
    at one mean)."""
    return image * (mean / max(float(image.mean()), 1e-6))


def _dimmed(image: np.ndarray) -> np.ndarray:
    return _to_uint8(_at_mean(image, PROBE_MEAN))


@dataclass(frozen=True)
class CastProbe:
    """What a method does to colour balance on one photograph."""

    removed: list[float]  # share of each probe cast removed (NaN: an output without colour)
    added: tuple[float, float]  # mean (a*, b*) it adds where no cast came in (its own bias)


def probe_cast(
    enhance: Enhance, clean: np.ndarray, casts: Sequence[tuple[float, float]] = PROBE_CASTS
) -> CastProbe:
    """Probe ``enhance`` on the clean photograph ``clean`` (H×W×3 RGB float in [0, 1]) with each
    cast of ``casts`` (``removed`` in their order; NaN where the uncast output is black or white,
    which no cast can shift) and with none (``added``: the output's mean a*b* minus the clean
    photograph's at the output's mean)."""
    if clean.ndim != 3 or clean.shape[2] != 3:
        raise ValueError(f"probe_cast: expected an H×W×3 image, got shape {clean.shape}")
    clean = clean.astype(np.float32)
    uncast = enhance(_dimmed(clean))
    uncast_ab = mean_ab(uncast)
    uncast_float = uncast.astype(np.float32) / 255.0
    uncast_mean = float(uncast_float.mean())
    removed = []
    for red, blue in casts:
        # The cast on the uncast output, at that output's mean: the probe's inputs share one.
        reference = _at_mean(_cast(uncast_float, red, blue), uncast_mean)
        cast_shift = mean_ab(_to_uint8(reference)) - uncast_ab
        output_shift = mean_ab(enhance(_dimmed(_cast(clean, red, blue)))) - uncast_ab
        size = float(cast_shift @ cast_shift)  # 0 only for an output without colour to cast
        removed.append(1.0 - float(output_shift @ cast_shift) / size if size > 1e-6 else np.nan)
    added = uncast_ab - mean_ab(_to_uint8(_at_mean(clean, uncast_mean)))
    return CastProbe(removed, (float(added[0]), float(added[1])))


__all__ = ["PROBE_CASTS", "PROBE_MEAN", "CastProbe", "Enhance", "mean_ab", "probe_cast"]
