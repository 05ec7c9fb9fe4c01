"""Test helper: the slowest of many inputs, robust to a busy machine.

An input that seems to exceed the limit is timed again a few times and the
fastest run counts: an input that is really slow is slow every time, while a
garbage-collection pause or a descheduled process is not.
"""

from __future__ import annotations

import time
from typing import Callable, Iterable, TypeVar

T = TypeVar("T")


def slowest(inputs: Iterable[T], run: Callable[[T], object], limit: float,
            retries: int = 3) -> tuple[float, T | None]:
    """(seconds, input) of the slowest input; outliers above ``limit`` re-timed."""
    worst, worst_input = 0.0, None
    for item in inputs:
        started = time.perf_counter()
        run(item)
        elapsed = time.perf_counter() - started
        if elapsed > limit:
            for _ in range(retries):
                started = time.perf_counter()
                run(item)
                elapsed = min(elapsed, time.perf_counter() - started)
        if elapsed > worst:
            worst, worst_input = elapsed, item
    return worst, worst_input
