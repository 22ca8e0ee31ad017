"""The process pool that renders synthetic data, and Ctrl-C during its work.

Ctrl-C reaches every process of the terminal's group. Workers ignore it, so only the main
process stops the build (each worker's own KeyboardInterrupt printed a traceback, and a
pool whose workers died could hang). SIGINT stays blocked while the workers start, so one
that arrives between a worker's birth and its ``SIG_IGN`` waits for the main process.
The main process stops between chunks (:func:`interruptible`): a KeyboardInterrupt raised
wherever the signal lands can land in a weakref callback of the pool's, where Python
prints it as "Exception ignored" and carries on rendering. A worker that dies (the
kernel's out-of-memory killer, a crash in native code) fails the build
(:func:`pool_results`): the pool replaces it but loses its chunk, and would wait for ever.
"""

from __future__ import annotations

import multiprocessing
import signal
import threading
from collections.abc import Callable, Iterable, Iterator
from multiprocessing.pool import Pool
from typing import TypeVar

from text_recognizer.errors import DataError

T = TypeVar("T")
A = TypeVar("A")

CAN_BLOCK = hasattr(signal, "pthread_sigmask")  # not on Windows
WATCH_SECONDS = 1.0  # how often a wait for the next chunk looks at the workers


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


def pool_results(pool: Pool, function: Callable[[A], T], tasks: Iterable[A]) -> Iterator[T]:
    """``pool.imap(function, tasks)``, raising DataError when one of the pool's workers dies.

    The pool would start a new worker and wait for the lost chunk for ever (a build under
    an out-of-memory kill hung without a word)."""
    # Pool keeps its workers in a private list; they live as long as the pool (no
    # maxtasksperchild), so any exit while chunks are awaited is a death.
    workers = list(pool._pool)  # type: ignore[attr-defined]
    results = pool.imap(function, tasks)
    while True:
        try:
            yield results.next(timeout=WATCH_SECONDS)
        except StopIteration:
            return
        except multiprocessing.TimeoutError:
            dead = [worker for worker in workers if worker.exitcode is not None]
            if dead:
                raise DataError(_death_message(dead[0].pid, dead[0].exitcode)) from None


def _death_message(pid: int | None, exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        try:
            how = f"was killed by {signal.Signals(-exitcode).name}"
        except ValueError:
            how = f"was killed by signal {-exitcode}"
    else:
        how = f"exited with code {exitcode}"
    oom = " (SIGKILL is most often the system running out of memory)" if exitcode == -9 else ""
    return (
        f"a render worker (process {pid}) {how} while building the dataset{oom}; nothing "
        "was cached: run again, with fewer build workers if memory is short"
    )


def interruptible(chunks: Iterator[T]) -> Iterator[T]:
    """``chunks``, with a Ctrl-C raising KeyboardInterrupt as the next one arrives (a
    second Ctrl-C at once). Python's own handling is kept where another handler is set,
    or off the main thread (only there can a handler be set)."""
    if (
        threading.current_thread() is not threading.main_thread()
        or signal.getsignal(signal.SIGINT) is not signal.default_int_handler
    ):
        yield from chunks
        return
    pressed = False

    def on_ctrl_c(signum: int, frame: object) -> None:
        nonlocal pressed
        if pressed:
            raise KeyboardInterrupt
        pressed = True

    signal.signal(signal.SIGINT, on_ctrl_c)
    try:
        for chunk in chunks:
            if pressed:
                raise KeyboardInterrupt
            yield chunk
        if pressed:
            raise KeyboardInterrupt
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
