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

import numpy as np
import torch
import torch.nn.functional as F

from text_recognizer.charset import DEFAULT_CHARSET, Charset

ArrayLike = torch.Tensor | np.ndarray
Lengths = torch.Tensor | np.ndarray | Sequence[int]


def as_log_probs(
    scores: ArrayLike, lengths: Lengths | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Normalise ``[B, T, C]`` logits or log-probabilities (tensor or numpy) to log-probabilities.

    ``log_softmax`` leaves log-probabilities unchanged, so callers may pass either. Missing
    ``lengths`` mean every frame is real. Lengths are clamped to ``T``.
    """
    tensor = torch.as_tensor(scores).detach().float().cpu()
    if tensor.dim() != 3:
        raise ValueError(
            f"expected scores of shape [batch, frames, classes]; got {tuple(tensor.shape)}"
            " (add a batch dimension for a single line)"
        )
    if lengths is None:
        frame_counts = torch.full((tensor.shape[0],), tensor.shape[1], dtype=torch.long)
    else:
        frame_counts = torch.as_tensor(lengths).detach().long().cpu().reshape(-1)
        if frame_counts.numel() != tensor.shape[0]:
            raise ValueError(
                f"{frame_counts.numel()} lengths for a batch of {tensor.shape[0]} lines"
            )
    return F.log_softmax(tensor, dim=-1), frame_counts.clamp(0, tensor.shape[1])


def sequence_confidences(
    log_probs: torch.Tensor, lengths: torch.Tensor, labels: Sequence[Sequence[int]], blank: int
) -> list[float]:
    """``P(labels[i] | frames of line i)`` for each line: exp(-CTC loss), in [0, 1]."""
    if len(labels) == 0:
        return []
    flat = torch.tensor([token for line in labels for token in line], dtype=torch.long)
    label_lengths = torch.tensor([len(line) for line in labels], dtype=torch.long)
    nll = F.ctc_loss(
        log_probs.transpose(0, 1),  # [T, B, C]
        flat,
        lengths,
        label_lengths,
        blank=blank,
        reduction="none",
        zero_infinity=False,  # an impossible text gets -log p = inf: confidence 0
    )
    return torch.exp(-nll).clamp(0.0, 1.0).tolist()


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
    best = scores.argmax(dim=-1)
    paths = [
        collapse_path(best[i, : int(n)].tolist(), charset.blank) for i, n in enumerate(frame_counts)
    ]
    confidences = sequence_confidences(scores, frame_counts, paths, charset.blank)
    return [(charset.decode(path), conf) for path, conf in zip(paths, confidences, strict=True)]
