"""How line models read many hands they have never seen: lines in fonts the project lacks.

The validation and test splits hold out 5 and 6 hands: too few to tell two models apart
by how they generalise to a new writer (per-hand CER ranges from 0.004 to 0.25). This
script renders ``--lines`` lines in every font of a folder you supply — handwriting
fonts the project does not ship and never trains on — with the training renderer's
per-letter jitter, warps and page effects, and reads them through the Recognizer with
each ``--model``, side by side. Fonts are never committed; fetch them once, e.g. the
63 npm ``@fontsource`` hands listed in ``docs/benchmarks.md``:

    mkdir -p /tmp/hands && cd /tmp/hands && npm pack @fontsource/allura @fontsource/borel ...
    for f in *.tgz; do mkdir -p "${f%.tgz}" && tar xzf "$f" -C "${f%.tgz}"; done
    python benchmarks/unseen_hands.py --fonts /tmp/hands --model default --model OTHER \\
        --group cursive=allura,borel,...

A folder's fonts: every ``.ttf``/``.otf``, and from ``@fontsource`` packages only the
``*-latin-400-normal.woff`` file. Fonts named like a shipped font are skipped.
"""

from __future__ import annotations

import argparse
import re
import time
from pathlib import Path

import numpy as np

from text_recognizer.data.line_render import LineRenderer
from text_recognizer.data.sentences import SentenceGenerator
from text_recognizer.data.sources.fonts import Font, list_fonts, scan_font
from text_recognizer.errors import DataError
from text_recognizer.metrics import cer
from text_recognizer.recognizer import Recognizer


def _key(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def find_fonts(folder: Path) -> list[Font]:
    """Fonts in ``folder`` that can draw lowercase text and are not shipped ones."""
    paths = sorted(folder.rglob("*-latin-400-normal.woff"))
    paths += sorted(p for p in folder.rglob("*") if p.suffix.lower() in (".ttf", ".otf"))
    shipped = {_key(f.name) for f in list_fonts()}
    fonts = []
    for path in paths:
        name = path.name.removesuffix("-latin-400-normal.woff").removesuffix(path.suffix)
        if _key(name) in shipped or any(_key(name) == _key(f.name) for f in fonts):
            print(f"skipped {path}: a font of that name is shipped or already listed")
            continue
        scanned = scan_font(path)
        missing = frozenset(scanned["missing"])
        if missing & set("abcdefghijklmnopqrstuvwxyz") and not scanned["capitals_only"]:
            print(f"skipped {name}: no glyph for {''.join(sorted(missing))!r}")
            continue
        capitals, joined = scanned["capitals_only"], scanned["joined"]
        fonts.append(Font(name, path, "unknown", missing, capitals, "test", joined))
    return fonts


def render_hand(font: Font, lines: int, seed: int) -> tuple[list[np.ndarray], list[str]]:
    """``lines`` lines of corpus text in ``font``, rendered as the val/test splits are."""
    rng = np.random.default_rng([seed, *font.name.encode()])
    sentences = SentenceGenerator(48, "default", int(rng.integers(2**63)), numbers=0.1)
    renderer = LineRenderer([font], [], stroke_fraction=0.0, texture_seed=seed)
    images, texts = [], []
    while len(images) < lines:
        text = max(sentences.generate(), sentences.generate(), key=len)
        try:  # capitals-only fonts get the text upper-cased, label included
            line = renderer.render(text, rng)
        except DataError:  # the font lacks a glyph of this text
            continue
        images.append(line.image)
        texts.append(line.text)
    return images, texts


def parse_groups(specs: list[str]) -> dict[str, list[str]]:
    groups = {}
    for spec in specs:
        name, _, members = spec.partition("=")
        groups[name] = [_key(m) for m in members.split(",") if m]
    return groups


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fonts", type=Path, required=True, help="folder of unseen fonts")
    parser.add_argument(
        "--model",
        action="append",
        help="bundled name, .onnx, .ckpt or run folder; repeat to compare (default: default)",
    )
    parser.add_argument("--lines", type=int, default=40, help="lines per hand")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--group",
        action="append",
        default=[],
        metavar="NAME=FONT,FONT,...",
        help="also report the CER over these fonts (names as in the table); repeatable",
    )
    parser.add_argument("--width-search", action="store_true", help="read with width_search")
    args = parser.parse_args()

    models = args.model or ["default"]
    fonts = find_fonts(args.fonts)
    if not fonts:
        parser.error(f"no usable fonts under {args.fonts}")
    start = time.perf_counter()
    hands = {font.name: render_hand(font, args.lines, args.seed) for font in fonts}
    seconds = time.perf_counter() - start
    print(f"rendered {len(fonts)} hands x {args.lines} lines in {seconds:.0f} s")

    predictions: dict[str, dict[str, list[str]]] = {}
    for model in models:
        recognizer = Recognizer.from_pretrained(model, width_search=args.width_search)
        predictions[model] = {
            name: [r.text for r in recognizer.recognize_batch(images, "line")]
            for name, (images, _) in hands.items()
        }

    def row(label: str, names: list[str]) -> str:
        texts = [t for n in names for t in hands[n][1]]
        cells = []
        for model in models:
            predicted = [p for n in names for p in predictions[model][n]]
            cells.append(f"{cer(predicted, texts):.3f}")
        return f"| {label} | {len(names)} | {' | '.join(cells)} |"

    print(f"\n| hand(s) | hands | {' | '.join(models)} |")
    print(f"|---|---:|{'---:|' * len(models)}")
    print(row("**all**", list(hands)))
    for group, members in parse_groups(args.group).items():
        names = [n for n in hands if _key(n) in members]
        unknown = set(members) - {_key(n) for n in names}
        if unknown:
            print(f"(group {group}: no hand named {', '.join(sorted(unknown))})")
        if names:
            print(row(f"**{group}**", names))
    for name in sorted(hands, key=lambda n: cer(predictions[models[0]][n], hands[n][1])):
        print(row(name, [name]))


if __name__ == "__main__":
    main()
