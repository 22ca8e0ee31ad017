from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from tests.training.fakes import tiny_chars  # noqa: F401 - the fixture, used by name
from text_recognizer.charset import DEFAULT_CHARSET
from text_recognizer.cli import app
from text_recognizer.data import DATASETS, BaseDataModule
from text_recognizer.data.module import ArrayDataset, collate_lines
from text_recognizer.decoding import CtcDecoder
from text_recognizer.errors import ConfigError
from text_recognizer.evaluate import batch_truths, evaluate, predict_batch, score
from text_recognizer.models import CtcLineModel

runner = CliRunner()
uses_tiny_chars = pytest.mark.usefixtures("tiny_chars")


@uses_tiny_chars
def test_char_run_scores_like_its_own_test_metrics(tiny_char_run: Path) -> None:
    # Same data as the run's test split (TinyChars, size 384, seed 0), so the same accuracy.
    report = evaluate(tiny_char_run, "tiny_chars", "test", {"size": 384}, batch_size=32)
    summary = json.loads((tiny_char_run / "summary.json").read_text())
    assert report.kind == "char" and report.num_samples == 96
    assert report.metrics["accuracy"] == pytest.approx(summary["test"]["test/acc"], abs=1e-6)
    assert report.metrics["errors"] == round((1 - report.metrics["accuracy"]) * 96)
    assert len(report.worst) == report.metrics["errors"]  # fewer mistakes than --worst
    assert all(s.prediction != s.truth for s in report.worst)


def test_a_run_is_scored_on_its_own_dataset_by_default(
    tiny_char_run: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.training.fakes import TinyChars

    monkeypatch.setitem(DATASETS._entries, "tiny_chars_session", TinyChars)  # the run's dataset
    report = evaluate(tiny_char_run / "checkpoints" / "best.ckpt")
    summary = json.loads((tiny_char_run / "summary.json").read_text())
    assert (report.data, report.data_args, report.seed) == ("tiny_chars_session", {"size": 384}, 0)
    assert report.metrics["accuracy"] == pytest.approx(summary["test"]["test/acc"], abs=1e-6)
    # An explicit argument overrides the run's own; the rest are kept.
    smaller = evaluate(tiny_char_run, data_args={"size": 64})
    assert (smaller.data_args, smaller.num_samples) == ({"size": 64}, 16)


@uses_tiny_chars
def test_onnx_export_scores_the_same_as_the_checkpoint(tiny_char_run: Path, tmp_path: Path) -> None:
    from text_recognizer.export import export_onnx

    onnx = export_onnx(tiny_char_run, tmp_path / "model.onnx")
    eager = evaluate(tiny_char_run, "tiny_chars", "val", {"size": 384})
    exported = evaluate(onnx, "tiny_chars", "val", {"size": 384})
    assert exported.metrics == eager.metrics
    assert [s.index for s in exported.worst] == [s.index for s in eager.worst]


@uses_tiny_chars
def test_cli_prints_metrics_and_writes_json(tiny_char_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    result = runner.invoke(
        app,
        ["evaluate", str(tiny_char_run), "--data", "tiny_chars", "--data-arg", "size=384",
         "--split", "val", "--limit", "40", "--output", str(out)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "(40 samples): accuracy=" in result.output
    report = json.loads(out.read_text())
    assert report["num_samples"] == 40 and report["split"] == "val"
    assert report["data_args"] == {"size": 384}
    char_metrics = {"accuracy", "errors", "accuracy_most_confident_80pct"}
    assert char_metrics <= set(report["metrics"]) <= char_metrics | {"confidence_auroc"}


@uses_tiny_chars
def test_mismatches_are_clear_errors(tiny_char_run: Path) -> None:
    with pytest.raises(ConfigError, match="split must be"):
        evaluate(tiny_char_run, "tiny_chars", "dev")
    with pytest.raises(ConfigError, match="has no argument 'sise'"):
        evaluate(tiny_char_run, "tiny_chars", "test", {"sise": 3})
    result = runner.invoke(app, ["evaluate", "missing_run", "--data", "tiny_chars"])
    assert result.exit_code == 1 and "error:" in result.output
    with pytest.raises(ConfigError, match="name the dataset"):
        evaluate("default")


def test_a_model_of_another_height_says_how_to_match_it() -> None:
    """The advice was --data-arg for every dataset, where emnist_lines has no height to set."""
    from text_recognizer.paths import SAMPLES_DIR

    folder = {"path": str(SAMPLES_DIR / "lines"), "input_height": 28}
    with pytest.raises(ConfigError, match=r"yields 28: pass --data-arg input_height=32$"):
        evaluate("line", "folder", "test", folder)
    with pytest.raises(
        ConfigError, match="yields 28: score a model made for emnist_lines's images"
    ):
        evaluate("line", "emnist_lines", "test", {})


def test_a_model_that_does_not_exist_is_called_so(tmp_path: Path) -> None:
    for missing in (tmp_path / "runs" / "nope", tmp_path / "nope.onnx", "nope"):
        with pytest.raises(ConfigError, match=r"does not exist: name a run folder, a \.ckpt"):
            evaluate(missing)
        with pytest.raises(ConfigError, match="does not exist"):
            evaluate(missing, "synthetic_chars")


def test_cli_refuses_a_bad_output_or_seed_before_evaluating(
    tiny_char_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def evaluate(*args: object, **kwargs: object) -> None:
        raise AssertionError("evaluated before checking the options")

    monkeypatch.setattr("text_recognizer.evaluate.evaluate", evaluate)
    (tmp_path / "out").mkdir()
    (tmp_path / "afile").write_text("")
    for output, message in [
        (tmp_path / "out", "out is a folder: --output names the file to write"),
        (tmp_path / "afile" / "r.json", "afile is a file, not a folder"),
    ]:
        result = runner.invoke(app, ["evaluate", str(tiny_char_run), "-o", str(output)])
        assert result.exit_code == 1, result.output
        assert message in " ".join(result.output.split())
    result = runner.invoke(app, ["evaluate", str(tiny_char_run), "--seed", "-5"])
    assert result.exit_code == 2 and "--seed" in result.output
    assert not isinstance(result.exception, AssertionError)


def test_worst_lines_rank_by_cer_then_confidence() -> None:
    truths = ["hello world", "abc", "same", "xyz"]
    predictions = [("hello word", 0.5), ("abd", 0.9), ("same", 0.99), ("xyz!", 0.2)]
    metrics, worst = score(truths, predictions, "line", worst=2)
    assert metrics["line_accuracy"] == 0.25
    assert metrics["cer"] == pytest.approx(3 / 21)
    assert metrics["wer"] == pytest.approx(3 / 5)
    assert [(s.index, round(s.cer, 3)) for s in worst] == [(1, 0.333), (3, 0.333)]
    # The three surest lines (0.99, 0.9, 0.5) hold 2 errors in 18 characters, and the one
    # right line is the surest of all: a perfect ranking.
    assert metrics["cer_most_confident_80pct"] == pytest.approx(2 / 18)
    assert metrics["confidence_auroc"] == 1.0


def test_worst_chars_are_the_most_confident_mistakes() -> None:
    metrics, worst = score(
        list("ABCD"), [("A", 0.9), ("B", 0.4), ("X", 0.3), ("Y", 0.8)], "char", 5
    )
    # The surest three are A (right), Y (wrong), B (right); of the four (right, wrong)
    # pairs only B 0.4 < Y 0.8 is ranked the wrong way round.
    assert metrics == {
        "accuracy": 0.5,
        "errors": 2.0,
        "accuracy_most_confident_80pct": pytest.approx(2 / 3),
        "confidence_auroc": 0.75,
    }
    assert [s.index for s in worst] == [3, 2]


class TinyLines(BaseDataModule):
    """Short random words drawn as noise blocks: only the plumbing is under test."""

    kind = "line"

    @property
    def input_height(self) -> int:
        return 32

    def setup(self, stage: str | None = None) -> None:
        rng = np.random.default_rng(self.seed)
        images = [
            rng.integers(0, 255, (32, int(w)), dtype=np.uint8) for w in rng.integers(40, 90, 12)
        ]
        words = ["".join(rng.choice(list("abcde"), int(n))) for n in rng.integers(1, 4, 12)]
        targets = [torch.tensor(DEFAULT_CHARSET.encode(w)) for w in words]
        self.data_train = self.data_val = self.data_test = ArrayDataset(images, targets)


@pytest.fixture
def tiny_lines() -> Iterator[str]:
    DATASETS._entries["tiny_lines"] = TinyLines
    yield "tiny_lines"
    del DATASETS._entries["tiny_lines"]


def test_line_checkpoint_evaluates_with_cer_and_wer(tiny_lines: str, tmp_path: Path) -> None:
    torch.manual_seed(0)
    module = CtcLineModel("line_cnn", network_args={"input_height": 32}, input_height=32).eval()
    checkpoint = tmp_path / "lines.ckpt"  # the layout our runs save (see models.loading)
    torch.save(
        {
            "model_name": "ctc",
            "hyper_parameters": dict(module.hparams),
            "state_dict": module.state_dict(),
        },
        checkpoint,
    )
    report = evaluate(checkpoint, tiny_lines, "test", batch_size=5, worst=3)
    assert report.kind == "line" and report.num_samples == 12
    line_metrics = {"cer", "wer", "line_accuracy", "cer_most_confident_80pct"}
    assert line_metrics <= set(report.metrics) <= line_metrics | {"confidence_auroc"}
    # Each listed prediction is the eager module's own greedy decoding of that line.
    data = TinyLines()
    data.setup()
    assert data.data_test is not None
    lines = [data.data_test[i] for i in range(12)]
    decoded = []
    for start in range(0, 12, 5):
        decoded += predict_batch(module, collate_lines(lines[start : start + 5]))
    for sample in report.worst:
        assert sample.prediction == decoded[sample.index][0]
        assert (
            sample.truth == batch_truths(collate_lines([lines[sample.index]]), DEFAULT_CHARSET)[0]
        )
    assert report.metrics["cer"] > 0 and len(report.worst) == 3


@uses_tiny_chars
def test_line_model_must_match_a_line_dataset(tmp_path: Path) -> None:
    module = CtcLineModel("line_cnn", network_args={"input_height": 32}, input_height=32)
    checkpoint = tmp_path / "lines.ckpt"
    torch.save(
        {
            "model_name": "ctc",
            "hyper_parameters": dict(module.hparams),
            "state_dict": module.state_dict(),
        },
        checkpoint,
    )
    with pytest.raises(ConfigError, match="is a line model; the dataset holds chars"):
        evaluate(checkpoint, "tiny_chars", "test")


def test_all_splits_one_after_another(tiny_lines: str, tmp_path: Path) -> None:
    module = CtcLineModel("line_cnn", network_args={"input_height": 32}, input_height=32)
    checkpoint = tmp_path / "lines.ckpt"
    torch.save(
        {"model_name": "ctc", "hyper_parameters": dict(module.hparams),
         "state_dict": module.state_dict()},
        checkpoint,
    )  # fmt: skip
    report = evaluate(checkpoint, tiny_lines, "all")
    assert report.num_samples == 3 * 12 and report.split == "all"
    assert all(sample.name is None for sample in report.worst)  # TinyLines has no file names


def test_a_labelled_folder_scores_as_the_recognizer_reads_it() -> None:
    from text_recognizer.metrics import cer
    from text_recognizer.paths import SAMPLES_DIR
    from text_recognizer.recognizer import Recognizer

    folder = SAMPLES_DIR / "lines"
    paths = sorted(folder.glob("*.png"))
    truths = dict(line.split("\t") for line in (folder / "labels.tsv").read_text().splitlines())
    for beam in (1, 4):
        report = evaluate(
            "default", "folder", "all", {"path": str(folder)}, decoder=CtcDecoder(beam)
        )
        read = Recognizer.from_pretrained(beam_size=beam).recognize_batch(paths, kind="line")
        expected = cer([r.text for r in read], [truths[p.name] for p in paths])
        assert report.num_samples == len(paths)
        assert report.metrics["cer"] == pytest.approx(expected, abs=1e-12)
        assert report.decoder == ("greedy" if beam == 1 else "beam 4")
        for sample in report.worst:
            assert sample.name is not None
            assert sample.prediction == read[paths.index(folder / sample.name)].text


@uses_tiny_chars
def test_cli_decodes_lines_with_a_beam_and_refuses_it_for_chars(tiny_char_run: Path) -> None:
    from text_recognizer.paths import SAMPLES_DIR

    result = runner.invoke(
        app,
        ["evaluate", "default", "--data", "folder", "--data-arg",
         f"path={SAMPLES_DIR / 'lines'}", "--split", "all", "--beam", "4", "--worst", "2"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "on folder/all (8 samples, beam 4): cer=" in result.output
    assert "line_0" in result.output  # the worst lines are named by their image
    result = runner.invoke(app, ["evaluate", "default", "--data", "folder", "--lm", "default"])
    assert result.exit_code == 1 and "needs beam search" in result.output
    with pytest.raises(ConfigError, match="beam search and LMs decode lines"):
        evaluate(tiny_char_run, "tiny_chars", "test", {"size": 384}, decoder=CtcDecoder(4))


@uses_tiny_chars
def test_width_search_scores_as_the_recognizer_reads(tiny_char_run: Path) -> None:
    from text_recognizer.metrics import cer
    from text_recognizer.paths import SAMPLES_DIR
    from text_recognizer.recognizer import WIDTH_SEARCH, Recognizer

    folder = SAMPLES_DIR / "lines"
    paths = sorted(folder.glob("*.png"))
    truths = dict(line.split("\t") for line in (folder / "labels.tsv").read_text().splitlines())
    report = evaluate("default", "folder", "all", {"path": str(folder)}, width_search=True)
    read = Recognizer.from_pretrained(width_search=True).recognize_batch(paths, kind="line")
    expected = cer([r.text for r in read], [truths[p.name] for p in paths])
    assert report.metrics["cer"] == pytest.approx(expected, abs=1e-12)
    assert report.decoder == "greedy, best of widths 0.85/1/1.25"
    plain = Recognizer.from_pretrained().recognize_batch(paths, kind="line")
    for searched, one in zip(read, plain, strict=True):  # 1.0 is one of the widths tried
        assert searched.confidence >= one.confidence
    assert 1.0 in WIDTH_SEARCH
    result = runner.invoke(
        app,
        ["evaluate", "default", "--data", "folder", "--data-arg", f"path={folder}",
         "--split", "all", "--width-search", "--worst", "0"],
    )  # fmt: skip
    assert result.exit_code == 0 and "best of widths 0.85/1/1.25): cer=" in result.output
    with pytest.raises(ConfigError, match="width search reads lines"):
        evaluate(tiny_char_run, "tiny_chars", "test", {"size": 384}, width_search=True)


@pytest.mark.parametrize(
    ("data", "sizes"),
    [
        ("synthetic_lines", {"num_train": 40, "num_val": 6, "num_test": 6}),
        ("synthetic_chars", {"num_train": 300, "num_val": 62, "num_test": 62}),
    ],
)
def test_scoring_one_split_builds_only_that_split(
    data: str, sizes: dict[str, int], isolated_dirs: Path
) -> None:
    """A test split's score must not wait for (or fill the disk with) the training cache."""
    report = evaluate("default", data, "test", sizes)
    assert report.num_samples == 6 if data == "synthetic_lines" else 62
    built = sorted(p.name.split("-")[0] for p in (isolated_dirs / "data").rglob("*.h5"))
    assert built == [f"{data}_test"]
    evaluate("default", data, "val", sizes, limit=2)
    built = sorted(p.name.split("-")[0] for p in (isolated_dirs / "data").rglob("*.h5"))
    assert built == [f"{data}_test", f"{data}_val"]


def test_a_report_is_written_whole_or_not_at_all(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The report was written in place: a write that failed (a full disk) left half of it,
    where the earlier report had been."""
    from text_recognizer.evaluate import EvaluationReport, Sample

    path = tmp_path / "report.json"
    path.write_text('{"earlier": true}')
    report = EvaluationReport(
        "line", "folder", "all", "line", 1, {"cer": 0.5}, [Sample(0, "Ünïcödé…", "x", 0.1, 1.0)]
    )

    def torn(self: Path, text: str, *args: object, **kwargs: object) -> int:
        with self.open("w") as f:
            f.write(text[:5])
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Path, "write_text", torn)
    with pytest.raises(OSError, match="No space left"):
        report.write_json(path)
    monkeypatch.undo()
    assert json.loads(path.read_text()) == {"earlier": True}
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]
    report.write_json(path)
    assert json.loads(path.read_text(encoding="utf-8"))["worst"][0]["truth"] == "Ünïcödé…"


def test_cli_says_when_the_report_cannot_be_written_after_all(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A write that failed after the evaluation (the disk filled meanwhile) ended in a
    traceback; the figures are printed, and the message says so."""
    from text_recognizer.evaluate import EvaluationReport
    from text_recognizer.paths import SAMPLES_DIR

    def full(self: EvaluationReport, path: Path) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(EvaluationReport, "write_json", full)
    out = tmp_path / "report.json"
    folder = f"path={SAMPLES_DIR / 'lines'}"
    result = runner.invoke(
        app,
        ["evaluate", "line", "--data", "folder", "--data-arg", folder, "--split", "all",
         "--limit", "2", "--worst", "0", "-o", str(out)],
    )  # fmt: skip
    assert result.exit_code == 1
    assert "cer=" in result.stdout
    assert f"error: cannot write {out} (No space left on device); the figures are printed" in (
        " ".join(result.stderr.split())
    )


@pytest.fixture
def nothing_counted_or_built(monkeypatch: pytest.MonkeyPatch) -> None:
    """Counting an LM or building a dataset fails the test: what is refused must be refused
    before either (the default LM took ~40 s to count before the refusal)."""
    import text_recognizer.decoding.decoder as decoder_module

    def counted(*args: object, **kwargs: object) -> None:
        raise AssertionError("an LM was counted before the options were refused")

    def built(*args: object, **kwargs: object) -> None:
        raise AssertionError("a dataset was built before the options were refused")

    monkeypatch.setattr(decoder_module, "open_lm", counted)
    monkeypatch.setattr(DATASETS, "build", built)


@pytest.mark.usefixtures("nothing_counted_or_built")
@pytest.mark.parametrize("options", [["--beam", "4", "--lm", "default"], ["--beam", "2"]])
def test_cli_refuses_line_decoding_for_characters_before_counting_an_lm(
    options: list[str],
) -> None:
    from text_recognizer.paths import MODELS_DIR, SAMPLES_DIR

    for model, data, why in (
        ("default", ["--data", "synthetic_chars"], "synthetic_chars holds characters"),
        ("default", ["--data", "emnist"], "emnist holds characters"),
        (  # the model's kind from its .json: a bundled name, or an exported file
            "char",
            ["--data", "folder", "--data-arg", f"path={SAMPLES_DIR / 'lines'}"],
            "char is a character model",
        ),
        (
            str(MODELS_DIR / "char.onnx"),
            ["--data", "emnist_lines"],
            f"{MODELS_DIR / 'char.onnx'} is a character model",
        ),
    ):
        result = runner.invoke(app, ["evaluate", model, *data, *options])
        assert result.exit_code == 1, result.output
        message = " ".join(result.output.split())
        assert f"beam search and LMs decode lines, and {why}" in message
        assert "leave out the beam search and the LM (--beam, --lm)" in message


@pytest.mark.usefixtures("nothing_counted_or_built")
def test_a_character_run_refuses_an_lm_before_counting_it(
    tiny_char_run: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The run's own dataset, told from its config, holds characters."""
    from tests.training.fakes import TinyChars

    monkeypatch.setitem(DATASETS._entries, "tiny_chars_session", TinyChars)
    result = runner.invoke(app, ["evaluate", str(tiny_char_run), "--beam", "4", "--lm", "default"])
    assert result.exit_code == 1, result.output
    assert "tiny_chars_session holds characters" in result.output
    # Scored on a line dataset, the run is still a character model.
    result = runner.invoke(
        app, ["evaluate", str(tiny_char_run), "--data", "emnist_lines", "--beam", "4"]
    )
    assert result.exit_code == 1, result.output
    assert f"{tiny_char_run} is a character model" in " ".join(result.output.split())
