"""A local HTTP server for download tests: real sockets, no traffic beyond 127.0.0.1.

Each route serves fixed bytes and can misbehave on purpose: another status code, a
``Content-Length`` larger than the body followed by a closed connection (a truncated
transfer), a delay before answering (a stalled server), or the connection held open
after the body (a transfer that stalls midway), or the body trickled a byte at a time.
A route may name its version (``ETag``, ``Last-Modified``), answer ``Range`` requests as a
real server does (206, or 416 past the end; the whole file when ``If-Range`` no longer
matches), and cut the connection after some bytes of the body (a dropped transfer).
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
    etag: str | None = None
    last_modified: str | None = None
    ranges: bool = False  # answer "Range: bytes=N-" requests
    cut_after: int | None = None  # close the connection after this many bytes of the body


class LocalServer:
    """Serves ``routes`` on 127.0.0.1 from a thread and counts the requests per path."""

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.hits: dict[str, int] = {}
        self.ranges_asked: list[tuple[str | None, str | None]] = []  # (Range, If-Range)
        self.closing = threading.Event()  # ends every held connection at shutdown
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.hits[self.path] = server.hits.get(self.path, 0) + 1
                route = server.routes.get(self.path, Route(b"not found", status=404))
                asked = self.headers.get("Range"), self.headers.get("If-Range")
                server.ranges_asked.append(asked)
                time.sleep(route.delay_s)
                status, body, extra = route.status, route.body, {}
                start = _range_start(route, *asked)
                if start is not None and start >= len(body):
                    status, body, extra = 416, b"", {"Content-Range": f"bytes */{len(body)}"}
                elif start is not None:
                    extra = {"Content-Range": f"bytes {start}-{len(body) - 1}/{len(body)}"}
                    status, body = 206, body[start:]
                length = len(body) if route.content_length is None else route.content_length
                self.send_response(status)
                self.send_header("Content-Length", str(length))
                if route.location is not None:
                    self.send_header("Location", route.location)
                for name, value in (("ETag", route.etag), ("Last-Modified", route.last_modified)):
                    if value is not None:
                        self.send_header(name, value)
                for name, value in extra.items():
                    self.send_header(name, value)
                self.end_headers()
                if route.cut_after is not None:
                    body = body[: route.cut_after]
                # The client may give up first (the timeout test).
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    step = 1 if route.trickle_s else max(1, len(body))
                    for start in range(0, len(body), step):
                        self.wfile.write(body[start : start + step])
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


def _range_start(route: Route, range_: str | None, if_range: str | None) -> int | None:
    """Where a ranged answer starts, or None for the whole file: no ranges here, none asked,
    or an ``If-Range`` that names another version (RFC 9110: then the whole file)."""
    if not route.ranges or range_ is None or not range_.startswith("bytes="):
        return None
    if if_range is not None and if_range not in (route.etag, route.last_modified):
        return None
    first, _, last = range_[len("bytes=") :].partition("-")
    return int(first) if first.isdigit() and not last else None


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
