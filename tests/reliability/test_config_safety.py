"""No code runs from a user's file (issue 25, item 1): a checkpoint's stored model config builds
only the project's model classes, checked whole before anything is built.

The payload is the one the issue used: ``numpy.savetxt`` writes a protocol-0 pickle that a
chained ``torch.load(weights_only=False)`` then executes. The test first proves the payload is
live — Hydra's ``instantiate`` runs it — so the refusals below cannot pass on a dud.
"""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from hydra.utils import instantiate
from model_helpers import write_checkpoint
from omegaconf import OmegaConf

from vqe.cli.enhance import main as enhance_main
from vqe.cli.export import main as export_main
from vqe.models.config_tree import UnsafeConfigError, build_from_tree, check_tree
from vqe.models.enhancer import Enhancer
from vqe.models.loading import (
    MODEL_CONFIG_KEY,
    CheckpointError,
    compose_preset,
    enhancer_from_checkpoint,
    enhancer_from_preset,
)

REPO = Path(__file__).resolve().parents[2]


def tiny_tree() -> dict[str, Any]:
    tree = OmegaConf.to_container(compose_preset("tiny"), resolve=True)
    assert isinstance(tree, dict)
    return tree


def payload(marker: Path, scratch: Path) -> dict[str, Any]:
    """A node that, instantiated by Hydra, creates ``marker`` through a shell command."""
    pickled = f"cos\nsystem\n(S'touch {marker}'\ntR."
    return {
        "_target_": "torch.load",
        # Hydra builds the arguments first: savetxt writes the pickle, then torch.load runs it.
        "map_location": {
            "_target_": "numpy.savetxt",
            "fname": str(scratch),
            "X": [pickled],
            "fmt": "%s",
        },
        "f": str(scratch),
        "weights_only": False,
    }


def test_the_payload_is_live_under_hydra(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    try:
        instantiate(payload(marker, tmp_path / "p.pkl"))
    except Exception:  # torch.load's result is not what Hydra hands on; the command ran first
        pass
    assert marker.exists(), "the test payload must really run code, or the refusals prove nothing"


@pytest.fixture
def hostile_checkpoint(tmp_path: Path) -> tuple[Path, Path]:
    """A tiny enhancer checkpoint whose stored config carries the payload as its LUT stage."""
    marker = tmp_path / "ran"
    path = write_checkpoint(enhancer_from_preset("tiny"), "tiny", tmp_path / "hostile.ckpt")
    checkpoint = torch.load(path, weights_only=True)
    tree = tiny_tree()
    tree["lut"] = payload(marker, tmp_path / "p.pkl")
    checkpoint["hyper_parameters"][MODEL_CONFIG_KEY] = tree
    torch.save(checkpoint, path)
    return path, marker


def test_loading_refuses_the_payload_and_runs_nothing(hostile_checkpoint) -> None:
    path, marker = hostile_checkpoint
    with pytest.raises(CheckpointError, match=r"refused.*lut\._target_='torch\.load'"):
        enhancer_from_checkpoint(path)
    assert not marker.exists()


def test_enhance_and_export_refuse_it_in_one_line(
    hostile_checkpoint, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, marker = hostile_checkpoint
    (tmp_path / "in").mkdir()
    code = enhance_main(["--ckpt", str(path), "--dir_in", str(tmp_path / "in"), "--dir_out",
                         str(tmp_path / "out"), "--device", "cpu", "--no-progress"])  # fmt: skip
    assert code != 0 and not marker.exists()
    assert "refused" in capsys.readouterr().err
    assert export_main([str(path), "--format", "onnx", "--out", str(tmp_path / "m.onnx")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "refused" in err[0], err
    assert not marker.exists() and not (tmp_path / "m.onnx").exists()


def test_evaluate_refuses_it(hostile_checkpoint, tmp_path: Path) -> None:
    path, marker = hostile_checkpoint
    result = subprocess.run(
        [sys.executable, "-m", "vqe.cli.evaluate", f"ckpt={path}",
         f"paths.output_dir={tmp_path / 'eval'}", "hydra.run.dir=" + str(tmp_path / "hydra")],
        cwd=REPO, capture_output=True, text=True, timeout=600,
        env={**os.environ, "HYDRA_FULL_ERROR": "0"},
    )  # fmt: skip
    assert result.returncode != 0
    assert "refused" in result.stderr + result.stdout
    assert not marker.exists()


HOSTILE_TREES = {
    "root is not an enhancer": lambda t: {"_target_": "builtins.open", "file": "x"},
    "unknown class in a stage": lambda t: {**t, "unet": {"_target_": "os.system", "command": "x"}},
    "positional arguments": lambda t: {**t, "_args_": ["x"]},
    "partial": lambda t: {**t, "lut": {**t["lut"], "_partial_": True}},
    "unknown parameter": lambda t: {**t, "lut": {**t["lut"], "callback": "x"}},
    "node inside a list": lambda t: {
        **t,
        "unet": {**t["unet"], "widths": [{"_target_": "pathlib.Path.touch"}, 16]},
    },
    "node in a plain mapping": lambda t: {**t, "freeze_lut": {"a": 1}},
    "object value": lambda t: {**t, "freeze_lut": torch.zeros(1)},
    "no target": lambda t: {k: v for k, v in t.items() if k != "_target_"},
}


@pytest.mark.parametrize("case", list(HOSTILE_TREES))
def test_every_hostile_shape_is_refused_before_anything_is_built(
    case: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    built: list[str] = []
    monkeypatch.setattr(Enhancer, "__init__", lambda *a, **k: built.append("enhancer"))
    tree = HOSTILE_TREES[case](copy.deepcopy(tiny_tree()))
    with pytest.raises(UnsafeConfigError):
        build_from_tree(tree)
    assert built == []


def test_every_preset_passes_the_check_and_builds_the_same_model() -> None:
    for preset in ("lut", "unet", "lut_unet", "tiny"):
        tree = OmegaConf.to_container(compose_preset(preset), resolve=True)
        check_tree(tree)
        torch.manual_seed(0)
        ours = build_from_tree(tree)
        torch.manual_seed(0)
        hydras = instantiate(tree)
        assert ours.state_dict().keys() == hydras.state_dict().keys()
        for name, value in ours.state_dict().items():
            assert torch.equal(value, hydras.state_dict()[name]), (preset, name)


def test_a_config_that_does_not_match_the_weights_allocates_nothing(tmp_path: Path) -> None:
    """A stored config asking for a huge U-Net is compared with the weights on the meta device
    first: refused with the mismatch named, not an out-of-memory after allocating it."""
    path = write_checkpoint(enhancer_from_preset("tiny"), "tiny", tmp_path / "big.ckpt")
    checkpoint = torch.load(path, weights_only=True)
    checkpoint["hyper_parameters"][MODEL_CONFIG_KEY]["unet"]["widths"] = [4096, 65536]
    torch.save(checkpoint, path)
    with pytest.raises(CheckpointError, match=r"do not match its model config: .*is \[8"):
        enhancer_from_checkpoint(path)


def test_a_pickled_code_checkpoint_is_called_what_it_is(tmp_path: Path) -> None:
    path = tmp_path / "code.ckpt"
    torch.save({"state_dict": {}, "hook": os.getcwd}, path)  # a module function
    with pytest.raises(CheckpointError, match=r"refused, it would unpickle code \(.*getcwd"):
        enhancer_from_checkpoint(path)
    truncated = tmp_path / "cut.ckpt"
    good = write_checkpoint(enhancer_from_preset("tiny"), "tiny", tmp_path / "good.ckpt")
    truncated.write_bytes(good.read_bytes()[:200])
    with pytest.raises(CheckpointError, match="damaged") as caught:
        enhancer_from_checkpoint(truncated)
    assert "\n" not in str(caught.value)
