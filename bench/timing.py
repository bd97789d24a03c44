"""Wall-clock timing shared by the benches that time a Python call in-process."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def min_and_median(fn: Callable[[], object], repeat: int) -> tuple[float, float]:
    """(min, median) wall-clock seconds of ``fn`` over ``repeat`` calls."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times), statistics.median(times)
