"""Frozen quality critics: the Siamese VQA network and DOVER, computing the organisers' functions.

The stable API for outside checks:

* ``load_vqa(path)`` → :class:`VQA`, whose ``forward(x1, x2, d1, d2)`` takes frames in the VQA
  convention (BGR, ``(v − 128)/128``, N×3×H×W) and their DOVER scores and returns
  ``(p, aux1, aux2)``.
* ``load_dover(path)`` → :class:`DOVER`, whose ``forward(views)`` takes normalised views and whose
  ``score(frames)`` turns internal RGB [0, 1] frames (N×3×H×W) into the official fused scores at
  the official setting (32 frames × 3 technical clips, BGR input, 8-bit cast).

Both return ready, frozen modules on the CPU (move them with ``.to()``, or hold them in a
:class:`~vqe.critics.frozen.CriticHandle`, which follows its inputs' device); ``allow_random=True``
gives seeded random critics with a loud warning, for tests and the demo.
"""

from __future__ import annotations

from vqe.critics.dover import (
    DOVER,
    DoverCritic,
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
    "build_dover",
    "build_vqa",
    "freeze",
    "load_dover",
    "load_vqa",
]
