"""CoreML export: conversion and spec checks on Linux, metadata, budget refusal, bad input.

Running a package (and so comparing it with PyTorch) needs macOS; that check skips elsewhere.
Conversions run at small fixed sizes so the file stays fast.
"""

from __future__ import annotations

import platform
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from model_helpers import write_checkpoint

from vqe.cli.export import main
from vqe.export.coreml import (
    SUPPORTED_OPS,
    CoreMLExport,
    ProgramSummary,
    TensorSpec,
    check_program,
    export_coreml,
    program_summary,
    quantize_weights_int8,
    read_package_summary,
)
from vqe.export.metadata import (
    ModelSource,
    file_sha256,
    preset_source,
    size_bytes,
)
from vqe.macs import MacBudgetError, count_macs
from vqe.models.loading import enhancer_from_preset

HEIGHT, WIDTH = 36, 64
ON_MACOS = platform.system() == "Darwin"


@pytest.fixture(scope="module")
def default_export(tmp_path_factory: pytest.TempPathFactory) -> CoreMLExport:
    """The default preset (lut_unet) in fp16, converted once for the module at a small size."""
    folder = tmp_path_factory.mktemp("coreml")
    return export_coreml(
        enhancer_from_preset("lut_unet"), folder / "lut_unet.mlpackage",
        preset_source("lut_unet"), height=64, width=112,
    )  # fmt: skip


def test_tiny_checkpoint_exports_through_the_cli(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    checkpoint = write_checkpoint(enhancer_from_preset("tiny"), "tiny", tmp_path / "tiny.ckpt")
    out = tmp_path / "tiny.mlpackage"
    code = main([str(checkpoint), "--out", str(out), "--height", str(HEIGHT),
                 "--width", str(WIDTH)])  # fmt: skip
    assert code == 0
    printed = capsys.readouterr().out
    assert "GMAC per 1280×720 frame" in printed and "op types" in printed
    if not ON_MACOS:
        assert "not compared: running a CoreML package needs macOS" in printed

    program, metadata = read_package_summary(out)  # read back from disk
    assert program.inputs == (TensorSpec("frame", (1, 3, HEIGHT, WIDTH), "FLOAT16"),)
    assert program.outputs == (TensorSpec("enhanced", (1, 3, HEIGHT, WIDTH), "FLOAT16"),)
    assert set(program.op_counts) <= SUPPORTED_OPS and program.max_rank <= 4
    assert metadata["vqe.source_checkpoint"] == str(checkpoint.resolve())
    assert metadata["vqe.source_checkpoint_sha256"] == file_sha256(checkpoint)
    assert yaml.safe_load(metadata["vqe.config"])["lut"]["lut_size"] == 9
    assert (
        int(metadata["vqe.macs_per_1280x720_frame"])
        == count_macs(enhancer_from_preset("tiny")).total
    )
    assert metadata["vqe.precision"] == "fp16" and metadata["vqe.vqe_version"]


def test_default_preset_converts_and_quantises(
    default_export: CoreMLExport, tmp_path: Path
) -> None:
    fp16 = default_export
    program, metadata = read_package_summary(fp16.path)
    assert program == fp16.program and check_program(program, 64, 112) == []
    assert program.computed_float_dtypes.keys() == {"FLOAT16"}
    assert program.op_counts["conv"] >= 20  # the U-Net's fused convs
    assert {"resample", "pixel_unshuffle", "pixel_shuffle"} <= set(program.op_counts)
    assert "constexpr_affine_dequantize" not in program.op_counts
    assert int(metadata["vqe.macs_per_1280x720_frame"]) == fp16.macs_720p <= 20e9
    assert f"{fp16.parameters:,}" in fp16.summary()

    # 8-bit weights: the convs' weights become dequantise-at-load constants, the rest is kept.
    int8 = quantize_weights_int8(fp16.model)
    int8_program = program_summary(int8.get_spec())
    assert check_program(int8_program, 64, 112) == []
    assert int8_program.op_counts["constexpr_affine_dequantize"] >= 20
    int8.save(str(tmp_path / "int8.mlpackage"))
    assert size_bytes(tmp_path / "int8.mlpackage") < 0.8 * fp16.size_bytes


@pytest.mark.parametrize("preset", ["spatial_lut", "summer"])
def test_new_architectures_export_as_fp16_programs(preset: str, tmp_path: Path) -> None:
    """The region-wise LUT stage (one atlas lookup of all bases, a bilinear weight map) and the
    residual-block stage convert with the Neural Engine's ops only, in fp16, rank ≤ 4."""
    export = export_coreml(
        enhancer_from_preset(preset), tmp_path / f"{preset}.mlpackage", preset_source(preset),
        height=64, width=112,
    )  # fmt: skip
    program, metadata = read_package_summary(export.path)
    assert check_program(program, 64, 112) == []
    assert program.computed_float_dtypes.keys() == {"FLOAT16"}
    assert {"resample", "conv", "pixel_shuffle"} <= set(program.op_counts)
    assert int(metadata["vqe.macs_per_1280x720_frame"]) == export.macs_720p <= 20e9


def test_spec_check_names_every_problem() -> None:
    good_io = (TensorSpec("frame", (1, 3, 8, 8), "FLOAT16"),)
    good = ProgramSummary(
        op_counts={"conv": 2, "relu": 1, "const": 3},
        inputs=good_io,
        outputs=(TensorSpec("enhanced", (1, 3, 8, 8), "FLOAT16"),),
        computed_float_dtypes={"FLOAT16": 3},
        max_rank=4,
    )
    assert check_program(good, 8, 8) == []
    bad = ProgramSummary(
        op_counts={"conv": 2, "grid_sample_3d": 1},
        inputs=(TensorSpec("frame", (1, 3, 8, 8), "FLOAT32"),),
        outputs=(TensorSpec("output", (1, 3, 8, 8), "FLOAT16"),),
        computed_float_dtypes={"FLOAT16": 2, "FLOAT32": 1},
        max_rank=5,
    )
    problems = check_program(bad, 8, 8)
    assert len(problems) == 5
    assert "grid_sample_3d" in problems[0] and "FLOAT32" in problems[1] and "5" in problems[2]
    assert check_program(good, 8, 16) != []  # the wrong size is caught too


def test_over_budget_model_is_refused_unless_allowed(tmp_path: Path) -> None:
    wide = enhancer_from_preset("tiny", ["unet.widths=[48,96]"])  # ≈ 30 GMAC at 720p
    out = tmp_path / "wide.mlpackage"
    with pytest.raises(MacBudgetError, match="allow_over_budget"):
        export_coreml(wide, out, preset_source("tiny"), height=HEIGHT, width=WIDTH)
    assert not out.exists()
    export = export_coreml(wide, out, preset_source("tiny"), height=HEIGHT, width=WIDTH,
                           precision="int8", allow_over_budget=True)  # fmt: skip
    assert export.macs_720p > 20e9 and out.is_dir()
    assert export.program.op_counts["constexpr_affine_dequantize"] >= 1  # the int8 path
    assert read_package_summary(out)[1]["vqe.precision"] == "int8"


def test_cli_reports_bad_checkpoints_and_existing_outputs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = tmp_path / "notes.ckpt"
    text.write_text("not a checkpoint")
    foreign = tmp_path / "VQA.ckpt"  # a Lightning checkpoint of another model
    torch.save({"state_dict": {"_model.head.weight": torch.zeros(2)}}, foreign)
    missing = tmp_path / "missing.ckpt"
    for bad, reason in ((missing, "no such checkpoint"), (text, "cannot be read"),
                        (foreign, "model_vqe config")):  # fmt: skip
        assert main([str(bad), "--out", str(tmp_path / "x.mlpackage")]) == 1
        error = capsys.readouterr().err
        assert str(bad) in error and reason in error
    assert not (tmp_path / "x.mlpackage").exists()

    checkpoint = write_checkpoint(enhancer_from_preset("tiny"), "tiny", tmp_path / "tiny.ckpt")
    existing = tmp_path / "existing.mlpackage"
    existing.mkdir()
    assert main([str(checkpoint), "--out", str(existing)]) == 1
    assert "--overwrite" in capsys.readouterr().err
    assert list(existing.iterdir()) == []  # left as it was


def test_package_path_and_size_are_checked_first(tmp_path: Path) -> None:
    source = ModelSource("preset:tiny", "")
    tiny = enhancer_from_preset("tiny")
    with pytest.raises(ValueError, match=r"\.mlpackage"):
        export_coreml(tiny, tmp_path / "model.onnx", source)
    assert tiny.unet is not None and tiny.unet.size_multiple == 4
    with pytest.raises(ValueError, match="multiples of 4"):
        export_coreml(tiny, tmp_path / "odd.mlpackage", source, height=36, width=62)
    assert not (tmp_path / "odd.mlpackage").exists()


@pytest.mark.skipif(not ON_MACOS, reason="running a CoreML package needs macOS")
def test_package_matches_pytorch_on_macos(default_export: CoreMLExport) -> None:
    diff = default_export.comparison.max_abs_diff
    assert diff is not None and np.isfinite(diff) and diff <= 2.0 / 255


def test_coremltools_imports_without_native_runtime_noise() -> None:
    """Off macOS coremltools logs "Failed to load _MLModelProxy" eight times on import; export
    drops those and says once what runs here instead (issue 16)."""
    import subprocess
    import sys

    code = (
        "import logging; logging.basicConfig(level=logging.INFO)\n"
        "from vqe.export.coreml import import_coremltools\n"
        "import_coremltools(); import_coremltools()\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "Failed to load" not in result.stdout + result.stderr
    if not ON_MACOS:
        assert result.stderr.count("needs macOS") == 1
