"""What IAM's ``lines.txt`` tokenisation costs a reader that writes text as it is written.

IAM's ``lines.txt`` gives a line's words separated by ``|``, and punctuation marks and
clitics are words of their own (``Peers|,|he|'s``): read as spaces, its text is ``Peers ,
he 's`` where the page shows ``Peers, he's`` (the forms' XML has it so). A model trained on
text as written, like the shipped one, then pays one error per separated mark even when it
reads the line perfectly. This script sizes that: the shipped sentence corpus is cut into
word-aligned lines of at most ``--width`` characters (IAM's lines hold ~40), each line
tokenised as ``lines.txt`` does (``, . ; : ! ? " ( )`` and ``'s 'll 're 've 'd 'm n't``
split off; abbreviations such as ``Mr.`` kept), and the CER of the line as written against
that truth is printed: the floor such a model's CER sits on when scored against
``lines.txt``. The corpus is not IAM's LOB text, so the figure is an estimate.

    python benchmarks/iam_tokenisation.py
"""

from __future__ import annotations

import argparse
import re

from text_recognizer.data.sources.corpus import load_sentences
from text_recognizer.metrics import cer

ABBREVIATION = re.compile(r"(?:Mr|Mrs|Dr|St|Jr|Sr|Ms|etc|[A-Z])\.")
PUNCTUATION = re.compile(r'^([("]*)(.*?)([,.;:!?)"]*)$')
CLITIC = re.compile(r"^(.+?)(n't|'s|'ll|'re|'ve|'d|'m)$", re.IGNORECASE)


def tokenised(line: str) -> str:
    """``line`` as ``lines.txt`` spells it, ``|`` read as spaces."""
    tokens: list[str] = []
    for word in line.split():
        if ABBREVIATION.fullmatch(word):
            tokens.append(word)
            continue
        match = PUNCTUATION.match(word)
        assert match is not None  # the pattern matches any string
        before, core, after = match.groups()
        clitic = CLITIC.match(core)
        parts = list(clitic.groups()) if clitic else [core] if core else []
        tokens += [*before, *parts, *after]
    return " ".join(tokens)


def cut_lines(sentences: list[str], width: int) -> list[str]:
    """Word-aligned lines of at most ``width`` characters, as a writer fills a page."""
    lines = []
    for sentence in sentences:
        line: list[str] = []
        for word in sentence.split():
            if line and len(" ".join([*line, word])) > width:
                lines.append(" ".join(line))
                line = []
            line.append(word)
        if line:
            lines.append(" ".join(line))
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", default="default", help="sentence source")
    parser.add_argument("--width", type=int, default=45, help="characters per line at most")
    args = parser.parse_args()
    written = cut_lines(load_sentences(args.source), args.width)
    truth = [tokenised(line) for line in written]
    changed = sum(a != b for a, b in zip(written, truth, strict=True)) / len(written)
    print(
        f"{len(written):,} lines of {args.source!r}, {sum(map(len, written)) / len(written):.1f} "
        f"characters on average; {changed:.0%} of them change when tokenised"
    )
    print(f"example: {written[0]!r} -> {truth[0]!r}")
    print(f"CER of the lines as written against lines.txt's spelling: {cer(written, truth):.4f}")


if __name__ == "__main__":
    main()
