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

  - ``auto`` (default) — items whose input is a stored frame unchanged (whole frame, no crop,
    flip, jitter or synthesis) take the score the data pipeline delivers in the batch
    (``dover_input``, from the cache of :mod:`vqe.data.input_cache`, filled once per frame and
    setting for :attr:`CriticScorer.cache_scorer`); every other item is scored on the batch,
    exactly the view ŷ has. The scorer works on tensors only: it never reads a file.
  - ``cache`` — the same, but an item that is not a stored view is an error (for runs that
    must never pay for a DOVER(x) pass).
  - ``online`` — always computed on the batch's input frames.

  Training on crops therefore scores DOVER(x) every step (one more DOVER pass, and a critic
  that sees crops where the official pipeline shows it whole frames); training on whole stored
  frames (``view=official``) matches the official view and reads DOVER(x) from the cache.

* **VQA features of x**: the VQA encodes both frames; the 512 features of a stored input frame
  shown unchanged never change either (frozen encoder, fixed view). ``input_features``:
  ``auto`` (default) takes the features the data pipeline delivers in the batch
  (``vqa_input``, from the feature cache of :mod:`vqe.data.input_cache`, filled for
  :attr:`CriticScorer.cache_encoder`) and encodes the other items on the batch, without
  gradients (the input is not trained); ``online`` encodes every input on the batch. The
  scores are the same either way (to float32 rounding): one encoder pass fewer per step.

A run builds two scorers: one for the training loss (``model_dover`` as configured) and one for
the test metrics (``evaluation.dover``: the official clip setting on real data).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

from vqe.critics.dover import DoverCritic
from vqe.critics.frozen import CriticHandle
from vqe.critics.vqa import VQA, VqaInputEncoder

log = logging.getLogger(__name__)

InputDover = Literal["auto", "cache", "online"]
INPUT_DOVER_MODES = ("auto", "cache", "online")
EnhancedDover = Literal["online", "input"]
ENHANCED_DOVER_MODES = ("online", "input")
InputFeatures = Literal["auto", "online"]
INPUT_FEATURES_MODES = ("auto", "online")


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
        input_features: InputFeatures = "auto",
    ) -> None:
        if input_features not in INPUT_FEATURES_MODES:
            raise ValueError(
                f"critics.input_features={input_features!r}: choose one of "
                f"{list(INPUT_FEATURES_MODES)}"
            )
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
        self.input_features_mode = input_features

    def input_scores(self, inputs: Tensor, known: Tensor | None = None) -> Tensor:
        """DOVER(x), never with gradients: the input is not trained.

        ``known`` holds per item the DOVER(x) the data pipeline delivered (the batch's
        ``dover_input``: the cached score of a stored frame shown unchanged) or NaN where the
        input was cropped, augmented or synthesised; those items are scored here, on the batch.
        """
        count = inputs.shape[0]
        if known is None or self.input_dover == "online":
            known = inputs.new_full((count,), float("nan"))
        known = torch.as_tensor(known).to(device=inputs.device, dtype=inputs.dtype).reshape(-1)
        if known.numel() != count:
            raise ValueError(f"{known.numel()} delivered DOVER(x) scores for {count} input frames")
        missing = torch.isnan(known)
        if self.input_dover == "cache" and bool(missing.any()):
            raise ValueError(
                "critics.input_dover=cache: this batch has inputs without a cached DOVER(x) — "
                "inputs that are not stored frames as they are (cropped, augmented or "
                "synthesised: dataset.crop_size, augmentation, dataset.pair_synthesis), whose "
                "whole-frame score would not be the view DOVER(ŷ) sees. Use "
                "critics.input_dover=auto, or train on whole stored frames with view=official"
            )
        if not bool(missing.any()):
            return known
        with torch.no_grad():
            if bool(missing.all()):
                return self.dover(inputs).to(inputs.dtype)
            scores = known.clone()
            scores[missing] = self.dover(inputs[missing]).to(scores.dtype)
            return scores

    def input_features(self, inputs: Tensor, known: Tensor | None = None) -> Tensor:
        """The VQA's N×512 features of the inputs, never with gradients: the input is not
        trained. ``known`` (N×512, the batch's ``vqa_input``) holds the cached features of
        stored frames shown unchanged and NaN rows elsewhere; those rows are encoded here."""
        count = inputs.shape[0]
        vqa = self.vqa.on(inputs)
        if known is None or self.input_features_mode == "online":
            with torch.no_grad():
                return vqa.input_features(inputs)
        known = torch.as_tensor(known).to(device=inputs.device)
        if known.ndim != 2 or known.shape[0] != count:
            raise ValueError(
                f"delivered VQA input features of shape {tuple(known.shape)} for {count} "
                "input frames; expected one feature row per frame"
            )
        missing = torch.isnan(known).any(dim=1)
        if not bool(missing.any()):
            return known
        with torch.no_grad():
            if bool(missing.all()):
                return vqa.input_features(inputs)
            features = known.clone()
            features[missing] = vqa.input_features(inputs[missing]).to(features.dtype)
            return features

    @property
    def cache_encoder(self) -> VqaInputEncoder | None:
        """The VQA encoder whose features of stored input frames the data pipeline should
        deliver (:meth:`vqe.data.datamodule.VQEDataModule.score_inputs_with`); None for
        ``online``."""
        if self.input_features_mode == "online":
            return None
        vqa = self.vqa.module
        if not getattr(vqa, "weights_digest", ""):
            # Built in code, not by load_vqa: nothing names its weights, so nothing may cache.
            log.warning("the VQA has no weights digest: its input features are not cached")
            return None
        return VqaInputEncoder(vqa)

    @property
    def cache_scorer(self) -> DoverCritic | None:
        """The DOVER whose scores of stored input frames the data pipeline should deliver
        (:meth:`vqe.data.datamodule.VQEDataModule.score_inputs_with`); None for ``online``."""
        return None if self.input_dover == "online" else self.dover.module

    def __call__(
        self,
        enhanced: Tensor,
        inputs: Tensor,
        known_input_scores: Tensor | None = None,
        exact: bool = False,
        known_input_features: Tensor | None = None,
    ) -> CriticScores:
        """Scores of (enhanced, input) pairs; ``known_input_scores`` as for :meth:`input_scores`,
        ``known_input_features`` as for :meth:`input_features`; ``exact`` computes everything
        in float32 with autocast off (metrics), otherwise under the run's precision
        (training)."""
        context = full_precision(enhanced.device) if exact else contextlib.nullcontext()
        with context:
            if exact:
                enhanced, inputs = enhanced.float(), inputs.float()
            dover_input = self.input_scores(inputs, known_input_scores)
            if self.enhanced_dover == "online":
                dover_enhanced = self.dover(enhanced)
            else:
                dover_enhanced = dover_input
            features_input = self.input_features(inputs, known_input_features)
            if exact:
                features_input = features_input.float()
            p, aux_enhanced, aux_input = self.vqa.on(enhanced).compare_with_features(
                enhanced, features_input, dover_enhanced, dover_input
            )
        return CriticScores(p, aux_enhanced, aux_input, dover_enhanced, dover_input)


def build_critic_scorer(
    vqa: VQA,
    dover: DoverCritic,
    input_dover: InputDover = "auto",
    enhanced_dover: EnhancedDover = "online",
    input_features: InputFeatures = "auto",
) -> CriticScorer:
    """Hydra entry point (``critics`` / ``evaluation.critics`` nodes): built critics → a scorer."""
    if not dover.settings.is_official:
        log.warning(
            "DOVER runs with %s — %s: its scores differ from the official ones",
            dover.settings.tag,
            "; ".join(dover.settings.differences),
        )
    return CriticScorer(vqa, dover, input_dover, enhanced_dover, input_features)


__all__ = [
    "ENHANCED_DOVER_MODES",
    "INPUT_DOVER_MODES",
    "INPUT_FEATURES_MODES",
    "CriticScorer",
    "build_critic_scorer",
    "full_precision",
]
