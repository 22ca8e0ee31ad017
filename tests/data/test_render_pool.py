import os
import signal
import threading
from collections.abc import Callable, Iterator

import pytest

from text_recognizer.data import render_pool as render_pool_module
from text_recognizer.data.render_pool import interruptible, pool_results, render_pool
from text_recognizer.errors import DataError

STARTED: list[int] = []


def _mark_started() -> None:
    STARTED.append(os.getpid())


def _worker_state(_: int) -> tuple[object, bool, list[int]]:
    blocked = signal.SIGINT in signal.pthread_sigmask(signal.SIG_BLOCK, set())
    return signal.getsignal(signal.SIGINT), blocked, STARTED


def _die_on_three(task: int) -> int:
    if task == 3:
        os.kill(os.getpid(), signal.SIGKILL)  # as the out-of-memory killer ends a worker
    return task


def test_a_worker_that_dies_fails_the_build_instead_of_waiting_for_ever() -> None:
    """Pool replaces a dead worker and loses its task: imap waited for ever."""
    outcome: list[object] = []

    def build() -> None:
        with render_pool(2, _mark_started) as pool:
            try:
                outcome.extend(pool_results(pool, _die_on_three, range(6)))
            except DataError as error:
                outcome.append(error)

    thread = threading.Thread(target=build, daemon=True)
    thread.start()
    thread.join(timeout=30)
    assert not thread.is_alive(), "the build waited for the lost chunk"
    error = outcome[-1]
    assert isinstance(error, DataError)
    assert "was killed by SIGKILL" in str(error) and "running out of memory" in str(error)
    assert "nothing was cached" in str(error)


def test_the_results_come_in_order_when_every_worker_lives() -> None:
    with render_pool(2, _mark_started) as pool:
        assert list(pool_results(pool, abs, [-3, 1, -2, 0])) == [3, 1, 2, 0]


def test_workers_leave_ctrl_c_to_the_main_process_and_its_mask_is_kept() -> None:
    before = signal.pthread_sigmask(signal.SIG_BLOCK, set())
    with render_pool(2, _mark_started) as pool:
        # SIGINT is blocked only while the workers start: a Ctrl-C then waits for the
        # main process, and none is lost or left blocked after.
        assert signal.pthread_sigmask(signal.SIG_BLOCK, set()) == before
        states = pool.map(_worker_state, range(4))
    for handler, blocked, started in states:
        assert handler == signal.SIG_IGN  # a worker's own KeyboardInterrupt printed a traceback
        assert not blocked
        assert len(started) == 1  # its initializer ran, once


def test_a_ctrl_c_as_a_worker_starts_waits_for_the_main_process(
    monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    """The race the blocking closes: a Ctrl-C between a worker's birth and its SIG_IGN
    killed it with a traceback (and the pool started another, for ever)."""
    start = render_pool_module._start_worker

    def interrupted_at_birth(initializer: Callable[[], None]) -> None:
        os.kill(os.getpid(), signal.SIGINT)  # as if Ctrl-C came now
        start(initializer)

    monkeypatch.setattr(render_pool_module, "_start_worker", interrupted_at_birth)
    with render_pool(2, _mark_started) as pool:
        states = pool.map_async(_worker_state, range(4)).get(timeout=20)
    assert all(handler == signal.SIG_IGN for handler, _, _ in states)
    assert "KeyboardInterrupt" not in capfd.readouterr().err


def test_ctrl_c_stops_the_chunks_as_the_next_arrives_and_python_s_handling_comes_back() -> None:
    taken, landed = [], []

    def chunks() -> Iterator[int]:
        for chunk in range(5):
            if chunk == 2:
                try:  # where it lands (in Python's own code, it could be swallowed)
                    os.kill(os.getpid(), signal.SIGINT)
                except KeyboardInterrupt:
                    landed.append(chunk)
            yield chunk

    with pytest.raises(KeyboardInterrupt):
        for chunk in interruptible(chunks()):
            taken.append(chunk)
    assert taken == [0, 1]  # chunk 2 was made as Ctrl-C came, and not handed on
    assert landed == []
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_second_ctrl_c_stops_at_once() -> None:
    def chunks() -> Iterator[int]:
        os.kill(os.getpid(), signal.SIGINT)
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
        yield 0

    with pytest.raises(KeyboardInterrupt):
        list(interruptible(chunks()))
