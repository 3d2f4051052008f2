"""The fused CPU lookup of 3-D LUTs: one C++ pass (``csrc/trilinear_lut.cpp``) in place of the
several of ``grid_sample``.

The deploy graph's eager CPU lookup otherwise builds a sampling grid, runs ``grid_sample`` (which
PyTorch's CPU kernel spreads over threads only by batch) and converts its NCHW result for a
channels-last U-Net: at 720p on 2 threads ≈ 9 ms of passes over the frame. The kernel reads each
pixel once, interpolates its cell's 8 corners with 4-wide SIMD lerps (all three channels at
once) and writes the result in the layout asked for, in one pass spread over torch's intra-op
threads (``at::parallel_for``). It computes the trilinear lookup of
:func:`vqe.models.lut.trilinear_lookup` to float rounding, for any fp32 frames (not only 8-bit).

**Build.** On first use it is compiled with :func:`torch.utils.cpp_extension.load` (a C++
compiler and ninja needed; ≈ 15 s once, then kept under ``$TORCH_EXTENSIONS_DIR``, by default
``~/.cache/torch_extensions``; with a PyTorch whose builder locks by a file's mere existence, a
lock file left there by a build that was killed is cleared after :data:`STALE_LOCK_S`, where the
builder would wait on it for ever — newer ones hold an advisory lock that dies with its holder,
and their lock file stays by design). It is compiled for this CPU
(``-march=native``), so its folder's name carries a digest of the source, the CPU model and
flags and the torch version (:func:`build_fingerprint`): a home folder shared by different
machines (a cluster's) keeps one build per kind of CPU and never loads another's, and a build
once made is loaded directly, without the builder.
If it cannot be built, one warning says why and the lookup stays with ``grid_sample`` (the same
values). ``VQE_FUSED_LUT=0`` turns it off; ``VQE_REQUIRE_FUSED_LUT=1`` (as CI sets) makes a failed
build an error instead of a fallback.
"""

from __future__ import annotations

import hashlib
import logging
import os
import platform
import sys
import threading
import time
from pathlib import Path

import torch

log = logging.getLogger(__name__)

SOURCE = Path(__file__).with_name("csrc") / "trilinear_lut.cpp"
#: ``0`` keeps the lookup on grid_sample (e.g. to compare the two).
SWITCH_VARIABLE = "VQE_FUSED_LUT"
#: ``1`` turns a failed build into an error (CI: the kernel must be what the tests test).
REQUIRE_VARIABLE = "VQE_REQUIRE_FUSED_LUT"
BUILD_FLAGS = ["-O3", "-march=native", "-fopenmp"]
#: A build takes ~15 s: a lock file this old was left by one that was killed.
STALE_LOCK_S = 300

_build_lock = threading.Lock()
_built: bool | None = None  # None: not tried yet in this process


def build_fingerprint() -> str:
    """What a build depends on: the kernel's source, the flags, torch's version and — for
    ``-march=native`` — the CPU model and flags."""
    description = [SOURCE.read_text(), " ".join(BUILD_FLAGS), torch.__version__,
                   platform.machine(), platform.processor()]  # fmt: skip
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("model name", "flags", "Features", "CPU part")):
                description.append(line)
                if len(description) > 8:  # the first CPU's lines say it all
                    break
    except OSError:  # not Linux: the platform strings above stand for the CPU
        pass
    return hashlib.sha256("\n".join(description).encode()).hexdigest()[:10]


def extension_name() -> str:
    return f"vqe_trilinear_lut_{build_fingerprint()}"


def build_directory() -> Path:
    """Where the kernel is built and kept: one folder per :func:`build_fingerprint`."""
    root = os.environ.get("TORCH_EXTENSIONS_DIR") or Path.home() / ".cache" / "torch_extensions"
    return Path(root) / extension_name()


def clear_stale_lock(folder: Path) -> None:
    """Remove ``folder/lock`` when a build that was killed left it (older than STALE_LOCK_S):
    a PyTorch builder that locks with a ``FileBaton`` waits for that file to go away. (Only for
    those: the advisory ``FileLock`` of newer ones keeps its file, and deleting it under a
    holder would let a second build in.)"""
    lock = folder / "lock"
    try:
        age = time.time() - lock.stat().st_mtime
    except FileNotFoundError:
        return
    if age > STALE_LOCK_S:
        log.warning("removing %s, left %.0f min ago by a build that did not finish", lock, age / 60)
        lock.unlink(missing_ok=True)


def fused_lookup_available() -> bool:
    """True when the kernel is loaded (built on the first call of the process; see module doc)."""
    global _built
    if _built is None:
        with _build_lock:
            if _built is None:
                _built = _load()
    return _built


def _load() -> bool:
    if os.environ.get(SWITCH_VARIABLE, "1") == "0":
        return False
    folder = build_directory()
    library = folder / f"{extension_name()}.so"
    try:
        if library.is_file():
            # Built before for exactly this source, CPU and torch (the folder's name says so):
            # loaded directly, without PyTorch's builder and the lock it holds while it checks.
            try:
                torch.ops.load_library(str(library))
                return True
            except OSError:  # e.g. cut short by a killed link: build it again
                library.unlink(missing_ok=True)
        _build(folder)
    except Exception as error:  # no compiler, no ninja, a failed compile: all mean the fallback
        reason = f"{type(error).__name__}: {str(error).strip().splitlines()[-1][:300]}"
        if os.environ.get(REQUIRE_VARIABLE) == "1":
            raise RuntimeError(
                f"the fused LUT lookup ({SOURCE}) could not be built and {REQUIRE_VARIABLE}=1 "
                f"asks for it: {reason}"
            ) from error
        log.warning(
            "the fused LUT lookup (%s) could not be built, so the CPU lookup stays with "
            "grid_sample (same values, slower): %s. It needs a C++ compiler (Debian: apt install "
            "g++) and ninja (pip install ninja); %s=0 silences this.",
            SOURCE.name, reason, SWITCH_VARIABLE,
        )
        return False
    return True


def _build(folder: Path) -> None:
    """Compile and load the kernel into ``folder`` (PyTorch's builder, under its lock file)."""
    # Importing cpp_extension logs a warning about CUDA_HOME on machines without CUDA: not ours
    # to show, the kernel is CPU only.
    cpp_log = logging.getLogger("torch.utils.cpp_extension")
    level = cpp_log.level
    cpp_log.setLevel(logging.ERROR)
    try:
        from torch.utils import cpp_extension
    finally:
        cpp_log.setLevel(level)
    folder.mkdir(parents=True, exist_ok=True)
    if hasattr(cpp_extension, "FileBaton"):  # the existence-based lock (see clear_stale_lock)
        clear_stale_lock(folder)
    # Said on stderr, not logged: a first call that sits for 15 s should say why.
    print(f"vqe: compiling the fused LUT lookup for this CPU into {folder} (once, ~15 s)",
          file=sys.stderr, flush=True)  # fmt: skip
    cpp_extension.load(
        name=extension_name(),
        sources=[str(SOURCE)],
        build_directory=str(folder),
        extra_cflags=BUILD_FLAGS,
        extra_ldflags=["-fopenmp"],
        is_python_module=False,
    )


def fused_trilinear_lookup(
    frames: torch.Tensor, luts: torch.Tensor, memory_format: torch.memory_format
) -> torch.Tensor:
    """Look fp32 CPU B×3×H×W frames (either layout) up in B×3×D×D×D LUTs; the result is laid
    out in ``memory_format``. Only after :func:`fused_lookup_available` said True; no gradient."""
    return torch.ops.vqe.trilinear_lut(frames, luts, memory_format == torch.channels_last)
