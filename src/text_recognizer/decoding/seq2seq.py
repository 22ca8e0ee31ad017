"""Token-by-token decoding of an exported seq2seq (Transformer) line model, in NumPy.

The model exports as two ONNX graphs (``export.export_seq2seq_graphs``): an encoder run
once per batch, and a decoder step run once per token. This is the loop that drives the
step for a runtime without PyTorch (the Recognizer reading an exported model); it does
what ``TransformerRecognizer.greedy_decode`` and ``beam_search`` do in PyTorch, and the
tests check that both give the same tokens and scores.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from text_recognizer.charset import Charset

#: ``(token [N], cache, memory_keys_values, memory_valid)`` -> ``(log_probs [N, C], cache)``.
Step = Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


def seq2seq_decode(
    step: Step,
    memory_keys_values: np.ndarray,
    memory_valid: np.ndarray,
    charset: Charset,
    max_length: int,
    beam_size: int = 1,
) -> tuple[np.ndarray, np.ndarray]:
    """Token ids ``[B, T]`` (each ending in ``<end>``, then ``<pad>``) and scores ``[B]``.

    A score is the mean log-probability of the emitted tokens, ``<end>`` included. At
    most ``max_length + 1`` tokens are emitted. ``memory_keys_values``
    (``[layers, 2, B, heads, M, d_head]``) and ``memory_valid`` (``[B, M]``) are the
    encoder graph's outputs; a ``ValueError`` says which argument is wrong, as a wrong
    shape would otherwise fail deep in the loop or decode the wrong number of lines.
    """
    _check_arguments(memory_keys_values, memory_valid, max_length, beam_size)
    if beam_size == 1:
        return _greedy(step, memory_keys_values, memory_valid, charset, max_length)
    return _beam_search(step, memory_keys_values, memory_valid, charset, max_length, beam_size)


def _check_arguments(
    memory_keys_values: np.ndarray, memory_valid: np.ndarray, max_length: int, beam_size: int
) -> None:
    for name, value in (("max_length", max_length), ("beam_size", beam_size)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
            raise ValueError(f"{name} must be a whole number, 1 or more; got {value!r}")
    if np.ndim(memory_keys_values) != 6:
        raise ValueError(
            "memory_keys_values must be [layers, 2, batch, heads, memory, head size], as the "
            f"encoder graph gives it; got shape {np.shape(memory_keys_values)}"
        )
    batch, memory = memory_keys_values.shape[2], memory_keys_values.shape[4]
    if np.shape(memory_valid) != (batch, memory):
        raise ValueError(
            f"memory_valid must be [batch, memory] = [{batch}, {memory}] for these keys and "
            f"values; got shape {np.shape(memory_valid)}"
        )


def _empty_cache(memory_keys_values: np.ndarray) -> np.ndarray:
    """A self-attention cache holding no tokens: ``[layers, 2, B, heads, 0, d_head]``."""
    layers, pair, batch, heads, _, head_size = memory_keys_values.shape
    return np.zeros((layers, pair, batch, heads, 0, head_size), np.float32)


def _greedy(
    step: Step,
    memory_keys_values: np.ndarray,
    memory_valid: np.ndarray,
    charset: Charset,
    max_length: int,
) -> tuple[np.ndarray, np.ndarray]:
    batch = memory_valid.shape[0]
    cache = _empty_cache(memory_keys_values)
    token = np.full(batch, charset.start, np.int64)
    emitted = []
    total = np.zeros(batch, np.float32)
    lengths = np.zeros(batch, np.float32)
    finished = np.zeros(batch, bool)
    for _ in range(max_length + 1):  # characters, then <end>
        log_probs, cache = step(token, cache, memory_keys_values, memory_valid)
        token = log_probs.argmax(axis=-1).astype(np.int64)
        best = log_probs[np.arange(batch), token]
        token = np.where(finished, charset.pad, token)
        total += np.where(finished, 0.0, best)
        lengths += ~finished
        emitted.append(token)
        finished |= token == charset.end
        if finished.all():
            break
    return np.stack(emitted, axis=1), total / lengths


def _beam_search(
    step: Step,
    memory_keys_values: np.ndarray,
    memory_valid: np.ndarray,
    charset: Charset,
    max_length: int,
    beam_size: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Keep the ``beam_size`` best hypotheses per image, ranked by the length-normalised
    score, so a finished hypothesis keeps its slot while no live one beats it."""
    batch, k, classes = memory_valid.shape[0], beam_size, len(charset)
    memory_keys_values = np.repeat(memory_keys_values, k, axis=2)
    memory_valid = np.repeat(memory_valid, k, axis=0)
    cache = _empty_cache(memory_keys_values)
    token = np.full(batch * k, charset.start, np.int64)
    history = np.zeros((batch, k, 0), np.int64)
    totals = np.zeros((batch, k), np.float32)
    totals[:, 1:] = -np.inf  # all beams start identical: expand only the first
    lengths = np.zeros((batch, k), np.float32)
    finished = np.zeros((batch, k), bool)
    pad_only = np.full(classes, -np.inf, np.float32)
    pad_only[charset.pad] = 0.0
    rows = np.arange(batch)[:, None] * k  # first slot of each image
    for _ in range(max_length + 1):
        log_probs, cache = step(token, cache, memory_keys_values, memory_valid)
        log_probs = np.where(finished[..., None], pad_only, log_probs.reshape(batch, k, classes))
        candidate_totals = (totals[..., None] + log_probs).reshape(batch, k * classes)
        candidate_lengths = np.repeat(lengths + ~finished, classes, axis=1)
        with np.errstate(invalid="ignore"):
            ranked = candidate_totals / candidate_lengths
        chosen = np.argsort(-ranked, axis=1, kind="stable")[:, :k]
        beam, new_token = chosen // classes, chosen % classes
        totals = np.take_along_axis(candidate_totals, chosen, axis=1)
        lengths = np.take_along_axis(candidate_lengths, chosen, axis=1)
        finished = np.take_along_axis(finished, beam, axis=1) | (new_token == charset.end)
        history = np.take_along_axis(history, beam[..., None], axis=1)
        history = np.concatenate([history, new_token[..., None]], axis=2)
        cache = cache[:, :, (rows + beam).ravel()]  # each slot continues its parent's cache
        token = new_token.ravel().astype(np.int64)
        if finished.all():
            break
    scores = totals / lengths
    best = scores.argmax(axis=1)
    return history[np.arange(batch), best], scores[np.arange(batch), best]


def texts_and_confidences(
    tokens: Sequence[Sequence[int]], scores: Sequence[float], charset: Charset
) -> list[tuple[str, float]]:
    """``(text, confidence)`` per decoded row: the tokens up to ``<end>``, and
    ``exp(score)``, the geometric mean of the emitted tokens' probabilities."""
    out = []
    for row, score in zip(tokens, scores, strict=True):
        row = list(row)
        if charset.end in row:
            row = row[: row.index(charset.end)]
        out.append((charset.decode(row), float(np.exp(score))))
    return out
