"""Training pairs of :mod:`vqe.benchmarks.quality`: the clean-photo pool with *recoloured*
targets.

With only four training photographs, an enhancer can learn each photo's colours instead of the
correction — a cat is this orange, a cup this bright — and on the unseen test photograph it
then applies the wrong colour and brightness prior (measured by leaving one training photo out:
the U-Net stage gained +1.2 dB on new crops of the training photos and lost 1.3 dB on the
held-out one). :class:`RecolouredPhotoPairs` therefore gives every sample a new clean look
before it is degraded: the window of :class:`vqe.data.photos.CleanPhotoPairs` goes through a
random tone curve (gamma), saturation change, hue rotation and per-channel white-balance gain,
and that recoloured window is the target ``y`` — and, degraded, the input ``x``. Colour and
brightness then have to be read from the frame itself (its white point, its neutral surfaces),
which is what transfers to a photograph never seen. The draws come from the item's own
generator, so items stay reproducible per (seed, epoch, index).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from vqe.data.photos import CleanPhotoPairs
from vqe.data.transforms import adjust_hue, adjust_saturation


def _range(value: Sequence[float], name: str, low: float, high: float) -> tuple[float, float]:
    pair = tuple(float(v) for v in value)
    if len(pair) != 2 or not low <= pair[0] <= pair[1] <= high:
        raise ValueError(
            f"RecolouredPhotoPairs.{name}: expected [min, max] within [{low}, {high}], got {value!r}"
        )
    return pair[0], pair[1]


class RecolouredPhotoPairs(CleanPhotoPairs):
    """:class:`~vqe.data.photos.CleanPhotoPairs` whose clean windows are recoloured per item.

    Args (on top of CleanPhotoPairs'):
        gamma: [min, max] exponent of the tone curve ``y ** gamma``, drawn log-uniformly
            (< 1 brightens).
        saturation: [min, max] saturation factor around the luma.
        hue: largest hue rotation, in turns of the chroma plane (drawn in ±hue).
        gain: [min, max] of the red and blue white-balance gains (green stays 1).
    """

    def __init__(
        self,
        *args: object,
        gamma: Sequence[float] = (0.75, 1.35),
        saturation: Sequence[float] = (0.7, 1.3),
        hue: float = 0.06,
        gain: Sequence[float] = (0.9, 1.1),
        **kwargs: object,
    ) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.gamma = _range(gamma, "gamma", 0.1, 10.0)
        self.saturation = _range(saturation, "saturation", 0.0, 3.0)
        if not 0.0 <= hue <= 0.5:
            raise ValueError(f"RecolouredPhotoPairs.hue must be in [0, 0.5] turns, got {hue}")
        self.hue = float(hue)
        self.gain = _range(gain, "gain", 0.1, 10.0)

    def recolour(self, image: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        """A 3×H×W RGB image in [0, 1] with a random new look (see the class notes)."""
        gamma = float(np.exp(rng.uniform(np.log(self.gamma[0]), np.log(self.gamma[1]))))
        saturation = float(rng.uniform(*self.saturation))
        turns = float(rng.uniform(-self.hue, self.hue))
        red, blue = (float(g) for g in rng.uniform(*self.gain, size=2))
        out = image.clamp(0.0, 1.0) ** gamma
        out = adjust_saturation(out, saturation).clamp(0.0, 1.0)
        out = adjust_hue(out, turns)
        gains = torch.tensor([red, 1.0, blue], dtype=out.dtype).view(3, 1, 1)
        return (out * gains).clamp(0.0, 1.0)

    def _window(self, image: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        return self.recolour(super()._window(image, rng), rng)


def optional_recoloured_pairs(enabled: bool, **options: object) -> RecolouredPhotoPairs | None:
    """``RecolouredPhotoPairs(**options)`` when ``enabled``, else None: the drop-in for
    :func:`vqe.data.photos.optional_photo_pairs` as ``dataset.train_pairs._target_``."""
    if not isinstance(enabled, bool):
        raise TypeError(
            f"optional_recoloured_pairs: enabled must be true or false, got {enabled!r}"
        )
    return RecolouredPhotoPairs(**options) if enabled else None


__all__ = ["RecolouredPhotoPairs", "optional_recoloured_pairs"]
