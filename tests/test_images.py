"""Reading images: modes to grey, files, bytes and arrays, and what cannot be read."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.test_preprocessing import dark_on_white, text_line
from text_recognizer.errors import ImageError
from text_recognizer.images import Pages, load_image, to_grey


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


def test_arrays_of_values_below_black_are_refused_saying_what_to_do() -> None:
    """A normalised tensor's array ((x - mean) / std) once read as nearly black and was
    then called blank: its ink was there, its values were not an image's."""
    unit = dark_on_white(48).astype(np.float32) / 255
    for normalised in ((unit - 0.485) / 0.229, (unit - unit.mean()) / unit.std()):
        with pytest.raises(ImageError, match=r"negative values .*undo the normalisation"):
            to_grey(normalised)
    with pytest.raises(ImageError, match="negative values"):
        to_grey(unit.astype(np.int16) - 1)
    # Rounding (or a resampling's overshoot) of under half a grey level is clipped as before.
    np.testing.assert_array_equal(to_grey(unit - 1e-3), to_grey(np.clip(unit - 1e-3, 0, 1)))
    np.testing.assert_array_equal(to_grey(unit * 255 - 0.4), to_grey(unit * 255))


def test_channels_first_arrays_and_lists_and_tensors_are_refused_saying_what_to_pass() -> None:
    dark = dark_on_white(48)
    with pytest.raises(ImageError, match=r"channels first\? pass array\.transpose\(1, 2, 0\)"):
        to_grey(np.stack([dark] * 3))
    with pytest.raises(ImageError, match=r"got list: .*recognize_batch reads a list"):
        load_image([dark, dark])  # type: ignore[arg-type]
    with (
        Pages(Image.fromarray(dark)) as document,
        pytest.raises(ImageError, match=r"got Pages: .*recognize_document reads its pages"),
    ):
        load_image(document)  # type: ignore[arg-type]
    torch = pytest.importorskip("torch")
    with pytest.raises(ImageError, match=r"got Tensor: pass tensor\.cpu\(\)\.numpy\(\)"):
        load_image(torch.from_numpy(dark))


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


def bomb_warnings(recorded: pytest.WarningsRecorder) -> list[str]:
    return [str(w.message) for w in recorded if w.category is Image.DecompressionBombWarning]


@pytest.mark.parametrize(
    ("size", "said"),
    [
        ((10_000, 10_000), "10000x10000 pixels (100,000,000)"),
        ((20_000, 10_000), "200,000,000 pixels"),
    ],
    ids=["past-pillows-warning", "past-pillows-limit"],
)
def test_our_limit_refuses_a_huge_image_and_pillows_warning_is_not_shown(
    tmp_path: Path, recwarn: pytest.WarningsRecorder, size: tuple[int, int], said: str
) -> None:
    """Pillow warns of a decompression bomb past 89 million pixels, as it opens the file:
    its warning (its source file and line) was printed before our own error, which names
    the file, its size and the limit, and says what to do. Past 179 million Pillow will
    not open it, and our error did not say how large it is."""
    path = tmp_path / "huge scan.png"
    Image.new("1", size).save(path)
    message = (
        f"{path}: the image is {said}: larger than 40,000,000 pixels, the most read in one "
        "image; crop it or scale it down first, or raise the limit: "
        "--max-image-megapixels (text-recognizer recognize, serve) or max_image_pixels (Python; "
        "--data-arg max_image_pixels=N for a folder dataset)"
    )
    for read in (load_image, lambda source: Pages(source).load(1)):
        with pytest.raises(ImageError) as refused:
            read(path)
        assert str(refused.value) == message
        with pytest.raises(ImageError) as refused:
            read(path.read_bytes())
        assert str(refused.value) == message.removeprefix(f"{path}: ")
    assert not bomb_warnings(recwarn)


def test_our_limit_decides_where_pillows_would_warn(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, recwarn: pytest.WarningsRecorder
) -> None:
    """An image our limit lets through is read without Pillow's warning; where a program
    has set Pillow's limit below ours, Pillow's refusal says so."""
    import text_recognizer.images as images

    monkeypatch.setattr(images, "MAX_PIXELS", 1_000_000)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100_000)  # warns past it, refuses past 2x
    path = tmp_path / "page.png"
    Image.fromarray(np.full((300, 600), 255, np.uint8)).save(path)  # 180,000 pixels
    assert load_image(path).shape == (300, 600)
    assert not bomb_warnings(recwarn)
    Image.new("L", (500, 500), 255).save(path)
    with pytest.raises(ImageError) as refused:
        load_image(path)
    assert str(refused.value) == (
        f"{path}: the image is 250,000 pixels, more than this program lets Pillow open "
        "(200,000: twice PIL.Image.MAX_IMAGE_PIXELS); crop it or scale it down first"
    )


def test_damaged_exif_is_said_once_in_our_words_naming_the_file(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, recwarn: pytest.WarningsRecorder
) -> None:
    """Pillow's warning named neither the photo nor what it costs: in a batch of photos,
    which one's EXIF data is damaged, and is it read?"""
    exif = Image.Exif()
    exif[0x0112] = 6
    out = io.BytesIO()
    Image.fromarray(text_line()).save(out, format="JPEG", exif=exif)
    data = bytearray(out.getvalue())
    start = data.index(b"Exif\0\0") + 6
    data[start + 4 : start + 8] = (
        b"\xff\xff\xff\x7f"  # where its first directory lies: past the end
    )
    path = tmp_path / "photo 1.jpg"
    path.write_bytes(bytes(data))
    with caplog.at_level("WARNING", logger="text_recognizer.images"):
        assert load_image(path).shape == text_line().shape  # read as stored
    assert f"{path}: its EXIF data is damaged (Corrupt EXIF data" in caplog.text
    assert "which way up it was taken may be lost" in caplog.text
    assert caplog.text.count("EXIF data is damaged") == 1
    assert not [w for w in recwarn if "EXIF" in str(w.message)]


def test_files_pillow_does_not_know_are_told_apart_by_how_they_begin(tmp_path: Path) -> None:
    """All were "not in a format Pillow reads (PNG, JPEG, TIFF, ...)": of a damaged GIF too,
    and of an iPhone's photo, which says nothing of what to do."""
    files = {
        "cut.gif": (
            b"GIF89a\x10\0\x10\0\0\0\0;",
            "it begins as a GIF file does, but Pillow cannot",
        ),
        "photo.heic": (
            b"\0\0\0\x18ftypheic\0\0\0\0mif1heic" + bytes(100),
            "a HEIF/HEIC photo (as iPhones take them), which Pillow does not read: convert",
        ),
        "drawing.svg": (
            b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"/>',
            "an SVG drawing (shapes, not pixels), which is not read: export it as PNG",
        ),
        "notes.txt": (b"some notes", "not in a format Pillow reads (PNG, JPEG, TIFF"),
    }
    for name, (data, said) in files.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(ImageError) as refused:
            load_image(tmp_path / name)
        assert str(refused.value).startswith(f"{tmp_path / name}: not a readable image: {said}")
    link = tmp_path / "scan.png"
    link.symlink_to(tmp_path / "moved.png")
    with pytest.raises(ImageError, match=rf"scan\.png: a link to {tmp_path}/moved\.png, which"):
        load_image(link)


def test_a_file_one_may_not_read_is_not_called_corrupt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """It was "the image is corrupt, truncated or in a mode that cannot be read ([Errno 13]
    Permission denied ...)". (Opening is refused as the system would refuse it: the tests
    may run as root, whom no permission stops.)"""
    path = tmp_path / "scan.png"
    Image.fromarray(text_line()).save(path)

    def refused(file: object, *args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied", str(file))

    monkeypatch.setattr(Image, "open", refused)
    with pytest.raises(ImageError) as error:
        load_image(path)
    assert str(error.value) == (
        f"{path}: not allowed to read it (permission denied); check who may read it (ls -l), "
        "or copy it somewhere you can read"
    )


def test_an_eps_is_refused_before_its_postscript_is_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pillow draws an EPS by running it in Ghostscript: no file from outside (an upload to
    the service) is to be trusted with that."""
    from PIL import EpsImagePlugin

    monkeypatch.setattr(EpsImagePlugin.EpsImageFile, "load", lambda self: pytest.fail("drawn"))
    path = tmp_path / "figure.eps"
    path.write_text("%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 100 100\nshowpage\n")
    with pytest.raises(ImageError, match=r"figure\.eps: an EPS \(PostScript\) file, not read"):
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


def test_a_scan_past_the_default_limit_is_read_where_the_limit_is_raised(tmp_path: Path) -> None:
    """A 600-dpi A3 scan (70 million pixels) was refused, and only editing MAX_PIXELS let
    it be read; ``max_image_pixels`` raises the limit for one call, still checked before
    the file is decoded, and lowers it as well."""
    path = tmp_path / "a3 at 600 dpi.png"
    Image.new("1", (7016, 9921), 1).save(path)  # 69.6 million pixels, blank: a few kB
    with pytest.raises(ImageError, match=r"larger than 40,000,000 pixels.*--max-image-megapixels"):
        load_image(path)
    assert load_image(path, max_image_pixels=70_000_000).shape == (9921, 7016)
    with pytest.raises(ImageError, match="larger than 69,000,000 pixels"):
        load_image(path.read_bytes(), max_image_pixels=69_000_000)
    small = tmp_path / "small.png"
    Image.new("L", (100, 50), 255).save(small)
    with pytest.raises(ImageError, match=r"^.*small.png: the image is 100x50 pixels \(5,000\): "):
        load_image(small, max_image_pixels=4_999)
    assert load_image(small, max_image_pixels=5_000).shape == (50, 100)


def test_every_page_of_a_document_is_held_to_the_limit_given(tmp_path: Path) -> None:
    """A multi-page TIFF's pages (and a PDF's) are held to the ``max_image_pixels`` that
    opened them, as a lone image is, not to the module's default."""
    pages = [np.full((100, 100), 255, np.uint8), np.full((50, 50), 255, np.uint8)]
    path = tmp_path / "scan.tif"
    Image.fromarray(pages[0]).save(path, save_all=True, append_images=[Image.fromarray(pages[1])])
    with Pages(path, max_image_pixels=5_000) as document:
        with pytest.raises(ImageError, match=r"scan.tif page 1: .*larger than 5,000 pixels"):
            document.load(1)
        assert document.load(2).shape == (50, 50)
    with Pages(path, max_image_pixels=10_000) as document:
        assert document.load(1).shape == (100, 100)
    pytest.importorskip("pypdfium2")
    pdf = tmp_path / "scan.pdf"
    Image.fromarray(pages[0]).save(pdf, resolution=200)  # drawn at PDF_DPI: 100x100
    with (
        Pages(pdf, max_image_pixels=9_999) as document,
        pytest.raises(ImageError, match=r"the page is 100x100 pixels .*larger than 9,999"),
    ):
        document.load(1)
    with pytest.raises(ImageError, match="larger than 9,999 pixels"):
        load_image(pdf, max_image_pixels=9_999)
    assert load_image(pdf, max_image_pixels=10_000).shape == (100, 100)


@pytest.mark.parametrize(
    ("limit", "said"),
    [
        (0, "must be 1 or more; got 0"),
        (1.5, "must be a whole number of pixels; got 1.5"),
        (True, "must be a whole number of pixels; got True"),
        (200_000_000, "Pillow opens no image of more than 178,956,970 pixels"),
    ],
)
def test_a_limit_that_cannot_be_kept_is_refused(limit: object, said: str) -> None:
    from text_recognizer.errors import ConfigError

    with pytest.raises(ConfigError, match=said):
        load_image(np.zeros((8, 8), np.uint8), max_image_pixels=limit)  # type: ignore[arg-type]
