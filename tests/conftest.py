"""Shared test settings."""

from __future__ import annotations

import os

import pytest
import torch


def pytest_configure(config: pytest.Config) -> None:
    # Under pytest-xdist each worker gets one thread, so 2 workers use the 2 cores without
    # oversubscribing them.
    if os.environ.get("PYTEST_XDIST_WORKER"):
        torch.set_num_threads(1)
    torch.use_deterministic_algorithms(False)
