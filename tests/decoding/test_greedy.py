"""Greedy CTC decoding on hand-built posteriors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from text_recognizer.charset import DEFAULT_CHARSET, Charset
from text_recognizer.decoding import beam_search_decode, greedy_ctc_decode
from text_recognizer.decoding.greedy import as_log_probs, collapse_path, sequence_confidences

CS = DEFAULT_CHARSET
BLANK = CS.blank


def posteriors(*paths: str, peak: float = 0.9) -> tuple[np.ndarray, np.ndarray]:
    """Log-probabilities ``[B, T, C]`` peaked on each path ("_" = blank), padded with blanks."""
    frames = max(len(p) for p in paths)
    probs = np.full((len(paths), frames, len(CS)), (1 - peak) / (len(CS) - 1), np.float32)
    for i, path in enumerate(paths):
        for t in range(frames):
            token = path[t] if t < len(path) else "_"
            probs[i, t, BLANK if token == "_" else CS.index(token)] = peak
    return np.log(probs), np.array([len(p) for p in paths])


def test_merges_repeats_and_drops_blanks() -> None:
    log_probs, lengths = posteriors("hh_e_ll_llo__", "__a", "ab_ba")
    texts = [text for text, _ in greedy_ctc_decode(log_probs, lengths)]
    assert texts == ["hello", "a", "abba"]


def test_all_blanks_and_zero_frames_decode_to_empty() -> None:
    log_probs, _ = posteriors("____", "ab__")
    (empty, confidence), (no_frames, _) = greedy_ctc_decode(log_probs, [4, 0])
    assert empty == "" and no_frames == ""
    assert confidence == pytest.approx(0.9**4, rel=1e-4)  # the only alignment of ""


def test_frames_past_length_are_ignored() -> None:
    log_probs, _ = posteriors("ab_cd")
    assert greedy_ctc_decode(log_probs, torch.tensor([3]))[0][0] == "ab"


def test_torch_numpy_logits_and_log_probs_agree() -> None:
    log_probs, lengths = posteriors("x_yy_z", "q")
    logits = torch.from_numpy(log_probs) * 1.0 + 3.0  # log_softmax removes the shift
    expected = greedy_ctc_decode(log_probs, lengths)
    for variant in (torch.from_numpy(log_probs), logits):
        result = greedy_ctc_decode(variant, torch.from_numpy(lengths))
        assert [t for t, _ in result] == [t for t, _ in expected]
        assert [c for _, c in result] == pytest.approx([c for _, c in expected], rel=1e-5)
    half = greedy_ctc_decode(logits.bfloat16(), lengths)  # as a bf16-autocast model emits
    assert [t for t, _ in half] == [t for t, _ in expected]


def test_confidence_sums_over_every_alignment() -> None:
    """Two frames, tokens {blank, a}: P("a") = P(a a) + P(a _) + P(_ a)."""
    charset = Charset.from_tokens(["<blank>", "a"])
    p = np.array([[0.3, 0.7], [0.4, 0.6]], np.float32)  # frame 0, frame 1
    ((text, confidence),) = greedy_ctc_decode(np.log(p)[None], [2], charset)
    assert text == "a"
    assert confidence == pytest.approx(0.7 * 0.6 + 0.7 * 0.4 + 0.3 * 0.6, rel=1e-5)


def test_confidence_matches_torch_ctc_loss() -> None:
    """The numpy forward algorithm against PyTorch's CTC loss: repeats, padding, long lines."""
    rng = np.random.default_rng(0)
    for _ in range(100):
        batch, frames, classes = rng.integers(1, 5), rng.integers(1, 80), 5
        logits = rng.normal(size=(batch, frames, classes)) * rng.uniform(0.5, 8)
        lengths = rng.integers(1, frames + 1, size=batch)
        labels = [rng.integers(1, classes, size=rng.integers(0, 30)).tolist() for _ in range(batch)]
        log_probs, counts = as_log_probs(logits.astype(np.float32), lengths)
        ours = sequence_confidences(log_probs, counts, labels, blank=0)
        nll = torch.nn.functional.ctc_loss(
            torch.log_softmax(torch.from_numpy(logits), -1).transpose(0, 1),
            torch.tensor([token for line in labels for token in line], dtype=torch.long),
            torch.from_numpy(lengths),
            torch.tensor([len(line) for line in labels]),
            reduction="none",
        )
        expected = torch.exp(-nll).tolist()  # 0 where the text cannot fit the frames
        assert ours == pytest.approx(expected, rel=1e-4, abs=1e-280)


def test_impossible_frames_give_confidence_zero_not_nan() -> None:
    log_probs = np.full((1, 3, len(CS)), -np.inf, np.float32)
    log_probs[0, [0, 2], BLANK] = 0.0
    log_probs[0, 1, CS.index("b")] = 0.0  # surely blank, "b", blank: nothing else possible
    ((text, confidence),) = greedy_ctc_decode(log_probs)
    assert (text, confidence) == ("b", 1.0)
    scores, counts = as_log_probs(log_probs)
    assert sequence_confidences(scores, counts, [[CS.index("a")]], BLANK) == [0.0]
    assert sequence_confidences(scores, counts, [[]], BLANK) == [0.0]


def test_confidence_falls_with_ambiguity() -> None:
    sure, _ = posteriors("ab", peak=0.99)
    unsure, _ = posteriors("ab", peak=0.5)
    ((_, high),) = greedy_ctc_decode(sure)
    ((_, low),) = greedy_ctc_decode(unsure)
    assert 0 < low < high <= 1
    assert high == pytest.approx(0.99**2, rel=1e-3)


def test_rejects_mismatched_charset_and_shapes() -> None:
    log_probs, lengths = posteriors("ab")
    with pytest.raises(ValueError, match="charset"):
        greedy_ctc_decode(log_probs[:, :, :10], lengths)
    with pytest.raises(ValueError, match="batch"):
        greedy_ctc_decode(log_probs[0], lengths)
    with pytest.raises(ValueError, match="lengths"):
        greedy_ctc_decode(log_probs, [2, 2])


def test_broken_scores_negative_lengths_and_a_charset_in_lengths_place_are_refused() -> None:
    """NaN scores once decoded greedily to "" and made the beam search fail on an
    IndexError; a charset passed second (where lengths go) failed in int()."""
    log_probs, lengths = posteriors("a_b_", "b_a_")
    broken = log_probs.copy()
    broken[1, 3, 5] = np.nan
    for decode in (greedy_ctc_decode, lambda *a: beam_search_decode(*a, beam_size=3)):
        with pytest.raises(ValueError, match="NaN or \\+inf"):
            decode(broken, lengths)
        with pytest.raises(ValueError, match=r"0 or more frames; got \[-1, 4\]"):
            decode(log_probs, [-1, 4])
        with pytest.raises(TypeError, match="charset="):
            decode(log_probs, CS)
    masked = log_probs.copy()
    masked[:, :, 7] = -np.inf  # a class masked out is a log-probability, not broken
    read = greedy_ctc_decode(masked, lengths)
    assert [text for text, _ in read] == ["ab", "ba"] and all(0 < c <= 1 for _, c in read)


def test_collapse_path() -> None:
    assert collapse_path([1, 1, 0, 1, 2, 2, 0, 0, 3], blank=0) == [1, 1, 2, 3]
    assert collapse_path([], blank=0) == []
    assert collapse_path([0, 0], blank=0) == []
