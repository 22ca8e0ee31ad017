import json
import subprocess
import time
from pathlib import Path
from typing import Any

import lightning as L
import pytest
import torch
import yaml

from text_recognizer.errors import ConfigError
from text_recognizer.models import CharClassifier
from text_recognizer.training import run
from text_recognizer.training.config import parse_config
from text_recognizer.training.run import git_commit, git_dirty, resume_run, run_experiment


def tiny_config(dataset: str, **overrides: object) -> dict:
    config = {
        "name": "tiny",
        "group": "tests",
        "seed": 3,
        "data": {"name": dataset, "args": {"size": 384}, "batch_size": 16},
        "network": {"name": "lenet", "args": {"channels": [8, 16], "fc_dim": 32}},
        "optimizer": {"name": "adamw", "lr": 1e-2},
        "scheduler": {"name": "onecycle"},
        "callbacks": {"checkpoint": {"monitor": "val/acc", "mode": "max"}, "progress_bar": "none"},
        "trainer": {"max_epochs": 3, "num_threads": 1},
    }
    config.update(overrides)
    return config


def test_run_writes_folder_and_learns(tiny_chars: str) -> None:
    summary = run_experiment(parse_config(tiny_config(tiny_chars)))
    run_dir = Path(summary["run_dir"])
    assert run_dir.parent.parent.name == "tests"
    for name in (
        "config.yaml",
        "metrics.csv",
        "summary.json",
        "checkpoints/best.ckpt",
        "checkpoints/last.ckpt",
    ):
        assert (run_dir / name).is_file(), name
    assert list((run_dir / "tensorboard").glob("events.*"))
    assert summary["epochs"] == 3 and summary["ended_by"] == "schedule"
    assert summary["training_time_s"] > 0
    assert summary["train_samples"] == 3 * 192  # 3 epochs of the 384 - 2 * 96 training images
    # training_time_s is rounded to 10 ms and a tiny run takes well under a second, so the
    # rate must lie within what that rounding allows, not within a fixed 1%.
    seconds = summary["training_time_s"]
    rate_bounds = (
        summary["train_samples"] / (seconds + 0.005),
        summary["train_samples"] / (seconds - 0.005),
    )
    assert rate_bounds[0] - 0.05 <= summary["train_samples_per_s"] <= rate_bounds[1] + 0.05
    assert summary["test"]["test/acc"] > 0.9
    assert summary["precision"] == "32-true"
    assert json.loads((run_dir / "summary.json").read_text())["best_score"] == summary["best_score"]
    saved = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert saved["optimizer"]["lr"] == 1e-2


def test_the_summary_says_when_early_stopping_ended_the_run(tiny_chars: str) -> None:
    stop_soon = {"monitor": "val/acc", "mode": "max", "patience": 0, "min_delta": 1.0}
    config = tiny_config(tiny_chars)
    config["callbacks"]["early_stopping"] = stop_soon  # no gain of 1.0 in accuracy: stop
    summary = run_experiment(parse_config(config))
    assert summary["ended_by"] == "early_stopping" and summary["epochs"] < 3


def test_checkpoint_rebuilds_model_without_config(tiny_chars: str) -> None:
    summary = run_experiment(parse_config(tiny_config(tiny_chars, trainer={"max_epochs": 1})))
    model = CharClassifier.load_from_checkpoint(summary["best_checkpoint"], weights_only=False)
    assert model.charset.tokens[0] == "<blank>"
    assert model(torch.zeros(2, 1, 28, 28)).shape == (2, len(model.charset))


def test_resume_continues_same_run(tiny_chars: str) -> None:
    # A constant LR: extending max_epochs would otherwise change the schedule's length.
    config = tiny_config(tiny_chars, trainer={"max_epochs": 1}, scheduler={"name": "none"})
    summary = run_experiment(parse_config(config))
    run_dir = Path(summary["run_dir"])
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    config["trainer"]["max_epochs"] = 2
    (run_dir / "config.yaml").write_text(yaml.safe_dump(config))
    resumed = resume_run(run_dir)
    assert resumed["run_dir"] == str(run_dir)
    assert resumed["epochs"] == 2
    assert resumed["training_time_s"] >= summary["training_time_s"]
    assert resumed["train_samples"] == 2 * summary["train_samples"]  # counted across the resume


class SlowBatch(L.Callback):
    """Makes one batch of the first epoch take over a second: a one-second ``max_time``
    stops the run right after it (Lightning's timer checks after our callbacks)."""

    def __init__(self, batch: int) -> None:
        self.batch = batch

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, idx: int
    ) -> None:
        if trainer.current_epoch == 0 and idx == self.batch:
            time.sleep(1.1)


def test_a_max_time_stop_mid_epoch_says_how_far_it_got_and_resumes_there(
    tiny_chars: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Lightning counts an epoch cut short as a whole one (the summary said ``epochs: 1``
    after 4 of 12 batches), and a resume that trains nothing as none (``epochs: 0``); and
    its checkpoint, written as the cut epoch ended, resumed with the next epoch."""
    config = tiny_config(
        tiny_chars,
        scheduler={"name": "none"},
        trainer={"max_epochs": 2, "num_threads": 1, "max_time": "00:00:00:01"},
    )
    run_dir = tmp_path / "run"
    stopped = run_experiment(parse_config(config), run_dir=run_dir, callbacks=[SlowBatch(3)])
    far = ("epochs", "partial_epoch", "global_step")
    assert stopped["ended_by"] == "max_time"
    assert [stopped[k] for k in far] == [0, {"batches": 4, "of": 12}, 4]
    assert "stopped the run at step 4: 0 whole epochs and 4 of 12 batches into epoch 1" in (
        caplog.text
    )

    again = resume_run(run_dir)  # its time is used up: nothing to train, the same report
    assert [again[k] for k in far] == [0, {"batches": 4, "of": 12}, 4]
    assert "nothing was left to train: its trainer.max_time (00:00:00:01) is used up" in (
        caplog.text
    )

    saved = yaml.safe_load((run_dir / "config.yaml").read_text())
    saved["trainer"]["max_time"] = "00:01:00:00"  # what the message says to do
    (run_dir / "config.yaml").write_text(yaml.safe_dump(saved))
    finished = resume_run(run_dir)
    assert finished["ended_by"] == "schedule"
    assert [finished[k] for k in far] == [2, None, 24]  # the first epoch's 8 batches too
    assert finished["train_samples"] == 24 * 16


@pytest.mark.parametrize(
    ("trainer", "message"),
    [
        ({"accelerator": "foo"}, r"refused the trainer settings \(accelerator='foo'.*auto, "),
        ({"devices": "abc"}, r"refused the trainer settings .*devices='abc'"),
        ({"accelerator": "tpu"}, r"refused the trainer settings \(accelerator='tpu'.*torch_xla"),
        ({"val_check_interval": 100}, "val_check_interval = 100 batches, but an epoch here has 12"),
    ],
)
def test_settings_lightning_refuses_are_config_errors(
    tiny_chars: str, trainer: dict, message: str
) -> None:
    """Each was a Lightning traceback (ValueError, TypeError) from `train`."""
    from text_recognizer.errors import ConfigError

    config = tiny_config(tiny_chars, trainer={"max_epochs": 1, "num_threads": 1, **trainer})
    with pytest.raises(ConfigError, match=message):
        run_experiment(parse_config(config))


def test_a_new_run_refuses_a_folder_that_holds_a_run(
    tiny_chars: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """TEXT_RECOGNIZER_RUN_DIR left set (a job script run twice) trained over the run there:
    its checkpoints replaced, its metrics.csv started anew."""
    from text_recognizer.errors import ConfigError

    config = parse_config(tiny_config(tiny_chars, trainer={"max_epochs": 1, "num_threads": 1}))
    first = run_experiment(config, run_dir=tmp_path / "run")
    kept = {p: p.read_bytes() for p in (tmp_path / "run").rglob("*") if p.is_file()}
    monkeypatch.setenv(run.RUN_DIR_ENV, str(tmp_path / "run"))
    with pytest.raises(ConfigError, match=r"holds a run already: resume it with .*--resume"):
        run_experiment(config)
    assert {p: p.read_bytes() for p in (tmp_path / "run").rglob("*") if p.is_file()} == kept
    assert resume_run(Path(first["run_dir"]))["global_step"] == first["global_step"]


OLD_LAST_SAVERS = [
    "ModelCheckpoint{'monitor': None, 'mode': 'min', 'every_n_train_steps': 0, "
    "'every_n_epochs': 1, 'train_time_interval': None}",
    "ModelCheckpoint{'monitor': None, 'mode': 'min', 'every_n_train_steps': 0, "
    "'every_n_epochs': 0, 'train_time_interval': datetime.timedelta(seconds=600)}",
]


def test_a_checkpoint_from_before_last_checkpoint_resumes_without_a_warning(
    tiny_chars: str, tmp_path: Path
) -> None:
    """Lightning warned twice that the callbacks which wrote last.ckpt were missing."""
    import warnings

    config = tiny_config(tiny_chars, trainer={"max_epochs": 1}, scheduler={"name": "none"})
    run_dir = Path(run_experiment(parse_config(config))["run_dir"])
    for name in ("last.ckpt", "best.ckpt"):  # as the code before 2026-12-07 wrote them
        checkpoint = torch.load(run_dir / "checkpoints" / name, weights_only=True)
        checkpoint["callbacks"] = {
            key: value
            for key, value in checkpoint["callbacks"].items()
            if not key.startswith("LastCheckpoint")
        }
        checkpoint["callbacks"].update({key: {"monitor": None} for key in OLD_LAST_SAVERS})
        torch.save(checkpoint, run_dir / "checkpoints" / name)
    saved = yaml.safe_load((run_dir / "config.yaml").read_text())
    saved["trainer"]["max_epochs"] = 2
    (run_dir / "config.yaml").write_text(yaml.safe_dump(saved))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert resume_run(run_dir)["epochs"] == 2
    assert not [w for w in caught if "callbacks used to create the checkpoint" in str(w.message)]


def test_resume_needs_a_run_folder(tmp_path: Path) -> None:
    from text_recognizer.errors import ConfigError

    with pytest.raises(ConfigError, match="not a run folder"):
        resume_run(tmp_path)


def test_a_hand_edited_config_yaml_that_slipped_is_named_on_resume(
    tiny_chars: str, tmp_path: Path
) -> None:
    """The docs suggest editing config.yaml (more epochs, a later max_time): a slip there
    was PyYAML's traceback, and a key given twice kept the last silently."""
    (run_dir := tmp_path / "run").mkdir()
    config_file = run_dir / "config.yaml"
    text = yaml.safe_dump(tiny_config(tiny_chars))
    config_file.write_text(text + "trainer: {max_epochs: [\n")
    with pytest.raises(ConfigError, match=r"(?s)config\.yaml is not valid YAML: .*line \d+"):
        resume_run(run_dir)
    config_file.write_text(text + "seed: 4\n")
    with pytest.raises(ConfigError, match=r"key 'seed' is given twice"):
        resume_run(run_dir)
    config_file.write_text(text.replace("max_epochs: 3", "max_epochs: three"))
    with pytest.raises(
        ConfigError, match=r"(?s)run/config\.yaml: invalid experiment config:.*max_epochs"
    ):
        resume_run(run_dir)


def test_a_run_stopped_while_testing_says_so_and_a_resume_tests_it(
    tiny_chars: str, tmp_path: Path
) -> None:
    """Ctrl-C during the test after training ended left `train` with exit 1 and no word:
    Lightning ends its test with SystemExit, which only the fit was caught for."""
    import signal

    class CtrlC(L.Callback):
        def on_test_batch_start(self, *args: Any, **kwargs: Any) -> None:
            raise KeyboardInterrupt

    config = parse_config(tiny_config(tiny_chars, trainer={"max_epochs": 1, "num_threads": 1}))
    handler = signal.getsignal(signal.SIGINT)
    try:
        with pytest.raises(run.TrainingInterruptedError) as stopped:
            run_experiment(config, run_dir=tmp_path / "run", callbacks=[CtrlC()])
    finally:
        signal.signal(signal.SIGINT, handler)  # Lightning ignores Ctrl-C while it shuts down
    assert stopped.value.exit_code == 130
    assert str(stopped.value) == (
        "testing stopped (interrupted) after training ended; to test and write its "
        f"summary.json: text-recognizer train --resume {tmp_path / 'run'}"
    )
    assert not (tmp_path / "run" / "summary.json").exists()
    summary = resume_run(tmp_path / "run")
    assert summary["epochs"] == 1 and "test/acc" in summary["test"]


def test_a_run_that_fails_before_writing_anything_leaves_no_folder(
    tiny_chars: str, tmp_path: Path
) -> None:
    from text_recognizer.errors import ConfigError

    config = tiny_config(tiny_chars)
    config["data"]["args"]["no_such_argument"] = 1
    with pytest.raises(ConfigError):
        run_experiment(parse_config(config))
    assert not list((tmp_path / "runs" / "tests" / "tiny").iterdir())  # no empty <time> folder


def test_a_run_refused_before_its_first_step_leaves_its_folder_free(
    tiny_chars: str, tmp_path: Path
) -> None:
    """Its config.yaml would refuse the corrected run there as "a run already"."""
    short = tiny_config(tiny_chars, trainer={"max_epochs": 1, "limit_train_batches": 1})
    with pytest.raises(ConfigError, match="onecycle needs at least 4 training steps"):
        run_experiment(parse_config(short), run_dir=tmp_path / "run")
    assert not (tmp_path / "run").exists()
    fixed = tiny_config(tiny_chars, trainer={"max_epochs": 1, "num_threads": 1})
    assert run_experiment(parse_config(fixed), run_dir=tmp_path / "run")["global_step"] > 0


def test_summary_says_whether_the_code_was_modified(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """git_commit alone cannot rebuild a run trained from a modified checkout: say so."""
    monkeypatch.chdir(tmp_path)
    assert git_commit() is None and git_dirty() is None  # not a checkout
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid"]
    subprocess.run([*git, "init", "-q"], check=True)
    (tmp_path / "model.py").write_text("a = 1\n")
    subprocess.run([*git, "add", "model.py"], check=True)
    subprocess.run([*git, "commit", "-qm", "one"], check=True)
    (tmp_path / "notes.txt").write_text("untracked files do not count\n")
    assert git_commit() is not None and git_dirty() is False
    (tmp_path / "model.py").write_text("a = 2\n")
    assert git_dirty() is True


def test_summary_names_the_commit_the_run_started_from(
    tiny_chars: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A checkout that moves on while a run trains (a commit, a merge) is not its code."""
    head = {"commit": "started-here"}
    monkeypatch.setattr(run, "git_commit", lambda: head["commit"])

    class CommitDuringTraining(L.Callback):
        def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
            head["commit"] = "committed-while-training"

    config = parse_config(tiny_config(tiny_chars, trainer={"max_epochs": 1}))
    summary = run_experiment(config, callbacks=[CommitDuringTraining()])
    assert summary["git_commit"] == "started-here"


@pytest.mark.parametrize(("native", "expected"), [(True, "bf16-mixed"), (False, "32-true")])
def test_precision_auto_uses_bfloat16_only_where_the_cpu_computes_in_it(
    monkeypatch: pytest.MonkeyPatch, native: bool, expected: str
) -> None:
    monkeypatch.setattr(run, "cpu_has_bf16", lambda: native)
    assert run.resolve_precision("auto", "cpu") == expected
    assert run.resolve_precision("32-true", "cpu") == "32-true"


def test_explicit_bf16_on_a_cpu_without_it_is_kept_with_a_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(run, "cpu_has_bf16", lambda: False)
    with caplog.at_level("WARNING", logger="text_recognizer.training.run"):
        assert run.resolve_precision("bf16-mixed", "cpu") == "bf16-mixed"
    assert "no bfloat16 instructions" in caplog.text and "precision: auto" in caplog.text
    monkeypatch.setattr(run, "cpu_has_bf16", lambda: True)
    caplog.clear()
    with caplog.at_level("WARNING", logger="text_recognizer.training.run"):
        run.resolve_precision("bf16-mixed", "cpu")
    assert not caplog.text


def test_a_run_with_precision_auto_records_what_it_trained_in(
    tiny_chars: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(run, "cpu_has_bf16", lambda: False)
    config = tiny_config(tiny_chars)
    config["trainer"] = {**config["trainer"], "max_epochs": 1, "precision": "auto"}
    summary = run_experiment(parse_config(config))
    assert summary["precision"] == "32-true"
    saved = yaml.safe_load((Path(summary["run_dir"]) / "config.yaml").read_text())
    assert saved["trainer"]["precision"] == "auto"  # a resume on another host decides anew


def test_resumed_csv_logger_keeps_rows_before_the_checkpoint(tmp_path: Path) -> None:
    """Lightning deletes metrics.csv when its logger opens the folder; ours keeps the rows
    logged before the resumed step, also from the copy a kill mid-way would leave."""
    from text_recognizer.training.run import MetricsCsvLogger

    rows = "epoch,step,val/cer\n0,99,0.5\n0,199,0.4\n0,299,0.3\n"
    for name in ("metrics.csv", ".metrics.csv.kept"):
        (tmp_path / name).write_text(rows)
        logger = MetricsCsvLogger(tmp_path, resume_step=200)
        logger.log_metrics({"val/cer": 0.2}, step=249)
        logger.save()
        lines = (tmp_path / "metrics.csv").read_text().splitlines()
        assert [line.split(",")[1] for line in lines[1:]] == ["99", "199", "249"], name
        assert not (tmp_path / ".metrics.csv.kept").exists()
        (tmp_path / "metrics.csv").unlink()


@pytest.mark.parametrize(
    ("error", "advice"),
    [
        (OSError(28, "No space left on device", "/tmp/x", None, "/runs/g/n/t/.last.ckpt.1.tmp"),
         r"\(/runs/g/n/t/\.last\.ckpt\.1\.tmp\): No space left on device; free space there"),
        (OSError(30, "Read-only file system", "/runs/g"),
         r"\(/runs/g\): Read-only file system; set TEXT_RECOGNIZER_RUNS to a folder you can"),
    ],
)  # fmt: skip
def test_a_run_folder_that_cannot_be_written_gets_advice_that_fits(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, error: OSError, advice: str
) -> None:
    """A read-only runs folder was told to 'free space'."""
    import re

    from typer.testing import CliRunner

    from text_recognizer.cli import app

    def refuse(*args: object, **kwargs: object) -> None:
        raise error

    monkeypatch.setattr(run, "train_from_config", refuse)
    result = CliRunner().invoke(app, ["train", str(tmp_path / "any.yaml")])
    assert result.exit_code == 1
    assert re.search("cannot write the run " + advice, " ".join(result.output.split()))
