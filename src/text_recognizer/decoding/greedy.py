"""Greedy (best-path) CTC decoding and the line confidence shared by every decoder.

Confidence is the model's own probability of the decoded text, ``P(text | image)``,
summed over every CTC alignment that spells it (the CTC forward algorithm). So it reads
as "the probability that the whole line is exactly right", and it is comparable between
greedy and beam search. It falls with line length as an exact-match probability should;
a per-frame average of max probabilities would instead sit near 1 on every line, because
most frames are confident blanks.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TypeAlias

import numpy as np

from text_recognizer.charset import DEFAULT_CHARSET, Charset

if TYPE_CHECKING:
    import torch

# numpy only at run time: reading with the bundled ONNX models never imports torch (~1 s of
# every CLI call); torch tensors are still accepted and converted.
ArrayLike: TypeAlias = "torch.Tensor | np.ndarray"
Lengths: TypeAlias = "torch.Tensor | np.ndarray | Sequence[int]"


def _as_numpy(values: Any) -> np.ndarray:
    if hasattr(values, "detach"):  # a torch tensor, possibly bfloat16 or on a GPU
        values = values.detach().cpu()
        if values.is_floating_point():
            values = values.float()
        values = values.numpy()
    return np.asarray(values)


def as_log_probs(
    scores: ArrayLike, lengths: Lengths | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Normalise ``[B, T, C]`` logits or log-probabilities (tensor or numpy) to log-probabilities.

    A log-softmax leaves log-probabilities unchanged, so callers may pass either. Missing
    ``lengths`` mean every frame is real. Lengths are clamped to ``T``; a negative one, or
    scores holding NaN or +inf, are a ``ValueError``.

    Returns:
        float32 log-probabilities ``[B, T, C]`` and int64 frame counts ``[B]``.
    """
    if isinstance(lengths, Charset):  # decode(scores, charset): the second place is lengths
        raise TypeError("lengths got a Charset: pass the charset by name, charset=...")
    array = _as_numpy(scores).astype(np.float32, copy=False)
    if array.ndim != 3:
        raise ValueError(
            f"expected scores of shape [batch, frames, classes]; got {tuple(array.shape)}"
            " (add a batch dimension for a single line)"
        )
    # NaN decodes as nothing at all (greedy) or fails inside the beam search's C++;
    # -inf is a legitimate log-probability (a class masked out).
    if np.isnan(array).any() or np.isposinf(array).any():
        raise ValueError(
            "scores hold NaN or +inf: the model's output is broken (a diverged training, "
            "or a bad input); check it before decoding"
        )
    if lengths is None:
        frame_counts = np.full(array.shape[0], array.shape[1], dtype=np.int64)
    else:
        frame_counts = _as_numpy(lengths).astype(np.int64).reshape(-1)
        if frame_counts.size != array.shape[0]:
            raise ValueError(f"{frame_counts.size} lengths for a batch of {array.shape[0]} lines")
        if frame_counts.size and frame_counts.min() < 0:
            raise ValueError(f"lengths must be 0 or more frames; got {frame_counts.tolist()}")
    peak = array.max(axis=-1, keepdims=True)
    log_norm = peak + np.log(np.exp(array - peak).sum(axis=-1, keepdims=True))
    return array - log_norm, np.clip(frame_counts, 0, array.shape[1])


def sequence_confidences(
    log_probs: np.ndarray, lengths: np.ndarray, labels: Sequence[Sequence[int]], blank: int
) -> list[float]:
    """``P(labels[i] | frames of line i)`` for each line, in [0, 1]: the CTC forward algorithm.

    Args:
        log_probs: ``[B, T, C]`` log-probabilities (as :func:`as_log_probs` returns them).
        lengths: real frames per line ``[B]``.
        labels: the token ids whose probability is wanted, one sequence per line.
        blank: the CTC blank's id.

    The recursion runs on probabilities, not logs (no log-add: numpy's per-call cost is
    what a line of ~100 frames pays for), scaled by each frame's best label probability
    and renormalised every few frames, keeping the log of every scale. All lines of a
    batch advance together. Exact to float64 rounding for any probability above ~1e-290;
    an impossible text (more tokens than the frames allow) gets 0.
    """
    batch = len(labels)
    if batch == 0:
        return []
    frames = int(lengths.max(initial=0))
    states = 2 * max(len(line) for line in labels) + 1
    # Extended labels: blank, l1, blank, l2, ..., blank; states past a line's own emit nothing.
    extended = np.full((batch, states), blank, dtype=np.int64)
    allowed = np.zeros((batch, states), dtype=bool)
    skip = np.zeros((batch, states))  # s-2 -> s is allowed between two differing tokens
    for i, line in enumerate(labels):
        tokens = np.asarray(line, dtype=np.int64)
        extended[i, 1 : 2 * len(tokens) : 2] = tokens
        allowed[i, : 2 * len(tokens) + 1] = True
        skip[i, 3 : 2 * len(tokens) : 2] = tokens[1:] != tokens[:-1]
    confidences = [1.0 if len(line) == 0 else 0.0 for line in labels]  # lines of 0 frames
    if frames == 0:
        return confidences
    emitted = np.take_along_axis(
        log_probs[:, :frames].astype(np.float64), extended[:, None, :], axis=2
    )  # [B, T, S]
    emitted[~np.broadcast_to(allowed[:, None, :], emitted.shape)] = -np.inf
    # A frame where no state of the text can be emitted (all -inf) makes the text impossible.
    frame_peak = np.maximum(emitted.max(axis=2), -1e30)  # [B, T]
    emit = np.exp(emitted - frame_peak[:, :, None])
    finishing: dict[int, list[int]] = {}
    for i, count in enumerate(lengths.tolist()):
        if count > 0:
            finishing.setdefault(count - 1, []).append(i)

    alpha = np.zeros((batch, states))
    alpha[:, :2] = emit[:, 0, :2]
    log_scale = np.zeros(batch)
    step = np.empty_like(alpha)
    skipped = np.empty((batch, max(states - 2, 0)))
    for t in range(frames):
        if t > 0:
            step[:, 0] = alpha[:, 0]
            np.add(alpha[:, 1:], alpha[:, :-1], out=step[:, 1:])
            np.multiply(alpha[:, :-2], skip[:, 2:], out=skipped)
            step[:, 2:] += skipped
            np.multiply(step, emit[:, t], out=alpha)
        # Renormalised every 8 frames: what underflows in between is below 1e-308 of the
        # last total, so it matters only for texts that are already impossible (~0).
        if t % 8 == 7 or t in finishing:
            total = alpha.sum(axis=1)
            total[total == 0] = 1.0
            alpha /= total[:, None]
            log_scale += np.log(total)
        for i in finishing.get(t, ()):
            last = 2 * len(labels[i])
            end = alpha[i, last] + (alpha[i, last - 1] if last > 0 else 0.0)
            confidences[i] = 0.0  # the text cannot be read from these frames
            if end > 0:
                log_p = log_scale[i] + frame_peak[i, : t + 1].sum() + np.log(end)
                confidences[i] = float(min(1.0, np.exp(log_p)))
    return confidences


def collapse_path(path: Sequence[int], blank: int) -> list[int]:
    """CTC's many-to-one map: merge repeated tokens, then drop blanks."""
    tokens: list[int] = []
    previous = None
    for token in path:
        if token != previous and token != blank:
            tokens.append(token)
        previous = token
    return tokens


def greedy_ctc_decode(
    log_probs: ArrayLike, lengths: Lengths | None = None, charset: Charset = DEFAULT_CHARSET
) -> list[tuple[str, float]]:
    """Best-path decoding: the most likely token per frame, repeats merged, blanks dropped.

    Args:
        log_probs: ``[B, T, C]`` log-probabilities or logits (torch or numpy, e.g. ONNX output).
        lengths: real frames per line ``[B]`` (frames past it are padding); all frames if None.
        charset: the charset the model was trained with.

    Returns:
        ``(text, confidence)`` per line; confidence is ``P(text | image)`` (module docstring).
    """
    scores, frame_counts = as_log_probs(log_probs, lengths)
    if scores.shape[-1] != len(charset):
        raise ValueError(
            f"scores have {scores.shape[-1]} classes but the charset has {len(charset)} tokens;"
            " decode with the charset the model was trained with"
        )
    best = scores.argmax(axis=-1)
    paths = [
        collapse_path(best[i, : int(n)].tolist(), charset.blank) for i, n in enumerate(frame_counts)
    ]
    confidences = sequence_confidences(scores, frame_counts, paths, charset.blank)
    return [(charset.decode(path), conf) for path, conf in zip(paths, confidences, strict=True)]
