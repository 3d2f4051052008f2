"""Deprecated ``python -m`` paths: each old command module hands over to its ``vqe TOOL``.

The commands moved into :mod:`vqe.cli` (one module per tool); the modules users may still start
with ``python -m`` keep working for one release, after one line on standard error saying what to
type instead. The hand-over goes through the tool table by name, at run time (as ``vqe TOOL``
does), so no library module imports the commands wing.
"""

from __future__ import annotations

import importlib
import sys
from typing import NoReturn

#: The release after which the aliases go.
REMOVED_IN = "0.2"


def run_moved(old_module: str, tool: str) -> NoReturn:
    """Run ``vqe TOOL`` with this process's arguments after one deprecation line; exit with its
    status. ``old_module`` is the dotted path the user started (``python -m old_module``)."""
    print(
        f"note: python -m {old_module} is deprecated and goes in vqe {REMOVED_IN}; "
        f"use: vqe {tool}",
        file=sys.stderr,
    )
    entry = importlib.import_module("vqe.cli").main
    sys.exit(entry([tool, *sys.argv[1:]]))
