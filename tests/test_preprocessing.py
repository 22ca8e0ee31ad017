from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw

from text_recognizer.errors import ImageError
from text_recognizer.preprocessing import emnist_style, normalize_polarity, shrunk_to


def dark_on_white(size: int = 96) -> np.ndarray:
    """A hand-drawn-ish 'A': dark strokes on white paper, off centre."""
    image = Image.new("L", (size, size), 255)
    draw = ImageDraw.Draw(image)
    draw.line([(20, 80), (40, 15), (60, 80)], fill=0, width=6)
    draw.line([(28, 55), (52, 55)], fill=0, width=6)
    return np.asarray(image).copy()


def test_polarity_either_way_gives_the_same_emnist_image() -> None:
    dark = dark_on_white()
    bright = 255 - dark
    assert normalize_polarity(dark).mean() < 128  # ink made bright, background dark
    np.testing.assert_array_equal(normalize_polarity(dark), normalize_polarity(bright))
    np.testing.assert_array_equal(
        emnist_style(normalize_polarity(dark)), emnist_style(normalize_polarity(bright))
    )


def test_polarity_on_grey_paper_and_with_tiny_ink() -> None:
    grey_paper = np.full((64, 64), 130, np.uint8)
    grey_paper[20:40, 30:33] = 20  # dark ink on mid-grey paper
    assert normalize_polarity(grey_paper)[25, 31] > normalize_polarity(grey_paper)[5, 5]
    white = np.full((128, 128), 255, np.uint8)
    white[60:64, 60:64] = 0  # under 0.1% of the pixels are ink
    assert normalize_polarity(white)[62, 62] == 255


def test_emnist_style_shape_dtype_range_and_centring() -> None:
    out = emnist_style(normalize_polarity(dark_on_white()))
    assert out.shape == (28, 28) and out.dtype == np.uint8
    assert out.max() == 255 and out.min() == 0
    rows, cols = np.nonzero(out > 64)
    # Ink fills the frame (EMNIST pads by only 2 px at 128 px) and sits in the middle.
    assert rows.max() - rows.min() >= 22
    assert abs((cols.min() + cols.max()) / 2 - 13.5) <= 1.5
    assert emnist_style(normalize_polarity(dark_on_white()), size=32).shape == (32, 32)


def test_emnist_style_keeps_aspect_ratio() -> None:
    bar = np.zeros((100, 100), np.uint8)
    bar[10:90, 45:55] = 255  # a tall thin stroke, like '1' or 'l'
    out = emnist_style(bar)
    cols = np.nonzero(out.max(axis=0) > 64)[0]
    assert cols.max() - cols.min() < 8  # not stretched to a square


def test_emnist_style_ignores_where_and_how_big() -> None:
    small = np.zeros((200, 200), np.uint8)
    small[20:50, 30:40] = 255
    large = np.zeros((64, 64), np.uint8)
    large[2:62, 22:42] = 255
    assert np.abs(emnist_style(small).astype(int) - emnist_style(large)).mean() < 10


def test_specks_of_noise_are_no_part_of_a_characters_box() -> None:
    """One dark pixel of dust or sensor noise in a corner stretched the character's box to
    the whole image, and the character shrank in its frame (every sample character misread
    under noise of sigma 20 grey levels); an i's dot stays part of it."""
    plain = normalize_polarity(dark_on_white())
    specked = plain.copy()
    specked[2, 2] = specked[93, 90] = 255
    assert np.array_equal(emnist_style(specked), emnist_style(plain))
    dotted = plain.copy()
    dotted[2:8, 42:48] = 255  # a dot well above the letter: its own, and kept
    assert not np.array_equal(emnist_style(dotted), emnist_style(plain))


@pytest.mark.parametrize(
    "image",
    [
        np.zeros((40, 40), np.uint8),
        np.full((40, 40), 255, np.uint8),
        np.full((40, 40), 17, np.uint8),
    ],
)
def test_blank_image_is_a_clear_error(image: np.ndarray) -> None:
    with pytest.raises(ImageError, match="blank"):
        emnist_style(normalize_polarity(image))


def text_line() -> np.ndarray:
    """A level line of text, dark on white, 400 x 40 (PIL's default font, scaled up)."""
    image = Image.new("L", (200, 20), 255)
    ImageDraw.Draw(image).text((4, 4), "level lines of text here", fill=0)
    return np.asarray(image.resize((400, 40), Image.Resampling.NEAREST)).copy()


@pytest.mark.parametrize("tilt", [-6.5, -3.0, -1.5, 2.0, 3.5, 7.0])
def test_skew_angle_undoes_a_tilt(tilt: float) -> None:
    from text_recognizer.preprocessing import rotate, skew_angle

    ink = (255 - text_line()).astype(np.float32)
    assert skew_angle(ink) == 0.0
    assert abs(skew_angle(rotate(ink, tilt)) + tilt) <= 0.5


def test_prepare_line_levels_a_tilted_line_so_its_text_keeps_its_size() -> None:
    from text_recognizer.preprocessing import prepare_line, rotate

    line = text_line()
    tilted = 255 - rotate(255 - line.astype(np.float32), 3.0).astype(np.uint8)
    level = prepare_line(line, 32)
    assert abs(prepare_line(tilted, 32).shape[1] - level.shape[1]) <= 0.05 * level.shape[1]
    assert prepare_line(tilted, 32, deskew=False).shape[1] < 0.8 * level.shape[1]
    word = line[:, :120]  # too short to measure a tilt: left as it is
    np.testing.assert_array_equal(prepare_line(word, 32), prepare_line(word, 32, deskew=False))


@pytest.mark.parametrize("lean", [-0.4, -0.2, 0.3, 0.6])
def test_slant_measures_how_far_the_strokes_lean(lean: float) -> None:
    from text_recognizer.preprocessing import shear, slant

    ink = (255 - text_line()).astype(np.float32)
    upright = slant(ink)
    assert abs(upright) <= 0.05  # PIL's default font is upright
    assert abs(slant(shear(ink, lean)) - (upright + lean)) <= 0.05


def test_prepare_line_shears_a_leaning_line_to_the_target_lean() -> None:
    from text_recognizer.preprocessing import SLANT_TARGET, prepare_line, shear, slant

    line = text_line()
    for lean in (-0.4, 0.0, 0.6):
        leaning = 255 - shear(255 - line.astype(np.float32), lean).astype(np.uint8)
        assert abs(slant(prepare_line(leaning, 32)) - SLANT_TARGET) <= 0.05
        assert abs(slant(prepare_line(leaning, 32, deslant=False)) - lean) <= 0.05


def test_prepare_line_drops_a_mark_far_above_the_text_and_keeps_i_dots() -> None:
    from text_recognizer.preprocessing import drop_stray_marks, prepare_line

    line = text_line()  # "level lines of text here": i-dots, ascenders
    ink = (255 - line).astype(np.float32)
    assert drop_stray_marks(ink) is ink  # nothing of the line itself is dropped
    loose = np.full((100, line.shape[1]), 255, np.uint8)
    loose[60:] = line
    loose[2:6, 200:215] = 0  # a short stroke far above the text
    np.testing.assert_array_equal(prepare_line(loose, 32), prepare_line(line, 32))
    np.testing.assert_array_equal(
        prepare_line(line, 32), prepare_line(np.pad(line, 20, constant_values=255), 32)
    )


def test_prepare_line_drops_a_far_mark_before_levelling_so_it_cannot_sway_the_tilt() -> None:
    from text_recognizer.preprocessing import prepare_line, rotate

    tilted = 255 - rotate(255 - text_line().astype(np.float32), 3.0).astype(np.uint8)
    loose = np.full((tilted.shape[0] + 80, tilted.shape[1]), 255, np.uint8)
    loose[80:] = tilted
    loose[2:6, 200:215] = 0  # a short stroke far above the tilted text
    np.testing.assert_array_equal(prepare_line(loose, 32), prepare_line(tilted, 32))


@pytest.mark.parametrize("name", ["line_00.png", "line_03.png", "line_05.png"])
def test_a_prepared_lines_matrix_says_where_its_pixels_came_from(name: str) -> None:
    """Warping the input by the matrix ``prepare_line_mapped`` returns gives back the
    prepared line: through the frame cut, crops, deskew rotation, deslant shear and resize."""
    import cv2

    from tests.pages import SAMPLES
    from text_recognizer.preprocessing import prepare_line_mapped, rotate, shear

    grey = np.asarray(Image.open(SAMPLES / name).convert("L"))
    grey = cv2.resize(grey, None, fx=3, fy=3)
    paper = float(np.median(grey))
    grey = cv2.copyMakeBorder(grey, 40, 40, 30, 30, cv2.BORDER_CONSTANT, value=paper)
    turned = shear(rotate(grey.astype(np.float32), 3.0, paper), 0.3, paper).astype(np.uint8)
    line, matrix = prepare_line_mapped(turned, 32)
    ink = 255 - turned.astype(np.float32)
    warped = cv2.warpAffine(ink, matrix[:2], (line.shape[1], line.shape[0]), flags=cv2.INTER_AREA)
    warped = warped - np.median(warped)
    assert np.corrcoef(warped.ravel(), line.ravel())[0, 1] > 0.95
    shifted = np.roll(warped, 3, axis=1)  # three columns off: clearly worse
    assert np.corrcoef(shifted.ravel(), line.ravel())[0, 1] < 0.7


def test_shrunk_to_bounds_the_longer_side_and_keeps_a_small_image_as_it_is() -> None:
    page = np.zeros((1000, 400), np.uint8)
    assert shrunk_to(page, 256).shape == (256, 102)  # the aspect kept
    assert shrunk_to(np.zeros((3000, 1), np.uint8), 256).shape == (256, 1)  # never 0 wide
    small = np.zeros((100, 256), np.uint8)
    assert shrunk_to(small, 256) is small
