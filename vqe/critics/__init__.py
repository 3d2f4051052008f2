"""Frozen quality critics: the Siamese VQA network and DOVER.

``load_vqa(path, allow_random=False)`` and ``load_dover(path, allow_random=False)`` return
ready, frozen modules on the CPU (move them with ``.to()``, or hold them in a
:class:`~vqe.critics.frozen.CriticHandle`, which follows its inputs' device).
"""

from __future__ import annotations

from vqe.critics.dover import (
    DOVER,
    DoverCritic,
    DoverScoreCache,
    build_dover,
    load_dover,
)
from vqe.critics.frozen import CriticHandle, freeze
from vqe.critics.vqa import VQA, build_vqa, load_vqa

__all__ = [
    "DOVER",
    "VQA",
    "CriticHandle",
    "DoverCritic",
    "DoverScoreCache",
    "build_dover",
    "build_vqa",
    "freeze",
    "load_dover",
    "load_vqa",
]
