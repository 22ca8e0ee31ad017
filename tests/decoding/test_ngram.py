"""Character n-gram LM: Kneser-Ney counts, a normalised ARPA file that KenLM loads, caching."""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path

import pytest
from flashlight.lib.text.decoder.kenlm import KenLM
from flashlight.lib.text.dictionary import Dictionary

from text_recognizer.charset import DEFAULT_CHARSET
from text_recognizer.decoding import CharNgramLm
from text_recognizer.decoding.ngram import (
    EOS,
    UNK,
    count_ngrams,
    kneser_ney_discounts,
    lm_token,
)
from text_recognizer.errors import DataError

TEXTS = [
    "the quick brown fox jumps over the lazy dog",
    "the cat sat on the mat",
    "hello world, said the cat.",
    "a dog and a cat",
    "The end?",
] * 3


def test_adjusted_counts_by_hand() -> None:
    """<s> = \\x02, </s> = \\x03. Top order and <s>-grams: raw; others: distinct left tokens."""
    trigrams, bigrams, unigrams = reversed(count_ngrams(["ab", "b"], order=3))
    assert trigrams == Counter({"\x02ab": 1, "ab\x03": 1, "\x02b\x03": 1})
    assert bigrams == Counter({"\x02a": 1, "\x02b": 1, "ab": 1, "b\x03": 2})
    assert unigrams == Counter({"\x02": 2, "a": 1, "b": 2, "\x03": 1})


def test_discounts_follow_chen_goodman_and_fall_back_on_tiny_data() -> None:
    n1, n2, n3, n4 = 100, 40, 20, 10
    y = n1 / (n1 + 2 * n2)
    expected = (1 - 2 * y * n2 / n1, 2 - 3 * y * n3 / n2, 3 - 4 * y * n4 / n3)
    assert kneser_ney_discounts(Counter({1: n1, 2: n2, 3: n3, 4: n4})) == pytest.approx(expected)
    assert kneser_ney_discounts(Counter({1: 5})) == (0.5, 1.0, 1.5)


@pytest.fixture(scope="module")
def lm(tmp_path_factory: pytest.TempPathFactory) -> CharNgramLm:
    return CharNgramLm.build(TEXTS, order=4, path=tmp_path_factory.mktemp("lm") / "chars.arpa")


def test_arpa_loads_in_kenlm_and_every_context_sums_to_one(lm: CharNgramLm) -> None:
    characters = [lm_token(c) for c in DEFAULT_CHARSET.characters]
    tokens = [*characters, EOS, UNK]  # every outcome the LM can predict
    kenlm = KenLM(str(lm.path), Dictionary(tokens))
    assert lm.order == 4
    for context in ["", "t", "the", "the cat", "zzz", "Q!?"]:
        state = kenlm.start(False)
        for char in context:
            state, _ = kenlm.score(state, tokens.index(lm_token(char)))
        total = sum(10 ** kenlm.score(state, i)[1] for i in range(len(characters)))
        total += 10 ** kenlm.finish(state)[1] + 10 ** kenlm.score(state, tokens.index(UNK))[1]
        assert total == pytest.approx(1.0, abs=1e-4), context


def test_lm_prefers_language(lm: CharNgramLm) -> None:
    assert lm.log10_prob("the cat") > lm.log10_prob("tha cat") + 1
    assert lm.log10_prob("the cat") > lm.log10_prob("tca eht") + 3
    assert lm.log10_prob("Xylophone 42") > -60  # unseen characters stay possible


def test_build_is_cached_by_texts_and_order(isolated_dirs: Path) -> None:
    first = CharNgramLm.build(TEXTS, order=3)
    assert first.path.is_relative_to(isolated_dirs / "data")
    written = first.path.stat().st_mtime_ns
    again = CharNgramLm.build(TEXTS, order=3)
    assert again.path == first.path and again.path.stat().st_mtime_ns == written
    assert CharNgramLm.build(TEXTS, order=4).path != first.path
    assert CharNgramLm.build([*TEXTS, "more text"], order=3).path != first.path
    assert not list(first.path.parent.glob(".*.tmp"))


def test_skips_texts_outside_the_charset_and_refuses_none_left(tmp_path: Path) -> None:
    lm = CharNgramLm.build(["caf\u00e9 au lait", "plain text"], order=3, path=tmp_path / "a.arpa")
    assert "\u00e9" not in lm.path.read_text()
    with pytest.raises(DataError, match="no usable text"):
        CharNgramLm.build(["\u00e9\u00e9", "  "], order=3, path=tmp_path / "b.arpa")
    with pytest.raises(ValueError, match="order"):
        CharNgramLm.build(TEXTS, order=1)
    with pytest.raises(DataError, match="does not exist"):
        CharNgramLm(tmp_path / "missing.arpa")


def test_orders_kenlm_cannot_read_are_refused_clearly(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at most 6-grams"):
        CharNgramLm.build(TEXTS, order=7, path=tmp_path / "seven.arpa")
    arpa = tmp_path / "seven.arpa"  # an ARPA file written elsewhere, with 7-grams
    arpa.write_text("\\data\\\nngram 1=1\nngram 7=1\n\n\\end\\\n")
    with pytest.raises(DataError, match="7-gram LM"):
        CharNgramLm(arpa).kenlm()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"\x00\x01\xff\xfe" * 50, r"bad\.arpa is not an ARPA file \(not text\)"),
        ("TRUNCATED", r"bad\.arpa is not a readable ARPA file \(.+\): it is truncated"),
        ("BAD COUNT", r"bad\.arpa is not a readable ARPA file \(Bad count x"),
        ("\\data\\\nngram =5\n", r"bad\.arpa is not an ARPA file \(a bad 'ngram N=' line"),
        ("FOLDER", r"bad\.arpa is a folder, not an ARPA file"),
    ],
)
def test_a_damaged_or_foreign_lm_file_is_named_with_why(
    content: str | bytes, message: str, tmp_path: Path
) -> None:
    """KenLM's own errors (RuntimeError, naming no file) and a UnicodeDecodeError once
    came out as tracebacks, on the first line read."""
    good = CharNgramLm.build(TEXTS, order=3, path=tmp_path / "good.arpa").path.read_text()
    bad = tmp_path / "bad.arpa"
    if content == "FOLDER":
        bad.mkdir()
    elif isinstance(content, bytes):
        bad.write_bytes(content)
    else:
        replaced = {"TRUNCATED": good[: len(good) // 2], "BAD COUNT": good.replace("=", "=x", 1)}
        bad.write_text(replaced.get(content, content))
    with pytest.raises(DataError, match=message):
        CharNgramLm(bad).kenlm()


@pytest.mark.parametrize(("level", "shown"), [(logging.WARNING, False), (logging.INFO, True)])
def test_kenlm_loading_notes_show_only_when_verbose(
    tmp_path: Path, capfd: pytest.CaptureFixture[str], level: int, shown: bool
) -> None:
    """KenLM prints them to file descriptor 2 itself; -q and the default hid nothing."""
    logging.getLogger("text_recognizer").setLevel(level)
    try:
        CharNgramLm.build(TEXTS, order=3, path=tmp_path / "lm.arpa").kenlm()
    finally:
        logging.getLogger("text_recognizer").setLevel(logging.NOTSET)
    assert ("binary file" in capfd.readouterr().err) == shown


@pytest.mark.parametrize("kept", [0.5, 0.0])
def test_a_cached_lm_cut_short_is_counted_again(kept: float, isolated_dirs: Path) -> None:
    """It failed every use, and the error's advice (CharNgramLm.build) reused it."""
    lm = CharNgramLm.build(TEXTS, order=3)
    whole = lm.path.read_bytes()
    lm.path.write_bytes(whole[: int(len(whole) * kept)])
    again = CharNgramLm.build(TEXTS, order=3)
    assert again.path == lm.path and again.path.read_bytes() == whole
    assert again.log10_prob("the cat") > again.log10_prob("tca eht")


def test_an_lm_cache_that_cannot_be_written_says_so_before_counting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from text_recognizer.decoding import ngram

    (tmp_path / "a_file").write_text("not a folder")
    monkeypatch.setenv("TEXT_RECOGNIZER_DATA", str(tmp_path / "a_file"))
    monkeypatch.setattr(ngram, "count_ngrams", lambda *a: pytest.fail("counted in vain"))
    with pytest.raises(DataError, match=r"cannot write the language model in .*a_file/lm .*"
                       r"set \$TEXT_RECOGNIZER_DATA to a folder you can write"):  # fmt: skip
        CharNgramLm.build(TEXTS, order=3)
    with pytest.raises(DataError, match="pass another path"):
        CharNgramLm.build(TEXTS, order=3, path=tmp_path / "a_file" / "lm.arpa")
