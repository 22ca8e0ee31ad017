"""Memory a build takes, for the tests that check a cache is written as it is made."""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable


def traced_peak(work: Callable[..., object], *args: object) -> int:
    """The most memory Python's allocator held (traced) while ``work(*args)`` ran, in bytes."""
    tracemalloc.start()
    try:
        work(*args)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
