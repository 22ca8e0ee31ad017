"""What `text-recognizer serve --workers N` holds in memory, with and without an LM.

Starts the service (the bundled models, one ONNX Runtime thread per worker) on a free
loopback port for each ``--workers`` count, greedy and with ``--beam 10 --lm LM``, has it
read every sample line once (so that every worker has run), and prints the server
process's resident memory (VmRSS) and its peak (VmHWM), from ``/proc`` (Linux only).

Run it from two checkouts in turn (PYTHONPATH=OTHER/src) to compare them on one machine.

    python benchmarks/serving_memory.py [--workers 1 --workers 4] [--lm default]
"""

from __future__ import annotations

import argparse
import json
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from text_recognizer.paths import SAMPLES_DIR

BOUNDARY = "serving-memory"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def post(url: str, data: bytes) -> None:
    body = (
        (
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="image"; filename="x.png"\r\n'
            "Content-Type: image/png\r\n\r\n"
        ).encode()
        + data
        + f"\r\n--{BOUNDARY}--\r\n".encode()
    )
    request = urllib.request.Request(
        f"{url}/api/recognize",
        data=body,
        headers={"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"},
    )
    with urllib.request.urlopen(request, timeout=120) as response:
        json.load(response)


def memory_mb(pid: int) -> tuple[float, float]:
    """The process's resident memory now and at its peak, in MB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.split()
    return int(fields["VmRSS"][0]) / 1024, int(fields["VmHWM"][0]) / 1024


def measure(workers: int, decoding: list[str]) -> tuple[float, float, float]:
    """Seconds to start, and resident memory now and at its peak (MB), once every sample
    line was read."""
    port = free_port()
    command = [sys.executable, "-m", "text_recognizer.cli", "serve", "--port", str(port)]
    command += ["--workers", str(workers), "--threads", "1", *decoding]
    start = time.perf_counter()
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        while True:
            if server.poll() is not None:
                raise SystemExit(f"the server stopped: {' '.join(command)}")
            try:
                with urllib.request.urlopen(f"{url}/api/health", timeout=5):
                    break
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.2)
        started = time.perf_counter() - start
        lines = sorted((SAMPLES_DIR / "lines").glob("*.png"))
        with ThreadPoolExecutor(workers) as clients:  # every worker reads
            list(clients.map(lambda path: post(url, path.read_bytes()), lines * workers))
        return (started, *memory_mb(server.pid))
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, action="append", help="default: 1 and 4")
    parser.add_argument("--lm", default="default", help="the LM of the beam search")
    args = parser.parse_args()
    for workers in args.workers or [1, 4]:
        for decoding in ([], ["--beam", "10", "--lm", args.lm]):
            started, resident, peak = measure(workers, decoding)
            how = " ".join(decoding) or "greedy"
            print(
                f"--workers {workers} {how}: {resident:.0f} MB resident, {peak:.0f} MB at "
                f"peak (started in {started:.1f} s)"
            )


if __name__ == "__main__":
    main()
