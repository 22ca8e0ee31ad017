"""Pages made of the bundled sample lines: paragraphs whose every line and text is known."""

from __future__ import annotations

import io
import struct
from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np
from PIL import Image

from text_recognizer.paths import SAMPLES_DIR
from text_recognizer.preprocessing import rotate

SAMPLES = SAMPLES_DIR / "lines"
TRUTHS = dict(line.split("\t") for line in (SAMPLES / "labels.tsv").read_text().splitlines())
SAMPLE_NAMES = sorted(TRUTHS)


def paper_white(sample: np.ndarray) -> np.ndarray:
    """A dark-ink line with its paper raised to 255, so pasting it leaves no box edge."""
    paper = float(np.median(sample))
    return np.clip(255 - (paper - sample.astype(np.float32)) * 255 / paper, 0, 255).astype(np.uint8)


def sample_line(index: int, scale: float = 1.0) -> np.ndarray:
    line = paper_white(np.asarray(Image.open(SAMPLES / SAMPLE_NAMES[index]).convert("L")))
    if scale == 1.0:
        return line
    return cv2.resize(line, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)


def compose_page(
    indices: list[int], pitch: float = 40, scale: float = 2.0, tilt: float = 0.0
) -> tuple[np.ndarray, list[str]]:
    """Sample lines ``pitch`` (sample) pixels apart on white paper, drawn ``scale`` times
    larger and turned ``tilt`` degrees: uint8 dark ink on white, and the lines' texts."""
    lines = [sample_line(i, scale) for i in indices]
    height, width = lines[0].shape[0], max(line.shape[1] for line in lines)
    page = np.full((round(pitch * scale * len(lines)) + 2 * height, width + 80), 255, np.uint8)
    for row, line in enumerate(lines):
        top = height // 2 + round(row * pitch * scale)
        window = page[top : top + line.shape[0], 40 : 40 + line.shape[1]]
        np.minimum(window, line, out=window)  # overlapping lines: ink over ink
    if tilt:
        page = 255 - rotate(255 - page, tilt).astype(np.uint8)
    return page, [TRUTHS[SAMPLE_NAMES[i]] for i in indices]


def draw_rules(
    image: np.ndarray, rows: list[int], level: int = 150, thickness: int = 2
) -> np.ndarray:
    """Ruled paper: grey lines ``thickness`` rows thick across the image at ``rows``."""
    out = image.copy()
    for row in rows:
        band = out[row : row + thickness]
        np.minimum(band, level, out=band)
    return out


def on_margin(line: np.ndarray, margin: int = 15) -> np.ndarray:
    """A line on white paper with ``margin`` pixels around it, room for rules above and below."""
    page = np.full((line.shape[0] + 2 * margin, line.shape[1] + 20), 255, np.uint8)
    page[margin : margin + line.shape[0], 10 : 10 + line.shape[1]] = line
    return page


def lit(image: np.ndarray, light: str) -> np.ndarray:
    """``image`` photographed in uneven light: ``gradient`` dims it to half across its
    width, ``shadow`` darkens a patch right of centre by 45 %; ``even`` leaves it."""
    height, width = image.shape
    x, y = np.linspace(0, 1, width)[None], np.linspace(0, 1, height)[:, None]
    field = {
        "even": np.ones_like(x),
        "gradient": 1.0 - 0.5 * x,
        "shadow": 1.0 - 0.45 * np.exp(-(((x - 0.6) / 0.15) ** 2 + ((y - 0.5) / 0.4) ** 2)),
    }[light]
    return np.clip(image.astype(np.float32) * field, 0, 255).astype(np.uint8)


def multipage_tiff(pages: Sequence[np.ndarray], mode: str = "L", **options: Any) -> bytes:
    """uint8 grey pages as one multi-page TIFF of ``mode`` (``"1"``: black and white, as
    faxes are), as Pillow writes it; ``options`` are its ``save`` options, such as
    ``compression="group4"`` (a fax's) or ``tiffinfo``."""
    images = [Image.fromarray(page).convert(mode) for page in pages]
    out = io.BytesIO()
    images[0].save(out, format="TIFF", save_all=True, append_images=images[1:], **options)
    return out.getvalue()


def dcx(pages: Sequence[np.ndarray], mode: str = "L") -> bytes:
    """uint8 grey pages as a DCX, a fax's multi-page file (Pillow reads it, writes none):
    its signature, the offsets of its pages (ended by 0), then each page as a PCX."""
    pcx = []
    for page in pages:
        out = io.BytesIO()
        Image.fromarray(page).convert(mode).save(out, format="PCX")
        pcx.append(out.getvalue())
    offsets = [4 + 4 * (len(pcx) + 1)]
    for data in pcx[:-1]:
        offsets.append(offsets[-1] + len(data))
    return struct.pack(f"<{len(pcx) + 2}I", 0x3ADE68B1, *offsets, 0) + b"".join(pcx)


# TIFF tags of a plain uint8 grey page: width, height, bits per sample, photometric
# interpretation (0 is white: a scanner's min-is-white), strip offset and strip size.
_WIDTH, _HEIGHT, _BITS, _PHOTOMETRIC, _STRIP, _STRIP_SIZE = 256, 257, 258, 262, 273, 279
NEW_SUBFILE_TYPE = 254  # 1: a reduced-resolution copy of another image (a thumbnail)


def raw_tiff(pages: Sequence[np.ndarray], subfile_types: Sequence[int] = ()) -> bytes:
    """uint8 grey pages as a TIFF written tag by tag, for what Pillow does not write: a
    ``NewSubfileType`` per page (0 where not given), and files of thousands of pages made
    at once (the same array given again is stored once: 10,000 8x8 pages in 0.8 MB)."""
    blocks: dict[int, int] = {}  # id(page) -> offset of its pixels
    data = bytearray(b"II*\0\0\0\0\0")
    for page in pages:
        if id(page) not in blocks:
            blocks[id(page)] = len(data)
            data += np.ascontiguousarray(page, np.uint8).tobytes()
            data += b"\0" * (len(data) % 2)  # directories start on a word boundary
    struct.pack_into("<I", data, 4, len(data))
    for index, page in enumerate(pages):
        kind = subfile_types[index] if index < len(subfile_types) else 0
        tags = [(NEW_SUBFILE_TYPE, 4, kind)] if kind else []
        tags += [
            (_WIDTH, 4, page.shape[1]),
            (_HEIGHT, 4, page.shape[0]),
            (_BITS, 3, 8),
            (_PHOTOMETRIC, 3, 1),
            (_STRIP, 4, blocks[id(page)]),
            (_STRIP_SIZE, 4, page.size),
        ]
        data += struct.pack("<H", len(tags))
        for tag, kind_of_value, value in tags:
            data += struct.pack("<HHI", tag, kind_of_value, 1)
            data += struct.pack("<H2x" if kind_of_value == 3 else "<I", value)
        following = len(data) + 4 if index + 1 < len(pages) else 0
        data += struct.pack("<I", following)
    return bytes(data)
