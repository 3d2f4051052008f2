"""The command an interrupted run logs to resume itself names the way it was started: the
documented script, or ``vqe train`` (whose module Hydra runs as ``__main__``, see vqe.cli)."""

from __future__ import annotations

import shlex
import sys
import types
from collections.abc import Iterator
from importlib.machinery import ModuleSpec
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig

from vqe.config_root import CONFIG_DIR
from vqe.training.train import resume_command


@pytest.fixture
def hydra_run() -> Iterator[None]:
    """A composed run with one override, as Hydra leaves it for the running app."""
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("vqe", overrides=["seed=3"], return_hydra_config=True)
        HydraConfig.instance().set_config(cfg)
        yield
    HydraConfig.instance().cfg = None


def fake_main(spec_name: str | None) -> types.ModuleType:
    main = types.ModuleType("__main__")
    main.__spec__ = None if spec_name is None else ModuleSpec(spec_name, None)
    return main


def test_a_vqe_train_run_resumes_with_vqe_train(
    hydra_run: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "__main__", fake_main("vqe.cli.train"))
    monkeypatch.setattr(sys, "argv", ["/somewhere/vqe/cli/train.py", "seed=3"])
    command = shlex.split(resume_command(tmp_path))
    assert command[:3] == ["vqe", "train", "--config-name=vqe"]
    assert "seed=3" in command
    assert command[-2:] == ["ckpt_path=last", f"hydra.run.dir={tmp_path}"]


def test_a_script_run_resumes_with_the_script(
    hydra_run: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "__main__", fake_main(None))
    monkeypatch.setattr(sys, "argv", ["train_vqe.py", "seed=3"])
    command = shlex.split(resume_command(tmp_path))
    assert command[:3] == [sys.executable, "train_vqe.py", "--config-name=vqe"]
