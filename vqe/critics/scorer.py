"""The frozen critics of one run: ``VQA(ŷ, x, DOVER(ŷ), DOVER(x))`` for batches of frames.

:class:`CriticScorer` holds a VQA and a DOVER (each in a
:class:`~vqe.critics.frozen.CriticHandle`: not saved, not optimised, following the frames'
device) and turns (enhanced, input) batches into :class:`CriticScores`.

* **DOVER(ŷ)** (``enhanced_dover``): ``online`` (default) computes it on the batch; it carries
  gradients only when the DOVER was built with ``differentiable=true`` (off by default, as in
  the reference pipeline). ``input`` reuses DOVER(x) for the enhanced frame — no DOVER pass per
  step ("VQA only" in the training-step benchmark), at the price of a VQA that sees no DOVER
  difference between the two frames. Metrics always use ``online``.
* **DOVER(x)** comes from ``input_dover``:

  - ``cache`` (default) — the score of the *stored input frame* (whole frame, as listed in the
    index's ``img_source``), read from :class:`~vqe.critics.dover.DoverScoreCache` under the
    data root and computed once per frame and setting. During training the VQA sees a crop of
    that frame; the cached score is the whole frame's (the global quality the VQA was paired
    with). Not usable with on-the-fly pair synthesis, whose inputs are not the stored files.
  - ``online`` — computed on the batch's input frames every step (exact for crops and
    synthesised inputs, at the cost of one more DOVER pass).

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

InputDover = Literal["cache", "online"]
INPUT_DOVER_MODES = ("cache", "online")
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
        input_dover: InputDover = "cache",
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
        """Where input frames (``sources``) live; needed by the ``cache`` mode."""
        if self.input_dover == "cache":
            self._cache = DoverScoreCache(
                Path(root), self.dover.module, batch_size=self.cache_batch_size, progress=False
            )

    def _cached_input_scores(self, inputs: Tensor, sources: Sequence[str]) -> Tensor:
        if self._cache is None:
            raise RuntimeError(
                "CriticScorer: input_dover='cache' needs the data root; call "
                "attach_data_root(root) first (the LightningModule does it in setup)"
            )
        if len(sources) != inputs.shape[0]:
            raise ValueError(f"{len(sources)} source paths for {inputs.shape[0]} input frames")
        root = self._cache.data_root
        self.dover.on(inputs)  # the cache scores missing frames wherever the critic lives
        with full_precision(inputs.device):
            scores = self._cache.get_or_compute(sources, lambda path: read_frame(root / path))
        return scores.to(device=inputs.device, dtype=inputs.dtype)

    def input_scores(self, inputs: Tensor, sources: Sequence[str] | None) -> Tensor:
        """DOVER(x), never with gradients: the input is not trained."""
        if self.input_dover == "cache" and sources is not None:
            return self._cached_input_scores(inputs, sources)
        with torch.no_grad():
            return self.dover(inputs)

    def __call__(
        self,
        enhanced: Tensor,
        inputs: Tensor,
        sources: Sequence[str] | None = None,
        exact: bool = False,
    ) -> CriticScores:
        """Scores of (enhanced, input) pairs; ``exact`` computes everything in float32 with
        autocast off (metrics), otherwise under the run's precision (training)."""
        context = full_precision(enhanced.device) if exact else contextlib.nullcontext()
        with context:
            if exact:
                enhanced, inputs = enhanced.float(), inputs.float()
            dover_input = self.input_scores(inputs, sources)
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
    input_dover: InputDover = "cache",
    enhanced_dover: EnhancedDover = "online",
    cache_batch_size: int = 8,
) -> CriticScorer:
    """Hydra entry point (``critics`` / ``evaluation.critics`` nodes): built critics → a scorer."""
    if not dover.settings.is_official:
        log.warning(
            "DOVER runs with %s — cheaper than the official T=32, K=3: its scores differ from "
            "the official ones",
            dover.settings.tag,
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
