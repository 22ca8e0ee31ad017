"""CTC beam search with an optional character n-gram LM (flashlight-text's C++ decoder).

flashlight-text's lexicon-free decoder keeps the ``beam_size`` best prefixes per frame,
expanding each with the ``beam_size_token`` likeliest tokens of that frame, and adds
``lm_weight * log10 P_lm(token | previous tokens)`` whenever a character is emitted (the
LM is KenLM, so its scores are log10 while emissions are natural logs). Without an LM
it uses flashlight's zero LM, which makes it a plain (max-path) CTC beam search.
"""

from __future__ import annotations

import numpy as np

from text_recognizer.charset import DEFAULT_CHARSET, Charset
from text_recognizer.decoding.greedy import (
    ArrayLike,
    Lengths,
    as_log_probs,
    collapse_path,
    sequence_confidences,
)
from text_recognizer.decoding.ngram import CharNgramLm


def beam_search_decode(
    log_probs: ArrayLike,
    lengths: Lengths | None = None,
    charset: Charset = DEFAULT_CHARSET,
    beam_size: int = 10,
    lm: CharNgramLm | None = None,
    lm_weight: float = 1.0,
    beam_size_token: int = 8,
    beam_threshold: float = 15.0,
) -> list[tuple[str, float]]:
    """Decode each line with a CTC beam search, optionally guided by a character LM.

    Args:
        log_probs: ``[B, T, C]`` log-probabilities or logits (torch or numpy).
        lengths: real frames per line ``[B]``; all frames if None.
        charset: the charset the model was trained with.
        beam_size: prefixes kept per frame.
        lm: character n-gram LM; None decodes without one.
        lm_weight: weight of the LM's log10 scores against the model's natural-log scores.
        beam_size_token: tokens tried per frame (the frame's likeliest ones).
        beam_threshold: prefixes scoring this much below the best are pruned.

    Returns:
        ``(text, confidence)`` per line; confidence is the model's ``P(text | image)``
        without the LM (as in :func:`~text_recognizer.decoding.greedy.greedy_ctc_decode`),
        so it stays comparable with and without an LM.
    """
    from flashlight.lib.text.decoder import (
        CriterionType,
        LexiconFreeDecoder,
        LexiconFreeDecoderOptions,
        ZeroLM,
    )

    if beam_size < 1 or beam_size_token < 1:
        raise ValueError(
            f"beam_size={beam_size} and beam_size_token={beam_size_token} must be >= 1"
        )
    scores, frame_counts = as_log_probs(log_probs, lengths)
    num_classes = scores.shape[-1]
    if num_classes != len(charset):
        raise ValueError(
            f"scores have {num_classes} classes but the charset has {len(charset)} tokens;"
            " decode with the charset the model was trained with"
        )
    options = LexiconFreeDecoderOptions(
        beam_size=beam_size,
        beam_size_token=min(beam_size_token, num_classes),
        beam_threshold=beam_threshold,
        lm_weight=lm_weight if lm is not None else 0.0,
        sil_score=0.0,
        log_add=False,
        criterion_type=CriterionType.CTC,
    )
    # The "silence" token only pads flashlight's hypotheses; space is the natural choice.
    silence = charset.index(" ") if " " in charset else charset.blank
    decoder = LexiconFreeDecoder(
        options, lm.kenlm(charset) if lm is not None else ZeroLM(), silence, charset.blank, []
    )
    paths: list[list[int]] = []
    for i, n in enumerate(frame_counts.tolist()):
        if n == 0:
            paths.append([])
            continue
        emissions = np.ascontiguousarray(scores[i, :n], dtype=np.float32)
        best = decoder.decode(emissions.ctypes.data, n, num_classes)[0]
        # tokens has T + 2 entries: a silence sentinel at each end.
        paths.append(collapse_path(list(best.tokens)[1:-1], charset.blank))
    confidences = sequence_confidences(scores, frame_counts, paths, charset.blank)
    return [(charset.decode(path), conf) for path, conf in zip(paths, confidences, strict=True)]
