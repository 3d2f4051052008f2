"""The Hydra config root (``<repo>/configs``): its one definition, importable without torch.

Everything that composes configs (``train_vqe.py``, ``vqe.evaluate``, ``vqe.macs``, the model
presets of :mod:`vqe.models.loading`) takes the folder from here.
"""

from __future__ import annotations

from pathlib import Path

#: The Hydra config root; model presets live in its ``model_vqe`` group.
CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"
