"""The two OmegaConf resolvers the configs need, registered on import.

Interpolation cannot test for null or choose between two values, and the demo default needs
both: ``demo: ${vqe.is_null:${dataset.path}}`` is true when no data root is given (the embedded
demo set is used), and ``${vqe.if:${demo},2,32}`` picks a demo-sized value. Everything else in
the configs is plain interpolation.
"""

from __future__ import annotations

from typing import Any

from omegaconf import OmegaConf

IS_NULL = "vqe.is_null"
IF = "vqe.if"


def is_null(value: Any) -> bool:
    """True when the interpolated value is null (None)."""
    return value is None


def choose(condition: Any, if_true: Any, if_false: Any) -> Any:
    """``if_true`` when ``condition`` is a true boolean, ``if_false`` when false."""
    if not isinstance(condition, bool):
        raise TypeError(f"${{{IF}:…}}: the condition must be true or false, got {condition!r}")
    return if_true if condition else if_false


def register_resolvers() -> None:
    """Register the resolvers once per process (safe to call again)."""
    for name, function in ((IS_NULL, is_null), (IF, choose)):
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, function)


register_resolvers()
