"""CER / WER: hand-computed examples, and parity with torchmetrics' definitions."""

from __future__ import annotations

import random
import string

import pytest
import torchmetrics.text

from text_recognizer.metrics import cer, confidence_auroc, most_confident, wer
from text_recognizer.models.base import CharErrorRate, WordErrorRate


def test_cer_by_hand() -> None:
    assert cer(["kitten"], ["sitting"]) == pytest.approx(3 / 7)  # 2 substitutions + 1 insertion
    assert cer(["abc", ""], ["abc", "de"]) == pytest.approx(2 / 5)  # totals, not a mean of rates
    assert cer(["a b"], ["ab"]) == pytest.approx(1 / 2)  # spaces are characters
    assert cer(["Hello"], ["hello"]) == pytest.approx(1 / 5)  # case-sensitive
    assert cer(["same"], ["same"]) == 0.0


def test_wer_by_hand() -> None:
    assert wer(["the cat sat"], ["the cat sat down"]) == pytest.approx(1 / 4)
    assert wer(["the  cat\tsat"], ["the cat sat"]) == 0.0  # whitespace-split words
    assert wer(["a b", "x"], ["a c", "y z"]) == pytest.approx(3 / 4)


def test_empty_references() -> None:
    assert cer([""], [""]) == 0.0
    assert cer(["x"], [""]) == float("inf")
    assert cer([], []) == 0.0


def test_rejects_mismatched_or_bare_strings() -> None:
    with pytest.raises(ValueError, match="2 predictions but 1 references"):
        cer(["a", "b"], ["a"])
    with pytest.raises(TypeError, match="lists of strings"):
        wer("abc", "abd")


def random_pairs(count: int) -> tuple[list[str], list[str]]:
    rng = random.Random(0)
    alphabet = string.ascii_letters + "  .,"
    references = ["".join(rng.choices(alphabet, k=rng.randint(1, 40))) for _ in range(count)]
    predictions = []
    for ref in references:
        chars = list(ref)
        for _ in range(rng.randint(0, 4)):
            position = rng.randint(0, len(chars))
            op = rng.choice("isd")
            if op == "i":
                chars.insert(position, rng.choice(alphabet))
            elif chars and position < len(chars):
                if op == "s":
                    chars[position] = rng.choice(alphabet)
                else:
                    del chars[position]
        predictions.append("".join(chars))
    return predictions, references


def test_same_numbers_as_torchmetrics() -> None:
    predictions, references = random_pairs(200)
    expected_cer = torchmetrics.text.CharErrorRate()(predictions, references).item()
    expected_wer = torchmetrics.text.WordErrorRate()(predictions, references).item()
    assert cer(predictions, references) == pytest.approx(expected_cer, rel=1e-6)
    assert wer(predictions, references) == pytest.approx(expected_wer, rel=1e-6)


def test_accumulators_sum_over_batches_like_torchmetrics() -> None:
    predictions, references = random_pairs(90)
    ours, theirs = CharErrorRate(), torchmetrics.text.CharErrorRate()
    words = WordErrorRate()
    for start in range(0, 90, 30):
        batch = slice(start, start + 30)
        ours.update(predictions[batch], references[batch])
        theirs.update(predictions[batch], references[batch])
        words.update(predictions[batch], references[batch])
    assert ours.compute().item() == pytest.approx(theirs.compute().item(), rel=1e-6)
    assert ours.compute().item() == pytest.approx(cer(predictions, references), rel=1e-6)
    assert words.compute().item() == pytest.approx(wer(predictions, references), rel=1e-6)
    ours.reset()
    ours.update("abc", "abd")  # torchmetrics also accepts a single string
    assert ours.compute().item() == pytest.approx(1 / 3)


def test_confidence_auroc_by_hand() -> None:
    assert confidence_auroc([0.9, 0.8, 0.1], [True, True, False]) == 1.0
    assert confidence_auroc([0.1, 0.8, 0.9], [True, True, False]) == 0.0
    # (right, wrong) pairs: 0.9 > 0.3, 0.9 > 0.8, 0.4 > 0.3, 0.4 < 0.8 -> 3 of 4.
    assert confidence_auroc([0.9, 0.4, 0.3, 0.8], [True, True, False, False]) == 0.75
    assert confidence_auroc([0.5, 0.5], [True, False]) == 0.5  # a tie counts half
    assert confidence_auroc([0.5, 0.7], [True, True]) is None  # nothing to rank
    with pytest.raises(ValueError, match="2 confidences but 1 outcomes"):
        confidence_auroc([0.5, 0.7], [True])


def test_most_confident_keeps_the_surest_share_first() -> None:
    assert most_confident([0.2, 0.9, 0.5, 0.7], 0.5).tolist() == [1, 3]
    assert most_confident([0.2, 0.9, 0.5, 0.7], 1.0).tolist() == [1, 3, 2, 0]
    assert most_confident([0.3], 0.1).tolist() == [0]  # never empty
    with pytest.raises(ValueError, match="share"):
        most_confident([0.3], 0.0)
