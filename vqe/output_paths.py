"""Output paths a tool is about to write, checked before the work so that a bad one costs nothing.

A tool that writes a report, a plot, an export or a folder of outputs calls
:func:`check_writable` on each output path right after parsing its arguments: a path it cannot
write then gives one line naming the path and what to do, instead of a traceback (or a hidden
temporary name) after minutes of work. It also calls :func:`check_not_an_input` with the paths
it reads: an output that is one of its inputs (the same file, through a symlink or a hard link
too) or lies inside an input folder is refused, so a tool never writes over what it reads.
"""

from __future__ import annotations

import os
from pathlib import Path


class OutputPathError(OSError):
    """An output path cannot be written; the message names it and what to do."""


def _nearest_existing(path: Path) -> Path:
    """``path`` or its closest ancestor that exists (the folder the tool would create in)."""
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return Path.cwd()


def check_writable(path: str | Path, option: str, *, folder: bool = False) -> None:
    """Raise :class:`OutputPathError` unless ``path`` (a file, or a folder when ``folder``) can be
    created or replaced; ``option`` is the argument that names it (e.g. ``--json``).

    Checks the permissions (``os.access``), so it needs no test file; root passes every
    permission check except on a read-only mount, but not a file standing where a folder must be.
    """
    path = Path(path)
    where = _nearest_existing(path if folder else path.parent)
    advice = f"choose another {option}"
    if not where.is_dir():
        raise OutputPathError(
            f"{option} {path}: cannot be written, {where} is a file, not a folder; {advice}"
        )
    if not os.access(where, os.W_OK | os.X_OK):
        raise OutputPathError(
            f"{option} {path}: cannot be written, the folder {where} is read-only; {advice} "
            "or make the folder writable"
        )
    if not folder and path.is_file() and not os.access(path, os.W_OK):
        raise OutputPathError(
            f"{option} {path}: cannot be replaced, the file is read-only; {advice}"
        )


def _same_or_inside(output: Path, source: Path) -> bool:
    """Whether writing ``output`` would write over ``source`` or into the folder ``source``."""
    out, src = output.resolve(), source.resolve()
    if out == src:
        return True
    if src.is_dir() and out.is_relative_to(src):
        return True
    try:  # hard links and bind mounts: the same file under another name
        return out.exists() and src.exists() and os.path.samefile(out, src)
    except OSError:
        return False


def check_not_an_input(
    output: str | Path, option: str, inputs: dict[str, str | Path | None]
) -> None:
    """Raise :class:`OutputPathError` when ``output`` (named by ``option``) is one of ``inputs``
    (``{option: path}``, None entries skipped) or lies inside an input folder."""
    for input_option, source in inputs.items():
        if source is not None and _same_or_inside(Path(output), Path(source)):
            raise OutputPathError(
                f"{option} {output}: is, or lies inside, the input "
                f"{'' if input_option == 'input' else input_option + ' '}{source}; "
                f"writing there would overwrite what the tool reads — choose another {option}"
            )
