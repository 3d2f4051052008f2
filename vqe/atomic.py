"""Atomic file writes: a file holds either its old content or the complete new one, never a
truncated mix, whatever stops the write (an exception, Ctrl-C, a full disk, a crash).

    atomic_write_bytes(path, data)
    atomic_write_text(path, text)                # UTF-8 unless told otherwise
    with atomic_path(path) as temporary:         # for writers that want a file name:
        table.to_csv(temporary, index=False)     # pandas, np.savez, torch.save, …

The new content goes to a temporary file beside ``path`` (same folder, so the same file system,
where ``os.replace`` is an atomic rename), is flushed to disk with ``fsync`` and only then renamed
over ``path``; the folder is synced too, so the rename survives a power cut. On any failure,
``KeyboardInterrupt`` included, the temporary file is removed and ``path`` is left as it was.

The temporary name is ``.<stem>.<random>.tmp<suffix>``: hidden, unique per writer (two
processes writing one file never share a temporary; the last rename wins, complete), and it
keeps the suffix because some writers add theirs otherwise (``np.savez`` appends ``.npz``). A
replaced file keeps its permission bits; a new one gets the usual ``0o666`` less the umask. The
folder must exist (a missing one is an error naming it, not created: it is more often a typo
than a wish). ``path`` names the file itself: a symbolic link there is replaced by the file,
not followed.
"""

from __future__ import annotations

import os
import secrets
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["atomic_path", "atomic_write_bytes", "atomic_write_text"]

_CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)


def _create_temporary(path: Path) -> Path:
    """Create (empty, exclusively) and return a fresh temporary sibling of ``path``."""
    if not path.parent.is_dir():
        raise FileNotFoundError(
            f"{path.parent}: folder not found, so {path.name} cannot be written there; "
            "create the folder first"
        )
    while True:
        temporary = path.with_name(f".{path.stem}.{secrets.token_hex(4)}.tmp{path.suffix}")
        try:
            os.close(os.open(temporary, _CREATE_FLAGS, 0o666))
        except FileExistsError:  # another writer drew the same name: draw again
            continue
        return temporary


def _keep_mode(path: Path, temporary: Path) -> None:
    """Give ``temporary`` the permission bits of the file it will replace, if there is one."""
    try:
        mode = stat.S_IMODE(os.stat(path, follow_symlinks=False).st_mode)
    except FileNotFoundError:
        return
    os.chmod(temporary, mode)


def _sync_file(path: Path) -> None:
    # Read-only is enough for fsync on POSIX (and works when the kept mode has no write bit);
    # Windows needs a writable handle.
    descriptor = os.open(path, os.O_RDWR if os.name == "nt" else os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _sync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` durable; best effort (Windows and some network file systems
    cannot sync a folder, and the data itself is already on disk)."""
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


@contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary file name beside ``path``; when the block ends without an exception,
    sync that file and rename it over ``path``. The temporary file already exists (empty), so
    the writer must overwrite it (mode ``"w"``, not ``"x"``). On an exception it is removed and
    ``path`` is untouched."""
    path = Path(path)
    temporary = _create_temporary(path)
    try:
        yield temporary
        _keep_mode(path, temporary)
        _sync_file(temporary)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    _sync_folder(path.parent)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Replace (or create) ``path`` with ``data``, atomically (see the module docstring)."""
    with atomic_path(path) as temporary, open(temporary, "wb") as stream:
        stream.write(data)


def atomic_write_text(
    path: str | os.PathLike[str], text: str, encoding: str = "utf-8", newline: str | None = None
) -> None:
    """Replace (or create) ``path`` with ``text``, atomically; ``encoding`` and ``newline`` as
    for :func:`open` (the default ``newline=None`` writes ``\\n`` as the platform's line end)."""
    with (
        atomic_path(path) as temporary,
        open(temporary, "w", encoding=encoding, newline=newline) as stream,
    ):
        stream.write(text)
