"""The two-stage enhancer: presets, identity at init, gradients, freezing, external weights."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from vqe.models.enhancer import Enhancer
from vqe.models.loading import enhancer_from_preset
from vqe.models.lut import LutStage, lut_monotonicity, lut_total_variation, weight_sparsity
from vqe.models.unet import UNetStage


def perturb_(model: nn.Module, scale: float = 0.05) -> nn.Module:
    """Move every parameter off its initial value (zero-initialised ones included)."""
    torch.manual_seed(0)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(torch.randn_like(parameter) * scale)
    return model


@pytest.mark.parametrize(
    ("preset", "has_lut", "has_unet"),
    [("lut", True, False), ("unet", False, True), ("lut_unet", True, True), ("tiny", True, True)],
)
def test_presets_build_the_right_stages(preset: str, has_lut: bool, has_unet: bool) -> None:
    enhancer = enhancer_from_preset(preset)
    assert isinstance(enhancer, Enhancer)
    assert isinstance(enhancer.lut, LutStage) == has_lut
    assert isinstance(enhancer.unet, UNetStage) == has_unet


@pytest.mark.parametrize("shape", [(1, 3, 21, 37), (2, 3, 32, 48)])
def test_untrained_enhancer_returns_its_input(shape: tuple[int, ...]) -> None:
    enhancer = enhancer_from_preset("tiny")
    frames = torch.rand(shape)
    output = enhancer.forward_with_weights(frames)
    assert output.frames.shape == frames.shape
    assert torch.allclose(output.frames, frames, atol=1e-3)
    # 3 blending weights, then the 3×4 log-gains of the tiny preset's gain map, all ≈ identity.
    assert output.lut_weights.shape == (shape[0], 3 + 3 * 4)
    assert output.lut_weights[:, 3:].abs().max() < 1e-3
    assert output.luts.shape == (shape[0], 3, 9, 9, 9)


def test_every_trainable_parameter_receives_a_gradient_after_training() -> None:
    # (At init: tests/models/test_model_contract.py.) Away from the init, with the LUT
    # regularisers of the loss too.
    enhancer = enhancer_from_preset("tiny")
    frames = torch.rand(2, 3, 24, 40)
    perturb_(enhancer)
    output = enhancer.forward_with_weights(frames)
    regularisers = (
        lut_total_variation(output.luts),
        lut_monotonicity(output.luts),
        weight_sparsity(output.lut_weights),
    )
    loss = (output.frames - 0.3).square().mean() + sum(regularisers)
    loss.backward()
    for name, parameter in enhancer.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name


def test_frozen_stage_gets_no_gradient_and_stays_in_eval_mode() -> None:
    enhancer = enhancer_from_preset("tiny", ["freeze_lut=true"])
    enhancer.train()
    assert not enhancer.lut.training and enhancer.unet.training
    assert not any(p.requires_grad for p in enhancer.lut.parameters())
    assert all(p.requires_grad for p in enhancer.unet.parameters())
    perturb_(enhancer)
    enhancer(torch.rand(1, 3, 16, 16)).mean().backward()
    assert all(p.grad is None for p in enhancer.lut.parameters())
    assert all(p.grad is not None for p in enhancer.unet.parameters())


def test_external_lut_weights_replace_the_predicted_ones() -> None:
    enhancer = enhancer_from_preset("tiny")
    frames = torch.rand(1, 3, 16, 24)
    # Half the identity LUT, then log-gains 0 (gain 1) on the tiny preset's 3×4 gain grid.
    smoothed = torch.cat([torch.tensor([[0.5, 0.0, 0.0]]), torch.zeros(1, 12)], dim=1)
    output = enhancer.forward_with_weights(frames, lut_weights=smoothed)
    assert output.lut_weights is smoothed
    assert torch.allclose(output.lut_frames, 0.5 * frames, atol=1e-5)
    assert torch.allclose(output.frames, 0.5 * frames, atol=1e-3)  # + the untrained U-Net
    predicted = enhancer.predict_lut_weights(frames)
    identity = torch.cat([torch.tensor([[1.0, 0.0, 0.0]]), torch.zeros(1, 12)], dim=1)
    assert torch.allclose(predicted, identity, atol=1e-3)


def test_single_stage_enhancers() -> None:
    frames = torch.rand(1, 3, 16, 16)
    unet_only = enhancer_from_preset("tiny", ["lut=null"])
    output = unet_only.forward_with_weights(frames)
    assert output.lut_weights is None and output.lut_frames is None
    assert output.luts is None
    with pytest.raises(ValueError, match="no LUT stage"):
        unet_only.forward_with_weights(frames, lut_weights=torch.ones(1, 3))
    lut_only = enhancer_from_preset("tiny", ["unet=null"])
    assert torch.equal(lut_only.forward_with_weights(frames).lut_frames, lut_only(frames))
    with pytest.raises(ValueError, match="at least one stage"):
        Enhancer(None, None)


def test_output_is_clamped_to_the_unit_range() -> None:
    enhancer = enhancer_from_preset("tiny", ["unet=null"])
    frames = torch.full((1, 3, 4, 4), 0.8)
    doubled = enhancer.forward_with_weights(
        frames, torch.cat([torch.tensor([[2.0, 0.0, 0.0]]), torch.zeros(1, 12)], dim=1)
    )
    assert torch.equal(doubled.frames, torch.ones(1, 3, 4, 4))


def test_regularisers_at_init() -> None:
    enhancer = enhancer_from_preset("tiny")
    output = enhancer.forward_with_weights(torch.rand(2, 3, 8, 8))
    assert weight_sparsity(output.lut_weights).item() == pytest.approx(1.0, abs=1e-3)  # ≈ (1,0,0)
    assert lut_total_variation(output.luts).item() == pytest.approx(1.0 / 8**2, rel=1e-3)
    assert lut_monotonicity(output.luts).item() == 0.0


def test_bad_input_gets_a_clear_error() -> None:
    with pytest.raises(ValueError, match="N×3×H×W"):
        enhancer_from_preset("tiny")(torch.rand(3, 16, 16))
