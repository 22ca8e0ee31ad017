"""Synthetic handwritten lines composed from single-character images (FSDL's EMNIST lines).

For each piece of a real sentence (:class:`SentenceGenerator`), one image of every
character is drawn from a character dataset's matching split (train characters for
train lines, and so on, so validation lines show unseen glyphs) and pasted left to
right with a random overlap; overlapping ink combines with ``max``, a space is a blank
gap. Lines are 28 px high (EMNIST's size) and as wide as their text.

The character dataset is any registered char-kind dataset (``emnist`` for real
handwriting, ``synthetic_chars`` offline) built by name. Characters it has no image of
(EMNIST has no punctuation) are removed from the text before composing, so a label
never names an invisible character.

Lines are built once in :meth:`EmnistLines.prepare_data` and cached to HDF5 under a key
of every parameter, so a change of any parameter builds a new cache.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from tqdm import tqdm

from text_recognizer.data.cache import cache_path, ensure_writable_folder, read_h5
from text_recognizer.data.module import ArrayDataset, BaseDataModule, Kind, StripWriter
from text_recognizer.data.sentences import SentenceGenerator
from text_recognizer.data.sources.corpus import SOURCES
from text_recognizer.data.sources.download import bar_disabled
from text_recognizer.errors import ConfigError, DataError

log = logging.getLogger(__name__)

CHAR_SIZE = 28  # every character image is CHAR_SIZE x CHAR_SIZE; lines are CHAR_SIZE high
SPLITS = ("train", "val", "test")
_FORMAT = 1  # part of the cache key: bump it when composing changes, so old caches go unread
_MAX_TRIES = 1000

Glyphs = dict[str, np.ndarray]  # character -> uint8 [k, CHAR_SIZE, CHAR_SIZE] images of it


class EmnistLines(BaseDataModule):
    """Lines of up to ``max_length`` characters composed from a character dataset.

    Args:
        char_source: registered name of the character dataset (``synthetic_chars``,
            ``emnist``, ...).
        char_source_args: its arguments, as in a config.
        max_length: longest line text, in characters.
        min_overlap, max_overlap: range of the horizontal overlap between neighbouring
            characters, as a share of the character width; drawn once per line.
        num_train, num_val, num_test: number of lines in each split.
        sentence_source: where the text comes from (``"default"`` offline, or ``"brown"``).
        numbers: share of lines with numbers written into the text (see
            :class:`SentenceGenerator`); 0, FSDL's choice, keeps the corpus's text.
        char_module: a character dataset object to use instead of building
            ``char_source`` (a seam for tests and notebooks); its cache key is a hash of
            its images and targets.
        width_stretch: ``[low, high]`` random horizontal stretch of every training batch
            (:class:`~text_recognizer.data.module.StretchWidths`); ``None``: off.
        page_cuts: share of training lines made to look cut from a page: tilted, with
            neighbouring lines' ink (:class:`~text_recognizer.data.module.PageCuts`); 0: off.
        fine_pens: share of training lines with thinner strokes
            (:class:`~text_recognizer.data.module.FinePens`); 0: off.
        width_multiple: pad every training batch to a multiple of this many pixels, so
            CPU convolution kernels are reused across batches
            (:func:`~text_recognizer.data.module.pad_to_multiple`); 1: off.
    """

    kind: ClassVar[Kind] = "line"
    data_train: ArrayDataset | None
    data_val: ArrayDataset | None
    data_test: ArrayDataset | None

    def __init__(
        self,
        char_source: str = "synthetic_chars",
        char_source_args: dict[str, Any] | None = None,
        max_length: int = 32,
        min_overlap: float = 0.0,
        max_overlap: float = 0.33,
        num_train: int = 10_000,
        num_val: int = 2_000,
        num_test: int = 2_000,
        sentence_source: str = "default",
        numbers: float = 0.0,
        batch_size: int = 128,
        num_workers: int = 0,
        seed: int = 0,
        root: Path | None = None,
        char_module: BaseDataModule | None = None,
        width_stretch: Sequence[float] | None = None,
        page_cuts: float = 0.0,
        fine_pens: float = 0.0,
        width_multiple: int = 1,
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
        if max_length < 1:
            raise ConfigError(f"max_length must be at least 1, got {max_length}")
        if not 0.0 <= min_overlap <= max_overlap < 1.0:
            raise ConfigError(
                "overlaps must satisfy 0 <= min_overlap <= max_overlap < 1, got "
                f"min_overlap={min_overlap}, max_overlap={max_overlap}"
            )
        sizes = {"num_train": num_train, "num_val": num_val, "num_test": num_test}
        for name, size in sizes.items():
            if size < 0:
                raise ConfigError(f"{name} must be 0 or more, got {size}")
        if sentence_source not in SOURCES:
            raise ConfigError(
                f"unknown sentence_source {sentence_source!r}; allowed: {', '.join(SOURCES)}"
            )
        if not 0.0 <= numbers <= 1.0:
            raise ConfigError(f"numbers = {numbers} must be a share between 0 and 1")
        self.char_source = char_source
        self.char_source_args = dict(char_source_args or {})
        self.max_length = max_length
        self.min_overlap = min_overlap
        self.max_overlap = max_overlap
        self.num_lines = {"train": num_train, "val": num_val, "test": num_test}
        self.sentence_source = sentence_source
        self.numbers = float(numbers)
        self._char_module = char_module
        self._char_module_hash: str | None = None
        self._named_source: BaseDataModule | None = None  # built from char_source, once

    @property
    def input_height(self) -> int:
        return CHAR_SIZE

    def cache_params(self) -> dict[str, Any]:
        """Everything the lines depend on: the cache key is a hash of this."""
        if self._char_module is None:
            chars: dict[str, Any] = {"name": self.char_source, "args": self.char_source_args}
            if caches := self._source_caches():
                chars["caches"] = caches
        else:
            chars = {"object": type(self._char_module).__qualname__, "data": self._module_hash()}
        return {
            "format": _FORMAT,
            "char_source": chars,
            "max_length": self.max_length,
            "overlap": [self.min_overlap, self.max_overlap],
            "num_lines": self.num_lines,
            "sentence_source": self.sentence_source,
            "numbers": self.numbers,
            "seed": self.seed,
        }

    @property
    def cache_file(self) -> Path:
        return cache_path(self.root / "emnist_lines", "emnist_lines", self.cache_params())

    def prepare_data(self) -> None:
        """Compose every split's lines and write the cache, unless it already exists."""
        if self.cache_file.exists():
            log.info("EmnistLines cache %s exists", self.cache_file)
            return
        ensure_writable_folder(self.cache_file.parent)  # before the composing, not after
        chars = self._prepared_char_module()
        glyphs = {split: glyphs_by_char(chars, split) for split in SPLITS}
        available = set.intersection(*(set(g) for g in glyphs.values())) | {" "}
        if not any(c.isalpha() for c in available):
            raise DataError(
                f"the character source has no letter images in all three splits "
                f"(it has: {''.join(sorted(available)).strip()!r}); lines need letters"
            )
        log.info("composing the lines of EmnistLines cache %s", self.cache_file)
        # Each line is written as it is composed: a build holds ~1 MB of lines, not a split.
        strips = [f"{split}_images" for split in SPLITS]
        with StripWriter(self.cache_file, self.cache_params(), CHAR_SIZE, strips) as writer:
            for index, split in enumerate(SPLITS):
                # Independent, reproducible streams per split: text and glyph choices.
                text_seed, glyph_seed = np.random.SeedSequence([self.seed, index]).generate_state(2)
                sentences = SentenceGenerator(
                    self.max_length, self.sentence_source, int(text_seed), self.numbers
                )
                rng = np.random.default_rng(glyph_seed)
                texts = []
                lines = range(self.num_lines[split])
                for _ in tqdm(
                    lines, desc=f"EmnistLines {split}", unit="line", disable=bar_disabled()
                ):
                    text = draw_text(sentences, available)
                    texts.append(text)
                    line = compose_line(
                        text, glyphs[split], rng, self.min_overlap, self.max_overlap
                    )
                    writer.add_lines(f"{split}_images", [line])
                # Ragged images stored as one [H, sum of widths] strip plus the widths.
                writer.flush(f"{split}_images")
                writer.put(f"{split}_widths", writer.widths(f"{split}_images"))
                writer.put(f"{split}_texts", np.array(texts, dtype=object))

    def setup(self, stage: str | None = None) -> None:
        """Load the cached lines (composing them first if the cache is missing)."""
        if self.data_train is not None:
            return
        if not self.cache_file.exists():
            self.prepare_data()
        arrays = read_h5(
            self.cache_file,
            keys=[f"{split}_{part}" for split in SPLITS for part in ("images", "widths", "texts")],
        )
        for split in SPLITS:
            strip, widths = arrays[f"{split}_images"], arrays[f"{split}_widths"]
            offsets = np.concatenate(([0], np.cumsum(widths))).astype(np.int64)[:-1]
            images = [strip[:, o : o + w] for o, w in zip(offsets, widths, strict=True)]
            targets = [
                np.array(self.charset.encode(text), dtype=np.int64)
                for text in arrays[f"{split}_texts"]
            ]
            setattr(self, f"data_{split}", ArrayDataset(images, targets))

    def _named_char_source(self) -> BaseDataModule:
        """The ``char_source`` dataset, built by name (once), not prepared."""
        if self._named_source is None:
            from text_recognizer.data import DATASETS  # here: that package imports this module

            injected = {} if "root" in self.char_source_args else {"root": self.root}
            try:
                module = DATASETS.build(self.char_source, self.char_source_args, **injected)
            except ConfigError as error:  # say which of emnist_lines' arguments it is about
                raise ConfigError(f"emnist_lines char_source: {error}") from None
            if module.kind != "char":
                raise ConfigError(
                    f"char_source {self.char_source!r} is a {module.kind}-kind dataset; "
                    "it must yield single characters"
                )
            self._named_source = module
        return self._named_source

    def _source_caches(self) -> list[str]:
        """The names of the ``char_source`` dataset's cache files, each keyed by all that
        built its characters (an EMNIST archive's checksum, the fonts): lines composed of
        other characters are other lines. Empty for a source that keeps no cache."""
        cache = getattr(self._named_char_source(), "cache_file", None)
        if cache is None:
            return []
        files = [cache(split) for split in SPLITS] if callable(cache) else [cache]
        return [Path(file).name for file in files]

    def _prepared_char_module(self) -> BaseDataModule:
        """The character dataset, built by name if none was given, with its splits loaded."""
        module = self._char_module or self._named_char_source()
        module.prepare_data()
        module.setup()  # every split: each split's lines are composed from its own glyphs
        return module

    def _module_hash(self) -> str:
        """A hash of an injected module's images and targets (its data is its identity)."""
        if self._char_module_hash is None:
            module = self._prepared_char_module()
            digest = hashlib.sha256()
            for split in SPLITS:
                images, targets = _split_arrays(module, split)
                digest.update(images.tobytes())
                digest.update(targets.tobytes())
            self._char_module_hash = digest.hexdigest()[:16]
        return self._char_module_hash

    def __repr__(self) -> str:
        if self._char_module is None:
            args = ", ".join(f"{k}={v!r}" for k, v in sorted(self.char_source_args.items()))
            chars = f"{self.char_source}({args})"
        else:
            chars = f"{type(self._char_module).__name__} object"
        lines = [
            f"{type(self).__name__}: lines of 1-{self.max_length} characters from {chars}, "
            f"overlap {self.min_overlap:.2f}-{self.max_overlap:.2f} of a character",
        ]
        splits = {split: getattr(self, f"data_{split}") for split in SPLITS}
        if any(data is None for data in splits.values()):
            planned = "  ".join(f"{s}={n:,}" for s, n in self.num_lines.items())
            lines.append(f"  splits:  {planned} (not loaded: call prepare_data() then setup())")
        else:
            lines.append("  splits:  " + "  ".join(f"{s}={len(d):,}" for s, d in splits.items()))
            widths = [im.shape[1] for data in splits.values() for im in data.images]
            if widths:
                lines.append(
                    f"  images:  1x{CHAR_SIZE}xW float32 in [0, 1], bright ink on dark; "
                    f"W {min(widths)}..{max(widths)} px (mean {np.mean(widths):.0f})"
                )
        lines += [
            "  targets: int64 charset indices of the text, one per character",
            f"  text:    sentence_source={self.sentence_source!r}, seed={self.seed}",
            f"  options: batch_size={self.batch_size}, num_workers={self.num_workers}",
            f"  cache:   {self.root / 'emnist_lines'}",
        ]
        return "\n".join(lines)


def _split_arrays(module: BaseDataModule, split: str) -> tuple[np.ndarray, np.ndarray]:
    """A character dataset's split as (uint8 images [N, 28, 28], int64 charset indices [N])."""
    dataset = getattr(module, f"data_{split}", None)
    name = type(module).__name__
    if dataset is None or not hasattr(dataset, "images") or not hasattr(dataset, "targets"):
        raise DataError(
            f"character source {name} has no {split} split with .images and .targets after "
            "setup(); EmnistLines needs train, val and test characters"
        )
    images = np.asarray(dataset.images)
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (CHAR_SIZE, CHAR_SIZE):
        raise DataError(
            f"character source {name} {split} images are {images.dtype} {images.shape}; "
            f"EmnistLines needs uint8 [N, {CHAR_SIZE}, {CHAR_SIZE}]"
        )
    return images, np.asarray(dataset.targets, dtype=np.int64)


def glyphs_by_char(module: BaseDataModule, split: str) -> Glyphs:
    """The images of each character in one split (space and special tokens left out)."""
    images, targets = _split_arrays(module, split)
    tokens = module.charset.tokens
    characters = set(module.charset.characters) - {" "}
    return {
        tokens[t]: images[targets == t]
        for t in np.unique(targets).tolist()
        if tokens[t] in characters
    }


def draw_text(sentences: SentenceGenerator, available: set[str]) -> str:
    """A sentence piece with the characters that have no image removed (never empty)."""
    for _ in range(_MAX_TRIES):
        piece = sentences.generate()
        text = " ".join("".join(c for c in piece if c in available).split())
        if text:
            return text
    raise DataError(
        f"{_MAX_TRIES} sentence pieces in a row had no character the character source can draw"
    )


def compose_line(
    text: str,
    glyphs: Mapping[str, np.ndarray],
    rng: np.random.Generator,
    min_overlap: float,
    max_overlap: float,
) -> np.ndarray:
    """Paste one random image per character left to right; uint8 ``[28, W]``.

    Characters are ``step = 28 - round(overlap * 28)`` pixels apart, with one overlap
    drawn per line (a writer's spacing is steady within a line). A space is a blank
    character that nothing overlaps, so a word gap stays at least ``step`` wide at any
    overlap: ``W = 28 + step * (len(text) - 1) + (28 - step) * text.count(" ")``.
    """
    overlap = rng.uniform(min_overlap, max_overlap)
    step = max(1, CHAR_SIZE - round(overlap * CHAR_SIZE))
    advances = [CHAR_SIZE if char == " " else step for char in text[:-1]]
    lefts = np.concatenate(([0], np.cumsum(advances, dtype=np.int64)))
    line = np.zeros((CHAR_SIZE, int(lefts[-1]) + CHAR_SIZE), dtype=np.uint8)
    for left, char in zip(lefts.tolist(), text, strict=True):
        if char == " ":
            continue
        choices = glyphs[char]
        window = line[:, left : left + CHAR_SIZE]
        np.maximum(window, choices[rng.integers(len(choices))], out=window)
    return line
