"""Stage 2: a residual denoising U-Net that runs on a pixel-unshuffled copy of the frame.

Pixel-unshuffle by ``unshuffle`` turns an H×W×3 frame into an (H/f)×(W/f)×3f² tensor without
losing a pixel, so the widest level already works at reduced resolution. Levels halve the
resolution with strided :class:`~vqe.models.blocks.RepConvBlock` s, come back with a 1×1 conv +
pixel-shuffle, and merge the skip by addition. The last conv predicts a residual and starts
near zero (:func:`~vqe.models.blocks.near_zero_`), so an untrained stage returns its input to
within ~1e-4 while every layer already receives a gradient. Any H×W works: the frame is padded
(edge-replicated) to a multiple of ``unshuffle · 2^(levels−1)`` and the output cropped back.

Eager execution (not traced for export or the MAC count) computes the same function with
fewer passes over memory: the unshuffle + head conv as one strided conv on the frame
(:meth:`UNetStage.packed_head`), and, in CPU inference, oneDNN convolutions with the ReLU fused
in (:func:`~vqe.models.blocks.conv_forward`) and each way up's pixel-shuffle and skip-add as one
pass (:func:`shuffled_conv_add`). At 720p on this project's 2-core CPU the `lut_unet` frame is
8–20 % faster for it (the README's inference figures).

The convs before each pixel-shuffle (the ways up and the tail) start ICNR (:func:`icnr_`): each
shuffle starts as nearest-neighbour upsampling, not as the checkerboard texture that
independently drawn sub-pixel kernels leave and training has to unlearn.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from vqe.models.blocks import RepConvBlock, conv_forward, near_zero_
from vqe.models.execution import is_exporting, memory_format_of, onednn_inference


def pad_to_multiple(frames: torch.Tensor, multiple: int) -> torch.Tensor:
    """Pad the bottom and right edges (replicating them) so H and W divide by ``multiple``."""
    height, width = frames.shape[-2:]
    pad_bottom = -height % multiple
    pad_right = -width % multiple
    if pad_bottom == 0 and pad_right == 0:
        return frames
    return F.pad(frames, [0, pad_right, 0, pad_bottom], mode="replicate")


def strided_head_weight(weight: torch.Tensor, factor: int) -> torch.Tensor:
    """The weight of a k×k conv on ``factor``-unshuffled frames, rearranged as the weight of the
    (k·f)×(k·f) stride-f conv on the frames themselves — the same sums:
    W'[o, c, f·i + a, f·j + b] = W[o, c·f² + a·f + b, i, j] (PixelUnshuffle's channel order)."""
    outputs, packed, kernel, _ = weight.shape
    channels = packed // factor**2
    grouped = weight.reshape(outputs, channels, factor, factor, kernel, kernel)
    return grouped.permute(0, 1, 4, 2, 5, 3).reshape(
        outputs, channels, kernel * factor, kernel * factor
    )


def shuffled_conv_add(
    features: torch.Tensor, conv: nn.Conv2d, shuffle: nn.PixelShuffle, base: torch.Tensor
) -> torch.Tensor:
    """``base + shuffle(conv(features))``: a level's way up (1×1 conv) or the residual tail.

    In eager CPU inference on channels-last tensors the conv's output channels are put in
    (row, column, channel) order instead of PixelShuffle's (channel, row, column), so that the
    shuffled map is a view whose channels stay contiguous, and shuffle and add are one pass (at
    720p on one thread the level-0 way up takes 15 instead of 20 ms). The same values."""
    channels_last = torch.channels_last
    applies = (
        onednn_inference(features, conv.weight)
        and conv.stride == (1, 1) and conv.dilation == (1, 1) and conv.groups == 1
        and conv.padding_mode == "zeros" and isinstance(conv.padding, tuple)
        and conv.bias is not None
        and features.is_contiguous(memory_format=channels_last)
        and base.is_contiguous(memory_format=channels_last)
    )  # fmt: skip
    if not applies:
        return base + shuffle(conv_forward(features, conv))
    factor = shuffle.upscale_factor
    batch, channels, height, width = base.shape
    rows, columns = height // factor, width // factor
    # Output channel c·f² + i·f + j (PixelShuffle's order) becomes (i·f + j)·C + c.
    weight = conv.weight.reshape(channels, factor**2, -1).transpose(0, 1).reshape(conv.weight.shape)
    bias = conv.bias.reshape(channels, factor**2).t().reshape(-1)
    grouped = torch.ops.mkldnn._convolution_pointwise(
        features, weight.contiguous(memory_format=channels_last), bias, list(conv.padding),
        [1, 1], [1, 1], 1, "none", [], "",
    )  # fmt: skip
    if not grouped.is_contiguous(memory_format=channels_last):
        grouped = grouped.contiguous(memory_format=channels_last)
    # Memory B, rows, columns, i, j, C → viewed as the shuffled B, rows, i, columns, j, C.
    shuffled = grouped.permute(0, 2, 3, 1).view(batch, rows, columns, factor, factor, channels)
    shuffled = shuffled.permute(0, 1, 3, 2, 4, 5)
    summed = torch.empty_like(base)  # channels-last, as ``base``
    pixel_major = (batch, rows, factor, columns, factor, channels)
    torch.add(base.permute(0, 2, 3, 1).view(pixel_major), shuffled,
              out=summed.permute(0, 2, 3, 1).view(pixel_major))  # fmt: skip
    return summed


def icnr_(conv: nn.Conv2d, factor: int, near_zero: bool = False) -> None:
    """ICNR initialisation (Aitken et al., 2017) of a conv followed by PixelShuffle(``factor``).

    A kernel for C/f² output channels is drawn (PyTorch's default init, or
    :func:`~vqe.models.blocks.near_zero_` with ``near_zero``) and repeated for each of the f²
    sub-pixels (PixelShuffle reads channel c·f² + i·f + j for sub-pixel (i, j) of channel c), so
    at init every sub-pixel of a block gets the same value: the conv + shuffle starts as a conv
    followed by nearest-neighbour upsampling. With independent sub-kernels the shuffle starts
    with a period-f pattern that training has to unlearn — the checkerboard texture."""
    groups = factor**2
    outputs = conv.out_channels
    if outputs % groups:
        raise ValueError(f"icnr_: {outputs} output channels do not split into {groups} sub-pixels")
    seed = nn.Conv2d(
        conv.in_channels, outputs // groups, conv.kernel_size, bias=conv.bias is not None
    )
    if near_zero:
        near_zero_(seed)
    with torch.no_grad():
        conv.weight.copy_(seed.weight.repeat_interleave(groups, dim=0))
        if conv.bias is not None and seed.bias is not None:
            conv.bias.copy_(seed.bias.repeat_interleave(groups, dim=0))


def _stack(channels: int, depth: int) -> nn.Sequential:
    return nn.Sequential(*(RepConvBlock(channels, channels) for _ in range(depth)))


class UNetStage(nn.Module):
    """Encoder–decoder with additive skips; level i: ``widths[i]`` channels, scale 1/(f·2^i)."""

    def __init__(
        self,
        widths: Sequence[int],
        encoder_depths: Sequence[int],
        middle_depth: int,
        decoder_depths: Sequence[int],
        unshuffle: int = 2,
    ) -> None:
        super().__init__()
        widths = [int(w) for w in widths]
        encoder_depths = [int(d) for d in encoder_depths]
        decoder_depths = [int(d) for d in decoder_depths]
        if len(widths) < 1 or not (len(encoder_depths) == len(decoder_depths) == len(widths) - 1):
            raise ValueError(
                "UNetStage: need len(encoder_depths) == len(decoder_depths) == len(widths) - 1, "
                f"got widths={widths}, encoder_depths={encoder_depths}, "
                f"decoder_depths={decoder_depths}"
            )
        if unshuffle < 1:
            raise ValueError(f"UNetStage: unshuffle must be >= 1, got {unshuffle}")
        self.unshuffle_factor = int(unshuffle)
        self.size_multiple = self.unshuffle_factor * 2 ** (len(widths) - 1)
        packed_channels = 3 * self.unshuffle_factor**2

        self.unshuffle = nn.PixelUnshuffle(self.unshuffle_factor)
        self.head = nn.Conv2d(packed_channels, widths[0], 3, padding=1)
        self.encoders = nn.ModuleList(
            _stack(width, depth) for width, depth in zip(widths[:-1], encoder_depths)
        )
        self.downs = nn.ModuleList(
            RepConvBlock(widths[i], widths[i + 1], stride=2) for i in range(len(widths) - 1)
        )
        self.middle = _stack(widths[-1], int(middle_depth))
        self.ups = nn.ModuleList(
            nn.Sequential(nn.Conv2d(widths[i + 1], 4 * widths[i], 1), nn.PixelShuffle(2))
            for i in range(len(widths) - 1)
        )
        self.decoders = nn.ModuleList(
            _stack(width, depth) for width, depth in zip(widths[:-1], decoder_depths)
        )
        self.tail = nn.Conv2d(widths[0], packed_channels, 3, padding=1)
        self.shuffle = nn.PixelShuffle(self.unshuffle_factor)
        # Residual output starts at ≈ 0 (not exactly: zeros would starve every earlier layer
        # of gradient on the first step), so the untrained stage is the identity to ~1e-4.
        # Every conv before a pixel-shuffle starts ICNR (each sub-pixel alike): no
        # checkerboard at init, see :func:`icnr_`.
        icnr_(self.tail, self.unshuffle_factor, near_zero=True)
        for up in self.ups:
            icnr_(up[0], 2)

    def packed_head(self, padded: torch.Tensor) -> torch.Tensor:
        """``head(unshuffle(padded))``. Run eagerly on the CPU, it is one stride-f conv on the
        frames (the same sums, :func:`strided_head_weight`) and skips the unshuffled copy: at
        720p 13 instead of 19 ms, forward + backward in training the same speed. Traced for
        export or the MAC count, and on other devices (not measured there), unshuffle + conv as
        built."""
        if is_exporting() or padded.device.type != "cpu":
            return self.head(self.unshuffle(padded))
        factor = self.unshuffle_factor
        weight = strided_head_weight(self.head.weight, factor)
        # In the model's layout (channels-last after .to(memory_format=torch.channels_last)).
        weight = weight.contiguous(memory_format=memory_format_of(self.head.weight))
        padding = factor * (self.head.kernel_size[0] // 2)
        return F.conv2d(padded, weight, self.head.bias, stride=factor, padding=padding)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        height, width = frames.shape[-2:]
        padded = pad_to_multiple(frames, self.size_multiple)
        features = self.packed_head(padded)
        skips = []
        for encoder, down in zip(self.encoders, self.downs):
            features = encoder(features)
            skips.append(features)
            features = down(features)
        features = self.middle(features)
        for up, decoder, skip in zip(self.ups[::-1], self.decoders[::-1], skips[::-1]):
            conv, shuffle = up
            features = decoder(shuffled_conv_add(features, conv, shuffle, skip))
        return shuffled_conv_add(features, self.tail, self.shuffle, padded)[..., :height, :width]
