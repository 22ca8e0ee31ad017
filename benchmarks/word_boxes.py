"""How well the Recognizer's word boxes find the words of a line.

Lines are assembled from words rendered one at a time in the test hands (fonts and
stroke faces none of the shipped model's training lines used), set side by side with
gaps of 0.2-0.6 line heights, so where each word's ink lies is known exactly. Each line
is read as a line, and each word is matched to the box whose column range overlaps its
ink best (each box used once), counting when the intersection over union is at least 0.5
(the usual threshold for detection). Printed: the share of words found, the share of
boxes matched (a box that spans two words the model read as one, or half a word it read
as two, matches none), their mean IoU, how often a matched box cuts into its word's ink
or reaches into a neighbour's, and the reading's CER (to see that the lines read normally);
then how well a matched word's confidence tells words read right from wrong (AUROC).

    python benchmarks/word_boxes.py [--lines 300] [--model default] [--margin 0.5] [--beam 10]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from text_recognizer.data.line_render import HEIGHT, LineRenderer
from text_recognizer.data.sentences import SentenceGenerator
from text_recognizer.data.sources.fonts import list_fonts
from text_recognizer.data.sources.strokes import list_faces
from text_recognizer.decoding import alignment
from text_recognizer.metrics import cer, confidence_auroc
from text_recognizer.recognizer import Recognizer

#: A column holds a word's ink where it reaches this share of the word's brightest ink.
INK = 0.25


def assemble(
    renderer: LineRenderer, words: list[str], rng: np.random.Generator
) -> tuple[np.ndarray, list[tuple[int, int]], str]:
    """Words rendered one by one, side by side on the paper of the first: the line (dark
    ink on light, as scanned), each word's ink columns ``[start, end)``, and the text."""
    images, texts = [], []
    for word in words:
        rendered = renderer.render(word, rng)
        images.append(rendered.image.astype(np.float32))
        texts.append(rendered.text)
    paper = float(np.median(images[0]))
    pieces, spans, x = [], [], 0
    for index, image in enumerate(images):
        ink = np.clip(image - np.median(image), 0, None)
        columns = np.flatnonzero(ink.max(axis=0) >= INK * ink.max())
        ink = ink[:, columns[0] : columns[-1] + 1]
        if index:
            gap = int(rng.uniform(0.2, 0.6) * HEIGHT)
            pieces.append(np.zeros((HEIGHT, gap), np.float32))
            x += gap
        pieces.append(ink)
        spans.append((x, x + ink.shape[1]))
        x += ink.shape[1]
    bright = paper + np.concatenate(pieces, axis=1)
    return (255 - np.clip(bright, 0, 255)).astype(np.uint8), spans, " ".join(texts)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=300)
    parser.add_argument("--model", default="default")
    parser.add_argument("--margin", type=float, nargs="+", default=[alignment.WORD_MARGIN])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--beam", type=int, default=1, help="beam size (1: greedy)")
    args = parser.parse_args(argv)
    renderer = LineRenderer(list_fonts("test"), list_faces("test"), texture_seed=args.seed)
    sentences = SentenceGenerator(max_length=40, seed=args.seed)
    rng = np.random.default_rng(args.seed)
    lines = []
    while len(lines) < args.lines:
        words = sentences.generate().split()
        if len(words) >= 2:
            lines.append(assemble(renderer, words, rng))
    recognizer = Recognizer.from_pretrained(args.model, beam_size=args.beam)
    for margin in args.margin:
        alignment.WORD_MARGIN = margin
        start = time.perf_counter()
        results = [recognizer.recognize(line, kind="line") for line, _, _ in lines]
        seconds = (time.perf_counter() - start) / len(lines)
        ious, cut, spill, words, boxes = [], 0, 0, 0, 0
        sure, right = [], []
        for (_, spans, text), result in zip(lines, results, strict=True):
            truth_words = text.split()
            ranges = []
            for word in result.words:
                xs = [x for x, _ in word.polygon]
                ranges.append((min(xs), max(xs) + 1))
            words, boxes = words + len(spans), boxes + len(ranges)
            # Each word matched to the box overlapping it best, each box used once.
            pairs = sorted(
                (
                    (_iou(box, span), b, w)
                    for b, box in enumerate(ranges)
                    for w, span in enumerate(spans)
                ),
                reverse=True,
            )
            used_boxes, used_words = set(), set()
            for iou, b, w in pairs:
                if iou < 0.5 or b in used_boxes or w in used_words:
                    continue
                used_boxes.add(b)
                used_words.add(w)
                ious.append(iou)
                sure.append(result.words[b].confidence)
                right.append(result.words[b].text == truth_words[w])
                (low, high), (start_x, end_x) = ranges[b], spans[w]
                cut += low > start_x + 2 or high < end_x - 2
                neighbours = spans[w - 1 : w] if w else []
                neighbours += spans[w + 1 : w + 2]
                spill += any(min(high, e) - max(low, s) > 2 for s, e in neighbours)
        matched = len(ious)
        truth = [text for _, _, text in lines]
        reading_cer = cer([r.text for r in results], truth)
        print(
            f"margin {margin:.2f}: {len(lines)} lines, {words} words, {boxes} boxes: "
            f"words found {matched / words:.3f} (a box with IoU >= 0.5), boxes right "
            f"{matched / boxes:.3f}, mean IoU of those {np.mean(ious):.3f}, cutting into "
            f"the word {cut / matched:.3f}, into a neighbour {spill / matched:.3f}; "
            f"CER {reading_cer:.3f}; {seconds * 1000:.1f} ms per line"
        )
        sure_array, right_array = np.array(sure), np.array(right)
        print(
            f"  word confidence, {len(sure)} matched words: read right "
            f"{right_array.mean():.3f}; AUROC against 'read right' "
            f"{confidence_auroc(sure, right):.3f}; mean confidence of right / "
            f"wrong words {sure_array[right_array].mean():.3f} / "
            f"{sure_array[~right_array].mean():.3f}; right among words above 0.5: "
            f"{right_array[sure_array > 0.5].mean():.3f} ({(sure_array > 0.5).mean():.3f} of them)"
        )

    # What finding the words costs: the same lines read with the alignment switched off.
    greys = [line for line, _, _ in lines]
    timings = {}
    for label in ("with words", "without", "with words again"):
        align = alignment.align
        if label == "without":
            alignment.align = lambda *_: None
        start = time.perf_counter()
        for grey in greys:
            recognizer.recognize(grey, kind="line")
        timings[label] = (time.perf_counter() - start) / len(greys) * 1000
        alignment.align = align
    print("ms per line: " + ", ".join(f"{k} {v:.2f}" for k, v in timings.items()))


def _iou(box: tuple[int, int], span: tuple[int, int]) -> float:
    overlap = max(0, min(box[1], span[1]) - max(box[0], span[0]))
    return overlap / (max(box[1], span[1]) - min(box[0], span[0]))


if __name__ == "__main__":
    main()
