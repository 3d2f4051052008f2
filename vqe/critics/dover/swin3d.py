"""DOVER's technical backbone: a 3-D Swin-T with FAST-VQA's gated fragment position bias.

Architecture facts (Video Swin Transformer; FAST-VQA; DOVER): patch embedding 2×4×4 with a
LayerNorm, four stages of depths 2/2/6/2 with 3/6/12/24 heads at widths 96/192/384/768, window
8×7×7 (shrunk to the input where the input is smaller, and then not shifted), every odd block
shifted by half a window, 2×2 spatial patch merging between stages, a final LayerNorm.

The attention of stages 0–2 carries two bias tables indexed by the relative position of the
token pair: ``relative_position_bias_table`` (R) and ``fragment_position_bias_table`` (F). The
gate g of a token pair is the L1 distance between the (row, column) fragment cells the two
tokens fall in, on a 7×7 fragment grid laid over the (padded, shifted) token map; the bias is
``R·g + F·(1 − g)``. So pairs inside one 32×32 fragment (g = 0) see F, pairs in neighbouring
fragments (g = 1) see R, and pairs further apart an extrapolation of the two. This is what the
published DOVER/FAST-VQA network computes, and the weights were trained with it.

Tensors inside the backbone are channels-last, B×D×H×W×C; the public ``forward`` takes and
returns channels-first clips (B×C×T×H×W).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

Triple = tuple[int, int, int]

PATCH_SIZE: Triple = (2, 4, 4)
WINDOW_SIZE: Triple = (8, 7, 7)
EMBED_DIM = 96
DEPTHS = (2, 2, 6, 2)
NUM_HEADS = (3, 6, 12, 24)
#: Stages whose attention mixes in the fragment position bias.
FRAGMENT_BIAS_STAGES = (True, True, True, False)
MLP_RATIO = 4
#: Added to the attention logits of token pairs that a cyclic shift brought together.
SHIFT_MASK_VALUE = -100.0


# --------------------------------------------------------------------------- window geometry


def effective_window(
    size: Triple, window: Triple, shift: Triple
) -> tuple[Triple, Triple]:
    """Window and shift actually used on a D×H×W map: a dimension no larger than the window
    becomes one window of the map's size, and is not shifted."""
    used_window = tuple(min(s, w) for s, w in zip(size, window))
    used_shift = tuple(0 if s <= w else h for s, w, h in zip(size, window, shift))
    return used_window, used_shift  # type: ignore[return-value]


def padded_size(size: Triple, window: Triple) -> Triple:
    """``size`` rounded up to whole windows."""
    return tuple(math.ceil(s / w) * w for s, w in zip(size, window))  # type: ignore[return-value]


def window_partition(x: Tensor, window: Triple) -> Tensor:
    """B×D×H×W×C → (B·windows)×(Wd·Wh·Ww)×C, windows in (d, h, w) order, tokens likewise."""
    b, d, h, w, c = x.shape
    wd, wh, ww = window
    x = x.reshape(b, d // wd, wd, h // wh, wh, w // ww, ww, c)
    return x.permute(0, 1, 3, 5, 2, 4, 6, 7).reshape(-1, wd * wh * ww, c)


def window_merge(windows: Tensor, window: Triple, batch: int, size: Triple) -> Tensor:
    """Inverse of :func:`window_partition`: (B·windows)×N×C → B×D×H×W×C."""
    d, h, w = size
    wd, wh, ww = window
    x = windows.reshape(batch, d // wd, h // wh, w // ww, wd, wh, ww, -1)
    return x.permute(0, 1, 4, 2, 5, 3, 6, 7).reshape(batch, d, h, w, -1)


def relative_position_index(window: Triple) -> Tensor:
    """N×N index (N = Wd·Wh·Ww) of each token pair's relative offset into the bias table.

    Entry (i, j) encodes ``coords[i] - coords[j]`` shifted to be non-negative, in mixed radix
    (2Wd−1, 2Wh−1, 2Ww−1); the diagonal is the table's centre row.
    """
    wd, wh, ww = window
    grids = torch.meshgrid(
        torch.arange(wd), torch.arange(wh), torch.arange(ww), indexing="ij"
    )
    coords = torch.stack(grids).flatten(1)  # 3×N
    offsets = coords[:, :, None] - coords[:, None, :]  # 3×N×N
    d_off = offsets[0] + wd - 1
    h_off = offsets[1] + wh - 1
    w_off = offsets[2] + ww - 1
    return (d_off * (2 * wh - 1) + h_off) * (2 * ww - 1) + w_off


def _seam_bands(length: int, window: int, shift: int, device: torch.device) -> Tensor:
    """Along one axis of a cyclically shifted map: 0 before the last window, 1 in the last
    window before the wrapped-around part, 2 in the wrapped-around part (all 0 if unshifted)."""
    bands = torch.zeros(length, dtype=torch.long, device=device)
    if shift:
        bands[length - window : length - shift] = 1
        bands[length - shift :] = 2
    return bands


def shift_mask(
    size: Triple,
    window: Triple,
    shift: Triple,
    device: torch.device,
    dtype: torch.dtype,
) -> Tensor:
    """windows×N×N additive mask that keeps a shifted window from attending across the seam
    of the cyclic shift (0 within a region, ``SHIFT_MASK_VALUE`` across regions)."""
    d, h, w = (_seam_bands(n, k, s, device) for n, k, s in zip(size, window, shift))
    regions = (
        d[:, None, None] * 9 + h[None, :, None] * 3 + w[None, None, :]
    )  # D×H×W labels
    labels = window_partition(regions[None, ..., None], window).squeeze(-1)  # windows×N
    differs = labels[:, None, :] != labels[:, :, None]
    mask = torch.zeros(differs.shape, device=device, dtype=dtype)
    return mask.masked_fill_(differs, SHIFT_MASK_VALUE)


def fragment_gate(
    size: Triple,
    window: Triple,
    shift: Triple,
    device: torch.device,
    dtype: torch.dtype,
) -> Tensor:
    """windows×N×N gate: L1 distance between the fragment cells of each token pair.

    The fragment grid has as many cells as the window has spatial positions (7×7 for DOVER's
    windows, i.e. the 7×7 grid of 32×32 fragments of a 224×224 view), laid over the padded
    token map by nearest-neighbour assignment, and shifted together with the tokens.
    """
    _, h, w = size
    _, grid_h, grid_w = window
    row_cell = torch.arange(h, device=device) * grid_h // h
    col_cell = torch.arange(w, device=device) * grid_w // w
    cells = torch.stack(
        torch.broadcast_tensors(row_cell[:, None], col_cell[None, :]), dim=-1
    )  # H×W×2
    cells = cells.expand(size[0], h, w, 2)[None]  # 1×D×H×W×2
    if any(shift):
        cells = torch.roll(cells, shifts=tuple(-s for s in shift), dims=(1, 2, 3))
    windows = window_partition(cells, window)  # windows×N×2
    return (windows[:, :, None, :] - windows[:, None, :, :]).abs().sum(-1).to(dtype)


# --------------------------------------------------------------------------- layers


class StageGeometry:
    """Windows, shifts, fragment gates and shift masks of one stage, built once per forward."""

    def __init__(
        self, size: Triple, window: Triple, device: torch.device, dtype: torch.dtype
    ) -> None:
        half: Triple = tuple(w // 2 for w in window)  # type: ignore[assignment]
        self.window, self.shift = effective_window(size, window, half)
        self.padded = padded_size(size, self.window)
        self._device = device
        self._dtype = dtype
        self._by_shift: dict[Triple, tuple[Triple, Triple, Tensor, Tensor | None]] = {}

    def for_block(
        self, block_shift: Triple
    ) -> tuple[Triple, Triple, Tensor, Tensor | None]:
        """(window, shift, gate, mask) for a block whose nominal shift is ``block_shift``."""
        shift: Triple = self.shift if any(block_shift) else (0, 0, 0)
        if shift not in self._by_shift:
            gate = fragment_gate(
                self.padded, self.window, shift, self._device, self._dtype
            )
            mask = None
            if any(shift):
                mask = shift_mask(
                    self.padded, self.window, shift, self._device, self._dtype
                )
            self._by_shift[shift] = (self.window, shift, gate, mask)
        return self._by_shift[shift]


class WindowAttention3D(nn.Module):
    """Multi-head self-attention inside 3-D windows, with relative (and fragment) position bias."""

    def __init__(
        self, dim: int, num_heads: int, window: Triple, fragment_bias: bool
    ) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.window = window
        self.scale = (dim // num_heads) ** -0.5
        table_rows = (2 * window[0] - 1) * (2 * window[1] - 1) * (2 * window[2] - 1)
        self.relative_position_bias_table = nn.Parameter(
            torch.zeros(table_rows, num_heads)
        )
        if fragment_bias:
            self.fragment_position_bias_table = nn.Parameter(
                torch.zeros(table_rows, num_heads)
            )
        else:
            self.register_parameter("fragment_position_bias_table", None)
        # Persistent: the published state dict stores it.
        self.register_buffer("relative_position_index", relative_position_index(window))
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)

    def _table_bias(self, table: Tensor, window: Triple) -> Tensor:
        """heads×N×N bias for a (possibly shrunk) window, read from a bias table."""
        full = self.relative_position_index.view(*self.window, *self.window)
        d, h, w = window
        index = full[:d, :h, :w, :d, :h, :w].reshape(-1)
        tokens = d * h * w
        return table[index].view(tokens, tokens, -1).permute(2, 0, 1)

    def add_position_bias_(
        self, logits: Tensor, window: Triple, gate: Tensor
    ) -> Tensor:
        """Add the position bias in place to B×nW×heads×N×N ``logits`` (``gate``: nW×N×N)."""
        relative = self._table_bias(self.relative_position_bias_table, window)
        if self.fragment_position_bias_table is None:
            return logits.add_(relative)
        # R·g + F·(1 − g) = F + g·(R − F)
        fragment = self._table_bias(self.fragment_position_bias_table, window)
        return logits.add_(fragment).addcmul_(gate.unsqueeze(1), relative - fragment)

    def forward(
        self, windows: Tensor, window: Triple, gate: Tensor, mask: Tensor | None
    ) -> Tensor:
        """(B·nW)×N×C windows → same shape. ``gate`` and ``mask`` are nW×N×N."""
        batch_windows, tokens, channels = windows.shape
        num_windows = gate.shape[0]
        qkv = self.qkv(windows).view(batch_windows, tokens, 3, self.num_heads, -1)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each (B·nW)×heads×N×c
        logits = (q * self.scale) @ k.transpose(-2, -1)
        # In place from here: the logits are the network's biggest tensor (windows×heads×N×N
        # per clip) and the matmul's backward does not need them.
        logits = logits.view(-1, num_windows, self.num_heads, tokens, tokens)
        self.add_position_bias_(logits, window, gate)
        if mask is not None:
            logits += mask.unsqueeze(1)
        attention = logits.view(batch_windows, self.num_heads, tokens, tokens).softmax(
            dim=-1
        )
        out = (attention @ v).transpose(1, 2).reshape(batch_windows, tokens, channels)
        return self.proj(out)


class Mlp(nn.Module):
    """Two-layer perceptron with GELU (the transformer block's feed-forward part)."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.act(self.fc1(x)))


class SwinBlock3D(nn.Module):
    """Pre-norm (shifted-)window attention and MLP, each with a residual connection."""

    def __init__(
        self,
        dim: int,
        num_heads: int,
        window: Triple,
        shifted: bool,
        fragment_bias: bool,
    ) -> None:
        super().__init__()
        self.window = window
        self.shift: Triple = tuple(w // 2 for w in window) if shifted else (0, 0, 0)  # type: ignore[assignment]
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention3D(dim, num_heads, window, fragment_bias)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, dim * MLP_RATIO)

    def _attend(self, x: Tensor, context: StageGeometry) -> Tensor:
        batch, d, h, w, _ = x.shape
        window, shift, gate, mask = context.for_block(self.shift)
        x = self.norm1(x)
        pd, ph, pw = context.padded
        # Pad after the norm, as the reference does: padded tokens are zeros, not masked.
        x = F.pad(x, (0, 0, 0, pw - w, 0, ph - h, 0, pd - d))
        if any(shift):
            x = torch.roll(x, shifts=tuple(-s for s in shift), dims=(1, 2, 3))
        windows = self.attn(window_partition(x, window), window, gate, mask)
        x = window_merge(windows, window, batch, context.padded)
        if any(shift):
            x = torch.roll(x, shifts=shift, dims=(1, 2, 3))
        return x[:, :d, :h, :w, :]

    def forward(self, x: Tensor, context: StageGeometry) -> Tensor:
        x = x + self._attend(x, context)
        return x + self.mlp(self.norm2(x))


class PatchMerging(nn.Module):
    """2×2 spatial merge: concatenate the four neighbours (4C), LayerNorm, project to 2C."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)
        self.norm = nn.LayerNorm(4 * dim)

    def forward(self, x: Tensor) -> Tensor:
        _, _, h, w, _ = x.shape
        x = F.pad(x, (0, 0, 0, w % 2, 0, h % 2))
        # Neighbour order (row, col): (0,0), (1,0), (0,1), (1,1) — the weights depend on it.
        merged = torch.cat(
            [
                x[:, :, 0::2, 0::2],
                x[:, :, 1::2, 0::2],
                x[:, :, 0::2, 1::2],
                x[:, :, 1::2, 1::2],
            ],
            dim=-1,
        )
        return self.reduction(self.norm(merged))


class SwinStage(nn.Module):
    """``depth`` blocks (odd ones shifted), then an optional patch merging."""

    def __init__(
        self,
        dim: int,
        depth: int,
        num_heads: int,
        window: Triple,
        fragment_bias: bool,
        downsample: bool,
    ) -> None:
        super().__init__()
        self.window = window
        self.blocks = nn.ModuleList(
            SwinBlock3D(
                dim, num_heads, window, shifted=i % 2 == 1, fragment_bias=fragment_bias
            )
            for i in range(depth)
        )
        self.downsample = PatchMerging(dim) if downsample else None

    def forward(self, x: Tensor) -> Tensor:
        """B×D×H×W×C → B×D×H'×W'×C' (halved and doubled when downsampling)."""
        size: Triple = tuple(x.shape[1:4])  # type: ignore[assignment]
        context = StageGeometry(size, self.window, x.device, x.dtype)
        for block in self.blocks:
            x = block(x, context)
        return x if self.downsample is None else self.downsample(x)


class PatchEmbed3D(nn.Module):
    """Non-overlapping 2×4×4 patches → ``dim`` channels, then a LayerNorm over channels."""

    def __init__(self, dim: int, patch: Triple = PATCH_SIZE) -> None:
        super().__init__()
        self.patch = patch
        self.proj = nn.Conv3d(3, dim, kernel_size=patch, stride=patch)
        self.norm = nn.LayerNorm(dim)

    def forward(self, clips: Tensor) -> Tensor:
        """B×3×T×H×W → B×D×H'×W'×C (channels-last); T, H, W padded up to whole patches."""
        t, h, w = clips.shape[-3:]
        pt, ph, pw = self.patch
        clips = F.pad(clips, (0, -w % pw, 0, -h % ph, 0, -t % pt))
        x = self.proj(clips).permute(0, 2, 3, 4, 1)
        return self.norm(x)


class SwinTransformer3D(nn.Module):
    """The technical backbone: B×3×T×H×W clips → B×768×T/2×H/32×W/32 feature maps."""

    def __init__(
        self,
        embed_dim: int = EMBED_DIM,
        depths: Sequence[int] = DEPTHS,
        num_heads: Sequence[int] = NUM_HEADS,
        window: Triple = WINDOW_SIZE,
        fragment_bias_stages: Sequence[bool] = FRAGMENT_BIAS_STAGES,
    ) -> None:
        super().__init__()
        self.patch_embed = PatchEmbed3D(embed_dim)
        self.layers = nn.ModuleList(
            SwinStage(
                dim=embed_dim * 2**i,
                depth=depth,
                num_heads=heads,
                window=window,
                fragment_bias=fragment_bias,
                downsample=i < len(depths) - 1,
            )
            for i, (depth, heads, fragment_bias) in enumerate(
                zip(depths, num_heads, fragment_bias_stages)
            )
        )
        self.num_features = embed_dim * 2 ** (len(depths) - 1)
        self.norm = nn.LayerNorm(self.num_features)

    def forward(self, clips: Tensor) -> Tensor:
        x = self.patch_embed(clips)
        for stage in self.layers:
            x = stage(x)
        return self.norm(x).permute(0, 4, 1, 2, 3)


__all__ = [
    "SwinTransformer3D",
    "WindowAttention3D",
    "effective_window",
    "fragment_gate",
    "relative_position_index",
    "shift_mask",
    "window_merge",
    "window_partition",
]
