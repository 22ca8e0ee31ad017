"""The one character mapping shared by every dataset, model and exported file.

Special tokens come first so that index 0 is the CTC blank, then the 62 EMNIST
classes in EMNIST's ByClass order (so an EMNIST label ``i`` is ``i + 4`` here), then
space and the IAM punctuation. A model stores its charset's tokens so it always
decodes with the mapping it was trained on, even if this default changes.
"""

from __future__ import annotations

import string
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

BLANK, PAD, START, END = "<blank>", "<pad>", "<start>", "<end>"
SPECIAL_TOKENS: tuple[str, ...] = (BLANK, PAD, START, END)
EMNIST_CHARACTERS: str = string.digits + string.ascii_uppercase + string.ascii_lowercase
IAM_PUNCTUATION: str = " !\"#&'()*+,-./:;?"


@dataclass(frozen=True)
class Charset:
    """An ordered list of tokens with fast lookups in both directions."""

    tokens: tuple[str, ...]
    _index: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if len(set(self.tokens)) != len(self.tokens):
            raise ValueError("charset tokens must be unique")
        object.__setattr__(self, "_index", {t: i for i, t in enumerate(self.tokens)})

    @classmethod
    def from_tokens(cls, tokens: Iterable[str]) -> Charset:
        return cls(tuple(tokens))

    def __len__(self) -> int:
        return len(self.tokens)

    def __contains__(self, token: object) -> bool:
        return token in self._index

    @property
    def blank(self) -> int:
        return self._index[BLANK]

    @property
    def pad(self) -> int:
        return self._index[PAD]

    @property
    def start(self) -> int:
        return self._index[START]

    @property
    def end(self) -> int:
        return self._index[END]

    @property
    def characters(self) -> str:
        """Every printable character, in index order (special tokens left out)."""
        return "".join(t for t in self.tokens if t not in SPECIAL_TOKENS)

    def index(self, char: str) -> int:
        try:
            return self._index[char]
        except KeyError:
            raise ValueError(f"character {char!r} is not in the charset") from None

    def encode(self, text: str) -> list[int]:
        """Map text to indices; raises ``ValueError`` naming the first unknown character."""
        return [self.index(c) for c in text]

    def decode(self, indices: Sequence[int]) -> str:
        """Map indices back to text, dropping special tokens."""
        return "".join(self.tokens[i] for i in indices if self.tokens[i] not in SPECIAL_TOKENS)

    def unknown(self, text: str) -> set[str]:
        """The characters of ``text`` that this charset cannot encode."""
        return {c for c in text if c not in self._index}


DEFAULT_CHARSET = Charset(SPECIAL_TOKENS + tuple(EMNIST_CHARACTERS) + tuple(IAM_PUNCTUATION))
EMNIST_LABEL_OFFSET = len(SPECIAL_TOKENS)
