"""A one-line answer, with the nearest key, for a Hydra override that names no config key.

``python train_vqe.py trainer.max_epoch=1`` makes Hydra print five lines ("Could not override
'trainer.max_epoch'. To append to your config use +trainer.max_epoch=1 / Key 'max_epoch' is
not in struct / full_key … / object_type=dict") that never name the key that was meant.
:func:`exit_on_unknown_key`, called by the Hydra entry points before ``hydra.main`` runs (and
by ``vqe build | macs | evaluate``), composes the config the same way and answers instead::

    error: no config key 'trainer.max_epoch' — did you mean 'trainer.max_epochs'?

with exit status 1. Any other problem (a mistyped group option, a syntax error) is left to
Hydra, whose own messages list the options. Composing costs a few tenths of a second and
imports neither torch nor the project's models.
"""

from __future__ import annotations

import argparse
import difflib
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from vqe.config_root import CONFIG_DIR

#: Hydra flags after which the composed config is not the one :func:`check_overrides` would
#: compose (another config folder, a sweep) or nothing is composed at all: left to Hydra.
LEFT_TO_HYDRA = (
    "--help", "-h", "--hydra-help", "--version", "--shell-completion", "-sc", "--info", "-i",
    "--multirun", "-m", "--config-path", "-cp", "--config-dir", "-cd", "--experimental-rerun",
)  # fmt: skip
#: How Hydra names the override it could not apply, and OmegaConf the missing key (a plain
#: node: "is not in struct"; a structured one such as hydra.run: "not in 'RunDir'").
_NOT_OVERRIDDEN = re.compile(r"Could not override '([^']+)'")
_NO_SUCH_KEY = re.compile(r"Key '[^']+' (is )?not in ")


class _ArgvError(Exception):
    """Hydra's argument parser refused the command line: Hydra will say why itself."""


def dotted_keys(node: Any, prefix: str = "") -> list[str]:
    """Every key of a (plain, unresolved) config tree as ``a.b.c``, inner ones included."""
    keys: list[str] = []
    if isinstance(node, Mapping):
        for key, value in node.items():
            dotted = f"{prefix}{key}"
            keys.append(dotted)
            keys += dotted_keys(value, f"{dotted}.")
    return keys


def unknown_key_message(key: str, known: Iterable[str]) -> str:
    """The one line for an override of ``key``, which the config lacks; ``known`` its keys."""
    close = difflib.get_close_matches(key, list(known), n=1)
    if close:
        return f"error: no config key '{key}' — did you mean '{close[0]}'?"
    return f"error: no config key '{key}' (to add a new one, write +{key}=VALUE)"


def _override_key(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")


def _compose(config_name: str, overrides: Sequence[str]) -> Any:
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return compose(config_name, overrides=list(overrides), return_hydra_config=True)


def _known_keys(config_name: str, overrides: Sequence[str], failed: str) -> list[str]:
    """The keys of the config composed without the failed override (the others may select
    groups, which bring their own keys); of the bare config if that fails too."""
    from omegaconf import OmegaConf

    others = [override for override in overrides if _override_key(override) != failed]
    for attempt in (others, []):
        try:
            config = _compose(config_name, attempt)
        except Exception:  # another bad override: fall back to the bare config
            continue
        return dotted_keys(OmegaConf.to_container(config, resolve=False))
    return []


def _parsed(argv: Sequence[str]) -> argparse.Namespace:
    from hydra._internal.utils import get_args_parser

    parser = get_args_parser()

    def refuse(message: str) -> None:
        raise _ArgvError(message)

    parser.error = refuse  # type: ignore[method-assign]  # Hydra reports it, not us twice
    return parser.parse_args(list(argv))


def check_overrides(config_name: str, argv: Sequence[str]) -> str | None:
    """The error line for the first override of ``argv`` (a Hydra app's arguments) that sets a
    key the composed config lacks; None when there is none or the case is Hydra's to report."""
    if any(arg.split("=", 1)[0] in LEFT_TO_HYDRA for arg in argv):
        return None
    try:
        args = _parsed(argv)
    except _ArgvError:
        return None
    from hydra.core.global_hydra import GlobalHydra
    from hydra.errors import ConfigCompositionException

    if GlobalHydra.instance().is_initialized():  # inside another Hydra app: not ours to check
        return None
    name = args.config_name or config_name
    try:
        _compose(name, args.overrides)
    except ConfigCompositionException as error:
        found = _NOT_OVERRIDDEN.search(str(error))
        if found is None or not _NO_SUCH_KEY.search(str(error.__cause__ or "")):
            return None
        key = found.group(1)
        return unknown_key_message(key, _known_keys(name, args.overrides, key))
    except Exception:  # a missing group option, bad syntax: Hydra's messages say more
        return None
    return None


def exit_on_unknown_key(config_name: str, argv: Sequence[str] | None = None) -> None:
    """Print :func:`check_overrides`' line and exit 1 when it finds a mistyped key."""
    message = check_overrides(config_name, sys.argv[1:] if argv is None else argv)
    if message is not None:
        print(message, file=sys.stderr)
        sys.exit(1)


__all__ = ["check_overrides", "dotted_keys", "exit_on_unknown_key", "unknown_key_message"]
