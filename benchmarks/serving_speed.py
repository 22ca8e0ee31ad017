"""What the HTTP service adds to a read: `POST /api/recognize` against the Python API.

Starts `text-recognizer serve` (its defaults: the bundled ONNX models, ONNX Runtime on
every core, greedy decoding) on a free loopback port and times, per image, a request over
one keep-alive connection (upload, multipart parsing, the read, JSON) beside
`Recognizer.recognize` on the same bytes in this process, with the same settings. Then
several clients at once: the service reads one image at a time, so they share its
throughput rather than add to it.

    python benchmarks/serving_speed.py [--repeats 20] [--clients 4]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from text_recognizer.paths import SAMPLES_DIR
from text_recognizer.recognizer import Recognizer

BOUNDARY = "serving-speed"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def body(data: bytes, kind: str) -> bytes:
    return (
        (
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="kind"\r\n\r\n{kind}\r\n'
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="image"; filename="x.png"\r\n'
            "Content-Type: image/png\r\n\r\n"
        ).encode()
        + data
        + f"\r\n--{BOUNDARY}--\r\n".encode()
    )


def post(connection: http.client.HTTPConnection, payload: bytes) -> dict:
    connection.request(
        "POST",
        "/api/recognize",
        payload,
        {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"},
    )
    response = connection.getresponse()
    answer = json.loads(response.read())
    if response.status != 200:
        raise RuntimeError(f"{response.status}: {answer}")
    return answer


def start_server(port: int) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "text_recognizer.cli", "serve", "--port", str(port)]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            connection.request("GET", "/api/health")
            connection.getresponse().read()
            return server
        except OSError:
            time.sleep(0.2)
    server.kill()
    raise RuntimeError("the server did not start in 60 s")


def timed_ms(reads: list[tuple[Callable[[Any], object], list]], repeats: int) -> list[float]:
    """Median ms per item of each (read, items); the reads take turns, round by round, so
    that neither gets the quieter moments of the machine."""
    for read, items in reads:  # warm-up
        for item in items:
            read(item)
    times: list[list[float]] = [[] for _ in reads]
    for _ in range(repeats):
        for (read, items), kept in zip(reads, times, strict=True):
            for item in items:
                start = time.perf_counter()
                read(item)
                kept.append((time.perf_counter() - start) * 1000)
    return [statistics.median(kept) for kept in times]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--clients", type=int, default=4)
    args = parser.parse_args()
    sets = {
        "line": sorted((SAMPLES_DIR / "lines").glob("*.png")),
        "paragraph": sorted((SAMPLES_DIR / "paragraphs").glob("*.png")),
    }
    recognizer = Recognizer.from_pretrained()
    port = free_port()
    server = start_server(port)
    try:
        print(f"{cpu_note()}; {args.repeats} rounds over the bundled samples, medians")
        print(f"{'images':<22}{'Python API ms':>14}{'HTTP ms':>10}{'HTTP / API':>12}")
        for kind, paths in sets.items():
            datas = [path.read_bytes() for path in paths]
            payloads = [body(data, kind) for data in datas]
            # A fresh connection: the server closes one left idle for 5 s.
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            for data, payload in zip(datas, payloads, strict=True):
                api_text = recognizer.recognize(data, kind=kind).text  # type: ignore[arg-type]
                if post(connection, payload)["text"] != api_text:
                    raise RuntimeError("the service and the API read an image differently")
            api, http_ms = timed_ms(
                [
                    (lambda d, kind=kind: recognizer.recognize(d, kind=kind), datas),
                    (lambda p, c=connection: post(c, p), payloads),
                ],
                args.repeats,
            )
            label = f"{len(paths)} {kind}s"
            print(f"{label:<22}{api:>14.1f}{http_ms:>10.1f}{http_ms / api:>12.2f}")
        lines = [body(path.read_bytes(), "line") for path in sets["line"]] * args.repeats
        print(f"\n{len(lines)} line requests{'clients':>12}{'requests/s':>12}")
        for clients in (1, args.clients):
            print(f"{'':<22}{clients:>5}{throughput(port, lines, clients):>12.1f}")
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=15)


def throughput(port: int, payloads: list[bytes], clients: int) -> float:
    share = [payloads[i::clients] for i in range(clients)]

    def client(mine: list[bytes]) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        for payload in mine:
            post(connection, payload)

    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(client, share))
    return len(payloads) / (time.perf_counter() - start)


def cpu_note() -> str:
    return f"{os.cpu_count()} cores, server and client on this machine"


if __name__ == "__main__":
    main()
