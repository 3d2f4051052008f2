"""What a ``torch.save`` file would unpickle beyond tensors and plain data, read without loading it.

``torch.load(weights_only=True)`` refuses such a file with an ``UnpicklingError``; the tools
then say *why* — it would run code named in the file — instead of calling it damaged. Shared by
the enhancer checkpoints (:mod:`vqe.models.loading`) and the critics' weights
(:mod:`vqe.critics.weights`).
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


#: What PyTorch puts before the actual cause of a refused ``weights_only`` load, after a
#: paragraph about its changed default that says nothing about the file.
_UNPICKLER_CAUSE = "WeightsUnpickler error:"
#: How long a third-party reason may run inside one of our one-line errors.
MAX_REASON_CHARS = 200


def load_error_reason(error: BaseException) -> str:
    """``Type: cause`` of a failed ``torch.load``, in one short line.

    PyTorch's load errors run to several paragraphs (the ``weights_only`` history, a request to
    file an issue, a documentation link); our errors quote only the cause: for a refused
    ``weights_only`` load the unpickler's own error (``Unsupported operand 118``), otherwise
    the first line, without PyTorch's "Could this error message be improved?" aside.
    """
    text = str(error).strip()
    if _UNPICKLER_CAUSE in text:
        text = text.split(_UNPICKLER_CAUSE, 1)[1].strip()
    reason = text.splitlines()[0].strip() if text else ""
    reason = reason.split("(Could this error message be improved?", 1)[0].strip()
    if len(reason) > MAX_REASON_CHARS:
        reason = reason[: MAX_REASON_CHARS - 1].rstrip() + "…"
    return f"{type(error).__name__}: {reason}" if reason else type(error).__name__
