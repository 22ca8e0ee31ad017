import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from text_recognizer.errors import ConfigError
from text_recognizer.export import export_onnx
from text_recognizer.recognizer import Recognizer


def bar_image(label: int, dark_on_light: bool = False, scale: int = 1) -> np.ndarray:
    """The TinyChars pattern for A-D (a horizontal bar at a height), any size and polarity."""
    image = np.zeros((28, 28), dtype=np.uint8)
    image[4 + label * 5 : 8 + label * 5, 4:24] = 255
    if scale > 1:
        image = np.kron(image, np.ones((scale, scale), dtype=np.uint8))
    return 255 - image if dark_on_light else image


def test_onnx_matches_eager(tiny_char_run: Path, tmp_path: Path) -> None:
    path = export_onnx(tiny_char_run, tmp_path / "char.onnx")
    meta = json.loads(path.with_suffix(".json").read_text())
    assert meta["kind"] == "char" and meta["charset"][0] == "<blank>" and meta["input_height"] == 28
    assert "test/acc" in meta["metrics"]
    onnx = Recognizer.from_pretrained(path)
    eager = Recognizer.from_pretrained(tiny_char_run)
    images = [bar_image(k) for k in range(4)]
    for a, b in zip(onnx.recognize_batch(images), eager.recognize_batch(images), strict=True):
        assert a.text == b.text
        assert a.confidence == pytest.approx(b.confidence, abs=1e-4)


def test_reads_file_of_any_polarity_and_size(tiny_char_run: Path, tmp_path: Path) -> None:
    recognizer = Recognizer.from_pretrained(tiny_char_run)
    # Not a memorisation check of the exact tensor: the image goes through emnist_style.
    results = []
    for k in range(4):
        path = tmp_path / f"{k}.png"
        Image.fromarray(bar_image(k, dark_on_light=True, scale=4)).convert("RGB").save(path)
        results.append(recognizer.recognize(path))
    assert all(r.kind == "char" and 0 <= r.confidence <= 1 for r in results)
    assert len(results[0].alternatives) == 3


def test_bad_model_sources(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not a bundled model"):
        Recognizer.from_pretrained(tmp_path / "model.bin")
    with pytest.raises(ConfigError, match="has no checkpoints"):
        Recognizer.from_pretrained(tmp_path)
    (tmp_path / "m.onnx").write_bytes(b"")
    with pytest.raises(ConfigError, match="needs both"):
        Recognizer.from_pretrained(tmp_path / "m.onnx")
    fake = tmp_path / "fake.ckpt"
    fake.write_bytes(b"garbage")
    with pytest.raises(ConfigError, match="not a readable text-recognizer checkpoint"):
        Recognizer.from_pretrained(fake)


def test_seq2seq_export_points_to_the_two_graph_exporter(tmp_path: Path) -> None:
    from text_recognizer.export import export_module
    from text_recognizer.models import MODELS

    module = MODELS.build("seq2seq", {}, network="transformer", network_args={"num_classes": 83})
    with pytest.raises(ConfigError, match="encoder graph plus a decoder-step graph"):
        export_module(module, tmp_path / "model.onnx")
