from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import pytest

from text_recognizer.charset import DEFAULT_CHARSET
from text_recognizer.data.line_render import TextureBank, draw_trajectory
from text_recognizer.data.sources import strokes
from text_recognizer.data.sources.strokes import (
    FACES,
    HandStyle,
    _parse_path,
    list_faces,
    load_face,
    write_line,
)
from text_recognizer.errors import DataError


def steady_hand(cursive: bool = False, **changes: float) -> HandStyle:
    """A writer with no randomness, so tests can isolate one effect at a time."""
    style = HandStyle(
        slant=0.0,
        width_scale=1.0,
        letter_spacing=0.05,
        word_spacing=0.5,
        glyph_scale_sd=0.0,
        glyph_rotation_sd=0.0,
        glyph_shift_sd=0.0,
        drift_amplitude=0.0,
        drift_wavelength=8.0,
        tilt=0.0,
        warp_amplitude=0.0,
        warp_wavelength=1.0,
        wobble_amplitude=0.0,
        pen_width=0.08,
        pressure_variation=0.0,
        join_probability=1.0 if cursive else 0.0,
    )
    return dataclasses.replace(style, **changes)


def test_parse_path_reads_lines_curves_closes_and_exponents() -> None:
    paths = _parse_path("M 0 0 L 10 0 L 1e1 1.5e1 M 0 0 C 0 10 10 10 10 0 Z M 5 5")
    assert len(paths) == 2  # a lone moveto draws nothing
    np.testing.assert_allclose(paths[0], [[0, 0], [10, 0], [10, 15]])
    assert len(paths[1]) == 1 + 6 + 1  # start, sampled cubic, closing point
    np.testing.assert_allclose(paths[1][-1], paths[1][0])


def test_every_face_loads_with_a_licence_and_the_whole_charset() -> None:
    characters = set(DEFAULT_CHARSET.characters)
    for stem in FACES:
        face = load_face(stem)
        assert face.licence in ("OFL-1.1", "Hershey (free with acknowledgement)")
        assert characters <= face.supported, f"{face.name} lacks {characters - face.supported}"
        x = face.glyphs["x"].points
        assert -x[:, 1].min() == pytest.approx(strokes.X_HEIGHT, abs=0.02)  # x-height normalised


def test_every_supported_character_is_drawn_with_ink() -> None:
    textures = TextureBank(0, tiles=1, shape=(64, 256))
    rng = np.random.default_rng(0)
    for face in list_faces():
        for char in sorted(face.supported & set(DEFAULT_CHARSET.characters) - {" "}):
            mask = draw_trajectory(write_line(face, char, steady_hand(), rng), rng, textures)
            assert (mask > 128).sum() >= 4, f"{face.name} draws no ink for {char!r}"


def test_unsupported_character_raises_instead_of_drawing_a_box() -> None:
    face = load_face("HersheySans1")
    assert not face.supports("a → b")
    with pytest.raises(DataError, match="cannot write"):
        write_line(face, "a → b", steady_hand(), np.random.default_rng(0))


def test_write_line_is_deterministic_per_generator_state() -> None:
    face = load_face("EMSTech")
    style = HandStyle.sample(np.random.default_rng(3))
    a = write_line(face, "Hello there", style, np.random.default_rng(7))
    b = write_line(face, "Hello there", style, np.random.default_rng(7))
    c = write_line(face, "Hello there", style, np.random.default_rng(8))
    np.testing.assert_array_equal(a.points, b.points)
    assert not np.array_equal(a.points, c.points)


def test_the_same_letter_differs_within_a_line() -> None:
    face = load_face("HersheySans1")
    style = dataclasses.replace(
        steady_hand(), glyph_scale_sd=0.05, glyph_rotation_sd=0.05, warp_amplitude=0.04
    )
    trajectory = write_line(face, "aaaa", style, np.random.default_rng(0))
    glyphs = np.split(trajectory.points, 4)  # one stroke list per 'a', equal lengths
    shapes = [g - g.mean(axis=0) for g in glyphs]
    assert all(np.abs(shapes[0] - other).max() > 0.01 for other in shapes[1:])


def test_cursive_faces_join_letters_with_ligatures() -> None:
    face = load_face("HersheyScript1")
    assert face.cursive
    textures = TextureBank(0, tiles=1, shape=(64, 256))

    def pieces(join_probability: float) -> int:
        rng = np.random.default_rng(0)
        style = steady_hand(cursive=True, letter_spacing=0.12, join_probability=join_probability)
        mask = draw_trajectory(write_line(face, "minimum", style, rng), rng, textures)
        return cv2.connectedComponents((mask > 100).astype(np.uint8))[0] - 1

    assert pieces(1.0) < pieces(0.0)
    assert pieces(1.0) <= 3  # one joined word, plus the i dots


def test_style_sample_stays_in_sane_ranges() -> None:
    rng = np.random.default_rng(0)
    for _ in range(200):
        style = HandStyle.sample(rng, cursive=bool(rng.integers(2)))
        assert -0.25 <= style.slant <= 0.5
        assert 0.0 < style.pen_width < 0.2
        assert 0.0 <= style.join_probability <= 1.0


def test_held_out_faces_are_disjoint_from_train() -> None:
    names = {split: {f.name for f in list_faces(split)} for split in ("train", "val", "test")}
    assert names["val"] and names["test"] and names["train"]
    assert not names["train"] & (names["val"] | names["test"])
    assert not names["val"] & names["test"]


def test_face_follows_its_held_out_outline_parent(monkeypatch: pytest.MonkeyPatch) -> None:
    # If the outline font EMS Tech was made from is held out, so is EMS Tech.
    monkeypatch.setattr(strokes, "_outline_splits", lambda: {"architectsdaughter": "test"})
    assert "EMS Tech" in {f.name for f in list_faces("test")}
    assert "EMS Tech" not in {f.name for f in list_faces("train")}
