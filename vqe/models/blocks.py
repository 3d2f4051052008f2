"""Structurally re-parameterisable convolution blocks (RepVGG, Ding et al. 2021).

A :class:`RepConvBlock` trains as three parallel branches — 3×3 conv + BN, 1×1 conv + BN and,
when the shapes allow, an identity BN — summed and passed through a ReLU. Every branch is linear
in eval mode, so the sum folds into one 3×3 convolution with bias: :meth:`reparameterize` swaps
the branches for that convolution, which is what ships to the Neural Engine.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from vqe.models.execution import onednn_inference


def conv_forward(features: torch.Tensor, conv: nn.Conv2d, relu: bool = False) -> torch.Tensor:
    """``conv(features)``, then ReLU if ``relu``. In eager CPU inference (fp32, no gradient) one
    oneDNN convolution with the ReLU fused in: no separate pass over the activations (at 720p
    the U-Net's ReLUs took 9 % of a one-thread frame), and oneDNN for 1×1 kernels too, which
    PyTorch sends to a slower generic kernel on one thread."""
    zero_padded = conv.padding_mode == "zeros" and isinstance(conv.padding, tuple)
    if zero_padded and onednn_inference(features, conv.weight):
        return torch.ops.mkldnn._convolution_pointwise(
            features, conv.weight, conv.bias, list(conv.padding), list(conv.stride),
            list(conv.dilation), conv.groups, "relu" if relu else "none", [], "",
        )  # fmt: skip
    convolved = conv(features)
    return F.relu(convolved) if relu else convolved


def conv_bn(in_channels: int, out_channels: int, kernel_size: int, stride: int) -> nn.Sequential:
    """A bias-free convolution followed by batch norm, padded to keep the 'same' centre."""
    return nn.Sequential(
        nn.Conv2d(
            in_channels,
            out_channels,
            kernel_size,
            stride=stride,
            padding=kernel_size // 2,
            bias=False,
        ),
        nn.BatchNorm2d(out_channels),
    )


def fold_batch_norm(
    kernel: torch.Tensor, norm: nn.BatchNorm2d
) -> tuple[torch.Tensor, torch.Tensor]:
    """Kernel and bias of ``norm(conv(x, kernel))`` as one convolution (eval-mode statistics)."""
    scale = norm.weight / torch.sqrt(norm.running_var + norm.eps)
    return kernel * scale.view(-1, 1, 1, 1), norm.bias - norm.running_mean * scale


class RepConvBlock(nn.Module):
    """3×3 conv + ReLU that trains multi-branch and deploys as one plain 3×3 convolution."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        if stride not in (1, 2):
            raise ValueError(f"RepConvBlock: stride must be 1 or 2, got {stride}")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.stride = stride
        self.conv3x3: nn.Sequential | None = conv_bn(in_channels, out_channels, 3, stride)
        # A 1×1 kernel with padding 0 reads the centre tap of the 3×3 window at any stride.
        self.conv1x1: nn.Sequential | None = conv_bn(in_channels, out_channels, 1, stride)
        has_identity = in_channels == out_channels and stride == 1
        self.identity: nn.BatchNorm2d | None = (
            nn.BatchNorm2d(out_channels) if has_identity else None
        )
        self.fused: nn.Conv2d | None = None
        self.activation = nn.ReLU()

    @property
    def is_reparameterized(self) -> bool:
        return self.fused is not None

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        if self.fused is not None:
            return conv_forward(features, self.fused, relu=True)
        assert self.conv3x3 is not None and self.conv1x1 is not None
        summed = self.conv3x3(features) + self.conv1x1(features)
        if self.identity is not None:
            summed = summed + self.identity(features)
        return self.activation(summed)

    def fused_kernel_and_bias(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The single 3×3 kernel and bias equal to the eval-mode sum of the branches."""
        if self.fused is not None:
            return self.fused.weight, self.fused.bias
        assert self.conv3x3 is not None and self.conv1x1 is not None
        kernel, bias = fold_batch_norm(self.conv3x3[0].weight, self.conv3x3[1])
        kernel_1x1, bias_1x1 = fold_batch_norm(self.conv1x1[0].weight, self.conv1x1[1])
        kernel = kernel + F.pad(kernel_1x1, [1, 1, 1, 1])
        bias = bias + bias_1x1
        if self.identity is not None:
            # Identity as a 3×3 kernel: 1 at the centre tap of channel i → channel i.
            eye = torch.zeros_like(kernel)
            channels = torch.arange(self.out_channels, device=kernel.device)
            eye[channels, channels, 1, 1] = 1.0
            kernel_id, bias_id = fold_batch_norm(eye, self.identity)
            kernel = kernel + kernel_id
            bias = bias + bias_id
        return kernel, bias

    @torch.no_grad()
    def reparameterize(self) -> None:
        """Replace the branches by their fused 3×3 convolution, in place (idempotent)."""
        if self.fused is not None:
            return
        kernel, bias = self.fused_kernel_and_bias()
        fused = nn.Conv2d(
            self.in_channels, self.out_channels, 3, stride=self.stride, padding=1, bias=True
        ).to(device=kernel.device, dtype=kernel.dtype)
        fused.weight.copy_(kernel)
        fused.bias.copy_(bias)
        self.fused = fused
        self.conv3x3 = None
        self.conv1x1 = None
        self.identity = None


#: Output scale of :func:`near_zero_` layers, relative to the rms of their input.
NEAR_ZERO_SCALE = 1e-4


@torch.no_grad()
def near_zero_(layer: nn.Conv2d | nn.Linear, scale: float = NEAR_ZERO_SCALE) -> None:
    """Initialise a layer whose output must start at ≈ 0 (a residual tail, a LUT weight head).

    Weights ~ N(0, (scale/√fan_in)²), bias 0: the output is ≈ ``scale`` × the rms of the input,
    so the model starts within ~``scale`` of its identity. Why not exact zeros: every gradient
    reaching the layers *before* it is a product with these weights, so all-zero weights would
    send those layers nothing on the first step (and, multiplied by another zero factor, forever).
    """
    fan_in = layer.weight[0].numel()
    layer.weight.normal_(0.0, scale / fan_in**0.5)
    if layer.bias is not None:
        layer.bias.zero_()


def reparameterize_blocks(module: nn.Module) -> nn.Module:
    """Fuse every :class:`RepConvBlock` inside ``module`` in place; returns ``module``."""
    for block in module.modules():
        if isinstance(block, RepConvBlock):
            block.reparameterize()
    return module
