"""Synthetic paragraphs: pages composed of ``synthetic_lines``' lines, the offline twin of
``iam_paragraphs``.

A page is several lines of one hand (an outline font or a stroke face) of a split's
``synthetic_lines`` lines, scaled to :data:`LINE_HEIGHT`, pasted a random pitch apart on
plain paper and turned a little: val pages are of the val hands' lines, test pages of
the test hands', train pages of the training hands' (the first ``line_pool`` lines the
line dataset renders for training). Pages are scored, not trained on, as IAM's are: the
Recognizer reads a page by finding its lines and reading each with the line model.

:func:`compose_pages` is the one composition: this dataset caches its pages, and
``benchmarks/paragraphs.py`` reads them together with the lines' own images. A page
depends on the seed and the layout only, never on the process that composed it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple, cast

import cv2
import numpy as np
from tqdm import tqdm

from text_recognizer.data.cache import cache_key, cache_path
from text_recognizer.data.module import PageDataModule, PageWriter
from text_recognizer.data.sources.download import bar_disabled
from text_recognizer.data.synthetic_lines import PackedLines, Split, SyntheticLines
from text_recognizer.errors import ConfigError
from text_recognizer.preprocessing import rotate

PAGES_VERSION = 1  # bump when the composition changes, so old caches are not read
#: Lines are pasted this many pixels high (before ``scale``): twice the line model's 32 px.
LINE_HEIGHT = 64
#: The shipped line model's lines (``configs/lines_crnn.yaml``): seed 42, 30 % stroke
#: faces, 2,000 val and test lines; pages of them reuse that config's val and test caches.
SHIPPED_LINE_SEED, SHIPPED_STROKE_FRACTION, SHIPPED_HELD_OUT_LINES = 42, 0.3, 2000


class LineMaterial(NamedTuple):
    """Lines to compose pages of: dark-ink images on their own paper, their texts, and
    each hand's line indices (one page is of one hand's lines)."""

    images: list[np.ndarray]
    texts: list[str]
    hands: dict[str, list[int]]


def hand_material(lines: PackedLines) -> LineMaterial:
    """``synthetic_lines``' cached lines (bright ink) as dark ink, grouped by hand in the
    order of the hands' names."""
    by_hand: dict[str, list[int]] = {}
    for index, source in enumerate(lines.sources):
        by_hand.setdefault(str(source), []).append(index)
    return LineMaterial(
        [255 - lines.image(i) for i in range(len(lines))],
        [str(text) for text in lines.texts],
        {hand: by_hand[hand] for hand in sorted(by_hand)},
    )


@dataclass(frozen=True)
class PageLayout:
    """How lines are laid out on a composed page.

    Attributes:
        lines: fewest and most lines a page (a hand's lines, none twice on a page).
        spacing: line pitch range, in line heights (under 1: a line's descenders reach
            into the next line's ascenders).
        tilt: largest turn of the page, degrees, either way.
        scale: the page resized by this factor at the end (lines ``LINE_HEIGHT * scale``
            px high).
        paper: the paper's grey level; the ink keeps its contrast to it.
    """

    lines: tuple[int, int] = (5, 10)
    spacing: tuple[float, float] = (0.95, 1.4)
    tilt: float = 2.0
    scale: float = 1.0
    paper: int = 255


@dataclass
class ComposedPage:
    """A composed page (uint8 dark ink on paper), the lines' own images as rendered
    (dark ink; for reading them alone), their texts and the hand that wrote them."""

    image: np.ndarray
    lines: list[np.ndarray]
    texts: list[str]
    hand: str

    @property
    def text(self) -> str:
        """The page's text, as a page's is read: its lines joined by newlines."""
        return "\n".join(self.texts)


def on_paper(line: np.ndarray, paper: int) -> np.ndarray:
    """A dark-ink line with its own paper raised to ``paper`` (so pasting it leaves no box
    edge), scaled to :data:`LINE_HEIGHT`."""
    level = float(np.median(line))
    scaled = np.clip(paper - (level - line.astype(np.float32)) * paper / level, 0, paper)
    factor = LINE_HEIGHT / line.shape[0]
    return cv2.resize(scaled.astype(np.uint8), None, fx=factor, fy=factor)


def scale_page(page: np.ndarray, factor: float) -> np.ndarray:
    """``page`` resized by ``factor`` (area averaging down, cubic up); 1: as it is."""
    if factor == 1:
        return page
    interpolation = cv2.INTER_AREA if factor < 1 else cv2.INTER_CUBIC
    return cv2.resize(page, None, fx=factor, fy=factor, interpolation=interpolation)


def compose_pages(
    material: LineMaterial, count: int, layout: PageLayout, seed: int
) -> Iterator[ComposedPage]:
    """``count`` pages of ``material``'s lines laid out as ``layout`` says: each of one
    hand's lines, a pure function of the arguments.

    A page takes ``layout.lines`` lines (a count drawn per page) of one hand that has as
    many, scales each to :data:`LINE_HEIGHT`, pastes them a pitch drawn from
    ``layout.spacing`` apart, each shifted right by up to 40 px, on ``layout.paper`` with
    a line height's margin above and two below, turns the page by up to ``layout.tilt``
    degrees and resizes it by ``layout.scale``.
    """
    images, texts, hands = material
    rng = np.random.default_rng(seed)
    low, high = layout.lines
    paper = layout.paper
    for _ in range(count):
        # A fixed count draws nothing: pages of six lines are those benchmarks/paragraphs.py
        # --lines 6 has always composed, with the figures measured on them.
        lines = low if low == high else int(rng.integers(low, high + 1))
        eligible = [hand for hand, indices in hands.items() if len(indices) >= lines]
        if not eligible:
            most = max((len(indices) for indices in hands.values()), default=0)
            raise ConfigError(
                f"no hand has {lines} lines to make a page of (the most any has: {most}): "
                "render more lines a split (line_pool) or ask for fewer a page (lines_per_page)"
            )
        hand = eligible[int(rng.integers(len(eligible)))]
        chosen = [int(i) for i in rng.choice(hands[hand], size=lines, replace=False)]
        pasted = [on_paper(images[index], paper) for index in chosen]
        steps = rng.uniform(*layout.spacing, lines - 1) * LINE_HEIGHT
        tops = np.cumsum([0, *steps]).astype(int) + LINE_HEIGHT
        width = max(line.shape[1] for line in pasted) + 120
        page = np.full((tops[-1] + 2 * LINE_HEIGHT, width), paper, np.uint8)
        for top, line in zip(tops, pasted, strict=True):
            left = 40 + int(rng.integers(0, 40))
            window = page[top : top + LINE_HEIGHT, left : left + line.shape[1]]
            np.minimum(window, line, out=window)  # overlapping lines: ink over ink
        angle = float(rng.uniform(-layout.tilt, layout.tilt))
        page = 255 - rotate(255 - page, angle, 255 - paper).astype(np.uint8)
        yield ComposedPage(
            scale_page(page, layout.scale),
            [images[index] for index in chosen],
            [texts[index] for index in chosen],
            hand,
        )


def _pair(name: str, value: float | Sequence[float], example: str) -> tuple[float, float]:
    """``[low, high]`` (or one number for both) from a config, or a ConfigError."""
    bounds = [value] if isinstance(value, int | float) else list(value)
    if len(bounds) == 1:
        bounds *= 2
    if len(bounds) != 2 or not 0 < bounds[0] <= bounds[1]:
        raise ConfigError(
            f"{name} = {value!r} must be [low, high] with 0 < low <= high (or one number for "
            f"both), e.g. {example}"
        )
    return float(bounds[0]), float(bounds[1])


class SyntheticParagraphs(PageDataModule):
    """Pages composed of synthetic handwritten lines: ``iam_paragraphs`` without IAM.

    Args:
        num_train, num_val, num_test: pages a split.
        lines_per_page: ``[fewest, most]`` lines a page (one number: exactly that many).
        spacing: ``[low, high]`` line pitch, in line heights (under 1: lines overlap).
        tilt: largest turn of a page, degrees, either way.
        scale: pages resized by this factor once composed (lines are
            ``64 * scale`` px high; IAM's at 150 dpi are ~45 px: 0.7).
        paper: grey level of the paper (255: white); the ink keeps its contrast to it.
        line_pool: ``synthetic_lines`` lines rendered a split to compose pages of (its
            ``num_train``, ``num_val``, ``num_test``).
        line_seed, stroke_fraction: those lines' seed and share of stroke faces; the
            defaults are the shipped line model's, whose val and test caches are reused.
        seed: the pages' layout: which hand and lines, pitch, shift, tilt.
    """

    def __init__(
        self,
        num_train: int = 100,
        num_val: int = 100,
        num_test: int = 100,
        lines_per_page: int | Sequence[int] = (5, 10),
        spacing: float | Sequence[float] = (0.95, 1.4),
        tilt: float = 2.0,
        scale: float = 1.0,
        paper: int = 255,
        line_pool: int = SHIPPED_HELD_OUT_LINES,
        line_seed: int = SHIPPED_LINE_SEED,
        stroke_fraction: float = SHIPPED_STROKE_FRACTION,
        seed: int = 0,
        batch_size: int = 1,
        num_workers: int = 0,
        root: Path | None = None,
    ) -> None:
        super().__init__(batch_size=batch_size, num_workers=num_workers, seed=seed, root=root)
        for name, value in (("num_train", num_train), ("num_val", num_val), ("num_test", num_test)):
            if value < 1:
                raise ConfigError(f"{name} = {value} must be at least 1 page")
        low, high = _pair("lines_per_page", lines_per_page, "[5, 10]")
        if low != int(low) or high != int(high):
            raise ConfigError(f"lines_per_page = {lines_per_page!r} must be whole lines")
        if not 0 <= tilt <= 45:
            raise ConfigError(
                f"tilt = {tilt} must be 0 to 45 degrees (a page on its side is another matter: "
                "benchmarks/paragraphs.py --turn)"
            )
        if not 0.25 <= scale <= 4:
            raise ConfigError(
                f"scale = {scale} must be 0.25 to 4 (lines {LINE_HEIGHT} px high at 1; "
                "0.7 makes them IAM's ~45 px at 150 dpi)"
            )
        if not 64 <= paper <= 255:
            raise ConfigError(f"paper = {paper} must be a grey level from 64 to 255 (white)")
        if line_pool < high:
            raise ConfigError(
                f"line_pool = {line_pool} is fewer lines than a page takes (lines_per_page up "
                f"to {int(high)})"
            )
        self.sizes = {"train": num_train, "val": num_val, "test": num_test}
        self.layout = PageLayout(
            (int(low), int(high)),
            _pair("spacing", spacing, "[0.95, 1.4]"),
            float(tilt),
            float(scale),
            int(paper),
        )
        self.lines = SyntheticLines(
            num_train=line_pool,
            num_val=line_pool,
            num_test=line_pool,
            stroke_fraction=stroke_fraction,
            seed=line_seed,
            root=self.root,
        )

    def params(self, split: str) -> dict[str, Any]:
        """Everything that determines a split's cached pages (the cache key): the layout,
        the seed, and the lines' own cache key."""
        layout = self.layout
        return {
            "pages": PAGES_VERSION,
            "split": split,
            "num": self.sizes[split],
            "lines_per_page": list(layout.lines),
            "spacing": list(layout.spacing),
            "tilt": layout.tilt,
            "scale": layout.scale,
            "paper": layout.paper,
            "seed": self.seed,
            "lines": cache_key(self.lines.params(cast(Split, split))),
        }

    def cache_file(self, split: str) -> Path:
        return cache_path(
            self.root / "synthetic_paragraphs", f"synthetic_paragraphs_{split}", self.params(split)
        )

    def material(self, split: str) -> LineMaterial:
        """The split's lines (rendered and cached by ``synthetic_lines`` if they are not
        yet), grouped by hand."""
        self.lines.prepare_splits([split])
        return hand_material(PackedLines.read(self.lines.cache_file(cast(Split, split))))

    def prepare_splits(self, splits: Sequence[str]) -> None:
        # Only the splits asked for: scoring the test pages renders no training lines.
        for split in splits:
            path = self.cache_file(split)
            if path.exists():
                continue
            count = self.sizes[split]
            composed = compose_pages(self.material(split), count, self.layout, self.seed)
            progress = tqdm(
                composed,
                total=count,
                unit="page",
                leave=False,
                desc=f"SyntheticParagraphs {split}",
                disable=bar_disabled(),
            )
            with PageWriter(path, self.params(split)) as pages:  # each page written as composed
                for index, page in enumerate(progress):
                    pages.add(page.image, page.text, f"{split}_{index:04d}:{page.hand}")

    def __repr__(self) -> str:
        layout = self.layout
        low, high = layout.lines
        lines = [
            f"SyntheticParagraphs: pages of synthetic_lines' lines, one hand a page, "
            f"{low if low == high else f'{low}-{high}'} lines a page, pitch "
            f"{layout.spacing[0]:g}-{layout.spacing[1]:g} line heights, tilt up to "
            f"{layout.tilt:g} degrees, lines {LINE_HEIGHT * layout.scale:g} px high, paper "
            f"{layout.paper}, seed {self.seed}",
            f"  lines:   synthetic_lines seed {self.lines.seed}, stroke_fraction "
            f"{self.lines.stroke_fraction:g}, {self.lines.sizes['test']:,} a split "
            f"(under {self.root / 'synthetic_lines'})",
        ]
        lines += self.split_lines(
            lambda pages: f" of {len({name.split(':', 1)[1] for name in pages.names})} hands"
        )
        return "\n".join(lines)
