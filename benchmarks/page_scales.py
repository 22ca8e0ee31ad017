"""Pages at other sizes: the bundled sample pages, and ``synthetic_paragraphs`` test
pages, scaled by each ``--scale`` before they are read.

A page reaches the reader at whatever size it was scanned or photographed: a 100-dpi scan
saved as a PDF is drawn at 200 dpi, a phone photo is several times a scan's size. Each
page is resized (bilinear: a scanner's or a PDF renderer's smooth edges) and read as a
page (``kind="paragraph"``), and the CER of the pages and the lines found against the
lines written are printed per scale. The sample pages: a notebook page with ruled lines,
a dark desk round it and uneven light, and two plain ones.

    python benchmarks/page_scales.py --scale 0.75 --scale 1 --scale 1.5 --scale 2 --scale 3
"""

from __future__ import annotations

import argparse
import json

import cv2
import numpy as np

from text_recognizer.data import DATASETS
from text_recognizer.images import load_image
from text_recognizer.metrics import cer
from text_recognizer.paths import SAMPLES_DIR
from text_recognizer.recognizer import Recognizer


def scaled(page: np.ndarray, scale: float) -> np.ndarray:
    if scale == 1:
        return page
    size = (round(page.shape[1] * scale), round(page.shape[0] * scale))
    return cv2.resize(page, size, interpolation=cv2.INTER_LINEAR)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="default")
    parser.add_argument("--scale", type=float, action="append", help="default 0.75 1 1.5 2 3")
    parser.add_argument("--pages", type=int, default=20, help="synthetic test pages (0: none)")
    args = parser.parse_args()
    scales = args.scale or [0.75, 1.0, 1.5, 2.0, 3.0]
    folder = SAMPLES_DIR / "paragraphs"
    rows = [json.loads(row) for row in (folder / "labels.jsonl").read_text().splitlines()]
    sets = {"sample pages": [(load_image(folder / r["image"]), r["text"]) for r in rows]}
    if args.pages:
        module = DATASETS.build("synthetic_paragraphs", {"num_test": args.pages})
        module.setup("test")
        assert module.data_test is not None
        sets["synthetic test pages"] = [
            (np.asarray(image), text) for image, text in module.data_test
        ]
    recognizer = Recognizer.from_pretrained(args.model)
    print("| pages | scale | CER | lines found / written | CER per page |")
    print("|---|---:|---:|---:|---|")
    for name, pages in sets.items():
        truths = [text for _, text in pages]
        for scale in scales:
            texts, found = [], 0
            for page, _ in pages:
                result = recognizer.recognize(scaled(page, scale), kind="paragraph")
                texts.append(result.text)
                found += len(result.lines)
            written = sum(text.count("\n") + 1 for text in truths)
            each = " ".join(f"{cer([t], [g]):.3f}" for t, g in zip(texts, truths, strict=True))
            each = each if len(pages) <= 5 else "-"
            score = cer(texts, truths)
            print(f"| {name} | {scale:g} | {score:.4f} | {found} / {written} | {each} |")


if __name__ == "__main__":
    main()
