"""``make demo``: read the bundled sample images and show predictions beside the truth."""

from __future__ import annotations

from pathlib import Path

from text_recognizer.labels import read_labels
from text_recognizer.metrics import cer
from text_recognizer.paths import SAMPLES_DIR
from text_recognizer.recognizer import Kind, Recognizer


def run_demo(model: str = "default", samples: Path = SAMPLES_DIR) -> tuple[list[list[str]], str]:
    recognizer = Recognizer.from_pretrained(model)
    rows = [["sample", "kind", "truth", "prediction", "confidence", "CER"]]
    summary = []
    kinds: tuple[tuple[Kind, str], ...] = (
        ("char", "chars"),
        ("line", "lines"),
        ("paragraph", "paragraphs"),
    )
    for kind, folder in kinds:
        needed = "line" if kind == "paragraph" else kind
        if needed not in recognizer.kinds or not (samples / folder).is_dir():
            continue
        labelled = read_labels(samples / folder)
        results = recognizer.recognize_batch([row.image for row in labelled], kind=kind)
        truths = [row.text for row in labelled]
        predictions = [r.text for r in results]
        for row, result in zip(labelled, results, strict=True):
            rows.append(
                [
                    row.image.name,
                    kind,
                    row.text,
                    result.text,
                    f"{result.confidence:.2f}",
                    f"{cer([result.text], [row.text]):.3f}",
                ]
            )
        if kind == "char":
            correct = sum(p == t for p, t in zip(predictions, truths, strict=True))
            summary.append(f"characters: {correct}/{len(truths)} correct")
        elif kind == "line":
            summary.append(f"lines: CER {cer(predictions, truths):.3f} over {len(truths)} lines")
        else:
            found = sum(len(r.lines) for r in results)
            written = sum(t.count("\n") + 1 for t in truths)
            summary.append(
                f"pages: CER {cer(predictions, truths):.3f} over {len(truths)} pages "
                f"({found} lines found of {written})"
            )
    return rows, "; ".join(summary) or "no bundled samples for the loaded models"
