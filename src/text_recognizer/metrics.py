"""Character and word error rates: total edit distance over total reference length.

Length-normalised over the whole set (not averaged per line), case-sensitive, spaces
kept as characters; words are whitespace-split. This is torchmetrics' definition, so
the Lightning accumulators below are torchmetrics' own classes with only the edit
distance swapped for rapidfuzz's C++ one (torchmetrics' is pure Python, ~1000x slower:
0.8 s against 1 ms for 2000 lines of 45 characters).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from rapidfuzz.distance import Levenshtein
from torchmetrics.text import CharErrorRate as _TorchmetricsCer
from torchmetrics.text import WordErrorRate as _TorchmetricsWer


def _check_pairs(predictions: Sequence[str], references: Sequence[str]) -> None:
    if isinstance(predictions, str) or isinstance(references, str):
        raise TypeError("pass lists of strings (one per line), not a single string")
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions but {len(references)} references")


def char_errors(predictions: Sequence[str], references: Sequence[str]) -> tuple[int, int]:
    """(total character edit distance, total reference characters)."""
    _check_pairs(predictions, references)
    errors = sum(Levenshtein.distance(p, r) for p, r in zip(predictions, references, strict=True))
    return errors, sum(len(r) for r in references)


def word_errors(predictions: Sequence[str], references: Sequence[str]) -> tuple[int, int]:
    """(total word edit distance, total reference words); words are whitespace-split."""
    _check_pairs(predictions, references)
    errors = sum(
        Levenshtein.distance(p.split(), r.split())
        for p, r in zip(predictions, references, strict=True)
    )
    return errors, sum(len(r.split()) for r in references)


def _rate(errors: int, total: int) -> float:
    if total == 0:
        # No reference text: any predicted text is an error, none is perfect.
        return 0.0 if errors == 0 else float("inf")
    return errors / total


def cer(predictions: Sequence[str], references: Sequence[str]) -> float:
    """Character error rate: sum of edit distances / sum of reference lengths."""
    return _rate(*char_errors(predictions, references))


def wer(predictions: Sequence[str], references: Sequence[str]) -> float:
    """Word error rate: sum of word-level edit distances / sum of reference word counts."""
    return _rate(*word_errors(predictions, references))


def _as_list(texts: str | list[str]) -> list[str]:
    return [texts] if isinstance(texts, str) else texts


class CharErrorRate(_TorchmetricsCer):
    """torchmetrics' ``CharErrorRate`` (same states, sync and compute) with a fast update."""

    errors: torch.Tensor
    total: torch.Tensor

    def update(self, preds: str | list[str], target: str | list[str]) -> None:
        errors, total = char_errors(_as_list(preds), _as_list(target))
        self.errors += errors
        self.total += total


class WordErrorRate(_TorchmetricsWer):
    """torchmetrics' ``WordErrorRate`` (same states, sync and compute) with a fast update."""

    errors: torch.Tensor
    total: torch.Tensor

    def update(self, preds: str | list[str], target: str | list[str]) -> None:
        errors, total = word_errors(_as_list(preds), _as_list(target))
        self.errors += errors
        self.total += total
