from __future__ import annotations

import numpy as np
import pytest

from text_recognizer.charset import DEFAULT_CHARSET
from text_recognizer.decoding import CtcDecoder, beam_search_decode, greedy_ctc_decode
from text_recognizer.errors import ConfigError


def noisy_scores(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(3, 20, len(DEFAULT_CHARSET))).astype(np.float32)
    return logits, np.array([20, 12, 5])


def test_greedy_and_beam_are_the_decoders_they_name() -> None:
    logits, lengths = noisy_scores()
    greedy = CtcDecoder()
    assert str(greedy) == "greedy"
    assert greedy(logits, lengths, DEFAULT_CHARSET) == greedy_ctc_decode(logits, lengths)
    beam = CtcDecoder(beam_size=5)
    assert str(beam) == "beam 5"
    assert beam(logits, lengths, DEFAULT_CHARSET) == beam_search_decode(
        logits, lengths, beam_size=5
    )


def test_invalid_choices_are_refused_before_any_lm_is_counted() -> None:
    with pytest.raises(ConfigError, match="beam_size must be a whole number"):
        CtcDecoder(beam_size=0)
    with pytest.raises(ConfigError, match="beam_size must be a whole number"):
        CtcDecoder.from_options(beam_size=2.5, lm="default")  # type: ignore[arg-type]
    # "default" would count the shipped corpus (seconds): the check comes first.
    with pytest.raises(ConfigError, match="needs beam search"):
        CtcDecoder.from_options(beam_size=1, lm="default")
    with pytest.raises(ConfigError, match="needs beam search"):
        CtcDecoder(beam_size=1, lm=object())  # type: ignore[arg-type]


@pytest.mark.parametrize("weight", [float("nan"), float("inf"), -1.0, "1"])
def test_an_lm_weight_that_is_not_a_finite_number_at_least_zero_is_refused(weight: object) -> None:
    """NaN once made the decoder fail on every line, and -5 or inf read garbage."""
    with pytest.raises(ConfigError, match="lm_weight must be a finite number >= 0"):
        CtcDecoder.from_options(beam_size=10, lm="default", lm_weight=weight)  # type: ignore[arg-type]


def test_an_lm_weight_without_an_lm_is_refused_not_ignored() -> None:
    with pytest.raises(ConfigError, match="there is none"):
        CtcDecoder.from_options(beam_size=10, lm_weight=0.5)
