"""Paragraph → lines: find the text lines of a page or paragraph image, top to bottom.

The projection-profile method: rows through a line of text hold much ink, rows between
lines little. The paper's level is taken out (locally where the light is uneven:
:func:`~text_recognizer.preprocessing.subtract_paper`, over a fifth of the page, far
larger than a letter and smaller than a shadow) and ruled lines are erased
(:func:`~text_recognizer.preprocessing.erase_rules`, and a margin's rule running down
the page), the page is levelled (a tilt smears neighbouring lines into each other), the
line pitch is read off the row
profile's autocorrelation, and a cut is made at the emptiest row between every two
neighbouring line peaks whose valley is deep enough; bands still several pitches high
(lines set so close that their ascenders and descenders fill the rows between them) are
cut every pitch, near where a cut is due. Columns of text side by side (a
note in the margin beside the body, too) are parted first where a gutter of paper runs
down the whole text, and cut into lines one after the other. Each band between cuts is
cropped to its writing's ink (specks far beyond its ends, a page's grain, left out);
ascenders and descenders of the neighbours that spill over a cut are left to the line
model's preprocessing (:func:`~text_recognizer.preprocessing.prepare_line` drops marks
far from a line's core).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field, replace

import cv2
import numpy as np

from text_recognizer.errors import ImageError
from text_recognizer.preprocessing import (
    MIN_CONTRAST,
    SKEW_MIN_GAIN,
    as_3x3,
    erase_rules,
    normalize_polarity,
    rotate,
    rotation,
    shrunk_to,
    skew_angle,
    subtract_paper,
    translation,
    trim_page,
)

#: Rows a page is shrunk to for measuring its tilt: enough for ~0.5 degree on a page of lines.
PAGE_SKEW_HEIGHT = 400
#: Tilts tried on a page (degrees), coarsely, then in half degrees round the best: a
#: photographed sheet lies crooked by more than a line is written (``SKEW_ANGLES``: 8).
PAGE_SKEW_ANGLES = np.arange(-15.0, 15.5, 2.5)
#: The paper's level is estimated over windows this share of the page's shorter side.
PAGE_PAPER_WINDOW = 0.2
#: A pixel is ink above this share of the brightest ink: under ``INK_FRACTION``, so light
#: lines of a page written with a heavier pen elsewhere still count.
PAGE_INK_FRACTION = 0.15
#: A line peak must reach this share of the median peak, or it is a speck, not a line.
MIN_PEAK_SHARE = 0.15
#: Two lines are cut apart only where the profile dips below this share of the lower peak,
#: or of this one for peaks a line pitch apart or more.
MAX_VALLEY_SHARE = 0.5
MAX_TOUCHING_SHARE = 0.8
#: A band is cut every line pitch at the emptiest row within this share of a pitch of
#: where a cut is due: lines' spacing varies a little down a page.
PITCH_CUT_REACH = 0.25
#: ...where that row holds less ink than this share of the fuller rows within half a
#: pitch above and below it: any dip at all (such lines dip little), but not the core of
#: a line written larger (a heading), the fullest rows there are.
PITCH_CUT_SHARE = 0.95
#: An autocorrelation peak this close to the highest is the pitch, not a multiple of it.
HARMONIC_SHARE = 0.5
#: ...but a maximum within this share of the pitch of half the pitch is the pitch: lines
#: whose ink overlaps can repeat more strongly every other line than every line.
SUBHARMONIC_SLACK = 0.15
#: A band this many times taller than the median band holds two overlapping lines.
TALL_BAND = 1.6
#: A band with less than this share of the median band's ink is not a line.
MIN_LINE_INK = 0.1
#: ...or when its tallest blob of ink is under this share of a kept line's (the median of
#: their tallest): a speck is far lower than a letter.
MIN_GLYPH_HEIGHT = 0.5
#: A block of rows (between empty rows) with less than this share of the fullest block's
#: ink is a speck: its height says nothing of the pitch.
MIN_BLOCK_INK = 0.05
#: An autocorrelation this strong at the line pitch means the image holds several lines.
MIN_PERIODICITY = 0.15
#: Columns of text side by side are parted by a gutter of paper at least this many line
#: heights wide, running down the whole text, with ink at least ``MIN_COLUMN`` line
#: heights wide on either side.
GUTTER = 1.0
MIN_COLUMN = 1.5
#: A column of the page is paper in a gutter if under this share of the text's rows are ink.
GUTTER_SPECKS = 0.01
#: A line's writing: ink blobs at least this share of its tallest blob high; specks
#: farther than ``SPECK_REACH`` of that height beyond them, left or right, are not its ink.
WRITING_HEIGHT = 0.15
SPECK_REACH = 0.5
#: More columns than this are a table's or a grid's (each rule of a grid of rules would
#: be read as lines), left whole.
MAX_COLUMNS = 4
#: Columns erased this far apart belong to two rules (a rule's edges are a few apart).
RULE_GAP = 8
#: Whether a page lies on its side is told on the image shrunk to this longer side: the
#: ink's shape at the letters' scale, not its detail.
SIDEWAYS_SIDE = 256
#: A blob of ink with under this share of the largest blob's pixels is a speck (a dot, noise).
SIDEWAYS_SPECK = 0.05
#: The ink is blurred by this share of its letters' size (the median of its blobs' shorter
#: sides): letters of a word merge into bars along the line, and lines stay apart.
SIDEWAYS_BLUR = 0.5


@dataclass(frozen=True)
class TextLine:
    """One line cut from a page: uint8 image (bright ink on black), its box ``(x0, y0, x1,
    y1)`` where it was cut (the image as given, or the levelled page if it was turned),
    and the 3 x 3 affine matrix from the line image's pixels to the image as given (where
    a caller finds the line, and its words)."""

    image: np.ndarray
    box: tuple[int, int, int, int]
    to_image: np.ndarray = field(default_factory=lambda: np.eye(3))


@dataclass(frozen=True)
class PageLines:
    """The lines of a page, top to bottom (column by column, left to right, where the
    page has columns of text side by side), and the rotation (degrees, counter-clockwise)
    that levelled the page before it was cut."""

    lines: list[TextLine]
    angle: float


def segment_lines(grey: np.ndarray) -> PageLines:
    """Cut a grey page or paragraph image (any polarity) into its text lines."""
    grey, top_cut, left_cut = trim_page(grey)  # the desk around a photographed page
    ink = normalize_polarity(grey).astype(np.float32)
    ink = subtract_paper(ink, int(PAGE_PAPER_WINDOW * min(ink.shape)))
    ink = erase_rules(ink)  # ruled paper's lines would pass for lines of text
    ink = _without_margin_rules(ink)
    if float(ink.max()) < MIN_CONTRAST:
        raise ImageError("the image is blank: no writing found")
    # Lines are found on an ink mask, so a faint line (a light pen, a pencil) weighs as
    # much as a dark one; they are cut from the grey ink. A 3x3 median first: paper grain
    # over a whole page adds up to rows of "ink".
    smooth = cv2.medianBlur(np.clip(ink, 0, 255).astype(np.uint8), 3)
    if float(smooth.max()) < MIN_CONTRAST:
        raise ImageError("the image is blank: no writing found, only specks")
    mask = (smooth >= PAGE_INK_FRACTION * float(smooth.max())).astype(np.float32)
    angle = page_skew(mask)
    if angle:
        ink, mask = rotate(ink, angle), (rotate(mask, angle) >= 0.5).astype(np.float32)
    # Columns side by side (a gutter of empty paper between them) are cut into lines
    # one by one, left to right: rows across a gutter would join lines of both.
    bands = _bands(mask)
    columns = _columns(mask, bands)
    if len(columns) == 1:
        lines = [_crop(ink, mask, *band) for band in bands]
    else:
        lines = [
            _shifted(_crop(ink[:, left:right], mask[:, left:right], *band), left, 0)
            for left, right in columns
            for band in _bands(mask[:, left:right])
        ]
    # Back to the image as given: turned back (about the trimmed image's centre), then
    # shifted by the frame cut away.
    to_image = translation(left_cut, top_cut)
    if angle:
        to_image = to_image @ as_3x3(cv2.invertAffineTransform(rotation(grey.shape, angle)[0]))
    lines = [replace(line, to_image=to_image @ translation(*line.box[:2])) for line in lines]
    if not angle:  # boxes in the image as given, less nothing
        lines = [_shifted(line, left_cut, top_cut) for line in lines]
    return PageLines(lines, angle)


def _without_margin_rules(ink: np.ndarray) -> np.ndarray:
    """``ink`` less the rules running down it: a notebook's margin rule passed for a letter
    at each line's start (an "I" read before every line of a sample page on ruled paper),
    and the bands above and below the writing, holding only its ends, for lines. More
    than ``MAX_COLUMNS`` such rules are a grid's or a table's, left as they are."""
    across = np.ascontiguousarray(ink.T)
    unruled = erase_rules(across)
    if unruled is across:
        return ink
    erased = np.ascontiguousarray(unruled.T)
    changed = np.flatnonzero((erased != ink).any(axis=0))
    rules = 1 + int((np.diff(changed) > RULE_GAP).sum()) if len(changed) else 0
    return ink if rules > MAX_COLUMNS else erased


def _bands(mask: np.ndarray) -> list[tuple[int, int]]:
    """The rows ``(start, end)`` of the lines in an ink mask, top to bottom."""
    rows = np.flatnonzero(mask.max(axis=1) > 0)
    if len(rows) == 0:
        return []
    top, bottom = int(rows[0]), int(rows[-1]) + 1
    cuts = _cuts(mask[top:bottom].sum(axis=1))
    edges = [top, *(top + cut for cut in cuts), bottom]
    bands = list(itertools.pairwise(edges))
    weights = np.array([float(mask[start:end].sum()) for start, end in bands])
    # A band with a sliver of the ink of a typical line is a speck or a stray stroke...
    keep = weights >= MIN_LINE_INK * float(np.median(weights))
    if not keep.all():
        # ...unless it holds a glyph as tall as a line's: a line of a word or a number (a
        # page number, a numbered list's "7") has a sliver of a line's ink too.
        tallest = np.array([_tallest_blob(mask[start:end]) for start, end in bands])
        keep |= tallest >= MIN_GLYPH_HEIGHT * float(np.median(tallest[keep]))
    return [band for band, kept in zip(bands, keep, strict=True) if kept]


def _tallest_blob(band: np.ndarray) -> int:
    """The height of the tallest blob of ink (8-connected) in a band's mask."""
    count, _, stats, _ = cv2.connectedComponentsWithStats(band.astype(np.uint8), connectivity=8)
    return int(stats[1:, cv2.CC_STAT_HEIGHT].max()) if count > 1 else 0


def _columns(mask: np.ndarray, bands: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The columns ``(left, right)`` of text side by side: split where empty paper at
    least ``GUTTER`` line heights wide runs from the first line to the last, leaving
    pieces of ink each at least ``MIN_COLUMN`` line heights wide on both sides (a gap
    between words is far narrower, and does not run down a page; a narrow piece is a
    table's column of numbers or a word, read with its row). Line heights: the
    ``bands`` cut across the whole page, the lines of both columns together."""
    whole = [(0, mask.shape[1])]
    if len(bands) < 2:
        return whole  # one line: its gaps are between words
    height = float(np.median([end - start for start, end in bands]))
    top, bottom = bands[0][0], bands[-1][1]
    # A column is paper where it holds almost no ink: a speck in a gutter does not close it.
    inked = np.flatnonzero(mask[top:bottom].sum(axis=0) > GUTTER_SPECKS * (bottom - top))
    if len(inked) == 0:
        return whole
    gaps = np.flatnonzero(np.diff(inked) > GUTTER * height)
    # Piece by piece from the left: a gutter is kept where the ink left of it since the
    # last gutter kept, and the ink right of it, are wide enough to be columns of text.
    splits: list[int] = []
    start = int(inked[0])
    for gap in gaps:
        left_end, right_start = int(inked[gap]), int(inked[gap + 1])
        if left_end - start < MIN_COLUMN * height:
            continue
        if int(inked[-1]) - right_start < MIN_COLUMN * height:
            break
        splits.append((left_end + right_start) // 2)
        start = right_start
    if len(splits) >= MAX_COLUMNS:
        return whole  # a table's or a grid's columns, not a page's
    edges = [0, *splits, mask.shape[1]]
    return list(itertools.pairwise(edges))


def _shifted(line: TextLine, dx: int, dy: int) -> TextLine:
    x0, y0, x1, y1 = line.box
    return replace(line, box=(x0 + dx, y0 + dy, x1 + dx, y1 + dy))


def page_skew(mask: np.ndarray) -> float:
    """The rotation (degrees) that levels a page: up to 15 degrees either way, found in
    steps of 2.5 and then of 0.5 round the best (a page left level stays exactly level)."""
    coarse = skew_angle(mask, PAGE_SKEW_HEIGHT, min_aspect=0.0, angles=PAGE_SKEW_ANGLES)
    near = coarse + np.linspace(-1.5, 1.5, 7)
    # Round a tilt found, the best of the fine angles whatever its gain over the others.
    return skew_angle(mask, PAGE_SKEW_HEIGHT, 0.0, near, min_gain=1.0 if coarse else SKEW_MIN_GAIN)


def may_hold_lines(grey: np.ndarray) -> bool:
    """A quick test that an image may hold more than one line of text: its ink rows part
    into two or more lines, with one paper level and no levelling. ``kind="auto"`` asks
    it of every line-shaped image before cutting one into lines, which costs more than
    reading it; a short paragraph tilted so far that its lines merge in the row profile
    is then read as one line (``kind="paragraph"`` reads it)."""
    ink = normalize_polarity(grey).astype(np.float32)
    ink -= float(np.median(ink))
    if float(ink.max()) < MIN_CONTRAST:
        return False
    mask = ink >= PAGE_INK_FRACTION * float(ink.max())
    return bool(_cuts(mask.sum(axis=1).astype(np.float64)))


def line_pitch(profile: np.ndarray) -> int | None:
    """The distance between lines (rows), or None if the profile does not repeat.

    The first peak of the profile's autocorrelation that reaches most of the highest one
    (a page's autocorrelation also peaks at two and three pitches) and that follows a
    real dip (a line's own ascender and core bumps make small early ones).
    """
    x = profile - profile.mean()
    energy = float(x @ x)
    if len(x) < 8 or energy <= 0:
        return None
    spectrum = np.fft.rfft(x, 2 * len(x))
    # Every lag: two lines make a profile barely longer than one pitch.
    ac = np.fft.irfft(spectrum * np.conj(spectrum))[: len(x)] / energy
    inner = ac[1:-1]
    candidates = 1 + np.flatnonzero((inner > 0) & (inner >= ac[:-2]) & (inner >= ac[2:]))
    dips = np.minimum.accumulate(ac)
    maxima = [int(m) for m in candidates if dips[m] < ac[m] - MIN_PERIODICITY]
    if not maxima:
        return None
    best = max(float(ac[m]) for m in maxima)
    if best < MIN_PERIODICITY:
        return None
    pitch = next(m for m in maxima if ac[m] >= HARMONIC_SHARE * best)
    # Lines set close (their ink overlapping) can repeat more strongly every other line
    # than every line: a maximum near half the pitch is the pitch.
    while half := [m for m in maxima if abs(2 * m - pitch) <= SUBHARMONIC_SLACK * pitch]:
        pitch = half[0]
    return pitch


def _cuts(profile: np.ndarray) -> list[int]:
    """Rows between lines: the emptiest row between two line peaks, where deep enough.

    Peaks are found on the profile smoothed over a quarter pitch (a line's own bumps
    merge), valleys on one smoothed over a sixteenth (the few empty rows between two
    lines that nearly touch would be filled in by the wider window).
    """
    # Compressed: a line of small or light writing has a fraction of a bold line's ink
    # rows, and must still count as a line (the pitch is read on a stronger compression).
    profile = np.sqrt(profile)
    repeat = pitch = line_pitch(np.log1p(profile))
    # A few lines spaced unevenly barely repeat; where empty rows part the ink into
    # blocks, a block is a line or several, so their median height bounds the pitch too.
    blocks = _block_heights(profile)
    if blocks is not None:
        pitch = blocks if pitch is None else min(pitch, blocks)
    if pitch is None:
        return []
    smooth, fine = (_smooth(profile, max(1, pitch // n)) for n in (4, 16))
    peaks = _peaks(smooth, min_distance=max(1, pitch // 2))
    cuts: list[int] = []
    kept = peaks[:1]
    for peak in peaks[1:]:
        valley = kept[-1] + int(np.argmin(fine[kept[-1] : peak]))
        # Peaks a line apart need a shallower dip (lines whose ink touches dip little),
        # where the image is tall enough for the pitch to be a page's, not one line's bumps;
        # other peaks a deep one (a line's own ascender and core bumps dip too).
        apart = peak - kept[-1] >= 0.8 * pitch and len(profile) >= 2.5 * pitch
        share = MAX_TOUCHING_SHARE if apart else MAX_VALLEY_SHARE
        if fine[valley] <= share * min(smooth[kept[-1]], smooth[peak]):
            cuts.append(valley)
            kept.append(peak)
        elif smooth[peak] > smooth[kept[-1]]:
            kept[-1] = peak  # one line, two bumps: keep the higher as its peak
    cuts = _split_tall_bands(cuts, fine)
    # Bands several lines high, where the profile repeats (a block's height is a line's,
    # not the distance between lines) and over a page, not one line's bumps.
    if repeat is not None and len(profile) >= 2.5 * repeat:
        cuts = _split_by_pitch(cuts, profile, fine, repeat)
    return cuts


def _split_by_pitch(
    cuts: list[int], profile: np.ndarray, fine: np.ndarray, pitch: int
) -> list[int]:
    """Cut bands whose ink spans several line pitches into as many lines, each cut at the
    emptiest row near where it is due, where that row dips below the ink on either side:
    lines set so close that their ascenders and descenders fill the rows between them
    leave no valley deep enough between their peaks."""
    edges = [0, *cuts, len(fine)]
    out: list[int] = []
    reach = max(1, int(PITCH_CUT_REACH * pitch))
    for start, end in itertools.pairwise(edges):
        rows = start + np.flatnonzero(profile[start:end] > 0)
        if len(rows):
            top, height = int(rows[0]), int(rows[-1]) + 1 - int(rows[0])
            count = round(height / pitch)
            for j in range(1, count):
                due = top + round(j * height / count)
                low, high = max(start + 1, due - reach), min(end - 1, due + reach)
                if high <= low:
                    continue
                row = low + int(np.argmin(fine[low:high]))
                above = float(fine[max(start, row - pitch // 2) : row + 1].max())
                below = float(fine[row : min(end, row + pitch // 2 + 1)].max())
                if fine[row] <= PITCH_CUT_SHARE * min(above, below):
                    out.append(row)
        if end < len(fine):
            out.append(end)
    return out


def _split_tall_bands(cuts: list[int], fine: np.ndarray) -> list[int]:
    """Cut bands over ``TALL_BAND`` times the median band's height at their emptiest row
    in the middle, where it dips: two lines whose ink overlaps that much made one band."""
    edges = [0, *cuts, len(fine)]
    heights = np.diff(edges)
    if len(heights) < 3:  # too few bands to know a line's height
        return cuts
    typical = float(np.median(heights))
    out = []
    for start, end in itertools.pairwise(edges):
        if end - start > TALL_BAND * typical:
            low, high = start + int(0.35 * (end - start)), end - int(0.35 * (end - start))
            row = low + int(np.argmin(fine[low:high]))
            # Only where the middle dips deep: a line written larger (a heading) is dense
            # there, its letters' cores.
            if fine[row] <= MAX_VALLEY_SHARE * float(fine[start:end].max()):
                out.append(row)
        if end < len(fine):
            out.append(end)
    return out


def _block_heights(profile: np.ndarray) -> int | None:
    """The median height of the ink blocks that empty rows part, if there are two or more
    (blocks with under ``MIN_BLOCK_INK`` of the fullest one's ink, specks, left out)."""
    edges = np.diff(np.concatenate([[0], (profile > 0).astype(np.int8), [0]]))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    weights = np.array([float(profile[a:b].sum()) for a, b in zip(starts, ends, strict=True)])
    heights = (ends - starts)[weights >= MIN_BLOCK_INK * float(weights.max())]
    return int(np.median(heights)) if len(heights) >= 2 else None


def _smooth(profile: np.ndarray, window: int) -> np.ndarray:
    return np.convolve(profile, np.ones(window) / window, mode="same")


def _peaks(smooth: np.ndarray, min_distance: int) -> list[int]:
    """Local maxima at least ``min_distance`` apart (highest first), top to bottom."""
    local = np.flatnonzero(
        (smooth > 0) & (smooth >= np.roll(smooth, 1)) & (smooth >= np.roll(smooth, -1))
    )
    chosen: list[int] = []
    for index in local[np.argsort(-smooth[local], kind="stable")]:
        if all(abs(int(index) - other) >= min_distance for other in chosen):
            chosen.append(int(index))
    if not chosen:
        return []
    floor = MIN_PEAK_SHARE * float(np.median(smooth[chosen]))
    return sorted(p for p in chosen if smooth[p] >= floor)


def _crop(ink: np.ndarray, mask: np.ndarray, start: int, end: int) -> TextLine:
    band = _writing(mask[start:end])
    cols, rows = np.flatnonzero(band.max(axis=0)), np.flatnonzero(band.max(axis=1))
    left, right = int(cols[0]), int(cols[-1]) + 1
    top, bottom = start + int(rows[0]), start + int(rows[-1]) + 1
    crop = ink[top:bottom, left:right]
    image = cv2.convertScaleAbs(crop, alpha=255.0 / max(float(crop.max()), 1.0))
    return TextLine(image, (left, top, right, bottom))


def _writing(band: np.ndarray) -> np.ndarray:
    """A band's ink mask less the specks far from its writing, which would stretch the
    line's box to them (noise over a page, to its edges): the writing is the blobs at least
    ``WRITING_HEIGHT`` of the tallest one high (the band's height would not do: a line
    spaced loosely has a tall band, and its small letters would pass for specks), and the
    rest is kept within ``SPECK_REACH`` of the tallest blob's height to the left or right
    of them (dots, commas, a full stop)."""
    count, _, stats, _ = cv2.connectedComponentsWithStats(band.astype(np.uint8), connectivity=8)
    if count <= 2:
        return band
    x, y, w, h = (stats[1:, i] for i in range(4))
    writing = h >= WRITING_HEIGHT * float(h.max())
    if writing.all():
        return band
    reach = SPECK_REACH * float(h.max())
    left, right = x[writing].min() - reach, (x + w)[writing].max() + reach
    near = writing | ((x + w > left) & (x < right))
    if near.all():
        return band
    kept = band.copy()
    for i in np.flatnonzero(~near):
        kept[y[i] : y[i] + h[i], x[i] : x[i] + w[i]] = 0
    return kept


@dataclass(frozen=True)
class SidewaysEvidence:
    """What tells a page or line lying on its side: ``edge_ratio``, how much more the
    edges of the writing run up and down than across (the sum of squared horizontal
    gradients over that of vertical ones, the ink blurred to its letters' scale);
    ``blobs``, how many blobs of ink (specks left out); ``ink_aspect``, the width / height
    of the box holding the ink (its outermost 1 % each way left out)."""

    edge_ratio: float
    blobs: int
    ink_aspect: float


def sideways_evidence(grey: np.ndarray) -> SidewaysEvidence:
    """How a grey image's writing runs (:class:`SidewaysEvidence`; all 0 where blank).

    Blurred at the scale of its letters, a line of writing is a bar along the line: most
    of the ink's edge is its top and bottom. ``edge_ratio`` is well under 1 on an upright
    page and over 1 on one turned a quarter turn (the structure tensor's two diagonal
    terms), whatever the line spacing or a tilt of up to 15 degrees; it needs no line
    found, which a page on its side would be cut into wrongly (docs/benchmarks.md). A
    lone line is too few rows of letters for that: its shape tells it instead.
    """
    grey = shrunk_to(grey, SIDEWAYS_SIDE)
    ink = normalize_polarity(trim_page(grey)[0]).astype(np.float32)
    ink = subtract_paper(ink, int(PAGE_PAPER_WINDOW * min(ink.shape)))
    if float(ink.max()) < MIN_CONTRAST:
        return SidewaysEvidence(0.0, 0, 0.0)
    mask = (ink >= PAGE_INK_FRACTION * float(ink.max())).astype(np.uint8)
    rows, cols = np.nonzero(mask)
    top, bottom = np.percentile(rows, [1, 99])
    left, right = np.percentile(cols, [1, 99])
    _, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    areas = stats[1:, cv2.CC_STAT_AREA]
    blobs = stats[1:][areas >= SIDEWAYS_SPECK * areas.max()]
    letters = float(np.median(blobs[:, cv2.CC_STAT_WIDTH : cv2.CC_STAT_HEIGHT + 1].min(axis=1)))
    blurred = cv2.GaussianBlur(mask.astype(np.float32), (0, 0), max(0.5, SIDEWAYS_BLUR * letters))
    across = cv2.Sobel(blurred, cv2.CV_32F, 1, 0)
    down = cv2.Sobel(blurred, cv2.CV_32F, 0, 1)
    ratio = float(np.vdot(across, across)) / max(float(np.vdot(down, down)), 1e-12)
    return SidewaysEvidence(ratio, len(blobs), float((right - left + 1) / (bottom - top + 1)))
