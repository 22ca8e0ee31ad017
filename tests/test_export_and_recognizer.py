import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from text_recognizer.cli import app
from text_recognizer.errors import ConfigError
from text_recognizer.export import export_onnx
from text_recognizer.paths import MODELS_DIR, SAMPLES_DIR
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
    # A missing .onnx was said to need 'both the .onnx file and its .json'.
    with pytest.raises(ConfigError, match=r"m\.onnx does not exist: name an exported \.onnx"):
        Recognizer.from_pretrained(tmp_path / "m.onnx")
    (tmp_path / "m.onnx").write_bytes(b"")
    with pytest.raises(ConfigError, match=r"needs its m\.json beside it"):
        Recognizer.from_pretrained(tmp_path / "m.onnx")
    fake = tmp_path / "fake.ckpt"
    fake.write_bytes(b"garbage")
    with pytest.raises(ConfigError, match=r"fake\.ckpt is not a checkpoint"):
        Recognizer.from_pretrained(fake)


SAMPLE_LINE = SAMPLES_DIR / "lines" / "line_00.png"


def test_a_corrupt_onnx_model_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "m.onnx").write_bytes((MODELS_DIR / "line.onnx").read_bytes()[:5000])
    (tmp_path / "m.json").write_bytes((MODELS_DIR / "line.json").read_bytes())
    with pytest.raises(ConfigError, match=r"m\.onnx is not a readable ONNX model \(.+\): export"):
        Recognizer.from_pretrained(tmp_path / "m.onnx")
    result = CliRunner().invoke(
        app, ["recognize", "--model", str(tmp_path / "m.onnx"), str(SAMPLE_LINE)]
    )
    assert result.exit_code == 1 and "is not a readable ONNX model" in result.output
    assert isinstance(result.exception, SystemExit)  # no traceback
    (tmp_path / "m.onnx").write_bytes((MODELS_DIR / "line.onnx").read_bytes())
    (tmp_path / "m.json").write_text('{"kind": "line",')
    with pytest.raises(ConfigError, match=r"m\.json is not a readable model description"):
        Recognizer.from_pretrained(tmp_path / "m.onnx")


class Foreign:
    """An object a weights-only load refuses to build."""


def test_export_says_what_a_file_that_is_no_checkpoint_is(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"line\.onnx is already an ONNX model: export takes"):
        export_onnx(MODELS_DIR / "line.onnx", tmp_path / "x.onnx")
    Image.new("RGB", (8, 8)).save(tmp_path / "photo.jpg")
    (tmp_path / "empty.ckpt").write_bytes(b"")
    torch.save({"state_dict": Foreign()}, tmp_path / "foreign.ckpt")
    (tmp_path / "cut.ckpt").write_bytes((tmp_path / "foreign.ckpt").read_bytes()[:300])
    expected = {
        "photo.jpg": "photo.jpg is not a checkpoint (those are zip archives",
        "empty.ckpt": "empty.ckpt is not a readable text-recognizer checkpoint: the file is empty",
        "cut.ckpt": "cut.ckpt is not a readable text-recognizer checkpoint: it is truncated",
        "foreign.ckpt": "foreign.ckpt is not a text-recognizer checkpoint: it holds Python",
    }
    for name, message in expected.items():
        with pytest.raises(ConfigError) as error:
            export_onnx(tmp_path / name, tmp_path / "x.onnx")
        assert message in str(error.value)
        assert "weights_only" not in str(error.value)  # torch's advice to unpickle anyway
    result = CliRunner().invoke(
        app, ["export", str(MODELS_DIR / "line.onnx"), "-o", str(tmp_path / "x.onnx")]
    )
    assert result.exit_code == 1 and "is already an ONNX model" in result.output
    assert not (tmp_path / "x.onnx").exists()


def test_export_into_an_existing_folder_writes_the_default_name_in_it(
    tiny_char_run: Path, tmp_path: Path
) -> None:
    (tmp_path / "out").mkdir()
    path = export_onnx(tiny_char_run, tmp_path / "out")
    assert path == tmp_path / "out" / "model.onnx"
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["model.json", "model.onnx"]
    assert not (tmp_path / "out.onnx").exists()


def test_export_refuses_an_output_suffix_other_than_onnx(
    tiny_char_run: Path, tmp_path: Path
) -> None:
    """``-o x.txt`` wrote x.onnx and x.json, a file the user never named, and no x.txt."""
    result = CliRunner().invoke(app, ["export", str(tiny_char_run), "-o", str(tmp_path / "x.txt")])
    assert result.exit_code == 1
    message = " ".join(result.output.split())
    assert "x.txt does not end in .onnx" in message and "-o " in message
    assert list(tmp_path.iterdir()) == []
    assert export_onnx(tiny_char_run, tmp_path / "bare") == tmp_path / "bare.onnx"
    assert export_onnx(tiny_char_run, tmp_path / "upper.ONNX") == tmp_path / "upper.onnx"


def test_export_names_the_files_it_wrote_without_reading_them_back(
    tiny_char_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The command read the .json it had just written to tell whether a decoder step was
    written too; the export knows what it wrote."""

    def read_model_json(path: Path) -> None:
        raise AssertionError(f"{path} read back")

    monkeypatch.setattr("text_recognizer.recognizer.read_model_json", read_model_json)
    output = tmp_path / "out.onnx"
    result = CliRunner().invoke(app, ["export", str(tiny_char_run), "-o", str(output)])
    assert result.exit_code == 0, result.output
    written = f"wrote{output}and{output.with_suffix('.json')}"
    assert written in "".join(result.output.split())  # long paths are wrapped
    assert output.is_file() and output.with_suffix(".json").is_file()


def test_export_to_an_unwritable_place_fails_before_loading(
    tiny_char_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def load_module(source: Path) -> None:
        raise AssertionError("loaded the checkpoint before checking the output")

    monkeypatch.setattr("text_recognizer.export.load_module", load_module)
    (tmp_path / "afile").write_text("")
    with pytest.raises(ConfigError, match=r"afile is a file, not a folder; choose another"):
        export_onnx(tiny_char_run, tmp_path / "afile" / "sub" / "m.onnx")
    if Path("/proc/self").is_dir():  # Linux: a folder no one can create a file in
        with pytest.raises(ConfigError, match=r"cannot write /proc/x\.onnx \(.+\): choose"):
            export_onnx(tiny_char_run, Path("/proc/x.onnx"))


def tiny_seq2seq_checkpoint(path: Path) -> Path:
    """A checkpoint of an (untrained) tiny transformer line model, as Lightning saves one."""
    from text_recognizer.charset import DEFAULT_CHARSET
    from text_recognizer.models import MODELS

    module = MODELS.build(
        "seq2seq",
        {},
        network="transformer",
        network_args={
            "d_model": 32,
            "num_heads": 2,
            "dim_feedforward": 32,
            "num_layers": 1,
            "channels": [8, 8, 8, 16],
            "max_length": 8,
        },
        charset_tokens=list(DEFAULT_CHARSET.tokens),
        input_height=32,
    )
    checkpoint = {
        "model_name": "seq2seq",
        "hyper_parameters": dict(module.hparams),
        "state_dict": module.state_dict(),
    }
    torch.save(checkpoint, path)
    return path


def test_a_seq2seq_checkpoint_is_read_from_the_command_line(tmp_path: Path) -> None:
    """The Recognizer once refused a transformer's checkpoint (it reads CTC frames); it now
    decodes it token by token. Untrained, it reads nonsense, but whole lines of it."""
    checkpoint = tiny_seq2seq_checkpoint(tmp_path / "transformer.ckpt")
    result = CliRunner().invoke(
        app, ["recognize", "--model", str(checkpoint), "--json", "--beam", "2", str(SAMPLE_LINE)]
    )
    assert result.exit_code == 0, result.output
    reading = json.loads(result.output)
    assert reading["kind"] == "line" and 0 < reading["confidence"] <= 1


def test_an_export_that_fails_midway_leaves_the_previous_export_whole(
    tiny_char_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Exporting over an earlier export: a disk that fills while the .json is written once
    left the new .onnx beside a torn .json (neither model readable any more)."""
    import errno

    from text_recognizer.charset import DEFAULT_CHARSET
    from text_recognizer.export import export_module
    from text_recognizer.models import MODELS

    path = export_onnx(tiny_char_run, tmp_path / "model.onnx")
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    other = MODELS.build(
        "classifier",
        {},
        network="mlp",
        network_args={"hidden": [8], "num_classes": len(DEFAULT_CHARSET)},
        charset_tokens=list(DEFAULT_CHARSET.tokens),
    )
    write_text = Path.write_text

    def disk_full_midway(self: Path, text: str, *args: object, **kwargs: object) -> int:
        if ".json" not in self.name:
            return write_text(self, text, *args, **kwargs)  # type: ignore[arg-type]
        write_text(self, text[: len(text) // 2], *args, **kwargs)  # type: ignore[arg-type]
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Path, "write_text", disk_full_midway)
    with pytest.raises(ConfigError, match=r"cannot write .+No space left on device"):
        export_module(other, path)
    monkeypatch.undo()
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before  # no temp files
    assert Recognizer.from_pretrained(path).recognize(bar_image(1), kind="char").kind == "char"


def _bundled_line_meta() -> dict[str, object]:
    meta: dict[str, object] = json.loads((MODELS_DIR / "line.json").read_text())
    return meta


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"kind": None}, r"lacks kind: "),
        ({"charset": None, "input_height": None}, r"lacks charset, input_height: "),
        ({"kind": "word"}, r"kind 'word' is none the Recognizer reads \(char or line\)"),
        ({"kind": "char"}, r"says a char model, but its graph takes images, widths"),
        ({"charset": "abc"}, r"charset must be a list of tokens"),
        ({"charset": ["a", "a"]}, r"charset tokens must be unique"),
        ({"charset": ["a", "b"]}, r"a CTC line model's charset holds <blank>"),
        ({"charset": ["<blank>", "a"]}, r"charset has 2 tokens, but the graph scores 83 classes"),
        ({"input_height": 0}, r"input_height must be a whole number of pixels, 1 or more"),
        ({"input_height": 28}, r"input_height 28, but the graph takes images 32 pixels high"),
        ({"format": "text-recognizer-onnx/2"}, r"format text-recognizer-onnx/2, not .+ newer"),
    ],
)
def test_a_model_description_that_lacks_or_contradicts_what_reading_needs_says_so(
    change: dict[str, object], message: str, tmp_path: Path
) -> None:
    """An exported model's .json without kind, charset or input_height once failed with a
    bare KeyError (a traceback on the command line); one that contradicted its graph, on
    the first image with ONNX Runtime's or OpenCV's words."""
    meta = {k: v for k, v in {**_bundled_line_meta(), **change}.items() if v is not None}
    (tmp_path / "m.onnx").write_bytes((MODELS_DIR / "line.onnx").read_bytes())
    (tmp_path / "m.json").write_text(json.dumps(meta))
    with pytest.raises(ConfigError, match=r"m\.(json|onnx)[: ].*" + message):
        Recognizer.from_pretrained(tmp_path / "m.onnx")
    result = CliRunner().invoke(
        app, ["recognize", "--model", str(tmp_path / "m.onnx"), str(SAMPLE_LINE)]
    )
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output


def test_a_model_description_without_the_optional_fields_still_reads(tmp_path: Path) -> None:
    meta = _bundled_line_meta()
    for optional in ("format", "version", "metrics", "network", "network_args"):
        del meta[optional]
    meta["input_height"] = "32"  # a hand-written description
    (tmp_path / "m.onnx").write_bytes((MODELS_DIR / "line.onnx").read_bytes())
    (tmp_path / "m.json").write_text(json.dumps(meta))
    result = Recognizer.from_pretrained(tmp_path / "m.onnx").recognize(SAMPLE_LINE)
    assert result.kind == "line" and result.text


def test_an_export_carries_the_test_metrics_of_its_own_checkpoint_only(
    tiny_char_run: Path, tmp_path: Path
) -> None:
    """The run's test metrics were measured on best.ckpt; exporting last.ckpt once put
    them in its .json too, as if they were its own."""
    checkpoints = tiny_char_run / "checkpoints"
    for name, has_metrics in [("best.ckpt", True), ("last.ckpt", False)]:
        path = export_onnx(checkpoints / name, tmp_path / f"{name}.onnx")
        meta = json.loads(path.with_suffix(".json").read_text())
        assert ("test/acc" in meta["metrics"]) == has_metrics, name


def test_a_run_folder_without_a_best_checkpoint_says_its_last_is_used(
    tiny_char_run: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A run stopped before its first validation has only last.ckpt: export and evaluate
    of the folder ("its best checkpoint") took it without a word."""
    import shutil

    run = tmp_path / "stopped"
    (run / "checkpoints").mkdir(parents=True)
    shutil.copy(tiny_char_run / "checkpoints" / "last.ckpt", run / "checkpoints")
    with caplog.at_level("WARNING", logger="text_recognizer"):
        export_onnx(run, tmp_path / "stopped.onnx")
    assert "has no best.ckpt (it stopped before a validation): using" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="text_recognizer"):
        export_onnx(tiny_char_run, tmp_path / "run.onnx")
    assert "has no best.ckpt" not in caplog.text


def test_a_module_built_directly_scores_its_charsets_tokens_and_exports(tmp_path: Path) -> None:
    """Built in Python, not from a config, a module's network kept its default of 83
    classes whatever the charset, and its export was refused as contradicting its graph."""
    from text_recognizer.export import export_module
    from text_recognizer.models import CharClassifier

    tokens = ["<blank>", "A", "B", "C", "D"]
    module = CharClassifier(network="lenet", charset_tokens=tokens)
    assert module.network(torch.zeros(1, 1, 28, 28)).shape == (1, len(tokens))
    reader = Recognizer.from_pretrained(export_module(module, tmp_path / "abcd.onnx"))
    result = reader.recognize(bar_image(1), kind="char")
    # Untrained: any of its tokens may win (blank too); none outside them.
    assert result.text in tokens and {text for text, _ in result.alternatives} <= set(tokens)
    with pytest.raises(ConfigError, match="num_classes=10, but the charset has 5 tokens"):
        CharClassifier(network="lenet", network_args={"num_classes": 10}, charset_tokens=tokens)
