"""Handwriting synthesis from single-stroke vector fonts: text → pen trajectories.

Outline fonts are filled shapes: every ``e`` of a line is the same pixels, letters never
join, and the stroke has no pressure. A single-stroke ("engraving") font instead stores
the path a pen follows, so we can *write* with it: each glyph gets its own small affine
jitter, the whole line is bent by smooth random displacement fields (so the same letter
differs within a line), the pen's width follows a pressure curve along the path, and in
cursive faces consecutive letters are joined by ligature strokes. This module produces
the trajectories; :mod:`text_recognizer.data.line_render` draws them.

Faces (shipped in ``assets/strokes``, unmodified SVG fonts from Inkscape's Hershey Text
extension): eight EMS fonts (SIL OFL 1.1, single-line derivatives of Google Fonts by
Sheldon B. Michaels / Evil Mad Scientist) and two Hershey fonts (Dr A. V. Hershey, NBS;
free with acknowledgement, see ``assets/strokes/README.md``). Coordinates are in *line
units*: the baseline is ``y = 0`` and the top of ``x`` is ``y = -X_HEIGHT`` (y grows
downwards, as in images), so capitals are about 1 tall. Faces are scaled by their
x-height, not their cap height, because the x-height is what a reader (and a model)
sees: a script face with towering capitals keeps them tall instead of shrinking its
lowercase.
"""

from __future__ import annotations

import dataclasses
import functools
import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from text_recognizer.errors import DataError
from text_recognizer.paths import ASSETS_DIR

Split = Literal["train", "val", "test"]
STROKES_DIR = ASSETS_DIR / "strokes"

# file stem -> (split, cursive, outline font it was derived from). Held-out faces are
# chosen to look unlike any training face; a face derived from an outline font that
# the fonts source holds out follows that font's split (see ``list_faces``).
FACES: dict[str, tuple[Split, bool, str | None]] = {
    "EMSAllure": ("train", True, "Allura"),
    "EMSTech": ("train", False, "Architects Daughter"),
    "EMSNixish": ("train", False, "Nixie One"),
    "EMSNixishItalic": ("train", False, "Nixie One"),
    "EMSReadability": ("train", False, "Source Sans Pro"),
    "EMSReadabilityItalic": ("train", False, "Source Sans Pro"),
    "HersheySans1": ("test", False, None),
    "HersheyScript1": ("train", True, None),
    "EMSFelix": ("val", False, "Felipa"),
    "EMSElfin": ("test", False, "Mountains of Christmas"),
}

_SVG = "{http://www.w3.org/2000/svg}"
_PATH_TOKEN = re.compile(r"[MLCZmlcz]|-?(?:\d+\.?\d*|\.\d+)(?:e[-+]?\d+)?")
X_HEIGHT = 0.6  # line units; a typical x-height / cap-height ratio of handwriting
_MAX_SEGMENT = 0.12  # line units; dense enough for the displacement fields to bend strokes


@dataclass(frozen=True)
class Glyph:
    """One character's pen path, in line units.

    ``starts[i]`` is True where the pen touches down (a new stroke begins); ``entry``
    and ``exit`` are the left- and right-most stroke ends, where cursive ligatures attach.
    """

    points: np.ndarray  # float32 [n, 2]
    starts: np.ndarray  # bool [n]
    advance: float
    entry: tuple[float, float]
    exit: tuple[float, float]
    anchored: np.ndarray = field(init=False, repr=False)  # points + entry + exit, float64

    def __post_init__(self) -> None:
        anchored = np.concatenate([self.points, (self.entry, self.exit)]).astype(np.float64)
        object.__setattr__(self, "anchored", anchored)


@dataclass(frozen=True)
class StrokeFace:
    """A single-stroke font: its glyphs, licence and the split it belongs to."""

    name: str
    path: Path
    licence: str
    split: Split
    cursive: bool
    derived_from: str | None
    glyphs: Mapping[str, Glyph] = field(repr=False)

    @property
    def supported(self) -> frozenset[str]:
        """Characters this face can write (space included)."""
        return frozenset(self.glyphs) | {" "}

    def supports(self, text: str) -> bool:
        return set(text) <= self.supported


def _parse_path(d: str) -> list[np.ndarray]:
    """SVG path data (M, L, C, Z, absolute as in these fonts) → list of polylines."""
    tokens = _PATH_TOKEN.findall(d)
    strokes: list[list[tuple[float, float]]] = []
    current: list[tuple[float, float]] = []
    command = ""
    i = 0
    while i < len(tokens):
        if tokens[i] in "MLCZmlcz":
            command = tokens[i]
            i += 1
            if command in "Zz" and current:
                current.append(current[0])
            continue
        if command == "M":
            if len(current) > 1:
                strokes.append(current)
            current = [(float(tokens[i]), float(tokens[i + 1]))]
            command = "L"  # further pairs after M are line-tos
            i += 2
        elif command == "L":
            current.append((float(tokens[i]), float(tokens[i + 1])))
            i += 2
        elif command == "C":
            p0 = np.array(current[-1])
            p1, p2, p3 = (
                np.array((float(tokens[i + k]), float(tokens[i + k + 1]))) for k in (0, 2, 4)
            )
            for s in np.linspace(0, 1, 7)[1:]:
                point = (
                    (1 - s) ** 3 * p0
                    + 3 * (1 - s) ** 2 * s * p1
                    + 3 * (1 - s) * s**2 * p2
                    + s**3 * p3
                )
                current.append((float(point[0]), float(point[1])))
            i += 6
        else:
            raise DataError(
                f"unsupported SVG path command {command!r} in stroke font path {d[:40]!r}"
            )
    if len(current) > 1:
        strokes.append(current)
    return [np.asarray(s, dtype=np.float64) for s in strokes]


def _densify(stroke: np.ndarray, max_segment: float) -> np.ndarray:
    """Insert points so no segment is longer than ``max_segment``."""
    lengths = np.linalg.norm(np.diff(stroke, axis=0), axis=1)
    pieces = np.maximum(1, np.ceil(lengths / max_segment).astype(int))
    out = [stroke[:1]]
    for a, b, n in zip(stroke[:-1], stroke[1:], pieces, strict=True):
        t = np.arange(1, n + 1)[:, None] / n
        out.append(a + (b - a) * t)
    return np.concatenate(out)


def _make_glyph(strokes: list[np.ndarray], advance: float) -> Glyph:
    dense = [_densify(s, _MAX_SEGMENT) for s in strokes]
    points = np.concatenate(dense).astype(np.float32)
    starts = np.zeros(len(points), dtype=bool)
    starts[np.cumsum([0] + [len(s) for s in dense[:-1]])] = True
    ends = np.array([p for s in strokes for p in (s[0], s[-1])])
    entry, exit_ = ends[np.argmin(ends[:, 0])], ends[np.argmax(ends[:, 0])]
    return Glyph(
        points,
        starts,
        advance,
        (float(entry[0]), float(entry[1])),
        (float(exit_[0]), float(exit_[1])),
    )


@functools.cache
def load_face(stem: str) -> StrokeFace:
    """Parse ``assets/strokes/<stem>.svg`` into a :class:`StrokeFace` (cached per process)."""
    if stem not in FACES:
        raise DataError(f"unknown stroke face {stem!r}; known faces: {', '.join(sorted(FACES))}")
    path = STROKES_DIR / f"{stem}.svg"
    if not path.exists():
        raise DataError(f"stroke font {path} is missing; reinstall text-recognizer")
    # Shipped asset, not user input: the stdlib parser is safe enough here.
    root = ET.parse(path).getroot()  # noqa: S314
    font = root.find(f".//{_SVG}font")
    face = font.find(f"{_SVG}font-face") if font is not None else None
    if font is None or face is None:
        raise DataError(f"{path} is not an SVG font (no <font>/<font-face>)")
    default_advance = float(font.get("horiz-adv-x", "500"))
    raw: dict[str, tuple[float, list[np.ndarray]]] = {}
    for element in font.iter(f"{_SVG}glyph"):
        char = element.get("unicode")
        if char is None or len(char) != 1:
            continue
        raw[char] = (
            float(element.get("horiz-adv-x", default_advance)),
            _parse_path(element.get("d", "")),
        )
    if "x" not in raw or not raw["x"][1]:
        raise DataError(f"{path} has no 'x' glyph to measure its x-height")
    unit = max(float(s[:, 1].max()) for s in raw["x"][1]) / X_HEIGHT  # SVG y is up, baseline 0
    glyphs: dict[str, Glyph] = {}
    for char, (advance, strokes) in raw.items():
        if char.isspace() or not strokes:
            continue
        flipped = [np.stack([s[:, 0] / unit, -s[:, 1] / unit], axis=1) for s in strokes]
        # Drop stray strokes far outside the glyph's box (EMS Elfin's ';' has one 4 units off).
        kept = [s for s in flipped if s[:, 0].min() < advance / unit + 0.5 and s[:, 0].max() > -0.5]
        if kept:
            glyphs[char] = _make_glyph(kept, advance / unit)
    split, cursive, derived_from = FACES[stem]
    glyphs = _loosen(glyphs, min_gap=-0.04 if cursive else 0.08)
    metadata = (root.findtext(f"{_SVG}metadata") or "").strip()
    licence = (
        "OFL-1.1" if "Open Font License" in metadata else "Hershey (free with acknowledgement)"
    )
    return StrokeFace(
        name=face.get("font-family", stem),
        path=path,
        licence=licence,
        split=split,
        cursive=cursive,
        derived_from=derived_from,
        glyphs=glyphs,
    )


def _loosen(glyphs: dict[str, Glyph], min_gap: float) -> dict[str, Glyph]:
    """Widen every advance if the face's lowercase letters overlap more than ``min_gap``.

    Some faces (EMS Allure, EMS Felix) are set so tight that, with a writer's jitter on
    top, neighbouring letters collide into unreadable blots.
    """
    lowercase = [glyphs[c] for c in "abcdefghijklmnopqrstuvwxyz" if c in glyphs]
    gap = (
        float(np.mean([g.advance - np.ptp(g.points[:, 0]) for g in lowercase]))
        if lowercase
        else 0.0
    )
    if gap >= min_gap:
        return glyphs
    return {c: dataclasses.replace(g, advance=g.advance + min_gap - gap) for c, g in glyphs.items()}


def _family_key(name: str) -> str:
    """ "Architects Daughter" and "architects-daughter" both become "architectsdaughter"."""
    return re.sub(r"[^a-z0-9]", "", name.lower())


def _outline_splits() -> dict[str, Split]:
    """Split of each shipped outline font, by family key."""
    from text_recognizer.data.sources.fonts import list_fonts

    return {_family_key(font.name): font.split for font in list_fonts()}


def list_faces(split: Split | None = None) -> list[StrokeFace]:
    """Shipped stroke faces, optionally of one split.

    A face derived from an outline font that is held out (val/test) is moved into that
    font's split, so a held-out hand is never learnt from its single-line twin.
    """
    outline = _outline_splits()
    faces = []
    for stem in FACES:
        face = load_face(stem)
        parent_split = outline.get(_family_key(face.derived_from or ""))
        if parent_split in ("val", "test") and parent_split != face.split:
            face = dataclasses.replace(face, split=parent_split)
        if split is None or face.split == split:
            faces.append(face)
    return faces


@dataclass(frozen=True)
class HandStyle:
    """One writer's habits for one line, in line units (drawn by :meth:`sample`)."""

    slant: float  # shear: x += slant * height above baseline
    width_scale: float  # horizontal stretch of every glyph
    letter_spacing: float  # extra gap after each glyph
    word_spacing: float  # width of a space
    glyph_scale_sd: float  # per-glyph size jitter
    glyph_rotation_sd: float  # per-glyph rotation jitter (radians)
    glyph_shift_sd: float  # per-glyph baseline jitter
    drift_amplitude: float  # slow wave of the baseline
    drift_wavelength: float
    tilt: float  # baseline slope (a small rotation of the line)
    warp_amplitude: float  # smooth displacement field: letter shapes vary along the line
    warp_wavelength: float
    wobble_amplitude: float  # fine, faster field: an unsteady hand
    pen_width: float  # nominal nib width
    pressure_variation: float  # relative nib-width swing along the strokes
    join_probability: float  # chance a cursive writer joins two letters

    @classmethod
    def sample(cls, rng: np.random.Generator, cursive: bool = False) -> HandStyle:
        """A random writer; the ranges are wide on purpose (no two lines alike)."""
        return cls(
            slant=float(np.clip(rng.normal(0.12, 0.16), -0.25, 0.5)),
            width_scale=float(rng.uniform(0.7, 1.15)),
            letter_spacing=float(rng.uniform(-0.03, 0.06) if cursive else rng.uniform(-0.03, 0.14)),
            word_spacing=float(rng.uniform(0.3, 0.8)),
            glyph_scale_sd=float(rng.uniform(0.0, 0.07)),
            glyph_rotation_sd=float(rng.uniform(0.0, 0.07)),
            glyph_shift_sd=float(rng.uniform(0.0, 0.05)),
            drift_amplitude=float(rng.uniform(0.0, 0.12)),
            drift_wavelength=float(rng.uniform(4.0, 16.0)),
            tilt=float(rng.normal(0.0, 0.012)),
            warp_amplitude=float(rng.uniform(0.01, 0.06)),
            warp_wavelength=float(rng.uniform(0.7, 2.5)),
            wobble_amplitude=float(rng.uniform(0.0, 0.015)),
            pen_width=float(rng.uniform(0.05, 0.12)),
            pressure_variation=float(rng.uniform(0.0, 0.5)),
            join_probability=float(rng.uniform(0.7, 1.0)) if cursive else 0.0,
        )


@dataclass(frozen=True)
class Trajectory:
    """The pen's path for a line: points, pen-down marks and the nib.

    Pressure is not stored per point: the renderer modulates the nib width with a smooth
    random field over the page, so the width changes gradually along every stroke
    (and drawing stays two cv2 calls per line instead of one per width change).
    """

    points: np.ndarray  # float32 [n, 2], line units, y down
    starts: np.ndarray  # bool [n], True where a stroke begins
    pen_width: float  # nominal nib width, line units
    pressure_variation: float  # relative nib-width swing along the strokes


def _smooth_field(
    points: np.ndarray,
    amplitude: float,
    wavelength: float,
    rng: np.random.Generator,
    waves: int = 3,
) -> np.ndarray:
    """A smooth random displacement: a sum of plane waves in random directions."""
    angles = rng.uniform(0, np.pi, size=2 * waves)
    frequencies = rng.uniform(0.6, 1.4, size=2 * waves) / wavelength
    wave_vectors = np.stack([np.cos(angles), np.sin(angles)]) * (2 * np.pi * frequencies)  # [2, 2w]
    phases = rng.uniform(0, 2 * np.pi, size=2 * waves)
    weights = np.zeros((2 * waves, 2))  # the first `waves` waves move x, the others y
    weights[:waves, 0] = rng.normal(0, amplitude / np.sqrt(waves), size=waves)
    weights[waves:, 1] = rng.normal(0, amplitude / np.sqrt(waves), size=waves)
    return np.sin(points @ wave_vectors + phases) @ weights


def _connectors(
    starts: np.ndarray, stops: np.ndarray, sags: np.ndarray, points: int = 6
) -> np.ndarray:
    """Ligatures ``[k, points, 2]`` from each start to its stop: shallow curves sagging down."""
    t = np.linspace(0.0, 1.0, points)[None, :, None]
    links = starts[:, None, :] + (stops - starts)[:, None, :] * t
    links[:, :, 1] += sags[:, None] * 4 * t[..., 0] * (1 - t[..., 0])
    return links


def write_line(
    face: StrokeFace, text: str, style: HandStyle, rng: np.random.Generator
) -> Trajectory:
    """Lay ``text`` out with ``face`` the way the writer ``style`` would, as pen paths.

    Raises :class:`DataError` if the face lacks a glyph (callers pick a face that
    :meth:`StrokeFace.supports` the text, so a missing-glyph box can never be drawn).
    """
    missing = set(text) - face.supported
    if missing:
        raise DataError(f"stroke face {face.name!r} cannot write {''.join(sorted(missing))!r}")
    glyphs = [face.glyphs.get(c) for c in text]
    n = len(text)
    scale = 1.0 + rng.normal(0.0, style.glyph_scale_sd, size=(n, 2))
    scale[:, 0] *= style.width_scale
    rotation = rng.normal(0.0, style.glyph_rotation_sd, size=n)
    shift = rng.normal(0.0, style.glyph_shift_sd, size=n)
    is_space = np.array([g is None for g in glyphs])
    advances = np.array([0.0 if g is None else g.advance for g in glyphs])
    advances = np.where(
        is_space,
        style.word_spacing * rng.uniform(0.8, 1.25, size=n),
        advances * scale[:, 0] + style.letter_spacing,
    )
    origins = np.concatenate([[0.0], np.cumsum(advances)[:-1]])

    # Per-glyph affine: scale and rotate about the glyph's x-height centre, then place.
    # Glyph points and their ligature anchors (entry, exit) are transformed together.
    drawn = np.flatnonzero(~is_space)
    if len(drawn) == 0:  # whitespace only: an empty trajectory
        return Trajectory(np.zeros((0, 2), np.float32), np.zeros(0, bool), style.pen_width, 0.0)
    sources = [g for g in glyphs if g is not None]  # the glyphs of `drawn`, in order
    counts = np.array([len(g.points) + 2 for g in sources])
    local = np.concatenate([g.anchored for g in sources])
    owner = np.repeat(drawn, counts)
    centre = np.stack(
        [np.repeat([g.advance / 2 for g in sources], counts), np.full(len(local), -0.3)], 1
    )
    local = (local - centre) * scale[owner]
    cos, sin = np.cos(rotation[owner]), np.sin(rotation[owner])
    placed = np.stack(
        [cos * local[:, 0] - sin * local[:, 1], sin * local[:, 0] + cos * local[:, 1]], 1
    )
    placed += centre
    placed[:, 0] += origins[owner]
    placed[:, 1] += shift[owner]
    is_anchor = np.zeros(len(placed), dtype=bool)
    is_anchor[np.cumsum(counts) - 1] = True
    is_anchor[np.cumsum(counts) - 2] = True
    anchors = placed[is_anchor].reshape(-1, 2, 2)  # [glyph, (entry, exit), xy]
    pieces = [placed[~is_anchor]]
    starts = [np.concatenate([g.starts for g in sources])]

    # Cursive ligatures: join a letter's exit to the next letter's entry when they are close.
    if face.cursive and style.join_probability > 0 and len(drawn) > 1:
        letters = np.array([c.isalpha() for c in text])
        exits, entries = anchors[:-1, 1], anchors[1:, 0]
        join = (
            (np.diff(drawn) == 1)
            & letters[drawn[:-1]]
            & letters[drawn[1:]]
            & (np.hypot(*(entries - exits).T) < 0.6)
            & (rng.random(len(exits)) < style.join_probability)
        )
        if join.any():
            links = _connectors(
                exits[join], entries[join], rng.uniform(0.0, 0.1, size=int(join.sum()))
            )
            pieces.append(links.reshape(-1, 2))
            link_starts = np.zeros(links.shape[:2], dtype=bool)
            link_starts[:, 0] = True
            starts.append(link_starts.ravel())

    points = np.concatenate(pieces).astype(np.float64)
    pen_down = np.concatenate(starts)

    # Whole-line geometry: baseline drift and tilt, slant, smooth and fine warps.
    x = points[:, 0]
    phase = rng.uniform(0, 2 * np.pi)
    points[:, 1] += style.drift_amplitude * np.sin(2 * np.pi * x / style.drift_wavelength + phase)
    points[:, 1] += style.tilt * x
    points[:, 0] -= style.slant * points[:, 1]
    points += _smooth_field(points, style.warp_amplitude, style.warp_wavelength, rng)
    points += _smooth_field(points, style.wobble_amplitude, 0.25, rng)

    return Trajectory(
        points.astype(np.float32), pen_down, style.pen_width, style.pressure_variation
    )
