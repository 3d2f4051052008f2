"""The quality/speed frontier (``vqe bench-frontier``) end to end at CI size: two presets through
the quality recipe (``--tiny``: each preset's own architecture, two steps per stage, tiny clips),
their cost at 720p, the table, the plot, and a second run into the same folder that reuses the
finished presets instead of training them again. No quality is asserted: the numbers of a tiny
run mean nothing."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from vqe.cli.bench import frontier

#: The two cheapest presets with a LUT stage: one without a U-Net (the recipe's LUT-only path)
#: and lut_unet's own LUT stage.
PRESETS = ["maqic", "lut"]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    out = tmp_path_factory.mktemp("frontier")
    # Trains on the demo set's pool: the default demo cache ($VQE_DEMO_DIR), built on first use.
    code = frontier.main(["--tiny", "--presets", *PRESETS, "--out", str(out), "--no-cuda"])
    return out, code


def test_tiny_run_writes_a_row_per_preset_with_finite_numbers(
    tiny_run: tuple[Path, int],
) -> None:
    out, code = tiny_run
    assert code == 0
    result = json.loads((out / "frontier.json").read_text())
    assert list(result["presets"]) == PRESETS
    assert result["settings"]["tiny"] and result["settings"]["steps"] == [2, 2, 2]
    for preset, row in result["presets"].items():
        assert (out / preset / "seed0" / "quality.json").is_file()
        assert row["seeds"] == [0] and not row["failed"]
        assert row["gmac_720p"] > 0 and row["cpu_ms"] > 0 and row["cuda_ms"] is None
        for key, summary in row["metrics"].items():
            assert summary["mean"] is not None and math.isfinite(summary["mean"]), (preset, key)
            assert summary["spread"] is None  # one seed
        assert [run["reused"] for run in row["runs"]] == [False]
        assert row["runs"][0]["steps"] == [2, 2, 2]
    baseline = result["baseline"]["metrics"]
    assert all(math.isfinite(baseline[key]["mean"]) for key in frontier.METRICS)

    table = (out / "frontier.md").read_text()
    rows = [line for line in table.splitlines() if line.startswith("| ")]
    assert rows[0].startswith("| preset | GMAC/720p | CPU ms/720p |")
    assert "backlit person PSNR" in rows[0] and "CIEDE2000" in rows[0] and "flicker" in rows[0]
    for preset in PRESETS:
        (row,) = [line for line in rows if line.startswith(f"| {preset} |")]
        assert "n/a" not in row and "nan" not in row.lower()
    assert any(line.startswith("| baseline (tone curve) |") for line in rows)
    assert "--tiny" in table
    plot = out / "frontier.png"
    assert plot.is_file() and plot.read_bytes().startswith(b"\x89PNG")


def test_second_run_reuses_the_finished_presets(
    tiny_run: tuple[Path, int], capsys: pytest.CaptureFixture[str]
) -> None:
    out, code = tiny_run
    assert code == 0
    records = {preset: out / preset / "seed0" / "quality.json" for preset in PRESETS}
    before = {preset: path.stat().st_mtime_ns for preset, path in records.items()}
    capsys.readouterr()
    assert frontier.main(["--tiny", "--presets", *PRESETS, "--out", str(out), "--no-cuda"]) == 0
    printed = capsys.readouterr().out
    for preset, path in records.items():
        assert f"[frontier] {preset} seed 0: reusing" in printed
        assert path.stat().st_mtime_ns == before[preset]  # not trained again
    assert "training into" not in printed
    result = json.loads((out / "frontier.json").read_text())
    assert all(row["runs"][0]["reused"] for row in result["presets"].values())


def test_reusing_a_run_made_with_other_steps_is_one_line(
    tiny_run: tuple[Path, int], capsys: pytest.CaptureFixture[str]
) -> None:
    out, _ = tiny_run
    capsys.readouterr()
    code = frontier.main(["--presets", "maqic", "--steps", "3", "--out", str(out), "--no-cuda"])
    assert code == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("error: frontier: ") and "made with other settings" in line
    assert "--overwrite" in line


def test_unknown_preset_is_one_line_naming_it_and_the_choices(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = frontier.main(["--tiny", "--presets", "lut", "lut_unett", "--out", str(tmp_path)])
    assert code == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("error: frontier: ") and "'lut_unett'" in line
    assert "choose from" in line and "lut_unet" in line and "spatial_lut" in line
    assert not any(tmp_path.iterdir())  # checked before anything is trained


def test_a_preset_without_a_lut_stage_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert frontier.main(["--tiny", "--presets", "unet", "--out", str(tmp_path)]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "'unet' has no LUT stage" in line


def test_overrides_pick_the_preset_after_tiny_and_free_a_lut_only_preset() -> None:
    assert frontier.preset_overrides("lut_unet", 1, ["a=1"]) == [
        "model_vqe=lut_unet",
        "seed=1",
        "a=1",
    ]
    # Without a U-Net the recipe's stage 2 (LUT frozen) would have nothing to train.
    assert "model_vqe.freeze_lut=false" in frontier.preset_overrides("maqic", 0, [])
    with pytest.raises(SystemExit):
        frontier.parse_args(["model_vqe=summer"])


def test_spread_over_seeds_is_the_sample_standard_deviation() -> None:
    runs = [{key: value for key in frontier.METRICS} for value in (10.0, 12.0)]
    summary = frontier.aggregate(runs)["psnr"]
    assert summary["mean"] == pytest.approx(11.0)
    assert summary["spread"] == pytest.approx(math.sqrt(2.0))
    assert frontier._cell("psnr", summary) == "11.00 ± 1.41"
