"""The speed benchmarks run end to end at toy sizes and report what the README quotes: the
same-run references (critics-off step, model-only frames/s, the LUT stage's share) beside their
rows. No timing is asserted: the figures come from full runs of the scripts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vqe.cli.bench import enhance_throughput, inference, train_step

pytestmark = pytest.mark.filterwarnings("ignore:.*RANDOM weights:RuntimeWarning")


def test_train_step_reports_the_folded_and_cached_vqa_beside_the_reference(
    tmp_path: Path,
) -> None:
    modes = ["off", "vqa_reference", "vqa", "vqa_cached"]
    argv = ["--batch", "1", "--height", "32", "--width", "48", "--repeats", "1", "--warmup", "1",
            "--preset", "tiny", "--out", str(tmp_path), "--modes", *modes]  # fmt: skip
    assert train_step.main(argv) == 0
    rows = json.loads((tmp_path / "train_step.json").read_text())["rows"]
    assert [row["mode"] for row in rows] == modes
    memory = {row["mode"]: row["memory"]["saved_for_backward_mb"] for row in rows}
    assert all(value > 0 for value in memory.values())
    assert memory["vqa"] < memory["vqa_reference"]  # no BatchNorm activations kept
    table = (tmp_path / "train_step.md").read_text()
    assert "× off" in table and "saved for backward" in table


def test_enhance_throughput_reports_serial_overlapped_and_model_only(tmp_path: Path) -> None:
    argv = ["--preset", "tiny", "--frames", "6", "--height", "32", "--width", "48",
            "--no-export", "--out", str(tmp_path)]  # fmt: skip
    assert enhance_throughput.main(argv) == 0
    result = json.loads((tmp_path / "enhance_throughput.json").read_text())
    assert result["serial"]["frames"] == result["enhancement"]["frames"] == 6
    assert result["model_only"]["frames"] == 6 and result["of_model_only"] > 0
    assert "of model only" in (tmp_path / "enhance_throughput.md").read_text()


def test_inference_reports_the_lut_stage_share(tmp_path: Path) -> None:
    argv = ["--presets", "tiny", "--height", "32", "--width", "48", "--repeats", "1",
            "--warmup", "0", "--no-cuda", "--paths", "eager", "--out", str(tmp_path)]  # fmt: skip
    assert inference.main(argv) == 0
    (row,) = json.loads((tmp_path / "inference.json").read_text())["rows"]
    assert set(row["lut_stage_ms"]) == {"eager", "atlas"}
    # "of peak" divides by the peak conv timed in turn with this row, not by the first one.
    assert row["fraction_of_peak"] == pytest.approx(row["gmac_per_s"] / row["peak_gmac_per_s"])
    assert "LUT stage" in (tmp_path / "inference.md").read_text()


def test_the_prepared_gpu_suite_runs_every_benchmark_into_its_folder(tmp_path: Path) -> None:
    """The script a GPU session runs in one sitting, checked here on the CPU at toy sizes."""
    from vqe.cli.bench import gpu_suite

    assert gpu_suite.main(["--device", "cpu", "--quick", "--out", str(tmp_path)]) == 0
    folders = {"inference", "train_step_fp32", "train_step_bf16", "enhance_throughput"}
    assert {p.name for p in tmp_path.iterdir()} == folders
    for name in folders:
        (result,) = (tmp_path / name).glob("*.json")
        assert json.loads(result.read_text())
    bf16 = json.loads((tmp_path / "train_step_bf16" / "train_step.json").read_text())
    assert bf16["precision"] == "bf16"
    assert {row["mode"] for row in bf16["rows"]} == {"off", "vqa_cached"}


def test_the_gpu_suite_refuses_a_missing_gpu_with_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import torch

    from vqe.cli.bench import gpu_suite

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(SystemExit):
        gpu_suite.main(["--out", str(tmp_path)])
    assert "--device cpu --quick" in capsys.readouterr().err
