"""Checkpoints written whole or not at all.

Lightning's ``TorchCheckpointIO`` writes through an fsspec transaction whose local temporary
file lies in the system's temp folder; committing moves it across file systems, i.e. copies it
into place — so a full disk during that copy left a truncated ``best-*.ckpt`` under a valid name,
found again after a resume. :class:`AtomicCheckpointIO` writes local checkpoints with
:func:`vqe.atomic.atomic_path` instead (a temporary beside the file, fsync, rename): a failed
save leaves the previous file as it was and no partial one. Remote paths (``s3://`` …) keep
Lightning's own writer. Set on every trainer by ``configs/trainer/default.yaml``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from pytorch_lightning.plugins.io import TorchCheckpointIO

from vqe.atomic import atomic_path


class AtomicCheckpointIO(TorchCheckpointIO):
    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: str | Path, storage_options: Any | None = None
    ) -> None:
        if storage_options is not None or "://" in str(path):
            super().save_checkpoint(checkpoint, path, storage_options)
            return
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as temporary:
            torch.save(checkpoint, temporary)


__all__ = ["AtomicCheckpointIO"]
