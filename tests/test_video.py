"""PyAV decoding, fps resampling and the official encoding in vqe.video."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from vqe import video


def _ramp(count: int, height: int = 32, width: int = 48) -> list[np.ndarray]:
    return [np.full((height, width, 3), 10 + 12 * index, np.uint8) for index in range(count)]


def test_official_encoding_read_back(tmp_path: Path) -> None:
    path = tmp_path / "clip.mp4"
    assert video.write_video(path, _ramp(12)) == 12
    info = video.probe(path)
    assert (info.width, info.height, info.codec, info.pix_fmt) == (48, 32, "h264", "yuv420p")
    assert info.fps == pytest.approx(30.0)
    frames = list(video.read_frames(path))
    assert len(frames) == 12
    # CRF 18 on flat frames is nearly lossless: each frame keeps its own grey level.
    means = [float(frame.mean()) for frame in frames]
    assert np.allclose(means, [10 + 12 * i for i in range(12)], atol=2.0)


@pytest.mark.parametrize(("source_fps", "count", "target_fps", "expected"), [(20, 10, 30, 15), (30, 9, 30, 9), (60, 12, 30, 6)])
def test_fps_resampling_counts(tmp_path: Path, source_fps: int, count: int, target_fps: int, expected: int) -> None:
    path = tmp_path / "clip.mp4"
    video.write_video(path, _ramp(count), fps=source_fps)
    assert len(list(video.read_frames(path, fps=target_fps))) == expected
    assert len(list(video.read_frames(path, fps=None))) == count


def test_fps_resampling_repeats_in_order(tmp_path: Path) -> None:
    path = tmp_path / "clip.mp4"
    video.write_video(path, _ramp(4), fps=15)
    levels = [round(float(frame.mean())) for frame in video.read_frames(path, fps=30)]
    assert len(levels) == 8
    assert levels == sorted(levels)  # never goes back in time
    assert levels[0::2] == levels[1::2]  # each source frame shown twice


def test_odd_size_is_refused_with_the_file_name(tmp_path: Path) -> None:
    path = tmp_path / "odd.mp4"
    with pytest.raises(video.VideoError, match="odd.mp4.*even"):
        video.write_video(path, _ramp(2, height=31))


def test_corrupt_file_raises_video_error(tmp_path: Path) -> None:
    path = tmp_path / "broken.mp4"
    path.write_bytes(np.random.default_rng(0).bytes(2048))
    with pytest.raises(video.VideoError, match="broken.mp4"):
        list(video.read_frames(path))
    with pytest.raises(video.VideoError, match="broken.mp4"):
        video.probe(path)


def test_size_change_midway_is_refused(tmp_path: Path) -> None:
    with video.VideoWriter(tmp_path / "clip.mp4") as writer:
        writer.write(_ramp(1)[0])
        with pytest.raises(video.VideoError, match="frame 1"):
            writer.write(_ramp(1, height=16)[0])


def test_parse_fps_and_expected_counts(tmp_path: Path) -> None:
    assert video.parse_fps("30") == 30.0 and video.parse_fps("None") is None
    with pytest.raises(ValueError, match="'-5'"):
        video.parse_fps("-5")
    path = tmp_path / "clip.mp4"
    video.write_video(path, _ramp(10), fps=20)
    info = video.probe(path)
    assert video.frames_at(info, None) == 10
    assert video.frames_at(info, 30) == len(list(video.read_frames(path, fps=30)))
