"""Colour error of an enhanced frame against its clean target, in CIELAB.

* :func:`ciede2000` — the mean CIEDE2000 colour difference (ΔE00, ``skimage.color``) over the
  pixels: about 1 is a just-noticeable difference, above 5 a plainly different colour. It sees
  every colour error, a wrong exposure included.
* :func:`colour_cast` — the distance between the mean a*b* (the chroma plane) of output and
  target: a global tint (the blue of a webcam's white balance, the orange of a desk lamp) that
  ΔE00 mixes with local errors. 0 = no cast; in the same Lab units as ΔE76.

Both read RGB uint8 frames as sRGB (``skimage.color.rgb2lab``, D65). Frames larger than
``max_side`` are measured on an area-downscaled copy of both frames, for speed: the mean
differences hardly move, and a 1080p frame would otherwise cost a second each.
"""

from __future__ import annotations

import cv2
import numpy as np
from skimage.color import deltaE_ciede2000, rgb2lab

#: Frames with a longer side are measured on a downscaled copy (see the module notes).
MAX_SIDE = 512


def _checked_pair(output: np.ndarray, target: np.ndarray) -> None:
    for name, frame in (("output", output), ("target", target)):
        if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
            raise ValueError(
                f"colour metrics: the {name} must be an H×W×3 RGB uint8 frame, got "
                f"{frame.dtype} {frame.shape}"
            )
    if output.shape != target.shape:
        raise ValueError(f"colour metrics: output {output.shape} vs target {target.shape}")


def _lab(frame: np.ndarray, max_side: int | None) -> np.ndarray:
    """CIELAB of an RGB uint8 frame, area-downscaled first when its longer side > max_side."""
    height, width = frame.shape[:2]
    if max_side is not None and max(height, width) > max_side:
        scale = max_side / max(height, width)
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        frame = cv2.resize(frame, size, interpolation=cv2.INTER_AREA)
    return rgb2lab(frame)


def ciede2000(output: np.ndarray, target: np.ndarray, max_side: int | None = MAX_SIDE) -> float:
    """Mean CIEDE2000 between two RGB uint8 frames of one size (0 for identical frames)."""
    _checked_pair(output, target)
    return float(deltaE_ciede2000(_lab(target, max_side), _lab(output, max_side)).mean())


def colour_cast(output: np.ndarray, target: np.ndarray, max_side: int | None = MAX_SIDE) -> float:
    """Distance between the mean a*b* of ``output`` and of ``target`` (Lab units; 0 = no cast)."""
    _checked_pair(output, target)
    mean_output = _lab(output, max_side)[..., 1:].reshape(-1, 2).mean(axis=0)
    mean_target = _lab(target, max_side)[..., 1:].reshape(-1, 2).mean(axis=0)
    return float(np.hypot(*(mean_output - mean_target)))


def clip_colour(
    outputs: list[np.ndarray], targets: list[np.ndarray], max_side: int | None = MAX_SIDE
) -> dict[str, float]:
    """``ciede2000`` and ``cast`` of a clip: the per-frame values averaged over its frames."""
    if len(outputs) != len(targets) or not outputs:
        raise ValueError(f"colour metrics: {len(outputs)} output vs {len(targets)} target frames")
    pairs = list(zip(outputs, targets, strict=True))
    return {
        "ciede2000": float(np.mean([ciede2000(o, t, max_side) for o, t in pairs])),
        "cast": float(np.mean([colour_cast(o, t, max_side) for o, t in pairs])),
    }


__all__ = ["MAX_SIDE", "ciede2000", "clip_colour", "colour_cast"]
