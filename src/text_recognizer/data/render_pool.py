"""The process pool that renders synthetic data, and Ctrl-C during its work.

Ctrl-C reaches every process of the terminal's group. Workers ignore it, so only the main
process stops the build (each worker's own KeyboardInterrupt printed a traceback, and a
pool whose workers died could hang). SIGINT stays blocked while the workers start, so one
that arrives between a worker's birth and its ``SIG_IGN`` waits for the main process.
The main process stops between chunks (:func:`interruptible`): a KeyboardInterrupt raised
wherever the signal lands can land in a weakref callback of the pool's, where Python
prints it as "Exception ignored" and carries on rendering.
"""

from __future__ import annotations

import logging
import multiprocessing
import signal
import threading
from collections.abc import Callable, Iterator
from multiprocessing.pool import Pool
from typing import TypeVar

T = TypeVar("T")

log = logging.getLogger(__name__)

CAN_BLOCK = hasattr(signal, "pthread_sigmask")  # not on Windows


def _start_worker(initializer: Callable[[], None]) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # One started while interruptible's handler is set would not die at the pool's end.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
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


def interruptible(chunks: Iterator[T]) -> Iterator[T]:
    """``chunks``, with a Ctrl-C raising KeyboardInterrupt as the next one arrives (a
    second Ctrl-C at once). Python's own handling is kept where another handler is set,
    or off the main thread (only there can a handler be set).

    SIGTERM, where nothing handles it, stops the chunks too, as ``SystemExit(143)`` (the
    status it kills with): killed where it stood, a build left its temporary file, and
    its pool's workers rendered on, orphaned."""
    main = threading.current_thread() is threading.main_thread()
    take_int = main and signal.getsignal(signal.SIGINT) is signal.default_int_handler
    take_term = main and signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
    if not (take_int or take_term):
        yield from chunks
        return
    pressed = terminated = False

    def on_ctrl_c(signum: int, frame: object) -> None:
        nonlocal pressed
        if pressed:
            raise KeyboardInterrupt
        pressed = True

    def on_sigterm(signum: int, frame: object) -> None:
        nonlocal terminated
        if terminated:
            raise SystemExit(128 + signal.SIGTERM)
        terminated = True

    def stop_if_asked() -> None:
        if terminated:
            log.warning("stopped by SIGTERM: the data being built is not kept")
            raise SystemExit(128 + signal.SIGTERM)
        if pressed:
            raise KeyboardInterrupt

    if take_int:
        signal.signal(signal.SIGINT, on_ctrl_c)
    if take_term:
        signal.signal(signal.SIGTERM, on_sigterm)
    try:
        for chunk in chunks:
            stop_if_asked()
            yield chunk
        stop_if_asked()
    finally:
        if take_int:
            signal.signal(signal.SIGINT, signal.default_int_handler)
        if take_term:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
