"""The run layout of vqe.metrics.results: what goes in submission/, the zip and tables/."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest
from submission_checks import check_run_submission

from vqe.metrics.results import write_results


def read(path: Path) -> list[list[str]]:
    with path.open(newline="") as handle:
        return list(csv.reader(handle))


def test_a_run_keeps_its_tables_out_of_the_submission(tmp_path: Path) -> None:
    run = tmp_path / "run"
    quality = {
        ("synthetic", "video_0002"): (3, [30.0, 0.9]),
        ("synthetic", "video_0001"): (2, [math.inf, 1.0]),  # frames equal to their targets
    }
    temporal = {
        ("synthetic", "video_0001"): {"flicker": 0.5, "warping_error": 0.001},
        ("unsupervised", "video_0003"): {"flicker": math.nan, "warping_error": 0.003},
    }
    results = write_results(
        run,
        {"video_0001": 0.1, "video_0002": 0.3},
        {"video_0003": [0.5] * 12},
        quality=quality,
        quality_columns=("psnr", "ssim"),
        temporal=temporal,
        temporal_measures=("flicker", "warping_error"),
        subset=True,
    )
    check_run_submission(run, supervised_rows=2, unsupervised_rows=1)
    assert sorted(path.name for path in run.iterdir()) == [
        "score.json",
        "submission",
        "submission.zip",
        "tables",
    ]
    assert read(run / "tables" / "quality.csv") == [
        ["video_i", "subset", "frames", "psnr", "ssim"],
        ["video_0001", "synthetic", "2", "inf", "1.0"],
        ["video_0002", "synthetic", "3", "30.0", "0.9"],
    ]
    assert read(run / "tables" / "temporal.csv") == [
        ["video_i", "subset", "flicker", "warping_error"],
        ["video_0001", "synthetic", "0.5", "0.001"],
        ["video_0003", "unsupervised", "nan", "0.003"],
    ]
    # Means over the finite values: an inf PSNR or a NaN flicker does not swamp them.
    assert results.quality_means == pytest.approx({"psnr": 30.0, "ssim": 0.95})
    assert results.temporal_means == pytest.approx({"flicker": 0.5, "warping_error": 0.002})
    assert results.score is not None and results.score.score == pytest.approx(0.5 / 0.2)
    flat = results.to_dict()
    assert flat["mean_rmse"] == pytest.approx(0.2) and flat["mean_warping_error"] > 0
    assert "psnr 30.0000, ssim 0.9500" in results.summary()


def test_without_tables_only_the_submission_and_score_are_written(tmp_path: Path) -> None:
    results = write_results(tmp_path / "run", {"video_0001": 0.1}, {}, subset=True)
    assert not (tmp_path / "run" / "tables").exists()
    assert results.score is None and "metrics_unsupervised.csv" in (results.score_error or "")
    assert not (tmp_path / "run" / "score.json").exists()
    assert sorted(p.name for p in (tmp_path / "run" / "submission").iterdir()) == [
        "metrics_supervised.csv",
        "metrics_unsupervised.csv",
    ]
