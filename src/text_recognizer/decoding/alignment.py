"""Where in a line each character of a reading was read: CTC forced alignment.

Whatever decoder chose the text (greedy, beam search with an LM, the best of several
widths), the most likely CTC path that spells exactly that text (Viterbi over the
extended label sequence ``blank, l1, blank, l2, ..., blank``) says which frames each
character was read from. The Recognizer turns those frames into word boxes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from text_recognizer.charset import Charset
from text_recognizer.decoding.greedy import sequence_confidences


def ctc_align(
    log_probs: np.ndarray, labels: Sequence[int], blank: int
) -> list[tuple[int, int]] | None:
    """``(first, last)`` frame of each label on the best path spelling ``labels``.

    Args:
        log_probs: ``[T, C]`` log-probabilities of one line's real frames.
        labels: the token ids of the text, blanks excluded.
        blank: the CTC blank's id.

    Returns:
        One frame span per label, in order; ``None`` when the frames cannot spell the
        labels (more tokens, with the blanks repeats need, than frames).
    """
    frames, count = len(log_probs), len(labels)
    if count == 0:
        return []
    states = 2 * count + 1
    extended = np.full(states, blank, dtype=np.int64)
    extended[1::2] = labels
    # s-2 -> s skips a blank, allowed only between two different labels.
    can_skip = np.zeros(states, dtype=bool)
    can_skip[3::2] = np.asarray(labels[1:]) != np.asarray(labels[:-1])
    emitted = log_probs[:, extended].astype(np.float64)  # [T, S]
    score = np.full(states, -np.inf)
    score[:2] = emitted[0, :2]
    moves = np.zeros((frames, states), dtype=np.int8)  # 0 stay, 1 from s-1, 2 from s-2
    candidates = np.full((3, states), -np.inf)
    for t in range(1, frames):
        candidates[0] = score
        candidates[1, 1:] = score[:-1]
        candidates[2, 2:] = np.where(can_skip[2:], score[:-2], -np.inf)
        moves[t] = candidates.argmax(axis=0)
        score = candidates[moves[t], np.arange(states)] + emitted[t]
    last = states - 1 if score[-1] >= score[-2] else states - 2
    if not np.isfinite(score[last]):
        return None
    spans: list[list[int]] = [[frames, -1] for _ in range(count)]
    state = last
    for t in range(frames - 1, -1, -1):
        if state % 2 == 1:  # a label's state: this frame reads it
            span = spans[state // 2]
            span[0], span[1] = t, max(span[1], t)
        state -= int(moves[t, state]) if t > 0 else 0
    return [(first, last_frame) for first, last_frame in spans]


def path_spans(path: np.ndarray, blank: int) -> list[tuple[int, int]]:
    """``(first, last)`` frame of each token a frame path emits (runs of one token that
    is not the blank). On the per-frame argmax path this is what :func:`ctc_align` finds
    for the greedy reading, at a fraction of the cost: the best path overall spells it,
    so it is also the best path that does."""
    if len(path) == 0:
        return []
    starts = np.flatnonzero(np.r_[True, path[1:] != path[:-1]])
    ends = np.r_[starts[1:] - 1, len(path) - 1]
    emitted = path[starts] != blank
    return list(zip(starts[emitted].tolist(), ends[emitted].tolist(), strict=True))


def align(log_probs: np.ndarray, labels: Sequence[int], blank: int) -> list[tuple[int, int]] | None:
    """:func:`ctc_align`, taking the argmax path's own runs (:func:`path_spans`) where it
    spells ``labels``: always for a greedy reading, and for most beam-search readings."""
    best = log_probs.argmax(axis=-1)
    spans = path_spans(best, blank)
    if [int(best[first]) for first, _ in spans] == list(labels):
        return spans
    return ctc_align(log_probs, labels, blank)


#: A word's box reaches this share of a character's width beyond the first and last
#: frames its letters were read from (CTC reads a letter in a frame or two, often inside
#: it), never past half the gap to the next word.
WORD_MARGIN = 0.5


class WordFrames(NamedTuple):
    """A word of a reading and its frames: ``first`` to ``last`` its letters were read
    from; ``window_start`` to ``window_end`` all frames between its neighbouring spaces."""

    text: str
    first: int
    last: int
    window_start: int
    window_end: int


def words_in(text: str, frame_spans: Sequence[tuple[int, int]], frames: int) -> list[WordFrames]:
    """The words of ``text`` with their frames, from each character's (:func:`align`)."""
    words = []
    start = None
    for position, char in enumerate([*text, " "]):
        if char != " " and start is None:
            start = position
        elif char == " " and start is not None:
            window_start = frame_spans[start - 1][1] + 1 if start > 0 else 0
            window_end = frame_spans[position][0] - 1 if position < len(text) else frames - 1
            first, last = frame_spans[start][0], frame_spans[position - 1][1]
            words.append(WordFrames(text[start:position], first, last, window_start, window_end))
            start = None
    return words


def word_spans(
    text: str, frame_spans: Sequence[tuple[int, int]], frames: int
) -> list[tuple[str, float, float]]:
    """The words of ``text`` and where each lies along the line, as shares of its width
    ``(start, end)``, from the frames each character was read from (:func:`ctc_align`)."""
    if not text or frames == 0:
        return []
    words = words_in(text, frame_spans, frames)
    margin = WORD_MARGIN * frames / max(len(text), 1)  # in frames: a character's width
    spans = []
    for index, (word, first, last, _, _) in enumerate(words):
        before = (first - words[index - 1].last - 1) / 2 if index > 0 else first
        after = (
            (words[index + 1].first - last - 1) / 2 if index + 1 < len(words) else frames - 1 - last
        )
        low = first - min(margin, max(before, 0.0))
        high = last + 1 + min(margin, max(after, 0.0))
        spans.append((word, low / frames, high / frames))
    return spans


def word_confidences(
    log_probs: np.ndarray, words: Sequence[WordFrames], labels: Sequence[Sequence[int]], blank: int
) -> list[float]:
    """Each word's ``P(word | the frames between its neighbouring spaces)``: the line
    confidence's CTC forward pass (:func:`~text_recognizer.decoding.greedy.sequence_confidences`)
    over the word's own window, so a word reads as right or doubtful on its own."""
    if not words:
        return []
    lengths = np.array([w.window_end - w.window_start + 1 for w in words], dtype=np.int64)
    windows = np.zeros((len(words), int(lengths.max()), log_probs.shape[1]), np.float32)
    for row, word in enumerate(words):
        windows[row, : lengths[row]] = log_probs[word.window_start : word.window_end + 1]
    return sequence_confidences(windows, lengths, labels, blank)


def locate_words(
    log_probs: np.ndarray, text: str, charset: Charset
) -> list[tuple[str, float, float, float]]:
    """Each word of the reading ``text`` of a line's ``[T, C]`` log-probabilities: the
    word, where it starts and ends (shares of the line's width: :func:`word_spans`) and
    its confidence (:func:`word_confidences`); none where the frames cannot spell it."""
    spans = align(log_probs, charset.encode(text), charset.blank)
    if not spans:
        return []
    words = words_in(text, spans, len(log_probs))
    labels = [charset.encode(word.text) for word in words]
    sure = word_confidences(log_probs, words, labels, charset.blank)
    places = word_spans(text, spans, len(log_probs))
    return [(*place, confidence) for place, confidence in zip(places, sure, strict=True)]
