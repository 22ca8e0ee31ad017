"""SentenceGenerator and the sentence sources it draws from."""

from __future__ import annotations

import random
import re
import sys
import types
from pathlib import Path

import pytest

from text_recognizer.charset import DEFAULT_CHARSET
from text_recognizer.data import sentences as sentences_module
from text_recognizer.data.sentences import SentenceGenerator, add_numbers, random_number
from text_recognizer.data.sources import corpus
from text_recognizer.errors import ConfigError, DataError

CHARSET = set(DEFAULT_CHARSET.characters)


@pytest.fixture(scope="module")
def joined_corpus() -> str:
    """The default corpus as one text, sentences on their own lines."""
    return "\n".join(corpus.load_sentences("default"))


def test_default_corpus_is_large_and_clean() -> None:
    sentences = corpus.load_sentences("default")
    assert len(sentences) > 40_000
    assert all(corpus.is_usable(s) and s == s.strip() and "  " not in s for s in sentences)
    assert "It is the greatest amusement in the world!" in sentences  # Emma, a real sentence


def test_every_shipped_text_has_its_provenance() -> None:
    provenance = (corpus.CORPUS_DIR / "PROVENANCE.md").read_text()
    files = sorted(corpus.CORPUS_DIR.glob("*.txt.gz"))
    assert files
    for path in files:
        assert f"`{path.name}`" in provenance, f"{path.name} is not described in PROVENANCE.md"


def test_same_seed_same_pieces_other_seed_other_pieces() -> None:
    first = [SentenceGenerator(seed=7).generate() for _ in range(1)]
    a, b, c = SentenceGenerator(seed=7), SentenceGenerator(seed=7), SentenceGenerator(seed=8)
    run_a = [a.generate() for _ in range(200)]
    assert run_a == [b.generate() for _ in range(200)]
    assert run_a != [c.generate() for _ in range(200)]
    assert run_a[0] == first[0]


@pytest.mark.parametrize("max_length", [1, 4, 32, 90])
def test_pieces_fit_max_length_and_charset(max_length: int) -> None:
    generator = SentenceGenerator(max_length=max_length, seed=1)
    pieces = [generator.generate() for _ in range(2000)]
    assert all(1 <= len(p) <= max_length for p in pieces)
    assert all(set(p) <= CHARSET and p == p.strip() for p in pieces)
    # The limit is used, not just respected: long limits give long pieces.
    assert max(len(p) for p in pieces) >= min(max_length, 60)


def test_generate_argument_overrides_the_default_length() -> None:
    generator = SentenceGenerator(max_length=80, seed=2)
    assert all(len(generator.generate(10)) <= 10 for _ in range(500))


def _occurs_as_whole_words(piece: str, text: str) -> bool:
    """Whether ``piece`` occurs in ``text`` between line starts/spaces and spaces/line ends."""
    at = text.find(piece)
    while at != -1:
        end = at + len(piece)
        if text[at - 1 : at] in ("", " ", "\n") and text[end : end + 1] in ("", " ", "\n"):
            return True
        at = text.find(piece, at + 1)
    return False


def test_pieces_are_whole_words_of_one_real_sentence(joined_corpus: str) -> None:
    generator = SentenceGenerator(max_length=40, seed=3)
    for _ in range(300):
        piece = generator.generate()
        assert "\n" not in piece and _occurs_as_whole_words(piece, joined_corpus), piece
    assert not _occurs_as_whole_words("Emma Wood", joined_corpus)  # the check can fail


def test_numbers_zero_keeps_the_corpus_pieces() -> None:
    plain, zero = SentenceGenerator(seed=5), SentenceGenerator(seed=5, numbers=0.0)
    assert [plain.generate() for _ in range(300)] == [zero.generate() for _ in range(300)]


@pytest.mark.parametrize("max_length", [3, 12, 48])
def test_numbers_are_written_into_about_the_asked_share(max_length: int) -> None:
    generator = SentenceGenerator(max_length=max_length, seed=4, numbers=0.3)
    pieces = [generator.generate() for _ in range(3000)]
    assert all(1 <= len(p) <= max_length and p == p.strip() for p in pieces)
    assert all(set(p) <= CHARSET and "  " not in p for p in pieces)
    with_digits = sum(any(c.isdigit() for c in p) for p in pieces) / len(pieces)
    assert 0.25 < with_digits < 0.36  # 0.3, plus the corpus's own rare digits
    again = SentenceGenerator(max_length=max_length, seed=4, numbers=0.3)
    assert [again.generate() for _ in range(3000)] == pieces


def test_random_numbers_cover_the_usual_forms() -> None:
    rng = random.Random(0)
    numbers = [random_number(rng) for _ in range(20_000)]
    assert all(any(c.isdigit() for c in n) and set(n) <= CHARSET for n in numbers)
    for form in [r"\d{4}", r"\d+\.\d\d", r"\d+:\d\d", r"\d+/\d+/\d+", r"\d+(st|nd|rd|th)",
                 r"\d+,\d{3}", r"No\. \d+", r"\(\d+\)"]:  # fmt: skip
        assert any(re.fullmatch(form, n) for n in numbers), form
    assert {n for n in numbers if n.endswith(("st", "nd", "rd", "th"))} >= {"11th", "21st", "3rd"}


def test_add_numbers_keeps_punctuation_and_the_limit() -> None:
    rng = random.Random(1)
    for _ in range(500):
        piece = add_numbers('"Yes, the sea," he said.', 24, rng)
        assert 1 <= len(piece) <= 24 and piece == piece.strip()
        assert any(c.isdigit() for c in piece)
        if piece.startswith('"'):  # "Yes, kept, or replaced with its quote and comma kept
            assert piece.startswith('"Yes,') or re.match(r'"[^,]*\d[^,]*,', piece), piece


def test_bad_arguments_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="max_length"):
        SentenceGenerator(max_length=0)
    with pytest.raises(ConfigError, match="unknown sentence source 'wiki'"):
        SentenceGenerator(source="wiki")
    with pytest.raises(ConfigError, match="max_length"):
        SentenceGenerator().generate(0)
    with pytest.raises(ConfigError, match=r"numbers = 1\.5"):
        SentenceGenerator(numbers=1.5)


def test_no_word_short_enough_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        sentences_module, "load_sentences", lambda source: ("Extraordinary tales.",)
    )
    sentences_module._word_index.cache_clear()
    try:
        generator = SentenceGenerator(max_length=5)
        with pytest.raises(DataError, match=r"no word .* fits in 5 characters"):
            generator.generate()
        assert {generator.generate(13) for _ in range(50)} == {"Extraordinary", "tales."}
        assert "Extraordinary tales." in {generator.generate(20) for _ in range(50)}
    finally:
        sentences_module._word_index.cache_clear()


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("\u201cYes,\u201d she said\u2014\u2018quite\u2019.", "\"Yes,\" she said -- 'quite'."),
        ("  A  caf\u00e9,\n na\u00efve _really_ [sic]\u2026 ", "A cafe, naive really (sic)..."),
        ("came--a gentle", "came -- a gentle"),
        ("C\u00e6sar \u2013 1990\u20131992", "Caesar - 1990-1992"),
    ],
)
def test_normalise_maps_typography_onto_the_charset(raw: str, expected: str) -> None:
    assert corpus.normalise(raw) == expected
    assert corpus.normalise(expected) == expected  # idempotent


def test_clean_drops_sentences_it_cannot_encode() -> None:
    raw = ["It cost $5.", "Fine.", "  ", "1961.", "Line\nbreak."]
    assert corpus.clean(raw) == ["Fine.", "Line break."]


def _no_nltk(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "nltk", None)  # import nltk -> ImportError


def _fake_nltk_without_brown(monkeypatch: pytest.MonkeyPatch, downloads: list[str]) -> None:
    """An ``nltk`` whose Brown corpus is missing and whose download fails (offline)."""

    class MissingCorpus:
        def sents(self) -> list[list[str]]:
            raise LookupError("Resource brown not found.")

    def download(name: str, quiet: bool = False, raise_on_error: bool = False) -> bool:
        downloads.append(name)
        return False

    nltk = types.ModuleType("nltk")
    nltk.corpus = types.SimpleNamespace(brown=MissingCorpus())  # type: ignore[attr-defined]
    nltk.download = download  # type: ignore[attr-defined]
    treebank = types.ModuleType("nltk.tokenize.treebank")
    treebank.TreebankWordDetokenizer = object  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "nltk", nltk)
    monkeypatch.setitem(sys.modules, "nltk.tokenize", types.ModuleType("nltk.tokenize"))
    monkeypatch.setitem(sys.modules, "nltk.tokenize.treebank", treebank)


def test_brown_without_nltk_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    _no_nltk(monkeypatch)
    with pytest.raises(
        DataError, match=r"Brown corpus \('brown', as a sentence source or --lm\).*pip install nltk"
    ):
        corpus.brown_sentences()


def test_brown_offline_tries_one_download_then_explains(monkeypatch: pytest.MonkeyPatch) -> None:
    downloads: list[str] = []
    _fake_nltk_without_brown(monkeypatch, downloads)
    with pytest.raises(DataError, match=r"could not be downloaded.*nltk.downloader brown"):
        corpus.brown_sentences()
    assert downloads == ["brown"]
    with pytest.raises(DataError):
        corpus.brown_sentences(download=False)
    assert downloads == ["brown"]


def test_brown_through_a_real_nltk_reader(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """NLTK's own Brown reader over a two-sentence corpus in Brown's tagged format."""
    nltk = pytest.importorskip("nltk")
    from nltk.corpus.reader import CategorizedTaggedCorpusReader
    from nltk.corpus.util import LazyCorpusLoader

    brown = tmp_path / "corpora" / "brown"
    brown.mkdir(parents=True)
    (brown / "ca01").write_text(
        "\n\n\tThe/at jury/nn said/vbd ``/`` no/at evidence/nn ''/'' was/bedz found/vbn ./.\n"
        "\n\n\tIt/pps cost/vbd $5/cd ./.\n"
        "\n\n\tIt's/pps+bez over/rp ,/, he/pps said/vbd ./.\n"
    )
    (brown / "cats.txt").write_text("ca01 news\n")
    monkeypatch.setattr(nltk.data, "path", [str(tmp_path)])
    loader = LazyCorpusLoader(
        "brown", CategorizedTaggedCorpusReader, r"c[a-z]\d\d", cat_file="cats.txt",
        tagset="brown", encoding="ascii",
    )  # fmt: skip
    monkeypatch.setattr(nltk.corpus, "brown", loader)
    monkeypatch.setattr(nltk, "download", lambda *a, **k: pytest.fail("must not download"))
    assert corpus.brown_sentences() == [
        'The jury said "no evidence" was found.',
        "It's over, he said.",
    ]  # the "$5" sentence cannot be encoded and is dropped
