"""The run layout of vqe.metrics.results: what goes in submission/, the zip and tables/."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest
from submission_checks import RANDOM_CRITICS_ZIP, UPLOAD_ZIP, check_run_submission
from torch import nn

from vqe.metrics.results import CriticsUsed, write_results


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


def _critic(digest: str, weights_file: str = "") -> nn.Module:
    """A stand-in critic carrying what the loaders set: the weights' digest and file."""
    critic = nn.Identity()
    critic.weights_digest = digest
    critic.weights_file = weights_file
    return critic


def test_critics_used_says_random_or_names_the_files() -> None:
    given = CriticsUsed.of(
        _critic("0123456789abcdef", "/weights/VQA.ckpt"), _critic("fedcba9876543210", "DOVER.pth")
    )
    assert given == CriticsUsed(
        "VQA.ckpt (sha256 0123456789abcdef)", "DOVER.pth (sha256 fedcba9876543210)"
    )
    assert not given.random and given.to_dict()["critics"] == "given"
    # Either critic random (the loaders' "random-…" digest, or none: built in code) is enough.
    assert CriticsUsed.of(_critic("random-e98950242"), _critic("fedcba9876543210", "D.pth")).random
    assert CriticsUsed.of(_critic("0123456789abcdef", "V.ckpt"), nn.Identity()).random
    wrapped = nn.Module()  # a DoverCritic: the weights are its network's
    wrapped.network = _critic("random-e98950242")
    assert CriticsUsed.of(_critic("0123456789abcdef", "V.ckpt"), wrapped).dover == "random"


def test_random_critics_name_the_zip_and_say_so_in_score_json_and_the_printout(
    tmp_path: Path,
) -> None:
    supervised, unsupervised = {"video_0001": 0.2}, {"video_0002": [0.5] * 12}
    run = tmp_path / "run"
    results = write_results(
        run, supervised, unsupervised, subset=True, critics=CriticsUsed("random", "random")
    )
    check_run_submission(run, supervised_rows=1, unsupervised_rows=1, zip_name=RANDOM_CRITICS_ZIP)
    score = json.loads((run / "score.json").read_text())
    assert score["score"] == pytest.approx(2.5)
    assert score["critics"] == "random" and "not a challenge score" in score["note"]
    assert score["critic_weights"] == {"vqa": "random", "dover": "random"}
    assert results.format_score().splitlines()[-1] == (
        "score  2.5000 (random critics: not a challenge score)"
    )
    assert f"zip {run / RANDOM_CRITICS_ZIP}: random critics, not for upload" in results.summary()
    flat = results.to_dict()
    assert flat["submission_zip"] == str(run / RANDOM_CRITICS_ZIP) and flat["critics"] == "random"

    # Scored again in the same folder with critics from files: the upload's name, and the
    # random-critics zip, which no longer matches submission/, is gone.
    given = CriticsUsed("VQA.ckpt (sha256 0123456789abcdef)", "DOVER.pth (sha256 fedcba98)")
    results = write_results(
        run, supervised, unsupervised, subset=True, overwrite=True, critics=given
    )
    check_run_submission(run, supervised_rows=1, unsupervised_rows=1, zip_name=UPLOAD_ZIP)
    score = json.loads((run / "score.json").read_text())
    assert score["critics"] == "given" and score["critic_weights"]["vqa"] == given.vqa
    assert results.format_score().splitlines()[-1] == "score  2.5000"
    assert f"(upload {run / UPLOAD_ZIP})" in results.summary()
