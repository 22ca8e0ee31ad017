"""Random pieces of real English sentences, the text of synthetic lines.

A piece is a run of whole words cut from one sentence of the corpus, so a line shows
real spelling, word lengths and punctuation (not word salad) and never a word cut in
half. As in the FSDL lineage, the first word is drawn uniformly over all words of the
corpus (long sentences offer more pieces) and the last uniformly among the words that
keep the piece within ``max_length`` characters.

Prose has almost no digits (0.03 % of the shipped corpus's characters, 0.34 % of
Brown's), while forms, letters and notes are full of them, so a share of pieces
(``numbers``) get numbers written into them: a word becomes a year, an amount, a time,
a date, a count, or the whole piece is a run of such numbers.
"""

from __future__ import annotations

import random
import re
from array import array
from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

import numpy as np

from text_recognizer.data.sources.corpus import SOURCES, load_sentences
from text_recognizer.errors import ConfigError, DataError

_MAX_TRIES = 1000  # first words longer than max_length are redrawn; this bounds the redraws
_WORD = re.compile(r"^([^A-Za-z0-9]*)(.*?)([^A-Za-z0-9]*)$")  # punctuation, core, punctuation


def _digits(rng: random.Random, low: int, high: int) -> str:
    """A whole number with ``low``..``high`` digits, uniform in its number of digits."""
    size = rng.randint(low, high)
    return str(rng.randint(10 ** (size - 1) if size > 1 else 0, 10**size - 1))


def _ordinal(number: int) -> str:
    if number % 100 in (11, 12, 13):
        return f"{number}th"
    return f"{number}{ {1: 'st', 2: 'nd', 3: 'rd'}.get(number % 10, 'th') }"


# How numbers are written in running text and on forms, with rough weights.
_NUMBER_FORMATS: tuple[tuple[float, Callable[[random.Random], str]], ...] = (
    (4.0, lambda r: _digits(r, 1, 3)),  # counts, page numbers
    (2.0, lambda r: str(r.randint(1600, 2029))),  # years
    (1.0, lambda r: f"{r.randint(1, 999)},{r.randint(0, 999):03d}"),  # 12,500
    (1.0, lambda r: f"{_digits(r, 1, 3)}.{r.randint(0, 99):02d}"),  # amounts: 3.75
    (0.5, lambda r: f"{r.randint(0, 9)}.{_digits(r, 1, 3)}"),  # decimals: 0.5, 2.718
    (1.0, lambda r: f"{r.randint(1, 12)}:{r.randint(0, 59):02d}"),  # times
    (
        1.0,
        lambda r: (
            f"{r.randint(1, 31)}/{r.randint(1, 12)}/{r.choice(('', '19', '20'))}"
            f"{r.randint(0, 99):02d}"
        ),
    ),  # dates
    (1.0, lambda r: _ordinal(r.randint(1, 100))),  # 21st
    (0.5, lambda r: f"{_digits(r, 3, 4)}-{_digits(r, 4, 4)}"),  # phone and reference numbers
    (0.5, lambda r: f"{r.choice(('No. ', '#', 'p. '))}{_digits(r, 1, 3)}"),
    (0.5, lambda r: f"({_digits(r, 1, 2)})"),
    (0.5, lambda r: f"{r.randint(1, 99)}-{r.randint(1, 99)}"),  # ranges, scores
)
_NUMBER_WEIGHTS = [weight for weight, _ in _NUMBER_FORMATS]


def random_number(rng: random.Random) -> str:
    """One number as people write it: ``1851``, ``3.75``, ``10:30``, ``21st``, ``No. 7``, ..."""
    return rng.choices(_NUMBER_FORMATS, _NUMBER_WEIGHTS)[0][1](rng)


def add_numbers(piece: str, limit: int, rng: random.Random) -> str:
    """``piece`` with one or two words written as numbers, or a run of numbers instead.

    A replaced word keeps the punctuation around it (``sea,`` -> ``1851,``). The result is
    the widest run of words around the first number that fits in ``limit`` characters; a
    lone number that is still too long is cut to its first ``limit`` characters.
    """
    if rng.random() < 0.25:
        words = [random_number(rng) for _ in range(rng.randint(1, 4))]
        first = 0
    else:
        words = piece.split(" ")
        chosen = rng.sample(range(len(words)), min(len(words), rng.choice((1, 1, 2))))
        for index in chosen:
            before, _, after = _WORD.match(words[index]).groups()  # type: ignore[union-attr]
            words[index] = f"{before}{random_number(rng)}{after}"
        first = min(chosen)
    low, high = first, first + 1
    while high < len(words) and len(" ".join(words[low : high + 1])) <= limit:
        high += 1
    while low > 0 and len(" ".join(words[low - 1 : high])) <= limit:
        low -= 1
    return " ".join(words[low:high])[:limit].rstrip(" ")


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
        numbers: share of pieces with numbers written into them (:func:`add_numbers`);
            0 gives the corpus's own text, as the FSDL lineage does.

    The corpus is loaded on the first :meth:`generate` and shared by every generator of
    the same source in the process.
    """

    def __init__(
        self, max_length: int = 32, source: str = "default", seed: int = 0, numbers: float = 0.0
    ) -> None:
        if max_length < 1:
            raise ConfigError(f"max_length must be at least 1, got {max_length}")
        if not 0.0 <= numbers <= 1.0:
            raise ConfigError(f"numbers = {numbers} must be a share between 0 and 1")
        if source not in SOURCES:
            raise ConfigError(f"unknown sentence source {source!r}; allowed: {', '.join(SOURCES)}")
        self.max_length = max_length
        self.source = source
        self.seed = seed
        self.numbers = float(numbers)
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
                piece = index.text[start : ends[first + int(draw() * (last - first + 1))]]
                # No extra draw when numbers == 0: pieces stay those of earlier versions.
                if self.numbers and draw() < self.numbers:
                    return add_numbers(piece, limit, self._rng)
                return piece
        raise DataError(
            f"no word of the {self.source!r} corpus fits in {limit} characters after "
            f"{_MAX_TRIES} draws: use a larger max_length"
        )

    def __repr__(self) -> str:
        return (
            f"SentenceGenerator(max_length={self.max_length}, source={self.source!r}, "
            f"seed={self.seed}, numbers={self.numbers})"
        )
