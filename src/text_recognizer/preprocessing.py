"""Turn any image into what the models were trained on.

Training data, the real evaluation sets and users' images all go through these same
functions, so a model never sees a framing or polarity at test time that it did not see
in training. ``emnist_style`` reproduces the conversion that made EMNIST from NIST
Special Database 19 (Cohen et al., 2017, "EMNIST: an extension of MNIST to handwritten
letters", section II-A): blur with a Gaussian of sigma 1, extract the region of interest
around the ink, centre it in a square frame keeping its aspect ratio, pad by 2 pixels,
downsample to 28x28 with bicubic interpolation and stretch the intensities to 0..255.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
from PIL import Image

from text_recognizer.errors import ImageError
from text_recognizer.images import to_grey

# EMNIST worked on 128x128 NIST scans; we scale every region of interest to that frame so
# the sigma-1 blur and the 2-pixel pad mean the same thing whatever the input resolution.
EMNIST_FRAME = 128
EMNIST_PAD = 2
EMNIST_SIGMA = 1.0
# A pixel is ink when it is brighter than this fraction of the brightest ink: low enough
# to keep thin, faint strokes, high enough to ignore paper texture and JPEG noise.
INK_FRACTION = 0.25
# Below this contrast (grey levels between background and brightest ink) there is nothing
# to read: a blank page, a flat colour, a fully transparent image.
MIN_CONTRAST = 16


#: An edge row or column is frame, not paper, when this share of its pixels is far from the
#: paper's level (half the way to the image's farther extreme or more).
FRAME_SHARE = 0.9


def trim_frame(grey: np.ndarray) -> tuple[np.ndarray, int, int]:
    """Cut away a frame around the paper; returns the rest and how many rows and columns
    were cut from the top and the left.

    A scanner's dark edge or the desk around a photographed page makes the image's border
    look like its background, and the paper like ink: a 1-pixel dark frame took the bundled
    model from CER 0.05 to 0.21 on the sample lines, and a page on a dark desk was read as
    one line. Edge rows, then edge columns, are cut while ``FRAME_SHARE`` of their pixels
    lie far from the paper's level (the image's median: paper is most of a page or line).
    A row of writing is far from that; a frame across a tilted photo's corner is not cut
    (a page's is: :func:`on_the_sheet`).
    """
    grey = to_grey(grey)
    paper = float(np.median(grey))
    reach = max(float(grey.max()) - paper, paper - float(grey.min()))
    far = np.abs(grey.astype(np.float32) - paper) > max(reach / 2, MIN_CONTRAST)
    rows = np.flatnonzero(far.mean(axis=1) < FRAME_SHARE)
    if len(rows) == 0:
        return grey, 0, 0
    top, bottom = int(rows[0]), int(rows[-1]) + 1
    cols = np.flatnonzero(far[top:bottom].mean(axis=0) < FRAME_SHARE)
    if len(cols) == 0:
        return grey, 0, 0
    left, right = int(cols[0]), int(cols[-1]) + 1
    # A frame's edge is soft where the image was scaled or blurred: the rows or columns
    # between desk and paper are neither, and were left as a bar of "ink" along the page.
    cut = (top > 0, bottom < grey.shape[0], left > 0, right < grey.shape[1])
    edge = max(2, int(FRAME_EDGE_REACH * max(grey.shape)))  # a blur's width, either way
    top, bottom = _past_frame_edge(grey[:, left:right], top, bottom, cut[:2], edge)
    left, right = _past_frame_edge(grey[top:bottom].T, left, right, cut[2:], edge)
    return grey[top:bottom, left:right], top, left


#: A desk round a sheet that lies crooked (or small) in a photo: the darker of the image's
#: two levels (Otsu's) holds at least this share of its outer ring...
SHEET_RING = 0.5
#: ...and the brighter one a solid blob (ink's gaps in it closed) of at least this share
#: of the image, filling at least ``SHEET_SOLIDITY`` of its convex hull (a sheet is convex;
#: the bright letters of a dark board are not).
SHEET_AREA = 0.05
SHEET_SOLIDITY = 0.8
#: ...whose own pixels (before the gaps were closed) are at least this share of it: paper
#: bears far less ink, and bright strokes closed into a bar are mostly gaps.
SHEET_PAPER = 0.75
#: The sheet is found on the image shrunk to this longer side: its outline, not its detail.
SHEET_SIDE = 256
#: Past the sheet's outline (the middle of its soft edge) this share of the image's
#: shorter side is desk too: the rest of the edge.
SHEET_EDGE = 0.02


def trim_page(grey: np.ndarray) -> tuple[np.ndarray, int, int]:
    """:func:`trim_frame` for a page: the sheet found first (:func:`on_the_sheet`), then
    its frame's rows and columns cut; the rest, and the rows and columns cut from the top
    and the left. Lines cut from a page, characters and lone lines are only trimmed: a
    line of bright ink closed into a bar looks much like a sheet."""
    grey, sheet_top, sheet_left = on_the_sheet(to_grey(grey))
    rest, top, left = trim_frame(grey)
    return rest, sheet_top + top, sheet_left + left


def on_the_sheet(grey: np.ndarray) -> tuple[np.ndarray, int, int]:
    """The sheet of paper in ``grey`` where a desk lies round it and crosses the edge
    rows and columns (:func:`trim_frame` cuts only rows and columns wholly desk): cut to
    the sheet's box, the desk left in it (a tilted sheet's corners) given the level of the
    paper nearest it; and the rows and columns cut from the top and the left. A photo of a
    notebook page on a desk, tilted 3 degrees, read at CER 0.99: the desk was the
    background, and the whole sheet ink."""
    hull = _sheet_outline(grey)
    if hull is None:
        return grey, 0, 0
    outline = np.zeros(grey.shape, np.uint8)
    cv2.fillPoly(outline, [hull], 1)
    edge = max(1, round(SHEET_EDGE * min(grey.shape)))
    sheet = cv2.erode(outline, np.ones((2 * edge + 1, 2 * edge + 1), np.uint8))
    rows, cols = np.flatnonzero(sheet.any(axis=1)), np.flatnonzero(sheet.any(axis=0))
    if len(rows) == 0:
        return grey, 0, 0
    top, left = int(rows[0]), int(cols[0])
    box = (slice(top, int(rows[-1]) + 1), slice(left, int(cols[-1]) + 1))
    grey, sheet = grey[box], sheet[box]
    if sheet.all():
        return grey.copy(), top, left
    # Each desk pixel takes the level of the sheet's nearest pixel: the paper's own level
    # there, under uneven light too.
    _, nearest = cv2.distanceTransformWithLabels(
        (sheet == 0).astype(np.uint8), cv2.DIST_L2, 3, labelType=cv2.DIST_LABEL_PIXEL
    )
    levels = np.zeros(int(nearest.max()) + 1, grey.dtype)
    on = sheet.astype(bool)
    levels[nearest[on]] = grey[on]
    return levels[nearest], top, left


def _sheet_outline(grey: np.ndarray) -> np.ndarray | None:
    """The convex outline (OpenCV points, in ``grey``'s pixels) of a sheet of paper lying
    on a darker desk that fills most of the image's edge, or None."""
    scale = min(1.0, SHEET_SIDE / max(grey.shape))
    small = shrunk_to(grey, SHEET_SIDE)
    if min(small.shape) < 8:
        return None
    split, _ = cv2.threshold(small, 0, 1, cv2.THRESH_BINARY_INV + cv2.THRESH_OTSU)
    edge = np.concatenate([small[0], small[-1], small[:, 0], small[:, -1]])
    if (edge <= split).mean() < SHEET_RING:
        return None
    # Halfway between the desk and the paper's typical level: Otsu's split between the two
    # falls inside the paper where the light on it is uneven, and cut its dim side off.
    paper = float(np.median(small[small > split]))
    dark = (small < (float(np.median(edge)) + paper) / 2).astype(np.uint8)
    size = max(3, min(small.shape) // 25) | 1  # wider than a stroke: the ink's gaps close
    bright = cv2.morphologyEx(dark ^ 1, cv2.MORPH_CLOSE, np.ones((size, size), np.uint8))
    count, labels, stats, _ = cv2.connectedComponentsWithStats(bright, connectivity=8)
    if count < 2:
        return None
    largest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    area = float(stats[largest, cv2.CC_STAT_AREA])
    blob = labels == largest
    if area < SHEET_AREA * bright.size or (dark[blob] == 0).mean() < SHEET_PAPER:
        return None  # small, or mostly the gaps closed: bright strokes (a line of bright ink)
    contours, _ = cv2.findContours(
        blob.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE
    )
    hull = cv2.convexHull(max(contours, key=cv2.contourArea))
    if area < SHEET_SOLIDITY * max(cv2.contourArea(hull), 1.0):
        return None
    return np.rint((hull.astype(np.float64) + 0.5) / scale - 0.5).astype(np.int32)


#: Rows (columns) of a frame's soft edge are cut while their level (median) lies this far
#: from the paper's just inside them (the median level of the next rows inwards, up to
#: this share of the image's longer side), up to that many rows.
FRAME_EDGE_STEP = MIN_CONTRAST
FRAME_EDGE_REACH = 0.05


def _past_frame_edge(
    grey: np.ndarray, start: int, end: int, cut: tuple[bool, bool], reach: int
) -> tuple[int, int]:
    """``start`` and ``end`` (rows of ``grey``) moved inwards past a frame's soft edge, on
    each side where a frame was cut (``cut``): the edge's rows are darker (or lighter) than
    the paper a little further in. Compared with the paper, not with the next row: a
    blurred edge (a photo's focus) fades over many rows, each a small step from the next,
    and its last rows, left, made a bar of ink round a character (its box the whole
    image: 10 of the 11 sample characters misread); the light across a page changes too
    slowly to differ over ``reach`` rows."""
    level = np.median(grey[start:end], axis=1)  # each row's level, from ``start``
    first, last = 0, len(level) - 1

    def far(row: int, inwards: slice) -> bool:
        return bool(abs(level[row] - np.median(level[inwards])) > FRAME_EDGE_STEP)

    if cut[0]:
        while first < min(reach, last) and far(first, slice(first + 1, first + 1 + reach)):
            first += 1
    if cut[1]:
        while last > max(len(level) - 1 - reach, first) and far(
            last, slice(max(first, last - reach), last)
        ):
            last -= 1
    return start + first, start + last + 1


def normalize_polarity(grey: np.ndarray) -> np.ndarray:
    """Return a uint8 copy with bright ink on a dark background, whatever the input's polarity.

    The background is the median of the image's outer border (ink rarely fills the
    border); ink is whichever extreme lies farther from it. That also handles grey
    paper, where a fixed "is the border brighter than 127" rule would fail.
    """
    grey = to_grey(grey)
    background = _border_median(grey)
    # A 3x3 median ignores isolated noise pixels yet keeps strokes, however little ink there is.
    smooth = cv2.medianBlur(grey, 3) if min(grey.shape) >= 3 else grey
    darkest, brightest = float(smooth.min()), float(smooth.max())
    if background - darkest > brightest - background:
        return 255 - grey
    return grey.copy()


def _border_median(grey: np.ndarray) -> float:
    """The median of the image's outer ring (5% of the shorter side, at least 1 pixel)."""
    height, width = grey.shape
    ring = max(1, min(height, width) // 20)
    border = np.concatenate(
        [grey[:ring].ravel(), grey[-ring:].ravel(), grey[:, :ring].ravel(), grey[:, -ring:].ravel()]
    )
    return float(np.median(border))


#: The paper's level is estimated over windows this share of a line image's height (of a
#: page's shorter side: :func:`~text_recognizer.segmentation.segment_lines`). Smaller
#: windows lie wholly inside the strokes of bold capitals and take them for paper.
PAPER_WINDOW = 0.5
# Windows are worked on at most this many pixels wide (the image is shrunk to fit).
PAPER_WORK = 15
#: Paper is uneven when its level varies by this share of the ink's contrast (5th to
#: 95th percentile); evenly lit images keep one level (their median).
PAPER_UNEVEN = 0.3


def subtract_paper(ink: np.ndarray, window: int | None = None) -> np.ndarray:
    """Bright-ink float image -> ink above the paper's *local* level, paper at 0.

    Photographs are lit unevenly: a page darker at one side or under a shadow, where a
    single paper level for the whole image takes the dim paper for ink (a lighting
    gradient across a page took it from CER 0.05 to 0.99: no line was found). The paper
    is what a grey-level opening over ``window``-pixel squares (default ``PAPER_WINDOW``
    of the shorter side) leaves (strokes, far thinner, vanish), smoothed; where it varies
    by ``PAPER_UNEVEN`` of the ink's contrast or more, it is subtracted, and then the
    median of what remains.
    """
    height, width = ink.shape
    window = max(3, window or int(PAPER_WINDOW * min(height, width)))
    step = max(1, -(-window // PAPER_WORK))
    small = ink
    if step > 1:
        small = cv2.resize(
            ink, (-(-width // step), -(-height // step)), interpolation=cv2.INTER_AREA
        )
    size = max(3, window // step) | 1
    kernel = np.ones((size, size), np.uint8)
    paper = cv2.blur(cv2.morphologyEx(small, cv2.MORPH_OPEN, kernel), (size, size))
    if step > 1:
        paper = cv2.resize(paper, (width, height), interpolation=cv2.INTER_LINEAR)
    low, high = np.percentile(paper, [5, 95])
    level = float(np.median(ink))
    contrast = float(ink.max()) - level
    # Paper rising above the median, the level subtracted, by half that share is uneven
    # too: paper burnt white over part of a photo puts the median at that white, and the
    # rest, rising the whole range above it, passed for ink.
    if high - low < PAPER_UNEVEN * contrast and high - level < PAPER_UNEVEN / 2 * contrast:
        # Evenly lit: one level for the whole image, the median (the opening sits at the
        # paper's darkest grain, and following the grain costs accuracy on clean scans).
        return np.clip(ink - level, 0, None)
    # Only the paper's unevenness is taken out; the image's median is then its level, as
    # for evenly lit paper (where ink is dense it lies above the paper, and subtracting it
    # cleans the haze around bold strokes).
    flat = ink - (paper - float(np.median(paper)))
    return np.clip(flat - float(np.median(flat)), 0, None)


def _ink_above_background(grey: np.ndarray) -> np.ndarray:
    # Whichever is darker: a bold glyph can cover most of a tight crop, or touch its border.
    background = min(float(np.median(grey)), _border_median(grey))
    return np.clip(grey - background, 0.0, None)


def ink_contrast(grey_bright_ink: np.ndarray) -> float:
    """How far the brightest ink stands above the background, in grey levels: below
    ``MIN_CONTRAST`` an image holds nothing to read (:func:`emnist_style` refuses it)."""
    return float(_ink_above_background(to_grey(grey_bright_ink).astype(np.float32)).max())


def emnist_style(grey_bright_ink: np.ndarray, size: int = 28) -> np.ndarray:
    """EMNIST's conversion: uint8 bright-ink image of any size -> uint8 ``[size, size]``.

    The ink's bounding box (found after subtracting the background level) is scaled so
    its longer side spans a 128-pixel frame less EMNIST's 2-pixel pad, centred with its
    aspect ratio kept, blurred (sigma 1), and downsampled with antialiased bicubic
    interpolation, as MATLAB's ``imresize`` did for EMNIST. Because it crops to the ink,
    a lowercase 'o' and a capital 'O' come out the same size, exactly as in EMNIST.

    Raises ``ImageError`` when there is no ink to find (a blank or flat image).
    """
    ink = _ink_above_background(to_grey(grey_bright_ink).astype(np.float32))
    peak = float(ink.max())
    if peak < MIN_CONTRAST:
        raise ImageError(
            "the image is blank: no ink brighter than the background was found "
            f"(contrast {peak:.0f} grey levels, need {MIN_CONTRAST}); pass an image that "
            "shows a character, with bright ink on a dark background (see normalize_polarity)"
        )
    rows, cols = np.nonzero(_without_specks(ink > INK_FRACTION * peak))
    roi = ink[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1] * (255.0 / peak)

    inner = EMNIST_FRAME - 2 * EMNIST_PAD
    scale = inner / max(roi.shape)
    new_h = max(1, round(roi.shape[0] * scale))
    new_w = max(1, round(roi.shape[1] * scale))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
    scaled = cv2.resize(roi, (new_w, new_h), interpolation=interpolation)

    frame = np.zeros((EMNIST_FRAME, EMNIST_FRAME), dtype=np.float32)
    top = (EMNIST_FRAME - new_h) // 2
    left = (EMNIST_FRAME - new_w) // 2
    frame[top : top + new_h, left : left + new_w] = np.clip(scaled, 0.0, 255.0)
    blurred = cv2.GaussianBlur(frame, (0, 0), EMNIST_SIGMA)

    small = Image.fromarray(blurred).resize((size, size), Image.Resampling.BICUBIC)
    out = np.clip(np.asarray(small), 0.0, None)
    top_value = float(out.max())
    if top_value <= 0.0:  # a speck smaller than one output pixel
        raise ImageError("the image's ink is too small to read; pass a larger crop")
    return np.clip(np.rint(out * (255.0 / top_value)), 0, 255).astype(np.uint8)


#: A blob of a character's ink mask with under this share of its largest blob's pixels is
#: a speck (dust, sensor noise), left out of the character's box; an i's dot is far larger.
CHAR_SPECK = 0.02


def _without_specks(mask: np.ndarray) -> np.ndarray:
    """``mask`` less its specks (``CHAR_SPECK``): one dark pixel of noise in a corner
    stretched the box to the whole image, and the character shrank in it (every sample
    character misread under sensor noise of sigma 20 grey levels)."""
    count, labels, stats, _ = cv2.connectedComponentsWithStats(
        mask.astype(np.uint8), connectivity=8
    )
    areas = stats[1:, cv2.CC_STAT_AREA]
    if count <= 2:
        return mask
    specks = np.concatenate([[False], areas < CHAR_SPECK * areas.max()])
    return mask & ~specks[labels] if specks.any() else mask


def prepare_line(
    grey: np.ndarray, height: int, deskew: bool = True, deslant: bool = True
) -> np.ndarray:
    """Bright-ink grey line -> float32 ``[height, W]`` cropped to the ink, aspect kept.

    With ``deskew`` a tilted line is first turned level (:func:`skew_angle`): a line's
    bounding box grows with its tilt, and the text would shrink once the box is resized
    to ``height`` (the shipped model read test lines tilted 2 degrees at CER 0.11
    instead of 0.06). Marks far above or below the text are dropped for the same reason
    (:func:`drop_stray_marks`), before levelling too: a far mark sways the tilt estimate;
    ruled lines (:func:`erase_rules`) are erased before either, and before that a frame
    round the paper is cut away (:func:`trim_frame`) and the paper's level taken out
    (:func:`subtract_paper`: locally, where a photo's light is uneven).
    With ``deslant`` the strokes' lean (:func:`slant`) is then sheared to ``SLANT_TARGET``:
    writers lean anywhere from left to far right, and the model reads best near the lean
    of its training lines.
    """
    return prepare_line_mapped(grey, height, deskew, deslant)[0]


def prepare_line_mapped(
    grey: np.ndarray, height: int, deskew: bool = True, deslant: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`prepare_line`, and the 3 x 3 affine matrix that takes a point of ``grey``
    to the prepared line (pixel centres at integers): inverted, it says where a stretch
    of the prepared line (a word the model read there) lies in ``grey``."""
    rest, top, left = trim_frame(grey)
    ink = subtract_paper(normalize_polarity(rest).astype(np.float32))
    mapping = translation(-left, -top)
    crop, mapping = _crop_to_ink(ink, mapping)
    _check_line_shape(crop)  # before the costly steps: a page of rules is hundreds of these
    # Rules first: a rule would pass for the line's core band, and level itself, not the text.
    unruled = erase_rules(crop, max(crop.shape[1] // 2, RULE_SPAN_HEIGHTS * crop.shape[0]))
    if unruled is not crop:
        crop, mapping = _crop_to_ink(unruled, mapping)
    crop, mapping = _drop_stray_marks_and_crop(crop, mapping)
    if deskew:
        angle = skew_angle(crop)
        if angle:
            turn = as_3x3(rotation(crop.shape, angle)[0])
            crop, mapping = _crop_to_ink(rotate(crop, angle), turn @ mapping)
            crop, mapping = _drop_stray_marks_and_crop(crop, mapping)
    if deslant:
        lean = slant(crop)
        if abs(lean - SLANT_TARGET) > SLANT_TOLERANCE:
            lean_matrix = as_3x3(shear_matrix(crop.shape, SLANT_TARGET - lean))
            crop, mapping = _crop_to_ink(shear(crop, SLANT_TARGET - lean), lean_matrix @ mapping)
    _check_line_shape(crop)
    crop = crop / float(crop.max())
    width = max(height // 2, round(crop.shape[1] * height / crop.shape[0]))
    interpolation = cv2.INTER_AREA if crop.shape[0] > height else cv2.INTER_CUBIC
    line = np.clip(cv2.resize(crop, (width, height), interpolation=interpolation), 0, 1)
    return line, resize_matrix(crop.shape, (height, width)) @ mapping


#: Ink fewer rows high than this holds nothing to read: a rule's remains, specks.
MIN_LINE_INK_HEIGHT = 3
#: A line's ink box no wider than this many times its height: ~250 characters of a
#: typical hand, wider than any page's line. A wider one is a rule, a page's lines side by
#: side or a mistake, and would cost time and memory in proportion (a 6 KB image of ruled
#: rows once took 23 s and 1.9 GB, each rule scaled to a line tens of thousands of pixels long).
MAX_LINE_ASPECT = 128


def _check_line_shape(crop: np.ndarray) -> None:
    """Refuse ink (cropped with ``ink_box``'s margin) no line of writing can be."""
    height, width = crop.shape
    rows = np.flatnonzero(crop.max(axis=1) > INK_FRACTION * float(crop.max()))
    high = rows[-1] - rows[0] + 1
    if high < MIN_LINE_INK_HEIGHT:
        raise ImageError(
            f"the ink is only {high} pixel{'s' if high > 1 else ''} high: too little to "
            "read as a line of writing"
        )
    if width > MAX_LINE_ASPECT * height:
        raise ImageError(
            f"the ink is {width}x{height} pixels, more than {MAX_LINE_ASPECT} times as wide as "
            "high: too long for one line of writing (a rule, or lines side by side?); "
            "cut it into shorter pieces"
        )


def resize_matrix(source: tuple[int, int], target: tuple[int, int]) -> np.ndarray:
    """The 3 x 3 matrix of ``cv2.resize`` from ``source`` to ``target`` (rows, columns)."""
    sx, sy = target[1] / source[1], target[0] / source[0]
    return np.array([[sx, 0, (sx - 1) / 2], [0, sy, (sy - 1) / 2], [0, 0, 1]])


def translation(dx: float, dy: float) -> np.ndarray:
    """The 3 x 3 matrix that moves points by ``(dx, dy)``."""
    return np.array([[1.0, 0, dx], [0, 1, dy], [0, 0, 1]])


def as_3x3(matrix: np.ndarray) -> np.ndarray:
    """A 2 x 3 OpenCV affine matrix as 3 x 3, to compose by ``@`` and invert."""
    return np.vstack([matrix, [0.0, 0.0, 1.0]])


def map_points(
    matrix: np.ndarray, points: Sequence[tuple[float, float]], size: tuple[int, int]
) -> list[tuple[int, int]]:
    """``points`` through the 3 x 3 ``matrix``, rounded to pixels inside an image of
    ``size`` (width, height)."""
    moved = np.asarray(points, np.float64) @ matrix[:2, :2].T + matrix[:2, 2]
    clipped = np.clip(np.rint(moved), 0, np.array(size) - 1)
    return [(int(x), int(y)) for x, y in clipped]


def _drop_stray_marks_and_crop(
    crop: np.ndarray, mapping: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    kept = drop_stray_marks(crop)
    return (crop, mapping) if kept is crop else _crop_to_ink(kept, mapping)  # the box shrank


def _crop_to_ink(ink: np.ndarray, mapping: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if float(ink.max()) < MIN_CONTRAST:
        raise ImageError("the image is blank: no ink found")
    rows, cols = ink_box(ink)
    return ink[rows, cols], translation(-cols.start, -rows.start) @ mapping


def ink_box(ink: np.ndarray) -> tuple[slice, slice]:
    """Rows and columns of the ink's bounding box plus a margin of a tenth of its height.

    ``ink`` is background-free (paper at 0, any scale) and not blank. Training
    augmentations that re-crop a line (``PageCuts``) use it too, to crop as inference does.
    """
    rows, cols = np.nonzero(ink > INK_FRACTION * float(ink.max()))
    margin = max(2, (rows.max() - rows.min()) // 10)
    top, bottom = max(0, rows.min() - margin), min(ink.shape[0], rows.max() + margin + 1)
    left, right = max(0, cols.min() - margin), min(ink.shape[1], cols.max() + margin + 1)
    return slice(top, bottom), slice(left, right)


# Ink lying wholly farther than this many core heights above or below a line's core band
# is not part of the line: ascenders, descenders and i-dots stay well within one.
STRAY_REACH = 1.0


#: A line's core band (its letters' bodies, between ascenders and descenders): the rows
#: holding at least this share of the densest row's ink.
CORE_SHARE = 0.35


def baseline_row(mask: np.ndarray) -> int:
    """The lowest row of a line's core band in its ink ``mask``: where its letters stand."""
    profile = mask.sum(axis=1)
    return int(np.flatnonzero(profile >= CORE_SHARE * profile.max())[-1])


def drop_stray_marks(ink: np.ndarray) -> np.ndarray:
    """Erase ink blobs lying wholly far above or below the line's core band.

    A loosely cut line can hold a mark well outside the text (a stroke of another line, a
    speck): cropped to all the ink, the text shrinks in the frame (one short mark half a
    line above took test lines from CER 0.05 to 0.24). The core band is the rows holding
    at least ``CORE_SHARE`` of the densest row's ink; a connected blob is dropped when it
    ends more than ``STRAY_REACH`` core heights above the band or starts that far below it.
    """
    mask = (ink > INK_FRACTION * float(ink.max())).astype(np.uint8)
    profile = mask.sum(axis=1)
    core = np.nonzero(profile >= CORE_SHARE * profile.max())[0]
    reach = STRAY_REACH * (core[-1] - core[0] + 1)
    _, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    tops = stats[:, cv2.CC_STAT_TOP]
    bottoms = tops + stats[:, cv2.CC_STAT_HEIGHT] - 1
    stray = (bottoms < core[0] - reach) | (tops > core[-1] + reach)
    stray[0] = False  # label 0 is the background
    if not stray.any():
        return ink
    kept = ink.copy()
    kept[stray[labels]] = 0
    return kept


#: A ruled line spans at least this share of the image's width...
RULE_SPAN = 0.5
#: ...and at least this many times the image's height when reading a single line, so the
#: joined strokes along a cursive word's baseline are never taken for one.
RULE_SPAN_HEIGHTS = 5
# Steepest rule (rise over run) and the most pixels a rule's own stroke may be thick.
RULE_MAX_SLOPE = 0.07
RULE_MAX_THICKNESS = 8
#: The shortest level run of a rule's pixels given to the Hough transform (< 1 / RULE_MAX_SLOPE).
RULE_MIN_RUN = 9


def erase_rules(ink: np.ndarray, min_length: int | None = None) -> np.ndarray:
    """Erase ruled lines (notebook paper, a form's lines) from background-free ink.

    A rule is a straight, nearly level run of ink at least ``min_length`` long (default:
    ``RULE_SPAN`` of the width), found by a probabilistic Hough transform that bridges
    no gap wider than two pixels (a text line's gaps between letters and words are
    wider). Its rows, faint antialiased edges included, are erased except where a stroke
    crosses it: ink, however light, running on vertically beyond the rule's own thickness
    is kept. Returns ``ink`` itself when there is no rule. A rule through the text took
    the bundled model from CER 0.05 to 0.27 on the sample lines (0.06 erased).
    """
    length = min_length or int(RULE_SPAN * ink.shape[1])
    if length < 16 or length > ink.shape[1] or float(ink.max()) < MIN_CONTRAST:
        return ink  # no room for a rule, or no ink (a blank page's mask would be its noise)
    mask = (ink > INK_FRACTION * float(ink.max())).astype(np.uint8)
    if not _has_long_row(mask, length):
        return ink  # the Hough transform costs several times the rest of prepare_line
    # Only ink in long level runs can belong to a rule (one steps a row at most every 1 /
    # RULE_MAX_SLOPE pixels): the transform's cost grows with the pixels it is given, and a
    # page of noise specks took it 30 s.
    level = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, np.ones((1, 3), np.uint8))
    level = np.minimum(
        cv2.morphologyEx(level, cv2.MORPH_OPEN, np.ones((1, RULE_MIN_RUN), np.uint8)), mask
    )
    centre = np.zeros_like(mask)
    faint = (ink > MIN_CONTRAST).astype(np.uint8)  # light strokes may cross a rule too
    thickness = extent = 0
    for x1, y1, x2, y2 in _straight_runs(level, length).tolist():
        if abs(y2 - y1) > RULE_MAX_SLOPE * abs(x2 - x1):
            continue
        thick = _rule_thickness(mask, (x1, y1, x2, y2))
        if thick is not None:
            # A rule runs on where it grows too faint for the mask (a photo's dim side).
            slope = (y2 - y1) / max(1, x2 - x1)
            far = ink.shape[1] - 1
            ends = ((0, round(y1 - slope * x1)), (far, round(y1 + slope * (far - x1))))
            cv2.line(centre, *ends, 1)
            # How tall its faint edges make it: a scaled or blurred rule's are several
            # pixels each, and a run of ink only that tall is the rule, not a stroke.
            extent = max(extent, _vertical_run(faint, (x1, y1, x2, y2), RULE_FAINT_REACH * thick))
            thickness = max(thickness, thick)
    if not centre.any():
        return ink
    # The rule's rows (with its faint, antialiased edges), less the strokes that cross it
    # (ink running on vertically further than the rule and its faint edges are tall).
    rule = cv2.dilate(centre, np.ones((thickness + 4, 1), np.uint8)).astype(bool)
    tall = max(thickness, extent) + 3
    crossing = cv2.morphologyEx(faint, cv2.MORPH_OPEN, np.ones((tall, 1), np.uint8))
    erased = rule & ~cv2.dilate(crossing, np.ones((1, 3), np.uint8)).astype(bool)
    out = ink.copy()
    out[erased] = 0
    return out


#: The most pixels the Hough transform is given: a mask with more (a page of hundreds of
#: rules, 30 s at 4.5 M pixels) is searched narrowed, and the runs found stretched back.
HOUGH_BUDGET = 500_000


def _straight_runs(level: np.ndarray, length: int) -> np.ndarray:
    """``[N, 4]`` segments ``(x1, y1, x2, y2)``: straight runs of ``level``'s pixels at least
    ``length`` long, bridging gaps of two pixels (a probabilistic Hough transform).

    Past ``HOUGH_BUDGET`` pixels the mask is narrowed, not shrunk both ways: rows keep their
    resolution, so a nearly level run comes back at its rows, only its ends' columns rounded.
    """
    step = -(-int(level.sum()) // HOUGH_BUDGET)
    height, width = level.shape
    full = level
    if step > 1:
        narrow = cv2.resize(level * 255, (-(-width // step), height), interpolation=cv2.INTER_AREA)
        # A cell is on where most of it is: a rule fills its row, sparse strokes do not.
        level, length = (narrow >= 128).astype(np.uint8), max(2, length // step)
    found = cv2.HoughLinesP(
        level,
        1,
        np.pi / 720,
        threshold=length * 3 // 4,
        minLineLength=length,
        maxLineGap=2 if step == 1 else 1,
    )
    runs = np.zeros((0, 4), np.int64) if found is None else found.reshape(-1, 4).astype(np.int64)
    if step > 1:
        runs[:, [0, 2]] = np.clip(runs[:, [0, 2]] * step + step // 2, 0, width - 1)
        runs = np.array([_refit(full, run) for run in runs], np.int64).reshape(-1, 4)
    return runs


def _refit(level: np.ndarray, run: np.ndarray, reach: int = 3) -> list[int]:
    """A run found on a narrowed mask, fitted again to the full mask's pixels within
    ``reach`` rows of it, first along the run, then along the whole width (the rule it
    belongs to: pieces of one rule then agree); its slope was measured in coarse columns."""
    x1, y1, x2, y2 = (int(v) for v in run)
    if x2 < x1:
        x1, y1, x2, y2 = x2, y2, x1, y1
    line = (y1, (y2 - y1) / max(1, x2 - x1), x1)  # (row at x0, slope, x0)
    for start, end in ((x1, x2), (0, level.shape[1] - 1)):
        row, slope, x0 = line
        ends = (row + slope * (start - x0), row + slope * (end - x0))
        top = max(0, int(min(ends)) - reach)
        ys, xs = np.nonzero(level[top : int(max(ends)) + reach + 2, start : end + 1])
        ys, xs = ys + top, xs + start
        near = np.abs(ys - (row + slope * (xs - x0))) <= reach
        if near.sum() < 2 or np.ptp(xs[near]) == 0:
            break
        fitted_slope, offset = np.polyfit(xs[near], ys[near], 1)
        line = (offset, fitted_slope, 0)
    row, slope, x0 = line
    return [x1, round(row + slope * (x1 - x0)), x2, round(row + slope * (x2 - x0))]


def _rule_thickness(mask: np.ndarray, segment: tuple[int, int, int, int]) -> int | None:
    """How many pixels thick the ink along ``segment`` is (the median vertical run through
    it), or None if it is no rule: broken in more than a tenth of its columns, or thicker
    than ``RULE_MAX_THICKNESS`` or a tenth of the image's height (a row through the
    middle of joined lowercase writing passes the Hough test at a line's scale, but runs
    through its letters' strokes, not a thin rule)."""
    xs, ys = _segment_pixels(segment)
    if mask[ys, xs].mean() < 0.9:
        return None
    thickness = _vertical_run(mask, segment, RULE_MAX_THICKNESS)
    limit = min(RULE_MAX_THICKNESS, max(2, mask.shape[0] // 10))
    return thickness if thickness <= limit else None


def _segment_pixels(segment: tuple[int, int, int, int]) -> tuple[np.ndarray, np.ndarray]:
    """The columns and rows of ``segment``'s pixels, one per column."""
    x1, y1, x2, y2 = segment
    xs = np.arange(min(x1, x2), max(x1, x2) + 1)
    return xs, np.rint(y1 + (y2 - y1) * (xs - x1) / max(1, x2 - x1)).astype(np.int64)


#: A rule's faint edges are looked for up to this many times its thickness either side.
RULE_FAINT_REACH = 2


def _vertical_run(mask: np.ndarray, segment: tuple[int, int, int, int], reach: int) -> int:
    """The median height of ``mask``'s vertical runs through ``segment``'s pixels (those
    on), each counted up to ``reach`` pixels above and below it."""
    xs, ys = _segment_pixels(segment)
    on = mask[ys, xs].astype(bool)
    if not on.any():
        return 0
    runs = on.astype(np.int64)
    for step in (-1, 1):
        going = on.copy()
        for offset in range(1, reach + 1):
            rows = np.clip(ys + step * offset, 0, mask.shape[0] - 1)
            going &= mask[rows, xs].astype(bool)
            runs += going
    return int(np.median(runs[on]))


def _has_long_row(mask: np.ndarray, length: int) -> bool:
    """A cheap test that a rule may be there: a nearly level straight row (at one of a
    few slopes up to ``RULE_MAX_SLOPE``) along which ink runs unbroken, but for gaps of
    three pixels, for three quarters of ``length`` (a row of writing is broken between
    letters and words). Only the two fullest rows over all slopes are looked at: a rule's
    row holds more ink than any row of writing."""
    rows, cols = np.nonzero(mask)
    need = length * 3 // 4
    if len(rows) < need:
        return False
    slopes = np.linspace(-RULE_MAX_SLOPE, RULE_MAX_SLOPE, 9)[:, None]
    shifted = rows[None] - np.rint(cols[None] * slopes).astype(np.int64)
    shifted -= shifted.min()
    span = int(shifted.max()) + 1
    counts = np.bincount((shifted + np.arange(len(slopes))[:, None] * span).ravel())
    for cell in np.argsort(counts)[-2:]:
        if counts[cell] < need:
            continue
        slope, row = divmod(int(cell), span)
        along = np.unique(cols[shifted[slope] == row])
        breaks = np.flatnonzero(np.diff(along) > 3)
        starts = np.concatenate([[0], breaks + 1])
        ends = np.concatenate([breaks, [len(along) - 1]])
        if int((along[ends] - along[starts]).max()) + 1 >= need:
            return True
    return False


#: Tilts tried by ``skew_angle``, in degrees (counter-clockwise positive, as OpenCV): a long
#: line runs uphill by more than 4 (a landscape page's line 6 degrees uphill read at CER
#: 0.79 when 4 was the most tried, 0.13 now).
SKEW_ANGLES = np.linspace(-8.0, 8.0, 33)
# Height at which the tilt is measured: enough rows to tell 0.5 degree apart on a line.
SKEW_HEIGHT = 24
# A tilt must sharpen the row profile by this factor over level, or the line is left as is.
SKEW_MIN_GAIN = 1.05


def shrunk_to(grey: np.ndarray, side: int) -> np.ndarray:
    """``grey`` shrunk so that its longer side is ``side`` (as it is where already no
    longer): telling an image's shape needs no detail, and costs far less so."""
    scale = side / max(grey.shape)
    if scale >= 1:
        return grey
    size = (max(1, round(grey.shape[1] * scale)), max(1, round(grey.shape[0] * scale)))
    return cv2.resize(grey, size, interpolation=cv2.INTER_AREA)


def _at_most(ink: np.ndarray, rows: int) -> np.ndarray:
    """``ink`` shrunk to ``rows`` high, aspect kept (as it is when already lower)."""
    height, width = ink.shape
    scale = min(1.0, rows / height)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(ink, size, interpolation=cv2.INTER_AREA)


def skew_angle(
    ink: np.ndarray,
    height: int = SKEW_HEIGHT,
    min_aspect: float = 4.0,
    angles: np.ndarray = SKEW_ANGLES,
    min_gain: float = SKEW_MIN_GAIN,
) -> float:
    """The rotation (degrees) that levels a line of text: 0.0 when it is level or unsure.

    The classic projection-profile method: a level line puts its ink in few rows, so the
    sum of squared row sums peaks at the right angle. Each candidate tilt is applied as
    a vertical shear of the ink pixels (exact enough below 5 degrees) on a copy
    ``height`` pixels high. Lines under ``min_aspect`` times wider than high are left alone: a word
    or two gives no reliable angle. A page of lines levels the same way, measured on
    more rows, at any aspect and over wider ``angles``
    (:func:`~text_recognizer.segmentation.segment_lines`). The best angle must sharpen
    the profile ``min_gain`` times over the tried angle nearest level.
    """
    if ink.shape[1] < min_aspect * ink.shape[0]:
        return 0.0
    small = _at_most(ink, height)
    rows, cols = np.nonzero(small > INK_FRACTION * float(small.max()))
    weights = small[rows, cols]
    slopes = np.tan(np.radians(angles))[:, None]
    pad = int(np.ceil(small.shape[1] * float(np.abs(slopes).max()))) + 1
    span = small.shape[0] + 2 * pad
    # Rotating counter-clockwise by a lifts the right end: row y at column x goes to y - x*tan(a).
    shifted = rows[None] - np.rint((cols[None] - small.shape[1] / 2) * slopes).astype(np.int64)
    index = shifted + pad + np.arange(len(angles))[:, None] * span
    profiles = np.bincount(
        index.ravel(), np.broadcast_to(weights, index.shape).ravel(), span * len(angles)
    ).reshape(len(angles), span)
    scores = (profiles**2).sum(axis=1)
    best, level = int(scores.argmax()), int(np.abs(angles).argmin())
    if scores[best] < min_gain * scores[level]:
        return 0.0
    return float(angles[best])


#: Leans tried by ``slant``: horizontal shift per unit of height (0.3 is ~17 degrees).
SLANTS = np.linspace(-0.8, 0.8, 33)
# Height at which the lean is measured: the model's own input height.
SLANT_HEIGHT = 32
#: The lean ``prepare_line`` gives a line. ``slant`` puts the synthetic val and test lines'
#: median at 0.2 and 0.05; among targets 0 to 0.3, 0.2 read them and the real-character
#: lines best (docs/benchmarks.md).
SLANT_TARGET = 0.2
# Lines leaning within this of the target are left as they are: rendered lines lean -0.15
# to 0.4 (10th-90th percentile), and shearing lines in that range did not help width search.
SLANT_TOLERANCE = 0.175


def slant(ink: np.ndarray) -> float:
    """How far a line's strokes lean: x shift per unit of height, positive leaning right.

    The projection-profile method again, on columns: the shear that makes the strokes
    upright stacks their ink in the fewest columns, so it maximises the sum of squared
    column sums (a simpler relative of Vinciarelli and Luettin's deslanting criterion).
    """
    small = _at_most(ink, SLANT_HEIGHT)
    mask = (small > INK_FRACTION * float(small.max())).astype(np.int16)
    rows = np.arange(mask.shape[0])
    # Undo a lean s: row y moves left by s * (bottom - y), rounded to whole columns.
    shifts = np.rint((mask.shape[0] - 1 - rows)[None] * SLANTS[:, None]).astype(np.intp)
    pad = int(np.abs(shifts).max()) + 1
    span = mask.shape[1] + 2 * pad
    padded = np.zeros((mask.shape[0], span + 2 * pad), np.int16)
    padded[:, 2 * pad : 2 * pad + mask.shape[1]] = mask
    # Every window of `span` columns of each row; row y of lean k starts at pad + shift.
    windows = np.lib.stride_tricks.sliding_window_view(padded, span, axis=1)
    profiles = windows[rows[None], pad + shifts].sum(axis=1)  # [lean, column]
    scores = np.einsum("ij,ij->i", profiles, profiles)
    return float(SLANTS[int(scores.argmax())])


def shear(image: np.ndarray, lean: float, background: float = 0.0) -> np.ndarray:
    """Shift each row by ``lean`` x its height above the bottom, widening the canvas to fit."""
    height, width = image.shape
    extra = int(np.ceil(abs(lean) * height)) + 1
    return cv2.warpAffine(
        image,
        shear_matrix(image.shape, lean).astype(np.float32),
        (width + extra, height),
        flags=cv2.INTER_LINEAR,
        borderValue=background,
    )


def shear_matrix(shape: tuple[int, int], lean: float) -> np.ndarray:
    """:func:`shear`'s affine matrix (2 x 3) for an image of ``shape`` (rows, columns)."""
    height = shape[0]
    offset = max(0.0, -lean * (height - 1))
    return np.array([[1, -lean, lean * (height - 1) + offset], [0, 1, 0]])


def rotate(image: np.ndarray, degrees: float, background: float = 0.0) -> np.ndarray:
    """Rotate about the centre (counter-clockwise positive) onto a canvas keeping every corner."""
    matrix, size = rotation(image.shape[:2], degrees)
    return cv2.warpAffine(image, matrix, size, flags=cv2.INTER_LINEAR, borderValue=background)


def rotation(shape: tuple[int, int], degrees: float) -> tuple[np.ndarray, tuple[int, int]]:
    """:func:`rotate`'s affine matrix (2 x 3) for an image of ``shape`` (rows, columns), and
    the ``(width, height)`` of the canvas it rotates onto; inverted, it maps points back."""
    height, width = shape
    matrix = cv2.getRotationMatrix2D((width / 2, height / 2), degrees, 1.0)
    cos, sin = abs(matrix[0, 0]), abs(matrix[0, 1])
    new_width, new_height = int(height * sin + width * cos) + 1, int(height * cos + width * sin) + 1
    matrix[0, 2] += new_width / 2 - width / 2
    matrix[1, 2] += new_height / 2 - height / 2
    return matrix, (new_width, new_height)
