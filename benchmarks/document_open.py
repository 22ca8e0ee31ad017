"""How often `text-recognizer recognize` opens a file, and what reading a 20-page TIFF or
PDF costs it.

Builds a TIFF and a PDF of ``--pages`` A4 pages at 200 dpi (two sample lines on each,
as ``tests/pages.py`` composes them) and a PNG of one, then for each:

- how many times reading it as ``recognize`` does opens and parses it (Pillow's open of
  the file, or PDFium's), counted by wrapping both;
- the time to open it once (``Pages``: the header and every page's size), the most a
  second open can cost;
- the time to convert and check one of its pages again as ``load_image`` does (what
  ``Recognizer.recognize_pages`` did to every page ``Pages.load`` had read already);
- the time ``recognize`` takes to read it (``--batch 1``), best of ``--repeats``, on the
  bundled models.

Run it from two checkouts in turn (PYTHONPATH=OTHER/src) to compare them on one machine.

    python benchmarks/document_open.py [--pages 20] [--repeats 3]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.pages: the page builders
sys.path.insert(0, str(Path(__file__).parent))

from document_limits import best_of
from tests.pages import compose_page, multipage_tiff

import text_recognizer.images as images
from text_recognizer.cli import _read_in_batches
from text_recognizer.images import Pages, load_image
from text_recognizer.recognizer import Recognizer

#: An A4 page scanned at 200 dpi, in pixels (height, width).
A4 = (2339, 1654)


def count_opens() -> Counter[str]:
    """Every open of a file from now on (Pillow's or PDFium's), by the file's name."""
    opened: Counter[str] = Counter()
    open_image, open_pdf = images._open, images._Pdf.__init__

    def counted_open(file: Any, prefix: str, *args: Any) -> Image.Image:
        opened[str(file)] += 1
        return open_image(file, prefix, *args)

    def counted_pdf(self: Any, file: Any, prefix: str, *args: Any) -> None:
        opened[str(file)] += 1
        open_pdf(self, file, prefix, *args)

    images._open = counted_open  # type: ignore[assignment]
    images._Pdf.__init__ = counted_pdf  # type: ignore[method-assign]
    return opened


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)

    pages = []
    for i in range(args.pages):  # an A4 page at 200 dpi (3.9 million pixels), two lines on it
        page = np.full(A4, 255, np.uint8)
        lines = compose_page([i % 8, (i + 3) % 8])[0]
        page[200 : 200 + lines.shape[0], 150 : 150 + lines.shape[1]] = lines
        pages.append(page)
    with tempfile.TemporaryDirectory() as temporary:  # each run once left its files in /tmp
        read_all(pages, Path(temporary), args.repeats)


def read_all(pages: list[np.ndarray], folder: Path, repeats: int) -> None:
    """Write the pages as a TIFF, a PDF and a PNG in ``folder``, and time reading each."""
    tiff = folder / "scan.tif"
    tiff.write_bytes(multipage_tiff(pages, compression="tiff_deflate"))
    pdf = folder / "scan.pdf"
    pil = [Image.fromarray(page) for page in pages]
    pil[0].save(pdf, format="PDF", save_all=True, append_images=pil[1:], resolution=200)
    png = folder / "page.png"
    pil[0].save(png)

    recognizer = Recognizer.from_pretrained()
    opened = count_opens()
    for path in (tiff, pdf, png):

        def read(path: Path = path) -> None:
            for reading in _read_in_batches(recognizer, [path], "auto", 1):
                assert not isinstance(reading.outcome, Exception), reading.outcome

        opened.clear()
        read()
        times = opened[str(path)]

        def open_once(path: Path = path) -> None:
            with Pages(path) as document:
                len(document)

        opening = best_of(20, open_once)
        with Pages(path) as document:
            page = document.load(1)
        again = best_of(20, lambda page=page: load_image(page))
        seconds = best_of(repeats, read)
        size = path.stat().st_size / 1e6
        with Pages(path) as document:
            count = len(document)
        print(
            f"{path.name} ({count} pages, {size:.1f} MB): opened {times}x, "
            f"one open {opening * 1000:.2f} ms, a page converted again "
            f"{again * 1000:.1f} ms, read in {seconds:.2f} s"
        )


if __name__ == "__main__":
    main()
