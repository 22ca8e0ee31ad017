"""Images as scanners and cameras give them: the bundled sample characters, lines and
pages read after each change a real scan or photo brings, against their labels.

Each ``--condition`` changes every sample the same way (its size, blur, JPEG, noise,
light, paper colour, file format, tilt, frame, margins, polarity...) and reads it with
``Recognizer.from_pretrained`` as each kind that fits (``char`` and ``auto`` for the
characters, ``line`` and ``auto`` for the lines, ``paragraph`` and ``auto`` for the pages);
the CER per set and kind is printed, an image that cannot be read counting as read empty
(its count in brackets). Compare each row with "as given": what loses many points there
is a condition the reader does not cope with.

    python benchmarks/image_conditions.py
    python benchmarks/image_conditions.py --set lines --condition "scale 2 bilinear"
"""

from __future__ import annotations

import argparse
import io
import json
from collections.abc import Callable
from typing import Any

import cv2
import numpy as np
from PIL import Image

from text_recognizer.errors import ImageError
from text_recognizer.images import load_image
from text_recognizer.metrics import cer
from text_recognizer.paths import SAMPLES_DIR
from text_recognizer.recognizer import Recognizer

Sample = tuple[np.ndarray, str]


def _samples(folder: str) -> list[Sample]:
    root = SAMPLES_DIR / folder
    if folder == "paragraphs":
        rows = [json.loads(row) for row in (root / "labels.jsonl").read_text().splitlines()]
        return [(load_image(root / r["image"]), r["text"]) for r in rows]
    pairs = [row.split("\t", 1) for row in (root / "labels.tsv").read_text().splitlines()]
    return [(load_image(root / name), text) for name, text in pairs]


def _paper(grey: np.ndarray) -> int:
    return int(np.median(grey))


def _edge(grey: np.ndarray) -> int:
    """The level of the image's outer pixels: what lies beyond it (paper, or a desk)."""
    return int(np.median(np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]])))


def _local_paper(grey: np.ndarray) -> np.ndarray:
    """The paper's level at each pixel (a grey closing far wider than a stroke): a photo's
    light is uneven, and ink is only as dark as the paper round it allows."""
    size = max(7, min(grey.shape) // 8) | 1
    closed = cv2.morphologyEx(grey, cv2.MORPH_CLOSE, np.ones((size, size), np.uint8))
    return np.maximum(closed.astype(np.float32), 1.0)


def _darkness(grey: np.ndarray) -> np.ndarray:
    """Each pixel's ink: 0 on paper, 1 for black ink (the share of the paper's light lost)."""
    paper = _local_paper(grey)
    return np.clip((paper - grey.astype(np.float32)) / paper, 0, 1)


def _resize(factor: float, interpolation: int) -> Callable[[np.ndarray], np.ndarray]:
    def apply(grey: np.ndarray) -> np.ndarray:
        size = (max(1, round(grey.shape[1] * factor)), max(1, round(grey.shape[0] * factor)))
        return cv2.resize(grey, size, interpolation=interpolation)

    return apply


def _blur(sigma: float) -> Callable[[np.ndarray], np.ndarray]:
    return lambda grey: cv2.GaussianBlur(grey, (0, 0), sigma)


def _jpeg(quality: int) -> Callable[[np.ndarray], bytes]:
    def apply(grey: np.ndarray) -> bytes:
        out = io.BytesIO()
        Image.fromarray(grey).save(out, "JPEG", quality=quality)
        return out.getvalue()

    return apply


def _noise(sigma: float) -> Callable[[np.ndarray], np.ndarray]:
    def apply(grey: np.ndarray) -> np.ndarray:
        rng = np.random.default_rng(0)
        noisy = grey.astype(np.float32) + rng.normal(0, sigma, grey.shape)
        return np.clip(np.rint(noisy), 0, 255).astype(np.uint8)

    return apply


def _gamma(gamma: float) -> Callable[[np.ndarray], np.ndarray]:
    return lambda grey: np.rint(255 * (grey / 255.0) ** gamma).astype(np.uint8)


def _faint(share: float) -> Callable[[np.ndarray], np.ndarray]:
    """Ink at ``share`` of the paper's brightness (a pencil, a faded pen), paper as it was."""

    def apply(grey: np.ndarray) -> np.ndarray:
        faint = _local_paper(grey) * (1 - (1 - share) * _darkness(grey))
        return np.rint(faint).astype(np.uint8)

    return apply


def _coloured(paper: tuple[int, int, int], ink: tuple[int, int, int]) -> Callable[..., bytes]:
    """RGB: the paper's brightness as ``paper``'s colour, the ink's darkness as ``ink``'s."""

    def apply(grey: np.ndarray) -> bytes:
        darkness = _darkness(grey)[..., None]
        base = (_local_paper(grey) / 255.0)[..., None] * np.array(paper, np.float32)
        rgb = base * (1 - darkness) + np.array(ink, np.float32) * darkness
        return _png(np.clip(np.rint(rgb), 0, 255).astype(np.uint8))

    return apply


def _blue_lined(grey: np.ndarray, text: str) -> bytes:
    """Pale blue rules, one under each line of text (evenly spaced: the page's lines lie
    near them, not on them), and on a page a red margin rule, the ink drawn over them."""
    height, width = grey.shape
    lines = text.count("\n") + 1
    paper = np.full((height, width, 3), 255.0, np.float32)
    pitch = height / (lines + 0.5) if lines > 1 else height
    for i in range(lines):
        y = round((i + 0.85) * pitch)
        paper[max(0, y - 1) : y + 1] = (150, 190, 235)
    if lines > 1:
        paper[:, width // 12 : width // 12 + 2] = (235, 140, 140)
    rgb = paper * (grey[..., None].astype(np.float32) / 255.0)  # ink darkens what is under it
    return _png(np.clip(np.rint(rgb), 0, 255).astype(np.uint8))


def _png(array: np.ndarray, mode: str | None = None) -> bytes:
    out = io.BytesIO()
    (Image.fromarray(array, mode) if mode else Image.fromarray(array)).save(out, "PNG")
    return out.getvalue()


def _transparent(grey: np.ndarray) -> bytes:
    """Black ink on a transparent background (a drawing app's export): alpha is the ink's
    darkness, the colour of every pixel black."""
    rgba = np.zeros((*grey.shape, 4), np.uint8)
    rgba[..., 3] = np.rint(255 * _darkness(grey))
    return _png(rgba)


def _overexposed(grey: np.ndarray) -> np.ndarray:
    """Paper brighter than the median burnt to white (a photo exposed for the shadows)."""
    low, high = np.percentile(grey, [0.5, 50])
    stretched = (grey.astype(np.float32) - low) * 255 / max(high - low, 1)
    return np.clip(stretched, 0, 255).astype(np.uint8)


def _sixteen_bit(grey: np.ndarray) -> bytes:
    return _png(grey.astype(np.uint16) * 257)


def _one_bit(grey: np.ndarray) -> bytes:
    _, binary = cv2.threshold(grey, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    out = io.BytesIO()
    Image.fromarray(binary).convert("1", dither=Image.Dither.NONE).save(out, "PNG")
    return out.getvalue()


def _rotated(degrees: float) -> Callable[[np.ndarray], np.ndarray]:
    def apply(grey: np.ndarray) -> np.ndarray:
        height, width = grey.shape
        matrix = cv2.getRotationMatrix2D((width / 2, height / 2), degrees, 1.0)
        cos, sin = abs(matrix[0, 0]), abs(matrix[0, 1])
        size = (int(height * sin + width * cos) + 1, int(height * cos + width * sin) + 1)
        matrix[:, 2] += (size[0] - width) / 2, (size[1] - height) / 2
        return cv2.warpAffine(grey, matrix, size, flags=cv2.INTER_LINEAR, borderValue=_edge(grey))

    return apply


def _perspective(grey: np.ndarray) -> np.ndarray:
    """A sheet photographed from below its middle: its top edge 8 % narrower than its foot."""
    height, width = grey.shape
    inset = 0.04 * width
    source = np.float32([[0, 0], [width, 0], [width, height], [0, height]])
    target = np.float32([[inset, 0], [width - inset, 0], [width, height], [0, height]])
    matrix = cv2.getPerspectiveTransform(source, target)
    return cv2.warpPerspective(
        grey, matrix, (width, height), flags=cv2.INTER_LINEAR, borderValue=_edge(grey)
    )


def _padded(grey: np.ndarray, top: int, bottom: int, left: int, right: int) -> np.ndarray:
    return cv2.copyMakeBorder(
        grey, top, bottom, left, right, cv2.BORDER_CONSTANT, value=_edge(grey)
    )


def _framed(grey: np.ndarray) -> np.ndarray:
    """The image on a dark desk: a little paper round it, then a dark border, its edge
    soft (a photo's focus, a scan's shadow) across a few % of the image."""
    height, _width = grey.shape
    margin, frame = max(2, height // 10), max(4, height // 6)
    paper = _padded(grey, margin, margin, margin, margin).astype(np.float32)
    sheet = np.zeros((paper.shape[0] + 2 * frame, paper.shape[1] + 2 * frame), np.float32)
    sheet[frame:-frame, frame:-frame] = 1
    sheet = cv2.GaussianBlur(sheet, (0, 0), max(1.0, frame / 8))
    desk = cv2.copyMakeBorder(paper, frame, frame, frame, frame, cv2.BORDER_REPLICATE)
    return np.rint(desk * sheet + 40 * (1 - sheet)).astype(np.uint8)


def _wide_margins(grey: np.ndarray) -> np.ndarray:
    height, width = grey.shape
    return _padded(grey, 3 * height, 3 * height, width // 2, width // 2)


def _tight(grey: np.ndarray, sides: str = "tblr") -> np.ndarray:
    """Cut to the ink's box, no margin, on ``sides`` (top, bottom, left, right)."""
    ink = np.clip(_paper(grey) - grey.astype(np.int16), 0, None)
    rows, cols = np.nonzero(ink > 0.5 * ink.max())
    top = rows.min() if "t" in sides else 0
    bottom = rows.max() + 1 if "b" in sides else grey.shape[0]
    left = cols.min() if "l" in sides else 0
    right = cols.max() + 1 if "r" in sides else grey.shape[1]
    return grey[top:bottom, left:right]


def _photo(grey: np.ndarray) -> bytes:
    """A phone photo of the sheet: 3x the scan's size, a little out of focus, sensor noise
    and the phone's JPEG."""
    big = _resize(3, cv2.INTER_LINEAR)(grey)
    return _jpeg(80)(_noise(4)(_blur(1.5)(big)))


CONDITIONS: dict[str, Callable[..., Any]] = {
    "as given": lambda grey: grey,
    "scale 0.5 area": _resize(0.5, cv2.INTER_AREA),
    "scale 0.5 bilinear": _resize(0.5, cv2.INTER_LINEAR),
    "scale 0.75 area": _resize(0.75, cv2.INTER_AREA),
    "scale 1.5 bilinear": _resize(1.5, cv2.INTER_LINEAR),
    "scale 2 bilinear": _resize(2, cv2.INTER_LINEAR),
    "scale 2 nearest": _resize(2, cv2.INTER_NEAREST),
    "scale 3 bilinear": _resize(3, cv2.INTER_LINEAR),
    "scale 4 bilinear": _resize(4, cv2.INTER_LINEAR),
    "scale 4 nearest": _resize(4, cv2.INTER_NEAREST),
    "blur sigma 1": _blur(1),
    "blur sigma 2": _blur(2),
    "JPEG quality 50": _jpeg(50),
    "JPEG quality 25": _jpeg(25),
    "JPEG quality 10": _jpeg(10),
    "noise sigma 8": _noise(8),
    "noise sigma 20": _noise(20),
    "gamma 0.5": _gamma(0.5),
    "gamma 2": _gamma(2),
    "pencil: ink 60 % of paper": _faint(0.6),
    "pencil: ink 80 % of paper": _faint(0.8),
    "yellow pad, blue ink (RGB)": _coloured((250, 238, 140), (30, 50, 140)),
    "blue-lined paper (RGB)": _blue_lined,
    "transparent PNG (RGBA)": _transparent,
    "overexposed (paper burnt white)": _overexposed,
    "16-bit PNG": _sixteen_bit,
    "1-bit PNG": _one_bit,
    "inverted": lambda grey: 255 - grey,
    "rotated 3 degrees": _rotated(3),
    "rotated -6 degrees": _rotated(-6),
    "perspective": _perspective,
    "dark frame, soft edge": _framed,
    "wide margins": _wide_margins,
    "cut tight": _tight,
    "ink at the top edge": lambda grey: _tight(grey, "t"),
    "ink at the bottom edge": lambda grey: _tight(grey, "b"),
    "phone photo (3x, blur, noise, JPEG)": _photo,
}

NEEDS_TEXT = {_blue_lined}  # it draws a rule under each line the text has
KINDS = {"chars": ("char", "auto"), "lines": ("line", "auto"), "pages": ("paragraph", "auto")}
FOLDERS = {"chars": "chars", "lines": "lines", "pages": "paragraphs"}


def _long_lines(lines: list[Sample], count: int) -> list[Sample]:
    """Lines ``count`` at a time set side by side (a word's space apart): lines as long as
    a landscape page's."""
    out = []
    for start in range(0, len(lines), count):
        group = lines[start : start + count]
        height = max(image.shape[0] for image, _ in group)
        gap = np.full((height, height // 2), _paper(group[0][0]), np.uint8)
        parts = []
        for image, _ in group:
            parts += [_padded(image, 0, height - image.shape[0], 0, 0), gap]
        out.append((np.hstack(parts[:-1]), " ".join(text for _, text in group)))
    return out


def _read(recognizer: Recognizer, images: list[Any], kind: str) -> tuple[list[str], int]:
    texts, failed = [], 0
    for image in images:
        try:
            texts.append(recognizer.recognize(image, kind=kind).text)  # type: ignore[arg-type]
        except ImageError:
            texts.append("")
            failed += 1
    return texts, failed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="default")
    parser.add_argument(
        "--set", choices=sorted(KINDS), action="append", help="default: chars, lines, pages"
    )
    parser.add_argument(
        "--condition",
        choices=sorted(CONDITIONS),
        action="append",
        metavar="NAME",
        # argparse %-formats help: the pencil rows' "%" must be doubled.
        help=f"default: all of {', '.join(repr(c) for c in CONDITIONS)}".replace("%", "%%"),
    )
    args = parser.parse_args()
    sets = args.set or ["chars", "lines", "pages"]
    conditions = args.condition or list(CONDITIONS)
    recognizer = Recognizer.from_pretrained(args.model)
    data = {name: _samples(FOLDERS[name]) for name in sets}
    if "lines" in data:
        conditions_sets = {**data, "lines side by side": _long_lines(data["lines"], 4)}
    else:
        conditions_sets = data
    columns = [(name, kind) for name in conditions_sets for kind in KINDS[name.split()[0]]]
    print("| condition | " + " | ".join(f"{name} ({kind})" for name, kind in columns) + " |")
    print("|---|" + "---:|" * len(columns))
    for condition in conditions:
        change = CONDITIONS[condition]
        cells = []
        for name, kind in columns:
            samples = conditions_sets[name]
            changed = [
                change(image, text) if change in NEEDS_TEXT else change(image)
                for image, text in samples
            ]
            texts, failed = _read(recognizer, changed, kind)
            score = cer(texts, [text for _, text in samples])
            cells.append(f"{score:.3f}" + (f" ({failed})" if failed else ""))
        print(f"| {condition} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
