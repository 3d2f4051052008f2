"""One way for tests to compose the project's Hydra configs (``configs/``, as the tools do)."""

from __future__ import annotations

from collections.abc import Sequence

from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from vqe.config_root import CONFIG_DIR  # importing it registers ${vqe.mac_budget:}


def compose_config(name: str | None = "vqe", overrides: Sequence[str] = ()) -> DictConfig:
    """``configs/<name>.yaml`` composed with ``overrides`` (``name=None``: groups only, each
    added with ``+group=option``)."""
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return compose(config_name=name, overrides=list(overrides))
