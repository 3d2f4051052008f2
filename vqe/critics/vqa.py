"""The Siamese VQA critic ("UnetLite" encoder + preference and auxiliary heads).

``VQA(x1, x2, d1, d2) -> (p, aux1, aux2)``: ``p`` (N×1) is the probability that ``x1`` is
preferred over ``x2``, clamped to [0, 1]; ``aux1``/``aux2`` (N×11) are the scores a1…a11 of each
input, clamped to [-1, 1] (all grow with quality except a4, which falls). ``x1``/``x2`` are
frames in the VQA's own convention (BGR, ``(v - 128) / 128``), exactly like the reference
network; ``d1``/``d2`` are their DOVER scores. :meth:`VQA.compare` is the adapter that takes
internal frames (RGB, [0, 1]) and converts them with :func:`vqe.conventions.to_vqa`.

Every detail below is a fact of the organisers' network (starter code, github
``varunj/cvpr-vqe``: ``vqe/src/model_vqa.py``, ``vqe/src/operations.py`` and
``vqe/config/model_vqa/unetlite_relu6.yaml``), and the state-dict keys are those of
``tests/fixtures/vqa_state_dict_keys.tsv``.

``_encoder.L`` (L = 0…4), one per level, with 32/64/128/256/512 output channels::

    _encoder.L.B.0._ops.0.{0,1}   block B, 1×1 conv (no bias) + BatchNorm, then ReLU6
    _encoder.L.B.1._ops.0.{0,1}   block B, 3×3 depthwise conv (no bias, pad 1) + BatchNorm, ReLU6
    _encoder.L.S._excitation.*    squeeze-excite, S = number of blocks (2, 2, 3, 3, 3):
        global mean, then .0 1×1 conv C → 2C (no bias), .1 BatchNorm(2C), .2 ReLU6,
        .3 1×1 conv 2C → C (no bias); the scale is a plain ReLU6 of that excitation, so the
        level's output is ``x · ReLU6(e)`` — a gain in [0, 6], not a hard sigmoid
        (``scale_activation: relu6``, ``final_bn: False`` in the starter's config)

Only the first block of a level changes the channel count (its 1×1 conv); every BatchNorm
has eps 1e-3 (``EPS_BN`` in ``operations.py``). Levels are separated by 2×2 average pooling
(floor mode, so frames need at least 16×16 pixels); after the last level a global spatial
mean gives 512 features, and the input's DOVER score is appended: ``[512 features, DOVER]``.

``main_head`` (indices with weights: 1, 4, 7, 10, 13) on ``[x1's 513-vector, x2's]``::

    0 Dropout, 1 Linear(1026→512), 2 ReLU, 3 Dropout, 4 Linear(512→256), 5 ReLU,
    6 Dropout, 7 Linear(256→128), 8 ReLU, 9 Dropout, 10 Linear(128→64), 11 ReLU,
    12 Dropout, 13 Linear(64→1)

**Frozen critic speed.** :func:`load_vqa` strictly loads the stored weights into this layout and
then folds each eval-mode BatchNorm into its convolution (:class:`FoldedEncoder`, non-persistent
buffers: the state dict stays the official one). The critic then encodes through the folded
convs in channels-last memory, the same function to float rounding (1e-6 relative) at about half
the cost of forward and backward; :meth:`VQA.encode_reference` keeps the layer-by-layer path.
:meth:`VQA.input_features` / :meth:`VQA.compare_with_features` let a caller reuse the 512
features of a fixed input view (whole stored frames) instead of encoding it every step.

``aux_head``: 0 Linear(513→128), 1 ReLU, 2 Linear(128→11). The heads use plain ReLU (one shared
``nn.ReLU`` in ``model_vqa.py``), the encoder ReLU6. No sigmoid or tanh follows the last
layers: the outputs are only clamped. Dropout (rate 0 in the starter's config) is inactive in a
frozen critic anyway.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vqe.conventions import to_vqa
from vqe.critics.frozen import load_once
from vqe.critics.weights import load_strict, read_state_dict, resolve_weights, weights_digest

log = logging.getLogger(__name__)

#: Output channels of the five encoder levels, and the number of conv blocks in each.
LEVEL_CHANNELS = (32, 64, 128, 256, 512)
LEVEL_BLOCKS = (2, 2, 3, 3, 3)
#: Spatial size is halved between levels, so this is the smallest frame side the VQA accepts.
MIN_SIDE = 2 ** (len(LEVEL_CHANNELS) - 1)
BN_EPS = 1e-3
SE_EXPANSION = 2
FEATURES = LEVEL_CHANNELS[-1]
#: Encoder features plus the DOVER score.
EMBEDDING = FEATURES + 1
MAIN_HEAD_WIDTHS = (512, 256, 128, 64)
AUX_HIDDEN = 128
NUM_AUX_SCORES = 11
#: a4 (0-based index 3 of the auxiliary scores) falls with quality; all others grow.
DECREASING_AUX_INDEX = 3
#: Dropout rate of the main head (``fc_dropout: 0.0`` in the starter's config); inactive in a
#: frozen critic either way, kept for the module layout.
HEAD_DROPOUT = 0.0

#: Key prefix of the VQA weights inside the organisers' Lightning checkpoint.
CHECKPOINT_PREFIX = "_model."
WEIGHTS_FILE = "VQA.ckpt"
CONFIG_GROUP = "model_vqa"
WHERE_TO_GET = "from the NTIRE 2025 VQE challenge organisers' starter kit"
#: Seed of the random critic used when no weights are available (tests, demo).
RANDOM_SEED = 0


# --------------------------------------------------------------------------- building blocks


class ConvBNReLU6(nn.Sequential):
    """Convolution without bias, BatchNorm (eps 1e-3), ReLU6: keys ``0.weight``, ``1.*``."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, groups: int = 1):
        super().__init__(
            nn.Conv2d(
                in_channels,
                out_channels,
                kernel_size,
                padding=kernel_size // 2,
                groups=groups,
                bias=False,
            ),
            nn.BatchNorm2d(out_channels, eps=BN_EPS),
            nn.ReLU6(),
        )


class ConvOp(nn.Module):
    """One convolution stage, stored under ``_ops.0`` as in the reference weights."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, groups: int = 1):
        super().__init__()
        self._ops = nn.Sequential(ConvBNReLU6(in_channels, out_channels, kernel_size, groups))

    def forward(self, x: Tensor) -> Tensor:
        return self._ops(x)


def separable_block(in_channels: int, out_channels: int) -> nn.Sequential:
    """1×1 conv (mixes channels) then 3×3 depthwise conv (spatial context)."""
    return nn.Sequential(
        ConvOp(in_channels, out_channels, kernel_size=1),
        ConvOp(out_channels, out_channels, kernel_size=3, groups=out_channels),
    )


class SqueezeExcite(nn.Module):
    """Channel re-weighting ``x · ReLU6(e)``, ``e`` from the global mean through a 2× wider
    1×1-conv bottleneck."""

    def __init__(self, channels: int):
        super().__init__()
        hidden = channels * SE_EXPANSION
        self._excitation = nn.Sequential(
            nn.Conv2d(channels, hidden, kernel_size=1, bias=False),
            nn.BatchNorm2d(hidden, eps=BN_EPS),
            nn.ReLU6(),
            nn.Conv2d(hidden, channels, kernel_size=1, bias=False),
        )
        # The official scale activation: a plain ReLU6, a per-channel gain in [0, 6].
        self._scale = nn.ReLU6()

    def forward(self, x: Tensor) -> Tensor:
        return x * self._scale(self._excitation(x.mean(dim=(2, 3), keepdim=True)))


def encoder_level(in_channels: int, out_channels: int, blocks: int) -> nn.Sequential:
    layers = [separable_block(in_channels, out_channels)]
    layers += [separable_block(out_channels, out_channels) for _ in range(blocks - 1)]
    return nn.Sequential(*layers, SqueezeExcite(out_channels))


def main_head() -> nn.Sequential:
    layers: list[nn.Module] = []
    width = 2 * EMBEDDING
    for hidden in MAIN_HEAD_WIDTHS:
        layers += [nn.Dropout(HEAD_DROPOUT), nn.Linear(width, hidden), nn.ReLU()]
        width = hidden
    layers += [nn.Dropout(HEAD_DROPOUT), nn.Linear(width, 1)]
    return nn.Sequential(*layers)


def aux_head() -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(EMBEDDING, AUX_HIDDEN), nn.ReLU(), nn.Linear(AUX_HIDDEN, NUM_AUX_SCORES)
    )


# --------------------------------------------------------------------------- BatchNorm folding


def fold_conv_bn(conv: nn.Conv2d, norm: nn.BatchNorm2d) -> tuple[Tensor, Tensor]:
    """(weight, bias) of one conv equal to ``norm(conv(x))`` in eval mode (exact up to float
    rounding: BN in eval is a per-channel affine map, which a bias-free conv absorbs)."""
    assert norm.running_var is not None and norm.running_mean is not None
    with torch.no_grad():  # in float64, so the fold itself adds no rounding worth speaking of
        scale = norm.weight.double() / torch.sqrt(norm.running_var.double() + norm.eps)
        weight = conv.weight.double() * scale.reshape(-1, 1, 1, 1)
        bias = norm.bias.double() - norm.running_mean.double() * scale
    return weight.to(conv.weight.dtype), bias.to(conv.weight.dtype)


class FoldedConv(nn.Module):
    """Conv with its BatchNorm folded in (one op and one activation tensor fewer), then ReLU6.

    On the CPU (fp32, or bf16 under autocast) the two run as one oneDNN convolution with the
    clamp fused in (:class:`FrozenConvReLU6`: no separate pass over the activations; forward +
    backward of the encoder at 8×368×640 on one thread 0.86× the time, the same values and
    gradients). Elsewhere (CUDA) ReLU6 runs in place on the conv's output, which nothing else
    reads."""

    def __init__(self, block: ConvBNReLU6) -> None:
        super().__init__()
        conv, norm = cast(nn.Conv2d, block[0]), cast(nn.BatchNorm2d, block[1])
        weight, bias = fold_conv_bn(conv, norm)
        # Non-persistent: derived data, never in the state dict (which stays the official one).
        self.register_buffer("weight", weight, persistent=False)
        self.register_buffer("bias", bias, persistent=False)
        self.padding = cast(tuple[int, int], conv.padding)
        self.groups = conv.groups

    def forward(self, x: Tensor) -> Tensor:
        dtype = _fused_conv_dtype(x, self.weight)
        if dtype is not None:
            weight, bias = self.weight.to(dtype), self.bias.to(dtype)
            return FrozenConvReLU6.apply(x.to(dtype), weight, bias, self.padding, self.groups)
        convolved = F.conv2d(x, self.weight, self.bias, 1, self.padding, 1, self.groups)
        return F.relu6(convolved, inplace=True)


def _fused_conv_dtype(x: Tensor, weight: Tensor) -> torch.dtype | None:
    """The dtype the fused oneDNN conv runs in for ``x`` — fp32, or bf16 under CPU autocast
    (as autocast would run the conv) — or None where it does not apply (CUDA, other dtypes)."""
    if x.device.type != "cpu" or not torch.backends.mkldnn.is_available():
        return None
    if torch.is_autocast_enabled("cpu"):
        autocast_dtype = torch.get_autocast_dtype("cpu")
        return autocast_dtype if autocast_dtype == torch.bfloat16 else None
    return torch.float32 if x.dtype == weight.dtype == torch.float32 else None


class FrozenConvReLU6(torch.autograd.Function):
    """ReLU6(conv(x)) with frozen weights, differentiable in ``x`` only: the forward is oneDNN's
    convolution with the clamp as a fused post-op; the backward masks the gradient where the
    output is clamped (as ReLU6's own backward does, from the output) and takes the conv's
    input gradient alone — the weights get none."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any, x: Tensor, weight: Tensor, bias: Tensor, padding: tuple[int, int], groups: int
    ) -> Tensor:
        output = torch.ops.mkldnn._convolution_pointwise(
            x, weight, bias, list(padding), [1, 1], [1, 1], groups, "hardtanh", [0.0, 6.0], ""
        )
        ctx.save_for_backward(x, output)
        ctx.weight, ctx.padding, ctx.groups = weight, list(padding), groups
        return output

    @staticmethod
    def backward(  # type: ignore[override]
        ctx: Any, grad_output: Tensor
    ) -> tuple[Tensor, None, None, None, None]:
        x, output = ctx.saved_tensors
        grad = torch.ops.aten.hardtanh_backward(grad_output, output, 0.0, 6.0)
        grad_x, _, _ = torch.ops.aten.convolution_backward(
            grad, x, ctx.weight, None, [1, 1], ctx.padding, [1, 1], False, [0, 0], ctx.groups,
            [True, False, False],
        )  # fmt: skip
        return grad_x, None, None, None, None


class FoldedExcite(nn.Module):
    """:class:`SqueezeExcite` with the bottleneck's BatchNorm folded into its first conv."""

    def __init__(self, excite: SqueezeExcite) -> None:
        super().__init__()
        steps = excite._excitation
        weight, bias = fold_conv_bn(cast(nn.Conv2d, steps[0]), cast(nn.BatchNorm2d, steps[1]))
        self.register_buffer("squeeze_weight", weight, persistent=False)
        self.register_buffer("squeeze_bias", bias, persistent=False)
        expand = cast(nn.Conv2d, steps[3]).weight.detach().clone()
        self.register_buffer("expand_weight", expand, persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        squeezed = F.relu6(F.conv2d(x.mean(dim=(2, 3), keepdim=True), self.squeeze_weight,
                                    self.squeeze_bias))  # fmt: skip
        return x * F.relu6(F.conv2d(squeezed, self.expand_weight))


def _fold_level(level: nn.Sequential) -> nn.Sequential:
    layers: list[nn.Module] = []
    for layer in level:
        if isinstance(layer, SqueezeExcite):
            layers.append(FoldedExcite(layer))
        else:  # a separable block: two ConvOps
            layers += [FoldedConv(cast(ConvOp, op)._ops[0]) for op in layer]
    return nn.Sequential(*layers)


class FoldedEncoder(nn.Module):
    """The VQA encoder for a frozen critic: BatchNorms folded into the convs, channels-last
    activations (on the CPU the depthwise and 1×1 convs run 2–4× faster in NHWC, forward and
    backward). Same function as the encoder (to float rounding), roughly half
    the memory traffic; it holds derived copies only, so it must be rebuilt when the weights
    change (:meth:`VQA.fold_batchnorms` does so after every ``load_state_dict``)."""

    def __init__(self, encoder: nn.ModuleList, channels_last: bool = True) -> None:
        super().__init__()
        self.levels = nn.ModuleList(_fold_level(cast(nn.Sequential, lvl)) for lvl in encoder)
        self.channels_last = channels_last

    def forward(self, frames: Tensor) -> Tensor:
        x = frames.contiguous(memory_format=torch.channels_last) if self.channels_last else frames
        for index, level in enumerate(self.levels):
            if index > 0:
                x = F.avg_pool2d(x, kernel_size=2)
            x = level(x)
        return x.mean(dim=(2, 3))


# --------------------------------------------------------------------------- network


def _refold_after_loading(module: nn.Module, incompatible: object) -> None:
    """New weights make a folded copy stale: fold them again (keeping its memory format)."""
    del incompatible
    vqa = cast(VQA, module)
    if vqa.folded is not None:
        vqa.fold_batchnorms(vqa.folded.channels_last)


def _check_frames(frames: Tensor, name: str) -> None:
    if frames.ndim != 4 or frames.shape[1] != 3:
        raise ValueError(f"VQA: {name} must be N×3×H×W, got shape {tuple(frames.shape)}")
    if not frames.is_floating_point():
        raise ValueError(f"VQA: {name} must be a floating-point tensor, got {frames.dtype}")
    if min(frames.shape[-2:]) < MIN_SIDE:
        raise ValueError(
            f"VQA: {name} is {frames.shape[-2]}×{frames.shape[-1]}; the encoder halves the size "
            f"four times, so both sides must be at least {MIN_SIDE} pixels"
        )


def _as_column(scores: Tensor, batch: int, name: str) -> Tensor:
    """DOVER scores given as N or N×1 → N×1."""
    if scores.ndim not in (1, 2) or scores.numel() != batch or scores.shape[0] != batch:
        raise ValueError(
            f"VQA: {name} must hold one DOVER score per frame (shape ({batch},) or ({batch}, 1)),"
            f" got shape {tuple(scores.shape)}"
        )
    return scores.reshape(batch, 1)


class VQA(nn.Module):
    """Siamese preference critic; see the module docstring for the layout and conventions."""

    def __init__(self) -> None:
        super().__init__()
        in_channels = (3, *LEVEL_CHANNELS[:-1])
        self._encoder = nn.ModuleList(
            encoder_level(c_in, c_out, blocks)
            for c_in, c_out, blocks in zip(in_channels, LEVEL_CHANNELS, LEVEL_BLOCKS)
        )
        self.main_head = main_head()
        self.aux_head = aux_head()
        # Set by fold_batchnorms() on a frozen critic; derived, never in the state dict.
        self.folded: FoldedEncoder | None = None
        self.register_load_state_dict_post_hook(_refold_after_loading)
        #: Identifies the weights (file digest, or the random critic's seed digest); set by
        #: :func:`load_vqa`. Cache keys of input features use it.
        self.weights_digest = ""
        #: The weights file it loaded ("" for a random critic); results name it.
        self.weights_file = ""

    def fold_batchnorms(self, channels_last: bool = True) -> VQA:
        """Encode through a :class:`FoldedEncoder` from now on (in eval mode; the frozen critic
        always is). The state dict and strict loading are untouched; returns ``self``."""
        device = next(self.parameters()).device
        self.folded = FoldedEncoder(self._encoder, channels_last).to(device)
        return self

    def encode(self, frames: Tensor) -> Tensor:
        """N×3×H×W frames in the VQA convention → N×512 features."""
        if self.folded is not None and not self.training:
            return self.folded(frames)
        return self.encode_reference(frames)

    def encode_reference(self, frames: Tensor) -> Tensor:
        """:meth:`encode` through the stored layers, BatchNorm by BatchNorm (as the reference)."""
        x = frames
        for index, level in enumerate(self._encoder):
            if index > 0:
                x = F.avg_pool2d(x, kernel_size=2)
            x = level(x)
        return x.mean(dim=(2, 3))

    def forward(
        self, x1: Tensor, x2: Tensor, d1: Tensor, d2: Tensor
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Frames in the VQA convention (BGR, (v−128)/128) and their DOVER scores →
        (p N×1 in [0, 1], aux1 N×11 in [-1, 1], aux2 N×11 in [-1, 1])."""
        _check_frames(x1, "x1")
        _check_frames(x2, "x2")
        batch = x1.shape[0]
        if x2.shape[0] != batch:
            raise ValueError(f"VQA: x1 and x2 hold {batch} and {x2.shape[0]} frames; pair them 1:1")
        return self.score_features(self.encode(x1), self.encode(x2), d1, d2)

    def score_features(
        self, features1: Tensor, features2: Tensor, d1: Tensor, d2: Tensor
    ) -> tuple[Tensor, Tensor, Tensor]:
        """The heads on N×512 encoder features (from :meth:`encode`) and DOVER scores."""
        batch = features1.shape[0]
        if features2.shape != features1.shape or features1.shape[1:] != (FEATURES,):
            raise ValueError(
                f"VQA: features must both be N×{FEATURES}, got {tuple(features1.shape)} and "
                f"{tuple(features2.shape)}"
            )
        z1 = torch.cat([features1, _as_column(d1, batch, "d1").to(features1.dtype)], dim=1)
        z2 = torch.cat([features2, _as_column(d2, batch, "d2").to(features2.dtype)], dim=1)
        p = self.main_head(torch.cat([z1, z2], dim=1)).clamp(0.0, 1.0)
        aux1 = self.aux_head(z1).clamp(-1.0, 1.0)
        aux2 = self.aux_head(z2).clamp(-1.0, 1.0)
        return p, aux1, aux2

    def compare(
        self, frames1: Tensor, frames2: Tensor, dover1: Tensor, dover2: Tensor
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Adapter: internal frames (RGB, [0, 1], N×3×H×W) → :meth:`forward`'s outputs.

        Differentiable: gradients reach ``frames1``/``frames2`` (and the DOVER scores).
        """
        return self(to_vqa(frames1), to_vqa(frames2), dover1, dover2)

    def input_features(self, frames: Tensor) -> Tensor:
        """Internal frames → N×512 encoder features, e.g. to cache those of a fixed view of an
        input (whole stored frames, no augmentation): the frozen encoder never changes them."""
        _check_frames(frames, "frames")
        return self.encode(to_vqa(frames))

    def compare_with_features(
        self, frames1: Tensor, features2: Tensor, dover1: Tensor, dover2: Tensor
    ) -> tuple[Tensor, Tensor, Tensor]:
        """:meth:`compare` with the second frames given by their cached
        :meth:`input_features`: the same outputs, one encoder pass fewer."""
        _check_frames(frames1, "frames1")
        return self.score_features(self.encode(to_vqa(frames1)), features2, dover1, dover2)


class VqaInputEncoder:
    """The VQA's encoder as a frame scorer of :mod:`vqe.data.input_cache`: internal frames →
    N×512 input features (:meth:`VQA.input_features`), keyed by the weights, so the data side
    can cache and serve the features of stored input frames without knowing the critic."""

    def __init__(self, vqa: VQA) -> None:
        if not vqa.weights_digest:
            raise ValueError(
                "VqaInputEncoder: the VQA has no weights digest (load it with load_vqa), so its "
                "cached features could not be told from another critic's"
            )
        self.vqa = vqa

    @property
    def cache_key(self) -> str:
        return f"vqa-{self.vqa.weights_digest}"

    def parameters(self) -> Iterator[nn.Parameter]:
        return self.vqa.parameters()

    def to(self, device: torch.device | str) -> VqaInputEncoder:
        self.vqa.to(device)
        return self

    def __call__(self, frames: Tensor) -> Tensor:
        with torch.no_grad():
            return self.vqa.input_features(frames)


def higher_is_better(p: Tensor, aux: Tensor) -> Tensor:
    """``[p, a1, a2, a3, 1 − a4, a5 … a11]`` (N×12): every column grows with quality.

    Built by concatenation, without in-place edits, so it is safe inside a loss graph.
    """
    falling = DECREASING_AUX_INDEX
    return torch.cat(
        [p, aux[:, :falling], 1.0 - aux[:, falling : falling + 1], aux[:, falling + 1 :]], dim=1
    )


# --------------------------------------------------------------------------- loading


def _random_vqa() -> VQA:
    """A seeded random critic whose outputs still depend on the frames.

    PyTorch's default init shrinks the signal about ten-fold per conv block, so after 13 blocks
    the features would be ~1e-13 and the scores constant. He-normal convolutions keep the signal
    alive (features ~1e-3), and a 0.5 bias on the last main-head layer keeps ``p`` inside the clamp, so
    gradients reach the frames as they do with trained weights.
    """
    with torch.random.fork_rng(devices=[]):  # seeded without touching the caller's stream
        torch.manual_seed(RANDOM_SEED)
        model = VQA()
        for module in model.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
        nn.init.constant_(cast(nn.Linear, model.main_head[-1]).bias, 0.5)
    model.weights_digest = (
        "random-" + hashlib.sha256(f"VQA random init, seed {RANDOM_SEED}".encode()).hexdigest()[:9]
    )
    return model.eval().fold_batchnorms()


def _vqa_from_file(path: Path) -> VQA:
    model = VQA()
    load_strict(model, read_state_dict(path, prefix=CHECKPOINT_PREFIX), source=path)
    model.weights_digest = weights_digest(path)
    model.weights_file = str(path)
    return model.eval().fold_batchnorms()  # after strict loading, on the official weights


def load_vqa(path: str | Path | None, allow_random: bool = False) -> VQA:
    """The frozen VQA critic, on the CPU when first loaded; loaded once per process.

    ``path`` is ``VQA.ckpt`` (a Lightning checkpoint whose ``state_dict`` keys carry the
    ``_model.`` prefix) or a plain state dict; it is loaded strictly. A path that is not a file
    raises :class:`~vqe.critics.weights.CriticWeightsMissingError`; so does ``None``, unless
    ``allow_random`` is set: then a seeded random critic is returned with a loud warning.
    Its BatchNorms are folded after loading (:meth:`VQA.fold_batchnorms`).
    """
    weights = resolve_weights(
        path,
        allow_random,
        critic="VQA",
        file_name=WEIGHTS_FILE,
        config_group=CONFIG_GROUP,
        where_to_get=WHERE_TO_GET,
    )
    if weights is None:
        critic = load_once("vqa", None, _random_vqa)
    else:
        critic = load_once("vqa", weights, lambda: _vqa_from_file(weights))
        log.info("VQA critic loaded from %s", weights)
    return cast(VQA, critic)


def build_vqa(weights: str | Path | None = None, allow_random_critics: bool = False) -> VQA:
    """Hydra entry point for ``configs/model_vqa``: the config keys → :func:`load_vqa`."""
    return load_vqa(weights, allow_random=allow_random_critics)
