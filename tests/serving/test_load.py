"""The service under load: workers reading at once, a bounded line of waiting requests,
a wait limit, and clients that leave while they wait. A real uvicorn server (in this
process, on a loopback port) around stand-in recognizers that hold every read until the
test lets them finish, so what is reading, waiting or refused is known at each step."""

from __future__ import annotations

import http.client
import io
import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("fastapi")

import uvicorn

from tests.serving.server import free_port, multipart, start_upload
from text_recognizer.images import MAX_PIXELS, MIN_SIDE, Pages
from text_recognizer.recognizer import Result
from text_recognizer.serving.app import create_app


class Held:
    """Stands in for a Recognizer: records each image it is given, then holds the read
    until ``done`` is set; reads the image's text from its pixels (``as_image``)."""

    def __init__(self, done: threading.Event) -> None:
        self.kinds = ["line"]
        self.max_image_pixels = MAX_PIXELS
        self.done = done
        self.images: list[bytes] = []

    def recognize_pages(self, pages: Pages, kind: str = "auto") -> Iterator[Result]:
        row = pages.load(1)[0]
        text = bytes(row[row > 0].tolist())
        self.images.append(text)
        if not self.done.wait(timeout=30):
            raise RuntimeError("the test never let the read finish")
        yield Result(text=text.decode(), confidence=1.0, kind="line")


def as_image(text: str) -> bytes:
    """A PNG whose rows hold ``text``'s bytes as grey levels: an upload the service opens."""
    row = np.zeros(max(len(text), MIN_SIDE), np.uint8)
    row[: len(text)] = list(text.encode())
    buffer = io.BytesIO()
    Image.fromarray(np.tile(row, (MIN_SIDE, 1))).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture
def done() -> Iterator[threading.Event]:
    done = threading.Event()
    yield done
    done.set()  # a failed test leaves no read held


@contextmanager
def serving(app: Any) -> Iterator[int]:
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run)
    thread.start()
    try:
        until(lambda: server.started)
        yield port
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def until(condition: Callable[[], bool]) -> None:
    """Waits for ``condition`` (what the server does next happens in its own thread)."""
    deadline = time.monotonic() + 20
    while not condition():
        assert time.monotonic() < deadline, "the condition never came true"
        time.sleep(0.01)


def send(port: int, text: str) -> http.client.HTTPConnection:
    """Sends a request to read ``text`` (as an image's bytes); its answer is not read."""
    body, content_type = multipart({"image": as_image(text)})
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    connection.request("POST", "/api/recognize", body, {"Content-Type": content_type})
    return connection


def answer(connection: http.client.HTTPConnection) -> tuple[int, dict[str, str], dict]:
    response = connection.getresponse()
    status, headers, body = response.status, dict(response.headers), json.load(response)
    connection.close()
    return status, headers, body


def get(port: int, path: str) -> str:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    connection.request("GET", path)
    text = connection.getresponse().read().decode()
    connection.close()
    return text


def health(port: int) -> dict:
    return json.loads(get(port, "/api/health"))


def unread(port: int, reason: str) -> float:
    found = re.search(
        rf'text_recognizer_requests_unread_total\{{reason="{reason}"\}} (\S+)',
        get(port, "/metrics"),
    )
    assert found is not None
    return float(found.group(1))


def in_background(connection: http.client.HTTPConnection) -> Future:
    return ThreadPoolExecutor(1).submit(answer, connection)


def test_workers_read_at_once(done: threading.Event) -> None:
    first, second = Held(done), Held(done)
    with serving(create_app([first, second])) as port:
        answers = [in_background(send(port, text)) for text in ("one", "two")]
        # Both reads are under way together: neither waits for the other to finish.
        until(lambda: health(port)["busy"] == 2)
        assert health(port)["waiting"] == 0
        assert len(first.images) == len(second.images) == 1
        done.set()
        texts = {future.result()[2]["text"] for future in answers}
        assert texts == {"one", "two"}
        assert [status for status, *_ in (future.result() for future in answers)] == [200, 200]


def test_an_upload_being_opened_holds_up_no_other_request(
    done: threading.Event, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Opening a PDF waits for PDFium's lock while a worker draws a page: opened on the
    event loop, it held up every other request, health checks included."""
    import text_recognizer.serving.app as app_module

    opened = threading.Event()

    class SlowPages(Pages):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            opened.set()
            if not done.wait(timeout=30):
                raise RuntimeError("the test never let the file open")
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(app_module, "Pages", SlowPages)
    with serving(create_app([Held(done)])) as port:
        reading = in_background(send(port, "read"))
        assert opened.wait(timeout=10)
        # Answered while the upload is still being opened (the wait is the test's bound).
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        connection.request("GET", "/api/health")
        assert json.load(connection.getresponse())["busy"] == 0
        connection.close()
        done.set()
        assert reading.result()[2]["text"] == "read"


def test_a_full_queue_is_answered_503_with_retry_after(done: threading.Event) -> None:
    held = Held(done)
    with serving(create_app([held], queue=1)) as port:
        reading = in_background(send(port, "read"))
        until(lambda: health(port)["busy"] == 1)
        waiting = in_background(send(port, "waits"))
        until(lambda: health(port)["waiting"] == 1)
        status, headers, body = answer(send(port, "refused"))
        assert status == 503
        assert int(headers["retry-after"]) >= 1
        assert body["detail"].startswith(
            "the service is busy: every worker is reading and 1 request waits already; "
            "try again in "
        )
        assert unread(port, "queue_full") == 1
        limits = {"kinds": None, "max_upload_bytes": None, "max_image_pixels": None}
        assert health(port) | limits == {
            "status": "ok",
            **limits,
            "workers": 1,
            "busy": 1,
            "queue": 1,
            "waiting": 1,
            "uploading": 0,
        }
        done.set()
        assert reading.result()[:1] == waiting.result()[:1] == (200,)
    assert held.images == [b"read", b"waits"]  # the refused request was never read


def test_a_request_that_waits_too_long_is_answered_503(done: threading.Event) -> None:
    held = Held(done)
    with serving(create_app([held], queue=4, max_wait=0.2)) as port:
        reading = in_background(send(port, "read"))
        until(lambda: health(port)["busy"] == 1)
        status, headers, body = answer(send(port, "waits"))  # the read is held meanwhile
        assert status == 503
        assert int(headers["retry-after"]) >= 1
        assert body["detail"].startswith("the service is busy: no worker was free within 0.2 s")
        assert unread(port, "waited_too_long") == 1
        assert health(port)["waiting"] == 0
        done.set()
        assert reading.result()[0] == 200
    assert held.images == [b"read"]


def test_a_client_that_leaves_while_it_waits_is_not_read(done: threading.Event) -> None:
    held = Held(done)
    with serving(create_app([held])) as port:
        reading = in_background(send(port, "read"))
        until(lambda: health(port)["busy"] == 1)
        leaving = send(port, "left")
        until(lambda: health(port)["waiting"] == 1)
        leaving.close()
        # It leaves the line at once, before the worker is free.
        until(lambda: unread(port, "client_gone") == 1)
        assert health(port)["waiting"] == 0
        done.set()
        assert reading.result()[0] == 200
        assert health(port)["busy"] == 0
    assert held.images == [b"read"]


def test_an_upload_that_stalls_gives_up_its_place(done: threading.Event) -> None:
    """An upload from which nothing more arrives (its client gone without closing the
    connection) held its place for ever: as many as the workers and the queue take, and
    every other request was refused. After max_wait seconds of nothing it gets 408."""
    held = Held(done)
    with serving(create_app([held], queue=0, max_wait=1.0)) as port:
        stalled = start_upload(f"127.0.0.1:{port}", 1000, b"--x\r\n")  # and nothing more
        until(lambda: health(port)["uploading"] == 1)
        status, headers, body = answer(stalled)
        assert status == 408 and headers["connection"] == "close"
        assert body["detail"] == "the upload stalled: nothing of it arrived for 1 s; send it again"
        assert health(port)["uploading"] == 0
        assert unread(port, "upload_stalled") == 1
        done.set()
        assert answer(send(port, "read"))[0] == 200  # its place is free again
    assert held.images == [b"read"]


def test_an_upload_that_trickles_gives_up_its_place(done: threading.Event) -> None:
    """A byte now and then, each within max_wait of the last, held the place for ever:
    under 1 KB a second over a whole max_wait window, the upload gets 408."""
    held = Held(done)
    with serving(create_app([held], queue=0, max_wait=1.0)) as port:
        trickle = start_upload(f"127.0.0.1:{port}", 1000, b"--x\r\n")
        until(lambda: health(port)["uploading"] == 1)
        for _ in range(8):  # 4 s at a byte every 0.5 s: no pause reaches max_wait
            time.sleep(0.5)
            try:
                trickle.send(b"-")
            except OSError:  # answered and closed already
                break
        status, headers, body = answer(trickle)
        assert status == 408 and headers["connection"] == "close"
        assert body["detail"].startswith("the upload is too slow: ")
        assert "(at least 1 KB a second is needed); send it again" in body["detail"]
        assert health(port)["uploading"] == 0
        assert unread(port, "upload_stalled") == 1
        done.set()
        assert answer(send(port, "read"))[0] == 200  # its place is free again
    assert held.images == [b"read"]


def test_upload_timeout_alone_bounds_a_stalled_upload(done: threading.Event) -> None:
    """``upload_timeout`` (``serve --upload-timeout``) bounds the stall window on its own:
    a stalled upload gets 408 after it, long before a ``max_wait`` of 30 s."""
    held = Held(done)
    with serving(create_app([held], queue=0, max_wait=30, upload_timeout=0.5)) as port:
        start = time.monotonic()
        stalled = start_upload(f"127.0.0.1:{port}", 1000, b"--x\r\n")  # and nothing more
        status, _, body = answer(stalled)
        assert status == 408 and time.monotonic() - start < 10
        assert body["detail"] == (
            "the upload stalled: nothing of it arrived for 0.5 s; send it again"
        )
        assert unread(port, "upload_stalled") == 1
        done.set()
        assert answer(send(port, "read"))[0] == 200  # its place is free again
    assert held.images == [b"read"]


def test_max_wait_no_longer_bounds_an_upload(done: threading.Event) -> None:
    """A short ``max_wait`` (a free worker at once, or 503) gave a slow client's upload as
    short a stall window: its pauses of 0.6 s, over a max_wait of 0.3 s, got 408. With
    ``upload_timeout`` of its own the upload arrives and is read, and the wait for a
    worker is still bounded by ``max_wait``."""
    held = Held(done)
    with serving(create_app([held], queue=4, max_wait=0.3, upload_timeout=10)) as port:
        body, content_type = multipart({"image": as_image("slow")})
        drip = start_upload(f"127.0.0.1:{port}", len(body), body[:10], content_type)
        pieces = [body[i : i + 40] for i in range(10, len(body), 40)]
        for piece in pieces[:4]:
            time.sleep(0.6)  # each pause longer than max_wait
            drip.send(piece)
        drip.send(b"".join(pieces[4:]))
        reading = in_background(drip)
        until(lambda: health(port)["busy"] == 1)  # read, and held there
        status, _, refused = answer(send(port, "waits"))
        assert status == 503
        assert refused["detail"].startswith("the service is busy: no worker was free within 0.3 s")
        done.set()
        assert reading.result()[:1] == (200,)
        assert unread(port, "upload_stalled") == 0
    assert held.images == [b"slow"]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"recognizers": []}, "at least one Recognizer"),
        ({"queue": -1}, "queue must be 0 or more"),
        ({"max_wait": 0}, "max_wait over 0"),
        ({"upload_timeout": 0}, "upload_timeout must be over 0"),
    ],
)
def test_create_app_refuses_a_pool_that_cannot_serve(options: dict, message: str) -> None:
    arguments = {"recognizers": [Held(threading.Event())], **options}
    with pytest.raises(ValueError, match=message):
        create_app(**arguments)


def test_a_client_that_leaves_mid_upload_gives_up_its_place_at_once(
    done: threading.Event,
) -> None:
    """A client that sent part of its body and closed its connection was counted nowhere
    (only one leaving while it waited was ``client_gone``)."""
    held = Held(done)
    with serving(create_app([held], queue=0, max_wait=30)) as port:
        cut = start_upload(f"127.0.0.1:{port}", 1000, b"--x\r\n")  # and then it leaves
        until(lambda: health(port)["uploading"] == 1)
        cut.close()
        until(lambda: unread(port, "client_gone") == 1)  # long before max_wait's 30 s
        assert health(port)["uploading"] == 0
        done.set()
        assert answer(send(port, "read"))[0] == 200  # its place is free again (queue=0)
    assert held.images == [b"read"]


def test_more_than_forty_workers_all_read_at_once(done: threading.Event) -> None:
    """Reads ran in anyio's default thread pool, of 40 threads: a 41st worker (the default
    on a machine of more than 40 cores) was shown busy while its read silently queued."""
    workers = [Held(done) for _ in range(45)]
    with serving(create_app(workers)) as port, ThreadPoolExecutor(len(workers)) as clients:
        answers = [clients.submit(answer, send(port, f"r{n}")) for n in range(len(workers))]
        try:
            until(lambda: sum(len(worker.images) for worker in workers) == len(workers))
            assert health(port)["waiting"] == 0
        finally:
            done.set()  # before the clients are waited for, whatever happened
        assert {future.result()[0] for future in answers} == {200}


def test_a_post_to_another_path_is_answered_however_full_the_service(
    done: threading.Event,
) -> None:
    """Only a reading takes a place: a POST to /metrics or a mistyped path got 503 (and was
    counted as queue_full) instead of its 405 or 404 while the service was full."""
    held = Held(done)
    with serving(create_app([held], queue=0)) as port:
        reading = in_background(send(port, "read"))
        until(lambda: health(port)["busy"] == 1)
        for path, status in (("/metrics", 405), ("/api/recognise", 404)):
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            connection.request("POST", path, b"x", {"Content-Type": "text/plain"})
            assert connection.getresponse().status == status, path
            connection.close()
        assert unread(port, "queue_full") == 0
        done.set()
        assert reading.result()[0] == 200


def test_retry_after_counts_the_time_a_long_read_under_way_has_run(
    done: threading.Event,
) -> None:
    """It came from recent reads alone: behind a 30-page TIFF read for seconds, a client
    was told to try again in 1 s."""
    held = Held(done)
    app = create_app([held], queue=0)
    with serving(app) as port:
        reading = in_background(send(port, "read"))
        until(lambda: health(port)["busy"] == 1)
        time.sleep(2.2)  # the mean of recent reads is 0: none has finished yet
        status, headers, _ = answer(send(port, "refused"))
        assert status == 503
        assert int(headers["retry-after"]) >= 3  # as long again as it has run, and one read
        done.set()
        assert reading.result()[0] == 200
