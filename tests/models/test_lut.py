"""Stage 1: LUT layout, trilinear lookup, regularisers and the adaptive LUT stage."""

from __future__ import annotations

import itertools

import pytest
import torch

from vqe.models.lut import (
    NUM_STATISTICS,
    STAT_PERCENTILES,
    LutStage,
    balance_luts,
    degradation_statistics,
    gain_map,
    identity_lut,
    lut_monotonicity,
    lut_total_variation,
    trilinear_lookup,
    weight_sparsity,
)


def tiny_stage(num_luts: int = 3, lut_size: int = 5) -> LutStage:
    return LutStage(num_luts, lut_size, predictor_channels=(4, 8), predictor_input_size=16,
                    predictor_pooled_grid=2)


@pytest.mark.parametrize("size", [2, 9, 33])
def test_identity_lut_returns_the_input(size: int) -> None:
    frames = torch.rand(2, 3, 7, 11)
    frames[0, :, 0, 0] = torch.tensor([0.0, 1.0, 0.5])  # the cube's corners and centre too
    luts = identity_lut(size).expand(2, 3, size, size, size)
    assert torch.allclose(trilinear_lookup(frames, luts), frames, atol=1e-5, rtol=0)


def test_identity_lut_layout() -> None:
    lut = identity_lut(3)
    # lut[c, b, g, r]: red runs along the last axis, blue along the third-to-last.
    assert lut[0, 0, 0, 2] == 1.0 and lut[0, 2, 2, 0] == 0.0
    assert lut[1, 0, 2, 0] == 1.0 and lut[1, 2, 0, 2] == 0.0
    assert lut[2, 2, 0, 0] == 1.0 and lut[2, 0, 2, 2] == 0.0
    assert lut[0, 1, 1, 1] == 0.5


def test_lookup_is_trilinear_interpolation_of_the_corners() -> None:
    torch.manual_seed(0)
    lut = torch.rand(1, 3, 2, 2, 2)  # D = 2: the lattice is the cube's 8 corners
    red, green, blue = 0.25, 0.5, 0.875
    frame = torch.tensor([red, green, blue]).view(1, 3, 1, 1)
    expected = torch.zeros(3)
    for b, g, r in itertools.product((0, 1), repeat=3):
        weight = (red if r else 1 - red) * (green if g else 1 - green) * (blue if b else 1 - blue)
        expected += weight * lut[0, :, b, g, r]
    assert torch.allclose(trilinear_lookup(frame, lut).view(3), expected, atol=1e-6)


def test_lookup_reproduces_an_affine_colour_map() -> None:
    size = 5
    matrix = torch.tensor([[0.8, 0.1, 0.0], [0.05, 0.9, 0.05], [0.0, 0.2, 0.7]])
    offset = torch.tensor([0.05, -0.02, 0.1])
    lut = torch.einsum("ij,jbgr->ibgr", matrix, identity_lut(size)) + offset.view(3, 1, 1, 1)
    frames = torch.rand(1, 3, 5, 6)
    expected = torch.einsum("ij,njhw->nihw", matrix, frames) + offset.view(1, 3, 1, 1)
    assert torch.allclose(trilinear_lookup(frames, lut[None]), expected, atol=1e-5)


def test_lookup_clamps_inputs_to_the_unit_cube() -> None:
    frames = torch.tensor([-0.5, 1.5, 0.25]).view(1, 3, 1, 1)
    looked_up = trilinear_lookup(frames, identity_lut(9)[None])
    assert torch.allclose(looked_up.view(3), torch.tensor([0.0, 1.0, 0.25]), atol=1e-6)


def test_lookup_is_differentiable_in_image_and_lut() -> None:
    torch.manual_seed(1)
    frames = (torch.rand(1, 3, 2, 3, dtype=torch.float64) * 0.9 + 0.05).requires_grad_()
    lut = torch.rand(1, 3, 3, 3, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(trilinear_lookup, (frames, lut), eps=1e-6, atol=1e-5)


def test_lookup_rejects_mismatched_luts() -> None:
    with pytest.raises(ValueError, match="LUTs of shape"):
        trilinear_lookup(torch.rand(2, 3, 4, 4), identity_lut(5)[None])


# --------------------------------------------------------------------------- regularisers


@pytest.mark.parametrize("size", [2, 5])
def test_total_variation_of_known_luts(size: int) -> None:
    identity = identity_lut(size)
    assert lut_total_variation(identity).item() == pytest.approx(1.0 / (size - 1) ** 2)
    assert lut_total_variation(torch.full((3, size, size, size), 0.3)).item() == 0.0
    # A bank of LUTs averages: identity and constant → half the identity's value.
    bank = torch.stack([identity, torch.zeros_like(identity)])
    assert lut_total_variation(bank).item() == pytest.approx(0.5 / (size - 1) ** 2)


@pytest.mark.parametrize("size", [2, 5])
def test_monotonicity_of_known_luts(size: int) -> None:
    identity = identity_lut(size)
    assert lut_monotonicity(identity).item() == 0.0
    assert lut_monotonicity(1.0 - identity).item() == pytest.approx(1.0 / (size - 1))
    red_inverted = identity.clone()
    red_inverted[0] = 1.0 - red_inverted[0]
    assert lut_monotonicity(red_inverted).item() == pytest.approx(1.0 / (3 * (size - 1)))
    # Green output falling with red input (a cross-channel effect) is allowed.
    cross = identity.clone()
    cross[1] = 1.0 - identity[0]
    assert lut_monotonicity(cross).item() == 0.0


def test_weight_sparsity_is_mean_l1_norm() -> None:
    weights = torch.tensor([[1.0, 0.0, 0.0], [0.5, -0.25, 0.75]])
    assert weight_sparsity(weights).item() == pytest.approx((1.0 + 1.5) / 2)


# --------------------------------------------------------------------------- the stage


def test_stage_starts_as_identity() -> None:
    # Near, not exactly, the identity: the small random head and bases 1…N−1 (which make every
    # parameter learn, see test_every_basis_and_head_row_learns) may move it by ~1e-5.
    stage = tiny_stage()
    frames = torch.rand(2, 3, 13, 17)
    output = stage(frames)
    assert torch.allclose(output.weights, torch.tensor([[1.0, 0.0, 0.0]] * 2), atol=1e-4)
    assert output.luts.shape == (2, 3, 5, 5, 5)
    assert torch.allclose(output.frames, frames, atol=1e-4)
    assert torch.equal(stage.basis[0], identity_lut(5))
    assert stage.basis[1:].abs().max() < 1e-2


def test_blend_is_the_weighted_sum_of_the_basis() -> None:
    stage = tiny_stage(num_luts=2)
    with torch.no_grad():
        stage.basis[1] = torch.rand_like(stage.basis[1])
    weights = torch.tensor([[0.5, 2.0]])
    expected = 0.5 * stage.basis[0] + 2.0 * stage.basis[1]
    assert torch.allclose(stage.blend(weights)[0], expected, atol=1e-6)
    with pytest.raises(ValueError, match="B×2 weights"):
        stage.blend(torch.ones(1, 3))


def test_external_weights_bypass_the_predictor() -> None:
    stage = tiny_stage()
    frames = torch.rand(1, 3, 8, 8)
    smoothed = torch.tensor([[0.5, 0.0, 0.0]])  # half the identity LUT halves the frame
    output = stage(frames, smoothed)
    assert output.weights is smoothed
    assert torch.allclose(output.frames, 0.5 * frames, atol=1e-5)


def test_predictor_rejects_too_many_strided_convs() -> None:
    with pytest.raises(ValueError, match="pooled_grid"):
        LutStage(3, 5, predictor_channels=(4, 8, 16), predictor_input_size=8,
                 predictor_pooled_grid=2)


def dark_and_bluish_frames(count: int, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``count`` dark frames (need ×2 brightness) then ``count`` bluish ones (need blue − 0.25).

    Their colours overlap (e.g. (0.3, 0.3, 0.4) occurs in both kinds, with different targets), so
    no single LUT fits both: the stage must tell the kinds apart and blend differently.
    """
    generator = torch.Generator().manual_seed(0)
    dark_target = torch.rand(count, 3, size, size, generator=generator)
    bluish_target = 0.5 * torch.rand(count, 3, size, size, generator=generator)
    bluish = bluish_target.clone()
    bluish[:, 2] += 0.25
    return torch.cat([0.5 * dark_target, bluish]), torch.cat([dark_target, bluish_target])


def fit_losses(
    stage: LutStage, frames: torch.Tensor, targets: torch.Tensor, steps: int, lr: float
) -> list[float]:
    """Adam on the stage's MSE to ``targets`` for ``steps`` steps: the loss before each step."""
    optimiser = torch.optim.Adam(stage.parameters(), lr=lr)
    losses = []
    for _ in range(steps):
        loss = (stage(frames).frames - targets).square().mean()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(float(loss.detach()))
    return losses


def test_every_basis_and_head_row_learns() -> None:
    torch.manual_seed(0)
    stage = LutStage(3, 9, predictor_channels=(8, 16), predictor_input_size=16,
                     predictor_pooled_grid=2)
    frames, targets = dark_and_bluish_frames(count=4, size=16)
    basis_init = stage.basis.detach().clone()
    head_init = stage.predictor.head.weight.detach().clone()
    losses = fit_losses(stage, frames, targets, steps=60, lr=1e-2)

    # (a) every basis LUT moved well beyond its init noise (std 1e-3) …
    basis_moved = (stage.basis.detach() - basis_init).abs().flatten(1).mean(dim=1)
    assert (basis_moved > 5e-3).all(), basis_moved
    # (b) … and so did every row of the weight head (a zero init left rows 1… at exactly 0).
    head_moved = (stage.predictor.head.weight.detach() - head_init).norm(dim=1)
    assert (head_moved > 5e-2).all(), head_moved
    # (c) The loss fell by more than 50×. Rescaling basis 0 per frame alone (all the old
    # zero-initialised stage could learn) only reaches ~1/20 of the initial loss here.
    assert losses[-1] < 0.02 * losses[0], (losses[0], losses[-1])
    # (d) Image-adaptive beyond a brightness scale: the two kinds blend the bases in different
    # proportions, not just by a different overall factor.
    with torch.no_grad():
        weights = stage.predict_weights(frames)
    dark, bluish = weights[:4].mean(dim=0), weights[4:].mean(dim=0)
    assert torch.cosine_similarity(dark, bluish, dim=0) < 0.9, (dark, bluish)


# --------------------------------------------------------------------------- degradation cues


def log_scaled(values: torch.Tensor) -> torch.Tensor:
    """The statistics' log scale: log(x + 1/256) mapped so that 0 → 0 and 1 → 1."""
    eps = 1.0 / 256
    low, high = torch.log(torch.tensor(eps)), torch.log(torch.tensor(1.0 + eps))
    return (torch.log(values + eps) - low) / (high - low)


def test_statistics_percentiles_match_torch_quantile_in_log_space() -> None:
    generator = torch.Generator().manual_seed(0)
    frames = torch.rand(2, 3, 64, 64, generator=generator) ** 3  # dark, like the inputs
    stats = degradation_statistics(frames, 64)
    assert stats.shape == (2, NUM_STATISTICS)
    count = len(STAT_PERCENTILES)
    percentiles = stats[:, 3 : 3 + 3 * count].view(2, 3, count)
    levels = torch.tensor(STAT_PERCENTILES)
    exact = torch.quantile(log_scaled(frames).flatten(2), levels, dim=-1).permute(1, 2, 0)
    assert (percentiles - exact).abs().max() < 1.5 / 31  # within about one histogram bin
    torch.testing.assert_close(stats[:, :3], frames.mean(dim=(2, 3)))


def test_statistics_read_the_cast_whatever_the_scene() -> None:
    generator = torch.Generator().manual_seed(1)
    scenes = 0.1 + 0.5 * torch.rand(2, 3, 64, 64, generator=generator)  # no clipping
    scenes[1] = scenes[1].flip(-1) * torch.tensor([0.6, 1.0, 0.9]).view(3, 1, 1)  # other scene
    cast = scenes * torch.tensor([1.25, 1.0, 0.8]).view(1, 3, 1, 1)  # a warm white balance
    base = 3 + 3 * len(STAT_PERCENTILES)
    shift = degradation_statistics(cast, 64) - degradation_statistics(scenes, 64)
    chroma_shift = shift[:, base : base + 2]  # mean log(R/G), log(B/G)
    expected = torch.log(torch.tensor([1.25, 0.8]))
    assert (chroma_shift - expected).abs().max() < 0.03  # the same shift in both scenes
    histogram = degradation_statistics(cast, 64)[:, base + 4 :]
    assert torch.allclose(histogram.sum(dim=1), torch.ones(2), atol=1e-5)


def test_gain_map_is_a_smooth_positive_field_that_starts_at_one() -> None:
    ones = gain_map(torch.zeros(2, 12), (3, 4), (24, 40))
    assert ones.shape == (2, 1, 24, 40) and torch.allclose(ones, torch.ones_like(ones))
    coefficients = torch.log(torch.arange(1.0, 13.0)).view(1, 12)
    field = gain_map(coefficients, (3, 4), (27, 36))  # 9×9-pixel cells
    assert field.min() >= 1.0 - 1e-6 and field.max() <= 12.0 + 1e-5
    torch.testing.assert_close(field[0, 0, 4, 4], torch.tensor(1.0))  # centre of cell (0, 0)
    torch.testing.assert_close(field[0, 0, 22, 31], torch.tensor(12.0))  # of cell (2, 3)
    assert field.diff(dim=-1).abs().max() < 4.0 / 9  # a ramp between cells, no steps


def test_stage_with_statistics_and_gain_map_starts_as_identity_and_applies_given_gains() -> None:
    torch.manual_seed(0)
    stage = LutStage(3, 5, predictor_channels=(4, 8), predictor_input_size=16,
                     predictor_pooled_grid=2, statistics=True, gain_grid=[2, 3])
    assert stage.num_coefficients == 3 + 6
    frames = torch.rand(2, 3, 20, 30)
    with torch.no_grad():
        output = stage(frames)
    assert torch.allclose(output.frames, frames, atol=1e-3)
    assert output.log_gains is not None and output.log_gains.shape == (2, 1, 2, 3)
    gains = 0.4 * torch.randn(2, 6)
    weights = torch.cat([torch.tensor([[1.0, 0.0, 0.0]] * 2), gains], dim=1)
    with torch.no_grad():
        lit = stage(frames, weights).frames
        plain = stage(frames, torch.cat([weights[:, :3], torch.zeros(2, 6)], dim=1)).frames
    assert torch.allclose(lit, plain * gain_map(gains, (2, 3), (20, 30)), atol=1e-6)
    with pytest.raises(ValueError, match="coefficients"):
        stage(frames, weights[:, :3])


def test_gain_map_learns_to_undo_uneven_key_light() -> None:
    """A gradient reaches the gain rows of the head, and a few steps fit a light fall-off."""
    torch.manual_seed(0)
    stage = LutStage(1, 3, predictor_channels=(4,), predictor_input_size=8,
                     predictor_pooled_grid=2, gain_grid=[2, 2])
    target = 0.2 + 0.6 * torch.rand(4, 3, 16, 16)
    fall_off = torch.linspace(1.0, 0.5, 16).view(1, 1, 1, 16)
    frames = target * fall_off
    losses = fit_losses(stage, frames, target, steps=60, lr=0.05)
    assert losses[-1] < 0.1 * losses[0]


def test_white_balance_starts_at_one_and_scales_each_output_channel() -> None:
    torch.manual_seed(0)
    stage = LutStage(3, 5, predictor_channels=(4, 8), predictor_input_size=16,
                     predictor_pooled_grid=2, statistics=True, gain_grid=[2, 3],
                     white_balance=True)
    assert stage.num_coefficients == 3 + 3 + 6
    frames = torch.rand(2, 3, 20, 30)
    with torch.no_grad():
        assert torch.allclose(stage(frames).frames, frames, atol=1e-3)
    blending = torch.tensor([[1.0, 0.0, 0.0]] * 2)
    balance = torch.log(torch.tensor([[0.5, 1.0, 2.0], [1.25, 0.8, 1.0]]))
    map_gains = 0.3 * torch.randn(2, 6)
    with torch.no_grad():
        balanced = stage(frames, torch.cat([blending, balance, map_gains], dim=1)).frames
        plain = stage(frames, torch.cat([blending, torch.zeros(2, 3), map_gains], dim=1)).frames
    expected = plain * torch.exp(balance).view(2, 3, 1, 1)
    assert torch.allclose(balanced, expected, atol=1e-5)
    # The same scaling of any table with the output channel on axis 1 (LUTs, atlases).
    atlases = torch.rand(2, 3, 7, 9)
    assert torch.allclose(balance_luts(atlases, balance)[1, 0], 1.25 * atlases[1, 0])


def test_white_balance_learns_to_undo_a_cast_the_frame_shows() -> None:
    """Frames under a warm or a cool cast: the predictor reads which one from the statistics
    and the balance gains take it out, a gradient reaching their head rows from step 1."""
    torch.manual_seed(0)
    stage = LutStage(1, 3, predictor_channels=(4,), predictor_input_size=8,
                     predictor_pooled_grid=2, statistics=True, white_balance=True)
    target = 0.2 + 0.5 * torch.rand(8, 3, 16, 16)
    casts = torch.tensor([[1.25, 1.0, 0.8], [0.8, 1.0, 1.25]]).repeat(4, 1).view(8, 3, 1, 1)
    frames = target * casts
    losses = fit_losses(stage, frames, target, steps=150, lr=0.02)
    assert losses[-1] < 0.05 * losses[0]
    with torch.no_grad():
        _, balance, _ = stage.split_coefficients(stage.predict_weights(frames))
    assert balance is not None
    # The warm/cool axis (red against blue) is the balance's: the one basis only shares in
    # the level, which gain is 1 being a matter of exposure.
    red_over_blue = torch.exp(balance[:2, 0] - balance[:2, 2])
    cast_red_over_blue = casts[:2, 0, 0, 0] / casts[:2, 2, 0, 0]
    assert torch.allclose(red_over_blue * cast_red_over_blue, torch.ones(2), atol=0.1)
