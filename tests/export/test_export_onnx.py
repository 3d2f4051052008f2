"""ONNX export: parity with PyTorch under onnxruntime, graph I/O and metadata, refusals."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
import torch.nn.functional as F
import yaml
from model_helpers import trained_like
from skimage import data as natural_images

from vqe.cli.export import main
from vqe.conventions import rgb_uint8_to_tensor
from vqe.export import onnx as onnx_export
from vqe.export.metadata import preset_source
from vqe.export.onnx import (
    OnnxExport,
    OnnxParityError,
    export_onnx,
    session,
    stage_paths,
)
from vqe.macs import MacBudgetError
from vqe.models.deploy import build_deploy_model
from vqe.models.enhancer import Enhancer
from vqe.models.loading import enhancer_from_preset

HEIGHT, WIDTH = 60, 100  # not a multiple of the U-Net's 16: its edge padding is exported too


def photo(height: int, width: int) -> torch.Tensor:
    """scikit-image's astronaut, resized: a natural frame, unlike the random export check."""
    image = rgb_uint8_to_tensor(natural_images.astronaut())[None]
    return F.interpolate(image, size=(height, width), mode="area")


@pytest.fixture(scope="module")
def default_export(tmp_path_factory: pytest.TempPathFactory) -> tuple[Enhancer, OnnxExport]:
    """The default preset (lut_unet) with trained-like weights, exported once."""
    enhancer = trained_like(enhancer_from_preset("lut_unet"))
    out = tmp_path_factory.mktemp("onnx") / "lut_unet.onnx"
    return enhancer, export_onnx(enhancer, out, preset_source("lut_unet"), HEIGHT, WIDTH)


def test_onnxruntime_matches_pytorch(default_export: tuple[Enhancer, OnnxExport]) -> None:
    enhancer, export = default_export
    out = export.path
    assert set(export.max_abs_diff) == {out.name, *(p.name for p in stage_paths(out))}
    assert max(export.max_abs_diff.values()) <= onnx_export.PARITY_TOLERANCE
    assert "max |onnxruntime − PyTorch|" in export.summary()

    # Independently: a natural frame through the files on disk.
    frame = photo(HEIGHT, WIDTH)
    deploy = build_deploy_model(enhancer)
    with torch.no_grad():
        expected = deploy(frame).numpy()
        weights = deploy.lut.predict_weights(frame).numpy() + 0.3  # off the predicted path
        expected_with = deploy.enhance_with_weights(frame, torch.from_numpy(weights)).numpy()
    (got,) = session(out).run(None, {"frame": frame.numpy()})
    assert np.abs(expected - frame.numpy()).mean() > 0.01  # the model does change the frame
    # The exporter's own tolerance: the runtimes may sum convolutions in another order (with
    # another thread count: 1.003e-4 was seen under pytest -n 2), a twentieth of an 8-bit step.
    assert np.abs(got - expected).max() <= onnx_export.PARITY_TOLERANCE
    lut_graph, with_graph = stage_paths(out)
    (got_weights,) = session(lut_graph).run(None, {"frame": frame.numpy()})
    (got_with,) = session(with_graph).run(None, {"frame": frame.numpy(), "lut_weights": weights})
    assert np.abs(got_weights + 0.3 - weights).max() <= 1e-5
    assert np.abs(got_with - expected_with).max() <= onnx_export.PARITY_TOLERANCE


def test_graph_io_and_metadata(default_export: tuple[Enhancer, OnnxExport]) -> None:
    _, export = default_export
    model = onnx.load(str(export.path))
    onnx.checker.check_model(model)

    def shape(value) -> list[int]:
        return [dim.dim_value for dim in value.type.tensor_type.shape.dim]

    size = [1, 3, HEIGHT, WIDTH]
    assert [(v.name, shape(v)) for v in model.graph.input] == [("frame", size)]
    assert [(v.name, shape(v)) for v in model.graph.output] == [("enhanced", size)]
    metadata = {prop.key: prop.value for prop in model.metadata_props}
    assert metadata["vqe.source_checkpoint"] == "preset:lut_unet"
    assert metadata["vqe.macs_per_1280x720_frame"] == str(export.macs_720p)
    config = yaml.safe_load(metadata["vqe.config"])  # the composed config, not the preset file
    assert config["lut"]["lut_size"] == 33 and config["unet"]["widths"] == [24, 48, 96, 192]


def test_model_without_lut_stage_has_no_stage_graphs(tmp_path: Path) -> None:
    unet_only = enhancer_from_preset("unet", ["unet.widths=[8,8,8,8]"])
    export = export_onnx(unet_only, tmp_path / "unet.onnx", preset_source("unet"), 32, 48)
    assert export.stage_graphs == []  # nothing to smooth
    assert sorted(path.name for path in tmp_path.iterdir()) == ["unet.onnx"]  # no leftovers
    assert max(export.max_abs_diff.values()) <= onnx_export.PARITY_TOLERANCE


def test_parity_failure_keeps_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(onnx_export, "PARITY_TOLERANCE", -1.0)  # a bound no result can meet
    with pytest.raises(OnnxParityError, match="not saved"):
        export_onnx(enhancer_from_preset("tiny"), tmp_path / "t.onnx", preset_source("tiny"),
                    height=32, width=48)  # fmt: skip
    assert list(tmp_path.iterdir()) == []


def test_refusals(tmp_path: Path) -> None:
    wide = enhancer_from_preset("tiny", ["unet.widths=[48,96]"])  # ≈ 30 GMAC at 720p
    with pytest.raises(MacBudgetError):
        export_onnx(wide, tmp_path / "wide.onnx", preset_source("tiny"), 32, 48)
    existing = tmp_path / "tiny.onnx"
    existing.write_bytes(b"keep")
    with pytest.raises(FileExistsError, match="--overwrite"):
        export_onnx(enhancer_from_preset("tiny"), existing, preset_source("tiny"), 32, 48)
    assert existing.read_bytes() == b"keep"
    with pytest.raises(SystemExit) as exit_info:  # int8 is a CoreML option
        main([str(tmp_path / "x.ckpt"), "--format", "onnx", "--precision", "int8"])
    assert exit_info.value.code == 2


def test_spatial_lut_stage_graphs_take_the_region_weights(tmp_path: Path) -> None:
    """The region-wise stage exports like the global one: ``X.lut_weights.onnx`` gives the
    N·cells (+ gains) coefficients the stream smooths, ``X.with_weights.onnx`` applies given ones,
    each within parity of PyTorch on a natural frame."""
    enhancer = trained_like(enhancer_from_preset("spatial_lut"))
    out = tmp_path / "spatial_lut.onnx"
    export = export_onnx(enhancer, out, preset_source("spatial_lut"), HEIGHT, WIDTH)
    assert max(export.max_abs_diff.values()) <= onnx_export.PARITY_TOLERANCE
    frame = photo(HEIGHT, WIDTH)
    lut_graph, with_graph = stage_paths(out)
    (weights,) = session(lut_graph).run(None, {"frame": frame.numpy()})
    assert weights.shape == (1, enhancer.lut.num_coefficients)
    # Move only the left-most column of cells off the prediction: the output must follow.
    cells = weights[:, : enhancer.lut.num_weights].reshape(1, enhancer.lut.num_luts, 6, 8)
    cells[:, :, :, 0] += 0.5
    deploy = build_deploy_model(enhancer)
    (got,) = session(with_graph).run(None, {"frame": frame.numpy(), "lut_weights": weights})
    with torch.no_grad():
        expected = deploy.enhance_with_weights(frame, torch.from_numpy(weights)).numpy()
        predicted = deploy(frame).numpy()
    assert np.abs(got - expected).max() <= onnx_export.PARITY_TOLERANCE
    assert np.abs(got - predicted)[..., : WIDTH // 8].mean() > 0.01  # the moved cells changed
