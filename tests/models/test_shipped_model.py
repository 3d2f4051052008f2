"""The model shipped inside the package (vqe.models.pretrained.DEFAULT_MODEL): it loads strictly
the safe way, ``vqe enhance`` runs it when no model is named, and — without retraining — it still
beats the hand-written baseline on degraded clips of a person it never saw (the test split's
astronaut, degraded like the quality benchmark's clips), on average over ten draws."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from vqe.baseline.tone import tone_map_video
from vqe.cli.bench.quality_clips import make_clip
from vqe.cli.enhance import main as enhance_main
from vqe.models.loading import enhancer_from_checkpoint
from vqe.models.pretrained import DEFAULT_MODEL, shipped_models
from vqe.video import read_frames


def psnr(frames: list[np.ndarray], targets: list[np.ndarray]) -> float:
    error = np.mean([np.mean((f.astype(float) - t.astype(float)) ** 2)
                     for f, t in zip(frames, targets, strict=True)])  # fmt: skip
    return float(10 * np.log10(255.0**2 / error))


def test_the_default_model_ships_and_loads_strictly() -> None:
    assert DEFAULT_MODEL in shipped_models(), "the default model must ship inside the package"
    path = shipped_models()[DEFAULT_MODEL]
    assert path.with_suffix(".md").is_file(), "a shipped model needs its model card beside it"
    assert path.stat().st_size < 8e6  # fp16, a few MB
    enhancer, config = enhancer_from_checkpoint(path)
    assert config["lut"]["statistics"] and config["lut"]["gain_grid"]


def test_the_shipped_model_beats_the_baseline_on_an_unseen_person(tmp_path: Path) -> None:
    gains = []
    for seed in range(10):  # ten draws of the degradation: one draw swings by ±2 dB
        clip = make_clip(tmp_path / f"in{seed}", 0, "astronaut", 8, 192, 108, seed=seed)
        baseline = tmp_path / f"baseline{seed}.mp4"
        tone_map_video(clip.input_path, baseline)
        out = tmp_path / f"ours{seed}"
        code = enhance_main([str(clip.input_path), "--dir_out", str(out), "--device", "cpu",
                             "--no-progress"])  # fmt: skip
        assert code == 0
        ours = psnr(list(read_frames(out / clip.input_path.name)), clip.target)
        gains.append(ours - psnr(list(read_frames(baseline)), clip.target))
    # On average above the baseline (+0.6 dB when these weights shipped): a damaged or wrongly
    # loaded model falls far below. Above it on *every* clip is the quality benchmark's target,
    # not met yet: the draws range from −2.3 to +2.1 dB, the losses on warm casts (red gain
    # ≥ 1.14), which the model leaves on the skin (docs/benchmarks.md).
    assert sum(gains) / len(gains) > 0.0, gains


def test_export_takes_the_shipped_model_by_name_and_writes_beside_the_user(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from vqe.cli.export import main as export_main

    monkeypatch.chdir(tmp_path)
    assert export_main([DEFAULT_MODEL, "--format", "onnx", "--height", "72", "--width", "128"]) == 0
    assert (tmp_path / f"{DEFAULT_MODEL}.onnx").is_file()  # not inside the installed package
    assert not (shipped_models()[DEFAULT_MODEL].with_suffix(".onnx")).exists()
