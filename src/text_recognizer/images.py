"""Reading images: files, bytes, Pillow images and arrays to uint8 grey, page by page.

Every way an image comes in (a path on the command line, an upload's bytes, a Pillow image
or an array from a program) ends here as one grey array per page, upright as its EXIF
orientation says, or as an ``ImageError`` that says why it cannot be read. Files are
bounded before they are decoded (``MAX_PIXELS``, or the ``max_image_pixels`` a caller
gives; a document's pages and their pixels together in :class:`Pages`), so that a
decompression bomb costs nothing; Pillow's own
check, which warns past 89 million pixels, is left no say. A multi-page TIFF (what
scanners and fax machines write), a DCX (a fax's multi-page PCX) and a PDF (with the
optional ``pdf`` extra) have several pages; any other image has one.
"""

from __future__ import annotations

import io
import logging
import os
import re
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, NamedTuple

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError
from PIL.TiffImagePlugin import PREFIXES as TIFF_MAGIC

from text_recognizer.errors import ConfigError, ImageError

logger = logging.getLogger(__name__)

#: What ``load_image`` reads: a path, an image file's bytes (or a binary file object),
#: a Pillow image or an array.
ImageInput = str | Path | bytes | bytearray | memoryview | IO[bytes] | Image.Image | np.ndarray

#: Larger images are refused before decoding (a decompression bomb or a mistake), unless
#: a caller gives its own ``max_image_pixels`` (a 600-dpi A3 scan is 70 million). Below
#: Pillow's own limit (``PIL.Image.MAX_IMAGE_PIXELS``, 89 million, past which it warns):
#: this one decides, and Pillow's warning is not shown (``_pillow_warnings``).
MAX_PIXELS = 40_000_000
#: How the limit is raised, for the errors that refuse an image over it.
RAISE_LIMIT = (
    "--max-image-megapixels (text-recognizer recognize, serve) or max_image_pixels (Python; "
    "--data-arg max_image_pixels=N for a folder dataset)"
)
#: Smaller images hold nothing to read (a 1-pixel-high strip once read as "0000...0").
MIN_SIDE = 4


def image_pixel_limit(max_image_pixels: int | None = None) -> int:
    """The most pixels one image (or one page of a document) may hold to be read:
    ``max_image_pixels``, or ``MAX_PIXELS`` where it is None. A ``ConfigError`` where it
    is no positive whole number, or past what Pillow itself opens (twice
    ``PIL.Image.MAX_IMAGE_PIXELS``, 179 million), so that the limit said is the one kept."""
    if max_image_pixels is None:
        return MAX_PIXELS
    if isinstance(max_image_pixels, bool) or not isinstance(max_image_pixels, int | np.integer):
        raise ConfigError(
            f"max_image_pixels must be a whole number of pixels; got {max_image_pixels!r}"
        )
    if max_image_pixels < 1:
        raise ConfigError(f"max_image_pixels must be 1 or more; got {max_image_pixels:,}")
    pillows = Image.MAX_IMAGE_PIXELS
    if pillows is not None and max_image_pixels > 2 * pillows:
        raise ConfigError(
            f"max_image_pixels is {max_image_pixels:,}, and Pillow opens no image of more than "
            f"{2 * pillows:,} pixels (twice PIL.Image.MAX_IMAGE_PIXELS): raise "
            "PIL.Image.MAX_IMAGE_PIXELS to at least half of it first"
        )
    return int(max_image_pixels)


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
        # [C, H, W] is what torch and torchvision hold images as.
        channels_first = array.ndim == 3 and array.shape[0] in (1, 3, 4)
        raise ImageError(
            f"image array has shape {array.shape}; expected [H, W], [H, W, 1], [H, W, 3] (RGB) "
            "or [H, W, 4] (RGBA)"
            + ("; channels first? pass array.transpose(1, 2, 0)" if channels_first else "")
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
    if np.issubdtype(array.dtype, np.floating) and not np.isfinite(array).all():
        raise ImageError("image array holds NaN or infinite values")
    if np.issubdtype(array.dtype, np.signedinteger) or np.issubdtype(array.dtype, np.floating):
        _refuse_negative(array)
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
        return np.clip(values / 255.0 if values.max() > 1.0 else values, 0.0, 1.0)
    raise ImageError(f"image array has unsupported dtype {array.dtype}")


def _refuse_negative(array: np.ndarray) -> None:
    """Refuse values below black: a normalised tensor's (``(x - mean) / std``), which read
    as nearly black and then as "blank". Half a grey level below 0 is a float array's
    rounding (or a resampling's overshoot) and is clipped as before."""
    lowest = float(array.min())
    tolerance = 0.0 if np.issubdtype(array.dtype, np.integer) else 0.5
    if lowest < -tolerance / (1.0 if float(array.max()) > 1.0 else 255.0):
        raise ImageError(
            f"image array holds negative values (down to {lowest:.3g}); expected 0-1 or 0-255 "
            "(0-65535 for 16-bit): a normalised tensor? undo the normalisation "
            "(x * std + mean), or pass np.clip(array, 0, None)"
        )


def load_image(source: ImageInput, max_image_pixels: int | None = None) -> np.ndarray:
    """Read a path, an image file's bytes or binary file object, a Pillow image or an
    array into uint8 grey, upright as its EXIF orientation says; a clear ``ImageError``
    otherwise. Of a file of several pages (a TIFF, a DCX, a PDF) only the first page is
    read, with a warning: :class:`Pages` reads every page. A file of more pixels than
    ``max_image_pixels`` (``MAX_PIXELS`` by default) is refused before it is decoded."""
    limit = image_pixel_limit(max_image_pixels)
    if isinstance(source, Image.Image):
        grey = to_grey(_upright(source, ""))
    elif isinstance(source, np.ndarray):
        grey = to_grey(source)
    else:
        file, prefix = _file_of(source)
        grey = _decode(file, prefix, limit)
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
            if path.is_symlink():
                raise ImageError(f"{path}: a link to {path.readlink()}, which does not exist")
            raise ImageError(f"{path}: no such file")
        if not path.is_file():
            raise ImageError(
                f"{path}: not a regular file (a pipe or a device); on the command line, "
                "'-' reads an image from standard input"
            )
        return path, f"{path}: "
    raise ImageError(
        f"expected a path, an image file's bytes, a binary file object, a PIL image or a "
        f"numpy array, got {type(source).__name__}{_hint_for(source)}"
    )


def _hint_for(source: object) -> str:
    """What to pass instead of ``source``, where a likely mistake is recognised."""
    if isinstance(source, list | tuple):
        return ": one image at a time; Recognizer.recognize_batch reads a list of them"
    if isinstance(source, Pages):
        return ": a document; Recognizer.recognize_document reads its pages"
    if hasattr(source, "detach") and hasattr(source, "numpy"):  # torch, without importing it
        return ": pass tensor.cpu().numpy(), [H, W] or [H, W, C] (channels last), 0-1 or 0-255"
    return ""


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


def _decode(file: Path | io.BytesIO, prefix: str, limit: int) -> np.ndarray:
    """The first page of ``file``, of at most ``limit`` pixels; ``prefix`` names it in an
    error (bytes have no name)."""
    if _is_pdf(file):
        with _Pdf(file, prefix) as pdf:
            if len(pdf.sizes) > 1:
                logger.warning(_FIRST_PAGE_ONLY, prefix)
            return pdf.render(0, prefix, limit)
    image = _open(file, prefix, limit)
    with image, _read_errors(prefix, limit):
        _warn_if_animated(image, prefix)
        frames = _page_frames(image, prefix, max_pages=1, limit_error=False).frames
        if len(frames) > 1:
            logger.warning(_FIRST_PAGE_ONLY, prefix)
        return _frame_grey(image, frames[0], prefix, limit)


#: Formats Pillow opens that are refused, and why: drawing an EPS runs the PostScript
#: program it is (in Ghostscript), which no file from outside is to be trusted with.
NOT_READ = {
    "EPS": "an EPS (PostScript) file, not read: drawing it would run the PostScript program "
    "it holds; export it as PNG or PDF first"
}


def _open(file: Path | io.BytesIO, prefix: str, limit: int) -> Image.Image:
    """``file`` opened (its header read), to be read under ``limit`` pixels an image."""
    if (file.stat().st_size if isinstance(file, Path) else file.getbuffer().nbytes) == 0:
        raise ImageError(f"{prefix}the file is empty (0 bytes)")
    with _read_errors(prefix, limit), _pillow_warnings(prefix):
        try:
            image = Image.open(file)
        except UnidentifiedImageError:
            raise ImageError(f"{prefix}not a readable image: {_unknown(_head(file))}") from None
    if image.format in NOT_READ:
        image.close()
        raise ImageError(f"{prefix}{NOT_READ[image.format]}")
    return image


def _unknown(head: bytes) -> str:
    """Why a file Pillow recognises as no image cannot be read, told by how it begins."""
    kind = image_format(head)
    if kind == "HEIF":
        return (
            "a HEIF/HEIC photo (as iPhones take them), which Pillow does not read: convert "
            "it to JPEG or PNG first"
        )
    if kind is not None:
        return (
            f"it begins as a {kind} file does, but Pillow cannot read it: it is damaged or cut "
            f"short, or a kind of {kind} Pillow does not read; open it in an image editor and "
            "save it again (as PNG, say)"
        )
    if head.lstrip().startswith(b"<") and b"<svg" in head:
        return "an SVG drawing (shapes, not pixels), which is not read: export it as PNG first"
    return "not in a format Pillow reads (PNG, JPEG, TIFF, BMP, GIF, WebP, ...)"


#: How an image file begins, by its format: one that begins so is that image, whatever else
#: its first bytes hold (a PNG's text chunk may quote "%PDF-"). WebP and HEIF/AVIF are told
#: by :func:`image_format`.
IMAGE_SIGNATURES: dict[str, tuple[bytes, ...]] = {
    "PNG": (b"\x89PNG\r\n\x1a\n",),
    "JPEG": (b"\xff\xd8\xff",),
    "TIFF": tuple(TIFF_MAGIC),
    "GIF": (b"GIF87a", b"GIF89a"),
    "BMP": (b"BM",),
    "JPEG 2000": (b"\x00\x00\x00\x0cjP  \r\n\x87\n", b"\xff\x4f\xff\x51"),
    "DCX": (b"\xb1\x68\xde\x3a",),
    "Photoshop": (b"8BPS",),
}
#: The ISO media "brands" (bytes 8-12, after ``ftyp``) of HEIF images, which Pillow reads
#: only with a plugin (pillow-heif).
HEIF_BRANDS = frozenset({b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1"})


def image_format(head: bytes) -> str | None:
    """The image format whose signature ``head`` (a file's first bytes) begins with, or
    None: a PDF, or no image at all, or a format without one (such as TGA)."""
    for name, signatures in IMAGE_SIGNATURES.items():
        if head.startswith(signatures):
            return name
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WebP"
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        return "AVIF" if brand in (b"avif", b"avis") else "HEIF" if brand in HEIF_BRANDS else None
    return None


# warnings.catch_warnings swaps the whole process's filters: one thread at a time.
_WARNINGS = threading.RLock()
_PILLOW = f"{Path(Image.__file__).parent}{os.sep}"


@contextmanager
def _pillow_warnings(prefix: str) -> Iterator[None]:
    """Pillow's warnings on the file ``prefix`` names, as it is opened, walked or turned:
    its decompression-bomb warning is dropped (our own limit decides, with an error that
    says what to do), the others (damaged EXIF data, say) said as our own warnings, which
    name the file. Where the file is refused, its error says enough. Other warnings given
    meanwhile (another thread's) are passed on as they came."""
    failed = True
    with _WARNINGS:
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")  # a warning given once before comes again
                yield
            failed = False
        finally:
            said = set()
            for warning in caught:
                if issubclass(warning.category, Image.DecompressionBombWarning):
                    continue
                if not warning.filename.startswith(_PILLOW):
                    warnings.warn_explicit(
                        warning.message, warning.category, warning.filename, warning.lineno
                    )
                elif not failed:
                    text = " ".join(str(warning.message).split()).rstrip(".")
                    if text not in said:
                        said.add(text)
                        logger.warning("%s%s", prefix, _in_our_words(text))


def _in_our_words(text: str) -> str:
    """A warning Pillow gave as it read a file, said for the file's owner."""
    if "EXIF" in text:
        return (
            f"its EXIF data is damaged ({text}): the image is read, but which way up it was "
            "taken may be lost; if it reads wrongly, turn it upright and save it again"
        )
    return (
        f"Pillow warns as it reads it: {text}; if it reads wrongly, open it in an image "
        "editor and save it again"
    )


#: PDF pages are drawn at this resolution: an A4 page is 3.9 million pixels, and a line of
#: handwriting (8 mm or more from line to line) stays over 60 pixels high.
PDF_DPI = 200
# PDFium is not safe to call from two threads at once.
_PDFIUM = threading.Lock()


#: What a PDF begins with (within its first 1,024 bytes).
PDF_HEADER = b"%PDF-"


def is_pdf(head: bytes) -> bool:
    """Whether a file whose first 1,024 bytes are ``head`` is a PDF: it begins with
    ``%PDF-``, or holds it further on (PDF readers allow bytes before it) and does not
    begin as an image does (whose metadata may quote ``%PDF-``: ``IMAGE_SIGNATURES``)."""
    if head.startswith(PDF_HEADER):
        return True
    return PDF_HEADER in head and image_format(head) is None


def _is_pdf(file: Path | io.BytesIO) -> bool:
    try:
        return is_pdf(_head(file))
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
        source = file if isinstance(file, Path) else file.getvalue()
        with _PDFIUM:
            try:
                self._document = pypdfium2.PdfDocument(source)
            except pypdfium2.PdfiumError:  # damaged, locked with a password, or no pages
                raise ImageError(f"{prefix}{_not_opened(source)}") from None
            try:
                count = len(self._document)
                if max_pages is not None and count > max_pages:
                    raise ImageError(_too_many_pages(prefix, max_pages))
                self.sizes = [self._size(index, prefix) for index in range(count)]
            except ImageError:
                self._close()
                raise

    def _size(self, index: int, prefix: str) -> tuple[int, int]:
        import pypdfium2

        try:
            page = self._document[index]
        except pypdfium2.PdfiumError as error:
            raise ImageError(
                f"{prefix}not a readable PDF: its page {index + 1} is damaged ({error}); open "
                "it in a PDF reader to check it, or save its pages as images (PNG or TIFF)"
            ) from None

        try:
            width, height = page.get_size()  # points: 72 to the inch
        finally:
            page.close()
        scale = PDF_DPI / 72
        return max(1, round(width * scale)), max(1, round(height * scale))

    def render(self, index: int, prefix: str, limit: int) -> np.ndarray:
        """Page ``index`` (from 0) drawn in grey; refused past ``limit`` pixels."""
        width, height = self.sizes[index]
        if width * height > limit:
            raise ImageError(_too_large(prefix, _pixels(width, height), limit, "page"))
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


def _not_opened(source: Path | bytes) -> str:
    """Why PDFium would not open ``source``. pypdfium2 refuses a PDF of no pages as if it
    had failed to load, naming the last error PDFium had (stale: "Success", or an earlier
    file's); PDFium's own API, asked again, tells the two apart. Called under ``_PDFIUM``."""
    import pypdfium2.raw as pdfium

    if isinstance(source, Path):
        document = pdfium.FPDF_LoadDocument(os.fsencode(source) + b"\0", None)
    else:
        document = pdfium.FPDF_LoadMemDocument64(source, len(source), None)
    if document:
        pdfium.FPDF_CloseDocument(document)
        return "a PDF with no pages: there is nothing in it to read"
    code = pdfium.FPDF_GetLastError()
    why = {
        pdfium.FPDF_ERR_PASSWORD: "it is locked with a password; open it with the password "
        "and save a copy without one first",
        pdfium.FPDF_ERR_SECURITY: "it is encrypted in a way PDFium cannot read; save a copy "
        "without encryption first",
    }.get(
        code,
        "it is damaged or cut short (PDFium cannot parse it); open it in a PDF reader to check "
        "it, or save its pages as images (PNG or TIFF)",
    )
    return f"not a readable PDF: {why}"


def _too_large(prefix: str, size: str, limit: int, what: str = "image") -> str:
    """Why an image (or a PDF's page) of ``size`` ("WxH pixels (N)") is refused past
    ``limit`` pixels, and what to do."""
    return (
        f"{prefix}the {what} is {size}: larger than {limit:,} pixels, the most read in "
        f"one image; crop it or scale it down first, or raise the limit: {RAISE_LIMIT}"
    )


def _pixels(width: int, height: int) -> str:
    return f"{width}x{height} pixels ({width * height:,})"


def _past_pillows_limit(prefix: str, error: Image.DecompressionBombError, max_pixels: int) -> str:
    """Why an image Pillow refused to open (past twice its ``MAX_IMAGE_PIXELS``) is not
    read: past ``max_pixels`` too, unless this program lowered Pillow's limit."""
    limit = 2 * (Image.MAX_IMAGE_PIXELS or 0)
    said = re.search(r"\((\d+) pixels\)", str(error))  # "Image size (N pixels) exceeds ..."
    pixels = int(said[1]) if said else None
    size = f"{pixels:,} pixels" if pixels is not None else f"more than {limit:,} pixels"
    if (pixels if pixels is not None else limit) > max_pixels:
        return _too_large(prefix, size, max_pixels)
    return (
        f"{prefix}the image is {size}, more than this program lets Pillow open ({limit:,}: "
        "twice PIL.Image.MAX_IMAGE_PIXELS); crop it or scale it down first"
    )


def _too_many_pages(prefix: str, max_pages: int) -> str:
    return (
        f"{prefix}holds more than {max_pages:,} pages, the most read at once: split it into "
        "smaller files"
    )


@contextmanager
def _read_errors(prefix: str, max_pixels: int) -> Iterator[None]:
    """Pillow's errors on opening or decoding a file read under ``max_pixels`` pixels an
    image, as ``ImageError``s that say why."""
    try:
        yield
    except Image.DecompressionBombError as error:  # too large for Pillow even to open
        raise ImageError(_past_pillows_limit(prefix, error, max_pixels)) from None
    except ImageError as error:
        if str(error).startswith(prefix):
            raise
        raise ImageError(f"{prefix}{error}") from None
    except PermissionError:  # an OSError too, and no sign of a damaged file
        raise ImageError(
            f"{prefix}not allowed to read it (permission denied); check who may read it "
            "(ls -l), or copy it somewhere you can read"
        ) from None
    except (OSError, ValueError, SyntaxError, EOFError, IndexError, TypeError) as error:
        # Pillow's decoders raise all of these on damaged files (a palette of the wrong
        # size, a truncated header) and ValueError on modes it cannot convert (LAB).
        raise ImageError(
            f"{prefix}the image is corrupt, truncated or in a mode that cannot be read "
            f"({error or type(error).__name__})"
        ) from None


#: Formats whose frames are the pages of a document (a scanner's or a fax's multi-page
#: TIFF, a fax's DCX). Other formats' frames are no pages: an animation's (GIF, WebP,
#: APNG), of which the first frame is read, or one photo's other views (MPO: a phone's
#: preview).
PAGED_FORMATS = frozenset({"TIFF", "DCX"})
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
    with _pillow_warnings(prefix):
        return _walk(image, prefix, max_pages, limit_error)


def _walk(image: Image.Image, prefix: str, max_pages: int | None, limit_error: bool) -> _PageWalk:
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
        kind = getattr(image, "tag_v2", {}).get(254, 0)  # a TIFF's; a DCX's images are pages
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
    if image.format in (*PAGED_FORMATS, "MPO"):
        return
    with _pillow_warnings(prefix):  # a GIF's next frame is read to tell
        animated = getattr(image, "is_animated", False)
    if animated:
        logger.warning(
            "%sis an animation (%s); only its first frame is read: frames are not pages",
            prefix,
            image.format,
        )


def page_count(source: ImageInput) -> int:
    """How many pages ``source`` has (:class:`Pages`): more than 1 only for a multi-page
    TIFF, a DCX or a PDF. Only the file's header and its pages' directories are read."""
    with Pages(source) as pages:
        return len(pages)


def may_hold_pages(source: str | Path | bytes) -> bool:
    """Whether ``source`` (a path, or a file's bytes) may hold several pages, a TIFF, a DCX
    or a PDF, told by its first bytes alone: any other image has one page, and is best
    opened only to be read (``load_image``). A file that cannot be read is none."""
    try:
        head = _head(_file_of(source)[0])
    except (ImageError, OSError):  # reading it says why, as for any image
        return False
    return is_pdf(head) or image_format(head) in PAGED_FORMATS


def _frame_pixels(image: Image.Image, frame: int) -> int:
    image.seek(frame)
    return image.width * image.height


def _frame_grey(image: Image.Image, frame: int, prefix: str, limit: int | None) -> np.ndarray:
    """Frame ``frame`` of ``image`` decoded to uint8 grey, upright as its orientation says;
    refused past ``limit`` pixels before it is decoded (None: no limit, for an image
    already in memory, given as a Pillow image)."""
    if image.tell() != frame:
        with _pillow_warnings(prefix):
            image.seek(frame)
    if limit is not None and image.width * image.height > limit:
        raise ImageError(_too_large(prefix, _pixels(image.width, image.height), limit))
    image.load()
    return to_grey(_upright(image, prefix))


def _upright(image: Image.Image, prefix: str) -> Image.Image:
    """``image`` turned as its EXIF orientation says: phones store a photo as the sensor
    saw it, and say in EXIF how to turn it."""
    with _pillow_warnings(prefix):
        return ImageOps.exif_transpose(image)


class Pages:
    """The pages of an image, to read one at a time: a multi-page TIFF (what scanners and
    fax machines write), a DCX (a fax's multi-page PCX) or a PDF (drawn at ``PDF_DPI``; it
    needs the optional ``pdf`` extra) has several, any other image one (an animation's
    first frame).

    Opening reads only the file's header and its pages' directories, and checks them
    against ``max_pages`` and ``max_pixels`` (all pages' pixels together; ``None``: no
    limit), so that a file of 10,000 tiny pages, or of a few huge blank ones (a few kB
    compressed), is refused before any page is decoded; each page is then held to
    ``max_image_pixels`` (``MAX_PIXELS`` by default) as an image is. :meth:`load` decodes
    one page. A file cut short or damaged after its first page keeps the pages before the
    damage: loading the next one says why it and any after it are lost. A path's file
    stays open until :meth:`close`: use it in a ``with`` block. A Pillow image's frames
    are its pages if it is a TIFF; it is left at the frame it was at.
    """

    def __init__(
        self,
        source: ImageInput,
        max_pages: int | None = None,
        max_pixels: int | None = None,
        max_image_pixels: int | None = None,
    ) -> None:
        self.max_image_pixels = image_pixel_limit(max_image_pixels)
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
                self._image, self._owned = _open(file, prefix, self.max_image_pixels), True
            try:
                with _read_errors(prefix, self.max_image_pixels):
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
                return _as_read(
                    self._pdf.render(self._frames[number - 1], prefix, self.max_image_pixels)
                )
            if self._image is None:
                raise ImageError("its file is closed: read its pages before closing it")
            frame = self._frames[number - 1]
            if frame == DAMAGED:
                raise ImageError(f"{self._damage}: this page and any after it cannot be read")
            with _read_errors(prefix, self.max_image_pixels):
                if number == 1:  # said as it is read: counting its pages reads no frame
                    _warn_if_animated(self._image, prefix)
                limit = self.max_image_pixels if self._owned else None
                return _as_read(_frame_grey(self._image, frame, prefix, limit))
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
