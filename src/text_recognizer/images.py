"""Reading images: files, bytes, Pillow images and arrays to uint8 grey, page by page.

Every way an image comes in (a path on the command line, an upload's bytes, a Pillow image
or an array from a program) ends here as one grey array per page, upright as its EXIF
orientation says, or as an ``ImageError`` that says why it cannot be read. Files are
bounded before they are decoded (``MAX_PIXELS``; a document's pages and their pixels
together in :class:`Pages`), so that a decompression bomb costs nothing. A multi-page TIFF
(what scanners and fax machines write) and a PDF (with the optional ``pdf`` extra) have
several pages; any other image has one.
"""

from __future__ import annotations

import io
import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, NamedTuple

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError
from PIL.TiffImagePlugin import PREFIXES as TIFF_MAGIC

from text_recognizer.errors import ImageError

logger = logging.getLogger(__name__)

#: What ``load_image`` reads: a path, an image file's bytes (or a binary file object),
#: a Pillow image or an array.
ImageInput = str | Path | bytes | bytearray | memoryview | IO[bytes] | Image.Image | np.ndarray

#: Larger images are refused before decoding (a decompression bomb or a mistake).
MAX_PIXELS = 40_000_000
#: Smaller images hold nothing to read (a 1-pixel-high strip once read as "0000...0").
MIN_SIDE = 4


def to_grey(image: Image.Image | np.ndarray) -> np.ndarray:
    """Any Pillow image or array (L, RGB, RGBA, LA, P, 1, 16-bit, float) -> uint8 ``[H, W]``.

    Transparent pixels are composited on white, because a transparent background is
    paper in every drawing tool; colour becomes ITU-R 601 luma (what Pillow's "L" does).
    """
    if isinstance(image, Image.Image):
        return _pil_to_grey(image)
    if not isinstance(image, np.ndarray):
        raise ImageError(f"expected a PIL image or a numpy array, got {type(image).__name__}")
    return _array_to_grey(image)


def _pil_to_grey(image: Image.Image) -> np.ndarray:
    if image.width == 0 or image.height == 0:
        raise ImageError(f"image is empty ({image.width}x{image.height})")
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        return _array_to_grey(np.asarray(image))
    has_alpha = image.mode in ("RGBA", "LA", "PA", "La", "RGBa") or (
        image.mode == "P" and "transparency" in image.info
    )
    if has_alpha:
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(white, rgba)
    try:
        return np.asarray(image.convert("L"), dtype=np.uint8).copy()
    except ValueError as error:  # a mode Pillow cannot convert, such as LAB
        raise ImageError(f"cannot read a {image.mode} image ({error})") from None


def _array_to_grey(array: np.ndarray) -> np.ndarray:
    if array.size == 0:
        raise ImageError(f"image is empty (shape {array.shape})")
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (3, 4)):
        raise ImageError(
            f"image array has shape {array.shape}; expected [H, W], [H, W, 1], [H, W, 3] (RGB) "
            "or [H, W, 4] (RGBA)"
        )
    if array.dtype == np.uint8 and array.ndim == 2:
        return array.copy()  # already what every other form becomes, bit for bit
    values = _to_unit_float(array)
    if values.ndim == 3:
        rgb = values[:, :, :3]
        if values.shape[2] == 4:  # composite on white paper
            alpha = values[:, :, 3:4]
            rgb = rgb * alpha + (1.0 - alpha)
        values = rgb @ np.array([0.299, 0.587, 0.114])
    return np.clip(np.rint(values * 255.0), 0, 255).astype(np.uint8)


def _to_unit_float(array: np.ndarray) -> np.ndarray:
    """Scale an integer, boolean or float array to float64 in [0, 1] by its dtype's range."""
    if array.dtype == np.bool_:
        return array.astype(np.float64)
    if np.issubdtype(array.dtype, np.integer):
        if array.dtype == np.uint8:
            return array.astype(np.float64) / 255.0
        top = float(array.max())
        # 16-bit scans use the full range; "I" (int32) images from 8-bit files stay <= 255.
        scale = 65535.0 if top > 255 or array.dtype == np.uint16 else 255.0
        if array.dtype == np.uint16 and 0 < top <= 255:
            # Scaled by its dtype's range, such an array is all but black, and reads blank.
            logger.warning(
                "an image of 16-bit values that are all 255 or less is read against 65535, "
                "as nearly black; if its values are 8-bit, convert it to 8 bits first (an "
                "array: pass array.astype(np.uint8))"
            )
        return np.clip(array.astype(np.float64) / scale, 0.0, 1.0)
    if np.issubdtype(array.dtype, np.floating):
        values = array.astype(np.float64)
        if not np.isfinite(values).all():
            raise ImageError("image array holds NaN or infinite values")
        return np.clip(values / 255.0 if values.max() > 1.0 else values, 0.0, 1.0)
    raise ImageError(f"image array has unsupported dtype {array.dtype}")


def load_image(source: ImageInput) -> np.ndarray:
    """Read a path, an image file's bytes or binary file object, a Pillow image or an
    array into uint8 grey, upright as its EXIF orientation says; a clear ``ImageError``
    otherwise. Of a multi-page TIFF only the first page is read, with a warning:
    :class:`Pages` reads every page."""
    if isinstance(source, Image.Image):
        grey = to_grey(ImageOps.exif_transpose(source))
    elif isinstance(source, np.ndarray):
        grey = to_grey(source)
    else:
        file, prefix = _file_of(source)
        grey = _decode(file, prefix)
    return _as_read(grey)


def _file_of(source: ImageInput) -> tuple[Path | io.BytesIO, str]:
    """A path, bytes or a binary file object as something Pillow opens, and the prefix an
    error names it by (``"scan.png: "``; bytes have no name)."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        return io.BytesIO(bytes(source)), ""
    if hasattr(source, "read"):  # an open binary file, io.BytesIO, an upload
        data = source.read()
        if not isinstance(data, bytes):
            raise ImageError("the file object gives text, not bytes; open it with mode 'rb'")
        return io.BytesIO(data), ""
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if path.is_dir():
            raise ImageError(
                f"{path}: a folder, not an image; pass the images in it ({path}/*.png)"
            )
        if not path.exists():
            raise ImageError(f"{path}: no such file")
        if not path.is_file():
            raise ImageError(
                f"{path}: not a regular file (a pipe or a device); on the command line, "
                "'-' reads an image from standard input"
            )
        return path, f"{path}: "
    raise ImageError(
        f"expected a path, an image file's bytes, a binary file object, a PIL image or a "
        f"numpy array, got {type(source).__name__}"
    )


def _as_read(grey: np.ndarray) -> np.ndarray:
    """A decoded image checked for size, and smoothed where dithered."""
    if min(grey.shape) < MIN_SIDE:
        raise ImageError(
            f"the image is {grey.shape[1]}x{grey.shape[0]} pixels: too small to read "
            f"(at least {MIN_SIDE}x{MIN_SIDE})"
        )
    return soften_dithered(grey)


#: A dithered scan (two grey levels only, grey drawn as a pattern of dots: a fax's or a
#: scanner's halftone mode) is smoothed by a Gaussian of this sigma (pixels) as it is
#: read: the models learnt strokes, not dots, and to the line finder dots are specks. The
#: 8 sample lines dithered read at CER 0.214 / 0.090 / 0.068 at 1x / 2x / 3x as they were,
#: 0.073 / 0.047 / 0.043 smoothed, and their page at 0.295 (6 of 8 lines found) and 0.037
#: (docs/benchmarks.md, "Black and white").
DITHER_SIGMA = 1.0
#: A two-level image is dithered where this share of its ink pixels or more stand alone
#: (no ink among their 8 neighbours): 4-78 % of a dithered sample line's, none of a
#: thresholded one's (whose strokes read best as they are) or of a grid of 1-pixel rules.
DITHER_LONE_SHARE = 0.02


def soften_dithered(grey: np.ndarray) -> np.ndarray:
    """``grey`` (uint8) smoothed by ``DITHER_SIGMA`` where it is dithered (two grey levels,
    many lone ink pixels: ``DITHER_LONE_SHARE``), as it is otherwise."""
    counts = np.bincount(grey.ravel(), minlength=256)
    levels = np.flatnonzero(counts)
    if len(levels) != 2:
        return grey
    ink = grey == levels[np.argmin(counts[levels])]  # the rarer level
    neighbours = cv2.filter2D(
        ink.astype(np.uint8), -1, np.ones((3, 3), np.float32), borderType=cv2.BORDER_CONSTANT
    )
    if np.count_nonzero(neighbours[ink] == 1) < DITHER_LONE_SHARE * np.count_nonzero(ink):
        return grey
    return cv2.GaussianBlur(grey, (0, 0), DITHER_SIGMA)


_FIRST_PAGE_ONLY = (
    "%sholds several pages; only the first is read (Recognizer.recognize_document reads "
    "every page, as text-recognizer recognize does)"
)


def _decode(file: Path | io.BytesIO, prefix: str) -> np.ndarray:
    """The first page of ``file``; ``prefix`` names it in an error (bytes have no name)."""
    if _is_pdf(file):
        with _Pdf(file, prefix) as pdf:
            if len(pdf.sizes) > 1:
                logger.warning(_FIRST_PAGE_ONLY, prefix)
            return pdf.render(0, prefix)
    image = _open(file, prefix)
    with image, _read_errors(prefix):
        _warn_if_animated(image, prefix)
        frames = _page_frames(image, prefix, max_pages=1, limit_error=False).frames
        if len(frames) > 1:
            logger.warning(_FIRST_PAGE_ONLY, prefix)
        return _frame_grey(image, frames[0], prefix)


def _open(file: Path | io.BytesIO, prefix: str) -> Image.Image:
    if (file.stat().st_size if isinstance(file, Path) else file.getbuffer().nbytes) == 0:
        raise ImageError(f"{prefix}the file is empty (0 bytes)")
    with _read_errors(prefix):
        return Image.open(file)


#: PDF pages are drawn at this resolution: an A4 page is 3.9 million pixels, and a line of
#: handwriting (8 mm or more from line to line) stays over 60 pixels high.
PDF_DPI = 200
# PDFium is not safe to call from two threads at once.
_PDFIUM = threading.Lock()


#: What a PDF begins with (within its first 1,024 bytes).
PDF_HEADER = b"%PDF-"


def _is_pdf(file: Path | io.BytesIO) -> bool:
    """Whether ``file`` is a PDF: its header, ``%PDF-``, lies in its first 1,024 bytes."""
    try:
        return PDF_HEADER in _head(file)
    except OSError:  # opening it again says why, as for any image
        return False


def _head(file: Path | io.BytesIO) -> bytes:
    """The first 1,024 bytes of ``file``: where a PDF's header lies."""
    if isinstance(file, io.BytesIO):
        return file.getbuffer()[:1024].tobytes()
    with file.open("rb") as opened:
        return opened.read(1024)


class _Pdf:
    """A PDF's pages, drawn by PDFium (pypdfium2, the optional ``pdf`` extra) at
    ``PDF_DPI``: scanned documents are often PDFs of page images. Opening counts the
    pages and reads their sizes, no more."""

    def __init__(self, file: Path | io.BytesIO, prefix: str, max_pages: int | None = None) -> None:
        try:
            import pypdfium2
        except ImportError:
            raise ImageError(
                f"{prefix}a PDF, and reading PDFs needs pypdfium2, which is optional: pip "
                "install 'text-recognizer[pdf]' (or save its pages as images: PNG or TIFF)"
            ) from None
        self._document: Any = None
        with _PDFIUM:
            try:
                self._document = pypdfium2.PdfDocument(
                    file if isinstance(file, Path) else file.getvalue()
                )
                count = len(self._document)
                if max_pages is not None and count > max_pages:
                    raise ImageError(_too_many_pages(prefix, max_pages))
                self.sizes = [self._size(index) for index in range(count)]
            except pypdfium2.PdfiumError as error:  # damaged, or locked with a password
                self._close()
                raise ImageError(f"{prefix}not a readable PDF ({error})") from None
            except ImageError:
                self._close()
                raise
        if not self.sizes:
            self.close()
            raise ImageError(f"{prefix}a PDF without pages")

    def _size(self, index: int) -> tuple[int, int]:
        page = self._document[index]
        try:
            width, height = page.get_size()  # points: 72 to the inch
        finally:
            page.close()
        scale = PDF_DPI / 72
        return max(1, round(width * scale)), max(1, round(height * scale))

    def render(self, index: int, prefix: str) -> np.ndarray:
        """Page ``index`` (from 0) drawn in grey."""
        width, height = self.sizes[index]
        if width * height > MAX_PIXELS:
            raise ImageError(
                f"{prefix}{width}x{height} at {PDF_DPI} dpi is larger than {MAX_PIXELS:,} "
                "pixels; crop or downscale it first"
            )
        import pypdfium2

        with _PDFIUM:
            if self._document is None:
                raise ImageError("its file is closed: read its pages before closing it")
            page = self._document[index]
            try:
                bitmap = page.render(scale=PDF_DPI / 72, grayscale=True)
                drawn = np.array(bitmap.to_numpy())  # a copy: the bitmap's memory is PDFium's
                bitmap.close()
            except pypdfium2.PdfiumError as error:
                raise ImageError(f"{prefix}the page cannot be drawn ({error})") from None
            finally:
                page.close()
        return to_grey(drawn)

    def _close(self) -> None:
        if self._document is not None:
            self._document.close()
            self._document = None

    def close(self) -> None:
        with _PDFIUM:
            self._close()

    def __enter__(self) -> _Pdf:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _too_many_pages(prefix: str, max_pages: int) -> str:
    return (
        f"{prefix}holds more than {max_pages:,} pages, the most read at once: split it into "
        "smaller files"
    )


@contextmanager
def _read_errors(prefix: str) -> Iterator[None]:
    """Pillow's errors on opening or decoding a file, as ``ImageError``s that say why."""
    try:
        yield
    except UnidentifiedImageError:
        raise ImageError(
            f"{prefix}not a readable image: not in a format Pillow reads "
            "(PNG, JPEG, TIFF, BMP, GIF, WebP, ...)"
        ) from None
    except Image.DecompressionBombError:  # too large for Pillow even to open
        raise ImageError(
            f"{prefix}larger than {MAX_PIXELS:,} pixels; crop or downscale it first"
        ) from None
    except ImageError as error:
        if str(error).startswith(prefix):
            raise
        raise ImageError(f"{prefix}{error}") from None
    except (OSError, ValueError, SyntaxError, EOFError, IndexError, TypeError) as error:
        # Pillow's decoders raise all of these on damaged files (a palette of the wrong
        # size, a truncated header) and ValueError on modes it cannot convert (LAB).
        raise ImageError(
            f"{prefix}the image is corrupt, truncated or in a mode that cannot be read "
            f"({error or type(error).__name__})"
        ) from None


#: Formats whose frames are the pages of a document (a scanner's or a fax's multi-page
#: TIFF). Other formats' frames are no pages: an animation's (GIF, WebP, APNG), of which
#: the first frame is read, or one photo's other views (MPO: a phone's preview).
PAGED_FORMATS = frozenset({"TIFF"})
#: How a file Pillow opens as a TIFF begins (either byte order; BigTIFF too).
TIFF_PREFIXES = tuple(TIFF_MAGIC)
# The TIFF NewSubfileType (tag 254) bits of an image that is no page: a reduced-resolution
# copy of another (a thumbnail or preview a scanner adds), or a transparency mask.
_NOT_A_PAGE = 0b101


#: In a walk's frames: the page where a file's pages are cut short or damaged.
DAMAGED = -1


class _PageWalk(NamedTuple):
    frames: list[int]  # the frames that are pages, in order; DAMAGED where the rest are lost
    pixels: list[int]  # each page's
    damage: str = ""  # why the pages from DAMAGED on cannot be read


def _page_frames(
    image: Image.Image, prefix: str, max_pages: int | None = None, limit_error: bool = True
) -> _PageWalk:
    """The frames of ``image`` that are pages, and each one's pixels. Past ``max_pages``
    pages the walk stops: with ``limit_error`` the file is refused, else the pages found
    so far (``max_pages + 1``) are returned. A directory that cannot be read after the
    first page ends the pages with ``DAMAGED``: those before it can still be read."""
    if image.format not in PAGED_FORMATS:
        return _PageWalk([0], [image.width * image.height])
    walk = _PageWalk([], [])
    index = 0
    while True:
        try:
            image.seek(index)
        except EOFError:
            break
        except (OSError, ValueError, SyntaxError, IndexError, TypeError) as error:
            if not walk.frames:
                raise
            damage = f"the file is cut short or damaged here ({error or type(error).__name__})"
            return _PageWalk([*walk.frames, DAMAGED], [*walk.pixels, 0], damage)
        kind = image.tag_v2.get(254, 0)  # type: ignore[attr-defined]
        if not (isinstance(kind, int) and kind & _NOT_A_PAGE):
            walk.frames.append(index)
            walk.pixels.append(image.width * image.height)
        index += 1
        # Every image counts too: a file of thumbnails alone must not be walked for ever.
        if max_pages is not None and (len(walk.frames) > max_pages or index > 2 * max_pages + 1):
            if limit_error:
                raise ImageError(_too_many_pages(prefix, max_pages))
            break
    if not walk.frames:  # only images marked as thumbnails: the first is the picture
        return _PageWalk([0], [_frame_pixels(image, 0)])
    return walk


def _warn_if_animated(image: Image.Image, prefix: str) -> None:
    # An MPO's other frames are the photo's preview or depth map: nothing is left unread.
    if image.format not in (*PAGED_FORMATS, "MPO") and getattr(image, "is_animated", False):
        logger.warning(
            "%sis an animation (%s); only its first frame is read: frames are not pages",
            prefix,
            image.format,
        )


def page_count(source: ImageInput) -> int:
    """How many pages ``source`` has (:class:`Pages`): more than 1 only for a multi-page
    TIFF or a PDF. Only the file's header and its pages' directories are read."""
    with Pages(source) as pages:
        return len(pages)


def may_hold_pages(source: str | Path | bytes) -> bool:
    """Whether ``source`` (a path, or a file's bytes) may hold several pages, a TIFF or a
    PDF, told by its first bytes alone: any other image has one page, and is best opened
    only to be read (``load_image``). A file that cannot be read is none."""
    try:
        head = _head(_file_of(source)[0])
    except (ImageError, OSError):  # reading it says why, as for any image
        return False
    return PDF_HEADER in head or head.startswith(TIFF_PREFIXES)


def _frame_pixels(image: Image.Image, frame: int) -> int:
    image.seek(frame)
    return image.width * image.height


def _frame_grey(image: Image.Image, frame: int, prefix: str, limit: bool = True) -> np.ndarray:
    """Frame ``frame`` of ``image`` decoded to uint8 grey, upright as its orientation says;
    with ``limit``, refused past ``MAX_PIXELS`` before it is decoded (an image already in
    memory, given as a Pillow image, is not)."""
    if image.tell() != frame:
        image.seek(frame)
    if limit and image.width * image.height > MAX_PIXELS:
        raise ImageError(
            f"{prefix}{image.width}x{image.height} is larger than {MAX_PIXELS:,} pixels; "
            "crop or downscale it first"
        )
    image.load()
    # Phones store a photo as the sensor saw it and say in EXIF how to turn it.
    return to_grey(ImageOps.exif_transpose(image))


class Pages:
    """The pages of an image, to read one at a time: a multi-page TIFF (what scanners and
    fax machines write) or a PDF (drawn at ``PDF_DPI``; it needs the optional ``pdf``
    extra) has several, any other image one (an animation's first frame).

    Opening reads only the file's header and its pages' directories, and checks them
    against ``max_pages`` and ``max_pixels`` (all pages' pixels together; ``None``: no
    limit), so that a file of 10,000 tiny pages, or of a few huge blank ones (a few kB
    compressed), is refused before any page is decoded; each page is then held to
    ``MAX_PIXELS`` as an image is. :meth:`load` decodes one page. A file cut short or
    damaged after its first page keeps the pages before the damage: loading the next one
    says why it and any after it are lost. A path's file stays open until :meth:`close`:
    use it in a ``with`` block. A Pillow image's frames are its pages if it is a TIFF; it
    is left at the frame it was at.
    """

    def __init__(
        self, source: ImageInput, max_pages: int | None = None, max_pixels: int | None = None
    ) -> None:
        self._image: Image.Image | None = None
        self._pdf: _Pdf | None = None
        self._array: np.ndarray | None = None
        self._owned = False
        self._frames = [0]
        self._damage = ""
        self._returns_to = 0
        self.name = str(source) if isinstance(source, (str, os.PathLike)) else ""
        prefix = f"{self.name}: " if self.name else ""
        file = None
        if not isinstance(source, Image.Image | np.ndarray):
            file, prefix = _file_of(source)
        if isinstance(source, np.ndarray):
            self._array = source
            pixels = [int(np.prod(source.shape[:2]))]
        elif file is not None and _is_pdf(file):
            self._pdf = _Pdf(file, prefix, max_pages)
            self._frames = list(range(len(self._pdf.sizes)))
            pixels = [width * height for width, height in self._pdf.sizes]
        else:
            if isinstance(source, Image.Image):
                self._image, self._returns_to = source, source.tell()
            else:
                assert file is not None
                self._image, self._owned = _open(file, prefix), True
            try:
                with _read_errors(prefix):
                    self._frames, pixels, self._damage = _page_frames(
                        self._image, prefix, max_pages
                    )
            except ImageError:
                self.close()
                raise
        total = sum(pixels)
        if max_pixels is not None and total > max_pixels:
            self.close()
            raise ImageError(
                f"{prefix}its {len(pixels)} pages hold {total:,} pixels, more than the "
                f"{max_pixels:,} read at once: split it into smaller files, or scan at a "
                "lower resolution"
                if len(pixels) > 1
                else f"{prefix}{total:,} pixels are more than the {max_pixels:,} read at "
                "once; crop or downscale it first"
            )

    def __len__(self) -> int:
        return len(self._frames)

    def page_name(self, number: int) -> str:
        """How an error names page ``number``: ``scan.tif page 2``, ``page 2`` (bytes),
        and as the image itself is named (``scan.png``, or ``""``) where it has one page."""
        if len(self) == 1:
            return self.name
        return f"{self.name} page {number}" if self.name else f"page {number}"

    def load(self, number: int) -> np.ndarray:
        """Page ``number`` (from 1) as uint8 grey, upright as its orientation says; an
        ``ImageError`` naming the page where it cannot be read."""
        if not 1 <= number <= len(self):
            raise ImageError(f"{self.name or 'the image'} has no page {number}: it has {len(self)}")
        name = self.page_name(number)
        prefix = f"{name}: " if name else ""
        try:
            if self._array is not None:
                return _as_read(to_grey(self._array))
            if self._pdf is not None:
                return _as_read(self._pdf.render(self._frames[number - 1], prefix))
            if self._image is None:
                raise ImageError("its file is closed: read its pages before closing it")
            frame = self._frames[number - 1]
            if frame == DAMAGED:
                raise ImageError(f"{self._damage}: this page and any after it cannot be read")
            with _read_errors(prefix):
                if number == 1:  # said as it is read: counting its pages reads no frame
                    _warn_if_animated(self._image, prefix)
                return _as_read(_frame_grey(self._image, frame, prefix, self._owned))
        except ImageError as error:
            if not prefix or str(error).startswith(prefix):
                raise
            raise ImageError(f"{prefix}{error}") from None

    def close(self) -> None:
        """Close the file (a Pillow image given is only turned back to its frame)."""
        if self._pdf is not None:
            self._pdf.close()
        if self._image is None:
            return
        if self._owned:
            self._image.close()
        elif self._image.tell() != self._returns_to:
            self._image.seek(self._returns_to)
        self._image = None

    def __enter__(self) -> Pages:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
