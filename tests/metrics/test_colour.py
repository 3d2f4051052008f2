"""Colour metrics (vqe.metrics.colour) against values worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
from skimage.color import lab2rgb

from vqe.metrics.colour import ciede2000, clip_colour, colour_cast


def _flat(rgb: tuple[int, int, int], size: tuple[int, int] = (12, 16)) -> np.ndarray:
    return np.tile(np.asarray(rgb, dtype=np.uint8), (*size, 1))


def _grey_lightness(level: int) -> float:
    """CIE L* of an sRGB grey, from the sRGB and CIELAB definitions (Y = linear value)."""
    value = level / 255.0
    linear = value / 12.92 if value <= 0.04045 else ((value + 0.055) / 1.055) ** 2.4
    return 116.0 * linear ** (1.0 / 3.0) - 16.0


def _lab_frame(lab: tuple[float, float, float]) -> np.ndarray:
    rgb = lab2rgb(np.asarray(lab, dtype=np.float64).reshape(1, 1, 3))
    return np.tile(np.round(rgb * 255.0).astype(np.uint8), (10, 10, 1))


def test_identical_frames_have_no_colour_error() -> None:
    frame = np.random.default_rng(0).integers(0, 256, (24, 32, 3), dtype=np.uint8)
    assert ciede2000(frame, frame.copy()) == 0.0
    assert colour_cast(frame, frame.copy()) == 0.0


def test_ciede2000_of_two_greys_is_the_weighted_lightness_difference() -> None:
    # Neutral colours: a* = b* = 0, so CIEDE2000 reduces to ΔL / S_L with
    # S_L = 1 + 0.015 (L̄ − 50)² / sqrt(20 + (L̄ − 50)²).
    light, dark = _grey_lightness(150), _grey_lightness(100)
    mean = (light + dark) / 2
    s_l = 1 + 0.015 * (mean - 50) ** 2 / math.sqrt(20 + (mean - 50) ** 2)
    expected = (light - dark) / s_l
    assert expected > 10  # a plainly visible difference, not a rounding effect
    assert ciede2000(_flat((150,) * 3), _flat((100,) * 3)) == pytest.approx(expected, abs=0.05)
    # A grey shift is no colour cast.
    assert colour_cast(_flat((150,) * 3), _flat((100,) * 3)) < 0.05


def test_a_known_chroma_shift_is_the_cast() -> None:
    # (a*, b*) moved by (3, −4): a cast of 5 Lab units (up to uint8 rounding).
    target = _lab_frame((60.0, 10.0, 0.0))
    output = _lab_frame((60.0, 13.0, -4.0))
    assert colour_cast(output, target) == pytest.approx(5.0, abs=0.5)
    assert colour_cast(target, output) == pytest.approx(colour_cast(output, target))


def test_a_local_error_that_averages_out_is_no_cast() -> None:
    target = _lab_frame((60.0, 0.0, 0.0))
    output = target.copy()
    output[:5] = _lab_frame((60.0, 8.0, 0.0))[:5]  # half warmer,
    output[5:] = _lab_frame((60.0, -8.0, 0.0))[5:]  # half cooler
    assert colour_cast(output, target) < 0.6
    assert ciede2000(output, target) > 3.0  # the per-pixel error is still seen


def test_large_frames_are_measured_downscaled_to_nearly_the_same_value() -> None:
    rng = np.random.default_rng(1)
    small = rng.integers(0, 256, (9, 16, 3), dtype=np.uint8)
    big = np.kron(small, np.ones((80, 80, 1), dtype=np.uint8))  # 720×1280 of flat blocks
    shifted = np.clip(big.astype(int) + (12, 0, -12), 0, 255).astype(np.uint8)
    full = ciede2000(shifted, big, max_side=None)
    assert ciede2000(shifted, big) == pytest.approx(full, rel=0.05)


def test_clip_colour_averages_frames_and_refuses_bad_input() -> None:
    grey, warm = _flat((128, 128, 128)), _flat((150, 128, 110))
    result = clip_colour([grey, warm], [grey, grey])
    assert result["ciede2000"] == pytest.approx(ciede2000(warm, grey) / 2)
    assert result["cast"] == pytest.approx(colour_cast(warm, grey) / 2)
    with pytest.raises(ValueError, match="uint8"):
        ciede2000(grey.astype(np.float32), grey)
    with pytest.raises(ValueError, match="frames"):
        clip_colour([grey], [grey, grey])
