"""Reading critic weight files: state dicts, strict loading with readable errors, digests.

Shared by every frozen critic (VQA, DOVER). The critics' weights come from files vqe cannot
download, so every failure here says which file, which key and what to do about it.
"""

from __future__ import annotations

import collections
import hashlib
import logging
import pickle
import warnings
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import Tensor, nn

from vqe.torch_files import listed, load_error_reason, unsafe_globals

log = logging.getLogger(__name__)

#: How many keys an error message lists per category before it summarises the rest.
MAX_LISTED_KEYS = 12

#: Lightning checkpoints keep the weights under this key.
LIGHTNING_STATE_DICT_KEY = "state_dict"

_DIGEST_CHARS = 16
_HASH_CHUNK_BYTES = 1 << 20


class WeightsReadError(ValueError):
    """A weights file exists but does not hold a readable state dict."""


class WeightsMismatchError(ValueError):
    """A state dict does not fit a module: missing or unexpected keys, or wrong shapes."""


class CriticWeightsMissingError(FileNotFoundError):
    """A critic's weights file does not exist, or none was given and random critics are off."""


# --------------------------------------------------------------------------- reading


def _hyper_parameter_types() -> list[type | object]:
    """Types that Lightning checkpoints pickle for their hyper-parameters and that rebuild as plain
    data (no code of the file runs): ``argparse.Namespace`` and OmegaConf containers, stored with
    their type under ``hparams_type`` (Lightning stores other hyper-parameters as a plain dict).

    Allowed in ``torch.load(weights_only=True)`` on top of tensors and primitive containers.
    """
    import argparse
    import typing

    from omegaconf import DictConfig, ListConfig, base, nodes

    return [
        argparse.Namespace,
        DictConfig,
        ListConfig,
        base.ContainerMetadata,
        base.Metadata,
        nodes.AnyNode,
        nodes.StringNode,
        nodes.IntegerNode,
        nodes.FloatNode,
        nodes.BooleanNode,
        typing.Any,
        dict,
        list,
        int,
        float,
        str,
        bool,
        collections.defaultdict,
    ]


def _torch_load(path: Path) -> object:
    """``torch.load(weights_only=True)`` on the CPU: tensors, primitive containers and the
    hyper-parameter types of :func:`_hyper_parameter_types` — never arbitrary pickled objects.

    A file that needs anything else is refused with the types it names and how to convert it
    once into a plain state dict.
    """
    try:
        with torch.serialization.safe_globals(_hyper_parameter_types()):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        unsafe = _unsafe_globals(path)
        raise (_unsafe(path, unsafe) if unsafe else _unreadable(path, error)) from error
    except (RuntimeError, EOFError, OSError, ValueError) as error:
        raise _unreadable(path, error) from error


def _unsafe_globals(path: Path) -> list[str]:
    """The pickled globals of a weights file beyond the allowed ones ([] if it is not one)."""
    allowed = [
        f"{kind.__module__}.{kind.__qualname__}"
        for kind in _hyper_parameter_types()
        if isinstance(kind, type)
    ]
    return unsafe_globals(path, allowed)


def _unsafe(path: Path, names: list[str]) -> WeightsReadError:
    return WeightsReadError(
        f"{path}: refused — it pickles objects other than tensors and plain data "
        f"({listed(names)}), "
        "and loading them would run code stored in the file. If you trust the file, convert it "
        "once to a plain state dict and point the config at the result: python -c \"import "
        f"torch; c = torch.load('{path}', weights_only=False); "
        f"torch.save(c.get('state_dict', c), '{path.with_suffix('.state_dict.pt')}')\""
    )


def _unreadable(path: Path, error: Exception) -> WeightsReadError:
    return WeightsReadError(
        f"{path}: cannot be read as a PyTorch checkpoint ({load_error_reason(error)}). "
        "Check that the file is complete (not a truncated download or a Git LFS pointer) and "
        "is the right one."
    )


def read_state_dict(path: Path | str, prefix: str | None = None) -> dict[str, Tensor]:
    """Read the state dict stored in ``path``.

    Accepts a Lightning checkpoint (a dict whose ``state_dict`` entry holds the weights) or a
    plain state dict. ``prefix`` (e.g. ``"_model."``) is stripped from the keys that carry it;
    keys without it are kept unchanged, so a plain state dict of the bare network reads the
    same, and a stray key (e.g. a loss buffer of the training module) surfaces later as an
    unexpected key in :func:`load_strict`.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such weights file")
    loaded = _torch_load(path)
    if not isinstance(loaded, Mapping):
        raise WeightsReadError(
            f"{path}: expected a state dict or a Lightning checkpoint (a dict), "
            f"got {type(loaded).__name__}"
        )
    nested = loaded.get(LIGHTNING_STATE_DICT_KEY)
    raw = nested if isinstance(nested, Mapping) else loaded

    state_dict: dict[str, Tensor] = {}
    for key, value in raw.items():
        if not isinstance(value, Tensor):
            raise WeightsReadError(
                f"{path}: entry {key!r} is a {type(value).__name__}, not a tensor; "
                "the file is neither a plain state dict nor a Lightning checkpoint"
            )
        name = key[len(prefix) :] if prefix and key.startswith(prefix) else key
        if name in state_dict:
            raise WeightsReadError(
                f"{path}: key {key!r} collides with {name!r} once the prefix {prefix!r} is "
                "stripped"
            )
        state_dict[name] = value
    if not state_dict:
        raise WeightsReadError(f"{path}: the state dict is empty")
    return state_dict


# --------------------------------------------------------------------------- strict loading


def _listed(title: str, items: list[str]) -> str:
    shown = items[:MAX_LISTED_KEYS]
    lines = [f"  {title} ({len(items)}):", *(f"    {item}" for item in shown)]
    if len(items) > len(shown):
        lines.append(f"    … and {len(items) - len(shown)} more")
    return "\n".join(lines)


def load_strict(module: nn.Module, state_dict: Mapping[str, Tensor], source: Path | str) -> None:
    """Load ``state_dict`` into ``module``, requiring exactly its keys and shapes.

    Raises :class:`WeightsMismatchError` naming ``source`` and listing the missing keys,
    the unexpected keys and the shape mismatches (long lists are cut, with counts).
    """
    expected = module.state_dict()
    missing = [key for key in expected if key not in state_dict]
    unexpected = [key for key in state_dict if key not in expected]
    wrong_shape = [
        f"{key}: file {tuple(state_dict[key].shape)}, model {tuple(expected[key].shape)}"
        for key in expected
        if key in state_dict and state_dict[key].shape != expected[key].shape
    ]
    if missing or unexpected or wrong_shape:
        sections = [
            _listed(title, items)
            for title, items in (
                ("missing keys", missing),
                ("unexpected keys", unexpected),
                ("shape mismatches", wrong_shape),
            )
            if items
        ]
        raise WeightsMismatchError(
            f"{source}: the weights do not fit {type(module).__name__} "
            f"({len(expected)} keys expected, {len(state_dict)} in the file).\n"
            + "\n".join(sections)
            + "\nCheck that the file is the right one for this critic and is not modified."
        )
    module.load_state_dict(state_dict, strict=True)


# --------------------------------------------------------------------------- identity


def weights_digest(path: Path | str) -> str:
    """First 16 hex characters of the file's SHA-256: a cache key for loaded weights."""
    sha = hashlib.sha256()
    with Path(path).open("rb") as stream:
        while chunk := stream.read(_HASH_CHUNK_BYTES):
            sha.update(chunk)
    return sha.hexdigest()[:_DIGEST_CHARS]


# --------------------------------------------------------------------------- missing weights


def resolve_weights(
    path: Path | str | None,
    allow_random: bool,
    *,
    critic: str,
    file_name: str,
    config_group: str,
    where_to_get: str,
) -> Path | None:
    """Decide where a critic's weights come from.

    Returns the resolved weights path when it exists. A path that is given but is not a file
    always raises :class:`CriticWeightsMissingError` naming it: a mistyped path must never turn
    into random weights. Only when no path is given does ``allow_random`` return ``None`` (after
    a loud warning: the caller then builds a random critic); otherwise the error says where to
    get ``file_name`` and which config keys to set.
    """
    given = path is not None and bool(str(path).strip())
    if given and Path(path).expanduser().is_file():
        return Path(path).expanduser().resolve()
    if given:
        raise CriticWeightsMissingError(
            _bad_path_message(Path(path), critic, file_name, config_group, where_to_get)
        )
    if not allow_random:
        raise CriticWeightsMissingError(
            f"{critic}: no weights file was given. Get {file_name} {where_to_get} and set "
            f"{config_group}.weights=/path/to/{file_name}, or set "
            f"{config_group}.allow_random_critics=true to run with a randomly initialised "
            f"{critic} whose scores are meaningless (tests and the demo only)."
        )
    message = (
        f"{critic}: no weights file was given; using RANDOM weights because {config_group}."
        f"allow_random_critics is true. Its scores are MEANINGLESS — do not train or report "
        f"results with them. Get {file_name} {where_to_get} and set {config_group}.weights."
    )
    # Warned once, as a warning only: entry points route warnings into the log as one line
    # (vqe.quiet), so a log.warning beside it printed every random critic twice.
    warnings.warn(message, RuntimeWarning, stacklevel=3)
    return None


def _bad_path_message(
    path: Path, critic: str, file_name: str, config_group: str, where_to_get: str
) -> str:
    problem = "is not a file" if path.expanduser().exists() else "does not exist"
    return (
        f"{critic}: the weights file {path} {problem}. Fix {config_group}.weights (get "
        f"{file_name} {where_to_get}); {config_group}.allow_random_critics never replaces a "
        f"given file with random weights: for a random {critic}, as on the demo, leave "
        f"{config_group}.weights unset."
    )
