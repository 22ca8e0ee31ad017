"""The handwriting-style fonts shipped in ``assets/fonts``: what each can draw, and its split.

Every font lives in its own folder with its licence file(s) beside it. ``fonts.json``
records, per font, its licence, where it came from, which split it belongs to, which
charset characters it cannot draw (so nothing ever renders a missing glyph as a box or
a blank), whether it draws lowercase as capitals and whether it joins its letters. The
split matters: val/test fonts are never rendered for training, so validation measures a
hand the model has not seen.

The coverage fields are measured, not typed in: ``python -m text_recognizer.data.sources.fonts``
rescans every font (needs ``fonttools``) and rewrites the manifest, keeping the
hand-curated fields (licence, source, split, excluded).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from text_recognizer.charset import DEFAULT_CHARSET
from text_recognizer.errors import DataError
from text_recognizer.paths import FONTS_DIR

Split = Literal["train", "val", "test"]
SPLITS: tuple[Split, ...] = ("train", "val", "test")
MANIFEST = FONTS_DIR / "fonts.json"
ALLOWED_LICENCES = (
    "OFL-1.0",
    "OFL-1.1",
    "Apache-2.0",
    "GPL-2.0-or-later WITH Font-exception-2.0",
    "GPL-3.0-or-later WITH Font-exception-2.0",
)


@dataclass(frozen=True)
class Font:
    """One shipped font and what it can draw."""

    name: str  # e.g. "caveat"
    path: Path  # the font file
    licence: str  # "OFL-1.1", "Apache-2.0", ...
    missing: frozenset[str]  # charset characters (DEFAULT_CHARSET.characters) with no glyph
    capitals_only: bool  # draws lowercase as capitals: upper-case its labels or skip it
    split: Split  # held-out fonts make val/test measure an unseen hand
    joined: bool = False  # a script that joins its letters (see ``pieces_per_letter``)


@cache
def _load_manifest() -> tuple[Font, ...]:
    try:
        entries = json.loads(MANIFEST.read_text())["fonts"]
    except (OSError, ValueError, KeyError) as error:
        raise DataError(
            f"font manifest {MANIFEST} is missing or corrupt ({error}); reinstall the package "
            "or regenerate it with `python -m text_recognizer.data.sources.fonts`"
        ) from error
    return tuple(
        Font(
            name=entry["name"],
            path=FONTS_DIR / entry["name"] / entry["file"],
            licence=entry["licence"],
            missing=frozenset(entry["missing"]),
            capitals_only=entry["capitals_only"],
            split=entry["split"],
            joined=entry["joined"],
        )
        for entry in entries
        if not entry.get("excluded")
    )


def list_fonts(split: str | None = None) -> list[Font]:
    """The usable fonts (excluded ones left out), sorted by name; one split or all of them."""
    if split is not None and split not in SPLITS:
        raise ValueError(f"unknown font split {split!r}; allowed: {', '.join(SPLITS)} or None")
    return sorted((f for f in _load_manifest() if split in (None, f.split)), key=lambda f: f.name)


def font_supports(font: Font, text: str) -> bool:
    """Whether ``font`` has a real glyph for every character of ``text`` (spaces always pass).

    Characters outside the charset count as unsupported: their coverage was never checked.
    """
    known = set(DEFAULT_CHARSET.characters)
    return all(c == " " or (c in known and c not in font.missing) for c in text)


@cache
def load_font(path: Path, size: int) -> ImageFont.FreeTypeFont:
    """A cached Pillow font object (loading a font file costs a few milliseconds)."""
    return ImageFont.truetype(str(path), size)


# --- manifest generation (run once when fonts change; needs fonttools) -------------------

SCAN_SIZE = 64
# A font that draws lowercase as capitals (the BecauseWe* family, Humor Sans, Rock Salt,
# Permanent Marker...) gives its lowercase no ascenders and no descenders: 'b' is as tall
# as 'a' and 'g' sits on the baseline. That is a sharper test than comparing shapes,
# because hand-drawn "lowercase capitals" are often a second, different drawing.
X_HEIGHT_LETTERS = "acemnorsuvwxz"
ASCENDER_LETTERS = "bdhkl"
DESCENDER_LETTERS = "gpqy"
MIN_ASCENDER_RATIO = 1.15  # ascender height / x-height; real lowercase: 1.25 to 3
MIN_DESCENDER_RATIO = 0.35  # descender depth / x-height; real lowercase: 0.4 to 2
# Joined scripts draw a word in few pieces of ink, print in about one per letter (dots of
# i and j aside). Measured on the shipped fonts: scripts 0.2-0.55, print 0.65-1.8.
JOINED_WORDS = ("minimum", "handwriting", "quickly", "summer", "another")
MAX_JOINED_PIECES = 0.6


def _render_glyph(font: ImageFont.FreeTypeFont, char: str) -> np.ndarray:
    """Bright-ink bitmap of one character, cropped to its ink (empty array if no ink)."""
    left, top, right, bottom = font.getbbox(char)
    width, height = max(1, int(right - left) + 8), max(1, int(bottom - top) + 8)
    image = Image.new("L", (width, height), 0)
    ImageDraw.Draw(image).text((4 - left, 4 - top), char, fill=255, font=font)
    bitmap = np.asarray(image)
    rows, cols = np.nonzero(bitmap > 64)
    if rows.size == 0:
        return np.zeros((0, 0), dtype=np.uint8)
    return bitmap[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]


def case_metrics(font: ImageFont.FreeTypeFont) -> tuple[float, float]:
    """(ascender height, descender depth), both relative to the x-height, from glyph boxes."""

    def median(values: list[float]) -> float:
        return float(np.median(values))

    boxes = {
        c: font.getbbox(c, anchor="ls")
        for c in X_HEIGHT_LETTERS + ASCENDER_LETTERS + DESCENDER_LETTERS
    }  # (left, top, right, bottom), y down from the baseline
    x_height = max(1e-6, median([-boxes[c][1] for c in X_HEIGHT_LETTERS]))
    ascender = median([-boxes[c][1] for c in ASCENDER_LETTERS])
    descender = median([boxes[c][3] for c in DESCENDER_LETTERS])
    return ascender / x_height, descender / x_height


def pieces_per_letter(font: ImageFont.FreeTypeFont) -> float:
    """Separate pieces of ink per letter over a few lowercase words (specks ignored)."""
    pieces = letters = 0
    for word in JOINED_WORDS:
        left, top, right, bottom = font.getbbox(word)
        image = Image.new("L", (int(right - left) + 16, int(bottom - top) + 16), 0)
        ImageDraw.Draw(image).text((8 - left, 8 - top), word, fill=255, font=font)
        ink = (np.asarray(image) > 127).astype(np.uint8)
        _, _, stats, _ = cv2.connectedComponentsWithStats(ink, connectivity=8)
        areas = stats[1:, cv2.CC_STAT_AREA]
        if areas.size:  # a dot or a speck is far smaller than the typical piece
            pieces += int((areas > 0.15 * np.median(areas)).sum())
        letters += len(word)
    return pieces / letters


def _looks_like_box(bitmap: np.ndarray) -> bool:
    """A hollow rectangle: the .notdef "tofu" some fonts draw for characters they lack."""
    if min(bitmap.shape) < 6:
        return False
    ink = bitmap > 64
    edge = max(1, min(bitmap.shape) // 6)
    inside = ink[edge:-edge, edge:-edge]
    rows_full = ink[[0, -1]].mean() > 0.8
    cols_full = ink[:, [0, -1]].mean() > 0.8
    return bool(rows_full and cols_full and inside.mean() < 0.05)


def scan_font(path: Path) -> dict[str, Any]:
    """Measure one font: ``missing`` charset characters and whether it is ``capitals_only``.

    A character is missing when the font's cmap lacks it, maps it to ``.notdef``, its glyph
    has no ink, or it renders exactly like ``.notdef``, like a hollow box, or exactly like
    two or more other characters (a placeholder drawn in place of real glyphs).
    ``capitals_only`` comes from :func:`case_metrics`, ``joined`` from
    :func:`pieces_per_letter`.
    """
    from fontTools.ttLib import TTFont

    tt = TTFont(str(path), lazy=True)
    cmap = tt.getBestCmap() or {}
    font = load_font(path, SCAN_SIZE)
    notdef = _render_glyph(font, "\uffff") if 0xFFFF not in cmap else np.zeros((0, 0), np.uint8)
    missing: set[str] = set()
    bitmaps: dict[str, np.ndarray] = {}
    for char in DEFAULT_CHARSET.characters:
        if char == " ":
            if ord(char) not in cmap:
                missing.add(char)
            continue
        glyph_name = cmap.get(ord(char))
        if glyph_name is None or glyph_name == ".notdef":
            missing.add(char)
            continue
        bitmap = _render_glyph(font, char)
        if (
            bitmap.size == 0
            or _looks_like_box(bitmap)
            or (notdef.size and bitmap.shape == notdef.shape and np.array_equal(bitmap, notdef))
        ):
            missing.add(char)
            continue
        bitmaps[char] = bitmap
    # Three or more characters drawn identically: a placeholder, not real glyphs.
    groups: dict[bytes, list[str]] = {}
    for char, bitmap in bitmaps.items():
        groups.setdefault(bitmap.tobytes() + bytes(str(bitmap.shape), "ascii"), []).append(char)
    for chars in groups.values():
        if len(chars) >= 3:
            missing.update(chars)
    ascender, descender = case_metrics(font)
    pieces = pieces_per_letter(font)
    return {
        "missing": "".join(c for c in DEFAULT_CHARSET.characters if c in missing),
        "capitals_only": ascender < MIN_ASCENDER_RATIO and descender < MIN_DESCENDER_RATIO,
        "ascender_ratio": round(ascender, 2),
        "descender_ratio": round(descender, 2),
        "joined": pieces < MAX_JOINED_PIECES,
        "pieces_per_letter": round(pieces, 2),
    }


def write_manifest(fonts_dir: Path = FONTS_DIR) -> list[dict[str, Any]]:
    """Rescan every font in ``fonts_dir`` and rewrite ``fonts.json`` (curated fields kept)."""
    manifest = fonts_dir / "fonts.json"
    old = (
        {e["name"]: e for e in json.loads(manifest.read_text())["fonts"]}
        if manifest.exists()
        else {}
    )
    entries = []
    for folder in sorted(p for p in fonts_dir.iterdir() if p.is_dir()):
        files = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".ttf", ".otf"))
        if len(files) != 1:
            raise DataError(f"{folder} must hold exactly one .ttf/.otf font, found {len(files)}")
        curated = old.get(folder.name, {})
        entry = {
            "name": folder.name,
            "file": files[0].name,
            "licence": curated.get("licence", "UNKNOWN"),
            "licence_files": sorted(p.name for p in folder.glob("*.txt")),
            "source": curated.get("source", ""),
            "split": curated.get("split", "train"),
            **scan_font(files[0]),
        }
        for key in ("excluded", "note"):
            if key in curated:
                entry[key] = curated[key]
        entries.append(entry)
    manifest.write_text(json.dumps({"fonts": entries}, indent=1, ensure_ascii=False) + "\n")
    _load_manifest.cache_clear()
    return entries


if __name__ == "__main__":
    for entry in write_manifest():
        flags = " CAPITALS-ONLY" if entry["capitals_only"] else " joined" if entry["joined"] else ""
        print(f"{entry['name']:28} {entry['split']:5} missing={entry['missing']!r}{flags}")
