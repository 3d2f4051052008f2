"""Frozen critics: no trainable parameters, eval mode kept, not saved, loaded once."""

from __future__ import annotations

import copy
import pickle
from pathlib import Path

import pytest
import torch
from torch import nn

from vqe.critics.frozen import (
    CriticHandle,
    cached_critic_count,
    clear_critic_cache,
    freeze,
    is_frozen,
    load_once,
)


def tiny_critic() -> nn.Module:
    # BatchNorm and Dropout make train/eval mode observable in the outputs.
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.Dropout(0.5))


class Owner(nn.Module):
    """Stand-in for a LightningModule: a trainable layer plus a critic held by a handle."""

    def __init__(self, critic: nn.Module) -> None:
        super().__init__()
        self.enhancer = nn.Conv2d(3, 3, 1)
        self.critic = CriticHandle(critic)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return self.critic(self.enhancer(frames))


@pytest.fixture(autouse=True)
def _clean_cache():
    clear_critic_cache()
    yield
    clear_critic_cache()


def test_freeze_removes_trainable_parameters_and_sets_eval():
    critic = freeze(tiny_critic())
    assert not any(parameter.requires_grad for parameter in critic.parameters())
    assert not critic.training
    assert all(not module.training for module in critic.modules())
    assert is_frozen(critic)


def test_frozen_critic_stays_in_eval_after_train_calls():
    critic = freeze(tiny_critic())
    parent = nn.ModuleDict({"critic": critic, "trainable": nn.BatchNorm2d(4)})
    parent.train()
    assert parent.training and parent["trainable"].training
    assert all(not module.training for module in critic.modules())
    critic.train(True)
    assert all(not module.training for module in critic.modules())
    # Outputs are deterministic (Dropout off) and do not update BatchNorm statistics.
    frames = torch.rand(2, 3, 8, 8)
    running_mean = critic[1].running_mean.clone()
    assert torch.equal(critic(frames), critic(frames))
    assert torch.equal(critic[1].running_mean, running_mean)


def test_gradient_flows_through_frozen_critic_to_its_input():
    critic = freeze(tiny_critic())
    frames = torch.rand(1, 3, 8, 8, requires_grad=True)
    critic(frames).square().mean().backward()
    assert frames.grad is not None and frames.grad.abs().sum() > 0
    assert all(parameter.grad is None for parameter in critic.parameters())


def test_is_frozen_notices_when_freezing_is_undone():
    critic = freeze(tiny_critic())
    critic.requires_grad_(True)
    assert not is_frozen(critic)
    assert not is_frozen(tiny_critic())


def test_frozen_critic_survives_pickle_and_deepcopy():
    critic = freeze(tiny_critic())
    for clone in (pickle.loads(pickle.dumps(critic)), copy.deepcopy(critic)):
        assert is_frozen(clone)
        clone.train()
        assert not clone.training
        # The override is bound to the clone, not to the original.
        assert clone.train.args[0] is clone


def test_handle_keeps_critic_out_of_owner_state_dict_parameters_and_train():
    critic = tiny_critic()
    owner = Owner(critic)
    assert is_frozen(critic)
    assert set(owner.state_dict()) == {"enhancer.weight", "enhancer.bias"}
    assert len(list(owner.parameters())) == 2
    owner.train()
    assert not critic.training
    # An owner checkpoint reloads strictly into a fresh owner.
    fresh = Owner(tiny_critic())
    fresh.load_state_dict(owner.state_dict(), strict=True)


def test_handle_is_shared_by_deepcopy_of_owner():
    owner = Owner(tiny_critic())
    clone = copy.deepcopy(owner)
    assert clone.critic.module is owner.critic.module
    assert clone.enhancer is not owner.enhancer


def test_handle_follows_input_dtype_and_gradient_reaches_owner():
    owner = Owner(tiny_critic()).double()
    frames = torch.rand(1, 3, 8, 8, dtype=torch.float64)
    owner(frames).mean().backward()
    assert next(owner.critic.module.parameters()).dtype == torch.float64
    assert owner.enhancer.weight.grad is not None
    assert owner.enhancer.weight.grad.abs().sum() > 0


def test_handle_needs_a_tensor_and_a_module():
    handle = CriticHandle(tiny_critic())
    with pytest.raises(TypeError, match="at least one tensor"):
        handle()
    with pytest.raises(TypeError, match="nn.Module"):
        CriticHandle("not a module")  # type: ignore[arg-type]


def test_load_once_returns_the_same_module_for_the_same_weights(tmp_path: Path):
    weights = tmp_path / "critic.pt"
    torch.save(tiny_critic().state_dict(), weights)
    builds: list[int] = []

    def build() -> nn.Module:
        builds.append(1)
        return tiny_critic()

    first = load_once("tiny", weights, build)
    again = load_once("tiny", tmp_path / "." / "critic.pt", build)  # same file, other spelling
    assert again is first and len(builds) == 1 and is_frozen(first)

    torch.save(tiny_critic().state_dict(), weights)  # new contents → new digest → reload
    reloaded = load_once("tiny", weights, build)
    assert reloaded is not first and len(builds) == 2
    assert load_once("other-kind", weights, build) is not reloaded
    assert load_once("tiny", None, build) is load_once("tiny", None, build)
    assert cached_critic_count() == 4
