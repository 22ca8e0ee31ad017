"""Reading images: modes to grey, files, bytes and arrays, and what cannot be read."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.test_preprocessing import dark_on_white, text_line
from text_recognizer.errors import ImageError
from text_recognizer.images import load_image, to_grey


def test_to_grey_handles_modes_and_composites_alpha_on_white() -> None:
    dark = dark_on_white(48)
    rgb = np.stack([dark] * 3, axis=-1)
    np.testing.assert_array_equal(to_grey(rgb), dark)
    np.testing.assert_array_equal(to_grey(Image.fromarray(rgb)), dark)
    # Transparent everywhere except the ink: a drawing-tool export.
    rgba = np.zeros((48, 48, 4), np.uint8)
    rgba[..., 3] = np.where(dark < 128, 255, 0)
    assert to_grey(rgba)[0, 0] == 255 and to_grey(Image.fromarray(rgba, "RGBA"))[0, 0] == 255
    assert to_grey(rgba).min() == 0
    sixteen = dark.astype(np.uint16) * 257
    np.testing.assert_array_equal(to_grey(sixteen), dark)
    np.testing.assert_array_equal(to_grey(Image.fromarray(sixteen)), dark)
    np.testing.assert_array_equal(to_grey(dark.astype(np.float32) / 255), dark)
    assert to_grey(Image.fromarray(dark).convert("1")).dtype == np.uint8
    assert to_grey(Image.fromarray(dark).convert("P")).shape == (48, 48)


def test_a_uint16_array_of_8_bit_values_is_read_as_16_bit_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    dark = dark_on_white(48)
    with caplog.at_level("WARNING", logger="text_recognizer.images"):
        assert to_grey(dark.astype(np.uint16) * 257).min() == dark.min()  # full range: silent
        assert not caplog.records
        assert to_grey(dark.astype(np.uint16)).max() <= 1  # 255 of 65535: all but black
    assert "pass array.astype(np.uint8)" in caplog.text


@pytest.mark.parametrize(
    "bad", [np.zeros((0, 5), np.uint8), np.zeros((4, 4, 2), np.uint8), np.zeros(7, np.uint8)]
)
def test_to_grey_rejects_unusable_arrays(bad: np.ndarray) -> None:
    with pytest.raises(ImageError):
        to_grey(bad)


def test_unreadable_inputs_raise_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ImageError, match="no such file"):
        load_image(tmp_path / "missing.png")
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image at all")
    with pytest.raises(ImageError, match="not a readable image"):
        load_image(bad)
    truncated = tmp_path / "truncated.png"
    noise = np.random.default_rng(0).integers(0, 255, (64, 64), dtype=np.uint8)
    Image.fromarray(noise).save(truncated)
    truncated.write_bytes(truncated.read_bytes()[:200])
    with pytest.raises(ImageError, match="corrupt, truncated"):
        load_image(truncated)
    empty = tmp_path / "empty.png"
    empty.touch()
    with pytest.raises(ImageError, match=r"empty\.png: the file is empty \(0 bytes\)"):
        load_image(empty)


def test_files_pillow_opens_but_cannot_read_give_an_image_error(tmp_path: Path) -> None:
    """Pillow raises ValueError, not OSError, for modes it cannot convert and for some
    damaged files; either once escaped as a traceback and lost the rest of a CLI batch."""
    lab = tmp_path / "lab.tif"
    Image.fromarray(text_line()).convert("RGB").convert("LAB").save(lab)
    with pytest.raises(ImageError, match=r"lab\.tif: .*LAB"):
        load_image(lab)
    with pytest.raises(ImageError, match="LAB"):
        load_image(Image.open(lab))
    bmp = tmp_path / "palette.bmp"
    Image.fromarray(text_line()).convert("P").save(bmp)
    data = bytearray(bmp.read_bytes())
    data[46:50] = (100_000).to_bytes(4, "little")  # the palette's size, far too large
    bmp.write_bytes(bytes(data))
    with pytest.raises(ImageError, match=r"palette\.bmp: the image is corrupt"):
        load_image(bmp)


def test_other_inputs_read_or_refused_clearly(tmp_path: Path) -> None:
    path = tmp_path / "line.png"
    Image.fromarray(text_line()).save(path)
    expected = load_image(path)
    data = path.read_bytes()
    for source in (io.BytesIO(data), bytearray(data), memoryview(data)):
        assert np.array_equal(load_image(source), expected)  # type: ignore[arg-type]
    with path.open("rb") as file:
        assert np.array_equal(load_image(file), expected)
    with pytest.raises(ImageError, match="got NoneType"):
        load_image(None)  # type: ignore[arg-type]
    with pytest.raises(ImageError, match="mode 'rb'"):
        load_image(io.StringIO("text"))  # type: ignore[arg-type]
    with pytest.raises(ImageError, match="not a regular file"):
        load_image("/dev/null")
    with pytest.raises(ImageError, match="too small to read"):
        load_image(np.full((1, 500), 255, np.uint8))
    nan = expected.astype(np.float32) / 255
    nan[0, 0] = np.nan
    with pytest.raises(ImageError, match="NaN"):
        load_image(nan)


def test_image_bytes_read_like_the_file(tmp_path: Path) -> None:
    path = tmp_path / "line.png"
    Image.fromarray(text_line()).save(path)
    assert np.array_equal(load_image(path.read_bytes()), load_image(path))
    with pytest.raises(ImageError, match=r"^not a readable image: not in a format Pillow reads"):
        load_image(b"not an image at all")
    with pytest.raises(ImageError, match=r"^the image is corrupt, truncated"):
        load_image(path.read_bytes()[:200])


def test_decompression_bomb_refused_before_decoding(tmp_path: Path) -> None:
    path = tmp_path / "bomb.png"
    Image.new("1", (20_000, 10_000)).save(path)  # 200 M pixels, a 30 kB file
    assert path.stat().st_size < 100_000
    with pytest.raises(ImageError, match="larger than 40,000,000 pixels"):
        load_image(path)


def test_huge_image_refused_before_decoding(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import text_recognizer.images as images

    monkeypatch.setattr(images, "MAX_PIXELS", 1000)
    path = tmp_path / "big.png"
    Image.new("L", (100, 100)).save(path)
    with pytest.raises(ImageError, match="larger than 1,000 pixels"):
        load_image(path)


def test_a_photo_is_turned_as_its_exif_orientation_says(tmp_path: Path) -> None:
    """Phones save photos as the sensor saw them, with an EXIF tag saying how to turn them."""
    upright = np.full((40, 200), 255, np.uint8)
    upright[10:30, 20:180:10] = 0  # a wide "line": 16 strokes
    sideways = Image.fromarray(np.rot90(upright, k=1))  # stored turned, 200 high and 40 wide
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to view"
    sideways.save(tmp_path / "photo.jpg", exif=exif, quality=95)
    loaded = load_image(tmp_path / "photo.jpg")
    assert loaded.shape == upright.shape
    assert np.abs(loaded.astype(int) - upright).mean() < 10
    with Image.open(tmp_path / "photo.jpg") as image:
        assert load_image(image).shape == upright.shape  # a Pillow image too


def test_a_dithered_scan_is_smoothed_as_it_is_read_and_nothing_else_is() -> None:
    """Dots are no strokes: the bundled sample page dithered was read at CER 0.30 with 6
    of its 8 lines found; smoothed, as it now is read, like the page in grey."""
    from tests.pages import compose_page
    from text_recognizer.metrics import cer
    from text_recognizer.recognizer import Recognizer

    page, truths = compose_page(list(range(8)), pitch=40)
    dithered = np.asarray(Image.fromarray(page).convert("1").convert("L"))
    assert len(np.unique(load_image(dithered))) > 2  # smoothed
    result = Recognizer.from_pretrained().recognize(dithered, kind="paragraph")
    assert len(result.lines) == 8 and cer([result.text], ["\n".join(truths)]) < 0.06
    # Black and white without dots (thresholded strokes, thin rules) is read as it is.
    thresholded = np.where(page < 128, 0, 255).astype(np.uint8)
    grid = np.full((300, 300), 255, np.uint8)
    grid[::8] = 0
    for image in (thresholded, grid, page):
        assert np.array_equal(load_image(image), image)


def test_grey_uint8_arrays_are_read_as_they_are_and_copied() -> None:
    """The fast path for uint8 grey gives what the general path gives, for every value."""
    levels = np.arange(256, dtype=np.uint8).reshape(16, 16)
    for array in (levels, levels[:, :, None], np.stack([levels] * 3, axis=2)):
        grey = to_grey(array)
        assert grey.dtype == np.uint8
        np.testing.assert_array_equal(grey, levels)
        assert not np.shares_memory(grey, array)  # the caller's array is never altered
