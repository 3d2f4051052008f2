"""Wall-clock timing shared by the benchmarks: warm-up, CUDA synchronisation, median."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import torch


def synchronise(device: torch.device) -> None:
    """Wait for queued CUDA work so that a timer sees it (a no-op on other devices)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def median_seconds(
    run: Callable[[], object], device: torch.device, warmup: int, repeats: int
) -> float:
    """Median wall time of ``run`` in seconds over ``repeats`` calls, after ``warmup`` untimed
    ones (the median resists the outliers of a shared machine)."""
    for _ in range(warmup):
        run()
    synchronise(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        synchronise(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)
