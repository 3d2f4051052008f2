"""Independent rebuilds of the organisers' computations, for parity tests.

Written from the facts of the starter code (github ``varunj/cvpr-vqe``), not from vqe's modules:
the VQA is a functional forward over a raw state dict in the official key layout, DOVER's input
is built from an OpenCV-style BGR uint8 frame the way ``label_dover.py`` and
``dover_datasets.py`` do, and the loss is ``train_vqe.py::compute_loss`` on the (v − 128)/128
scale. The variants (``gate``, ``head``, ``channel_order``) exist so that a test can show that
its check would catch the wrong reading.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import torch
import torch.nn.functional as F
from fixture_files import FIXTURES
from torch import Tensor

IMAGENET_MEAN = (123.675, 116.28, 103.53)
IMAGENET_STD = (58.395, 57.12, 57.375)


def fixture_layout(name: str) -> list[tuple[str, tuple[int, ...], str]]:
    """(key, shape, dtype) rows of ``tests/fixtures/<name>``."""
    rows = []
    for line in (FIXTURES / name).read_text().splitlines():
        if not line or line.startswith("#") or line.startswith("key\t"):
            continue
        key, shape, dtype = line.split("\t")
        rows.append((key, tuple(int(d) for d in shape.strip("()").split(",") if d), dtype))
    return rows


def official_vqa_weights(seed: int = 0, head_spread: float = 1.0) -> dict[str, Tensor]:
    """A random state dict in the official VQA layout, with BatchNorm statistics that matter.

    Convolutions are He-normal so that the signal survives 13 blocks. ``head_spread`` scales the
    first Linear layer of each head up and the last one down by that factor: the outputs stay
    in range (the clamps stay inactive) while hidden head units exceed 6, where ReLU and ReLU6
    part ways.
    """
    generator = torch.Generator().manual_seed(seed)
    state: dict[str, Tensor] = {}
    for key, shape, dtype in fixture_layout("vqa_state_dict_keys.tsv"):
        if dtype == "int64":
            state[key] = torch.tensor(100)
        elif key.endswith("running_var"):
            state[key] = torch.rand(shape, generator=generator) + 0.5
        elif key.endswith("running_mean"):
            state[key] = 0.1 * torch.randn(shape, generator=generator)
        elif key.endswith(".bias"):
            state[key] = 0.1 * torch.randn(shape, generator=generator)
        elif len(shape) == 4:  # convolution: He-normal over its fan-in
            fan_in = shape[1] * shape[2] * shape[3]
            state[key] = torch.randn(shape, generator=generator) * (2.0 / fan_in) ** 0.5
        elif len(shape) == 2:  # Linear
            state[key] = torch.randn(shape, generator=generator) / shape[1] ** 0.5
        else:  # BatchNorm weight
            state[key] = 1.0 + 0.1 * torch.randn(shape, generator=generator)
    for first in ("main_head.1", "aux_head.0"):
        state[f"{first}.weight"] = state[f"{first}.weight"] * head_spread
        state[f"{first}.bias"] = state[f"{first}.bias"] * head_spread
    for last in ("main_head.13", "aux_head.2"):
        state[f"{last}.weight"] = state[f"{last}.weight"] / head_spread
    return state


def _batch_norm(x: Tensor, state: Mapping[str, Tensor], prefix: str) -> Tensor:
    return F.batch_norm(
        x,
        state[f"{prefix}.running_mean"],
        state[f"{prefix}.running_var"],
        state[f"{prefix}.weight"],
        state[f"{prefix}.bias"],
        training=False,
        eps=1e-3,  # operations.py: EPS_BN
    )


GATES: dict[str, Callable[[Tensor], Tensor]] = {
    "relu6": F.relu6,  # the official scale_activation
    "hard_sigmoid": lambda e: F.relu6(e + 3.0) / 6.0,
}
HEAD_ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {"relu": F.relu, "relu6": F.relu6}


def official_vqa(
    state: Mapping[str, Tensor],
    x1: Tensor,
    x2: Tensor,
    d1: Tensor,
    d2: Tensor,
    gate: str = "relu6",
    head: str = "relu",
) -> tuple[Tensor, Tensor, Tensor]:
    """``UnetLite.forward`` of the starter on frames in its convention (BGR, (v − 128)/128)."""
    scale, act = GATES[gate], HEAD_ACTIVATIONS[head]

    def encode(x: Tensor) -> Tensor:
        for level in range(5):
            if level:
                x = F.avg_pool2d(x, kernel_size=2, stride=2)
            block = 0
            while f"_encoder.{level}.{block}.0._ops.0.0.weight" in state:
                for stage in (0, 1):  # 1×1 conv, then 3×3 depthwise
                    prefix = f"_encoder.{level}.{block}.{stage}._ops.0"
                    weight = state[f"{prefix}.0.weight"]
                    groups = 1 if stage == 0 else weight.shape[0]
                    x = F.conv2d(x, weight, padding=weight.shape[-1] // 2, groups=groups)
                    x = F.relu6(_batch_norm(x, state, f"{prefix}.1"))
                block += 1
            se = f"_encoder.{level}.{block}._excitation"
            e = F.conv2d(x.mean(dim=(2, 3), keepdim=True), state[f"{se}.0.weight"])
            e = F.relu6(_batch_norm(e, state, f"{se}.1"))
            e = F.conv2d(e, state[f"{se}.3.weight"])
            x = x * scale(e)
        return x.mean(dim=(2, 3))

    def mlp(z: Tensor, name: str) -> Tensor:
        indices = sorted(
            int(key.split(".")[1])
            for key in state
            if key.startswith(f"{name}.") and key.endswith(".weight")
        )
        for position, index in enumerate(indices):
            z = F.linear(z, state[f"{name}.{index}.weight"], state[f"{name}.{index}.bias"])
            if position < len(indices) - 1:
                z = act(z)
        return z

    z1 = torch.cat([encode(x1), d1.reshape(-1, 1)], dim=1)
    z2 = torch.cat([encode(x2), d2.reshape(-1, 1)], dim=1)
    p = mlp(torch.cat([z1, z2], dim=1), "main_head").clamp(0.0, 1.0)
    return p, mlp(z1, "aux_head").clamp(-1.0, 1.0), mlp(z2, "aux_head").clamp(-1.0, 1.0)


def official_vqa_input(bgr_uint8: np.ndarray) -> Tensor:
    """An OpenCV frame (H×W×3 BGR uint8) as the starter's model sees it: 1×3×H×W (v − 128)/128."""
    return (torch.from_numpy(bgr_uint8).permute(2, 0, 1).float()[None] - 128.0) / 128.0


def official_dover_views(
    bgr_uint8: np.ndarray,
    rows: Tensor,
    cols: Tensor,
    num_frames: int,
    channel_order: str = "bgr",
) -> dict[str, Tensor]:
    """DOVER's views of one frame as the starter builds them (for frames of at least 224²).

    The frame reaches DOVER as an 8-bit tensor in the order OpenCV read it (BGR); the technical
    view copies 32×32 fragments at ``rows``/``cols`` (K×7×7 top-left corners: the starter draws
    them unseeded, the test passes the ones vqe drew); the aesthetic view is torchvision's
    ``Resize((224, 224))`` of the uint8 tensor — bilinear, no antialias, rounded back to uint8;
    both are then normalised with the ImageNet statistics. ``channel_order="rgb"`` is the
    wrong reading, for the test to show the difference.
    """
    image = bgr_uint8 if channel_order == "bgr" else bgr_uint8[:, :, ::-1]
    frame = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float()  # 3×H×W
    mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(3, 1, 1)
    clips = []
    for clip in range(rows.shape[0]):
        mosaic = torch.zeros(3, 224, 224)
        for i in range(7):
            for j in range(7):
                top, left = int(rows[clip, i, j]), int(cols[clip, i, j])
                mosaic[:, i * 32 : (i + 1) * 32, j * 32 : (j + 1) * 32] = frame[
                    :, top : top + 32, left : left + 32
                ]
        clips.append((mosaic - mean) / std)
    resized = F.interpolate(
        frame[None], size=(224, 224), mode="bilinear", align_corners=False, antialias=False
    )[0].round()
    aesthetic = (resized - mean) / std

    def as_clip(images: Tensor) -> Tensor:  # K×3×H×W → K×3×T×H×W, T identical frames
        return images.unsqueeze(2).expand(-1, -1, num_frames, -1, -1)

    return {"technical": as_clip(torch.stack(clips)), "aesthetic": as_clip(aesthetic[None])}


def official_fused_score(branch_maps: list[Tensor]) -> float:
    """``label_dover.py::fuse_results`` on the branch means ``[technical, aesthetic]``."""
    technical, aesthetic = (float(r.mean()) for r in branch_maps)
    x = (aesthetic - 0.1107) / 0.07355 * 0.6104 + (technical + 0.08285) / 0.03774 * 0.3896
    return float(1.0 / (1.0 + np.exp(-x)))


def official_loss(
    y_hat: Tensor, y: Tensor, p: Tensor, aux: Tensor, supervised: bool
) -> Tensor:
    """``compute_loss`` of the starter: frames on the (v − 128)/128 scale, weights 1 and 1."""
    aux = aux.clone()
    aux[:, 3] = 1 - aux[:, 3]
    scores = torch.cat((p, aux), dim=1)
    loss = F.mse_loss(scores, torch.ones_like(scores))
    if supervised:
        loss = loss + F.mse_loss(y_hat, y)
    return loss
