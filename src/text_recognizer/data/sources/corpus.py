"""Where sentences come from: a shipped public-domain corpus, or NLTK's Brown corpus.

``"default"`` works offline on a fresh machine: about 49,000 sentences of English prose
(six Jane Austen novels, *Moby-Dick*, *Alice's Adventures in Wonderland*, *Botchan* and
the Library of Congress *Workshop on Electronic Texts*), all public domain, shipped
gzipped in ``assets/corpus`` with their provenance (``assets/corpus/PROVENANCE.md``).
``"brown"`` is the corpus the FSDL lineage samples, read through NLTK, an optional
dependency (``pip install nltk``); it is downloaded on first use when missing.

Both are normalised the same way: typographic quotes and dashes, accents, brackets and
ligatures are mapped onto :data:`DEFAULT_CHARSET`, and a sentence that still holds a
character the charset cannot encode is dropped whole (never silently shortened).
"""

from __future__ import annotations

import gzip
import re
import unicodedata
from collections.abc import Iterable
from functools import cache
from typing import Literal

from text_recognizer.charset import DEFAULT_CHARSET
from text_recognizer.errors import ConfigError, DataError
from text_recognizer.paths import ASSETS_DIR

Source = Literal["default", "brown"]
SOURCES: tuple[Source, ...] = ("default", "brown")
CORPUS_DIR = ASSETS_DIR / "corpus"

# Typographic variants onto what handwriting datasets (IAM, Brown) write: target <- variants.
_VARIANTS = {
    "'": "\u2018\u2019\u201a\u2032`\u00b4",
    '"': "\u201c\u201d\u201e\u2033\u00ab\u00bb",
    "-": "\u2010\u2011\u2012\u2013\u2212",  # hyphens, en dash, minus
    " -- ": "\u2014\u2015",  # em dashes, written as Brown writes them
    "...": "\u2026",
    "(": "[{",
    ")": "]}",
    "ae": "\u00e6",
    "Ae": "\u00c6",
    "oe": "\u0153",
    "Oe": "\u0152",
    "ss": "\u00df",
    "": "_\ufeff\u00ad",  # Gutenberg's _italics_ markers, byte-order mark, soft hyphen
}
_TRANSLATE = str.maketrans({c: target for target, chars in _VARIANTS.items() for c in chars})
# Written as plain string operations over one big string, not per sentence: a whole
# corpus is normalised line by line in a fraction of a second.
_WHITESPACE = str.maketrans(
    dict.fromkeys(
        "\t\r\x0b\x0c\xa0\u2000\u2001\u2002\u2003\u2004\u2005"
        "\u2006\u2007\u2008\u2009\u200a\u202f\u205f\u3000",
        " ",
    )
)
_DASH = re.compile("---*")  # a literal prefix: searched fast
_SPACES = re.compile("   *")
_ENCODABLE = f"[{re.escape(DEFAULT_CHARSET.characters)}]*"
_USABLE = re.compile(f"{_ENCODABLE}[A-Za-z]{_ENCODABLE}")  # encodable, with a letter


def _normalise_lines(text: str) -> str:
    """:func:`normalise` for every line of ``text`` at once (newlines kept)."""
    text = text.translate(_TRANSLATE).translate(_WHITESPACE)
    if not text.isascii():
        text = "".join(
            c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c)
        )
    text = _SPACES.sub(" ", _DASH.sub(" -- ", text))
    return text.replace(" \n", "\n").replace("\n ", "\n").strip(" ")


def normalise(text: str) -> str:
    """Map typographic variants onto the charset and collapse whitespace.

    Idempotent. A dash (``--``, em dash) becomes `` -- `` as in Brown; accents are
    stripped (``café`` → ``cafe``). Characters with no mapping are left for
    :func:`is_usable` to reject.
    """
    return _normalise_lines(" ".join(text.splitlines()))


def is_usable(sentence: str) -> bool:
    """Whether every character is in the charset and there is at least one letter."""
    return _USABLE.fullmatch(sentence) is not None


def clean(sentences: Iterable[str]) -> list[str]:
    """Normalise each sentence and keep the usable ones, in order.

    Normalises all of them in one pass (a few regex calls on one big string): per
    sentence it would dominate the corpus's load time.
    """
    lines = _normalise_lines("\n".join(" ".join(s.splitlines()) for s in sentences))
    return [s for s in lines.split("\n") if is_usable(s)]


def default_sentences() -> list[str]:
    """The shipped corpus: every ``assets/corpus/*.txt.gz`` file, one sentence a line."""
    files = sorted(CORPUS_DIR.glob("*.txt.gz"))
    if not files:
        raise DataError(
            f"no sentence files (*.txt.gz) in {CORPUS_DIR}: the package install is incomplete; "
            "reinstall text-recognizer"
        )
    lines: list[str] = []
    for path in files:
        with gzip.open(path, "rt", encoding="utf-8") as f:
            lines.extend(f.read().splitlines())
    return clean(lines)


def brown_sentences(download: bool = True) -> list[str]:
    """Brown's 57,340 sentences through NLTK, detokenised: ``said `` no ''`` → ``said "no"``.

    When the corpus is missing and ``download`` is true, ``nltk.download("brown")`` is
    tried once; a failure (offline) raises a :class:`DataError` that says what to do.
    """
    try:
        import nltk
        from nltk.tokenize.treebank import TreebankWordDetokenizer
    except ImportError:
        raise DataError(
            "the Brown corpus ('brown', as a sentence source or --lm) needs NLTK, which is "
            "not installed: run `pip install nltk` (the corpus itself is then fetched on "
            "first use), or use the shipped corpus ('default'), which works offline"
        ) from None
    try:
        tokenised = list(nltk.corpus.brown.sents())
    except LookupError:
        if not download or not nltk.download("brown", quiet=True, raise_on_error=False):
            raise DataError(
                "NLTK's Brown corpus is not installed and could not be downloaded (offline?). "
                "On a machine with internet run `python -m nltk.downloader brown` and copy the "
                "nltk_data folder here (or point $NLTK_DATA at it); or use the shipped corpus "
                "('default'), which works offline"
            ) from None
        tokenised = list(nltk.corpus.brown.sents())
    detokenise = TreebankWordDetokenizer().detokenize
    return clean(detokenise(tokens) for tokens in tokenised)


@cache
def load_sentences(source: str = "default") -> tuple[str, ...]:
    """The cleaned sentences of ``source``, loaded once per process."""
    if source == "default":
        return tuple(default_sentences())
    if source == "brown":
        return tuple(brown_sentences())
    raise ConfigError(f"unknown sentence source {source!r}; allowed: {', '.join(SOURCES)}")
