"""Fixtures of the study tests: method folders of tiny real videos, and studies made from them."""

from __future__ import annotations

from pathlib import Path

import pytest
from study_helpers import make_method_folders

from vqe.study.config import StudyConfig
from vqe.study.create import create_study


@pytest.fixture(scope="session")
def method_folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return make_method_folders(tmp_path_factory.mktemp("methods"))


@pytest.fixture
def study(tmp_path: Path, method_folders: dict[str, Path]) -> tuple[Path, StudyConfig]:
    root = tmp_path / "study"
    return root, create_study(root, method_folders, repeats=2, gold_rate=0.3, seed=1)
