"""Random pieces of real English sentences, the text of synthetic lines.

A piece is a run of whole words cut from one sentence of the corpus, so a line shows
real spelling, word lengths and punctuation (not word salad) and never a word cut in
half. As in the FSDL lineage, the first word is drawn uniformly over all words of the
corpus (long sentences offer more pieces) and the last uniformly among the words that
keep the piece within ``max_length`` characters.
"""

from __future__ import annotations

import random
from array import array
from bisect import bisect_right
from dataclasses import dataclass
from functools import cache

import numpy as np

from text_recognizer.data.sources.corpus import SOURCES, load_sentences
from text_recognizer.errors import ConfigError, DataError

_MAX_TRIES = 1000  # first words longer than max_length are redrawn; this bounds the redraws


@dataclass(frozen=True)
class _WordIndex:
    """All sentences joined by newlines, and where each word starts and ends in that text."""

    text: str
    starts: array[int]  # offset of each word's first character
    ends: array[int]  # offset just past each word's last character (increasing)
    sentence_ends: array[int]  # offset of the end of the sentence holding each word


@cache
def _word_index(source: str) -> _WordIndex:
    text = "\n".join(load_sentences(source))  # the charset is ASCII: one byte per character
    codes = np.frombuffer(text.encode("ascii"), dtype=np.uint8)
    blank = (codes == ord(" ")) | (codes == ord("\n"))
    starts = np.flatnonzero(~blank & np.concatenate(([True], blank[:-1])))
    ends = np.flatnonzero(~blank & np.concatenate((blank[1:], [True]))) + 1
    newlines = np.append(np.flatnonzero(codes == ord("\n")), len(text))
    sentence_ends = newlines[np.searchsorted(newlines, starts)]
    # array.array: compact, and indexing it yields Python ints (fast in the hot loop).
    return _WordIndex(
        text,
        array("q", starts.tolist()),
        array("q", ends.tolist()),
        array("q", sentence_ends.tolist()),
    )


class SentenceGenerator:
    """Draws word-aligned pieces of real sentences, deterministically per ``seed``.

    Args:
        max_length: longest piece, in characters (1 or more).
        source: ``"default"`` (the shipped public-domain corpus, offline) or ``"brown"``
            (NLTK's Brown corpus; needs ``nltk``, downloads the corpus if missing).
        seed: the same seed gives the same sequence of pieces, in any process.

    The corpus is loaded on the first :meth:`generate` and shared by every generator of
    the same source in the process.
    """

    def __init__(self, max_length: int = 32, source: str = "default", seed: int = 0) -> None:
        if max_length < 1:
            raise ConfigError(f"max_length must be at least 1, got {max_length}")
        if source not in SOURCES:
            raise ConfigError(f"unknown sentence source {source!r}; allowed: {', '.join(SOURCES)}")
        self.max_length = max_length
        self.source = source
        self.seed = seed
        self._rng = random.Random(seed)  # noqa: S311 (reproducible sampling, not secrets)

    @property
    def sentences(self) -> tuple[str, ...]:
        """Every cleaned sentence of the source (loaded once per process)."""
        return load_sentences(self.source)

    def generate(self, max_length: int | None = None) -> str:
        """A piece of 1..``max_length`` characters: whole words of one sentence, no outer spaces."""
        limit = self.max_length if max_length is None else max_length
        if limit < 1:
            raise ConfigError(f"max_length must be at least 1, got {limit}")
        index = _word_index(self.source)
        starts, ends, sentence_ends = index.starts, index.ends, index.sentence_ends
        draw = self._rng.random  # int(random() * n): uniform, ~3x faster than randrange
        for _ in range(_MAX_TRIES):
            first = int(draw() * len(starts))
            start = starts[first]
            # The last word that ends within the limit and within this sentence.
            last = bisect_right(ends, min(start + limit, sentence_ends[first]), lo=first) - 1
            if last >= first:
                return index.text[start : ends[first + int(draw() * (last - first + 1))]]
        raise DataError(
            f"no word of the {self.source!r} corpus fits in {limit} characters after "
            f"{_MAX_TRIES} draws: use a larger max_length"
        )

    def __repr__(self) -> str:
        return (
            f"SentenceGenerator(max_length={self.max_length}, source={self.source!r}, "
            f"seed={self.seed})"
        )
