"""Frozen critics: never trained, always in eval mode, never saved with the enhancer, loaded once.

Three pieces, each with one job:

* :func:`freeze` turns a module into a critic in place: no parameter requires a gradient
  (gradients still flow *through* it to its inputs), it is in eval mode, and its ``train()``
  is replaced on the instance so that ``train()``/``train(True)`` — called directly or by a
  parent's ``.train()`` — leaves it (and all its children) in eval mode. The override is a
  ``functools.partial`` of a module-level function, so a frozen critic still pickles and
  deep-copies.

* :class:`CriticHandle` is how an owner (a LightningModule, a loss) holds a critic. It is a
  plain object, not an ``nn.Module``, so assigning it to a module attribute does *not*
  register the critic as a submodule. We chose this over registering the critic and filtering
  its keys out with state-dict hooks because it keeps the critic out of everything that walks
  the module tree, with no special cases:

  - ``state_dict()`` / Lightning checkpoints and strict ``load_state_dict`` of the enhancer
    never see critic keys;
  - ``parameters()`` (optimizers, ``ModelSummary``, gradient clipping) never see critic
    parameters, and DDP neither wraps nor broadcasts the critic's buffers;
  - the parent's ``.train()`` never reaches the critic;
  - ``copy.deepcopy`` of the owner (EMA copies, checkpoint averaging) shares the critic
    instead of copying tens of megabytes of frozen weights.

  The cost is that ``owner.to(device)`` does not move the critic. Instead the handle follows
  its input: calling it (or :meth:`CriticHandle.on`) moves the critic to the input's device
  and floating dtype first — a no-op after the first call. A LightningModule therefore holds
  ``self.vqa = CriticHandle(load_vqa(...))`` and calls ``self.vqa(x1, x2, d1, d2)`` (or
  ``self.vqa.on(x).compare(...)``) inside its steps; the critic lands on the GPU with the first
  batch, and nothing of it is saved.

* :func:`load_once` is the per-process cache: loading the same weights (same kind, same
  resolved path, same file digest) twice returns the same frozen module.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from torch import Tensor, nn

from vqe.critics.weights import weights_digest

ModuleT = TypeVar("ModuleT", bound=nn.Module)

# --------------------------------------------------------------------------- freezing


def _train_stays_eval(module: nn.Module, mode: bool = True) -> nn.Module:
    """Replacement for ``module.train``: whatever ``mode`` asks, the critic stays in eval."""
    del mode  # a frozen critic ignores requests to train
    return nn.Module.train(module, False)


def freeze(module: ModuleT) -> ModuleT:
    """Make ``module`` a frozen critic in place and return it (see the module docstring)."""
    module.requires_grad_(False)
    module.train = functools.partial(_train_stays_eval, module)  # type: ignore[method-assign]
    module.train()
    return module


def is_frozen(module: nn.Module) -> bool:
    """True when ``module`` went through :func:`freeze` and nothing has undone it since."""
    override = module.__dict__.get("train")
    return (
        isinstance(override, functools.partial)
        and override.func is _train_stays_eval
        and not module.training
        and not any(parameter.requires_grad for parameter in module.parameters())
    )


# --------------------------------------------------------------------------- holding


def _first_tensor(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Tensor:
    for value in (*args, *kwargs.values()):
        if isinstance(value, Tensor):
            return value
    raise TypeError("CriticHandle: call it with at least one tensor, so it knows the device")


class CriticHandle:
    """Holds a frozen critic outside its owner's module tree; follows its inputs' device."""

    def __init__(self, critic: nn.Module) -> None:
        if not isinstance(critic, nn.Module):
            raise TypeError(f"CriticHandle needs an nn.Module, got {type(critic).__name__}")
        self._critic = critic if is_frozen(critic) else freeze(critic)

    @property
    def module(self) -> nn.Module:
        """The critic itself, wherever it currently lives."""
        return self._critic

    def on(self, like: Tensor) -> nn.Module:
        """The critic, moved to ``like``'s device (and dtype, if ``like`` is floating point).

        The critic may be shared through :func:`load_once`; moving it moves it for every
        holder, which is what one process training on one device wants.
        """
        reference = next(self._critic.parameters(), None)
        if reference is None:
            return self._critic
        dtype = like.dtype if like.is_floating_point() else reference.dtype
        if reference.device != like.device or reference.dtype != dtype:
            self._critic.to(device=like.device, dtype=dtype)
        return self._critic

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.on(_first_tensor(args, kwargs))(*args, **kwargs)

    def __deepcopy__(self, memo: dict[int, Any]) -> CriticHandle:
        # Frozen weights are immutable: a copied owner shares the critic.
        return self

    def __repr__(self) -> str:
        return f"CriticHandle({type(self._critic).__name__})"


# --------------------------------------------------------------------------- caching

_CacheKey = tuple[str, str | None, str | None]
_cache: dict[_CacheKey, nn.Module] = {}
_cache_lock = threading.Lock()


def load_once(kind: str, path: Path | None, build: Callable[[], nn.Module]) -> nn.Module:
    """Return the frozen critic of ``kind`` for the weights at ``path``, building it once.

    The key is (kind, resolved path, SHA-256 digest of the file), so a file replaced in place
    is loaded again. ``path=None`` stands for the one random critic of that kind.
    ``build`` makes the module (reads and strictly loads the weights); the result is frozen.
    """
    if path is None:
        key: _CacheKey = (kind, None, None)
    else:
        resolved = Path(path).resolve()
        key = (kind, str(resolved), weights_digest(resolved))
    with _cache_lock:
        if key not in _cache:
            _cache[key] = freeze(build())
        return _cache[key]


def clear_critic_cache() -> None:
    """Forget every cached critic (tests use it to start from a clean process state)."""
    with _cache_lock:
        _cache.clear()


def cached_critic_count() -> int:
    """How many critics this process holds in the cache."""
    with _cache_lock:
        return len(_cache)


__all__ = [
    "CriticHandle",
    "cached_critic_count",
    "clear_critic_cache",
    "freeze",
    "is_frozen",
    "load_once",
]
