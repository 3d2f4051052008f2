"""The one place that knows colour order and value scales.

Inside vqe a frame is an RGB float tensor in [0, 1], laid out N×C×H×W (or C×H×W for a
single frame). Everything else — OpenCV's BGR uint8 arrays, PyAV's RGB uint8 arrays, the VQA
critic's BGR ``(v - 128) / 128`` and DOVER's ImageNet-normalised BGR 0–255 — is converted here
and nowhere else. The tensor conversions are plain arithmetic on torch tensors, so gradients flow
through them.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch

#: Pixel values of 8-bit frames run from 0 to this value.
UINT8_MAX = 255.0

#: The VQA critic (and the official RMSE) see 8-bit values v as (v - VQA_OFFSET) / VQA_SCALE.
VQA_OFFSET = 128.0
VQA_SCALE = 128.0

#: The challenge budget: multiply-accumulates per 1280×720 frame of the deploy graph. The configs
#: read it as ``${vqe.mac_budget:}`` (vqe/config_root.py), so this is its only copy.
MAC_BUDGET = 20.0e9
BUDGET_HEIGHT = 720
BUDGET_WIDTH = 1280

#: BT.601 luma weights for R, G, B (flicker, tone curves): Y = 0.299 R + 0.587 G + 0.114 B.
LUMA_WEIGHTS = np.array([0.299, 0.587, 0.114], dtype=np.float32)

#: Mean luma (in [0, 1]) of a well-exposed frame: what the baseline's exposure correction aims at
#: and what the clean-photo pool's training targets are re-exposed to (a conferencing enhancer
#: should light every scene well, not keep a dusk photograph dark).
WELL_EXPOSED_LUMA = 0.45

#: DOVER normalises 0–255 values with the ImageNet statistics (in 0–255 units), listed for the
#: channels in the order they reach it.
DOVER_MEAN = (123.675, 116.28, 103.53)
DOVER_STD = (58.395, 57.12, 57.375)
#: The channel order in which the official pipeline hands frames to DOVER: OpenCV's BGR frames go
#: in unconverted (starter ``train_vqe.py`` → ``label_dover.py``), so the "R" statistics above
#: are applied to blue. ``"rgb"`` is DOVER as published, for use on its own — not the challenge's.
DoverChannelOrder = Literal["bgr", "rgb"]
OFFICIAL_DOVER_CHANNEL_ORDER: DoverChannelOrder = "bgr"
DOVER_CHANNEL_ORDERS: tuple[DoverChannelOrder, ...] = ("bgr", "rgb")


# --------------------------------------------------------------------------- numpy <-> tensor


def _check_hwc_uint8(image: np.ndarray, what: str) -> None:
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(
            f"{what}: expected an H×W×3 uint8 array, got dtype={image.dtype} shape={image.shape}"
        )


def swap_rgb_bgr_uint8(image: np.ndarray) -> np.ndarray:
    """H×W×3 uint8 RGB ↔ BGR (OpenCV) as a contiguous array; its own inverse. Pure numpy, so
    frame writers in worker processes need no torch."""
    _check_hwc_uint8(image, "swap_rgb_bgr_uint8")
    return np.ascontiguousarray(image[:, :, ::-1])


def rgb_uint8_to_tensor(image: np.ndarray) -> torch.Tensor:
    """H×W×3 RGB uint8 (PyAV ``rgb24``, PIL, scikit-image) → 3×H×W RGB float in [0, 1]."""
    _check_hwc_uint8(image, "rgb_uint8_to_tensor")
    return torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float().div_(UINT8_MAX)


def bgr_uint8_to_tensor(image: np.ndarray) -> torch.Tensor:
    """H×W×3 BGR uint8 (OpenCV) → 3×H×W RGB float in [0, 1]."""
    _check_hwc_uint8(image, "bgr_uint8_to_tensor")
    return rgb_uint8_to_tensor(swap_rgb_bgr_uint8(image))


def tensor_to_rgb_uint8(frame: torch.Tensor) -> np.ndarray:
    """3×H×W RGB float in [0, 1] → H×W×3 RGB uint8, rounded and clipped."""
    if frame.ndim != 3 or frame.shape[0] != 3:
        raise ValueError(f"tensor_to_rgb_uint8: expected a 3×H×W tensor, got {tuple(frame.shape)}")
    scaled = frame.detach().float().clamp(0.0, 1.0).mul(UINT8_MAX).round()
    return scaled.to(torch.uint8).permute(1, 2, 0).contiguous().cpu().numpy()


def tensor_to_bgr_uint8(frame: torch.Tensor) -> np.ndarray:
    """3×H×W RGB float in [0, 1] → H×W×3 BGR uint8 (OpenCV), rounded and clipped."""
    return swap_rgb_bgr_uint8(tensor_to_rgb_uint8(frame))


def rgb_to_bgr(frames: torch.Tensor) -> torch.Tensor:
    """Swap the channel order of an N×3×H×W (or 3×H×W) tensor; its own inverse."""
    return frames.flip(-3)


bgr_to_rgb = rgb_to_bgr


# --------------------------------------------------------------------------- critic scales


def to_vqa(frames: torch.Tensor) -> torch.Tensor:
    """Internal RGB [0, 1] → the VQA critic's BGR ``(v - 128) / 128`` with v in 0–255."""
    return (rgb_to_bgr(frames) * UINT8_MAX - VQA_OFFSET) / VQA_SCALE


def from_vqa(frames: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`to_vqa`."""
    return bgr_to_rgb((frames * VQA_SCALE + VQA_OFFSET) / UINT8_MAX)


def _channel_stats(reference: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    shape = (3, 1, 1)
    mean = torch.tensor(DOVER_MEAN, dtype=reference.dtype, device=reference.device).view(shape)
    std = torch.tensor(DOVER_STD, dtype=reference.dtype, device=reference.device).view(shape)
    return mean, std


def _check_channel_order(channel_order: str) -> None:
    if channel_order not in DOVER_CHANNEL_ORDERS:
        raise ValueError(
            f"DOVER channel_order={channel_order!r}: choose {OFFICIAL_DOVER_CHANNEL_ORDER!r} (the "
            "official pipeline's) or 'rgb' (DOVER as published, not the challenge's)"
        )


def to_dover_pixels(
    frames: torch.Tensor, channel_order: DoverChannelOrder = OFFICIAL_DOVER_CHANNEL_ORDER
) -> torch.Tensor:
    """Internal RGB [0, 1] → 0–255 values in the channel order DOVER receives (BGR officially).

    The channel axis is the third from the end (…×3×H×W), so clips (N×T×3×H×W) work as well.
    """
    _check_channel_order(channel_order)
    pixels = frames * UINT8_MAX
    return rgb_to_bgr(pixels) if channel_order == "bgr" else pixels


def normalise_dover(pixels: torch.Tensor) -> torch.Tensor:
    """DOVER's input normalisation of 0–255 values (…×3×H×W): minus mean, over std, per channel."""
    mean, std = _channel_stats(pixels)
    return (pixels - mean) / std


def to_dover(
    frames: torch.Tensor, channel_order: DoverChannelOrder = OFFICIAL_DOVER_CHANNEL_ORDER
) -> torch.Tensor:
    """Internal RGB [0, 1] → DOVER's normalised input, in the official BGR order by default."""
    return normalise_dover(to_dover_pixels(frames, channel_order))


def from_dover(
    frames: torch.Tensor, channel_order: DoverChannelOrder = OFFICIAL_DOVER_CHANNEL_ORDER
) -> torch.Tensor:
    """Inverse of :func:`to_dover`."""
    _check_channel_order(channel_order)
    mean, std = _channel_stats(frames)
    pixels = (frames * std + mean) / UINT8_MAX
    return bgr_to_rgb(pixels) if channel_order == "bgr" else pixels


def vqa_scale_rmse(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-frame RMSE on the official ``(v - 128) / 128`` scale (twice the RMSE on [0, 1]).

    ``output`` and ``target`` are N×3×H×W internal frames; returns a tensor of N values.
    """
    diff = (output - target) * (UINT8_MAX / VQA_SCALE)
    return diff.pow(2).flatten(1).mean(dim=1).sqrt()
