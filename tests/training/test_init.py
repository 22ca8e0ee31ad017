"""Fine-tuning: runs that start from trained weights (``init``) instead of random ones."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml
from PIL import Image

from tests.data.test_folder import TEXTS, write_lines
from tests.training.test_run import tiny_config
from text_recognizer.data.folder import LabelledFolder
from text_recognizer.errors import ConfigError
from text_recognizer.models.loading import load_module
from text_recognizer.models.onnx_weights import network_from_onnx
from text_recognizer.paths import MODELS_DIR
from text_recognizer.recognizer import Recognizer
from text_recognizer.training.config import load_config, parse_config
from text_recognizer.training.run import build_datamodule, build_model, resume_run, run_experiment

FINETUNE = Path("configs/lines_finetune.yaml")


def finetune_config(folder: Path, *overrides: str) -> Any:
    """The shipped fine-tuning config on a tiny folder, one quick epoch, 8 rehearsal lines."""
    return load_config(
        FINETUNE,
        [
            f"data.args.path={folder}",
            "data.batch_size=4",
            "data.args.rehearsal=8",
            "trainer.max_epochs=1",
            "trainer.num_threads=1",
            "callbacks.progress_bar=none",
            *overrides,
        ],
    )


def test_fine_tuning_the_bundled_line_model(tmp_path: Path) -> None:
    write_lines(tmp_path / "scans", TEXTS)
    config = finetune_config(tmp_path / "scans")
    datamodule = build_datamodule(config)
    model = build_model(config, datamodule)
    bundled, _ = network_from_onnx(MODELS_DIR / "line.onnx")
    start = {k: v.clone() for k, v in model.network.state_dict().items()}
    for name, tensor in bundled.state_dict().items():
        assert torch.equal(start[name], tensor), name

    summary = run_experiment(config)
    tuned = load_module(Path(summary["run_dir"])).network.state_dict()
    # Frozen batch norms keep the statistics they came with; everything else learned.
    assert torch.equal(tuned["collapse.1.running_var"], start["collapse.1.running_var"])
    assert not torch.equal(tuned["classifier.weight"], start["classifier.weight"])
    assert not torch.equal(tuned["encoder.stem.0.weight"], start["encoder.stem.0.weight"])
    assert 0 <= summary["test"]["test/cer"] < 1
    reader = Recognizer.from_pretrained(summary["run_dir"])
    assert reader.recognize(tmp_path / "scans" / "scan_00.png").text


def test_init_from_a_run_folder_and_resume_without_it(tiny_chars: str, tmp_path: Path) -> None:
    # A constant LR: extending max_epochs for the resume would change a schedule's length.
    one_epoch: dict[str, Any] = {"trainer": {"max_epochs": 1}, "scheduler": {"name": "none"}}
    first = run_experiment(parse_config(tiny_config(tiny_chars, **one_epoch)))
    source = tmp_path / "source_run"
    shutil.copytree(first["run_dir"], source)
    config = parse_config(tiny_config(tiny_chars, **one_epoch, init={"weights": str(source)}))
    model = build_model(config, build_datamodule(config))
    trained = load_module(source).network.state_dict()
    for name, tensor in model.network.state_dict().items():
        assert torch.equal(tensor, trained[name]), name
    assert model.freeze_batchnorm  # the default for fine-tuning

    second = run_experiment(config)
    # A resume restores the run's own weights: the source may be gone by then.
    shutil.rmtree(source)
    run_dir = Path(second["run_dir"])
    saved = yaml.safe_load((run_dir / "config.yaml").read_text())
    saved["trainer"]["max_epochs"] = 2
    (run_dir / "config.yaml").write_text(yaml.safe_dump(saved))
    assert resume_run(run_dir)["epochs"] == 2


def test_batch_norms_stay_in_eval_mode_only_when_frozen(tiny_chars: str, tmp_path: Path) -> None:
    for freeze in (True, False):
        raw = tiny_config(tiny_chars, init={"weights": "default", "freeze_batchnorm": freeze})
        raw["network"] = {"name": "lenet"}  # the bundled character model's network
        config = parse_config(raw)
        model = build_model(config, build_datamodule(config), load_init=False).train()
        norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
        assert norms and all(m.training is not freeze for m in norms)
        assert model.network.training


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["network.args.lstm_hidden=64"], "different network from the config's crnn"),
        (["init.freeze_batchnorm=false"], "batch norms folded into the convolutions"),
        (["data.args.input_height=48", "data.args.rehearsal=0"], "reads images 32 px high"),
        (["init.weights=no/such/model.onnx"], "does not exist"),
        (["init.weights=no/such/run"], "does not exist"),
        # Said first: it once asked for input_height=28, then for a lenet network section.
        ([f"init.weights={MODELS_DIR / 'char.onnx'}"], "are a char model's weights"),
    ],
)
def test_weights_that_do_not_fit_say_what_to_change(
    tmp_path: Path, overrides: list[str], message: str
) -> None:
    write_lines(tmp_path / "scans", TEXTS)
    config = finetune_config(tmp_path / "scans", *overrides)
    with pytest.raises(ConfigError, match=message):
        build_model(config, build_datamodule(config))


def test_the_error_prints_the_network_section_to_paste(tmp_path: Path) -> None:
    write_lines(tmp_path / "scans", TEXTS)
    config = finetune_config(tmp_path / "scans", "network.args.channels=[8,16,32,64]")
    with pytest.raises(ConfigError) as error:
        build_model(config, build_datamodule(config))
    pasted = yaml.safe_load(str(error.value).split("own:\n", 1)[1])
    assert pasted["network"]["args"]["channels"] == [16, 32, 64, 128]
    assert pasted["network"]["args"]["lstm_hidden"] == 96


def test_a_folder_rehearses_synthetic_lines_in_training_only(tmp_path: Path) -> None:
    write_lines(tmp_path / "scans", TEXTS)
    data = LabelledFolder(tmp_path / "scans", val_fraction=0.25, rehearsal=5, seed=3)
    data.prepare_data()
    data.setup("fit")
    assert data.data_train is not None and len(data.data_train) == 8  # the user's lines only
    training = data.training_set()
    assert training is not None and len(training) == 13
    assert training.names[-1] == "<rehearsal line 4>"
    image, target = training[12]
    assert image.shape[1] == 32 and image.dtype == torch.float32 and len(target) > 0
    batches = list(data.train_dataloader())
    assert sum(len(batch[0]) for batch in batches) == 13
    again = LabelledFolder(tmp_path / "scans", val_fraction=0.25, rehearsal=5, seed=3)
    again.setup("fit")
    assert torch.equal(again.training_set()[12][1], target)  # type: ignore[index]
    with pytest.raises(ConfigError, match="kind: line only"):
        LabelledFolder(tmp_path / "scans", kind="char", rehearsal=5)
    with pytest.raises(ConfigError, match="rendered 32 px high"):
        LabelledFolder(tmp_path / "scans", input_height=48, rehearsal=5)


def test_a_character_run_starts_from_the_bundled_character_model(tmp_path: Path) -> None:
    rows = []
    for i, char in enumerate("AbCdEf"):
        image = Image.new("L", (60, 80), 255)
        image.paste(0, (10 + 5 * i, 10, 40, 70))
        image.save(tmp_path / f"{i}.png")
        rows.append(f"{i}.png\t{char}\n")
    (tmp_path / "labels.tsv").write_text("".join(rows))
    config = parse_config(
        {
            "name": "chars_finetune",
            "data": {"name": "folder", "args": {"path": str(tmp_path), "kind": "char"}},
            "network": {"name": "lenet"},
            "init": {"weights": "default"},
        }
    )
    model = build_model(config, build_datamodule(config)).eval()
    bundled, _ = network_from_onnx(MODELS_DIR / "char.onnx")
    images = torch.rand(3, 1, 28, 28)
    with torch.no_grad():
        assert torch.allclose(model.network(images), bundled(images))


def test_fine_tuning_on_iam_lines(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.data.test_iam_lines import ZIP_BYTES, ZIP_SHA

    (tmp_path / "iam").mkdir()
    (tmp_path / "iam" / "iamdb.zip").write_bytes(ZIP_BYTES)  # placed by hand: no network
    monkeypatch.setenv("TEXT_RECOGNIZER_IAM_SHA256", ZIP_SHA)
    config = load_config(
        Path("configs/lines_iam.yaml"),
        [
            f"data.args.root={tmp_path}",
            "data.batch_size=1",
            "trainer.max_epochs=2",
            "trainer.num_threads=1",
            "callbacks.progress_bar=none",
        ],
    )
    summary = run_experiment(config)
    assert summary["test"]["test/cer"] < 0.5  # the bundled model's reading, barely moved
    assert (
        Recognizer.from_pretrained(summary["run_dir"])
        .recognize(Path("src/text_recognizer/assets/samples/lines/line_00.png"))
        .text
    )


def test_a_transformer_starts_from_weights_with_or_without_its_ctc_head(tmp_path: Path) -> None:
    """The CTC head is used in training only: weights without it (a run from before it
    existed, or with ctc_head false) were refused as another network, and the network
    section the error offered was then refused for ctc_weight. The run's own head starts
    fresh; a head the run does not have is left behind."""
    from text_recognizer.charset import DEFAULT_CHARSET
    from text_recognizer.models import MODELS

    write_lines(tmp_path / "scans", TEXTS)
    network = {"d_model": 32, "num_heads": 2, "dim_feedforward": 64, "num_layers": 1,
               "channels": [8, 8, 16, 32], "max_length": 16}  # fmt: skip
    for source_head, run_head in ((False, True), (True, False)):
        torch.manual_seed(0)
        source = MODELS.build(
            "seq2seq",
            {"ctc_weight": 0.3 if source_head else 0.0},
            network="transformer",
            network_args={**network, "ctc_head": source_head},
            charset_tokens=list(DEFAULT_CHARSET.tokens),
            input_height=32,
        )
        checkpoint = tmp_path / f"head_{source_head}.ckpt"
        torch.save({"model_name": "seq2seq", "hyper_parameters": dict(source.hparams),
                    "state_dict": source.state_dict()}, checkpoint)  # fmt: skip
        raw = yaml.safe_load(FINETUNE.read_text())
        raw["network"] = {"name": "transformer", "args": {**network, "ctc_head": run_head}}
        raw["model"] = {"name": "seq2seq", "args": {"ctc_weight": 0.3 if run_head else 0.0}}
        raw["init"] = {"weights": str(checkpoint), "freeze_batchnorm": False}
        raw["data"]["args"].update(path=str(tmp_path / "scans"), rehearsal=0)
        config = parse_config(raw)
        model = build_model(config, build_datamodule(config))
        started = model.network.state_dict()
        for name, tensor in source.network.state_dict().items():
            if not name.startswith("ctc_classifier."):
                assert torch.equal(started[name], tensor), name
        assert (model.network.ctc_classifier is not None) == run_head
