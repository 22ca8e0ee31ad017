"""How the offline default sentence corpus compares with the Brown corpus.

Prints, side by side: sentence counts and what cleaning dropped, the share of letters,
digits, punctuation and spaces, the commonest characters, word- and sentence-length
distributions, distances between the character distributions (total variation and
KL), and how fast :class:`SentenceGenerator` draws pieces. Markdown tables, ready for
``docs/datasets/sentences.md``.

    python benchmarks/sentence_stats.py                      # Brown from ../shared/corpora
    python benchmarks/sentence_stats.py --brown nltk         # Brown through NLTK
    python benchmarks/sentence_stats.py --brown PATH.txt.gz  # one sentence a line

Brown is read for comparison only; the project never ships or needs it.
"""

from __future__ import annotations

import argparse
import gzip
import math
import statistics
import string
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from text_recognizer.charset import DEFAULT_CHARSET
from text_recognizer.data.sentences import SentenceGenerator
from text_recognizer.data.sources import corpus

# shared/ sits beside the checkout on developer machines and CI.
SHARED_BROWN = Path(__file__).resolve().parents[2] / "shared/corpora/brown_sentences.txt.gz"
CHARSET = set(DEFAULT_CHARSET.characters)
PUNCTUATION = set(string.punctuation)


def read_brown(where: str) -> tuple[list[str], list[str]]:
    """Brown's sentences as read (normalised, not filtered) and as the library keeps them."""
    if where == "nltk":
        kept = corpus.brown_sentences(download=False)
        return kept, kept  # NLTK's path only returns the cleaned sentences
    path = Path(where) if where else SHARED_BROWN
    if not path.is_file():
        raise SystemExit(f"{path} not found; pass --brown PATH.txt.gz (shared/corpora) or nltk")
    with gzip.open(path, "rt", encoding="utf-8") as f:
        raw = f.read().splitlines()
    return [corpus.normalise(s) for s in raw], corpus.clean(raw)


def distribution(counts: Counter[str] | Counter[int]) -> dict[object, float]:
    total = sum(counts.values())
    return {key: value / total for key, value in counts.items()}


def total_variation(p: dict[object, float], q: dict[object, float]) -> float:
    return 0.5 * sum(abs(p.get(k, 0.0) - q.get(k, 0.0)) for k in set(p) | set(q))


def kl_divergence(p: dict[object, float], q: dict[object, float], eps: float = 1e-6) -> float:
    """KL(p || q) in bits, q smoothed so a character missing from q costs a finite amount."""
    keys = set(p) | set(q)
    norm = 1 + eps * len(keys)
    return sum(pk * math.log2(pk / ((q.get(k, 0.0) + eps) / norm)) for k, pk in p.items() if pk)


def words(sentence: str) -> list[str]:
    return [w for w in (t.strip(string.punctuation) for t in sentence.split()) if w]


class Stats:
    """Character, word and sentence statistics of one list of cleaned sentences."""

    def __init__(self, sentences: Sequence[str]) -> None:
        self.sentences = sentences
        self.chars: Counter[str] = Counter()
        for s in sentences:
            self.chars.update(s)
        self.total = sum(self.chars.values())
        self.word_lengths: Counter[int] = Counter(
            min(len(w), 15) for s in sentences for w in words(s)
        )
        self.sentence_chars = sorted(len(s) for s in sentences)
        self.sentence_words = sorted(len(s.split()) for s in sentences)

    def share(self, test: str) -> float:
        tests = {
            "letters": str.isalpha,
            "digits": str.isdigit,
            "punctuation": lambda c: c in PUNCTUATION,
            "spaces": lambda c: c == " ",
        }
        return sum(n for c, n in self.chars.items() if tests[test](c)) / self.total

    @property
    def uppercase(self) -> float:
        letters = sum(n for c, n in self.chars.items() if c.isalpha())
        return sum(n for c, n in self.chars.items() if c.isupper()) / letters

    def caseless(self) -> dict[object, float]:
        folded: Counter[str] = Counter()
        for c, n in self.chars.items():
            folded[c.lower()] += n
        return distribution(folded)


def quantiles(values: Sequence[int]) -> str:
    n = len(values)
    return f"{values[n // 10]} / {values[n // 2]} / {values[n * 9 // 10]}"


def generation_rate(source: str, pieces: int = 200_000, numbers: float = 0.0) -> float:
    generator = SentenceGenerator(max_length=32, source=source, seed=0, numbers=numbers)
    generator.generate()  # loads the corpus
    start = time.perf_counter()
    for _ in range(pieces):
        generator.generate()
    return pieces / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--brown", default="", help="'nltk', or a .txt.gz of Brown sentences")
    args = parser.parse_args()

    start = time.perf_counter()
    default_sentences = list(corpus.load_sentences("default"))
    load_seconds = time.perf_counter() - start
    brown_read, brown_sentences = read_brown(args.brown)
    default, brown = Stats(default_sentences), Stats(brown_sentences)
    half = len(brown_sentences) // 2
    brown_a, brown_b = Stats(brown_sentences[:half]), Stats(brown_sentences[half:])

    read_chars = sum(len(s) for s in brown_read)
    outside = sum(1 for s in brown_read for c in s if c not in CHARSET)
    print("## Size and cleaning\n")
    print("| | default | Brown |\n|---|---:|---:|")
    print(f"| sentences kept | {len(default_sentences):,} | {len(brown_sentences):,} |")
    print(f"| characters | {default.total:,} | {brown.total:,} |")
    print(
        f"| sentences dropped (a character outside the charset) | 0 (done at build) | "
        f"{len(brown_read) - len(brown_sentences):,} of {len(brown_read):,} |"
    )
    print(f"| characters outside the charset, as read | 0 | {outside / read_chars:.3%} |")

    print("\n## Characters\n")
    print("| share of characters | default | Brown |\n|---|---:|---:|")
    for kind in ("letters", "digits", "punctuation", "spaces"):
        print(f"| {kind} | {default.share(kind):.2%} | {brown.share(kind):.2%} |")
    print(f"| uppercase (of letters) | {default.uppercase:.2%} | {brown.uppercase:.2%} |")

    p, q = distribution(default.chars), distribution(brown.chars)
    print("\n| distance between character distributions | value |\n|---|---:|")
    print(f"| total variation, default vs Brown | {total_variation(p, q):.4f} |")
    print(
        "| total variation, default vs Brown, case folded | "
        f"{total_variation(default.caseless(), brown.caseless()):.4f} |"
    )
    print(f"| KL(default ‖ Brown), bits | {kl_divergence(p, q):.4f} |")
    print(f"| KL(Brown ‖ default), bits | {kl_divergence(q, p):.4f} |")
    brown_halves = total_variation(distribution(brown_a.chars), distribution(brown_b.chars))
    print(f"| for scale: total variation, Brown's first vs second half | {brown_halves:.4f} |")

    print("\n| rank | default | share | Brown | share | default - Brown, for the default char |")
    print("|---:|:---:|---:|:---:|---:|---:|")
    for rank, ((dc, dn), (bc, bn)) in enumerate(
        zip(default.chars.most_common(25), brown.chars.most_common(25), strict=True), 1
    ):
        gap = dn / default.total - brown.chars[dc] / brown.total
        print(
            f"| {rank} | `{dc}` | {dn / default.total:.2%} | `{bc}` | {bn / brown.total:.2%} "
            f"| {gap:+.2%} |"
        )
    gaps = sorted(CHARSET, key=lambda c: p.get(c, 0.0) - q.get(c, 0.0))
    print("\nMost under-represented in default (vs Brown): " + ", ".join(
        f"`{c}` {p.get(c, 0.0) - q.get(c, 0.0):+.2%}" for c in gaps[:8]
    ))  # fmt: skip
    print("Most over-represented in default (vs Brown): " + ", ".join(
        f"`{c}` {p.get(c, 0.0) - q.get(c, 0.0):+.2%}" for c in reversed(gaps[-8:])
    ))  # fmt: skip

    print("\n## Word length (letters and digits, outer punctuation stripped)\n")
    dw, bw = distribution(default.word_lengths), distribution(brown.word_lengths)
    print("| length | default | Brown |\n|---:|---:|---:|")
    for length in range(1, 16):
        label = f"{length}+" if length == 15 else str(length)
        print(f"| {label} | {dw.get(length, 0.0):.2%} | {bw.get(length, 0.0):.2%} |")

    def mean_length(counts: Counter[int]) -> float:
        return sum(k * n for k, n in counts.items()) / sum(counts.values())

    print(
        f"| mean | {mean_length(default.word_lengths):.2f} | "
        f"{mean_length(brown.word_lengths):.2f} |"
    )
    print(f"| total variation | {total_variation(dw, bw):.4f} | |")

    print("\n## Sentence length\n")
    print("| | default | Brown |\n|---|---:|---:|")
    print(
        f"| characters, mean | {statistics.mean(default.sentence_chars):.1f} | "
        f"{statistics.mean(brown.sentence_chars):.1f} |"
    )
    print(
        f"| characters, p10 / median / p90 | {quantiles(default.sentence_chars)} | "
        f"{quantiles(brown.sentence_chars)} |"
    )
    print(
        f"| words, mean | {statistics.mean(default.sentence_words):.1f} | "
        f"{statistics.mean(brown.sentence_words):.1f} |"
    )
    print(
        f"| words, p10 / median / p90 | {quantiles(default.sentence_words)} | "
        f"{quantiles(brown.sentence_words)} |"
    )

    print("\n## SentenceGenerator (default source)\n")
    print(f"- first load of the corpus: {load_seconds:.2f} s")
    print(f"- pieces of up to 32 characters: {generation_rate('default'):,.0f} per second")
    print(
        "- the same with `numbers=0.1` (SyntheticLines' default): "
        f"{generation_rate('default', numbers=0.1):,.0f} per second"
    )
    print("\n| pieces of up to 48 characters | digits, share of characters | pieces with a digit |")
    print("|---|---:|---:|")
    for numbers in (0.0, 0.1, 0.2):
        generator = SentenceGenerator(max_length=48, seed=0, numbers=numbers)
        pieces = [generator.generate() for _ in range(50_000)]
        digits = sum(c.isdigit() for piece in pieces for c in piece)
        with_digit = sum(any(c.isdigit() for c in piece) for piece in pieces)
        print(
            f"| `numbers={numbers}` | {digits / sum(map(len, pieces)):.2%} | "
            f"{with_digit / len(pieces):.1%} |"
        )
    print(f"| for scale: Brown's sentences | {brown.share('digits'):.2%} | |")


if __name__ == "__main__":
    main()
