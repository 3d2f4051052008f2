"""Frozen quality critics: the Siamese VQA network and DOVER.

``load_vqa(path, allow_random=False)`` and ``load_dover(path, allow_random=False)`` return
ready, frozen modules on the CPU (move them with ``.to()``, or hold them in a
:class:`~vqe.critics.frozen.CriticHandle`, which follows its inputs' device).

Names are resolved lazily (PEP 562) so that importing ``vqe.critics.checkpoints`` or
``vqe.critics.frozen`` does not build either network's module, and the DOVER half can be
missing without breaking the VQA half.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from vqe.critics.dover import DOVER, load_dover
    from vqe.critics.frozen import CriticHandle, freeze
    from vqe.critics.vqa import VQA, load_vqa

#: Public name → the submodule that defines it.
_EXPORTS = {
    "VQA": "vqe.critics.vqa",
    "load_vqa": "vqe.critics.vqa",
    "DOVER": "vqe.critics.dover",
    "load_dover": "vqe.critics.dover",
    "CriticHandle": "vqe.critics.frozen",
    "freeze": "vqe.critics.frozen",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'vqe.critics' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
