"""A seq2seq (CNN + Transformer) line model read by the Recognizer, the CLI and evaluate:
from its checkpoint in PyTorch, and exported to ONNX (encoder + decoder step)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from tests.models.lines import fit_one_batch
from tests.models.test_seq2seq import SMALL_NETWORK, build
from text_recognizer.charset import DEFAULT_CHARSET
from text_recognizer.cli import app
from text_recognizer.data.module import collate_lines
from text_recognizer.decoding.decoder import CtcDecoder
from text_recognizer.errors import ConfigError
from text_recognizer.evaluate import load_predictor
from text_recognizer.preprocessing import prepare_line
from text_recognizer.recognizer import Recognizer, open_model
from text_recognizer.segmentation import segment_lines

TEXTS = ["abc", "hello", "Text 42", "xyz", "fox", "a b c"]


def written(text: str) -> np.ndarray:
    """Dark text on light paper with wide margins: what a user's scan of a line looks like."""
    font, scale, thickness = cv2.FONT_HERSHEY_SIMPLEX, 1.4, 2
    (width, height), _ = cv2.getTextSize(text, font, scale, thickness)
    image = np.full((height + 60, width + 60), 235, np.uint8)
    cv2.putText(image, text, (30, height + 30), font, scale, 40, thickness, cv2.LINE_AA)
    return image


PAGE_TEXTS = ["hello", "Text 42", "fox"]


def page_of(texts: list[str]) -> np.ndarray:
    lines = [written(text) for text in texts]
    width = max(line.shape[1] for line in lines)
    page = np.full((sum(line.shape[0] for line in lines) + 80, width + 80), 235, np.uint8)
    top = 40
    for line in lines:
        page[top : top + line.shape[0], 40 : 40 + line.shape[1]] = line
        top += line.shape[0]
    return page


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small model that has learnt ``TEXTS`` as the Recognizer prepares them."""
    import lightning as L

    folder = tmp_path_factory.mktemp("seq2seq")
    torch.set_num_threads(1)
    L.seed_everything(0, verbose=False)
    # A page's lines are cut at another scale than a lone line's: learnt both ways.
    page_lines = [found.image for found in segment_lines(page_of(PAGE_TEXTS)).lines]
    greys = [written(text) for text in TEXTS] + page_lines
    lines = [torch.from_numpy(prepare_line(grey, 32))[None] for grey in greys]
    targets = [torch.tensor(DEFAULT_CHARSET.encode(text)) for text in TEXTS + PAGE_TEXTS]
    model = build({**SMALL_NETWORK, "dropout": 0.0})
    batch = collate_lines(list(zip(lines, targets, strict=True)))
    metrics = fit_one_batch(model, TEXTS + PAGE_TEXTS, 150, folder, batch=batch)
    assert metrics["val/cer"] == 0.0
    path = folder / "model.ckpt"
    model.trainer.save_checkpoint(path)
    return path


@pytest.fixture(scope="module")
def exported(checkpoint: Path) -> Path:
    output = checkpoint.parent / "export" / "reader.onnx"
    result = CliRunner().invoke(app, ["export", str(checkpoint), "--output", str(output)])
    assert result.exit_code == 0, result.output
    assert "reader.step.onnx" in result.output
    return output


def test_checkpoint_reads_lines(checkpoint: Path) -> None:
    results = Recognizer.from_pretrained(checkpoint).recognize_batch(
        [written(text) for text in TEXTS], kind="line"
    )
    assert [r.text for r in results] == TEXTS
    assert all(0.5 < r.confidence <= 1.0 for r in results)
    assert all(r.words == [] for r in results)  # no CTC frames: no word places


def test_export_writes_encoder_step_and_json(exported: Path) -> None:
    meta = json.loads(exported.with_suffix(".json").read_text())
    assert (meta["decoder"], meta["max_length"], meta["kind"]) == ("seq2seq", 16, "line")
    assert exported.with_name("reader.step.onnx").is_file()


@pytest.mark.parametrize("beam_size", [1, 3])
def test_onnx_reads_as_the_checkpoint_does(
    checkpoint: Path, exported: Path, beam_size: int
) -> None:
    images = [written(text) for text in TEXTS]
    torch_results = Recognizer.from_pretrained(checkpoint, beam_size=beam_size).recognize_batch(
        images, kind="line"
    )
    onnx_results = Recognizer.from_pretrained(exported, beam_size=beam_size).recognize_batch(
        images, kind="line"
    )
    assert [r.text for r in onnx_results] == TEXTS
    np.testing.assert_allclose(
        [r.confidence for r in onnx_results], [r.confidence for r in torch_results], atol=1e-4
    )


def test_a_page_is_read_line_by_line(exported: Path) -> None:
    result = Recognizer.from_pretrained(exported).recognize(page_of(PAGE_TEXTS), kind="paragraph")
    assert result.text == "\n".join(PAGE_TEXTS)
    assert all(line.polygon for line in result.lines)


def test_cli_recognize_and_evaluate_read_the_export(exported: Path, tmp_path: Path) -> None:
    folder = tmp_path / "lines"
    folder.mkdir()
    for i, text in enumerate(TEXTS):
        cv2.imwrite(str(folder / f"{i}.png"), written(text))
    labels = "".join(f"{i}.png\t{text}\n" for i, text in enumerate(TEXTS))
    (folder / "labels.tsv").write_text(labels, encoding="utf-8")
    result = CliRunner().invoke(
        app, ["recognize", str(folder / "1.png"), "--model", str(exported), "--kind", "line"]
    )
    assert result.exit_code == 0, result.output
    assert "hello" in result.output

    report = tmp_path / "report.json"
    arguments = ["--data", "folder", "--data-arg", f"path={folder}", "--split", "all"]
    result = CliRunner().invoke(
        app, ["evaluate", str(exported), *arguments, "--beam", "3", "--output", str(report)]
    )
    assert result.exit_code == 0, result.output
    evaluation = json.loads(report.read_text())
    assert (evaluation["num_samples"], evaluation["metrics"]["cer"]) == (len(TEXTS), 0.0)


def test_a_language_model_is_refused_clearly(checkpoint: Path, exported: Path) -> None:
    for model in (checkpoint, exported):
        with pytest.raises(ConfigError, match=r"seq2seq.*drop the LM"):
            Recognizer.from_pretrained(model, beam_size=4, lm="default")
    with pytest.raises(ConfigError, match="seq2seq model: it writes its text token by token"):
        load_predictor(exported, "line", CtcDecoder(beam_size=4, lm_weight=1.0, lm=object()))  # type: ignore[arg-type]


def test_damaged_exports_are_named(exported: Path, tmp_path: Path) -> None:
    copy = tmp_path / "reader.onnx"
    for name in ("reader.onnx", "reader.json"):
        shutil.copy(exported.with_name(name), tmp_path / name)
    with pytest.raises(ConfigError, match=r"decoder step reader\.step\.onnx must be beside it"):
        open_model(copy)
    shutil.copy(exported.with_name("reader.step.onnx"), tmp_path / "reader.step.onnx")
    with pytest.raises(ConfigError, match="open the model by its encoder"):
        open_model(tmp_path / "reader.step.onnx")

    meta = json.loads(copy.with_suffix(".json").read_text())
    for change, message in [
        ({"decoder": "rnnt"}, "decoder 'rnnt' is none this version reads"),
        ({"max_length": None}, "max_length .* must be a whole number"),
        ({"charset": [t for t in meta["charset"] if t != "<end>"]}, "holds <end>"),
    ]:
        copy.with_suffix(".json").write_text(json.dumps({**meta, **change}))
        with pytest.raises(ConfigError, match=message):
            open_model(copy)
    # The step graph of another model: its inputs are an encoder's.
    copy.with_suffix(".json").write_text(json.dumps(meta))
    shutil.copy(exported, tmp_path / "reader.step.onnx")
    with pytest.raises(ConfigError, match="not a seq2seq model's step graph"):
        open_model(copy)


def test_an_export_that_cannot_write_its_step_leaves_the_earlier_export_whole(
    checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The encoder opens the model: written beside an earlier export's step and .json it
    would read with a decoder it was not trained with, or leave an encoder without one."""
    import text_recognizer.export as export_module

    names = ["reader.onnx", "reader.step.onnx", "reader.json"]
    earlier = {name: f"an earlier export's {name}".encode() for name in names}
    for name, data in earlier.items():
        (tmp_path / name).write_bytes(data)
    write_onnx = export_module.write_onnx

    def disk_full_at_the_step(
        wrapper: torch.nn.Module, args: tuple[Any, ...], path: Path, *rest: Any
    ) -> Path:
        if "step" in path.name:
            raise OSError(28, "No space left on device")
        return write_onnx(wrapper, args, path, *rest)

    monkeypatch.setattr(export_module, "write_onnx", disk_full_at_the_step)
    result = CliRunner().invoke(app, ["export", str(checkpoint), "-o", str(tmp_path / "reader")])
    assert result.exit_code == 1
    assert "No space left on device" in result.output
    assert {name: (tmp_path / name).read_bytes() for name in names} == earlier
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted(names)  # no temp files

    # A folder where the step would go is refused before anything is written.
    monkeypatch.undo()
    (tmp_path / "new.step.onnx").mkdir()
    result = CliRunner().invoke(app, ["export", str(checkpoint), "-o", str(tmp_path / "new")])
    assert result.exit_code == 1
    assert "new.step.onnx is a folder" in result.output
    assert not (tmp_path / "new.onnx").exists() and not (tmp_path / "new.json").exists()
