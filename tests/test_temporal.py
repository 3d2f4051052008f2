"""Flicker and temporal profiles."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from vqe.conventions import rgb_uint8_to_tensor
from vqe.metrics.temporal import (
    FlickerMeter,
    flicker,
    luma,
    main,
    save_png,
    temporal_profile,
    video_flicker,
)
from vqe.video import write_video

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
    with pytest.raises(ValueError, match="RGB uint8"):
        flicker([frame.astype(np.float32) for frame in clip], clip)


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
