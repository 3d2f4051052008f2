"""Keep freed host memory for reuse instead of handing it back to the OS (Linux, glibc).

glibc's malloc serves every block above its mmap threshold (128 KiB, adapting up to 32 MiB) with
a fresh ``mmap`` and unmaps it on ``free``. A CPU training step allocates its activations —
hundreds of MB each at 368×640, several GB in all with the VQA critic — and frees them at the
end, so every step the kernel faults those pages in and zeroes them again. With big blocks
served from the heap and freed memory kept (no trimming), a step reuses the previous step's
pages. Measured (``lut_unet``, batch 8 at 368×640, one thread, VQA with cached input features,
each setting in its own process, two runs each): the critic step 6.5–7.1 s instead of 8.8–10.3 s,
the critics-off step 4.0–4.2 s instead of 4.2–4.9 s. The cost: the process keeps its peak
footprint until it exits, which a training run holds anyway.

:func:`keep_freed_memory` is called by the training entry point (``train_vqe.py``), by video
enhancement when it loads a PyTorch model (``vqe.inference.backends.load_backend``: each 720p
frame allocates and frees its activations, tens of MB each; ``lut_unet`` on 2 threads took
214–233 instead of 269–296 ms per frame, each setting in its own process) and by the
benchmarks that time those; elsewhere (macOS, musl, Windows) it does nothing and says so by
returning False.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

# mallopt(3) parameters (malloc.h).
M_TRIM_THRESHOLD = -1
M_TOP_PAD = -2
M_MMAP_MAX = -4

#: Serve every block from the heap, never trim it, and grow it 256 MiB at a time.
SETTINGS = ((M_MMAP_MAX, 0), (M_TRIM_THRESHOLD, 2**31 - 1), (M_TOP_PAD, 256 * 2**20))


def keep_freed_memory() -> bool:
    """Switch glibc's malloc to keeping freed memory (see the module doc); True when it took
    effect, False where there is no glibc ``mallopt``."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    return all(mallopt(option, value) == 1 for option, value in SETTINGS)
