"""How fast synthetic handwritten lines render, per source, on one process.

The shipped line model must train at >= 150 lines/s on a 2-core machine and the cached
build must render 200k-500k lines in minutes, so the renderer's target is >= 500
lines/s per core. This prints, for stroke faces, outline fonts and the default mix:
lines per second of CPU time (the process's own time; what a dedicated core would do)
and of wall time (lower when the machine is shared), plus mean image width.

    python benchmarks/line_render_speed.py            # 2,000 lines per source
    python benchmarks/line_render_speed.py --lines 500 --split test

CPU time is the fair figure on a shared machine, but contention for caches and memory
bandwidth still slows it somewhat: the 1-minute load average is printed with it.
"""

from __future__ import annotations

import argparse
import os
import time

import cv2
import numpy as np

from text_recognizer.data.synthetic_lines import LineSpec, render_lines


def measure(split: str, stroke_fraction: float, lines: int) -> tuple[float, float, float]:
    """(lines/s of CPU time, lines/s of wall time, mean width) after a warm-up chunk."""
    spec = LineSpec(split, 0, 48, stroke_fraction, sentence_source="default", numbers=0.1)
    list(render_lines(spec, chunk=0, count=200))  # load corpus, faces, glyph caches
    cpu, wall = time.process_time(), time.perf_counter()
    widths = [line.image.shape[1] for line in render_lines(spec, chunk=1, count=lines)]
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return lines / cpu, lines / wall, float(np.mean(widths))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=2000, help="lines per source")
    parser.add_argument("--split", default="train", choices=("train", "val", "test"))
    args = parser.parse_args()
    cv2.setNumThreads(0)  # one core, as in a build worker
    print(
        f"{args.lines} lines per source, split={args.split}, 1 process, "
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    )
    print(f"{'source':28} {'lines/s (CPU)':>14} {'lines/s (wall)':>15} {'mean width':>11}")
    for name, fraction in (
        ("stroke faces", 1.0),
        ("outline fonts", 0.0),
        ("mix (stroke_fraction=0.5)", 0.5),
    ):
        cpu, wall, width = measure(args.split, fraction, args.lines)
        print(f"{name:28} {cpu:14.0f} {wall:15.0f} {width:9.0f} px")


if __name__ == "__main__":
    main()
