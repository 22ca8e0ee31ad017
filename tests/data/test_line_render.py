from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from text_recognizer.data.line_render import (
    HEIGHT,
    LineRenderer,
    OutlineGlyphs,
    TextureBank,
    draw_trajectory,
    jitter_glyph,
    render_outline,
    scan,
)
from text_recognizer.data.sources.fonts import Font, list_fonts
from text_recognizer.data.sources.strokes import HandStyle, list_faces, load_face, write_line
from text_recognizer.errors import DataError


@pytest.fixture(scope="module")
def textures() -> TextureBank:
    return TextureBank(0, tiles=2, shape=(64, 512))


@pytest.fixture(scope="module")
def font() -> Font:
    return next(f for f in list_fonts("train") if not f.capitals_only and not f.missing)


def test_texture_bank_is_deterministic_and_crops_any_size(textures: TextureBank) -> None:
    again = TextureBank(0, tiles=2, shape=(64, 512))
    np.testing.assert_array_equal(textures.paper, again.paper)
    assert not np.array_equal(textures.paper, TextureBank(1, tiles=2, shape=(64, 512)).paper)
    rng = np.random.default_rng(0)
    assert textures.crop(textures.grain, rng, 32, 100).shape == (32, 100)
    assert textures.crop(textures.pressure, rng, 100, 2000).shape == (100, 2000)  # tiled


def test_draw_trajectory_puts_ink_where_the_pen_went(textures: TextureBank) -> None:
    face = load_face("HersheySans1")
    style = dataclasses.replace(HandStyle.sample(np.random.default_rng(0)), slant=0.0)
    rng = np.random.default_rng(0)
    mask = draw_trajectory(write_line(face, "l l", style, rng), rng, textures)
    assert mask.dtype == np.uint8
    inked_columns = np.flatnonzero(mask.max(axis=0) > 128)
    assert len(inked_columns) > 0
    # Two vertical strokes with a space between: two separate runs of inked columns.
    assert (np.diff(inked_columns) > 1).sum() == 1


def test_scan_gives_32px_bright_ink_on_dark(textures: TextureBank) -> None:
    mask = np.zeros((70, 400), np.uint8)
    mask[10:12, 10:12] = mask[58:60, 388:390] = 255  # corners of the ink's box: 50 x 380
    mask[30:40, 100:300] = 255  # a bar of ink in the middle
    for seed in range(5):
        image = scan(mask, np.random.default_rng(seed), textures)
        assert image.dtype == np.uint8 and image.shape[0] == HEIGHT
        assert 380 * 32 / 56 <= image.shape[1] <= 1.05 * 380 * 32 / 50  # aspect kept, small margins
        bar, paper = image[14:18, 70:170], image[3:9, 70:170]  # rows 30-40 and ~15-25 of the mask
        assert bar.mean() > paper.mean() + 60  # bright ink on dark paper


def test_outline_rendering_is_deterministic(font: Font) -> None:
    glyphs = OutlineGlyphs(str(font.path))
    a = render_outline(glyphs, "Quick brown fox", np.random.default_rng(5))
    b = render_outline(glyphs, "Quick brown fox", np.random.default_rng(5))
    c = render_outline(glyphs, "Quick brown fox", np.random.default_rng(6))
    np.testing.assert_array_equal(a, b)
    assert a.shape != c.shape or not np.array_equal(a, c)
    assert (a > 128).sum() > 100


def test_jitter_glyph_keeps_the_glyph_at_the_pen_on_the_baseline() -> None:
    mask = np.zeros((20, 10), np.uint8)
    mask[:, 4:6] = 255  # an "l": a bar from 20 px above the baseline down to it
    left, top = 3, -20
    same, same_left, same_top = jitter_glyph(mask, left, top, (1.0, 1.0), 0.0, 0.0)
    np.testing.assert_array_equal(same, mask)
    assert (same_left, same_top) == (left, top)
    tall, tall_left, tall_top = jitter_glyph(mask, left, top, (1.0, 1.5), 0.0, 0.0)
    rows = np.flatnonzero(tall.max(axis=1) > 128)
    assert tall_top == -30 and tall_left == left  # grown upwards from the baseline
    assert tall_top + rows[-1] + 1 == 0 and len(rows) == 30  # its foot still on the baseline
    leaning, lean_left, _ = jitter_glyph(mask, left, top, (1.0, 1.0), 0.0, 0.3)
    top_ink = np.flatnonzero(leaning[0] > 128) + lean_left
    foot_ink = np.flatnonzero(leaning[-1] > 128) + lean_left
    assert top_ink.mean() > foot_ink.mean() + 4  # leans right, like a positive slant
    assert abs(foot_ink.mean() - (left + 4.5)) < 1.0  # the foot stays where it was


def test_glyph_jitter_is_deterministic_and_zero_leaves_the_lines_as_they_were(font: Font) -> None:
    glyphs = OutlineGlyphs(str(font.path))

    def draw(jitter: float) -> np.ndarray:
        return render_outline(glyphs, "ooooo", np.random.default_rng(5), jitter)

    plain = render_outline(glyphs, "ooooo", np.random.default_rng(5))
    np.testing.assert_array_equal(plain, draw(0.0))
    a = draw(2.0)
    np.testing.assert_array_equal(a, draw(2.0))
    assert a.shape != plain.shape or not np.array_equal(a, plain)
    with pytest.raises(DataError, match="glyph_jitter"):
        LineRenderer([font], [], glyph_jitter=-1.0)


@pytest.mark.parametrize("stroke_fraction", [0.0, 1.0])
def test_renderer_is_deterministic_per_seed(font: Font, stroke_fraction: float) -> None:
    renderer = LineRenderer([font], list_faces("train"), stroke_fraction=stroke_fraction)
    first = renderer.render("A line, of text!", np.random.default_rng(1))
    again = renderer.render("A line, of text!", np.random.default_rng(1))
    np.testing.assert_array_equal(first.image, again.image)
    assert first.image.shape[0] == HEIGHT and first.text == "A line, of text!"
    stroke_names = {f.name for f in list_faces("train")}
    assert (first.source in stroke_names) == (stroke_fraction == 1.0)


def test_capitals_only_fonts_get_upper_case_labels(font: Font) -> None:
    capitals = dataclasses.replace(font, name="shouty", capitals_only=True)
    line = LineRenderer([capitals], []).render("Mixed case, 42.", np.random.default_rng(0))
    assert line.text == "MIXED CASE, 42." and line.source == "shouty"


def test_capitals_share_fixes_the_all_caps_lines_however_many_fonts(font: Font) -> None:
    capitals = dataclasses.replace(font, name="shouty", capitals_only=True)
    lowercase = [dataclasses.replace(font, name=f"hand{i}") for i in range(9)]
    rng = np.random.default_rng(0)
    alike = LineRenderer([capitals, *lowercase], [], stroke_fraction=0.0)
    fixed = LineRenderer([capitals, *lowercase], [], stroke_fraction=0.0, capitals_share=0.5)
    shares = [
        np.mean([r.render("ab", rng).source == "shouty" for _ in range(400)])
        for r in (alike, fixed)
    ]
    assert shares[0] == pytest.approx(0.1, abs=0.05) and shares[1] == pytest.approx(0.5, abs=0.08)
    with pytest.raises(DataError, match="capitals_share"):
        LineRenderer([font], [], capitals_share=1.5)


def test_joined_share_fixes_the_script_lines_and_leaves_capitals_alone(font: Font) -> None:
    capitals = dataclasses.replace(font, name="shouty", capitals_only=True, joined=False)
    scripts = [dataclasses.replace(font, name=f"script{i}", joined=True) for i in range(2)]
    prints = [dataclasses.replace(font, name=f"print{i}", joined=False) for i in range(7)]
    renderer = LineRenderer(
        [capitals, *scripts, *prints], [], stroke_fraction=0.0, capitals_share=0.2, joined_share=0.5
    )
    rng = np.random.default_rng(0)
    sources = [renderer.render("ab", rng).source for _ in range(600)]
    caps = np.mean([s == "shouty" for s in sources])
    joined = sum(s.startswith("script") for s in sources) / sum(s != "shouty" for s in sources)
    assert caps == pytest.approx(0.2, abs=0.05) and joined == pytest.approx(0.5, abs=0.07)
    with pytest.raises(DataError, match="joined_share"):
        LineRenderer([font], [], joined_share=-0.1)


def test_fonts_missing_a_glyph_are_never_used_for_it(font: Font) -> None:
    lacking = dataclasses.replace(font, name="lacking", missing=frozenset("?"))
    renderer = LineRenderer([lacking, font], [])
    rng = np.random.default_rng(0)
    assert {renderer.render("why?", rng).source for _ in range(20)} == {font.name}
    assert {renderer.render("why", rng).source for _ in range(30)} == {font.name, "lacking"}
    with pytest.raises(DataError, match="no font or stroke face can draw"):
        LineRenderer([lacking], []).render("why?", rng)


def test_stroke_faces_stand_in_when_no_font_can_draw_the_text(font: Font) -> None:
    lacking = dataclasses.replace(font, name="lacking", missing=frozenset("#"))
    renderer = LineRenderer([lacking], list_faces("test"), stroke_fraction=0.0)
    line = renderer.render("No. #1", np.random.default_rng(0))
    assert line.source in {f.name for f in list_faces("test")}


def test_renderer_rejects_bad_configuration(font: Font) -> None:
    with pytest.raises(DataError, match="no fonts and no stroke faces"):
        LineRenderer([], [])
    with pytest.raises(DataError, match="stroke_fraction"):
        LineRenderer([font], [], stroke_fraction=1.5)
