"""Stage 2: the U-Net's shapes, identity at init, and re-parameterisation equivalence."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from vqe.models.blocks import RepConvBlock, conv_forward, reparameterize_blocks
from vqe.models.execution import onednn_inference
from vqe.models.unet import UNetStage, pad_to_multiple, shuffled_conv_add


def tiny_unet(unshuffle: int = 2) -> UNetStage:
    return UNetStage(widths=[8, 16, 16], encoder_depths=[1, 1], middle_depth=1,
                     decoder_depths=[2, 1], unshuffle=unshuffle)


def randomise_batch_norms(module: nn.Module) -> None:
    """Give every BN non-trivial statistics and affine parameters, as after training."""
    with torch.no_grad():
        for norm in module.modules():
            if isinstance(norm, nn.BatchNorm2d):
                norm.running_mean.uniform_(-0.5, 0.5)
                norm.running_var.uniform_(0.5, 2.0)
                norm.weight.uniform_(0.5, 1.5)
                norm.bias.uniform_(-0.2, 0.2)


@pytest.mark.parametrize("shape", [(1, 3, 17, 23), (2, 3, 8, 8), (1, 3, 1, 5), (1, 3, 33, 40)])
@pytest.mark.parametrize("unshuffle", [1, 2])
def test_any_size_in_same_size_out_identity_at_init(shape: tuple[int, ...], unshuffle: int) -> None:
    unet = tiny_unet(unshuffle).eval()  # (train-mode BN needs > 1 value per channel)
    frames = torch.rand(shape)
    output = unet(frames)
    assert output.shape == frames.shape
    assert torch.allclose(output, frames, atol=1e-3)  # near-zero-initialised residual


@pytest.mark.parametrize("unshuffle", [1, 2, 4])
@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
def test_packed_head_is_unshuffle_then_conv(unshuffle: int, layout: torch.memory_format) -> None:
    """The eager head (one stride-f conv on the frames) equals the built unshuffle + 3×3 conv,
    values and gradients, in both memory formats."""
    unet = tiny_unet(unshuffle).to(memory_format=layout)
    with torch.no_grad():
        unet.head.bias.uniform_(-0.5, 0.5)
    frames = torch.rand(2, 3, 8 * unshuffle, 12 * unshuffle, requires_grad=True)
    expected = unet.head(unet.unshuffle(frames))
    (grad_frames_expected, grad_weight_expected) = torch.autograd.grad(
        expected.square().sum(), [frames, unet.head.weight])
    got = unet.packed_head(frames.contiguous(memory_format=layout))
    grad_frames, grad_weight = torch.autograd.grad(got.square().sum(), [frames, unet.head.weight])
    assert got.shape == expected.shape
    assert (got - expected).abs().max().item() < 1e-5
    assert (grad_frames - grad_frames_expected).abs().max().item() < 1e-4
    assert (grad_weight - grad_weight_expected).abs().max().item() < 1e-3
    assert not torch.allclose(expected, torch.zeros_like(expected), atol=1e-2)  # a real output


@pytest.mark.parametrize(("kernel", "stride"), [(3, 1), (3, 2), (1, 1)])
@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
def test_conv_forward_fuses_the_relu_in_inference_only(
    kernel: int, stride: int, layout: torch.memory_format
) -> None:
    torch.manual_seed(kernel + stride)
    conv = nn.Conv2d(8, 16, kernel, stride=stride, padding=kernel // 2).to(memory_format=layout)
    frames = torch.randn(2, 8, 15, 22).contiguous(memory_format=layout)
    with torch.no_grad():
        expected = F.relu(conv(frames))
    with torch.inference_mode():
        assert onednn_inference(frames, conv.weight)  # the fused oneDNN op runs here
        fused = conv_forward(frames, conv, relu=True)
        plain = conv_forward(frames, conv)
    assert fused.shape == expected.shape and (fused == 0).any() and (fused >= 0).all()
    assert (fused - expected).abs().max().item() < 1e-5
    assert (plain - conv(frames).detach()).abs().max().item() < 1e-5
    # A conv that pads otherwise than with zeros keeps its own padding.
    reflecting = nn.Conv2d(8, 16, 3, padding=1, padding_mode="reflect")
    reflecting = reflecting.to(memory_format=layout)
    with torch.inference_mode():
        assert torch.equal(conv_forward(frames, reflecting), reflecting(frames))
    # Where a gradient is wanted the plain ops run (the fused op has no backward).
    frames.requires_grad_(True)
    assert not onednn_inference(frames, conv.weight)
    conv_forward(frames, conv, relu=True).sum().backward()
    assert frames.grad is not None and conv.weight.grad is not None


@pytest.mark.parametrize(("factor", "kernel"), [(2, 1), (3, 1), (2, 3)])
@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
def test_shuffled_conv_add_is_conv_shuffle_then_add(
    factor: int, kernel: int, layout: torch.memory_format
) -> None:
    """The one-pass channels-last form (a 1×1 way up, the 3×3 residual tail) equals conv →
    pixel-shuffle → add; other layouts take that plain path."""
    torch.manual_seed(factor + kernel)
    channels, inputs = 5, 7
    conv = nn.Conv2d(inputs, channels * factor**2, kernel, padding=kernel // 2)
    conv = conv.to(memory_format=layout)
    shuffle = nn.PixelShuffle(factor)
    features = torch.randn(2, inputs, 6, 9).contiguous(memory_format=layout)
    base = torch.randn(2, channels, 6 * factor, 9 * factor).contiguous(memory_format=layout)
    with torch.no_grad():
        expected = base + shuffle(conv(features))
    with torch.inference_mode():
        got = shuffled_conv_add(features, conv, shuffle, base)
    assert got.shape == expected.shape and got.is_contiguous(memory_format=layout)
    assert (got - expected).abs().max().item() < 1e-5
    assert not torch.allclose(got, base, atol=1e-2)  # the conv's part is there


def test_pad_to_multiple_replicates_the_edges() -> None:
    frames = torch.arange(6.0).view(1, 1, 2, 3)
    padded = pad_to_multiple(frames, 4)
    assert padded.shape == (1, 1, 4, 4)
    assert padded[0, 0].tolist() == [[0, 1, 2, 2], [3, 4, 5, 5], [3, 4, 5, 5], [3, 4, 5, 5]]
    assert pad_to_multiple(frames, 1) is frames


@pytest.mark.parametrize(
    ("in_channels", "out_channels", "stride"), [(6, 6, 1), (4, 8, 2), (5, 3, 1)]
)
def test_rep_conv_block_fuses_to_one_equivalent_conv(
    in_channels: int, out_channels: int, stride: int
) -> None:
    torch.manual_seed(0)
    block = RepConvBlock(in_channels, out_channels, stride)
    assert (block.identity is not None) == (in_channels == out_channels and stride == 1)
    randomise_batch_norms(block)
    block.eval()
    features = torch.randn(2, in_channels, 9, 10)
    multi_branch = block(features)
    block.reparameterize()
    assert block.is_reparameterized and block.conv3x3 is None and block.identity is None
    assert isinstance(block.fused, nn.Conv2d) and block.fused.kernel_size == (3, 3)
    assert torch.allclose(block(features), multi_branch, atol=1e-5)


def test_fused_kernel_matches_hand_built_kernel() -> None:
    """With identity BNs the fused kernel is k3 + pad(k1) + centre 1 on the diagonal."""
    block = RepConvBlock(2, 2).eval()
    with torch.no_grad():
        for norm in (block.conv3x3[1], block.conv1x1[1], block.identity):
            norm.running_var.fill_(1.0 - norm.eps)  # scale = 1 exactly
    kernel, bias = block.fused_kernel_and_bias()
    expected = block.conv3x3[0].weight.clone()
    expected[:, :, 1, 1] += block.conv1x1[0].weight[:, :, 0, 0]
    expected[0, 0, 1, 1] += 1.0
    expected[1, 1, 1, 1] += 1.0
    assert torch.allclose(kernel, expected, atol=1e-6)
    assert torch.equal(bias, torch.zeros(2))


def test_whole_unet_reparameterises_to_the_same_function() -> None:
    torch.manual_seed(0)
    unet = tiny_unet()
    randomise_batch_norms(unet)
    with torch.no_grad():
        unet.tail.weight.normal_(0.0, 0.1)  # a non-zero residual, as after training
    unet.eval()
    frames = torch.rand(1, 3, 19, 26)
    before = unet(frames)
    reparameterize_blocks(unet)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in unet.modules())
    assert torch.allclose(unet(frames), before, atol=1e-5)
    assert not torch.allclose(before, frames, atol=1e-3)  # the comparison is not trivial


def test_invalid_configuration_is_rejected() -> None:
    with pytest.raises(ValueError, match="encoder_depths"):
        UNetStage(widths=[8, 16], encoder_depths=[1, 1], middle_depth=1, decoder_depths=[1])
    with pytest.raises(ValueError, match="stride"):
        RepConvBlock(4, 4, stride=3)


def has_period_two_pattern(maps: torch.Tensor) -> bool:
    """Whether the four sub-pixel phases of 2×2 blocks differ (a checkerboard of period 2)."""
    phases = [maps[..., i::2, j::2] for i in (0, 1) for j in (0, 1)]
    return any(not torch.allclose(phase, phases[0], atol=1e-6) for phase in phases[1:])


def test_pixel_shuffle_convs_start_icnr_without_a_checkerboard() -> None:
    torch.manual_seed(0)
    unet = tiny_unet()
    for up in unet.ups:  # a constant-per-channel input: every sub-pixel must come out alike
        conv = up[0]
        constant = torch.rand(1, conv.in_channels, 1, 1).expand(1, -1, 6, 6)
        with torch.no_grad():
            assert not has_period_two_pattern(up(constant))
    # The tail (3×3 conv + shuffle back to full resolution): away from the zero-padded border.
    constant = torch.rand(1, unet.tail.in_channels, 1, 1).expand(1, -1, 8, 8)
    with torch.no_grad():
        residual = unet.shuffle(unet.tail(constant))[..., 2:-2, 2:-2]
    assert residual.abs().max() > 0 and not has_period_two_pattern(residual)
    # Without ICNR (PyTorch's default init) the same check does see the pattern.
    plain = nn.Sequential(nn.Conv2d(16, 32, 1), nn.PixelShuffle(2))
    with torch.no_grad():
        assert has_period_two_pattern(plain(torch.rand(1, 16, 1, 1).expand(1, -1, 6, 6)))
