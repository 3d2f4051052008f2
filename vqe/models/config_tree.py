"""Build an enhancer from a config tree read from a file, without running anything else.

A checkpoint (``hyper_parameters.model_config``) or an exported package's metadata records the
``model_vqe`` config that made the model. That tree comes from a user's file, so it is never
given to Hydra's ``instantiate`` — whose ``_target_`` may name any importable callable
(``builtins.open``, ``numpy.savetxt``, ``torch.load``) and whose keys ``_args_``, ``_partial_``
and interpolations reach further. Instead :func:`build_from_tree` checks the **whole** tree
first and then calls the constructors itself:

* every ``_target_`` is one of :data:`BUILDABLE` (the project's enhancer and stage classes,
  named by their dotted path as the configs write them);
* every other key is a parameter of that class's ``__init__`` (no ``_args_``, ``_partial_``,
  ``_recursive_``, ``_convert_``, no unknown keys);
* every value is plain data — None, bool, int, float, str, or a list of those — or a nested
  node that passes the same checks (a stage in an enhancer).

Nothing is built until the whole tree has passed, so a refused file has no side effect at all.
A new architecture becomes loadable from checkpoints by adding its class to :data:`BUILDABLE`.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

from torch import nn

from vqe.models.enhancer import Enhancer
from vqe.models.lut import LutStage
from vqe.models.resblocks import ResidualBlocksStage
from vqe.models.spatial_lut import SpatialLutStage
from vqe.models.unet import UNetStage

TARGET_KEY = "_target_"
#: The classes a config read from a file may build (the ``_target_`` of every node).
BUILDABLE: tuple[type[nn.Module], ...] = (
    Enhancer,
    LutStage,
    SpatialLutStage,
    UNetStage,
    ResidualBlocksStage,
)
#: Plain values a parameter may hold (and list items, lists nesting).
PLAIN_TYPES = (type(None), bool, int, float, str)
#: Deepest nesting accepted (an enhancer holding stages holding lists is depth 3).
MAX_DEPTH = 8


class UnsafeConfigError(ValueError):
    """A config read from a file names something other than the project's own model classes,
    or holds values other than plain data; the message names the key path and the value."""


def dotted_name(kind: type) -> str:
    return f"{kind.__module__}.{kind.__qualname__}"


BUILDABLE_BY_NAME: dict[str, type[nn.Module]] = {dotted_name(kind): kind for kind in BUILDABLE}


def _parameters(kind: type) -> set[str]:
    signature = inspect.signature(kind.__init__)
    return {
        name
        for name, parameter in signature.parameters.items()
        if name != "self"
        and parameter.kind in (parameter.POSITIONAL_OR_KEYWORD, parameter.KEYWORD_ONLY)
    }


def _check_value(value: Any, where: str, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise UnsafeConfigError(f"{where}: nested deeper than {MAX_DEPTH} levels")
    if isinstance(value, PLAIN_TYPES):
        return
    if isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            _check_value(item, f"{where}[{index}]", depth + 1)
        return
    if isinstance(value, Mapping):
        _check_node(value, where, depth + 1)
        return
    raise UnsafeConfigError(
        f"{where}: holds a {type(value).__name__}; only plain values (numbers, text, lists) "
        "and the project's model nodes are accepted"
    )


def _check_node(node: Mapping[str, Any], where: str, depth: int) -> type[nn.Module]:
    target = node.get(TARGET_KEY)
    if not isinstance(target, str) or target not in BUILDABLE_BY_NAME:
        allowed = ", ".join(sorted(BUILDABLE_BY_NAME))
        raise UnsafeConfigError(
            f"{where}.{TARGET_KEY}={target!r}: not one of the model classes a stored config may "
            f"build ({allowed}); refusing to build anything from it"
        )
    kind = BUILDABLE_BY_NAME[target]
    accepted = _parameters(kind)
    for key, value in node.items():
        if key == TARGET_KEY:
            continue
        if not isinstance(key, str) or key not in accepted:
            raise UnsafeConfigError(
                f"{where}.{key}: not a parameter of {target} (accepted: {', '.join(sorted(accepted))})"
            )
        _check_value(value, f"{where}.{key}", depth)
    return kind


def check_tree(tree: Any, where: str = "model_config") -> None:
    """Raise :class:`UnsafeConfigError` unless ``tree`` is an :class:`Enhancer` node built
    only from :data:`BUILDABLE` classes and plain values (see the module docstring)."""
    if not isinstance(tree, Mapping):
        raise UnsafeConfigError(f"{where}: expected a mapping, got a {type(tree).__name__}")
    if _check_node(tree, where, 0) is not Enhancer:
        raise UnsafeConfigError(
            f"{where}.{TARGET_KEY}={tree[TARGET_KEY]!r}: the root must be {dotted_name(Enhancer)}"
        )


def _build(value: Any) -> Any:
    if isinstance(value, Mapping):
        kind = BUILDABLE_BY_NAME[value[TARGET_KEY]]
        return kind(**{key: _build(item) for key, item in value.items() if key != TARGET_KEY})
    if isinstance(value, (list, tuple)):
        return [_build(item) for item in value]
    return value


def build_from_tree(tree: Any, where: str = "model_config") -> Enhancer:
    """The :class:`Enhancer` a checked config tree describes (checked whole first)."""
    check_tree(tree, where)
    enhancer = _build(tree)
    assert isinstance(enhancer, Enhancer)  # check_tree fixed the root's class
    return enhancer


__all__ = [
    "BUILDABLE",
    "BUILDABLE_BY_NAME",
    "UnsafeConfigError",
    "build_from_tree",
    "check_tree",
    "dotted_name",
]
