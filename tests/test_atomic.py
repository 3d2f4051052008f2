"""vqe.atomic: a file is its old content or the complete new one, and no temporary is left.

The full-disk case runs in a child process with a file-size limit (RLIMIT_FSIZE), which makes a
write fail part-way exactly like ENOSPC does: the bytes up to the limit land, the rest do not.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from vqe.atomic import atomic_path, atomic_write_bytes, atomic_write_text

OLD = b"old content, complete\n"


@pytest.fixture()
def target(tmp_path: Path) -> Path:
    path = tmp_path / "index.csv"
    path.write_bytes(OLD)
    return path


def folder_names(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir())


def test_writes_create_and_replace_with_the_complete_content(tmp_path: Path, target: Path) -> None:
    data = os.urandom(1 << 20)
    atomic_write_bytes(target, data)
    assert target.read_bytes() == data
    atomic_write_text(tmp_path / "new.json", '{"é": 1}\n')
    assert (tmp_path / "new.json").read_text(encoding="utf-8") == '{"é": 1}\n'
    assert folder_names(tmp_path) == ["index.csv", "new.json"]


@pytest.mark.parametrize("error", [RuntimeError("writer failed"), KeyboardInterrupt()])
def test_an_exception_mid_write_keeps_the_old_file_and_leaves_no_temporary(
    target: Path, error: BaseException
) -> None:
    with pytest.raises(type(error)):
        with atomic_path(target) as temporary:
            with open(temporary, "wb") as stream:
                stream.write(b"half of the new")
            raise error
    assert target.read_bytes() == OLD
    assert folder_names(target.parent) == [target.name]


def test_text_that_cannot_be_encoded_keeps_the_old_file(target: Path) -> None:
    with pytest.raises(UnicodeEncodeError):
        atomic_write_text(target, "fine so far, then \udcff", encoding="utf-8")
    assert target.read_bytes() == OLD
    assert folder_names(target.parent) == [target.name]


@pytest.mark.skipif(sys.platform == "win32", reason="needs RLIMIT_FSIZE")
def test_a_full_disk_keeps_the_old_file(target: Path) -> None:
    """The write fails after 64 bytes (the limit), as on a full disk."""
    script = textwrap.dedent(
        f"""
        import resource, signal, sys
        from vqe.atomic import atomic_write_bytes
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # fail the write (EFBIG), don't die
        resource.setrlimit(resource.RLIMIT_FSIZE, (64, 64))
        try:
            atomic_write_bytes({str(target)!r}, b"x" * 4096)
        except OSError as error:
            sys.exit(f"refused: {{error}}")
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 1 and "refused" in result.stderr, result.stderr
    assert target.read_bytes() == OLD
    assert folder_names(target.parent) == [target.name]


def test_writers_that_want_a_name_get_one_with_the_suffix(tmp_path: Path) -> None:
    """np.savez appends .npz to a name without it: the temporary keeps the suffix."""
    path = tmp_path / "features.npz"
    matrix = np.arange(12, dtype=np.float32).reshape(3, 4)
    with atomic_path(path) as temporary:
        assert temporary.parent == tmp_path and temporary.name.startswith(".")
        np.savez(temporary, features=matrix)
    with np.load(path) as stored:
        np.testing.assert_array_equal(stored["features"], matrix)
    assert folder_names(tmp_path) == ["features.npz"]


def test_two_writers_get_different_temporaries(target: Path) -> None:
    with atomic_path(target) as first, atomic_path(target) as second:
        assert first != second
        first.write_bytes(b"first\n")
        second.write_bytes(b"second\n")
    assert target.read_bytes() == b"first\n"  # the outer block ends last: its rename wins
    assert folder_names(target.parent) == [target.name]


@pytest.mark.skipif(os.name == "nt", reason="POSIX permission bits")
def test_permissions_are_kept_on_replace_and_default_on_create(
    tmp_path: Path, target: Path
) -> None:
    target.chmod(0o640)
    atomic_write_bytes(target, b"new\n")
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    umask = os.umask(0o022)
    os.umask(umask)
    atomic_write_bytes(tmp_path / "fresh.csv", b"new\n")
    assert stat.S_IMODE((tmp_path / "fresh.csv").stat().st_mode) == 0o666 & ~umask


def test_a_missing_folder_is_named(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="missing.*create the folder first"):
        atomic_write_text(tmp_path / "missing" / "score.json", "{}")
    assert not (tmp_path / "missing").exists()
