"""What a multi-page TIFF costs, and what the caps on one spare the service.

A TIFF's pages are directories of a few dozen bytes each, so a small file can hold many
pages: 10,000 of 8x8 pixels make 0.8 MB, and 9 blank pages of 25 million pixels each
fit, fax-compressed (CCITT group 4), in 20 kB. This times, on the bundled models:

- refusing those two files as the service does (``Pages`` with its default caps: 50
  pages, 200 million pixels), before any page is decoded;
- counting the 10,000 pages without a cap (every directory read), and reading
  ``--tiny-pages`` of them without a cap (each decoded and refused as too small);
- ``Recognizer.recognize_document`` on a TIFF of ``--pages`` pages of sample lines against
  ``recognize`` on each page alone, from the same arrays: what reading them as one file adds.

    python benchmarks/document_limits.py [--tiny-pages 1000] [--pages 8] [--repeats 3]
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.pages: the page builders

from tests.pages import compose_page, multipage_tiff, raw_tiff

from text_recognizer.errors import ImageError
from text_recognizer.images import Pages
from text_recognizer.recognizer import Recognizer
from text_recognizer.serving.app import MAX_DOCUMENT_PIXELS, MAX_PAGES


def best_of(repeats: int, work: Callable[[], object]) -> float:
    """The fastest of ``repeats`` runs, in seconds (the others were disturbed)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return min(times)


def refused(data: bytes) -> str:
    try:
        Pages(data, max_pages=MAX_PAGES, max_pixels=MAX_DOCUMENT_PIXELS).close()
    except ImageError as error:
        return str(error)
    raise SystemExit("the file was not refused")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tiny-pages", type=int, default=1000)
    parser.add_argument("--pages", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    tiny = np.full((8, 8), 255, np.uint8)
    many = raw_tiff([tiny] * 10_000)
    blank = Image.new("1", (5000, 5000), 1)
    out = io.BytesIO()
    blank.save(out, format="TIFF", save_all=True, append_images=[blank] * 8, compression="group4")
    huge = out.getvalue()
    for name, data in (("10,000 pages of 8x8", many), ("9 blank pages of 5000x5000", huge)):
        seconds = best_of(args.repeats, lambda data=data: refused(data))
        print(f"{name} ({len(data) / 1e6:.2f} MB): refused in {seconds * 1000:.1f} ms")
        print(f"  {refused(data)}")
    seconds = best_of(args.repeats, lambda: len(Pages(many)))
    print(f"10,000 pages counted without a cap: {seconds:.2f} s")

    recognizer = Recognizer.from_pretrained()
    some = raw_tiff([tiny] * args.tiny_pages)
    seconds = best_of(1, lambda: list(recognizer.recognize_pages(some)))
    print(f"{args.tiny_pages} pages of 8x8 read without a cap: {seconds:.2f} s")

    pages = [compose_page([i % 8, (i + 3) % 8])[0] for i in range(args.pages)]
    document = multipage_tiff(pages, compression="tiff_deflate")
    as_file, alone = [], []
    for _ in range(args.repeats):  # interleaved: a busy spell slows both alike
        as_file.append(best_of(1, lambda: recognizer.recognize_document(document)))
        alone.append(best_of(1, lambda: [recognizer.recognize(page) for page in pages]))

    def decode() -> None:
        with Pages(document) as read:
            [read.load(number) for number in range(1, len(read) + 1)]

    decoding = best_of(args.repeats, decode)
    print(
        f"{args.pages} pages of 2 sample lines (best of {args.repeats}): recognize_document "
        f"{min(as_file):.3f} s, recognize on each page {min(alone):.3f} s "
        f"(ratio {min(as_file) / min(alone):.2f}); decoding the pages {decoding * 1000:.1f} ms"
    )


if __name__ == "__main__":
    main()
