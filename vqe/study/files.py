"""Path-safe file lookup: the server serves a file only when it lies inside one folder.

A request path is refused (None) when it is empty, absolute, holds ``..`` or ``.`` segments, a
backslash or a NUL, names something that is not a regular file, or resolves — through symlinks —
to a place outside the folder. Starlette has already percent-decoded the path, so ``%2e%2e`` and
``%2f`` arrive here as ``..`` and ``/`` and are refused the same way.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath


def safe_file(root: str | Path, relative: str) -> Path | None:
    """``root/relative`` resolved, if it is a regular file inside ``root``; else None."""
    if not relative or "\x00" in relative or "\\" in relative:
        return None
    pure = PurePosixPath(relative)
    if pure.is_absolute() or any(part in ("..", ".") for part in relative.split("/")):
        return None
    if ":" in pure.parts[0]:  # a Windows drive ("C:") or a URL scheme
        return None
    try:
        base = Path(root).resolve(strict=True)
        resolved = (base / pure).resolve(strict=True)
    except (OSError, RuntimeError):  # missing, or a symlink loop
        return None
    if not resolved.is_relative_to(base) or not resolved.is_file():
        return None
    return resolved
