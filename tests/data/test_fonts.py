from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from text_recognizer.charset import DEFAULT_CHARSET, EMNIST_CHARACTERS
from text_recognizer.data.sources import fonts as fonts_module
from text_recognizer.data.sources.fonts import (
    ALLOWED_LICENCES,
    MANIFEST,
    Font,
    font_supports,
    list_fonts,
    load_font,
)
from text_recognizer.paths import FONTS_DIR

LICENCE_MARKERS = {"OFL": "Open Font License", "Apache": "Apache License", "GPL": "exception"}


def manifest_entries() -> list[dict[str, object]]:
    return json.loads(MANIFEST.read_text())["fonts"]  # type: ignore[no-any-return]


def by_name(name: str) -> Font:
    return next(f for f in list_fonts() if f.name == name)


def test_every_font_folder_is_in_the_manifest_with_file_and_licence() -> None:
    entries = manifest_entries()
    folders = sorted(p.name for p in FONTS_DIR.iterdir() if p.is_dir())
    assert sorted(str(e["name"]) for e in entries) == folders
    for entry in entries:
        folder = FONTS_DIR / str(entry["name"])
        assert (folder / str(entry["file"])).is_file()
        assert entry["licence"] in ALLOWED_LICENCES, entry["name"]
        licence_files = [folder / str(name) for name in entry["licence_files"]]  # type: ignore[attr-defined]
        assert licence_files and all(p.is_file() for p in licence_files), entry["name"]
        text = " ".join(p.read_text(errors="replace") for p in licence_files)
        marker = next(v for k, v in LICENCE_MARKERS.items() if str(entry["licence"]).startswith(k))
        assert marker.lower() in text.lower(), f"{entry['name']}: licence text lacks {marker!r}"
        assert set(str(entry["missing"])) <= set(DEFAULT_CHARSET.characters)
        assert isinstance(entry["capitals_only"], bool)
        assert entry["split"] in ("train", "val", "test")
        assert str(entry["source"]).strip()


def test_enough_fonts_and_held_out_splits_cover_every_class() -> None:
    assert len(list_fonts()) >= 20
    assert len(list_fonts("train")) + len(list_fonts("val")) + len(list_fonts("test")) == len(
        list_fonts()
    )
    for split in ("val", "test"):
        fonts = list_fonts(split)
        assert 3 <= len(fonts) <= 6
        lowercase_fonts = [f for f in fonts if not f.capitals_only]
        assert len(lowercase_fonts) >= 2
        assert all(font_supports(f, EMNIST_CHARACTERS) for f in fonts)
    with pytest.raises(ValueError, match="unknown font split"):
        list_fonts("validation")


def test_font_supports_uses_the_recorded_gaps() -> None:
    tomson = by_name("tomson-talks")  # draws "tofu" boxes for some punctuation
    assert tomson.capitals_only
    assert {"(", ")", "#"} <= tomson.missing
    assert font_supports(tomson, "HELLO WORLD")
    assert not font_supports(tomson, "HELLO (WORLD)")
    assert not font_supports(by_name("caveat"), "café")  # outside the charset: never checked


def test_known_capitals_only_fonts_are_flagged() -> None:
    flagged = {f.name for f in list_fonts() if f.capitals_only}
    assert {"humor-sans", "because-we-build", "because-we-learn", "tomson-talks"} <= flagged
    assert not {"caveat", "patrick-hand", "kalam", "comic-neue"} & flagged


def test_joined_scripts_are_told_from_print() -> None:
    joined = {f.name for f in list_fonts() if f.joined}
    assert {"dancing-script", "great-vibes", "allura", "homemade-apple"} <= joined
    assert not {"caveat", "patrick-hand", "kalam", "comic-neue", "humor-sans"} & joined


def test_every_recorded_glyph_draws_ink_and_no_box() -> None:
    """What the manifest says a font can draw really is a glyph: not blank, not a box."""
    for font in list_fonts():
        pil_font = load_font(font.path, 40)
        for char in DEFAULT_CHARSET.characters:
            if char == " " or char in font.missing:
                continue
            bitmap = fonts_module._render_glyph(pil_font, char)
            assert bitmap.size > 0 and bitmap.max() > 128, f"{font.name} draws no ink for {char!r}"
            assert not fonts_module._looks_like_box(bitmap), f"{font.name} draws a box for {char!r}"


def test_box_detector() -> None:
    box = np.zeros((30, 20), np.uint8)
    box[[0, -1], :] = 255
    box[:, [0, -1]] = 255
    assert fonts_module._looks_like_box(box)
    letter_o = np.zeros((30, 20), np.uint8)
    letter_o[[0, -1], 4:16] = 255
    letter_o[4:26, [0, -1]] = 255
    assert not fonts_module._looks_like_box(letter_o)


@pytest.mark.parametrize("name", ["tomson-talks", "caveat", "because-we-build", "great-vibes"])
def test_manifest_matches_a_fresh_scan(name: str) -> None:
    pytest.importorskip("fontTools")
    font = by_name(name)
    scanned = fonts_module.scan_font(font.path)
    assert set(scanned["missing"]) == set(font.missing)
    assert scanned["capitals_only"] == font.capitals_only
    assert scanned["joined"] == font.joined


def test_docs_list_every_shipped_font() -> None:
    """docs/datasets/synthetic.md's font table is generated from fonts.json: a font added
    without regenerating it would ship undocumented (licence and source unseen by users)."""
    docs = (Path(__file__).resolve().parents[2] / "docs/datasets/synthetic.md").read_text()
    rows = {row.split(" | ")[0].lstrip("| ") for row in docs.splitlines() if row.startswith("| ")}
    missing = [str(e["name"]) for e in manifest_entries() if str(e["name"]) not in rows]
    assert not missing, f"regenerate the font table in docs/datasets/synthetic.md: {missing}"
