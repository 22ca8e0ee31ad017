"""``text-recognizer serve`` as a user runs it: a real uvicorn process on a loopback port."""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from typer.testing import CliRunner

pytest.importorskip("fastapi")

from tests.serving.server import free_port, post_image, running_server, start_upload
from text_recognizer.cli import app
from text_recognizer.labels import read_labels
from text_recognizer.metrics import cer
from text_recognizer.paths import SAMPLES_DIR

runner = CliRunner()


def test_serve_reads_the_sample_lines_over_http() -> None:
    samples = read_labels(SAMPLES_DIR / "lines")
    with running_server("--workers", "2", "--queue", "4") as server:
        with urllib.request.urlopen(f"{server.url}/api/health") as response:
            health = json.load(response)
        assert (health["workers"], health["queue"]) == (2, 4)
        readings, truths = [], []
        for sample in samples:
            status, body = post_image(server.url, sample.image.read_bytes())
            assert status == 200, body
            assert body["kind"] == "line"
            readings.append(body["text"])
            truths.append(sample.text)
        with urllib.request.urlopen(f"{server.url}/metrics") as response:
            metrics = response.read().decode()
        for path in ("/", "/api/health", "/metrics"):  # uptime monitors probe with HEAD
            head = urllib.request.Request(f"{server.url}{path}", method="HEAD")
            with urllib.request.urlopen(head) as response:
                assert (response.status, response.read()) == (200, b""), path
    assert cer(readings, truths) < 0.1  # `make demo` reads these at 0.051
    assert f'images_total{{kind="line",outcome="ok"}} {len(samples)}.0' in metrics
    output = server.process.communicate()[0]
    assert f"serving on {server.url}/ (2 workers" in output  # by default on loopback only
    assert server.process.returncode == 0  # Ctrl+C stops it cleanly


def test_an_endless_chunked_upload_is_cut_off() -> None:
    with running_server("--max-upload-mb", "1") as server:
        connection = start_upload(urlsplit(server.url).netloc, None)
        chunk = b"\0" * 65_536
        sent = 0
        try:
            while sent < 200 * 2**20:  # 200 MB if nobody stops it
                connection.send(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                sent += len(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass
        response = connection.getresponse()
        assert response.status == 413
        assert "larger than 1 MB" in json.loads(response.read())["detail"]
        assert sent < 50 * 2**20
        post_image(server.url, b"junk")  # and it still serves
        with urllib.request.urlopen(f"{server.url}/metrics") as metrics:
            assert "uploads_too_large_total 1.0" in metrics.read().decode()


def test_slow_uploads_count_against_the_queue_from_their_first_byte() -> None:
    """Requests whose uploads were still arriving were not counted: any number of slow
    uploads, each held in memory, got past ``--queue``. With 1 worker and a queue of 1,
    two uploads in progress fill the service: the next request is refused at once."""
    from tests.serving.server import multipart

    line = (SAMPLES_DIR / "lines" / "line_00.png").read_bytes()
    body, content_type = multipart({"image": line})
    with running_server("--workers", "1", "--queue", "1") as server:
        slow = []
        for _ in range(2):
            netloc = urlsplit(server.url).netloc
            connection = start_upload(netloc, len(body), body[:1000], content_type)  # rest later
            slow.append(connection)
        deadline = time.monotonic() + 20
        while health(server.url)["uploading"] < 2:
            assert time.monotonic() < deadline, "the uploads were never taken in"
            time.sleep(0.05)
        status, answer = post_image(server.url, line)
        assert status == 503
        assert answer["detail"].startswith(
            "the service is busy: 2 requests are being sent, waiting or read already, the "
            "most it takes at once (2 still being sent); try again in "
        )
        limits = {"kinds": None, "max_upload_bytes": None, "max_image_pixels": None}
        assert health(server.url) | limits == {
            "status": "ok",
            **limits,
            "workers": 1,
            "busy": 0,
            "queue": 1,
            "waiting": 0,
            "uploading": 2,
        }
        for connection in slow:  # the uploads finish: both are read
            connection.send(body[1000:])
        for connection in slow:
            response = connection.getresponse()
            assert response.status == 200
            assert json.loads(response.read())["kind"] == "line"
            connection.close()
        assert post_image(server.url, line)[0] == 200
        with urllib.request.urlopen(f"{server.url}/metrics") as response:
            assert 'requests_unread_total{reason="queue_full"} 1.0' in response.read().decode()


def test_a_refused_upload_is_answered_before_it_is_sent_whole() -> None:
    """503 as soon as the request's headers arrive: its body is never read."""
    with running_server("--workers", "1", "--queue", "0") as server:
        netloc = urlsplit(server.url).netloc
        first = start_upload(netloc, 1000, b"--x\r\n")
        deadline = time.monotonic() + 20
        while health(server.url)["uploading"] < 1:
            assert time.monotonic() < deadline, "the upload was never taken in"
            time.sleep(0.05)
        refused = start_upload(netloc, 5_000_000)  # and none of the body
        response = refused.getresponse()
        assert response.status == 503 and int(response.headers["Retry-After"]) >= 1
        assert response.headers["Connection"] == "close"
        assert json.loads(response.read())["detail"].startswith(
            "the service is busy: 1 request is being sent, waiting or read already"
        )
        refused.close()
        first.close()


def test_ctrl_c_says_that_it_waits_for_the_requests_under_way() -> None:
    """Ctrl+C waits for the requests under way (an upload up to --upload-timeout seconds,
    30 by default), and said nothing meanwhile: it seemed not to work. A second Ctrl+C stops it
    at once, and without a traceback for each request it cancels."""
    import queue
    import signal
    import threading

    with running_server("--workers", "1") as server:
        upload = start_upload(urlsplit(server.url).netloc, 1000, b"--x\r\n")  # and no more
        deadline = time.monotonic() + 20
        while health(server.url)["uploading"] < 1:
            assert time.monotonic() < deadline, "the upload was never taken in"
            time.sleep(0.05)
        said: queue.Queue[str] = queue.Queue()
        assert server.process.stdout is not None
        stdout = server.process.stdout

        def listen() -> None:
            for line in stdout:
                said.put(line)

        threading.Thread(target=listen, daemon=True).start()
        server.process.send_signal(signal.SIGINT)
        lines = [said.get(timeout=10)]
        while "Waiting for connections to close" not in lines[-1]:
            lines.append(said.get(timeout=10))  # queue.Empty: nothing said
        assert "(CTRL+C to force quit)" in lines[-1]
        server.process.send_signal(signal.SIGINT)
        server.process.wait(timeout=10)
        upload.close()
        time.sleep(0.2)  # the reader's last lines
        while not said.empty():
            lines.append(said.get())
        assert "Traceback" not in "".join(lines), "".join(lines)


def health(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{url}/api/health", timeout=10) as response:
        return dict(json.load(response))


def test_serve_warns_when_it_listens_beyond_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    import uvicorn

    calls = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: calls.append(options))
    result = runner.invoke(app, ["serve", "--host", "0.0.0.0", "--port", "8123"])
    assert result.exit_code == 0, result.output
    assert "other machines can reach this service" in result.output
    assert calls[0]["host"] == "0.0.0.0" and calls[0]["port"] == 8123
    result = runner.invoke(app, ["serve", "--port", str(free_port())])
    assert "other machines" not in result.output
    assert calls[1]["host"] == "127.0.0.1"


def test_serve_without_the_serving_extra_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import importlib.util

    find_spec = importlib.util.find_spec
    lacking = {"uvicorn", "python_multipart"}
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name: None if name in lacking else find_spec(name)
    )
    result = runner.invoke(app, ["serve"])
    assert result.exit_code == 1
    # The packages pip installs, not the modules they give (python_multipart).
    assert "needs uvicorn, python-multipart: pip install 'text-recognizer[serve]'" in result.output


def test_serve_with_a_wrong_model_name_fails_before_listening() -> None:
    result = runner.invoke(app, ["serve", "--model", "nope"])
    assert result.exit_code == 1
    assert "'default', 'char', 'line'" in result.output


def test_serve_on_a_port_in_use_or_an_unknown_host_fails_before_loading_models(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = runner.invoke(app, ["serve", "--port", str(port)])
    assert result.exit_code == 1
    assert "Address already in use; choose another --port" in result.output
    assert "serving on" not in result.output

    def unknown(host: str, *args: object, **kwargs: object) -> None:  # no DNS query is sent
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", unknown)
    result = runner.invoke(app, ["serve", "--host", "no-such-host.invalid"])
    assert result.exit_code == 1 and "cannot listen on no-such-host.invalid" in result.output
    assert "other machines" not in result.output


@pytest.mark.parametrize(
    "options",
    [
        ["--workers", "0"],
        ["--workers", "two"],
        ["--queue", "-1"],
        ["--max-wait", "0"],
        ["--upload-timeout", "0"],
        ["--max-image-megapixels", "0"],
    ],
    ids=lambda options: " ".join(options),
)
def test_serve_refuses_bad_pool_options_before_loading_models(
    options: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import text_recognizer.cli as cli

    monkeypatch.setattr(cli, "open_recognizer", lambda *args: pytest.fail("models loaded"))
    result = runner.invoke(app, ["serve", *options], env={"COLUMNS": "200"})
    assert result.exit_code == 2
    # Click's words after it (the bound, or "not a valid integer") vary with its version.
    assert f"Invalid value for '{options[0]}'" in result.output


@pytest.mark.parametrize(
    ("options", "workers", "threads"),
    [
        ([], 4, 1),  # one worker per core, one thread each
        (["--workers", "2"], 2, 2),  # the 4 cores shared out
        (["--workers", "3"], 3, 1),
        (["--workers", "2", "--threads", "3"], 2, 3),  # as asked
        (["--workers", "1"], 1, 0),  # ONNX Runtime's own choice: every core
    ],
)
def test_serve_gives_each_worker_its_share_of_the_cores(
    options: list[str], workers: int, threads: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    import uvicorn
    from fastapi.testclient import TestClient

    import text_recognizer.cli as cli
    from text_recognizer.recognizer import Recognizer

    recognizer = Recognizer.from_pretrained(threads=1)
    asked: list[int] = []

    def open_recognizer(*args: object) -> Recognizer:
        asked.append(args[6])  # type: ignore[arg-type]  # threads
        return recognizer

    served = []
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3}, raising=False)
    monkeypatch.setattr(cli, "open_recognizer", open_recognizer)
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: served.append(app))
    arguments = ["serve", "--port", str(free_port()), *options]
    result = runner.invoke(app, arguments, env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert asked == [threads] * workers
    said = {0: "ONNX Runtime on every core", 1: "1 ONNX Runtime thread each"}  # not "threads"
    assert said.get(threads, f"{threads} ONNX Runtime threads each") in result.output
    assert TestClient(served[0]).get("/api/health").json()["workers"] == workers


def test_serve_bounds_the_pages_and_pixels_of_a_request(monkeypatch: pytest.MonkeyPatch) -> None:
    import numpy as np
    import uvicorn
    from fastapi.testclient import TestClient

    from tests.pages import raw_tiff

    apps = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: apps.append(app))
    arguments = ["serve", "--port", str(free_port()), "--max-pages", "2"]
    result = runner.invoke(app, [*arguments, "--max-megapixels", "0.01"])
    assert result.exit_code == 0, result.output
    tiny, small = np.full((8, 8), 255, np.uint8), np.full((80, 80), 255, np.uint8)
    with TestClient(apps[0]) as client:
        for pages, refusal in (
            ([tiny] * 3, "holds more than 2 pages"),
            ([small] * 2, "hold 12,800 pixels, more than the 10,000"),
        ):
            files = {"image": ("scan.tif", raw_tiff(pages))}
            response = client.post("/api/recognize", files=files)
            assert response.status_code == 422 and refusal in response.json()["detail"]


def test_serve_loads_its_lm_once_for_all_its_workers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each worker loaded the LM again (~15 MB each for the default LM); one is shared."""
    import uvicorn

    import text_recognizer.serving.app as app_module
    from text_recognizer.decoding import CharNgramLm

    texts = ["the cat sat on the mat", "the dog ate the cake"] * 5
    lm_file = CharNgramLm.build(texts, order=4, path=tmp_path / "chars.arpa").path
    pools: list[list[Any]] = []
    create_app = app_module.create_app

    def created(recognizers: list[Any], **options: Any) -> Any:
        pools.append(recognizers)
        return create_app(recognizers, **options)

    monkeypatch.setattr(app_module, "create_app", created)
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: None)
    arguments = ["serve", "--port", str(free_port()), "--workers", "3", "--model", "line"]
    result = runner.invoke(app, [*arguments, "--beam", "5", "--lm", str(lm_file)])
    assert result.exit_code == 0, result.output
    (workers,) = pools
    assert len(workers) == 3 and workers[0] is not workers[1]
    assert workers[0].lm is not None and workers[0].lm.path == lm_file
    assert all(worker.lm is workers[0].lm for worker in workers)


def test_serve_upload_timeout_and_max_image_megapixels(monkeypatch: pytest.MonkeyPatch) -> None:
    """--upload-timeout bounds a stalled upload apart from --max-wait (which bounded both),
    over a real socket; --max-image-megapixels is the most an image may hold, told by
    /api/health; a file's pages together may not be held to less."""
    import uvicorn
    from fastapi.testclient import TestClient

    from tests.serving.test_load import answer, serving

    apps = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: apps.append(app))
    options = ["--upload-timeout", "0.5", "--max-wait", "30", "--max-image-megapixels", "0.05"]
    result = runner.invoke(app, ["serve", "--port", str(free_port()), *options])
    assert result.exit_code == 0, result.output
    with serving(apps[0]) as port:
        start = time.monotonic()
        status, _, body = answer(start_upload(f"127.0.0.1:{port}", 1000, b"--x\r\n"))
        assert status == 408 and time.monotonic() - start < 10
        assert body["detail"].startswith("the upload stalled: nothing of it arrived for 0.5 s")
    with TestClient(apps[0]) as client:
        assert client.get("/api/health").json()["max_image_pixels"] == 50_000
    result = runner.invoke(app, ["serve", "--max-image-megapixels", "70", "--max-megapixels", "50"])
    assert result.exit_code == 1
    assert "--max-megapixels 50 (a file's pages together) is less than " in result.output
    assert len(apps) == 1
