"""Contract of every enhancer preset on disk (timm-style): it builds, starts at the identity,
every trainable parameter gets a gradient from the very first backward pass, its deploy graph
equals its training graph, its MAC report fits the challenge budget, and it exports (ONNX with
onnxruntime parity; an fp16 CoreML ML Program that passes the Neural Engine checks).

The presets are the files found in ``configs/model_vqe/``, so a new preset is covered without
touching this file. Each is built the way ``train(cfg)`` builds it: ``vqe.yaml`` composed with
``model_vqe=<preset>``, then ``hydra.utils.instantiate``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from config_helpers import compose_config
from hydra.utils import instantiate
from model_helpers import trained_like
from omegaconf import OmegaConf

from vqe.config_root import CONFIG_DIR
from vqe.conventions import MAC_BUDGET
from vqe.export import onnx as onnx_export
from vqe.export.metadata import preset_source
from vqe.macs import count_macs
from vqe.models.deploy import build_deploy_model
from vqe.models.enhancer import Enhancer

PRESETS = sorted(path.stem for path in (CONFIG_DIR / "model_vqe").glob("*.yaml"))


def build_preset(preset: str) -> Enhancer:
    cfg = compose_config("vqe", [f"model_vqe={preset}"])
    enhancer = instantiate(OmegaConf.to_container(cfg.model_vqe, resolve=True))
    assert isinstance(enhancer, Enhancer)
    return enhancer


def test_the_presets_are_found() -> None:
    assert {"lut", "lut_unet", "tiny", "unet"} <= set(PRESETS)
    # The spatially aware stage and the NTIRE 2025 entries (issue 28).
    assert {"spatial_lut", "tmobile", "summer", "maqic"} <= set(PRESETS)


@pytest.mark.parametrize("preset", PRESETS)
def test_untrained_preset_is_the_identity(preset: str) -> None:
    torch.manual_seed(0)
    enhancer = build_preset(preset).eval()
    frames = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(enhancer(frames), frames, atol=1e-3)


@pytest.mark.parametrize("preset", PRESETS)
def test_first_backward_reaches_every_trainable_parameter(preset: str) -> None:
    torch.manual_seed(0)
    enhancer = build_preset(preset).train()
    frames, targets = torch.rand(2, 3, 64, 64), torch.rand(2, 3, 64, 64)
    (enhancer(frames) - targets).square().mean().backward()
    trainable = [(name, p) for name, p in enhancer.named_parameters() if p.requires_grad]
    assert trainable
    dead = [name for name, p in trainable if p.grad is None or not p.grad.abs().sum() > 0]
    broken = [name for name, p in trainable if p.grad is not None and not p.grad.isfinite().all()]
    assert not dead, f"{preset}: no gradient at the first step for {dead}"
    assert not broken, f"{preset}: non-finite gradient for {broken}"
    if enhancer.lut is not None:
        # The LUT bank is one tensor and the weight head one matrix: check each basis LUT and
        # each output row on its own, since any one of them alone can be dead.
        for name, grad in (
            ("basis", enhancer.lut.basis.grad),
            ("head row", enhancer.lut.predictor.head.weight.grad),
        ):
            per_lut = grad.abs().flatten(1).sum(dim=1)
            assert (per_lut > 0).all(), f"{preset}: {name}s without gradient: {per_lut}"


@pytest.mark.parametrize("preset", PRESETS)
def test_deploy_graph_equals_the_training_graph(preset: str) -> None:
    enhancer = trained_like(build_preset(preset))  # random weights: not the trivial identity
    deploy = build_deploy_model(enhancer)
    frames = torch.rand(2, 3, 40, 56, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = enhancer(frames)
        assert not torch.allclose(expected, frames, atol=1e-2)
        assert (deploy(frames) - expected).abs().max().item() <= 1e-4


@pytest.mark.parametrize("preset", PRESETS)
def test_mac_report_fits_the_budget(preset: str) -> None:
    report = count_macs(build_deploy_model(build_preset(preset)))
    assert (report.height, report.width) == (720, 1280)
    assert 0 < report.total <= MAC_BUDGET, f"{preset}: {report.total:,} MACs per 720p frame"


@pytest.mark.parametrize("preset", PRESETS)
def test_exports_to_onnx_with_parity(preset: str, tmp_path: Path) -> None:
    enhancer = trained_like(build_preset(preset))
    export = onnx_export.export_onnx(
        enhancer, tmp_path / f"{preset}.onnx", preset_source(preset), 64, 96
    )
    assert export.path.is_file()
    assert max(export.max_abs_diff.values()) <= onnx_export.PARITY_TOLERANCE


@pytest.mark.parametrize("preset", PRESETS)
def test_converts_to_an_fp16_ml_program_for_the_neural_engine(preset: str) -> None:
    from vqe.export.coreml import check_program, convert, program_summary  # converts on Linux

    height, width = 64, 96
    mlmodel = convert(build_deploy_model(trained_like(build_preset(preset))), height, width)
    problems = check_program(program_summary(mlmodel.get_spec()), height, width)
    assert not problems, f"{preset}: {problems}"
