"""The end-of-run table: input vs tone-curve baseline vs model on a test set's supervised rows."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from index_helpers import write_rgb

from vqe import schema
from vqe.data.datasets import FrameDataset
from vqe.training.comparison_table import comparison_table, report_comparison


def _dark_pair_set(root: Path, frames_per_video: tuple[int, ...]) -> FrameDataset:
    """Synthetic videos whose input is the target at half brightness, plus one unsupervised
    video (which the table must ignore)."""
    rng = np.random.default_rng(0)
    rows = []
    videos = [
        (schema.SUBSET_SYNTHETIC, f"video_{n:04d}", count)
        for n, count in enumerate(frames_per_video, start=1)
    ]
    videos.append((schema.SUBSET_UNSUPERVISED, "video_0099", 2))
    for subset, video, count in videos:
        for frame in range(count):
            target = rng.integers(60, 250, size=(24, 32, 3), dtype=np.uint8)
            source = f"test/{video}/x/frame_{frame + 1:04d}.png"
            write_rgb(root / source, (target // 2).astype(np.uint8))
            target_path = ""
            if subset == schema.SUBSET_SYNTHETIC:
                target_path = source.replace("/x/", "/y/")
                write_rgb(root / target_path, target)
            rows.append([source, target_path, 24, 32, subset, video, frame, ""])
    table = pd.DataFrame(rows, columns=list(schema.INDEX_COLUMNS))
    table.to_csv(root / schema.TEST_CSV, index=False)
    return FrameDataset.from_csv(root, schema.TEST_CSV)


def test_a_perfect_model_beats_the_baseline_which_beats_the_input(tmp_path: Path) -> None:
    dataset = _dark_pair_set(tmp_path, (3, 2))
    table = comparison_table(lambda x: (x * 2.0).clamp(0, 1), dataset)
    assert table is not None and table.videos == 2 and table.frames == 5
    model, baseline, source = table.row("model"), table.row("baseline"), table.row("input")
    assert model.rmse < 0.02 and model.psnr > 40  # x·2 undoes the halving up to rounding
    assert model.rmse < baseline.rmse < source.rmse
    assert source.psnr < baseline.psnr < model.psnr


def test_rmse_is_averaged_per_video_then_over_videos(tmp_path: Path) -> None:
    dataset = _dark_pair_set(tmp_path, (4, 1))
    table = comparison_table(lambda x: x, dataset)
    assert table is not None
    per_video = []
    for video in ("video_0001", "video_0002"):
        rows = dataset.index.index[dataset.index[schema.VIDEO_ID] == video]
        values = []
        for row in rows:
            item = dataset[int(row)]
            diff = (item["x"] - item["y"]) * 255.0 / 128.0
            values.append(float(diff.pow(2).mean().sqrt()))
        per_video.append(np.mean(values))
    assert table.row("input").rmse == pytest.approx(np.mean(per_video), rel=1e-5)
    assert table.row("model").rmse == pytest.approx(table.row("input").rmse, rel=1e-6)


def test_nothing_to_report_without_targets(tmp_path: Path, capsys, caplog) -> None:
    dataset = _dark_pair_set(tmp_path, ())
    assert comparison_table(lambda x: x, dataset) is None
    with caplog.at_level(logging.INFO, logger="vqe.training.comparison_table"):
        assert report_comparison(torch.nn.Identity(), dataset) is None
    assert capsys.readouterr().out == "" and caplog.text == ""


def test_report_logs_the_table_and_restores_training_mode(tmp_path: Path, caplog) -> None:
    dataset = _dark_pair_set(tmp_path, (2,))
    model = torch.nn.Conv2d(3, 3, 1)
    model.train()
    with caplog.at_level(logging.INFO, logger="vqe.training.comparison_table"):
        result = report_comparison(model, dataset)
    assert model.training
    printed = caplog.text
    assert "| input |" in printed and "| baseline |" in printed and "| model |" in printed
    assert result is not None and set(result) >= {"input", "baseline", "model", "videos"}
    assert result["videos"] == 1 and result["frames"] == 2
