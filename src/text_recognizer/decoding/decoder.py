"""One object for "how lines are decoded", shared by the Recognizer and ``evaluate``.

Both must decode the same way for an evaluation to measure what users get, so the choice
(greedy, or beam search with an optional LM and its weight) is made and checked here once.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from pathlib import Path

from text_recognizer.charset import Charset
from text_recognizer.data.sources.corpus import SOURCES
from text_recognizer.decoding.beam import beam_search_decode
from text_recognizer.decoding.greedy import ArrayLike, Lengths, greedy_ctc_decode
from text_recognizer.decoding.ngram import CharNgramLm
from text_recognizer.errors import ConfigError

LM_NEEDS_BEAM = (
    "a language model needs beam search: pass beam_size > 1 (e.g. 10; --beam 10 on the "
    "command line)"
)


@dataclass(frozen=True)
class CtcDecoder:
    """Greedy CTC decoding (``beam_size=1``) or a beam search, optionally with a character LM.

    Args:
        beam_size: 1 decodes greedily; more keeps that many prefixes per frame.
        lm: character n-gram LM for the beam search.
        lm_weight: weight of the LM's scores against the line model's.
    """

    beam_size: int = 1
    lm: CharNgramLm | None = None
    lm_weight: float = 1.0

    def __post_init__(self) -> None:
        _check_options(self.beam_size, self.lm, self.lm_weight)

    @classmethod
    def from_options(
        cls,
        beam_size: int = 1,
        lm: CharNgramLm | str | Path | None = None,
        lm_weight: float = 1.0,
    ) -> CtcDecoder:
        """As the CLI and ``Recognizer`` take it: ``lm`` may name a sentence source
        (``"default"``, ``"brown"``: its LM is counted once and cached) or an ARPA file."""
        _check_options(beam_size, lm, lm_weight)  # before counting an LM that cannot be used
        return cls(beam_size, open_lm(lm), lm_weight)

    def __call__(
        self, log_probs: ArrayLike, lengths: Lengths | None, charset: Charset
    ) -> list[tuple[str, float]]:
        """``(text, confidence)`` per line of ``[B, T, C]`` scores."""
        if self.beam_size == 1:
            return greedy_ctc_decode(log_probs, lengths, charset)
        return beam_search_decode(
            log_probs, lengths, charset, self.beam_size, self.lm, self.lm_weight
        )

    def __str__(self) -> str:
        if self.beam_size == 1:
            return "greedy"
        if self.lm is None:
            return f"beam {self.beam_size}"
        return f"beam {self.beam_size} + LM {self.lm.path.name} (weight {self.lm_weight:g})"


def _check_options(beam_size: object, lm: object, lm_weight: object) -> None:
    if isinstance(beam_size, bool) or not isinstance(beam_size, numbers.Integral) or beam_size < 1:
        raise ConfigError(
            f"beam_size must be a whole number, 1 (greedy) or more, got {beam_size!r}"
        )
    if lm is not None and beam_size == 1:
        raise ConfigError(LM_NEEDS_BEAM)
    if not isinstance(lm_weight, numbers.Real) or not math.isfinite(lm_weight) or lm_weight < 0:
        raise ConfigError(
            f"lm_weight must be a finite number >= 0 (1.0 weighs the LM like the line model), "
            f"got {lm_weight!r}"
        )
    if lm is None and lm_weight != 1.0:
        raise ConfigError(
            "lm_weight weighs a language model's scores, and there is none: pass an LM too "
            "(--lm default on the command line)"
        )


def open_lm(lm: CharNgramLm | str | Path | None) -> CharNgramLm | None:
    """A sentence source's name (its LM, counted once), an ARPA file, or an LM as it is."""
    if lm is None or isinstance(lm, CharNgramLm):
        return lm
    if str(lm) in SOURCES:
        return CharNgramLm.from_corpus(str(lm))
    return CharNgramLm(lm)
