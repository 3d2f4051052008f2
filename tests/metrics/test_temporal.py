"""Flicker, warping error, temporal profiles and the command line."""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from vqe.cli.temporal import main
from vqe.conventions import rgb_uint8_to_tensor
from vqe.metrics.synthetic_inputs import encode_lossless
from vqe.metrics.temporal import (
    FlickerMeter,
    WarpingErrorMeter,
    compare_videos,
    flicker,
    luma,
    reliable_warp,
    save_png,
    temporal_profile,
    video_flicker,
    warping_error,
)
from vqe.video import read_frames, write_video

HEIGHT, WIDTH, FRAMES = 48, 64, 12


def textured_frame(
    rng: np.random.Generator, height: int = HEIGHT, width: int = WIDTH
) -> np.ndarray:
    return rng.integers(40, 200, size=(height, width, 3), dtype=np.uint8)


def moving_clip(rng: np.random.Generator) -> list[np.ndarray]:
    """A window panning 3 pixels per frame over a wider smooth texture: new content enters."""
    coarse = rng.integers(60, 190, size=(HEIGHT // 8, (WIDTH + 3 * FRAMES) // 8, 3)).astype(
        np.float32
    )
    wide = cv2.resize(coarse, (WIDTH + 3 * FRAMES, HEIGHT), interpolation=cv2.INTER_CUBIC)
    wide = np.clip(wide + rng.normal(0, 4, wide.shape), 0, 255).astype(np.uint8)
    return [np.ascontiguousarray(wide[:, 3 * t : 3 * t + WIDTH]) for t in range(FRAMES)]


def with_pulses(frames: list[np.ndarray], amplitude: int) -> list[np.ndarray]:
    """Add +amplitude / −amplitude on alternate frames."""
    return [
        np.clip(frame.astype(np.int16) + (amplitude if index % 2 else -amplitude), 0, 255).astype(
            np.uint8
        )
        for index, frame in enumerate(frames)
    ]


def test_static_clip_has_zero_flicker() -> None:
    frame = textured_frame(np.random.default_rng(0))
    static = [frame] * FRAMES
    brighter = [np.clip(frame.astype(np.int16) + 30, 0, 255).astype(np.uint8)] * FRAMES
    assert flicker(static, static) == 0.0
    assert flicker(brighter, static) == 0.0  # a constant correction is not flicker


def test_identity_on_moving_clip_has_zero_flicker() -> None:
    clip = moving_clip(np.random.default_rng(1))
    assert flicker(clip, clip) == 0.0


def test_flicker_grows_with_added_pulses() -> None:
    clip = moving_clip(np.random.default_rng(2))
    assert min(frame.min() for frame in clip) >= 20 and max(frame.max() for frame in clip) <= 235
    values = [flicker(with_pulses(clip, amplitude), clip) for amplitude in (0, 2, 5, 10, 20)]
    assert values[0] == 0.0
    assert all(later > earlier for earlier, later in zip(values, values[1:]))
    # ±a on alternate frames moves every region by about 2a / Y, in percent.
    mean_brightness = np.mean([luma(frame).mean() for frame in clip])
    assert values[2] == pytest.approx(100 * 2 * 5 / mean_brightness, rel=0.1)


def test_fixed_gain_on_moving_clip_is_not_flicker() -> None:
    clip = moving_clip(np.random.default_rng(8))
    brightened = [
        np.clip(frame.astype(np.float32) * 1.3, 0, 255).astype(np.uint8) for frame in clip
    ]
    assert abs(flicker(brightened, clip)) < 0.05 * flicker(with_pulses(clip, 2), clip)


def test_removed_noise_is_not_flicker() -> None:
    rng = np.random.default_rng(3)
    clean = textured_frame(rng, 144, 256)  # regions of 36×64 pixels, a little under 720p's
    noisy = [
        np.clip(clean + rng.normal(0, 8, clean.shape), 0, 255).astype(np.uint8)
        for _ in range(FRAMES)
    ]
    denoised = [clean] * FRAMES
    assert flicker(denoised, noisy) < 0.05 * flicker(with_pulses(denoised, 3), noisy)


def test_changes_tell_a_steadying_enhancer_from_a_flickering_one() -> None:
    clip = moving_clip(np.random.default_rng(9))
    pulsed = with_pulses(clip, 6)
    steadying, flickering = FlickerMeter(), FlickerMeter()
    for steady, pulsing in zip(clip, pulsed):
        steadying.update(steady, pulsing)
        flickering.update(pulsing, steady)
    assert steadying.value() == pytest.approx(flickering.value())
    output_change, input_change = steadying.changes()
    assert output_change < input_change
    output_change, input_change = flickering.changes()
    assert output_change > input_change


def test_tensors_and_arrays_agree() -> None:
    clip = moving_clip(np.random.default_rng(4))
    pulsed = with_pulses(clip, 6)
    as_tensors = [rgb_uint8_to_tensor(frame) for frame in pulsed]
    assert flicker(as_tensors, clip) == pytest.approx(flicker(pulsed, clip))
    assert np.allclose(luma(as_tensors[0]), luma(pulsed[0]))


def test_bad_input_is_rejected() -> None:
    clip = moving_clip(np.random.default_rng(5))
    with pytest.raises(ValueError):
        flicker(clip, clip[:-1])
    with pytest.raises(ValueError, match="at least 2 frames"):
        flicker(clip[:1], clip[:1])
    with pytest.raises(ValueError, match="one size"):
        flicker(clip[:2], [frame[:, :32] for frame in clip[:2]])
    with pytest.raises(ValueError, match=r"\[0, 1\].*pass 0–255 values as uint8"):
        flicker([frame.astype(np.float32) for frame in clip], clip)  # 0–255 as float: ambiguous
    with pytest.raises(ValueError, match="H×W×3 RGB uint8"):
        flicker([frame[..., 0] for frame in clip], clip)


def test_float_frames_in_unit_range_agree_with_uint8() -> None:
    clip = moving_clip(np.random.default_rng(10))
    pulsed = with_pulses(clip, 6)
    as_floats = [frame.astype(np.float64) / 255 for frame in pulsed]
    assert flicker(as_floats, clip) == pytest.approx(flicker(pulsed, clip))
    assert warping_error(as_floats, clip) == pytest.approx(warping_error(pulsed, clip), rel=1e-5)


def test_temporal_profile_stacks_one_column_over_time(tmp_path: Path) -> None:
    clip = moving_clip(np.random.default_rng(6))
    profile = temporal_profile(clip, column=10)
    assert profile.shape == (HEIGHT, FRAMES, 3) and profile.dtype == np.uint8
    for time, frame in enumerate(clip):
        assert np.array_equal(profile[:, time], frame[:, 10])
    assert np.array_equal(temporal_profile(clip)[:, 0], clip[0][:, WIDTH // 2])
    with pytest.raises(ValueError, match="column 64 is outside"):
        temporal_profile(clip, column=WIDTH)

    path = save_png(profile, tmp_path / "profile.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(path) as image:
        assert np.array_equal(np.asarray(image.convert("RGB")), profile)


def test_video_files_and_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    clip = moving_clip(np.random.default_rng(7))
    source = tmp_path / "in.mp4"
    write_video(source, clip)
    assert video_flicker(source, source) == 0.0
    assert main([str(source), str(source), "--profile", str(tmp_path / "p.png")]) == 0
    out = capsys.readouterr().out
    assert "flicker 0.0000" in out and (tmp_path / "p.png").is_file()
    assert main([str(tmp_path / "missing.mp4"), str(source)]) == 1
    assert "missing.mp4" in capsys.readouterr().err


def test_luma_uses_bt601_weights() -> None:
    pure = np.zeros((2, 2, 3), dtype=np.uint8)
    pure[..., 1] = 255
    assert luma(pure)[0, 0] == pytest.approx(0.587 * 255, rel=1e-6)
    assert luma(torch.ones(3, 2, 2))[0, 0] == pytest.approx(255, rel=1e-5)


# --------------------------------------------------------------------------- warping error


def gamma_lut(frames: list[np.ndarray]) -> list[np.ndarray]:
    """A fixed per-pixel colour mapping (what a LUT enhancer does), the same on every frame."""
    table = np.clip(255 * (np.arange(256) / 255) ** 0.7, 0, 255).astype(np.uint8)
    return [table[frame] for frame in frames]


def with_noise(frames: list[np.ndarray], sigma: float, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [
        np.clip(frame + rng.normal(0, sigma, frame.shape), 0, 255).astype(np.float64) / 255
        for frame in frames
    ]


def test_static_clip_has_zero_warping_error() -> None:
    frame = textured_frame(np.random.default_rng(11))
    static = [frame] * FRAMES
    assert warping_error(static, static) == 0.0
    assert warping_error(gamma_lut(static), static) == 0.0


def test_consistent_output_of_a_moving_scene_has_near_zero_warping_error() -> None:
    clip = moving_clip(np.random.default_rng(12))
    meter = WarpingErrorMeter()
    for frame in clip:
        meter.update(frame, frame)
    # The pan brings 3 new columns per frame: those pixels have no source and are masked.
    assert 0.8 < meter.reliable_fraction() <= 1 - 3 / WIDTH + 0.02
    identity, mapped = meter.value(), warping_error(gamma_lut(clip), clip)
    assert meter.input_value() == identity  # returning the input scores the input's own
    # Per-frame noise of σ (0–255) in the output: about 2σ²/255² (two independent draws).
    sigma = 8.0
    noisy = warping_error(with_noise(clip, sigma, seed=13), clip)
    assert noisy == pytest.approx(2 * sigma**2 / 255**2, rel=0.25)
    assert identity < 0.01 * noisy and mapped < 0.01 * noisy
    # Brightness pulses ±a on alternate frames: every reliable pixel is off by 2a.
    amplitude = 10
    pulsed = warping_error(with_pulses(clip, amplitude), clip)
    assert pulsed == pytest.approx((2 * amplitude / 255) ** 2, rel=0.1)


def integer_shift_flow(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """A brute-force flow for a pan: the horizontal shift d in −3…3 with first(x) = second(x + d)
    on the overlap, as a constant field."""
    width = first.shape[1]

    def mismatch(d: int) -> float:
        a = first[:, max(0, -d) : width - max(0, d)].astype(float)
        b = second[:, max(0, d) : width + min(0, d)].astype(float)
        return float(((a - b) ** 2).mean())

    shift = min(range(-3, 4), key=mismatch)
    flow = np.zeros((*first.shape, 2), dtype=np.float32)
    flow[..., 0] = shift
    return flow


def test_warping_error_matches_a_hand_computation_with_a_known_flow() -> None:
    rng = np.random.default_rng(14)
    height, width, shift = 5, 7, 2
    wide = rng.integers(0, 256, size=(height, width + 2 * shift * 2, 3), dtype=np.uint8)
    inputs = [wide[:, shift * t : shift * t + width] for t in range(3)]  # pans by 2 pixels
    outputs = [rng.random((height, width, 3)) for _ in range(3)]
    meter = WarpingErrorMeter(flow=integer_shift_flow)
    for output, frame in zip(outputs, inputs):
        meter.update(output, frame)
    # Pixel x of frame t came from x + 2 of frame t − 1; the last 2 columns have no source.
    per_transition = [
        np.mean((outputs[t - 1][:, shift:] - outputs[t][:, : width - shift]) ** 2) for t in (1, 2)
    ]
    assert meter.value() == pytest.approx(np.mean(per_transition), rel=1e-5)
    assert meter.reliable_fraction() == pytest.approx((width - shift) / width)


def test_the_forward_backward_check_masks_inconsistent_flow() -> None:
    height, width = 3, 6
    backward = np.zeros((height, width, 2), np.float32)
    backward[..., 0] = 1  # every pixel came from one column to the right
    forward = np.zeros_like(backward)
    forward[:, :3, 0] = -1  # consistent with it on the left …
    forward[:, 3:, 0] = 3  # … not on the right (an occlusion or a wrong estimate)
    _, _, reliable = reliable_warp(backward, forward)
    # x = 0, 1 land on x + 1 ≤ 2 (forward −1: round trip 0); x = 2…4 land where forward is +3;
    # x = 5 lands outside the frame.
    assert reliable.tolist() == [[True, True, False, False, False, False]] * height

    def contradicting(first: np.ndarray, second: np.ndarray) -> np.ndarray:
        return np.full((*first.shape, 2), 2.0, np.float32)  # +2 both ways: never consistent

    clip = moving_clip(np.random.default_rng(15))
    meter = WarpingErrorMeter(flow=contradicting)
    for frame in clip[:3]:
        meter.update(frame, frame)
    assert math.isnan(meter.value()) and meter.reliable_fraction() == 0.0


def test_tall_frames_are_downscaled_for_the_warping_error() -> None:
    clip = moving_clip(np.random.default_rng(16))
    noisy = with_noise(clip, 6.0, seed=17)
    half = HEIGHT // 2

    def shrink(frame: np.ndarray) -> np.ndarray:
        return cv2.resize(
            frame.astype(np.float32), (WIDTH // 2, half), interpolation=cv2.INTER_AREA
        )

    expected = warping_error(
        [shrink(frame) for frame in noisy],
        [np.rint(shrink(frame)).astype(np.uint8) for frame in clip],
        max_height=None,
    )
    assert warping_error(noisy, clip, max_height=half) == pytest.approx(expected, rel=0.05)
    assert warping_error(noisy, clip, max_height=None) > warping_error(noisy, clip, max_height=half)


def test_warping_error_rejects_bad_input() -> None:
    clip = moving_clip(np.random.default_rng(18))
    with pytest.raises(ValueError, match="at least 2 frames"):
        warping_error(clip[:1], clip[:1])
    with pytest.raises(ValueError, match="one size"):
        warping_error(clip[:2], [frame[:, :32] for frame in clip[:2]])
    with pytest.raises(ValueError):
        warping_error(clip, clip[:-1])
    with pytest.raises(ValueError, match="max_height"):
        WarpingErrorMeter(max_height=0)


def test_tensor_frames_give_the_same_warping_error() -> None:
    clip = moving_clip(np.random.default_rng(19))
    pulsed = with_pulses(clip, 5)
    tensors = [rgb_uint8_to_tensor(frame) for frame in pulsed]
    assert warping_error(tensors, clip) == pytest.approx(warping_error(pulsed, clip), rel=1e-5)


def test_cli_compares_videos_of_different_rates_on_one_time_base(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An enhancer that resampled a 20 fps input to 30 fps (vqe.enhance's default) and returned
    it unchanged (issue 16: this crashed with a raw zip() error): compared at 30 fps, zero
    flicker, the input's own warping error."""
    source = tmp_path / "in_20fps.mp4"
    write_video(source, moving_clip(np.random.default_rng(20))[:8], fps=20)
    resampled = list(read_frames(source, 30))
    assert len(resampled) == 12
    enhanced = tmp_path / "enhanced_30fps.mp4"
    encode_lossless(enhanced, resampled)

    profile = tmp_path / "profile.png"
    assert main([str(enhanced), str(source), "--profile", str(profile)]) == 0
    out = capsys.readouterr().out
    assert "resampled to 30 fps" in out and "frames 12" in out and "flicker 0.0000" in out
    printed = dict(line.split()[:2] for line in out.splitlines() if not line.startswith("note"))
    # The identity scores the input's own warping error (its codec noise), both measured.
    assert float(printed["warping_error"]) == float(printed["input_warping_error"]) > 0
    with Image.open(profile) as image:  # a labelled figure, not a strip of 12 pixel columns
        assert image.size == (800, 500)

    # One enhanced frame short: the overlap is compared and the user told so.
    encode_lossless(enhanced, resampled[:-1])
    result = compare_videos(enhanced, source)
    assert result.frames == 11 and result.flicker == 0.0
    assert any("last 1 input frames were left out" in note for note in result.notes)
