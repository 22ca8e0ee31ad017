"""Render a line of text as a scanned handwritten line image, 32 px high.

Two ways to put ink down, one way to turn ink into a "scan":

* stroke faces (:mod:`text_recognizer.data.sources.strokes`): a simulated writer's pen
  paths are drawn with a pressure-sensitive round nib (:func:`draw_trajectory`);
* outline fonts (:mod:`text_recognizer.data.sources.fonts`): glyph bitmaps are placed one
  by one with jittered spacing and baseline, then the line is slanted, stretched, tilted,
  bent along its baseline and elastically distorted (:func:`render_outline`);
* page effects (:func:`scan`): crop to the ink with a random margin, resize to the fixed
  height, optional low-resolution resampling, blur, uneven ink, paper level, gradient and
  texture, sensor grain and JPEG artefacts.

Ink is drawn about twice as large as the final image so that thin strokes and sub-pixel
jitter survive; halving is done with ``cv2.pyrDown`` because a non-integer ``INTER_AREA``
resize costs ten times more. Every random choice comes from the ``np.random.Generator``
passed in, and textures from a :class:`TextureBank` built from a seed, so a line is a
pure function of (text, generator state, bank seed). Output follows the library
convention: uint8, bright ink on a dark background.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from text_recognizer.data.sources.strokes import (
    X_HEIGHT,
    HandStyle,
    StrokeFace,
    Trajectory,
    write_line,
)
from text_recognizer.errors import DataError

if TYPE_CHECKING:
    from text_recognizer.data.sources.fonts import Font

HEIGHT = 32
WORK_HEIGHT = 2 * HEIGHT  # ink extent on the drawing canvas, halved by pyrDown
OUTLINE_UNIT_PX = 36  # outline glyphs are rasterised with capitals ≈ this tall (line unit 1)
_SUBPIXEL_BITS = 4  # cv2 drawing with 1/16 px precision


@dataclass(frozen=True)
class RenderedLine:
    image: np.ndarray  # uint8 [HEIGHT, W], bright ink on dark
    text: str  # the label: what the image shows (upper-cased for capitals-only fonts)
    source: str  # font or stroke-face name


class TextureBank:
    """Pre-computed noise tiles, cropped at random for every line.

    Generating paper texture per line would cost more than drawing the text; cropping a
    random window of a few large tiles is nearly free and looks the same. The bank is a
    pure function of ``seed``, so renders are deterministic in any process.
    """

    def __init__(self, seed: int = 0, tiles: int = 4, shape: tuple[int, int] = (128, 2560)) -> None:
        rng = np.random.default_rng(seed)
        # Paper: blotches, fibres and fine mottling, in [-1, 1].
        self.paper = np.stack([self._noise(rng, shape, cells=(24, 8, 3)) for _ in range(tiles)])
        # Pen pressure: slow variation along the strokes, as uint8 so it thresholds cheaply.
        pressure = np.stack([self._noise(rng, shape, cells=(40,)) for _ in range(tiles)])
        self.pressure = np.round(pressure * 127.5 + 127.5).astype(np.uint8)
        self.grain = rng.standard_normal((tiles, *shape)).astype(np.float32)

    @staticmethod
    def _noise(
        rng: np.random.Generator, shape: tuple[int, int], cells: tuple[int, ...]
    ) -> np.ndarray:
        """Smooth noise in [-1, 1]: random grids of the given cell sizes, upsampled and summed."""
        height, width = shape
        tile = np.zeros(shape, np.float32)
        for cell in cells:
            coarse = rng.standard_normal((height // cell + 2, width // cell + 2)).astype(np.float32)
            weight = (cell / cells[0]) ** 0.5
            tile += cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC) * weight
        return tile / np.abs(tile).max()

    @staticmethod
    def crop(bank: np.ndarray, rng: np.random.Generator, height: int, width: int) -> np.ndarray:
        """A random ``height × width`` window of a random tile (tiled if the line is larger)."""
        tile = bank[rng.integers(len(bank))]
        if height > tile.shape[0] or width > tile.shape[1]:
            tile = np.tile(tile, (-(-height // tile.shape[0]), -(-width // tile.shape[1])))
        y = int(rng.integers(tile.shape[0] - height + 1))
        x = int(rng.integers(tile.shape[1] - width + 1))
        return tile[y : y + height, x : x + width]


def _nib(size: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))


def draw_trajectory(
    trajectory: Trajectory, rng: np.random.Generator, textures: TextureBank
) -> np.ndarray:
    """Draw pen paths with a pressure-sensitive round nib: uint8 ink mask (255 = full ink).

    The scale is chosen so the ink is about ``WORK_HEIGHT`` tall. The path is drawn one
    pixel wide and widened by dilation (cv2's thick polylines cost ~7× more). Where a
    smooth random pressure field is high the nib is broader and the ink darker, so the
    width changes gradually along every stroke.
    """
    if len(trajectory.points) == 0:
        return np.zeros((WORK_HEIGHT, WORK_HEIGHT), np.uint8)
    lowest, highest = trajectory.points.min(axis=0), trajectory.points.max(axis=0)
    unit_px = WORK_HEIGHT / float(highest[1] - lowest[1] + trajectory.pen_width)
    nib = trajectory.pen_width * unit_px
    light = max(3, round(nib))  # at least ~1.5 px in the final image, like a real pen
    heavy = max(light, round(nib * (1 + trajectory.pressure_variation)))
    origin = lowest * unit_px - (heavy + 2)
    size = np.ceil((highest - lowest) * unit_px + 2 * (heavy + 2)).astype(int)
    fixed = np.round((trajectory.points * unit_px - origin) * (1 << _SUBPIXEL_BITS)).astype(
        np.int32
    )
    strokes = np.split(fixed, np.flatnonzero(trajectory.starts)[1:])
    path = np.zeros((int(size[1]), int(size[0])), np.uint8)
    cv2.polylines(path, strokes, False, 255, 1, cv2.LINE_8, _SUBPIXEL_BITS)
    ink = cv2.dilate(path, _nib(light))
    if heavy == light:
        return ink
    pressed = textures.crop(textures.pressure, rng, *path.shape)
    pressed = cv2.threshold(pressed, float(rng.uniform(60, 200)), 255, cv2.THRESH_BINARY)[1]
    broad = cv2.bitwise_and(cv2.dilate(path, _nib(heavy)), pressed)
    return cv2.max(cv2.convertScaleAbs(ink, alpha=0.9), broad)  # less pressure, lighter ink


class OutlineGlyphs:
    """Glyph bitmaps of one outline font, rasterised once at ~2× the final scale.

    Drawing a line glyph by glyph (not as one string) lets each letter get its own
    offset and spacing — the per-letter irregularity that whole-string rendering lacks.
    The size is set from the font's x-height, as for stroke faces.
    """

    def __init__(self, path: str, unit_px: float = OUTLINE_UNIT_PX) -> None:
        probe = ImageFont.truetype(path, 100)
        top = probe.getbbox("x", anchor="ls")[1]
        if top >= 0:
            raise DataError(f"font {path} draws no visible 'x' to measure its x-height")
        self.font = ImageFont.truetype(path, max(8, round(100 * X_HEIGHT * unit_px / -top)))
        self._cache: dict[str, tuple[np.ndarray, int, int, float]] = {}
        self.stroke_px = self._stroke_width()

    def _stroke_width(self) -> int:
        """Approximate stroke width in pixels: how many 3×3 erosions it takes to erase 'o'."""
        ink = (self.get("o")[0] > 128).astype(np.uint8)
        for erosions in range(1, 10):
            if not cv2.erode(ink, np.ones((3, 3), np.uint8), iterations=erosions).any():
                return 2 * erosions
        return 20

    def get(self, char: str) -> tuple[np.ndarray, int, int, float]:
        """(mask, left, top relative to the pen position on the baseline, advance)."""
        if char not in self._cache:
            left, top, right, bottom = (int(v) for v in self.font.getbbox(char, anchor="ls"))
            image = Image.new("L", (max(1, right - left), max(1, bottom - top)))
            ImageDraw.Draw(image).text((-left, -top), char, font=self.font, fill=255, anchor="ls")
            self._cache[char] = (np.asarray(image), left, top, float(self.font.getlength(char)))
        return self._cache[char]


def jitter_glyph(
    mask: np.ndarray, left: int, top: int, scale: Sequence[float], rotation: float, shear: float
) -> tuple[np.ndarray, int, int]:
    """Scale, shear and rotate one glyph bitmap about its pen position on the baseline.

    Returns the new ``(mask, left, top)``: the glyph stays on the baseline at the pen, so
    neighbours keep their places. ``scale`` is ``(x, y)``; ``shear`` leans the glyph like
    slant does (x grows with height above the baseline); ``rotation`` in radians.
    """
    cos, sin = np.cos(rotation), np.sin(rotation)
    matrix = (
        np.array([[cos, -sin], [sin, cos]])
        @ np.array([[1.0, -shear], [0.0, 1.0]])
        @ np.diag([scale[0], scale[1]])
    )
    height, width = mask.shape
    right, bottom = left + width, top + height
    corners = np.array([[left, top], [right, top], [left, bottom], [right, bottom]], float)
    moved = corners @ matrix.T
    new_left, new_top = np.floor(moved.min(axis=0)).astype(int)
    new_right, new_bottom = np.ceil(moved.max(axis=0)).astype(int)
    # mask pixel (u, v) -> matrix @ (u + left, v + top) - (new_left, new_top)
    offset = matrix @ np.array([left, top], float) - (new_left, new_top)
    affine = np.hstack([matrix, offset[:, None]]).astype(np.float32)
    size = (max(1, int(new_right - new_left)), max(1, int(new_bottom - new_top)))
    moved_mask = cv2.warpAffine(mask, affine, size, flags=cv2.INTER_LINEAR)
    return moved_mask, int(new_left), int(new_top)


def render_outline(
    glyphs: OutlineGlyphs, text: str, rng: np.random.Generator, glyph_jitter: float = 0.0
) -> np.ndarray:
    """Place glyph bitmaps with jitter, then warp the line like a hand would: uint8 ink mask.

    ``glyph_jitter`` > 0 also varies each letter's shape (size, width, lean, rotation; up to
    ``glyph_jitter`` times the stroke faces' per-glyph ranges): a font draws every "e" of a
    line alike, a hand never does. 0 leaves the random stream as it was.
    """
    unit = OUTLINE_UNIT_PX
    letter_spacing = rng.uniform(-0.03, 0.12) * unit
    word_scale = rng.uniform(0.7, 1.5)
    shift_sd = rng.uniform(0.0, 0.05) * unit
    if glyph_jitter > 0:
        # per-line spreads, as HandStyle draws them for the stroke faces
        size_sd, width_sd, rotation_sd, shear_sd = rng.uniform(0.0, 0.07, 4) * glyph_jitter
    placed = []
    x = 0.0
    for char in text:
        mask, left, top, advance = glyphs.get(char)
        if char == " ":
            x += advance * word_scale * rng.uniform(0.8, 1.25)
            continue
        if glyph_jitter > 0:
            size = float(np.exp(rng.normal(0.0, size_sd)))
            width_scale = size * float(np.exp(rng.normal(0.0, width_sd)))
            mask, left, top = jitter_glyph(
                mask,
                left,
                top,
                (width_scale, size),
                float(rng.normal(0.0, rotation_sd)),
                float(rng.normal(0.0, shear_sd)),
            )
            advance *= width_scale
        placed.append((mask, round(x) + left, round(rng.normal(0.0, shift_sd)) + top))
        x += advance + letter_spacing
    if not placed:
        return np.zeros((WORK_HEIGHT, WORK_HEIGHT), np.uint8)
    pad = 4
    x0 = min(p[1] for p in placed) - pad
    y0 = min(p[2] for p in placed) - pad
    x1 = max(p[1] + p[0].shape[1] for p in placed) + pad
    y1 = max(p[2] + p[0].shape[0] for p in placed) + pad
    canvas = np.zeros((y1 - y0, x1 - x0), np.uint8)
    for mask, left, top in placed:
        region = canvas[top - y0 : top - y0 + mask.shape[0], left - x0 : left - x0 + mask.shape[1]]
        np.maximum(region, mask, out=region)
    kernel = np.ones((2, 2), np.uint8)
    if glyphs.stroke_px <= 2:  # a hairline font would be 1 px wide: real pens draw ~2 px
        canvas = cv2.dilate(canvas, kernel)
    elif rng.random() < 0.4:  # the pen is finer or broader than the font's designer drew it
        thin_font = glyphs.stroke_px < 6  # ≤ 3 px once halved: eroding would break it up
        canvas = (
            cv2.dilate(canvas, kernel)
            if thin_font or rng.random() < 0.5
            else cv2.erode(canvas, kernel)
        )
    # Warp at half scale: four times fewer pixels to remap, and still ≈ the final size.
    return _warp(cv2.pyrDown(canvas), rng, unit / 2, baseline=-y0 / 2)


def _warp(canvas: np.ndarray, rng: np.random.Generator, unit: float, baseline: float) -> np.ndarray:
    """Slant, stretch, tilt, bend the baseline and distort elastically, in one remap.

    Maps are written as output → source: first the vertical (tilt, baseline drift),
    then the horizontal (stretch, slant about the baseline), plus a smooth random field.
    """
    height, width = canvas.shape
    slant = float(np.clip(rng.normal(0.1, 0.15), -0.25, 0.45))
    stretch = rng.uniform(0.75, 1.1)
    tilt = rng.normal(0.0, 0.012)
    drift = rng.uniform(0.0, 0.12) * unit
    wavelength = rng.uniform(4.0, 16.0) * unit
    amplitude = rng.uniform(0.0, 0.05) * unit
    out_width = int(width * stretch + abs(slant) * height) + 2
    margin = int(abs(tilt) * out_width + drift + 3 * amplitude) + 2
    out_height = height + 2 * margin
    xs = np.arange(out_width, dtype=np.float32)[None, :]
    ys = np.arange(out_height, dtype=np.float32)[:, None]
    bend = (
        margin
        + tilt * (xs - out_width / 2)
        + drift * np.sin(2 * np.pi * xs / wavelength + rng.uniform(0, 6.3))
    )
    src_y = ys - bend
    x_shift = max(slant * (height - baseline), -slant * baseline, 0.0)
    src_x = (xs - x_shift - slant * (baseline - src_y)) / stretch
    # Elastic: a coarse random grid (one cell ≈ a letter), upsampled to a smooth field.
    cell = unit * rng.uniform(0.6, 1.5)
    grid = (max(2, int(out_height / cell) + 2), max(2, int(out_width / cell) + 2))
    size = (out_width, out_height)
    src_x = src_x + cv2.resize(rng.normal(0, amplitude, grid).astype(np.float32), size)
    src_y = src_y + cv2.resize(rng.normal(0, amplitude, grid).astype(np.float32), size)
    return cv2.remap(canvas, src_x.astype(np.float32), src_y.astype(np.float32), cv2.INTER_LINEAR)


def scan(mask: np.ndarray, rng: np.random.Generator, textures: TextureBank) -> np.ndarray:
    """Turn an ink mask into a 32-px "scanned" line: uint8, bright ink on a dark background."""
    rows = np.flatnonzero(mask.max(axis=1) > 40)
    cols = np.flatnonzero(mask.max(axis=0) > 40)
    if len(rows) == 0:
        return np.zeros((HEIGHT, HEIGHT // 2), np.uint8)
    # Crop to the ink plus a random margin (a line segmenter is never pixel-tight).
    scale = (rows[-1] - rows[0] + 1) / HEIGHT
    top, bottom = (rng.uniform(0, 2.5, size=2) * scale).astype(int)
    left, right = (rng.uniform(0, 5, size=2) * scale).astype(int)
    padded = cv2.copyMakeBorder(mask, top, bottom, left, right, cv2.BORDER_CONSTANT, value=0)
    crop = padded[rows[0] : rows[-1] + 1 + top + bottom, cols[0] : cols[-1] + 1 + left + right]
    while crop.shape[0] >= 2.4 * HEIGHT:
        crop = cv2.pyrDown(crop)
    width = max(HEIGHT // 2, round(crop.shape[1] * HEIGHT / crop.shape[0]))
    ink = np.asarray(cv2.resize(crop, (width, HEIGHT)), dtype=np.float32) / 255  # bilinear

    if rng.random() < 0.3:  # scanned at a lower resolution, then upsampled
        factor = rng.uniform(0.5, 0.85)
        small = (max(1, round(width * factor)), max(1, round(HEIGHT * factor)))
        ink = np.asarray(
            cv2.resize(cv2.resize(ink, small, interpolation=cv2.INTER_AREA), (width, HEIGHT))
        )
    if rng.random() < 0.5:
        ink = np.asarray(cv2.GaussianBlur(ink, (0, 0), rng.uniform(0.3, 0.9)))

    # Ink darkness varies with flow; paper has a level, a gradient and texture. The ranges
    # keep ink-to-paper contrast above ~0.35 so no label is attached to an illegible line.
    ink_level = rng.uniform(0.5, 1.0)
    flow = 1.0 + rng.uniform(0.0, 0.25) * textures.crop(textures.paper, rng, HEIGHT, width)
    paper = rng.uniform(0.78, 1.0) + rng.uniform(-0.05, 0.05) * np.linspace(
        -1, 1, width, dtype=np.float32
    )
    paper = paper + rng.uniform(0.0, 0.06) * textures.crop(textures.paper, rng, HEIGHT, width)
    page = paper * (1.0 - np.clip(ink * ink_level * flow, 0.0, 1.0))
    page += rng.uniform(0.0, 0.05) * textures.crop(textures.grain, rng, HEIGHT, width)
    image = (255.0 - np.clip(page, 0.0, 1.0) * 255.0).astype(np.uint8)  # bright ink on dark

    if rng.random() < 0.3:
        quality = int(rng.integers(25, 90))
        ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
        if ok:
            image = np.asarray(cv2.imdecode(encoded, cv2.IMREAD_GRAYSCALE))
    return image


class LineRenderer:
    """Text → scanned line image, drawn with a random stroke face or outline font.

    ``stroke_fraction`` is the share of lines written with stroke faces, the rest use
    outline fonts (with only one kind available, every line uses it). Cursive faces are
    picked twice as often as print faces because most real writers join their letters.
    A source is only picked if it has every glyph of the text (capitals-only fonts get
    the text upper-cased, label included), so no line shows a missing-glyph box.
    Outline fonts are picked uniformly, or by style: with ``capitals_share`` set,
    capitals-only fonts write that share of the outline-font lines, and with
    ``joined_share`` set, joined scripts write that share of the rest, however many
    fonts each style has (a style's share of the lines is then a choice, not an
    accident of font counts, so fonts can be added without shifting the mix).
    ``glyph_jitter`` varies each outline-font letter's shape (see :func:`render_outline`).
    """

    def __init__(
        self,
        fonts: Sequence[Font],
        faces: Sequence[StrokeFace],
        stroke_fraction: float = 0.5,
        texture_seed: int = 0,
        capitals_share: float | None = None,
        joined_share: float | None = None,
        glyph_jitter: float = 0.0,
    ) -> None:
        if not fonts and not faces:
            raise DataError("no fonts and no stroke faces to render with")
        if not 0.0 <= stroke_fraction <= 1.0:
            raise DataError(f"stroke_fraction must be in [0, 1], got {stroke_fraction}")
        for name, share in (("capitals_share", capitals_share), ("joined_share", joined_share)):
            if share is not None and not 0.0 <= share <= 1.0:
                raise DataError(f"{name} must be in [0, 1], got {share}")
        if glyph_jitter < 0:
            raise DataError(f"glyph_jitter must be 0 or more, got {glyph_jitter}")
        self.capitals_share = capitals_share
        self.joined_share = joined_share
        self.glyph_jitter = glyph_jitter
        self.fonts = list(fonts)
        self.faces = list(faces)
        self.stroke_fraction = 1.0 if not self.fonts else 0.0 if not self.faces else stroke_fraction
        self.textures = TextureBank(texture_seed)
        self._glyphs: dict[str, OutlineGlyphs] = {}

    def render(self, text: str, rng: np.random.Generator) -> RenderedLine:
        """Render ``text``; raises :class:`DataError` if no source can draw all of it."""
        if rng.random() < self.stroke_fraction and (line := self._write(text, rng)) is not None:
            return line
        usable = [
            (font, label) for font in self.fonts if (label := _font_text(font, text)) is not None
        ]
        if usable:
            for share, is_style in (
                (self.capitals_share, lambda font: font.capitals_only),
                (self.joined_share, lambda font: font.joined),
            ):
                if share is not None:
                    styled = [pick for pick in usable if is_style(pick[0])]
                    others = [pick for pick in usable if not is_style(pick[0])]
                    if styled and others:
                        usable = styled if rng.random() < share else others
            font, label = usable[int(rng.integers(len(usable)))]
            key = str(font.path)
            if key not in self._glyphs:
                self._glyphs[key] = OutlineGlyphs(key)
            mask = render_outline(self._glyphs[key], label, rng, self.glyph_jitter)
            return RenderedLine(scan(mask, rng, self.textures), label, font.name)
        if (line := self._write(text, rng)) is not None:  # no outline font can: try the pen
            return line
        raise DataError(f"no font or stroke face can draw {text!r}; filter the text to the charset")

    def _write(self, text: str, rng: np.random.Generator) -> RenderedLine | None:
        faces = [face for face in self.faces if face.supports(text)]
        if not faces:
            return None
        weights = np.array([2.0 if face.cursive else 1.0 for face in faces])
        face = faces[int(rng.choice(len(faces), p=weights / weights.sum()))]
        trajectory = write_line(face, text, HandStyle.sample(rng, face.cursive), rng)
        mask = draw_trajectory(trajectory, rng, self.textures)
        return RenderedLine(scan(mask, rng, self.textures), text, face.name)


def _font_text(font: Font, text: str) -> str | None:
    """The text as ``font`` draws it (upper-cased if capitals-only), or None if it can't."""
    drawn = text.upper() if font.capitals_only else text
    return None if set(drawn) & font.missing else drawn
