"""The frozen critics of one run: ``VQA(ŷ, x, DOVER(ŷ), DOVER(x))`` for batches of frames.

:class:`CriticScorer` holds a VQA and a DOVER (each in a
:class:`~vqe.critics.frozen.CriticHandle`: not saved, not optimised, following the frames'
device) and turns (enhanced, input) batches into :class:`CriticScores`.

* **DOVER(ŷ)** (``enhanced_dover``): ``online`` (default) computes it on the batch; it carries
  gradients only when the DOVER was built with ``differentiable=true`` (off by default, as in
  the reference pipeline). ``input`` reuses DOVER(x) for the enhanced frame — no DOVER pass per
  step ("VQA only" in the training-step benchmark), at the price of a VQA that sees no DOVER
  difference between the two frames. Metrics always use ``online``.
* **DOVER(x)** must be computed on the same view of the input as DOVER(ŷ) is of the output —
  the VQA compares the two scores, so a whole-frame score beside a crop score is a different
  question. ``input_dover`` says how:

  - ``auto`` (default) — items whose input is a stored frame unchanged (the dataset's
    ``stored_input`` path: whole frame, no crop, flip, jitter or synthesis) take the score from
    :class:`~vqe.critics.dover.DoverScoreCache` under the data root, computed once per frame
    and setting; every other item is scored on the batch, exactly the view ŷ has.
  - ``cache`` — the same, but an item that is not a stored view is an error (for runs that
    must never pay for a DOVER(x) pass).
  - ``online`` — always computed on the batch's input frames.

  Training on crops therefore scores DOVER(x) every step (one more DOVER pass, and a critic
  that sees crops where the official pipeline shows it whole frames); training on whole stored
  frames (``view=official``) matches the official view and reads DOVER(x) from the cache.

A run builds two scorers: one for the training loss (``model_dover`` as configured) and one for
the test metrics (``evaluation.dover``: the official clip setting on real data).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import cv2
import torch
from torch import Tensor, nn

from vqe.conventions import bgr_uint8_to_tensor
from vqe.critics.dover import DoverCritic, DoverScoreCache
from vqe.critics.frozen import CriticHandle
from vqe.critics.vqa import VQA

log = logging.getLogger(__name__)

InputDover = Literal["auto", "cache", "online"]
INPUT_DOVER_MODES = ("auto", "cache", "online")
EnhancedDover = Literal["online", "input"]
ENHANCED_DOVER_MODES = ("online", "input")


@dataclass
class CriticScores:
    """What ``VQA(ŷ, x, dover(ŷ), dover(x))`` says about one batch."""

    p: Tensor  # N×1, probability that the enhanced frame is preferred over the input
    aux_enhanced: Tensor  # N×11 auxiliary scores a1…a11 of the enhanced frames (raw: a4 falls)
    aux_input: Tensor  # N×11 the same for the inputs
    dover_enhanced: Tensor  # N fused DOVER scores of the enhanced frames
    dover_input: Tensor  # N fused DOVER scores of the inputs

    def metric_row(self) -> Tensor:
        """N×12 ``[p, a1 … a11]`` of the enhanced frames, raw: the m_1 … m_12 of the CSV."""
        return torch.cat([self.p, self.aux_enhanced], dim=1)



def read_frame(path: Path) -> Tensor:
    """A stored frame as a 3×H×W RGB float tensor in [0, 1]."""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise FileNotFoundError(f"{path}: cannot read this frame (missing or not an image)")
    return bgr_uint8_to_tensor(image)


@contextlib.contextmanager
def full_precision(device: torch.device) -> Iterator[None]:
    """Autocast off: metrics and cached scores are computed in float32 whatever the precision."""
    with torch.autocast(device_type=device.type, enabled=False):
        yield


class CriticScorer:
    """``VQA(ŷ, x, DOVER(ŷ), DOVER(x))`` on batches; see the module docstring.

    A plain object, not an ``nn.Module``: its owner's ``state_dict``, ``parameters()`` and
    ``.train()`` never reach the critics.
    """

    def __init__(
        self,
        vqa: VQA,
        dover: DoverCritic,
        input_dover: InputDover = "auto",
        enhanced_dover: EnhancedDover = "online",
        cache_batch_size: int = 8,
    ) -> None:
        if input_dover not in INPUT_DOVER_MODES:
            raise ValueError(
                f"critics.input_dover={input_dover!r}: choose one of {list(INPUT_DOVER_MODES)}"
            )
        if enhanced_dover not in ENHANCED_DOVER_MODES:
            raise ValueError(
                f"critics.enhanced_dover={enhanced_dover!r}: choose one of "
                f"{list(ENHANCED_DOVER_MODES)}"
            )
        self.vqa = CriticHandle(vqa)
        self.dover = CriticHandle(dover)
        self.input_dover = input_dover
        self.enhanced_dover = enhanced_dover
        self.cache_batch_size = cache_batch_size
        self._cache: DoverScoreCache | None = None

    @property
    def critic_modules(self) -> list[nn.Module]:
        """The frozen networks (for checks: they must never change)."""
        return [self.vqa.module, self.dover.module]

    def attach_data_root(self, root: str | Path) -> None:
        """Where stored input frames live; the ``auto`` and ``cache`` modes keep DOVER(x) there."""
        if self.input_dover != "online":
            self._cache = DoverScoreCache(
                Path(root), self.dover.module, batch_size=self.cache_batch_size, progress=False
            )

    def _cached_scores(self, inputs: Tensor, paths: Sequence[str]) -> Tensor:
        if self._cache is None:
            raise RuntimeError(
                "CriticScorer: input_dover='cache' needs the data root; call "
                "attach_data_root(root) first (the LightningModule does it in setup)"
            )
        root = self._cache.data_root
        self.dover.on(inputs)  # the cache scores missing frames wherever the critic lives
        with full_precision(inputs.device):
            scores = self._cache.get_or_compute(paths, lambda path: read_frame(root / path))
        return scores.to(device=inputs.device, dtype=inputs.dtype)

    def input_scores(self, inputs: Tensor, stored_inputs: Sequence[str] | None) -> Tensor:
        """DOVER(x), never with gradients: the input is not trained.

        ``stored_inputs`` holds, per item, the path of the stored frame that the input is
        unchanged ("" where it was cropped, augmented or synthesised); see the module docstring.
        """
        count = inputs.shape[0]
        stored = list(stored_inputs) if stored_inputs is not None else [""] * count
        if len(stored) != count:
            raise ValueError(f"{len(stored)} stored-input paths for {count} input frames")
        if self.input_dover == "cache" and not all(stored):
            raise ValueError(
                "critics.input_dover=cache: this batch has inputs that are not stored frames as "
                "they are (cropped, augmented or synthesised: dataset.crop_size, augmentation, "
                "dataset.pair_synthesis), so a cached whole-frame DOVER(x) would not be the view "
                "DOVER(ŷ) sees. Use critics.input_dover=auto, or train on whole stored frames "
                "with view=official"
            )
        use_cache = self.input_dover != "online" and self._cache is not None
        cached = [i for i, path in enumerate(stored) if path] if use_cache else []
        if len(cached) == count:
            return self._cached_scores(inputs, stored)
        with torch.no_grad():
            if not cached:
                return self.dover(inputs)
            scores = inputs.new_empty(count)
            fresh = [i for i in range(count) if not stored[i]]
            scores[fresh] = self.dover(inputs[fresh]).to(scores.dtype)
            scores[cached] = self._cached_scores(inputs[cached], [stored[i] for i in cached])
            return scores

    def __call__(
        self,
        enhanced: Tensor,
        inputs: Tensor,
        stored_inputs: Sequence[str] | None = None,
        exact: bool = False,
    ) -> CriticScores:
        """Scores of (enhanced, input) pairs; ``stored_inputs`` as for :meth:`input_scores`;
        ``exact`` computes everything in float32 with autocast off (metrics), otherwise under
        the run's precision (training)."""
        context = full_precision(enhanced.device) if exact else contextlib.nullcontext()
        with context:
            if exact:
                enhanced, inputs = enhanced.float(), inputs.float()
            dover_input = self.input_scores(inputs, stored_inputs)
            if self.enhanced_dover == "online":
                dover_enhanced = self.dover(enhanced)
            else:
                dover_enhanced = dover_input
            p, aux_enhanced, aux_input = self.vqa.on(enhanced).compare(
                enhanced, inputs, dover_enhanced, dover_input
            )
        return CriticScores(p, aux_enhanced, aux_input, dover_enhanced, dover_input)


def build_critic_scorer(
    vqa: VQA,
    dover: DoverCritic,
    input_dover: InputDover = "auto",
    enhanced_dover: EnhancedDover = "online",
    cache_batch_size: int = 8,
) -> CriticScorer:
    """Hydra entry point (``critics`` / ``evaluation.critics`` nodes): built critics → a scorer."""
    if not dover.settings.is_official:
        log.warning(
            "DOVER runs with %s — %s: its scores differ from the official ones",
            dover.settings.tag,
            "; ".join(dover.settings.differences),
        )
    return CriticScorer(vqa, dover, input_dover, enhanced_dover, cache_batch_size)


__all__ = [
    "ENHANCED_DOVER_MODES",
    "INPUT_DOVER_MODES",
    "CriticScorer",
    "build_critic_scorer",
    "full_precision",
    "read_frame",
]
