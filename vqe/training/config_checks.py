"""Checks of a composed ``configs/vqe.yaml`` that need no torch (``train_vqe.py`` runs them
before it loads it, so that a mistyped value answers at once): :func:`check_numbers`."""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig, OmegaConf

#: Config values that must be numbers: key -> (integer only, may be null). A string there
#: (``optimizer.lr=abc``) would otherwise fail deep inside torch or Lightning.
NUMBER_KEYS: dict[str, tuple[bool, bool]] = {
    "seed": (True, False),
    "mac_limit": (False, False),
    "optimizer.lr": (False, False),
    "optimizer.weight_decay": (False, True),
    "dataloader.batch_size": (True, False),
    "trainer.max_epochs": (True, True),
    "trainer.min_epochs": (True, True),
    "trainer.max_steps": (True, True),
    "trainer.check_val_every_n_epoch": (True, True),
    "trainer.log_every_n_steps": (True, True),
    "trainer.num_sanity_val_steps": (True, True),
    "trainer.accumulate_grad_batches": (True, True),
    "trainer.gradient_clip_val": (False, True),
    "trainer.limit_train_batches": (False, True),
    "trainer.limit_val_batches": (False, True),
    "trainer.limit_test_batches": (False, True),
}
_ABSENT = object()


class ConfigError(ValueError):
    """A config value that cannot work; the message names the key and what to do."""


def _check_number(key: str, value: Any, integer: bool, nullable: bool) -> None:
    if value is None and nullable:
        return
    kinds = (int,) if integer else (int, float)
    if isinstance(value, kinds) and not isinstance(value, bool):
        return
    wanted = "an integer" if integer else "a number"
    raise ConfigError(
        f"{key}={value!r} is not {wanted}; set {key} to {wanted} (on the command line or in "
        "its config file)"
    )


#: Numbers that must be above zero (torch and Lightning would stop with a traceback, or
#: run and do nothing).
POSITIVE_KEYS = ("optimizer.lr", "dataloader.batch_size", "trainer.accumulate_grad_batches")
#: With train=true, a zero here trains nothing and still exits 0: refused instead.
TRAINING_AMOUNT_KEYS = ("trainer.limit_train_batches", "trainer.max_epochs", "trainer.max_steps")


def _check_amounts(cfg: DictConfig) -> None:
    for key in POSITIVE_KEYS:
        value = OmegaConf.select(cfg, key, default=None)
        if value is not None and value <= 0:
            raise ConfigError(f"{key}={value} must be above 0; set {key} to a positive number")
    if not OmegaConf.select(cfg, "train", default=False):
        return
    for key in TRAINING_AMOUNT_KEYS:
        if OmegaConf.select(cfg, key, default=None) == 0:
            raise ConfigError(
                f"{key}=0: the run would train nothing; give it a positive value, or set "
                "train=false to only test a model"
            )


def check_numbers(cfg: DictConfig) -> None:
    """:class:`ConfigError` naming the first :data:`NUMBER_KEYS` entry that is not a number, or
    a number out of its range (:data:`POSITIVE_KEYS`, :data:`TRAINING_AMOUNT_KEYS`)."""
    for key, (integer, nullable) in NUMBER_KEYS.items():
        value = OmegaConf.select(cfg, key, default=_ABSENT)
        if value is not _ABSENT:
            _check_number(key, value, integer, nullable)
    _check_amounts(cfg)


__all__ = ["NUMBER_KEYS", "POSITIVE_KEYS", "TRAINING_AMOUNT_KEYS", "ConfigError", "check_numbers"]
