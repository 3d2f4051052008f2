"""Reading critic weight files, strict loading errors, missing weights, the Hydra config."""

from __future__ import annotations

import argparse
import hashlib
import warnings
from pathlib import Path

import pytest
import torch
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import OmegaConf
from torch import nn

from vqe.critics import VQA, load_vqa
from vqe.critics.frozen import clear_critic_cache, is_frozen
from vqe.critics.weights import (
    MAX_LISTED_KEYS,
    CriticWeightsMissingError,
    WeightsMismatchError,
    WeightsReadError,
    load_strict,
    read_state_dict,
    weights_digest,
)

CONFIG = Path(__file__).resolve().parents[2] / "configs" / "model_vqa" / "default.yaml"


@pytest.fixture(autouse=True)
def _clean_cache():
    clear_critic_cache()
    yield
    clear_critic_cache()


def small_net() -> nn.Module:
    return nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3))


# --------------------------------------------------------------------------- read_state_dict


def test_reads_plain_and_lightning_state_dicts(tmp_path: Path):
    weights = small_net().state_dict()
    plain = tmp_path / "plain.pt"
    lightning = tmp_path / "lightning.ckpt"
    torch.save(weights, plain)
    torch.save(
        {
            "epoch": 3,
            "global_step": 120,
            "state_dict": {f"_model.{key}": value for key, value in weights.items()},
            "hyper_parameters": {"lr": 1e-3},
        },
        lightning,
    )
    for path in (plain, lightning):
        loaded = read_state_dict(path, prefix="_model.")
        assert list(loaded) == list(weights)
        assert all(torch.equal(loaded[key], weights[key]) for key in weights)


def test_keys_without_the_prefix_are_kept(tmp_path: Path):
    path = tmp_path / "mixed.ckpt"
    torch.save({"state_dict": {"_model.w": torch.ones(2), "loss.scale": torch.ones(1)}}, path)
    assert set(read_state_dict(path, prefix="_model.")) == {"w", "loss.scale"}


def _hyper_parameters(kind: str) -> dict[str, object]:
    """What Lightning writes: an OmegaConf container with its type, a Namespace, or a dict."""
    if kind == "namespace":
        return {"hyper_parameters": argparse.Namespace(lr=1)}
    if kind == "omegaconf":
        config = OmegaConf.create({"lr": 1e-3, "levels": [32, 64], "name": "${lr}", "none": None})
        return {"hyper_parameters": config, "hparams_type": type(config)}
    return {"hyper_parameters": {"lr": 1e-3, "batch_size": 32}, "hparams_name": "kwargs"}


@pytest.mark.parametrize("kind", ["namespace", "omegaconf", "dict"])
def test_lightning_hyper_parameters_load_without_unpickling_code(tmp_path: Path, kind: str):
    path = tmp_path / "old_lightning.ckpt"
    torch.save({"state_dict": {"_model.w": torch.ones(2)}, **_hyper_parameters(kind)}, path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "unpickled fully" warning any more
        assert set(read_state_dict(path, prefix="_model.")) == {"w"}


class Payload:
    """Unpickling this runs code: it writes a marker file."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def test_a_weights_file_that_would_run_code_is_refused_before_it_runs(tmp_path: Path):
    marker = tmp_path / "payload_ran"
    path = tmp_path / "VQA.ckpt"
    torch.save({"state_dict": {"_model.w": torch.ones(2)}, "evil": Payload(str(marker))}, path)
    with pytest.raises(WeightsReadError, match=r"VQA\.ckpt: refused.*pathlib.*convert it once"):
        read_state_dict(path, prefix="_model.")
    with pytest.raises(WeightsReadError, match="refused"):
        load_vqa(path)
    assert not marker.exists()


def test_unreadable_files_name_the_file(tmp_path: Path):
    garbage = tmp_path / "VQA.ckpt"
    garbage.write_text("version https://git-lfs.github.com/spec/v1\n")
    with pytest.raises(WeightsReadError, match=r"VQA\.ckpt.*cannot be read") as caught:
        read_state_dict(garbage)
    # One line in our words, quoting PyTorch's cause only: not its weights_only essay.
    message = str(caught.value)
    assert "\n" not in message and "(UnpicklingError: Unsupported operand" in message
    assert "In PyTorch 2.6" not in message and "file an issue" not in message

    not_a_dict = tmp_path / "tensor.pt"
    torch.save(torch.ones(3), not_a_dict)
    with pytest.raises(WeightsReadError, match="got Tensor"):
        read_state_dict(not_a_dict)

    not_tensors = tmp_path / "config.pt"
    torch.save({"weight": torch.ones(1), "name": "resnet"}, not_tensors)
    with pytest.raises(WeightsReadError, match="'name' is a str"):
        read_state_dict(not_tensors)

    with pytest.raises(FileNotFoundError, match="absent.pt"):
        read_state_dict(tmp_path / "absent.pt")


# --------------------------------------------------------------------------- load_strict


def test_load_strict_lists_missing_unexpected_and_wrong_shapes():
    state = small_net().state_dict()
    del state["1.running_var"]
    state["0.weight"] = torch.zeros(5, 4)
    state["head.bias"] = torch.zeros(1)
    with pytest.raises(WeightsMismatchError) as caught:
        load_strict(small_net(), state, source="weights/bad.ckpt")
    message = str(caught.value)
    assert message.startswith("weights/bad.ckpt:")
    assert "missing keys (1):\n    1.running_var" in message
    assert "unexpected keys (1):\n    head.bias" in message
    assert "0.weight: file (5, 4), model (3, 4)" in message


def test_load_strict_truncates_long_lists():
    big = nn.Sequential(*(nn.Linear(1, 1) for _ in range(20)))  # 40 keys
    with pytest.raises(WeightsMismatchError) as caught:
        load_strict(big, {}, source="empty.pt")
    message = str(caught.value)
    assert "missing keys (40):" in message
    assert f"… and {40 - MAX_LISTED_KEYS} more" in message
    assert message.count("\n    ") == MAX_LISTED_KEYS + 1


def test_load_strict_loads_matching_weights():
    source, target = small_net(), small_net()
    load_strict(target, source.state_dict(), source="ok.pt")
    loaded = target.state_dict()
    assert all(torch.equal(value, loaded[key]) for key, value in source.state_dict().items())


def test_weights_digest_is_a_short_sha256(tmp_path: Path):
    path = tmp_path / "w.pt"
    path.write_bytes(b"abc" * 1000)
    digest = weights_digest(path)
    assert digest == hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    path.write_bytes(b"abd" * 1000)
    assert weights_digest(path) != digest


# --------------------------------------------------------------------------- missing weights


def test_missing_vqa_weights_say_where_to_get_them_and_what_to_set(tmp_path: Path):
    with pytest.raises(CriticWeightsMissingError) as caught:
        load_vqa(None)
    message = str(caught.value)
    assert "VQA.ckpt" in message and "starter kit" in message
    assert "model_vqa.weights=" in message and "model_vqa.allow_random_critics=true" in message

    absent = tmp_path / "nowhere" / "VQA.ckpt"
    with pytest.raises(FileNotFoundError, match=f"{absent}.*does not exist"):
        load_vqa(absent)


def test_random_vqa_warns_loudly_and_is_loaded_once(tmp_path: Path):
    with pytest.warns(RuntimeWarning, match="RANDOM weights.*MEANINGLESS"):
        critic = load_vqa(None, allow_random=True)
    with pytest.warns(RuntimeWarning, match="no weights file was given"):
        again = load_vqa(None, allow_random=True)
    assert isinstance(critic, VQA) and again is critic
    # A given path that does not exist is never replaced by random weights (a typo on the demo).
    with pytest.raises(CriticWeightsMissingError, match="VQA.ckpt does not exist"):
        load_vqa(tmp_path / "VQA.ckpt", allow_random=True)
    assert is_frozen(critic)
    assert next(critic.parameters()).device.type == "cpu"


def test_tampered_vqa_checkpoint_gives_the_clear_error(tmp_path: Path):
    state = {f"_model.{key}": value for key, value in VQA().state_dict().items()}
    del state["_model.aux_head.2.bias"]
    state["_model.main_head.13.weight"] = torch.zeros(2, 64)
    state["_model.extra_head.weight"] = torch.zeros(1)
    path = tmp_path / "VQA.ckpt"
    torch.save({"state_dict": state}, path)
    with pytest.raises(WeightsMismatchError) as caught:
        load_vqa(path)
    message = str(caught.value)
    assert str(path) in message
    assert "aux_head.2.bias" in message
    assert "extra_head.weight" in message
    assert "main_head.13.weight: file (2, 64), model (1, 64)" in message


# --------------------------------------------------------------------------- config


def test_config_builds_the_vqa(tmp_path: Path):
    config = OmegaConf.load(CONFIG)
    assert config.weights is None and config.allow_random_critics is False
    # Hydra wraps the error; its message still says what to set.
    with pytest.raises(InstantiationException, match="model_vqa.weights="):
        instantiate(config)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        random_critic = instantiate(OmegaConf.merge(config, {"allow_random_critics": True}))
    assert isinstance(random_critic, VQA)

    weights = tmp_path / "VQA.ckpt"
    torch.save(VQA().state_dict(), weights)
    loaded = instantiate(OmegaConf.merge(config, {"weights": str(weights)}))
    assert isinstance(loaded, VQA) and loaded is not random_critic
    assert torch.equal(loaded.aux_head[2].bias, torch.load(weights)["aux_head.2.bias"])
