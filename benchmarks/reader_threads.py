"""Readers sharing a machine: how many threads each ONNX Runtime model call should take.

``Recognizer.from_pretrained(threads=N)`` (``recognize/serve --threads N``) sets ONNX
Runtime's threads per model call; 0, the default, takes one per core. Times the bundled
sample lines read one at a time (``recognize``) and 128 at once (``recognize_batch``),
by one reader alone and by ``--readers`` reader processes started together, each with
the same setting, and prints the median per line side by side.

    python benchmarks/reader_threads.py                    # threads 0, 1 and 2; 2 readers
    python benchmarks/reader_threads.py --threads 0 --threads 1 --readers 4
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import statistics
import time

from text_recognizer.labels import read_labels
from text_recognizer.paths import SAMPLES_DIR
from text_recognizer.recognizer import Recognizer

LINES = [row.image for row in read_labels(SAMPLES_DIR / "lines")]


def per_line_ms(threads: int, repeats: int, start: float | None = None) -> tuple[float, float]:
    """(median ms per line read one at a time, ms per line of 128 read at once); with
    ``start`` (a ``time.time()``), waits until then so that readers run together."""
    recognizer = Recognizer.from_pretrained(threads=threads)
    for line in LINES:  # warm-up
        recognizer.recognize(line, kind="line")
    many = (LINES * (128 // len(LINES) + 1))[:128]
    if start is not None:
        time.sleep(max(0.0, start - time.time()))
    alone = []
    for _ in range(repeats):
        for line in LINES:
            began = time.perf_counter()
            recognizer.recognize(line, kind="line")
            alone.append((time.perf_counter() - began) * 1000)
    began = time.perf_counter()
    for _ in range(repeats):
        recognizer.recognize_batch(many, kind="line")
    batched = (time.perf_counter() - began) * 1000 / (repeats * len(many))
    return statistics.median(alone), batched


def together(threads: int, readers: int, repeats: int) -> tuple[float, float]:
    """The readers' medians (their mean) when ``readers`` processes read at once."""
    start = time.time() + 15.0  # after every process has loaded its models
    with mp.get_context("spawn").Pool(readers) as pool:
        results = pool.starmap(per_line_ms, [(threads, repeats, start)] * readers)
    return (
        statistics.mean(alone for alone, _ in results),
        statistics.mean(batched for _, batched in results),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, action="append", help="default: 0, 1 and 2")
    parser.add_argument("--readers", type=int, default=2, help="processes reading at once")
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    settings = args.threads or [0, 1, 2]
    print(f"{mp.cpu_count()} cores; ms per line (one at a time / 128 at once)")
    print(f"| threads | one reader | {args.readers} readers at once, each |")
    print("|---|---|---|")
    for threads in settings:
        alone = per_line_ms(threads, args.repeats)
        shared = together(threads, args.readers, args.repeats)
        print(
            f"| {threads} | {alone[0]:.2f} / {alone[1]:.2f} | {shared[0]:.2f} / {shared[1]:.2f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
