"""Contract of every enhancer preset on disk (timm-style): it starts at the identity, and every
trainable parameter gets a gradient from the very first backward pass.

The presets are the files found in ``configs/model_vqe/``, so a new preset is covered without
touching this file. Each is built the way ``train(cfg)`` builds it: ``vqe.yaml`` composed with
``model_vqe=<preset>``, then ``hydra.utils.instantiate``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import OmegaConf

from vqe.models.enhancer import Enhancer

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"
PRESETS = sorted(path.stem for path in (CONFIG_DIR / "model_vqe").glob("*.yaml"))


def build_preset(preset: str) -> Enhancer:
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose(config_name="vqe", overrides=[f"model_vqe={preset}"])
    enhancer = instantiate(OmegaConf.to_container(cfg.model_vqe, resolve=True))
    assert isinstance(enhancer, Enhancer)
    return enhancer


def test_the_presets_are_found() -> None:
    assert {"lut", "lut_unet", "tiny", "unet"} <= set(PRESETS)


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
