"""The region-wise LUT stage: identity at init, per-pixel LUT semantics, deploy graph equal to the
training graph, the video path's coefficients, and a relighting task no global LUT can solve."""

from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn.functional as F
from model_helpers import trained_like

from vqe.inference.backends import TorchBackend, tiled_backend
from vqe.models.config_tree import build_from_tree
from vqe.models.deploy import DeploySpatialLutStage, build_deploy_model
from vqe.models.enhancer import Enhancer
from vqe.models.loading import compose_preset, enhancer_from_preset
from vqe.models.lut import LutStage, identity_lut, lut_monotonicity, trilinear_lookup
from vqe.models.spatial_lut import SpatialLutStage

#: A small stage for fast tests: 3 bases of 9³, a 2×4 weight grid, a 32² predictor input.
SMALL = dict(
    num_luts=3,
    lut_size=9,
    weight_grid=[2, 4],
    predictor_channels=[8, 16],
    predictor_input_size=32,
    predictor_pooled_grid=2,
)


def smooth_basis(stage: SpatialLutStage, generator: torch.Generator) -> None:
    """Bases that are clearly not the identity but smooth (steps ≲ 0.1 per lattice cell), as
    trained ones are: tone curves and cross-channel mixes of the identity."""
    size = stage.lut_size
    identity = identity_lut(size)
    with torch.no_grad():
        for index in range(1, stage.num_luts):
            mix = torch.eye(3) + 0.3 * torch.randn(3, 3, generator=generator)
            stage.basis[index] = torch.einsum("oc,cbgr->obgr", mix, identity**0.8)


def test_untrained_stage_is_the_identity_in_every_cell() -> None:
    torch.manual_seed(0)
    stage = SpatialLutStage(**SMALL, statistics=True, gain_grid=[3, 4]).eval()
    frames = torch.rand(2, 3, 40, 56)
    with torch.no_grad():
        output = stage(frames)
    assert (output.frames - frames).abs().max() < 1e-3
    cells = output.weights[:, : stage.num_weights].view(2, stage.num_luts, stage.num_cells)
    assert torch.allclose(cells[:, 0], torch.ones(2, stage.num_cells), atol=1e-3)
    assert cells[:, 1:].abs().max() < 1e-3
    # One LUT per cell, each ≈ the identity: monotone, as the regulariser sees them.
    assert output.luts.shape == (2, stage.num_cells, 3, 9, 9, 9)
    assert (output.luts - identity_lut(9)).abs().max() < 1e-2
    assert lut_monotonicity(output.luts).item() < 1e-4


def test_uniform_weights_equal_the_global_stage() -> None:
    """Every cell with the same weights is the global stage's blended-LUT lookup."""
    torch.manual_seed(1)
    spatial = SpatialLutStage(**SMALL)
    smooth_basis(spatial, torch.Generator().manual_seed(1))
    frames = torch.rand(2, 3, 24, 40)
    weights = torch.tensor([[0.7, 0.4, -0.1], [1.0, -0.3, 0.5]])
    per_cell = weights.repeat_interleave(spatial.num_cells, dim=1)  # basis-major
    blended = (weights @ spatial.basis.detach().flatten(1)).view(2, 3, 9, 9, 9)
    with torch.no_grad():
        got = spatial(frames, per_cell).frames
    assert (got - trilinear_lookup(frames, blended)).abs().max() < 1e-5


def test_each_region_gets_its_own_correction() -> None:
    """Left cells on an inverting basis, right cells on the identity: each half is corrected
    its own way, and only the columns between the two cell centres mix them."""
    stage = SpatialLutStage(**{**SMALL, "weight_grid": [1, 2]})
    with torch.no_grad():
        stage.basis[1] = 1.0 - identity_lut(9)
    frames = torch.rand(1, 3, 16, 64)
    cells = torch.zeros(1, 3, 1, 2)  # basis × rows × columns
    cells[0, 1, 0, 0] = 1.0  # left cell: the inversion
    cells[0, 0, 0, 1] = 1.0  # right cell: the identity
    with torch.no_grad():
        out = stage(frames, cells.flatten(1)).frames
    # Cell centres at columns 16 and 48 (align_corners=False): pure outside, a ramp between.
    assert torch.allclose(out[..., :16], 1.0 - frames[..., :16], atol=1e-5)
    assert torch.allclose(out[..., 48:], frames[..., 48:], atol=1e-5)


def test_deploy_graph_equals_the_training_graph() -> None:
    torch.manual_seed(2)
    stage = SpatialLutStage(**SMALL, statistics=True, gain_grid=[3, 4])
    smooth_basis(stage, torch.Generator().manual_seed(2))
    enhancer = Enhancer(lut=stage).eval()
    deploy = build_deploy_model(enhancer)
    assert isinstance(deploy.lut, DeploySpatialLutStage)
    frames = torch.rand(3, 3, 36, 52, generator=torch.Generator().manual_seed(3))
    weights = enhancer.predict_lut_weights(frames).detach()
    weights = weights + 0.3 * torch.randn(weights.shape, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        expected = enhancer.forward_with_weights(frames, weights).frames
        assert not torch.allclose(expected, frames, atol=5e-2)  # a real transformation
        assert (deploy.enhance_with_weights(frames, weights) - expected).abs().max() < 1e-5
        assert (deploy(frames) - enhancer(frames)).abs().max() < 1e-5
        # The layout the U-Net asks for, with the same values.
        nhwc = deploy.lut.apply_weights(frames, weights, torch.channels_last)
        assert nhwc.is_contiguous(memory_format=torch.channels_last)
        assert (nhwc.clamp(0, 1) - expected).abs().max() < 1e-5
        assert torch.equal(deploy.lut.predict_weights(frames), enhancer.predict_lut_weights(frames))
        # Traced, as exported (the atlas lookup; eagerly on the CPU the fused kernel may run).
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer warnings on shape checks
            traced = torch.jit.trace(deploy, frames[:1])
        assert (traced(frames[:1]) - enhancer(frames[:1])).abs().max() < 1e-5


@pytest.mark.parametrize("preset", ["spatial_lut", "maqic"])
def test_video_backend_applies_given_coefficients(preset: str) -> None:
    """The stream's path: the coefficients are read, (smoothed,) and given back."""
    enhancer = trained_like(enhancer_from_preset(preset))
    backend = TorchBackend(enhancer, torch.device("cpu"))
    frames = torch.rand(2, 3, 48, 64, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        weights = backend.predict_lut_weights(frames)
        assert weights.shape == (2, enhancer.lut.num_coefficients)
        expected = enhancer.forward_with_weights(frames, weights).frames
        assert (backend.enhance_with_weights(frames, weights) - expected).abs().max() < 1e-4


def test_tiled_inference_keeps_the_weight_maps_frame_wide() -> None:
    """Cut into tiles, each tile must still see the frame's weight map, not its own stretched
    copy: the LUT-first tiled backend applies the stage to whole frames (no U-Net here, so the
    tiled result must equal the whole-frame one exactly)."""
    enhancer = trained_like(enhancer_from_preset("maqic"))
    backend = TorchBackend(enhancer, torch.device("cpu"))
    frames = torch.rand(1, 3, 48, 64, generator=torch.Generator().manual_seed(6))
    with torch.no_grad():
        whole = backend.enhance(frames)
        tiled = tiled_backend(backend, tile=16, overlap=0).enhance(frames)
    assert (tiled - whole).abs().max() < 1e-6


@pytest.mark.parametrize("preset", ["spatial_lut", "maqic"])
def test_stored_config_builds_through_the_allow_list(preset: str) -> None:
    from omegaconf import OmegaConf

    tree = OmegaConf.to_container(compose_preset(preset), resolve=True)
    enhancer = build_from_tree(tree)
    assert isinstance(enhancer.lut, SpatialLutStage)


def relit_batch(generator: torch.Generator, count: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    """Smooth random scenes with a warm cast on the left half and a cool one on the right: the
    two halves need opposite colour corrections (a gain map, being achromatic, cannot help)."""
    coarse = torch.rand(count, 3, 4, 8, generator=generator) * 0.6 + 0.2
    target = F.interpolate(coarse, size=(32, 64), mode="bilinear", align_corners=False)
    warm = torch.tensor([1.25, 1.0, 0.75]).view(1, 3, 1, 1)
    cast = torch.cat([warm.expand(-1, -1, 32, 32), warm.flip(1).expand(-1, -1, 32, 32)], dim=-1)
    return (target * cast).clamp(0.0, 1.0), target


def trained_loss(stage: torch.nn.Module, steps: int = 40) -> tuple[float, float]:
    """Validation MSE before and after ``steps`` Adam steps on :func:`relit_batch` scenes."""
    generator = torch.Generator().manual_seed(0)
    optimizer = torch.optim.Adam(stage.parameters(), lr=1e-2)
    inputs, targets = relit_batch(torch.Generator().manual_seed(99))
    with torch.no_grad():
        before = F.mse_loss(stage(inputs).frames, targets).item()
    for _ in range(steps):
        batch, wanted = relit_batch(generator)
        loss = F.mse_loss(stage(batch).frames, wanted)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        return before, F.mse_loss(stage(inputs).frames, targets).item()


def test_spatial_stage_beats_a_global_lut_where_the_halves_need_different_corrections() -> None:
    shared = {key: value for key, value in SMALL.items() if key != "weight_grid"}
    torch.manual_seed(0)
    global_before, global_after = trained_loss(LutStage(**shared))
    torch.manual_seed(0)
    spatial_before, spatial_after = trained_loss(SpatialLutStage(**shared, weight_grid=[2, 8]))
    assert spatial_before == pytest.approx(global_before, rel=1e-3)  # both start as the identity
    assert spatial_after < spatial_before / 10  # it learns the task …
    # … and ends well below the best one correction for both halves (measured: ≈ 5× below).
    assert spatial_after < global_after / 3, (spatial_after, global_after)
