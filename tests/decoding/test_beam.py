"""Beam search (flashlight-text): agrees with greedy when sure; the LM fixes a near miss."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from text_recognizer.charset import DEFAULT_CHARSET
from text_recognizer.decoding import CharNgramLm, beam_search_decode, greedy_ctc_decode

CS = DEFAULT_CHARSET


def peaked(path: list[int], rng: np.random.Generator, peak: float = 0.95) -> np.ndarray:
    """Log-probabilities peaked on ``path`` with random leftovers on the other tokens."""
    rest = rng.dirichlet(np.ones(len(CS) - 1), size=len(path)) * (1 - peak)
    probs = np.empty((len(path), len(CS)), np.float32)
    for t, token in enumerate(path):
        probs[t] = np.insert(rest[t], token, peak)
    return np.log(probs)


def test_agrees_with_greedy_on_peaked_posteriors() -> None:
    rng = np.random.default_rng(0)
    frames = 60
    batch = np.stack(
        [
            peaked(rng.choice([0, 0, *range(4, len(CS))], size=frames).tolist(), rng)
            for _ in range(8)
        ]
    )
    lengths = np.array([frames, 59, 41, 30, 20, 10, 1, 0])
    greedy = greedy_ctc_decode(batch, lengths)
    beam = beam_search_decode(batch, lengths, beam_size=8)
    assert [t for t, _ in beam] == [t for t, _ in greedy]
    assert [c for _, c in beam] == pytest.approx([c for _, c in greedy])


def near_miss(text: str, position: int, wrong: str, log_odds: float = 0.2) -> np.ndarray:
    """One frame per character, blanks between; at ``position`` ``wrong`` beats the truth.

    ``log_odds`` = ln(P(wrong) / P(truth)) on that frame.
    """
    rows = []
    for i, char in enumerate(text):
        probs = np.full(len(CS), 0.01 / (len(CS) - 2))
        probs[CS.index(char)] = 0.99
        if i == position:
            share = 1 / (1 + np.exp(-log_odds))
            probs[CS.index(wrong)], probs[CS.index(char)] = 0.99 * share, 0.99 * (1 - share)
        rows.append(probs)
        blank = np.full(len(CS), 0.01 / (len(CS) - 1))
        blank[CS.blank] = 0.99
        rows.append(blank)
    return np.log(np.array(rows, np.float32))[None]


@pytest.fixture(scope="module")
def lm(tmp_path_factory: pytest.TempPathFactory) -> CharNgramLm:
    texts = ["the cat sat on the mat", "the dog ate the cake", "then the man saw the sea"] * 5
    path: Path = tmp_path_factory.mktemp("lm") / "chars.arpa"
    return CharNgramLm.build(texts, order=4, path=path)


def test_lm_fixes_a_near_miss_word(lm: CharNgramLm) -> None:
    log_probs = near_miss("the cat", position=2, wrong="a")  # "tha cat" by a hair
    assert greedy_ctc_decode(log_probs)[0][0] == "tha cat"
    assert beam_search_decode(log_probs)[0][0] == "tha cat"
    text, confidence = beam_search_decode(log_probs, lm=lm, lm_weight=1.0)[0]
    assert text == "the cat"
    # The confidence is still the model's own: lower than for the text it preferred.
    assert confidence < greedy_ctc_decode(log_probs)[0][1]


@pytest.mark.parametrize("lm_weight", [0.3, 1.0])
def test_lm_weight_trades_log10_lm_against_natural_log_emissions(
    lm: CharNgramLm, lm_weight: float
) -> None:
    """The decoder picks the higher ln P(frames) + lm_weight * log10 P_lm(text)."""
    lm_gap = lm.log10_prob("the cat") - lm.log10_prob("tha cat")
    assert lm_gap > 1
    for extra, expected in [(-0.5, "the cat"), (0.5, "tha cat")]:
        log_probs = near_miss("the cat", 2, "a", log_odds=lm_weight * lm_gap + extra)
        assert beam_search_decode(log_probs, lm=lm, lm_weight=lm_weight)[0][0] == expected


def test_rejects_bad_arguments() -> None:
    log_probs = near_miss("ab", position=0, wrong="a")
    with pytest.raises(ValueError, match="charset"):
        beam_search_decode(log_probs[:, :, :20])
    with pytest.raises(ValueError, match="beam_size"):
        beam_search_decode(log_probs, beam_size=0)
