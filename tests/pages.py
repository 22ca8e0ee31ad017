"""Pages made of the bundled sample lines: paragraphs whose every line and text is known."""

from __future__ import annotations

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
