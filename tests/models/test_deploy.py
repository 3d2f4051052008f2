"""Deploy graph: exact atlas LUT lookup, parity with the training graph, 4-D ops only."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from model_helpers import trained_like
from skimage import data as natural_images

from vqe.conventions import rgb_uint8_to_tensor
from vqe.models.blocks import RepConvBlock
from vqe.models.deploy import (
    DeployEnhancer,
    atlas_lookup,
    build_deploy_model,
    lookup_bands,
    lut_atlas,
    red_level_atlas,
    red_level_lookup,
)
from vqe.models.loading import enhancer_from_preset
from vqe.models.lut import identity_lut, trilinear_lookup


def natural_frames(height: int, width: int) -> torch.Tensor:
    """Two real photographs (scikit-image's bundled astronaut and coffee), resized."""
    photos = [rgb_uint8_to_tensor(natural_images.astronaut()),
              rgb_uint8_to_tensor(natural_images.coffee())]
    resized = [F.interpolate(p[None], size=(height, width), mode="area") for p in photos]
    return torch.cat(resized)


@pytest.mark.parametrize("size", [2, 5, 17, 33])
def test_atlas_lookup_equals_trilinear_lookup(size: int) -> None:
    torch.manual_seed(size)
    luts = identity_lut(size)[None] + 0.3 * torch.randn(2, 3, size, size, size)
    frames = torch.rand(2, 3, 9, 13)
    frames[0, :, 0, :3] = torch.tensor([[0.0, 1.0, 0.5]] * 3).T  # cube faces and lattice points
    frames[1, :, 0, 0] = torch.tensor([-0.2, 1.3, 1.0])  # out of range: clamped in both
    expected = trilinear_lookup(frames, luts)
    # fp32 rounding of positions in a ~200-texel atlas, times steps of up to ~1 per texel in
    # these rough random LUTs, gives differences of ~1e-5.
    assert torch.allclose(atlas_lookup(frames, lut_atlas(luts), size), expected, atol=5e-5)


def test_atlas_layout() -> None:
    size = 5
    lut = torch.arange(3 * size**3, dtype=torch.float32).view(3, size, size, size)
    atlas = lut_atlas(lut)
    tile = size + 2
    assert atlas.shape == (3, 2 * tile, 3 * tile)  # 5 slices, 3 per row
    # Slice b = 4 sits in row 1, column 1; texel (g, r) at +1 past the replicated border.
    assert torch.equal(atlas[:, tile + 1 : tile + 1 + size, tile + 1 : tile + 1 + size], lut[:, 4])
    assert torch.equal(atlas[:, tile, tile + 1 : tile + 1 + size], lut[:, 4, 0])  # border row


@pytest.mark.parametrize("preset", ["tiny", "lut_unet", "lut"])
def test_deploy_graph_equals_training_graph(preset: str) -> None:
    enhancer = trained_like(enhancer_from_preset(preset))
    deploy = build_deploy_model(enhancer)
    frames = torch.cat([torch.rand(2, 3, 36, 52), natural_frames(36, 52)])
    with torch.no_grad():
        expected = enhancer(frames)
        assert not torch.allclose(expected, frames, atol=1e-2)  # a real transformation
        assert (deploy(frames) - expected).abs().max().item() <= 1e-4


def test_deploy_with_external_weights_matches_enhancer() -> None:
    enhancer = trained_like(enhancer_from_preset("tiny"))
    deploy = build_deploy_model(enhancer)
    frames = natural_frames(24, 40)
    # N LUT weights, then the gain map's log-gains (the tiny preset has one, as lut_unet).
    blend_weights = torch.tensor([[0.9, 0.2, -0.1], [1.1, 0.0, 0.3]])
    num_gains = enhancer.lut.num_coefficients - enhancer.lut.num_luts
    assert num_gains > 0
    gains = 0.3 * torch.randn(2, num_gains, generator=torch.Generator().manual_seed(3))
    weights = torch.cat([blend_weights, gains], dim=1)
    with torch.no_grad():
        expected = enhancer.forward_with_weights(frames, lut_weights=weights).frames
        assert (deploy.enhance_with_weights(frames, weights) - expected).abs().max() <= 1e-4
        without_gains = torch.cat([blend_weights, torch.zeros_like(gains)], dim=1)
        unlit = deploy.enhance_with_weights(frames, without_gains)
        assert (unlit - expected).abs().max() > 1e-2  # the gains are applied, not dropped
        assert torch.allclose(deploy.lut.predict_weights(frames),
                              enhancer.predict_lut_weights(frames), atol=1e-6)


def test_build_leaves_the_enhancer_untouched() -> None:
    enhancer = enhancer_from_preset("tiny")
    deploy = build_deploy_model(enhancer)
    assert enhancer.training and not deploy.training
    blocks = [m for m in enhancer.modules() if isinstance(m, RepConvBlock)]
    deployed = [m for m in deploy.modules() if isinstance(m, RepConvBlock)]
    assert blocks and not any(b.is_reparameterized for b in blocks)
    assert all(b.is_reparameterized for b in deployed)
    assert not any(p.requires_grad for p in deploy.parameters())


def test_deploy_graph_has_no_tensor_above_four_dimensions() -> None:
    deploy = build_deploy_model(trained_like(enhancer_from_preset("tiny")))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        graph = torch.jit.trace(deploy, torch.rand(1, 3, 32, 48)).inlined_graph
    ranks = {}
    for node in graph.nodes():
        for value in node.outputs():
            if isinstance(value.type(), torch.TensorType) and value.type().dim() is not None:
                ranks[node.kind()] = max(ranks.get(node.kind(), 0), value.type().dim())
    assert ranks["aten::grid_sampler"] == 4
    assert max(ranks.values()) <= 4, {kind: rank for kind, rank in ranks.items() if rank > 4}


def test_tiny_deploy_graph_converts_to_coreml_fp16() -> None:
    """Conversion works on Linux (prediction needs macOS, which this test does not do)."""
    ct = pytest.importorskip("coremltools")
    deploy = build_deploy_model(trained_like(enhancer_from_preset("tiny")))
    frames = torch.rand(1, 3, 32, 48)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(deploy, frames)
        mlmodel = ct.convert(
            traced,
            inputs=[ct.TensorType(name="frames", shape=tuple(frames.shape), dtype=np.float32)],
            convert_to="mlprogram",
            compute_precision=ct.precision.FLOAT16,
            minimum_deployment_target=ct.target.iOS16,
        )
    program = mlmodel.get_spec().mlProgram
    op_types = {
        op.type
        for function in program.functions.values()
        for block in function.block_specializations.values()
        for op in block.operations
    }
    assert {"conv", "resample", "pixel_unshuffle", "pixel_shuffle"} <= op_types
    assert isinstance(deploy, DeployEnhancer)


def test_atlas_lookup_tolerates_fp16_positions(monkeypatch: pytest.MonkeyPatch) -> None:
    """fp16 sample positions and LUT values (as on the Neural Engine) stay within 1/255.

    This CPU's own fp16 grid_sample is unusable (NaN), so the fp16 rounding is emulated:
    positions and atlas are rounded to fp16 and sampled in fp32.
    """
    sample_fp32 = F.grid_sample

    def sample_fp16_inputs(atlas: torch.Tensor, grid: torch.Tensor, **kwargs) -> torch.Tensor:
        return sample_fp32(atlas.half().float(), grid.half().float(), **kwargs)

    size = 33
    lut = identity_lut(size)[None] ** 0.7  # a smooth brightening curve
    frames = torch.rand(1, 3, 64, 64).half().float()
    expected = trilinear_lookup(frames, lut)
    monkeypatch.setattr(F, "grid_sample", sample_fp16_inputs)
    looked_up = atlas_lookup(frames, lut_atlas(lut), size)
    assert (looked_up - expected).abs().max().item() < 1.0 / 255


def eight_bit(frames: torch.Tensor) -> torch.Tensor:
    """Frames as a decoder delivers them: values k / 255."""
    return frames.clamp(0.0, 1.0).mul(255).round().div(255)


@pytest.mark.parametrize("size", [2, 5, 17, 33])
def test_red_level_lookup_equals_the_trilinear_lookup_on_8_bit_frames(size: int) -> None:
    generator = torch.Generator().manual_seed(size)
    luts = identity_lut(size)[None] + 0.1 * torch.randn(2, 3, size, size, size, generator=generator)
    frames = eight_bit(torch.rand(2, 3, 24, 40, generator=generator))
    frames[0, :, 0, :2] = torch.tensor([[0.0, 1.0]] * 3)  # the cube's corners
    frames[1, :, 0, :] = 0.0
    frames[1, 0, 0, :] = torch.arange(40) * 6 / 255  # a red ramp over the levels 0, 6, …, 234
    truth = trilinear_lookup(frames.double(), luts.double()).float()
    atlases = red_level_atlas(luts)
    assert atlases.shape == (2, 3, 16 * (size + 2), 16 * (size + 2))
    for layout in (torch.contiguous_format, torch.channels_last):
        for bands in (1, 2, 3):  # each frame cut into bands for grid_sample's threads
            got = red_level_lookup(frames.contiguous(memory_format=layout), atlases, size, bands)
            assert got.shape == truth.shape and got.is_contiguous()
            # fp32 positions in a 16·(D+2)-texel atlas, times steps of up to ~0.5 per texel in
            # these rough LUTs: ~3e-5 (the 5-D and atlas lookups: ~1e-5).
            assert (got - truth).abs().max().item() < 5e-5
    one_frame = red_level_lookup(frames[1:], atlases[1:], size, bands=4)  # the atlas expanded
    assert (one_frame - truth[1:]).abs().max().item() < 5e-5
    # Between the levels red is rounded: the lookup is for 8-bit frames only.
    between = frames + 0.4 / 255 * (frames < 0.5)
    rounded = red_level_lookup(between, atlases, size)
    assert (rounded - trilinear_lookup(between, luts)).abs().max() > 1e-3


def test_lookup_bands_fill_the_threads_and_divide_the_height() -> None:
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(4)
        assert lookup_bands(1, 720) == 4  # one frame: four bands, one per thread
        assert lookup_bands(2, 720) == 2
        assert lookup_bands(8, 720) == 1  # the batch alone fills the threads
        assert lookup_bands(1, 30) == 3  # 4 does not divide 30
        assert lookup_bands(1, 7) == 1
    finally:
        torch.set_num_threads(threads)


def test_red_level_atlas_layout() -> None:
    size = 3
    lut = torch.arange(3 * size**3, dtype=torch.float32).view(3, size, size, size)
    atlas = red_level_atlas(lut)
    tile = size + 2
    # Level k = 51 (red 0.2 → lattice 0.4): row 3, column 3; texel (b, g) past the border.
    inner = atlas[:, 3 * tile + 1 : 3 * tile + 1 + size, 3 * tile + 1 : 3 * tile + 1 + size]
    expected = 0.6 * lut[..., 0] + 0.4 * lut[..., 1]  # lerp along red, blue rows × green columns
    assert torch.allclose(inner, expected, atol=1e-5)
    assert torch.equal(atlas[:, 3 * tile, 3 * tile + 1 : 3 * tile + 1 + size], inner[:, 0])


@pytest.mark.parametrize("fused", [True, False], ids=["fused-lookup", "grid-sample-lookups"])
def test_eager_deploy_graph_equals_its_traced_export_graph(
    fused: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Eager runs keep the memory format, run the U-Net's head as one strided conv and look up
    in the fused C++ kernel (where built) or, on 8-bit frames, the red-level atlas; traces
    record the atlas graph and unshuffle + conv whatever the flags: the same outputs, to float
    rounding."""
    from vqe.models import deploy as deploy_module
    from vqe.models.lut_kernel import fused_lookup_available

    if fused and not fused_lookup_available():
        pytest.skip("the fused LUT lookup could not be built here (no C++ compiler or ninja)")
    if not fused:
        monkeypatch.setattr(deploy_module, "fused_lookup_available", lambda: False)
    deploy = build_deploy_model(trained_like(enhancer_from_preset("tiny")))
    frames = natural_frames(32, 48)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(deploy, frames)
    kinds = {node.kind() for node in traced.inlined_graph.nodes()}
    assert "aten::grid_sampler" in kinds and "vqe::trilinear_lut" not in kinds
    assert "aten::pixel_unshuffle" in kinds
    with torch.no_grad():
        exported = traced(frames)
        assert (deploy(frames) - exported).abs().max().item() < 1e-5
        channels_last = deploy.to(memory_format=torch.channels_last)
        frames_cl = frames.contiguous(memory_format=torch.channels_last)
        assert deploy.lut is not None
        assert deploy.lut(frames_cl).is_contiguous(memory_format=torch.channels_last)
        assert deploy.lut(frames, torch.channels_last).is_contiguous(
            memory_format=torch.channels_last
        )
        assert (channels_last(frames_cl) - exported).abs().max().item() < 1e-5
        deploy.lut.eight_bit_frames = True
        frames_8 = eight_bit(frames)
        exported_8 = traced(frames_8)
        assert (deploy(frames_8) - exported_8).abs().max().item() < 1e-5
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            retraced = torch.jit.trace(deploy, frames_8)
        assert torch.equal(retraced(frames_8), exported_8)


class WithWeights(torch.nn.Module):
    """The deploy graph with given coefficients, as a module to trace."""

    def __init__(self, deploy: DeployEnhancer) -> None:
        super().__init__()
        self.deploy = deploy

    def forward(self, frames: torch.Tensor, coefficients: torch.Tensor) -> torch.Tensor:
        return self.deploy.enhance_with_weights(frames, coefficients)


@pytest.mark.parametrize("path", ["fused", "atlas", "red-levels", "traced"])
def test_white_balance_gains_reach_every_lookup_path(
    path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Balance gains far from 1, given as coefficients: every lookup of the deploy graph (the
    fused kernel, the atlas, the 8-bit red-level atlas, the traced export graph) scales the
    blended table as the training graph does."""
    from vqe.models import deploy as deploy_module
    from vqe.models.lut_kernel import fused_lookup_available

    if path == "fused" and not fused_lookup_available():
        pytest.skip("the fused LUT lookup could not be built here (no C++ compiler or ninja)")
    if path != "fused":
        monkeypatch.setattr(deploy_module, "fused_lookup_available", lambda: False)
    enhancer = trained_like(enhancer_from_preset("tiny", ["lut.white_balance=true"]))
    deploy = build_deploy_model(enhancer)
    assert deploy.lut is not None
    deploy.lut.eight_bit_frames = path == "red-levels"
    frames = eight_bit(natural_frames(24, 40))
    coefficients = enhancer.predict_lut_weights(frames).detach()
    balance = torch.log(torch.tensor([[1.3, 1.0, 0.7], [0.75, 1.1, 1.4]]))
    coefficients[:, 3:6] = balance  # after the 3 blending weights
    with torch.no_grad():
        expected = enhancer.forward_with_weights(frames, lut_weights=coefficients).frames
        unbalanced = coefficients.clone()
        unbalanced[:, 3:6] = 0.0
        plain = enhancer.forward_with_weights(frames, lut_weights=unbalanced).frames
        assert (expected - plain).abs().max() > 0.05  # the gains change the picture
        if path == "traced":
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                traced = torch.jit.trace(WithWeights(deploy), (frames, coefficients))
            kinds = {node.kind() for node in traced.inlined_graph.nodes()}
            assert "aten::grid_sampler" in kinds and "vqe::trilinear_lut" not in kinds
            got = traced(frames, coefficients)
        else:
            got = deploy.enhance_with_weights(frames, coefficients)
    assert (got - expected).abs().max().item() < 1e-4
