"""Mistakes that used to end in a traceback now end in one line naming the file or value
(issue 25, "poor but safe"). Training's own cases (optimizer.lr=-1, limit_train_batches=0, a
checkpoint of another model, a full disk) are in test_training_reliability.py."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from model_helpers import write_checkpoint

from vqe.cli import score_outputs, temporal
from vqe.models.loading import enhancer_from_preset
from vqe.video import write_video

REPO = Path(__file__).resolve().parents[2]


def one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    return lines[0]


def test_evaluate_on_a_truncated_checkpoint_is_one_logged_line(tmp_path: Path) -> None:
    good = write_checkpoint(enhancer_from_preset("tiny"), "tiny", tmp_path / "good.ckpt")
    cut = tmp_path / "cut.ckpt"
    cut.write_bytes(good.read_bytes()[:500])
    result = subprocess.run(
        [sys.executable, "-m", "vqe.cli.evaluate", f"ckpt={cut}", f"hydra.run.dir={tmp_path / 'e'}"],
        cwd=REPO, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"},
    )  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert f"ckpt={cut}: cannot be read as a checkpoint, it is damaged" in output
    assert "Traceback" not in output and "Error executing job" not in output
    line = next(text for text in output.splitlines() if "cannot be read" in text)
    assert "PyTorch 2.6" not in line and "weights_only" not in line  # the cause, not an essay


def test_score_outputs_with_a_pickled_code_critic_file_says_so_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    weights = tmp_path / "vqa.pth"
    torch.save({"w": torch.zeros(1), "hook": os.getcwd}, weights)
    (tmp_path / "enhanced").mkdir()
    (tmp_path / "root").mkdir()
    code = score_outputs.main([
        "--enhanced", str(tmp_path / "enhanced"), "--data-root", str(tmp_path / "root"),
        "--out", str(tmp_path / "out"), "--vqa", str(weights), "--allow-random-critics",
    ])  # fmt: skip
    assert code == 1
    line = one_line_error(capsys)
    assert f"{weights}: refused" in line and "run code" in line


def test_temporal_on_frames_too_small_for_optical_flow_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rng = np.random.default_rng(0)
    clips = [tmp_path / "out.mp4", tmp_path / "in.mp4"]
    for clip in clips:
        write_video(clip, [rng.integers(0, 256, (8, 8, 3), dtype=np.uint8) for _ in range(4)])
    assert temporal.main([str(clips[0]), str(clips[1])]) == 1
    line = one_line_error(capsys)
    assert "8×8 are too small" in line and "--no-warping" in line
    assert temporal.main([str(clips[0]), str(clips[1]), "--no-warping"]) == 0
