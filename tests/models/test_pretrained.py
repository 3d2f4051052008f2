"""Shipped models: packing a training checkpoint, finding a model by name, loading it the safe
way (vqe.models.pretrained). The shipped default model itself: tests/models/test_shipped_model.py."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from model_helpers import trained_like, write_checkpoint

from vqe.models import pretrained
from vqe.models.loading import enhancer_from_checkpoint, enhancer_from_preset


@pytest.fixture
def packed(tmp_path: Path) -> tuple[Path, torch.nn.Module]:
    enhancer = trained_like(enhancer_from_preset("tiny"))
    checkpoint = write_checkpoint(enhancer, "tiny", tmp_path / "run.ckpt")
    out = pretrained.pack_checkpoint(checkpoint, tmp_path / "shipped" / "tiny-v1.ckpt",
                                     notes={"command": "python train_vqe.py model_vqe=tiny"})
    return out, enhancer


def test_a_packed_model_is_fp16_and_loads_strictly_to_the_same_outputs(packed) -> None:
    path, enhancer = packed
    stored = torch.load(path, weights_only=True)
    assert stored["format"] == pretrained.FORMAT
    floats = [v for v in stored["state_dict"].values() if v.is_floating_point()]
    assert floats and all(v.dtype == torch.float16 for v in floats)
    assert stored["notes"]["command"].startswith("python train_vqe.py")
    loaded, _ = enhancer_from_checkpoint(path)
    frames = torch.rand(1, 3, 32, 48)
    with torch.no_grad():
        expected, got = enhancer.eval()(frames), loaded(frames)
    assert next(loaded.parameters()).dtype == torch.float32
    assert (expected - got).abs().max() < 5e-3  # fp16 storage of the weights


def test_models_are_found_by_name_or_path_and_a_wrong_name_lists_them(packed) -> None:
    path, _ = packed
    assert pretrained.shipped_models(path.parent) == {"tiny-v1": path}
    assert pretrained.resolve_model("tiny-v1", path.parent) == path
    assert pretrained.resolve_model(path, path.parent) == path
    with pytest.raises(FileNotFoundError, match=r"tiny-v2: neither .* \(shipped: tiny-v1;"):
        pretrained.resolve_model("tiny-v2", path.parent)
