"""A local HTTP server for download tests: real sockets, no traffic beyond 127.0.0.1.

Each route serves fixed bytes and can misbehave on purpose: another status code, a
``Content-Length`` larger than the body followed by a closed connection (a truncated
transfer), a delay before answering (a stalled server), or the connection held open
after the body (a transfer that stalls midway), or the body trickled a byte at a time.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


@dataclass
class Route:
    body: bytes = b""
    status: int = 200
    content_length: int | None = None  # what the header claims; None -> len(body)
    delay_s: float = 0.0
    hold_s: float = 0.0  # keep the connection open this long after the body
    location: str | None = None  # a Location header, for redirects (status 30x)
    trickle_s: float = 0.0  # send the body a byte at a time, this long apart


class LocalServer:
    """Serves ``routes`` on 127.0.0.1 from a thread and counts the requests per path."""

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.hits: dict[str, int] = {}
        self.closing = threading.Event()  # ends every held connection at shutdown
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.hits[self.path] = server.hits.get(self.path, 0) + 1
                route = server.routes.get(self.path, Route(b"not found", status=404))
                time.sleep(route.delay_s)
                length = len(route.body) if route.content_length is None else route.content_length
                self.send_response(route.status)
                self.send_header("Content-Length", str(length))
                if route.location is not None:
                    self.send_header("Location", route.location)
                self.end_headers()
                # The client may give up first (the timeout test).
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    step = 1 if route.trickle_s else max(1, len(route.body))
                    for start in range(0, len(route.body), step):
                        self.wfile.write(route.body[start : start + step])
                        self.wfile.flush()
                        if route.trickle_s and server.closing.wait(route.trickle_s):
                            break
                server.closing.wait(route.hold_s)
                self.close_connection = True  # so a short body ends the transfer early

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def add(self, path: str, body: bytes, **options: float | int | str) -> str:
        """Serve ``body`` at ``path`` (see ``Route`` for the options); returns its URL."""
        self.routes[path] = Route(body, **options)  # type: ignore[arg-type]
        return self.url(path)

    def __enter__(self) -> LocalServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.closing.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def http_server() -> Iterator[LocalServer]:
    with LocalServer() as server:
        yield server


@pytest.fixture
def refused_url() -> str:
    """A URL on a loopback port where nothing listens (as when offline: connection refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/matlab.zip"
