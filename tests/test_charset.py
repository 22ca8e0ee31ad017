import pytest

from text_recognizer.charset import DEFAULT_CHARSET, EMNIST_LABEL_OFFSET, Charset


def test_special_tokens_come_first() -> None:
    assert DEFAULT_CHARSET.tokens[:4] == ("<blank>", "<pad>", "<start>", "<end>")
    assert DEFAULT_CHARSET.blank == 0


def test_emnist_byclass_order_and_offset() -> None:
    assert DEFAULT_CHARSET.tokens[EMNIST_LABEL_OFFSET] == "0"
    assert DEFAULT_CHARSET.tokens[EMNIST_LABEL_OFFSET + 10] == "A"
    assert DEFAULT_CHARSET.tokens[EMNIST_LABEL_OFFSET + 36] == "a"
    assert DEFAULT_CHARSET.tokens[EMNIST_LABEL_OFFSET + 61] == "z"


def test_iam_punctuation_present() -> None:
    for char in " !\"#&'()*+,-./:;?":
        assert char in DEFAULT_CHARSET
    assert len(DEFAULT_CHARSET) == 4 + 62 + 17


def test_round_trip_and_special_tokens_dropped() -> None:
    text = "Hello, World! 42"
    indices = DEFAULT_CHARSET.encode(text)
    assert DEFAULT_CHARSET.decode(indices) == text
    assert DEFAULT_CHARSET.decode([DEFAULT_CHARSET.start, *indices, DEFAULT_CHARSET.end]) == text


def test_unknown_character_is_named() -> None:
    with pytest.raises(ValueError, match="'é'"):
        DEFAULT_CHARSET.encode("café")
    assert DEFAULT_CHARSET.unknown("café~") == {"é", "~"}


def test_duplicate_tokens_rejected() -> None:
    with pytest.raises(ValueError):
        Charset(("a", "a"))
