"""The Hydra config root (``<repo>/configs``) and the one resolver its configs use.

Everything that composes configs (the Hydra tools ``vqe train``, ``vqe evaluate``, ``vqe macs``,
the model presets of :mod:`vqe.models.loading`) takes the folder from here; importing this module
registers ``${vqe.mac_budget:}``, the challenge's MAC budget, so that no config holds its own copy.
Importable without torch.
"""

from __future__ import annotations

from pathlib import Path

from omegaconf import OmegaConf

#: The Hydra config root; model presets live in its ``model_vqe`` group.
CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"

#: ``mac_limit: ${vqe.mac_budget:}`` in a config reads :data:`vqe.conventions.MAC_BUDGET`.
MAC_BUDGET_RESOLVER = "vqe.mac_budget"


def _mac_budget() -> float:
    from vqe.conventions import MAC_BUDGET  # lazily: conventions imports torch

    return MAC_BUDGET


if not OmegaConf.has_resolver(MAC_BUDGET_RESOLVER):
    OmegaConf.register_new_resolver(MAC_BUDGET_RESOLVER, _mac_budget)
