"""A real ``text-recognizer serve`` process on a free loopback port, for the tests."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass


@dataclass
class Server:
    url: str
    process: subprocess.Popen[str]


def start_upload(
    netloc: str,
    length: int | None,
    first: bytes = b"",
    content_type: str = "multipart/form-data; boundary=x",
) -> http.client.HTTPConnection:
    """A POST to ``/api/recognize`` whose headers are sent (``Content-Length: length``, or
    chunked where ``length`` is None) and of whose body only ``first`` is: the rest, if
    any, is the test's to send, slowly or never."""
    connection = http.client.HTTPConnection(netloc, timeout=30)
    connection.putrequest("POST", "/api/recognize")
    connection.putheader("Content-Type", content_type)
    if length is None:
        connection.putheader("Transfer-Encoding", "chunked")
    else:
        connection.putheader("Content-Length", str(length))
    connection.endheaders()
    if first:
        connection.send(first)
    return connection


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def running_server(*args: str, timeout: float = 60.0) -> Iterator[Server]:
    """Starts the service, waits until it answers, and stops it with Ctrl+C (SIGINT)."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "text_recognizer.cli", "serve", "--port", str(port), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the server stopped: {process.communicate()[0]}")
            try:
                with urllib.request.urlopen(f"{url}/api/health", timeout=5) as response:
                    json.load(response)
                break
            except (urllib.error.URLError, ConnectionError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        yield Server(url, process)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def multipart(fields: dict[str, bytes | str]) -> tuple[bytes, str]:
    """A multipart/form-data body and its content type (a field given as bytes is a file)."""
    boundary = "text-recognizer-test-boundary"
    parts = []
    for name, value in fields.items():
        if isinstance(value, bytes):
            head = f'Content-Disposition: form-data; name="{name}"; filename="{name}.png"\r\n'
            head += "Content-Type: application/octet-stream\r\n"
            data = value
        else:
            head = f'Content-Disposition: form-data; name="{name}"\r\n'
            data = value.encode()
        parts.append(f"--{boundary}\r\n{head}\r\n".encode() + data + b"\r\n")
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def post_image(url: str, data: bytes, **fields: str) -> tuple[int, dict]:
    body, content_type = multipart({"image": data, **fields})
    request = urllib.request.Request(
        f"{url}/api/recognize", data=body, headers={"Content-Type": content_type}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)
