"""The official score: the sample submission, the formula, every validation error, the writer."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from fixture_files import SAMPLE_SUBMISSION

from vqe.cli.score import main
from vqe.metrics.score import (
    MISSING_RMSE,
    MISSING_SCORE,
    SubmissionError,
    official_video_ids,
    score_submission,
)
from vqe.metrics.submission import (
    RANDOM_CRITICS_ZIP,
    SUBMISSION_DIR,
    SUBMISSION_ZIP,
    write_submission,
    zip_submission,
)
from vqe.schema import (
    SCORE_COLUMNS,
    SUPERVISED_METRICS_CSV,
    UNSUPERVISED_METRICS_CSV,
)

REPO = Path(__file__).resolve().parents[2]
SAMPLE = SAMPLE_SUBMISSION


@pytest.fixture(scope="module")
def sample_dir() -> Path:
    if not (SAMPLE / SUPERVISED_METRICS_CSV).is_file():
        pytest.fail(
            f"sample submission fixture missing at {SAMPLE}; it is part of the repository (tests/fixtures)"
        )
    return SAMPLE


def reference_score(scores: np.ndarray, rmse: np.ndarray) -> float:
    """docs/protocol.md#score written out independently: rows × 12 scores, rows of rmse."""
    terms = scores.mean(axis=0)
    terms[4] = 1.0 - terms[4]
    return float(terms.sum() / 12 / rmse.mean())


def make_submission(folder: Path, supervised: int, unsupervised: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    scores = rng.uniform(0, 1, size=(unsupervised, 12))
    rmse = rng.uniform(0.01, 0.1, size=supervised)
    write_submission(
        folder,
        dict(zip(official_video_ids(supervised), rmse.tolist())),
        dict(zip(official_video_ids(unsupervised), scores.tolist())),
    )
    return scores, rmse


def edit_line(path: Path, line: int, new_text: str | None) -> None:
    """Replace (or with None delete) one line of a CSV, 1-based."""
    lines = path.read_text().splitlines()
    if new_text is None:
        del lines[line - 1]
    else:
        lines[line - 1] = new_text
    path.write_text("\n".join(lines) + "\n")


def test_sample_submission_scores_official_value(sample_dir: Path) -> None:
    report = score_submission(sample_dir)
    assert round(report.score, 4) == 11.2965
    assert report.rows == {SUPERVISED_METRICS_CSV: 500, UNSUPERVISED_METRICS_CSV: 3000}
    assert not report.warnings


def test_cli_script_prints_means_and_writes_json(sample_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "score.json"
    completed = subprocess.run(
        [
            sys.executable,
            str(REPO / "codalab_scoring" / "score.py"),
            "--results",
            str(sample_dir),
            "--json",
            str(out),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "score  11.2965" in completed.stdout
    assert "m_12" in completed.stdout and "rmse" in completed.stdout
    data = json.loads(out.read_text())
    assert round(data["score"], 4) == 11.2965
    assert set(data["means"]) == {*SCORE_COLUMNS, "rmse"}


def test_formula_matches_independent_computation(tmp_path: Path) -> None:
    scores, rmse = make_submission(tmp_path, 7, 11)
    report = score_submission(tmp_path, supervised_rows=7, unsupervised_rows=11)
    assert report.score == pytest.approx(reference_score(scores, rmse), rel=1e-12)
    assert report.means["m_5"] == pytest.approx(scores[:, 4].mean())


def test_missing_file_is_named(tmp_path: Path) -> None:
    make_submission(tmp_path, 3, 3)
    (tmp_path / UNSUPERVISED_METRICS_CSV).unlink()
    with pytest.raises(SubmissionError, match=f"{UNSUPERVISED_METRICS_CSV}: file not found"):
        score_submission(tmp_path, 3, 3)


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("video_i,rmse,extra", r"unexpected columns \['extra'\]"),
        ("video_i", r"missing columns \['rmse'\]"),
        (",video_i,rmse", r"unexpected columns \[''\].*without an index"),
        ("video_i,rmse,rmse", r"repeated columns \['rmse'\]"),
    ],
)
def test_wrong_columns_are_rejected(tmp_path: Path, header: str, message: str) -> None:
    make_submission(tmp_path, 3, 3)
    edit_line(tmp_path / SUPERVISED_METRICS_CSV, 1, header)
    with pytest.raises(SubmissionError, match=message):
        score_submission(tmp_path, 3, 3)


def test_duplicate_video_id_is_rejected(tmp_path: Path) -> None:
    make_submission(tmp_path, 3, 3)
    edit_line(tmp_path / SUPERVISED_METRICS_CSV, 4, "video_0001,0.05")
    with pytest.raises(SubmissionError, match=r"repeated video_i: video_0001 \(line 4\)"):
        score_submission(tmp_path, 3, 3)


def test_extra_rows_are_unknown_ids(tmp_path: Path) -> None:
    make_submission(tmp_path, 3, 4)
    with pytest.raises(SubmissionError, match=r"1 unknown video_i .*expected 3 videos.*video_0004"):
        score_submission(tmp_path, supervised_rows=3, unsupervised_rows=3)


def test_missing_ids_filled_leniently_and_rejected_strictly(tmp_path: Path) -> None:
    scores, rmse = make_submission(tmp_path, 4, 5)
    edit_line(tmp_path / UNSUPERVISED_METRICS_CSV, 3, None)  # drops video_0002
    edit_line(tmp_path / SUPERVISED_METRICS_CSV, 5, None)  # drops video_0004
    report = score_submission(tmp_path, 4, 5)
    assert report.missing_ids == {
        SUPERVISED_METRICS_CSV: ["video_0004"],
        UNSUPERVISED_METRICS_CSV: ["video_0002"],
    }
    scores[1, :] = MISSING_SCORE
    rmse[3] = MISSING_RMSE
    assert report.score == pytest.approx(reference_score(scores, rmse), rel=1e-12)
    assert any("1 − m_5" in text for text in report.warnings)
    with pytest.raises(
        SubmissionError, match=r"expected 5 rows, found 4; 1 missing video_i: video_0002"
    ):
        score_submission(tmp_path, 4, 5, strict=True)


def test_subset_mode_accepts_any_ids(tmp_path: Path) -> None:
    write_submission(tmp_path, {"clip_a": 0.05, "clip_b": 0.07}, {"clip_c": [0.5] * 12})
    with pytest.raises(SubmissionError, match="unknown video_i"):
        score_submission(tmp_path, 2, 1)
    report = score_submission(tmp_path, supervised_rows=None, unsupervised_rows=None)
    assert report.score == pytest.approx(0.5 / 0.06)


def test_non_numeric_and_infinite_values_are_listed(tmp_path: Path) -> None:
    make_submission(tmp_path, 3, 3)
    edit_line(tmp_path / SUPERVISED_METRICS_CSV, 2, "video_0001,abc")
    edit_line(
        tmp_path / UNSUPERVISED_METRICS_CSV, 3, "video_0002," + ",".join(["0.5"] * 11 + ["inf"])
    )
    with pytest.raises(SubmissionError) as caught:
        score_submission(tmp_path, 3, 3)
    message = str(caught.value)
    assert "line 2 rmse='abc' (not a number)" in message
    assert "line 3 m_12='inf' (not finite)" in message


def test_negative_rmse_and_short_rows_are_rejected(tmp_path: Path) -> None:
    make_submission(tmp_path, 3, 3)
    edit_line(tmp_path / SUPERVISED_METRICS_CSV, 2, "video_0001,-0.1")
    edit_line(tmp_path / UNSUPERVISED_METRICS_CSV, 2, "video_0001,0.5,0.5")
    with pytest.raises(SubmissionError) as caught:
        score_submission(tmp_path, 3, 3)
    assert "rmse='-0.1' (negative)" in str(caught.value)
    assert "line 2 has 3 fields" in str(caught.value)


def test_nan_cells_are_counted_and_filled(tmp_path: Path) -> None:
    scores, rmse = make_submission(tmp_path, 3, 4)
    edit_line(tmp_path / SUPERVISED_METRICS_CSV, 3, "video_0002,")
    values = scores[2].tolist()
    edit_line(
        tmp_path / UNSUPERVISED_METRICS_CSV,
        4,
        "video_0003," + ",".join(["NaN", *map(repr, values[1:5]), "nan", *map(repr, values[6:])]),
    )
    report = score_submission(tmp_path, 3, 4)
    assert report.missing_cells["rmse"] == 1
    assert report.missing_cells["m_1"] == 1 and report.missing_cells["m_6"] == 1
    assert sum(report.missing_cells.values()) == 3
    scores[2, 0] = scores[2, 5] = MISSING_SCORE
    rmse[1] = MISSING_RMSE
    assert report.score == pytest.approx(reference_score(scores, rmse), rel=1e-12)
    with pytest.raises(SubmissionError, match="missing cells per column"):
        score_submission(tmp_path, 3, 4, strict=True)


def test_cli_subset_mode_writes_json(tmp_path: Path) -> None:
    scores, rmse = make_submission(tmp_path / "results", 4, 6)
    out = tmp_path / "score.json"
    assert main(["--results", str(tmp_path / "results"), "--subset", "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    assert data["score"] == pytest.approx(reference_score(scores, rmse), rel=1e-12)
    assert data["counts"]["rows"] == {SUPERVISED_METRICS_CSV: 4, UNSUPERVISED_METRICS_CSV: 6}
    # Against the official counts the absent videos are missing: filled leniently, errors strictly.
    assert main(["--results", str(tmp_path / "results"), "--json", str(out)]) == 0
    assert json.loads(out.read_text())["counts"]["missing_video_ids"] == {
        SUPERVISED_METRICS_CSV: 496,
        UNSUPERVISED_METRICS_CSV: 2994,
    }
    assert main(["--results", str(tmp_path / "results"), "--strict"]) == 1


def test_cli_exits_nonzero_with_message(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    shutil.copy(SAMPLE / SUPERVISED_METRICS_CSV, tmp_path)
    assert main(["--results", str(tmp_path)]) == 1
    assert "metrics_unsupervised.csv: file not found" in capsys.readouterr().err


def test_writer_refuses_to_overwrite_and_rejects_bad_values(tmp_path: Path) -> None:
    make_submission(tmp_path, 2, 2)
    with pytest.raises(FileExistsError, match="overwrite=True"):
        make_submission(tmp_path, 2, 2)
    with pytest.raises(ValueError, match="has 11 values, expected 12"):
        write_submission(tmp_path / "x", {"v": 0.1}, {"v": [0.5] * 11})
    with pytest.raises(ValueError, match="finite floats or NaN"):
        write_submission(tmp_path / "y", {"v": math.inf}, {"v": [0.5] * 12})
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


# --------------------------------------------------------------------------- folder and zip


def test_a_folder_with_another_csv_is_refused_like_the_official_scorer(tmp_path: Path) -> None:
    """The official read_data asserts exactly two *.csv files in the folder."""
    make_submission(tmp_path, 3, 3)
    assert score_submission(tmp_path, 3, 3).rows[SUPERVISED_METRICS_CSV] == 3
    (tmp_path / "flicker.csv").write_text("video_i,flicker\nvideo_0001,0.1\n")
    with pytest.raises(SubmissionError, match=r"holds 3 \*\.csv files.*move flicker\.csv out"):
        score_submission(tmp_path, 3, 3)
    # The writer refuses such a folder before writing anything.
    with pytest.raises(FileExistsError, match="flicker.csv"):
        write_submission(tmp_path, {"video_0001": 0.1}, {"video_0001": [0.5] * 12}, True)
    (tmp_path / "notes.txt").write_text("not a csv")  # the official glob sees only *.csv
    (tmp_path / "flicker.csv").unlink()
    assert score_submission(tmp_path, 3, 3).rows[UNSUPERVISED_METRICS_CSV] == 3


def test_the_zip_holds_the_two_files_at_its_root_and_the_cli_scores_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    scores, rmse = make_submission(run / SUBMISSION_DIR, 4, 6)
    archive = zip_submission(run / SUBMISSION_DIR, run / SUBMISSION_ZIP)
    with zipfile.ZipFile(archive) as opened:
        assert sorted(opened.namelist()) == sorted(
            [SUPERVISED_METRICS_CSV, UNSUPERVISED_METRICS_CSV]
        )
        for name in opened.namelist():
            assert opened.read(name) == (run / SUBMISSION_DIR / name).read_bytes()
    expected = f"score  {reference_score(scores, rmse):.4f}"
    for results in (run / SUBMISSION_DIR, run, archive):  # folder, run directory, zip
        assert main(["--results", str(results), "--subset"]) == 0, results
        assert expected in capsys.readouterr().out
    # A zip whose files are not at the root is what CodaLab would reject: named in the error.
    nested = tmp_path / "nested.zip"
    with zipfile.ZipFile(nested, "w") as opened:
        opened.write(run / SUBMISSION_DIR / SUPERVISED_METRICS_CSV, f"x/{SUPERVISED_METRICS_CSV}")
    assert main(["--results", str(nested), "--subset"]) == 1
    assert f"{nested}:" in capsys.readouterr().err
    with pytest.raises(FileNotFoundError, match="nothing to zip"):
        zip_submission(tmp_path / "empty", tmp_path / "empty.zip")


def test_a_run_scored_by_random_critics_is_labelled_as_such(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The run's zip is named submission-random-critics.zip (vqe.metrics.results): scoring the
    run, its submission/ or that zip prints the score as not a challenge score; --json says
    so too. A bare folder of CSVs says nothing about its critics."""
    run = tmp_path / "run"
    scores, rmse = make_submission(run / SUBMISSION_DIR, 4, 6)
    archive = zip_submission(run / SUBMISSION_DIR, run / RANDOM_CRITICS_ZIP)
    labelled = f"score  {reference_score(scores, rmse):.4f} (random critics: not a challenge score)"
    for results in (run / SUBMISSION_DIR, run, archive):
        assert main(["--results", str(results), "--subset"]) == 0, results
        assert labelled in capsys.readouterr().out.splitlines(), results
    out = tmp_path / "score.json"
    assert main(["--results", str(run), "--subset", "--json", str(out)]) == 0
    capsys.readouterr()
    report = json.loads(out.read_text())
    assert report["critics"] == "random" and "not a challenge score" in report["note"]

    bare = tmp_path / "csvs"
    shutil.copytree(run / SUBMISSION_DIR, bare)
    assert main(["--results", str(bare), "--subset"]) == 0
    assert "random critics" not in capsys.readouterr().out
