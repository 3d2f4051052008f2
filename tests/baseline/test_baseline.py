"""The baseline: tone curve behaviour and the folder run (encoding, errors, no overwrites)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from vqe.baseline.tone import ToneMapper, ToneSettings, tone_map_video
from vqe.batch_jobs import process_folder
from vqe.cli.baseline import main
from vqe.metrics.temporal import flicker, luma
from vqe.output_paths import OutputPathError
from vqe.video import OFFICIAL_FPS, probe, read_frames, write_video

REPO = Path(__file__).resolve().parents[2]
HEIGHT, WIDTH, FRAMES = 48, 64, 10


def scene(
    rng: np.random.Generator, exposure: float, cast=(1.0, 1.0, 1.0), frames: int = FRAMES
) -> list[np.ndarray]:
    """A smooth texture panning 2 px per frame, scaled by ``exposure`` and a colour cast."""
    coarse = rng.uniform(40, 230, size=(6, 12, 3)).astype(np.float32)
    wide = cv2.resize(coarse, (WIDTH + 2 * frames, HEIGHT), interpolation=cv2.INTER_LINEAR)
    wide = wide * exposure * np.asarray(cast, dtype=np.float32)
    wide = np.clip(wide, 0, 255).astype(np.uint8)
    return [np.ascontiguousarray(wide[:, 2 * t : 2 * t + WIDTH]) for t in range(frames)]


def mean_luma(frames: list[np.ndarray]) -> float:
    return float(np.mean([luma(frame).mean() for frame in frames]))


@pytest.fixture()
def folders(tmp_path: Path) -> tuple[Path, Path]:
    rng = np.random.default_rng(0)
    source = tmp_path / "in"
    write_video(source / "video_0001_x.mp4", scene(rng, 0.3))
    write_video(source / "video_0002_x.mp4", scene(rng, 0.35, cast=(0.8, 0.9, 1.2), frames=7))
    (source / "video_0003_x.mp4").write_bytes(b"\x00\x01 not a video" * 50)
    return source, tmp_path / "out"


def test_folder_run_writes_official_encoding_and_reports_bad_input(
    folders: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    source, target = folders
    assert main(["--dir_in", str(source), "--dir_out", str(target), "--workers", "2"]) == 1
    captured = capsys.readouterr()
    assert "FAILED 1" in captured.out and "video_0003_x.mp4" in captured.out
    assert sorted(path.name for path in target.iterdir()) == [
        "video_0001_x.mp4",
        "video_0002_x.mp4",
    ]
    for name in ("video_0001_x.mp4", "video_0002_x.mp4"):
        info = probe(target / name)
        assert (info.codec, info.pix_fmt, info.fps) == ("h264", "yuv420p", OFFICIAL_FPS)
        inputs, outputs = list(read_frames(source / name)), list(read_frames(target / name))
        assert len(outputs) == len(inputs)
        assert outputs[0].shape == inputs[0].shape == (HEIGHT, WIDTH, 3)
        assert mean_luma(outputs) > mean_luma(inputs) + 30


def test_existing_outputs_are_kept_unless_overwrite(folders: tuple[Path, Path]) -> None:
    source, target = folders
    (source / "video_0003_x.mp4").unlink()
    target.mkdir()
    (target / "video_0001_x.mp4").write_bytes(b"keep me")
    report = process_folder(source, target, tone_map_video, workers=1)
    assert report.ok and report.skipped == [source / "video_0001_x.mp4"]
    assert (target / "video_0001_x.mp4").read_bytes() == b"keep me"
    assert "--overwrite" in report.summary()
    report = process_folder(source, target, tone_map_video, workers=1, overwrite=True)
    assert len(report.written) == 2 and probe(target / "video_0001_x.mp4").codec == "h264"


def test_bad_folders_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--dir_in", str(tmp_path / "nowhere"), "--dir_out", str(tmp_path / "o")]) == 1
    assert "input folder not found" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no .mp4 videos"):
        process_folder(tmp_path / "empty", tmp_path / "o", tone_map_video)
    with pytest.raises(OutputPathError, match="is, or lies inside, the input --dir_in"):
        process_folder(tmp_path, tmp_path, tone_map_video)


def test_script_entry_point_runs(folders: tuple[Path, Path]) -> None:
    source, target = folders
    completed = subprocess.run(
        [
            sys.executable,
            str(REPO / "baseline" / "baseline.py"),
            "--dir_in",
            str(source),
            "--dir_out",
            str(target),
            "--workers",
            "1",
        ],
        capture_output=True,
        text=True,
    )
    assert completed.returncode == 1  # the corrupt video
    assert "wrote 2 videos" in completed.stdout
    assert not list(target.glob(".*partial*"))  # the failed video left no temporary file


def test_white_balance_pulls_channels_together() -> None:
    frames = scene(np.random.default_rng(1), 0.8, cast=(0.7, 0.95, 1.3))

    def channel_ratio(strength: float) -> float:
        mapper = ToneMapper(ToneSettings(white_balance_strength=strength))
        means = np.mean([mapper(frame).mean(axis=(0, 1)) for frame in frames], axis=0)
        return float(means.max() / means.min())

    # The same levels and gamma with and without the grey-world gains.
    uncorrected, partial, full = channel_ratio(0.0), channel_ratio(0.6), channel_ratio(1.0)
    assert full < 1.15 < partial < 0.7 * uncorrected


def test_static_scene_gives_a_constant_curve_and_cuts_switch_at_once() -> None:
    rng = np.random.default_rng(2)
    still = scene(rng, 0.3, frames=1) * 12
    mapper = ToneMapper()
    outputs = [mapper(frame) for frame in still]
    assert flicker(outputs, still) == 0.0
    bright = scene(rng, 1.0, frames=1)[0]
    mapper(bright)
    assert mapper.scene_cuts == 1
    fresh = ToneMapper()
    fresh(bright)
    assert np.allclose(mapper.curve().as_vector(), fresh.curve().as_vector())


def test_smoothing_damps_a_curve_that_would_jump() -> None:
    # A bright patch shows up every other 4 frames: re-estimating each frame makes an unsmoothed
    # curve jump back and forth; the smoothed one barely moves.
    frames = scene(np.random.default_rng(3), 0.3, frames=32)
    for t, frame in enumerate(frames):
        if (t // 4) % 2:
            frame[8:32, 8:40] = 250
    smoothed = ToneMapper(ToneSettings(interval=1, time_constant=15))
    jumpy = ToneMapper(ToneSettings(interval=1, time_constant=0))
    smooth_flicker = flicker([smoothed(frame) for frame in frames], frames)
    jumpy_flicker = flicker([jumpy(frame) for frame in frames], frames)
    assert smoothed.scene_cuts == jumpy.scene_cuts == 0
    assert smooth_flicker < 0.5 * jumpy_flicker


def test_settings_are_validated() -> None:
    with pytest.raises(ValueError, match="interval ≥ 1"):
        ToneSettings(interval=0)
