"""What the HTTP service adds to a read, and what its workers give under load.

Starts `text-recognizer serve --workers 1` (the bundled ONNX models, ONNX Runtime on
every core, greedy decoding) on a free loopback port and times, per image, a request over
one keep-alive connection (upload, multipart parsing, the read, JSON) beside
`Recognizer.recognize` on the same bytes in this process, with the same settings.

Then under load: one server per `--workers` setting (each worker's ONNX Runtime given its
share of the cores, as `serve` does), and 1 or `--clients` clients at once, each sending
requests back to back over its own connection. The servers take turns, round by round,
so that none gets the quieter moments of the machine; images/s over all rounds, and each
request's latency (p50, p95) as its client saw it.

    python benchmarks/serving_speed.py [--repeats 20] [--clients 4] [--rounds 5]
    python benchmarks/serving_speed.py --workers 1 --workers 2 --workers 4
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
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

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


def start_server(port: int, *options: str) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "text_recognizer.cli", "serve", "--port", str(port)]
    command += options
    # A file, not a pipe: a pipe nobody reads would stall a chatty server.
    with tempfile.TemporaryFile() as errors:
        server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=errors)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if server.poll() is not None:  # e.g. the `serve` extra is not installed
                errors.seek(0)
                said = errors.read().decode(errors="replace").strip()
                raise SystemExit(f"{' '.join(command)} stopped (exit {server.returncode}):\n{said}")
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
    parser.add_argument("--rounds", type=int, default=5, help="turns of each server, loaded")
    parser.add_argument(
        "--workers", type=int, action="append", help="serve --workers; default: 1 and 2"
    )
    args = parser.parse_args()
    settings = args.workers or [1, 2]
    sets = {
        "line": sorted((SAMPLES_DIR / "lines").glob("*.png")),
        "paragraph": sorted((SAMPLES_DIR / "paragraphs").glob("*.png")),
    }
    print(f"{cpu_note()}")
    overhead(sets, args.repeats)
    # Each sample several times a round: a round of lines is 40 requests, of pages 12.
    loads = {
        "line": [body(path.read_bytes(), "line") for path in sets["line"]] * 5,
        "paragraph": [body(path.read_bytes(), "paragraph") for path in sets["paragraph"]] * 4,
    }
    ports = [free_port() for _ in settings]
    queue = str(args.clients)  # every client's request may wait: no 503 in a benchmark
    servers = [
        start_server(port, "--workers", str(workers), "--queue", queue)
        for port, workers in zip(ports, settings, strict=True)
    ]
    try:
        print(f"\nunder load: {args.rounds} rounds, the servers taking turns; ms: p50 / p95")
        columns = "".join(f" | workers={workers}: images/s, ms" for workers in settings)
        print(f"| images | clients{columns} |")
        print("|---|---|" + "---|" * len(settings))
        for kind, payloads in loads.items():
            for clients in sorted({1, args.clients}):
                for port in ports:  # warm-up: every worker reads once
                    load(port, payloads[: max(settings)], max(settings))
                took = [0.0 for _ in settings]
                latencies: list[list[float]] = [[] for _ in settings]
                for _ in range(args.rounds):
                    for i, port in enumerate(ports):
                        seconds, each = load(port, payloads, clients)
                        took[i] += seconds
                        latencies[i] += each
                cells = "".join(
                    f" | {len(ms) / seconds:.1f}, {percentile(ms, 50):.1f} / "
                    f"{percentile(ms, 95):.1f}"
                    for seconds, ms in zip(took, latencies, strict=True)
                )
                print(f"| {len(payloads)} {kind}s a round | {clients}{cells} |", flush=True)
    finally:
        for server in servers:
            server.send_signal(signal.SIGINT)
        for server in servers:
            server.wait(timeout=15)


def overhead(sets: dict[str, list[Path]], repeats: int) -> None:
    """Prints what a request costs over the call it wraps, one image at a time."""
    recognizer = Recognizer.from_pretrained()
    port = free_port()
    server = start_server(port, "--workers", "1")
    try:
        print(f"one client, one worker: {repeats} rounds over the bundled samples, medians")
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
                repeats,
            )
            label = f"{len(paths)} {kind}s"
            print(f"{label:<22}{api:>14.1f}{http_ms:>10.1f}{http_ms / api:>12.2f}")
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=15)


def load(port: int, payloads: list[bytes], clients: int) -> tuple[float, list[float]]:
    """(seconds until every request was answered, each request's ms) when ``clients``
    send ``payloads`` between them, each over its own keep-alive connection."""
    share = [payloads[i::clients] for i in range(clients)]
    latencies: list[float] = []

    def client(mine: list[bytes]) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        for payload in mine:
            start = time.perf_counter()
            post(connection, payload)
            latencies.append((time.perf_counter() - start) * 1000)
        connection.close()

    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(client, share))
    return time.perf_counter() - start, latencies


def percentile(values: list[float], percent: float) -> float:
    return float(np.percentile(values, percent))


def cpu_note() -> str:
    return f"{os.cpu_count()} cores, server and client on this machine"


if __name__ == "__main__":
    main()
