"""The process pool that renders synthetic data, and Ctrl-C during its work.

Ctrl-C reaches every process of the terminal's group. Workers ignore it, so only the main
process stops the build (each worker's own KeyboardInterrupt printed a traceback, and a
pool whose workers died could hang). SIGINT stays blocked while the workers start, so one
that arrives between a worker's birth and its ``SIG_IGN`` waits for the main process.
"""

from __future__ import annotations

import multiprocessing
import signal
from collections.abc import Callable
from multiprocessing.pool import Pool

CAN_BLOCK = hasattr(signal, "pthread_sigmask")  # not on Windows


def _start_worker(initializer: Callable[[], None]) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if CAN_BLOCK:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    initializer()


def render_pool(processes: int, initializer: Callable[[], None]) -> Pool:
    """A pool of ``processes`` workers, each running ``initializer`` first.

    Fork where the platform has it: spawn re-imports the caller's ``__main__``, and a script
    without an ``if __name__ == "__main__"`` guard would make the pool respawn crashing
    workers for ever."""
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    context = multiprocessing.get_context(method)
    if not CAN_BLOCK:
        return context.Pool(processes, initializer=_start_worker, initargs=(initializer,))
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        return context.Pool(processes, initializer=_start_worker, initargs=(initializer,))
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)  # a pending Ctrl-C arrives here
