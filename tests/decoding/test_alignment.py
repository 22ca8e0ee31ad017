"""Forced alignment: which frames each character of a reading was read from, and words."""

from __future__ import annotations

import numpy as np
import pytest

from text_recognizer.decoding.alignment import (
    align,
    ctc_align,
    path_spans,
    word_confidences,
    word_spans,
    words_in,
)
from text_recognizer.decoding.greedy import collapse_path


def peaked(path: list[int], classes: int = 4) -> np.ndarray:
    """Log-probabilities whose best path is ``path``."""
    log_probs = np.full((len(path), classes), np.log(0.05))
    log_probs[np.arange(len(path)), path] = np.log(0.85)
    return log_probs


def test_each_label_gets_the_frames_it_was_read_from() -> None:
    log_probs = peaked([0, 1, 1, 0, 0, 2, 0, 2, 2, 0])
    assert ctc_align(log_probs, [1, 2, 2], blank=0) == [(1, 2), (5, 5), (7, 8)]
    assert ctc_align(log_probs, [], blank=0) == []
    # "b b" needs a blank between the two: 3 frames at least.
    assert ctc_align(peaked([2, 2]), [2, 2], blank=0) is None


def test_a_text_the_best_path_does_not_spell_is_still_placed() -> None:
    """A beam search with an LM may choose another text: it is aligned all the same."""
    log_probs = peaked([0, 1, 1, 0, 3, 0])
    spans = ctc_align(log_probs, [1, 2], blank=0)
    assert spans is not None and spans[0][0] >= 1 and spans[1][0] > spans[0][1]


@pytest.mark.parametrize("seed", range(5))
def test_the_best_paths_own_spans_are_its_alignment(seed: int) -> None:
    rng = np.random.default_rng(seed)
    log_probs = np.log(rng.dirichlet(np.full(6, 0.3), size=40))
    best = log_probs.argmax(axis=-1)
    labels = collapse_path(best.tolist(), blank=0)
    assert path_spans(best, blank=0) == ctc_align(log_probs, labels, blank=0)


def test_align_takes_the_best_path_where_it_spells_the_text() -> None:
    log_probs = peaked([0, 1, 1, 0, 3, 0])
    assert align(log_probs, [1, 3], blank=0) == [(1, 2), (4, 4)]  # the argmax path's runs
    assert align(log_probs, [1, 2], blank=0) == ctc_align(log_probs, [1, 2], blank=0)
    assert align(peaked([2, 2]), [2, 2], blank=0) is None


def test_words_reach_past_their_letters_but_not_into_each_other() -> None:
    # "ab cd" over 20 frames: a character is 4 frames wide, the margin half that.
    spans = word_spans("ab cd", [(2, 3), (5, 5), (8, 8), (10, 11), (13, 13)], frames=20)
    assert spans == [("ab", 0.0, 0.4), ("cd", 0.4, 0.8)]
    # Words 1 frame apart share the gap between them; nothing reaches past the line.
    spans = word_spans("a b", [(0, 0), (1, 1), (2, 2)], frames=3)
    assert spans == [("a", 0.0, 0.5 / 3 + 1 / 3), ("b", 2 / 3 - 0.5 / 3, 1.0)]
    assert word_spans(" a ", [(1, 1), (5, 5), (9, 9)], frames=12)[0][0] == "a"
    assert word_spans("", [], frames=10) == []


def test_a_words_confidence_is_its_own() -> None:
    """Two words read from their own frames: a clear one near 1, one whose frames hold
    another letter as likely as the one read, near one half, whatever the other word."""
    log_probs = np.log(np.full((9, 4), 0.01))
    # "a b": 'a' sure at frame 1, space at 4, 'b' (2) at frame 7 shared with class 3.
    log_probs[[0, 2, 3, 5, 6, 8], 0] = np.log(0.97)
    log_probs[1, 1] = np.log(0.97)
    log_probs[4, 3] = np.log(0.97)  # class 3 plays the space here
    log_probs[7, 2], log_probs[7, 3] = np.log(0.49), np.log(0.49)
    words = words_in("a b", [(1, 1), (4, 4), (7, 7)], frames=9)
    assert [(w.text, w.window_start, w.window_end) for w in words] == [("a", 0, 3), ("b", 5, 8)]
    sure = word_confidences(log_probs, words, [[1], [2]], blank=0)
    assert sure[0] > 0.9
    assert sure[1] == pytest.approx(0.49 * 0.97**3, rel=0.05)
