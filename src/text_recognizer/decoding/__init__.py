"""Turn per-frame CTC scores into text: greedy, beam search, and a character n-gram LM.

Every decoder takes ``[B, T, C]`` log-probabilities (or logits; torch or numpy) plus the
real frame count of each line, and returns ``(text, confidence)`` per line, where
confidence is the model's probability of exactly that text.
"""

from text_recognizer.decoding.beam import beam_search_decode
from text_recognizer.decoding.decoder import CtcDecoder
from text_recognizer.decoding.greedy import greedy_ctc_decode
from text_recognizer.decoding.ngram import CharNgramLm

__all__ = ["CharNgramLm", "CtcDecoder", "beam_search_decode", "greedy_ctc_decode"]
