"""Whole sentences rendered as scanned handwritten lines, 32 px high: the line model's data.

Each line is a word-aligned piece of real English (:class:`SentenceGenerator`), drawn
either by a simulated writer with a single-stroke face (pen trajectories, pressure,
ligatures; :mod:`text_recognizer.data.sources.strokes`) or with a handwriting outline
font placed glyph by glyph, then "scanned" (:mod:`text_recognizer.data.line_render`).
Train lines use train fonts and faces only; val/test lines use held-out ones, so their
error measures an unseen hand, not memorised glyphs.

Two modes for training data: cached (``num_train`` lines rendered once into HDF5 by
``prepare_data()``, in parallel) or streamed (``stream=True``: every epoch renders
``num_train`` new lines on the fly in the DataLoader workers). Val and test are always
cached. Lines are rendered in chunks of ``CHUNK_SIZE`` with a seed per (split, epoch,
chunk), so the data depends on ``seed`` and never on the number of processes.

``python -m text_recognizer.data.synthetic_lines --write-samples DIR`` writes demo
images from the test fonts.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import logging
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal, TypeVar

import cv2
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, IterableDataset, get_worker_info
from tqdm import tqdm

from text_recognizer.charset import DEFAULT_CHARSET
from text_recognizer.data.cache import cache_path, read_h5
from text_recognizer.data.line_render import (
    HEIGHT,
    LineRenderer,
    OutlineGlyphs,
    RenderedLine,
    render_outline,
)
from text_recognizer.data.module import BaseDataModule, StripWriter, splits_for
from text_recognizer.data.render_pool import interruptible, pool_results, render_pool
from text_recognizer.data.sentences import SentenceGenerator
from text_recognizer.data.sources.download import bar_disabled
from text_recognizer.data.sources.fonts import font_supports, list_fonts
from text_recognizer.data.sources.strokes import list_faces
from text_recognizer.errors import ConfigError
from text_recognizer.preprocessing import rotate

Split = Literal["train", "val", "test"]
SPLITS: tuple[Split, ...] = ("train", "val", "test")
# Bump when rendering changes, so old caches are never reused.
RENDER_VERSION = 1
CHUNK_SIZE = 256  # lines per work unit, each with its own seed

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LineSpec:
    """Everything that decides what a split's lines look like (picklable for workers)."""

    split: Split
    seed: int
    max_length: int
    stroke_fraction: float
    sentence_source: str
    numbers: float
    capitals_share: float | None = None
    joined_share: float | None = None
    glyph_jitter: float = 0.0


@functools.lru_cache(maxsize=8)
def _renderer(
    split: Split,
    stroke_fraction: float,
    seed: int,
    capitals_share: float | None = None,
    joined_share: float | None = None,
    glyph_jitter: float = 0.0,
) -> LineRenderer:
    """One renderer per process and split: its glyph caches are reused across chunks."""
    fonts, faces = list_fonts(split), list_faces(split)
    return LineRenderer(
        fonts, faces, stroke_fraction, seed, capitals_share, joined_share, glyph_jitter
    )


def render_lines(spec: LineSpec, chunk: int, count: int, epoch: int = 0) -> Iterator[RenderedLine]:
    """Render chunk ``chunk`` (``count`` lines) of a split; a pure function of its arguments."""
    seed = np.random.SeedSequence(spec.seed, spawn_key=(SPLITS.index(spec.split), epoch, chunk))
    rng = np.random.default_rng(seed)
    sentences = SentenceGenerator(
        spec.max_length, spec.sentence_source, int(rng.integers(2**63)), spec.numbers
    )
    renderer = _renderer(
        spec.split,
        spec.stroke_fraction,
        spec.seed,
        spec.capitals_share,
        spec.joined_share,
        spec.glyph_jitter,
    )
    for _ in range(count):
        # The longer of two pieces: lines on a page are mostly long, and the generator's
        # pieces are uniform in length.
        text = max(sentences.generate(), sentences.generate(), key=len)
        yield renderer.render(text, rng)


def _render_chunk(task: tuple[LineSpec, int, int]) -> tuple[list[np.ndarray], list[str], list[str]]:
    lines = list(render_lines(*task))
    return (
        [line.image for line in lines],
        [line.text for line in lines],
        [line.source for line in lines],
    )


def _init_worker(worker_id: int = 0) -> None:
    cv2.setNumThreads(0)  # OpenCV's thread pool hangs or oversubscribes inside workers
    torch.set_num_threads(1)


def _encode(text: str) -> torch.Tensor:
    return torch.tensor(DEFAULT_CHARSET.encode(text), dtype=torch.long)


PackedT = TypeVar("PackedT", bound="PackedLines")


class PackedLines(Dataset[tuple[torch.Tensor, torch.Tensor]]):
    """Variable-width lines stored side by side in one ``[32, total_width]`` uint8 strip.

    When sent to a DataLoader worker it travels as the path of its cache file and the
    worker reads the strip itself: spawn pickles datasets, and piping gigabytes of pixels
    to every worker would take longer than the epoch. (Cached lines need no loader
    workers anyway: an item is a slice and a division.)
    """

    def __init__(
        self,
        strip: np.ndarray,
        offsets: np.ndarray,
        texts: np.ndarray,
        sources: np.ndarray,
        cache_file: Path | None = None,
    ) -> None:
        self.strip, self.offsets, self.texts, self.sources = strip, offsets, texts, sources
        self.cache_file = cache_file

    @classmethod
    def read(cls: type[PackedT], path: Path) -> PackedT:
        """The lines a cache written by :class:`PackedLinesWriter` holds."""
        data = read_h5(path, keys=("images", "offsets", "texts", "sources"))
        return cls(data["images"], data["offsets"], data["texts"], data["sources"], path)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        if self.cache_file is not None:
            state["strip"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        if self.strip is None and self.cache_file is not None:
            self.strip = read_h5(self.cache_file, keys=("images",))["images"]

    def __len__(self) -> int:
        return len(self.texts)

    @property
    def widths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def image(self, index: int) -> np.ndarray:
        """The uint8 image of line ``index``, ``[32, width]``, bright ink on dark."""
        return self.strip[:, self.offsets[index] : self.offsets[index + 1]]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        image = torch.from_numpy(self.image(index).astype(np.float32) / 255.0)
        return image.unsqueeze(0), _encode(str(self.texts[index]))


class PackedLinesWriter(StripWriter):
    """A :class:`PackedLines` cache written as its lines are made, a few MB at a time: a
    build never holds the split (the shipped config's 300,000 training lines are ~3 GB).

    Used as a context manager, as :class:`~text_recognizer.data.cache.H5Writer`: the
    cache appears at ``path`` only when the block ends without an error, holding every
    line added, in order. The texts and sources are kept until then (~100 bytes a line).
    """

    def __init__(self, path: Path, attrs: dict[str, Any], height: int = HEIGHT) -> None:
        super().__init__(path, attrs, height, ("images",))
        self._texts: list[str] = []
        self._sources: list[str] = []

    def __len__(self) -> int:
        return len(self._texts)

    def add(
        self, images: Sequence[np.ndarray], texts: Sequence[str], sources: Sequence[str]
    ) -> None:
        """Write lines (uint8 ``[height, W]``, bright ink) with their texts and sources
        after those added before."""
        if not len(images) == len(texts) == len(sources):
            raise ValueError(f"{len(images)} lines, {len(texts)} texts and {len(sources)} sources")
        self.add_lines("images", images)
        self._texts += texts
        # A few dozen fonts and faces name every line: one string each, not one a line.
        self._sources += [sys.intern(source) for source in sources]

    def finish(self) -> None:
        super().finish()
        offsets = np.concatenate([[0], np.cumsum(self.widths("images"))]).astype(np.int64)
        self.put("offsets", offsets)
        self.put("texts", np.array(self._texts, dtype=object))
        self.put("sources", np.array(self._sources, dtype=object))


class StreamedLines(IterableDataset[tuple[torch.Tensor, torch.Tensor]]):
    """An endless supply of fresh training lines: each epoch renders ``lines_per_epoch`` new ones.

    Epoch ``e`` renders chunks with seeds (split, e + 1, chunk) — never those of the
    cached build — and DataLoader worker ``w`` of ``W`` takes chunks ``w, w + W, ...``,
    so an epoch's lines depend on the seed only (their order also on ``W``). Workers
    must be persistent (the base module makes them so) for the epoch count to advance.
    """

    def __init__(self, spec: LineSpec, lines_per_epoch: int) -> None:
        self.spec = spec
        self.lines_per_epoch = lines_per_epoch
        self.epoch = 0

    def __len__(self) -> int:
        return self.lines_per_epoch

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        self.epoch += 1
        for chunk in range(worker, -(-self.lines_per_epoch // CHUNK_SIZE), workers):
            count = min(CHUNK_SIZE, self.lines_per_epoch - chunk * CHUNK_SIZE)
            for line in render_lines(self.spec, chunk, count, epoch=self.epoch):
                image = torch.from_numpy(line.image.astype(np.float32) / 255.0).unsqueeze(0)
                yield image, _encode(line.text)


class SyntheticLines(BaseDataModule):
    """Synthetic handwritten lines, 32 px high, variable width, bright ink on dark.

    Args:
        num_train: training lines (cached), or lines per epoch when ``stream=True``.
        num_val, num_test: held-out lines (always cached).
        max_length: longest line, in characters.
        stroke_fraction: share of lines written by the stroke-font pen simulation; the
            rest use outline handwriting fonts.
        stream: render training lines on the fly instead of caching them.
        sentence_source: corpus for :class:`SentenceGenerator`.
        numbers: share of lines with numbers written into the text (prose alone has
            almost no digits; see :class:`SentenceGenerator`).
        build_workers: processes rendering the caches (default: all cores); the data
            does not depend on it.
        width_stretch: ``[low, high]``: stretch every training batch horizontally by a
            random factor in that range (:class:`~text_recognizer.data.module.StretchWidths`);
            ``None`` trains on the widths as rendered.
        page_cuts: share of training lines made to look cut from a scanned page: tilted,
            with ink of the neighbouring lines at the top and bottom
            (:class:`~text_recognizer.data.module.PageCuts`); 0: off.
        fine_pens: share of training lines whose strokes are thinned as a fine pen's
            (:class:`~text_recognizer.data.module.FinePens`); 0: off.
        width_multiple: pad every training batch with background to a multiple of this
            many pixels (:func:`~text_recognizer.data.module.pad_to_multiple`): oneDNN
            then reuses its convolution kernels instead of building new ones for nearly
            every batch width; 1: off.
        capitals_share: share of the training lines drawn with outline fonts that
            capitals-only fonts write (``None``: every font alike, so the share falls as
            lowercase fonts are added); val and test always pick fonts alike.
        joined_share: share of the other outline-font training lines that joined
            scripts write (``None``: every font alike); val and test pick fonts alike.
        glyph_jitter: vary the size, width, lean and rotation of each letter of the
            outline-font training lines, so that a line's letters are not copies of one
            bitmap (1.0: the stroke faces' per-letter ranges; 0: off); val and test never.

    Items are ``(image [1, 32, W] float32 in [0, 1], target LongTensor of charset indices)``;
    ``collate_lines`` pads batches.
    """

    kind: ClassVar = "line"

    def __init__(
        self,
        num_train: int = 200_000,
        num_val: int = 2_000,
        num_test: int = 2_000,
        max_length: int = 48,
        stroke_fraction: float = 0.5,
        stream: bool = False,
        sentence_source: str = "default",
        numbers: float = 0.1,
        seed: int = 0,
        batch_size: int = 64,
        num_workers: int = 0,
        root: Path | None = None,
        build_workers: int | None = None,
        width_stretch: Sequence[float] | None = None,
        page_cuts: float = 0.0,
        fine_pens: float = 0.0,
        width_multiple: int = 1,
        capitals_share: float | None = None,
        joined_share: float | None = None,
        glyph_jitter: float = 0.0,
    ) -> None:
        super().__init__(
            batch_size=batch_size,
            num_workers=num_workers,
            seed=seed,
            root=root,
            width_stretch=width_stretch,
            page_cuts=page_cuts,
            fine_pens=fine_pens,
            width_multiple=width_multiple,
        )
        for name, value in (("num_train", num_train), ("num_val", num_val), ("num_test", num_test)):
            if value < 1:
                raise ConfigError(f"{name} = {value} must be at least 1")
        if max_length < 1:
            raise ConfigError(f"max_length = {max_length} must be at least 1")
        if not 0.0 <= stroke_fraction <= 1.0:
            raise ConfigError(f"stroke_fraction = {stroke_fraction} must be between 0 and 1")
        if not 0.0 <= numbers <= 1.0:
            raise ConfigError(f"numbers = {numbers} must be a share between 0 and 1")
        for name, share in (("capitals_share", capitals_share), ("joined_share", joined_share)):
            if share is not None and not 0.0 <= share <= 1.0:
                raise ConfigError(f"{name} = {share} must be between 0 and 1")
        if not 0.0 <= glyph_jitter <= 3.0:
            raise ConfigError(
                f"glyph_jitter = {glyph_jitter} must be between 0 (off) and 3 (1: the stroke "
                "faces' per-letter ranges)"
            )
        self.glyph_jitter = float(glyph_jitter)
        self.capitals_share = None if capitals_share is None else float(capitals_share)
        self.joined_share = None if joined_share is None else float(joined_share)
        self.sizes: dict[Split, int] = {"train": num_train, "val": num_val, "test": num_test}
        self.max_length = max_length
        self.stroke_fraction = float(stroke_fraction)
        self.stream = stream
        self.sentence_source = sentence_source
        self.numbers = float(numbers)
        self.build_workers = build_workers if build_workers is not None else (os.cpu_count() or 1)

    @property
    def input_height(self) -> int:
        return HEIGHT

    def spec(self, split: Split) -> LineSpec:
        return LineSpec(
            split,
            self.seed,
            self.max_length,
            self.stroke_fraction,
            self.sentence_source,
            self.numbers,
            self.capitals_share if split == "train" else None,
            self.joined_share if split == "train" else None,
            self.glyph_jitter if split == "train" else 0.0,
        )

    def cached_splits(self) -> tuple[Split, ...]:
        return ("val", "test") if self.stream else SPLITS

    def params(self, split: Split) -> dict[str, Any]:
        """Everything that determines a split's cached lines (the cache key)."""
        spec = self.spec(split)
        # the shares, the glyph jitter and the joined flags only when set (training split
        # only), so that existing caches keep their keys
        shares = {
            name: share
            for name, share in (
                ("capitals_share", spec.capitals_share),
                ("joined_share", spec.joined_share),
            )
            if share is not None
        }
        if spec.glyph_jitter > 0:
            shares["glyph_jitter"] = spec.glyph_jitter
        joined = spec.joined_share is not None
        sources = {
            "fonts": [
                [f.name, f.path.name, "".join(sorted(f.missing)), f.capitals_only]
                + ([f.joined] if joined else [])
                for f in list_fonts(split)
            ],
            "faces": [face.name for face in list_faces(split)],
        }
        return {
            "renderer": RENDER_VERSION,
            "split": split,
            "num": self.sizes[split],
            "max_length": self.max_length,
            "stroke_fraction": self.stroke_fraction,
            "sentence_source": self.sentence_source,
            "numbers": self.numbers,
            **shares,
            "seed": self.seed,
            "charset": hashlib.sha256("\n".join(DEFAULT_CHARSET.tokens).encode()).hexdigest()[:16],
            "sources": hashlib.sha256(json.dumps(sources).encode()).hexdigest()[:16],
        }

    def cache_file(self, split: Split) -> Path:
        return cache_path(
            self.root / "synthetic_lines", f"synthetic_lines_{split}", self.params(split)
        )

    def prepare_data(self) -> None:
        """Render and cache every split that needs it and is not cached yet."""
        self.prepare_splits(SPLITS)

    def prepare_splits(self, splits: Sequence[str]) -> None:
        for split in self.cached_splits():
            path = self.cache_file(split)
            if split in splits and not path.exists():
                self._build(split, path)

    def _build(self, split: Split, path: Path) -> None:
        total = self.sizes[split]
        spec = self.spec(split)
        tasks = [
            (spec, chunk, min(CHUNK_SIZE, total - start))
            for chunk, start in enumerate(range(0, total, CHUNK_SIZE))
        ]
        # Each chunk is written as it comes back, in order: a build holds a few chunks, not
        # the split. The writer checks the folder before any rendering.
        with ExitStack() as stack:
            writer = stack.enter_context(PackedLinesWriter(path, self.params(split)))
            progress = stack.enter_context(
                tqdm(
                    total=total,
                    desc=f"SyntheticLines {split}",
                    unit="line",
                    leave=False,
                    disable=bar_disabled(),
                )
            )
            if self.build_workers <= 1 or len(tasks) == 1:
                results: Iterator[tuple[list[np.ndarray], list[str], list[str]]] = map(
                    _render_chunk, tasks
                )
            else:
                # Workers turn OpenCV's own threads off first.
                pool = stack.enter_context(
                    render_pool(min(self.build_workers, len(tasks)), _init_worker)
                )
                results = interruptible(pool_results(pool, _render_chunk, tasks))
            for images, texts, sources in results:
                writer.add(images, texts, sources)
                progress.update(len(texts))

    def setup(self, stage: str | None = None) -> None:
        """Load the splits ``stage`` reads (all for ``None``), rendering any not cached yet."""
        wanted = splits_for(stage)
        self.prepare_splits(wanted)  # a no-op when cached; lets setup() alone work in scripts
        for split in self.cached_splits():
            if split not in wanted:
                continue
            setattr(self, f"data_{split}", PackedLines.read(self.cache_file(split)))
        if self.stream and "train" in wanted:
            self.data_train = StreamedLines(self.spec("train"), self.sizes["train"])

    def train_dataloader(self) -> DataLoader[tuple[torch.Tensor, torch.Tensor]]:
        if not self.stream:
            return super().train_dataloader()
        if self.data_train is None:
            raise RuntimeError("call setup() before asking for the train loader")
        resume = self.take_resume()
        if resume is not None:  # a resumed run: render the lines of the epoch it stopped in
            assert isinstance(self.data_train, StreamedLines)
            self.data_train.epoch = resume[0]
            if resume[1] > 0:
                log.warning(
                    "resuming at batch %d of epoch %d: streamed lines cannot skip ahead, so "
                    "the resumed run sees that epoch's first lines again and differs slightly "
                    "from an unbroken run (cached lines, stream=false, resume exactly)",
                    resume[1],
                    resume[0],
                )
        return DataLoader(  # an IterableDataset: no shuffling, workers take chunks in turn
            self.data_train,
            batch_size=self.batch_size,
            num_workers=self.num_workers,
            collate_fn=self.collate_fn("train"),
            worker_init_fn=_init_worker,
            persistent_workers=self.num_workers > 0,
            multiprocessing_context="spawn" if self.num_workers > 0 else None,
            generator=torch.Generator().manual_seed(self.seed),  # see BaseDataModule._loader
        )

    def __repr__(self) -> str:
        lines = [
            f"SyntheticLines({self._split_sizes()}, kind=line, height={HEIGHT}, "
            f"max_length={self.max_length}, stroke_fraction={self.stroke_fraction}, "
            f"numbers={self.numbers}, stream={self.stream}, width_stretch={self.width_stretch}, "
            f"page_cuts={self.page_cuts}, fine_pens={self.fine_pens}, "
            f"width_multiple={self.width_multiple}, "
            f"glyph_jitter={self.glyph_jitter}, seed={self.seed})"
        ]
        for split in SPLITS:
            fonts, faces = len(list_fonts(split)), len(list_faces(split))
            dataset = getattr(self, f"data_{split}")
            if isinstance(dataset, PackedLines) and len(dataset):
                widths = dataset.widths
                data = (
                    f"{len(dataset)} lines, width {widths.mean():.0f} px "
                    f"(min {widths.min()}, max {widths.max()}), cache {self.cache_file(split)}"
                )
            elif isinstance(dataset, StreamedLines):
                data = f"streamed, {dataset.lines_per_epoch} new lines per epoch"
            else:
                data = "not set up"
            lines.append(f"  {split:5} {fonts} fonts + {faces} stroke faces: {data}")
        return "\n".join(lines)


def write_samples(directory: Path, count: int = 8, seed: int = 0) -> list[tuple[str, str]]:
    """Write ``count`` demo lines from the *test* fonts and faces, plus ``labels.tsv``.

    Half are written with stroke faces and half with outline fonts. The PNGs are dark
    ink on light paper, as a user's scan would be (the recognizer normalises polarity).
    """
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    sentences = SentenceGenerator(40, seed=seed, numbers=0.25)  # some lines with numbers
    renderers = [
        LineRenderer([], list_faces("test"), texture_seed=seed),
        LineRenderer(list_fonts("test"), [], texture_seed=seed),
    ]
    rows = []
    for index in range(count):
        text = sentences.generate()
        while len(text) < 20:  # demo lines long enough to be interesting
            text = sentences.generate()
        line = renderers[index % 2].render(text, rng)
        name = f"line_{index:02d}.png"
        cv2.imwrite(str(directory / name), 255 - line.image)
        rows.append((name, line.text))
    (directory / "labels.tsv").write_text("".join(f"{name}\t{text}\n" for name, text in rows))
    return rows


def write_page_samples(
    directory: Path, count: int = 3, lines: int = 5, seed: int = 0
) -> list[tuple[str, str]]:
    """Write ``count`` demo pages, each ``lines`` lines in one *test* font on one sheet,
    plus ``labels.jsonl`` (a page's text is its lines joined by newlines).

    The lines are drawn at the font's own size (not each scaled to the line height, as
    training lines are), so letters are as large on every line of a page, as in a hand.
    Every second page is turned a little; every third is photographed ruled paper: a rule
    under each line, light falling off across it, a dark desk round it.
    """
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    sentences = SentenceGenerator(44, seed=seed)
    fonts = [f for f in list_fonts("test") if not f.capitals_only]
    rows = []
    for index in range(count):
        font = fonts[int(rng.integers(len(fonts)))]
        glyphs = OutlineGlyphs(str(font.path))
        inks: list[np.ndarray] = []
        texts: list[str] = []
        while len(inks) < lines:
            text = sentences.generate()
            if len(text) >= 25 and font_supports(font, text):
                mask = render_outline(glyphs, text, rng)
                rows_with_ink = np.flatnonzero(mask.max(axis=1) > 40)
                inks.append(mask[rows_with_ink[0] : rows_with_ink[-1] + 1])
                texts.append(text)
        pitch = round(1.3 * float(np.median([ink.shape[0] for ink in inks])))
        margin = pitch
        page = np.zeros(
            (2 * margin + pitch * (lines - 1) + inks[-1].shape[0],
             2 * margin + max(ink.shape[1] for ink in inks)),
            np.uint8,
        )  # fmt: skip
        notebook = index % 3 == 2  # every third page: a photo of ruled paper on a desk
        for row, ink in enumerate(inks):
            top = margin + row * pitch + int(rng.integers(-3, 4))
            left = margin + int(rng.integers(0, 12))
            window = page[top : top + ink.shape[0], left : left + ink.shape[1]]
            np.maximum(window, ink, out=window)
            if notebook:  # a rule just under the line, across the sheet
                page[top + ink.shape[0] + 1] = np.maximum(page[top + ink.shape[0] + 1], 110)
        page = cv2.resize(page, None, fx=2, fy=2, interpolation=cv2.INTER_CUBIC)
        if index % 2:
            page = rotate(page, float(rng.uniform(-1.5, 1.5)))  # a sheet put in crooked
        paper = rng.uniform(225, 245) - page.astype(np.float32) * rng.uniform(0.6, 0.8)
        paper += rng.normal(0, 3, paper.shape)
        if notebook:  # lit from the left, lying on a dark desk
            paper *= np.linspace(1.0, 0.6, paper.shape[1], dtype=np.float32)[None]
            paper = np.asarray(
                cv2.copyMakeBorder(paper, 40, 40, 40, 40, cv2.BORDER_CONSTANT, value=45.0),
                dtype=np.float32,
            )
        name = f"page_{index:02d}.png"
        cv2.imwrite(str(directory / name), np.clip(paper, 0, 255).astype(np.uint8))
        rows.append((name, "\n".join(texts)))
    with (directory / "labels.jsonl").open("w") as out:
        for name, text in rows:
            out.write(json.dumps({"image": name, "text": text}) + "\n")
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--write-samples",
        type=Path,
        metavar="DIR",
        required=True,
        help="write demo line images and labels.tsv to DIR",
    )
    parser.add_argument("--count", type=int, default=8)
    parser.add_argument("--seed", type=int, default=1)  # the bundled samples: two with numbers
    parser.add_argument(
        "--pages", action="store_true", help="write pages of lines (write_page_samples)"
    )
    args = parser.parse_args(argv)
    if args.pages:
        written = write_page_samples(args.write_samples, args.count, seed=args.seed)
    else:
        written = write_samples(args.write_samples, args.count, args.seed)
    for name, text in written:
        print(f"{name}\t{text!r}")


if __name__ == "__main__":
    main()
