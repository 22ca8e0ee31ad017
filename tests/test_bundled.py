"""The shipped models and samples: consistent metadata, and `make demo` reads the samples."""

import json

import pytest

from text_recognizer.charset import DEFAULT_CHARSET
from text_recognizer.demo import run_demo
from text_recognizer.labels import read_labels
from text_recognizer.paths import MODELS_DIR, SAMPLES_DIR
from text_recognizer.recognizer import Recognizer


@pytest.mark.parametrize(("name", "kind", "height"), [("char", "char", 28), ("line", "line", 32)])
def test_bundled_model_metadata(name: str, kind: str, height: int) -> None:
    meta = json.loads((MODELS_DIR / f"{name}.json").read_text())
    assert meta["kind"] == kind
    assert meta["input_height"] == height
    assert tuple(meta["charset"]) == DEFAULT_CHARSET.tokens
    assert (MODELS_DIR / f"{name}.onnx").stat().st_size < 5_000_000


def test_samples_have_labels_and_files() -> None:
    for kind in ("chars", "lines"):
        labelled = read_labels(SAMPLES_DIR / kind)
        assert len(labelled) >= 8
        assert all(row.image.is_file() and row.text for row in labelled)


def test_default_recognizer_loads_both_kinds() -> None:
    assert Recognizer.from_pretrained().kinds == ["char", "line"]


def test_demo_reads_the_samples() -> None:
    rows, summary = run_demo()
    assert rows[0] == ["sample", "kind", "truth", "prediction", "confidence", "CER"]
    assert len(rows) - 1 == len(read_labels(SAMPLES_DIR / "chars")) + len(
        read_labels(SAMPLES_DIR / "lines")
    )
    assert "characters:" in summary and "lines: CER" in summary
    # Regression floors for the shipped models on their bundled samples (held-out fonts).
    chars = [row for row in rows[1:] if row[1] == "char"]
    assert sum(row[2] == row[3] for row in chars) >= len(chars) - 2
    lines = [float(row[5]) for row in rows[1:] if row[1] == "line"]
    assert sum(lines) / len(lines) < 0.25


def test_the_bundled_line_model_reads_a_tilted_sample_as_well_as_a_level_one() -> None:
    import numpy as np

    from text_recognizer.metrics import cer
    from text_recognizer.preprocessing import load_image, rotate

    row = read_labels(SAMPLES_DIR / "lines")[0]
    level = load_image(row.image)
    paper = float(np.median(level))
    tilted = rotate(level.astype(np.float32), 3.0, paper).astype(np.uint8)
    reader = Recognizer.from_pretrained()
    as_is = Recognizer.from_pretrained(deskew=False)
    read_level = reader.recognize(level, kind="line").text
    assert (
        cer([reader.recognize(tilted, kind="line").text], [row.text])
        <= cer([read_level], [row.text]) + 0.05
    )
    assert cer([as_is.recognize(tilted, kind="line").text], [row.text]) > cer(
        [reader.recognize(tilted, kind="line").text], [row.text]
    )
