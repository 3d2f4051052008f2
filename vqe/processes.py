"""Worker processes that start clean: the one pool context of the batch tools.

Workers forked from a process whose torch or OpenCV thread pools have already run hang on their
first parallel call. A fork server that has imported only the worker's module forks clean
workers without importing torch again for each; spawn is the fallback where there is no fork
(Windows, and macOS's default).
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.context


def worker_pool_context(preload_module: str) -> multiprocessing.context.BaseContext:
    """A fork-server context whose server has imported ``preload_module`` (spawn without fork)."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([preload_module])
    return context
