"""What a ``torch.save`` file would unpickle beyond tensors and plain data, read without loading it.

``torch.load(weights_only=True)`` refuses such a file with an ``UnpicklingError``; the tools
then say *why* — it would run code named in the file — instead of calling it damaged. Shared by
the enhancer checkpoints (:mod:`vqe.models.loading`) and the critics' weights
(:mod:`vqe.critics.checkpoints`).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import torch

#: How many names a message lists before it summarises the rest.
MAX_LISTED = 12


def unsafe_globals(path: str | Path, allowed: Iterable[str] = ()) -> list[str]:
    """The pickled globals (``module.name``) of ``path`` beyond ``allowed``; [] when the file
    is not a zip checkpoint at all (then it is unreadable, not unsafe)."""
    try:
        found = torch.serialization.get_unsafe_globals_in_checkpoint(str(path))
    except Exception:  # torch raises several types for a file that is not a zip checkpoint
        return []
    return sorted(set(found) - set(allowed))


def listed(names: list[str]) -> str:
    """``a, b, c …``: at most :data:`MAX_LISTED` names."""
    return ", ".join(names[:MAX_LISTED]) + (" …" if len(names) > MAX_LISTED else "")
