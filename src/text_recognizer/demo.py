"""``make demo``: read the bundled sample images and show predictions beside the truth."""

from __future__ import annotations

from pathlib import Path

from text_recognizer.labels import read_labels
from text_recognizer.metrics import cer
from text_recognizer.paths import SAMPLES_DIR
from text_recognizer.recognizer import Kind, Recognizer


def run_demo(model: str = "default", samples: Path = SAMPLES_DIR) -> tuple[list[list[str]], str]:
    """The table's rows (a header, then one per character, line and page line; a page's
    name on its first line's row only) and the summary line under it."""
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
            if kind != "paragraph":
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
                continue
            # A page one row per line (its name on the first), read line against written
            # line: a page's text in one cell wrapped into a block nobody could compare.
            lines_written = row.text.split("\n")
            for number in range(max(len(lines_written), len(result.lines))):
                truth = lines_written[number] if number < len(lines_written) else ""
                line = result.lines[number] if number < len(result.lines) else None
                text = line.text if line else ""
                rows.append(
                    [
                        "" if number else row.image.name,
                        "" if number else kind,
                        truth,
                        text,
                        f"{line.confidence:.2f}" if line else "-",
                        f"{cer([text], [truth]):.3f}",
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
