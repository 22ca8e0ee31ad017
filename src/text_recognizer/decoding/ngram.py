"""Character n-gram language model: counted here, smoothed, written as an ARPA file.

The ``kenlm`` Python package can query but not build models (no ``lmplz``), so counting
and smoothing are done here: interpolated modified Kneser-Ney (Chen & Goodman, as
``lmplz`` does it), written in ARPA backoff form that flashlight-text's KenLM loads.
For an interpolated model the backoff weight of a context is exactly its interpolation
weight ``gamma(h)``, so the ARPA file reproduces the interpolated probabilities.

Tokens are characters; a space is the word-boundary token ``|`` (flashlight's
convention, and ARPA separates tokens with spaces). Characters of the charset that
never occur in the text still get a share of the unigram floor, so the LM never
assigns probability 0 to a character the recogniser can emit.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import logging
import math
import os
import sys
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from tqdm import tqdm

from text_recognizer.charset import DEFAULT_CHARSET, SPECIAL_TOKENS, Charset
from text_recognizer.data.cache import cache_key, ensure_writable_folder
from text_recognizer.errors import DataError
from text_recognizer.paths import data_dir

log = logging.getLogger(__name__)

BOS, EOS, UNK = "<s>", "</s>", "<unk>"
WORD_BOUNDARY = "|"
# Sentence markers as single characters while counting, so n-grams are plain substrings.
_BOS, _EOS = "\x02", "\x03"
_DEFAULT_DISCOUNTS = (0.5, 1.0, 1.5)
ARPA_FORMAT_VERSION = 1


def lm_token(token: str) -> str:
    """The LM's spelling of a charset token (space -> ``|``, sentence markers -> ARPA's)."""
    return {" ": WORD_BOUNDARY, _BOS: BOS, _EOS: EOS}.get(token, token)


def kneser_ney_discounts(count_of_counts: Counter[int]) -> tuple[float, float, float]:
    """Modified Kneser-Ney discounts ``D1, D2, D3+`` from counts of counts (Chen & Goodman).

    Tiny corpora can lack the counts the estimate needs; each discount that comes out
    undefined or out of its valid range ``(0, k)`` falls back to ``0.5 * k``.
    """
    n1, n2, n3, n4 = (count_of_counts.get(k, 0) for k in (1, 2, 3, 4))
    estimates: list[float | None] = [None, None, None]
    if n1 and n2:
        y = n1 / (n1 + 2 * n2)
        estimates[0] = 1 - 2 * y * n2 / n1
        if n3:
            estimates[1] = 2 - 3 * y * n3 / n2
            if n4:
                estimates[2] = 3 - 4 * y * n4 / n3
    discounts = []
    for k, (estimate, default) in enumerate(zip(estimates, _DEFAULT_DISCOUNTS, strict=True), 1):
        discounts.append(estimate if estimate is not None and 0 < estimate < k else default)
    return discounts[0], discounts[1], discounts[2]


def count_ngrams(sentences: Iterable[str], order: int) -> list[Counter[str]]:
    """Kneser-Ney adjusted counts per order (index 0 = unigrams); n-grams are substrings.

    The highest order and n-grams starting with ``<s>`` keep raw counts; every other
    n-gram counts the distinct tokens seen to its left (its continuation count).
    """
    counts: list[Counter[str]] = [Counter() for _ in range(order)]
    for sentence in sentences:
        padded = _BOS + sentence + _EOS
        counts[-1].update(padded[i : i + order] for i in range(len(padded) - order + 1))
        # n-grams that start the sentence have no left context: raw counts.
        for n in range(1, min(order, len(padded) + 1)):
            counts[n - 1][padded[:n]] += 1
    for n in range(order - 1, 0, -1):  # order n+1 (index n) -> continuation counts at order n
        lower = counts[n - 1]
        for gram in counts[n]:  # a suffix never starts with <s>: raw-counted grams stay raw
            lower[gram[1:]] += 1
    return counts


def _group_by_context(
    counts: Counter[str], discounts: tuple[float, float, float]
) -> dict[str, tuple[float, float]]:
    """For each context: (sum of counts, interpolation weight gamma numerator)."""
    totals: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for gram, count in counts.items():
        entry = totals[gram[:-1]]
        entry[0] += count
        entry[1] += discounts[min(count, 3) - 1]
    return {context: (total, mass) for context, (total, mass) in totals.items()}


def write_arpa(counts: list[Counter[str]], vocabulary: Iterable[str], path: Path) -> None:
    """Smooth adjusted counts with interpolated modified Kneser-Ney and write ARPA to ``path``."""
    order = len(counts)
    # Unigrams interpolate with a uniform distribution over every token (not <s>).
    vocab = set(vocabulary) | {g for g in counts[0] if g != _BOS} | {_EOS}
    vocab.discard(_BOS)
    uniform = 1.0 / (len(vocab) + 1)  # +1 for <unk>
    unigram_counts = Counter({g: c for g, c in counts[0].items() if g != _BOS})
    probabilities: list[dict[str, float]] = []
    gammas: list[dict[str, float]] = []
    for n in range(order):
        grams = unigram_counts if n == 0 else counts[n]
        discounts = kneser_ney_discounts(Counter(min(c, 4) for c in grams.values()))
        contexts = _group_by_context(grams, discounts)
        gamma = {context: mass / total for context, (total, mass) in contexts.items()}
        probs: dict[str, float] = {}
        for gram, count in grams.items():
            context = gram[:-1]
            discounted = (count - discounts[min(count, 3) - 1]) / contexts[context][0]
            lower = uniform if n == 0 else probabilities[n - 1][gram[1:]]
            probs[gram] = discounted + gamma[context] * lower
        if n == 0:
            for token in vocab - probs.keys():
                probs[token] = gamma[""] * uniform
            probs[UNK] = gamma[""] * uniform
        probabilities.append(probs)
        gammas.append(gamma)

    def line(gram: str, n: int, prob: float) -> str:
        tokens = [UNK] if gram == UNK else [lm_token(c) for c in gram]
        text = (
            f"{math.log10(prob):.6f}\t{' '.join(tokens)}"
            if prob > 0
            else f"-99\t{' '.join(tokens)}"
        )
        if n < order - 1 and gram in gammas[n + 1]:
            text += f"\t{math.log10(gammas[n + 1][gram]):.6f}"
        return text

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with tmp.open("w", encoding="utf-8") as f:
            sizes = [len(probabilities[0]) + 1] + [len(p) for p in probabilities[1:]]
            f.write("\\data\\\n" + "".join(f"ngram {n + 1}={s}\n" for n, s in enumerate(sizes)))
            for n, probs in enumerate(probabilities):
                f.write(f"\n\\{n + 1}-grams:\n")
                if n == 0:
                    f.write(line(_BOS, 0, 0.0) + "\n")  # a context only: probability 0
                for gram in sorted(probs):
                    f.write(line(gram, n, probs[gram]) + "\n")
            f.write("\n\\end\\\n")
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def _ends_arpa(path: Path) -> bool:
    """Whether ``path`` ends as an ARPA file does (``\\end\\``): a cut one does not."""
    with path.open("rb") as f:
        f.seek(max(0, f.seek(0, os.SEEK_END) - 64))
        return f.read().rstrip().endswith(b"\\end\\")


DEFAULT_ORDER = 6  # the order behind the decoding figures in docs/benchmarks.md
MAX_ORDER = 6  # flashlight-text's KenLM is compiled with KENLM_MAX_ORDER=6


class CharNgramLm:
    """A character n-gram LM in an ARPA file, queried through flashlight-text's KenLM.

    Build one with :meth:`build` (cached by its parameters) or open an existing ARPA file.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if self.path.is_dir():
            raise DataError(f"{self.path} is a folder, not an ARPA file: name the file in it")
        if not self.path.is_file():
            raise DataError(
                f"language model {self.path} does not exist; build it with CharNgramLm.build"
            )
        self._kenlm: dict[tuple[str, ...], Any] = {}

    @property
    def order(self) -> int:
        """The highest n-gram order, read from the ARPA header."""
        try:
            with self.path.open(encoding="utf-8") as f:
                # The header ends where the 1-grams begin: the rest (MBs) is not read here.
                lines = itertools.takewhile(lambda ln: not ln.startswith("\\1-grams:"), f)
                header = [ln for ln in lines if ln.startswith("ngram ")]
        except UnicodeDecodeError:
            raise DataError(
                f"{self.path} is not an ARPA file (not text): pass a language model in ARPA "
                "form (CharNgramLm.build writes one)"
            ) from None
        except OSError as error:
            raise DataError(f"cannot read {self.path}: {error.strerror or error}") from None
        if not header:
            raise DataError(f"{self.path} is not an ARPA file (no 'ngram N=' header)")
        try:
            return max(int(line.split("=")[0].split()[1]) for line in header)
        except (ValueError, IndexError):
            raise DataError(
                f"{self.path} is not an ARPA file (a bad 'ngram N=' line in its header)"
            ) from None

    @classmethod
    def build(
        cls,
        texts: Iterable[str],
        order: int = 5,
        charset: Charset = DEFAULT_CHARSET,
        path: str | Path | None = None,
    ) -> CharNgramLm:
        """Count ``texts`` (one sentence or line each) and write an ARPA file, or reuse it.

        Texts with characters outside ``charset`` are skipped (and counted in a log line).
        Without ``path`` the file goes to ``data_dir()/lm`` named by a hash of the texts,
        the order and the charset, so the same inputs never count twice; such a file found
        cut short (a disk error, a copy stopped) is counted again rather than failing on
        every use.
        """
        if not 2 <= order <= MAX_ORDER:
            raise ValueError(
                f"order={order} is out of range; use 2..{MAX_ORDER} (flashlight-text's KenLM "
                f"reads at most {MAX_ORDER}-grams; 4-6 suits characters)"
            )
        if WORD_BOUNDARY in charset:
            raise ValueError(
                f"the charset contains {WORD_BOUNDARY!r}, the LM's word-boundary token"
            )
        sentences, skipped = [], 0
        for text in texts:
            text = text.strip()
            if not text:
                continue
            if charset.unknown(text):
                skipped += 1
                continue
            sentences.append(text)
        if skipped:
            log.info("skipped %d texts with characters outside the charset", skipped)
        if not sentences:
            raise DataError(
                f"no usable text to build the language model ({skipped} texts had characters "
                "outside the charset); pass sentences written with the charset's characters"
            )
        cached = path is None
        if path is None:
            digest = hashlib.sha256("\n".join(sentences).encode()).hexdigest()
            params = {
                "format": ARPA_FORMAT_VERSION,
                "order": order,
                "texts": digest,
                "charset": charset.tokens,
            }
            path = data_dir() / "lm" / f"chars-{order}gram-{cache_key(params)}.arpa"
        path = Path(path)
        if cached and path.is_file() and not _ends_arpa(path):
            # Written whole and renamed, so damaged since: it is ours to count again.
            log.warning("%s is truncated or damaged: counting it again", path)
            path.unlink()
        if not path.is_file():
            hint = (
                "set $TEXT_RECOGNIZER_DATA to a folder you can write"
                if cached
                else "pass another path"
            )
            # Before the counting, not after.
            ensure_writable_folder(path.parent, "the language model in", hint)
            progress = tqdm(sentences, desc=f"counting {order}-grams", unit="text", disable=None)
            counts = count_ngrams(progress, order)
            write_arpa(counts, (c for c in charset.tokens if c not in SPECIAL_TOKENS), path)
            log.info("wrote %s (%d sentences)", path, len(sentences))
        return cls(path)

    @classmethod
    def from_corpus(cls, source: str = "default", order: int = DEFAULT_ORDER) -> CharNgramLm:
        """The LM of a sentence source (the shipped corpus by default), built once and cached.

        A first call counts the corpus (with a progress bar); later calls,
        in any process, open the cached ARPA file.
        """
        from text_recognizer.data.sources.corpus import load_sentences

        return cls.build(load_sentences(source), order)

    def kenlm(self, charset: Charset = DEFAULT_CHARSET) -> Any:
        """The model loaded in flashlight-text's KenLM, with charset indices as its tokens."""
        key = charset.tokens
        if key not in self._kenlm and self.order > MAX_ORDER:
            raise DataError(
                f"{self.path} is a {self.order}-gram LM; flashlight-text's KenLM reads at most "
                f"{MAX_ORDER}-grams: rebuild it with CharNgramLm.build(..., order={MAX_ORDER})"
            )
        if key not in self._kenlm:
            from flashlight.lib.text.decoder.kenlm import KenLM
            from flashlight.lib.text.dictionary import Dictionary

            tokens = Dictionary([lm_token(t) for t in charset.tokens])
            try:
                with _kenlm_notes_hidden():
                    self._kenlm[key] = KenLM(str(self.path), tokens)
            except RuntimeError as error:  # KenLM's FormatLoadException, naming no file
                lines = [line.strip() for line in str(error).splitlines() if line.strip()]
                raise DataError(
                    f"{self.path} is not a readable ARPA file "
                    f"({lines[-1] if lines else type(error).__name__}): it is truncated or "
                    "damaged; delete it and build it again (CharNgramLm.build; the cached LM of "
                    "--lm default or brown is counted again at its next use), or pass another"
                ) from None
        return self._kenlm[key]

    def log10_prob(self, text: str, charset: Charset = DEFAULT_CHARSET) -> float:
        """log10 P(text) under the LM, sentence markers included (as the decoder scores it)."""
        lm = self.kenlm(charset)
        state, total = lm.start(False), 0.0
        for index in charset.encode(text):
            state, score = lm.score(state, index)
            total += score
        _, score = lm.finish(state)
        return float(total + score)

    def __repr__(self) -> str:
        return f"CharNgramLm({str(self.path)!r})"


@contextlib.contextmanager
def _kenlm_notes_hidden() -> Iterator[None]:
    """KenLM writes loading notes ("build a binary file") and a progress bar of its own
    straight to file descriptor 2, past Python's logging: shown at ``-v`` (INFO) only."""
    if log.isEnabledFor(logging.INFO):
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with Path(os.devnull).open("w") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
