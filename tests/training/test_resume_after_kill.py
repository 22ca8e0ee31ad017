"""Exact resume: a run killed with SIGKILL mid-epoch and resumed ends where an unbroken run ends.

The killed run is a real ``text-recognizer train`` process (``tests.training.fake_cli``),
stalled at a known batch in the middle of its second epoch and killed there, so the test
does not depend on timing. Its ``last.ckpt`` is the batch before (a checkpoint after
every batch: ``last_every_minutes: 0``); the resume continues from there and must
reproduce the unbroken run bit for bit. In-process twins crash instead of being killed,
with checkpoints at epoch ends only or mid-epoch, on characters and on lines (whose
loader is width-bucketed and whose batches are augmented with random numbers).
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import lightning as L
import pytest
import torch
import yaml
from typer.testing import CliRunner

from tests.training.fake_cli import StallAfterBatch
from text_recognizer.cli import app
from text_recognizer.errors import ConfigError
from text_recognizer.training import callbacks, run
from text_recognizer.training.callbacks import AtomicCheckpointIO
from text_recognizer.training.config import ExperimentConfig, parse_config
from text_recognizer.training.run import RUN_DIR_ENV, latest_run, resume_run, run_experiment

REPO = Path(__file__).resolve().parents[2]

CONFIG = {
    "name": "killed",
    "group": "tests",
    "seed": 5,
    "data": {"name": "tiny_chars", "args": {"size": 384}, "batch_size": 16},  # 12 batches/epoch
    # LeNet has dropout, and OneCycle changes the LR every step: RNG and scheduler state matter.
    "network": {"name": "lenet", "args": {"channels": [8, 16], "fc_dim": 32}},
    "optimizer": {"name": "adamw", "lr": 1e-2},
    "scheduler": {"name": "onecycle"},
    "callbacks": {
        "checkpoint": {"monitor": "val/acc", "mode": "max"},
        "early_stopping": None,
        "progress_bar": "none",
    },
    "trainer": {"max_epochs": 3, "num_threads": 1, "deterministic": True},
}


LINES_CONFIG = {
    "name": "killed_lines",
    "group": "tests",
    "seed": 5,
    "data": {
        "name": "tiny_lines",
        "args": {"size": 320, "width_stretch": [0.8, 1.25], "page_cuts": 0.5, "fine_pens": 0.5},
        "batch_size": 16,
    },  # 10 batches/epoch
    "network": {"name": "crnn", "args": {"channels": [4, 8, 8, 16], "lstm_hidden": 16}},
    "model": {"name": "ctc"},
    "optimizer": {"name": "adamw", "lr": 1e-2},
    "scheduler": {"name": "onecycle"},
    "callbacks": {
        "checkpoint": {"monitor": "val/cer", "mode": "min"},
        "early_stopping": None,
        "progress_bar": "none",
    },
    # Validation mid-epoch as well: a resume must not skip or repeat one.
    "trainer": {
        "max_epochs": 3,
        "num_threads": 1,
        "deterministic": True,
        "val_check_interval": 0.5,
    },
}


def start_cli(args: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.training.fake_cli", *args],
        cwd=REPO,
        env={**os.environ, "OMP_NUM_THREADS": "1", **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def wait_for_line(process: subprocess.Popen[str], marker: str, timeout: float) -> list[str]:
    assert process.stdout is not None
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line and process.poll() is not None:
            break
        seen.append(line)
        if marker in line:
            return seen
    process.kill()
    raise AssertionError(f"no {marker!r} from the training process:\n{''.join(seen)[-3000:]}")


def final_weights(run_dir: Path) -> dict[str, torch.Tensor]:
    checkpoint = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    raw = checkpoint.get("current_model_state", {})  # the un-averaged weights, with ema
    return {**checkpoint["state_dict"], **{f"raw.{k}": v for k, v in raw.items()}}


def metric_rows(run_dir: Path) -> list[dict[str, str]]:
    """metrics.csv, without the epoch means of training metrics: Lightning does not
    checkpoint its running means, so after a mid-epoch resume they cover the batches
    trained since (per-step values, validation metrics and the weights are exact)."""
    with (run_dir / "metrics.csv").open(newline="") as f:
        rows = [
            {k: v for k, v in row.items() if not k.startswith("train/") or k.endswith("_step")}
            for row in csv.DictReader(f)
        ]
    return sorted(rows, key=lambda row: sorted(row.items()))


def assert_same_run(resumed: dict, unbroken: dict) -> None:
    for key in ("epochs", "global_step", "best_score", "test"):
        assert resumed[key] == unbroken[key], key
    # metrics.csv keeps what was logged before the kill: the same rows as the unbroken run's
    assert metric_rows(Path(resumed["run_dir"])) == metric_rows(Path(unbroken["run_dir"]))
    expected = final_weights(Path(unbroken["run_dir"]))
    actual = final_weights(Path(resumed["run_dir"]))
    assert expected.keys() == actual.keys()
    for name, tensor in expected.items():
        torch.testing.assert_close(actual[name], tensor, rtol=0, atol=1e-6, msg=name)


class Crash(StallAfterBatch):
    def on_train_batch_end(self, trainer: L.Trainer, *args: object) -> None:
        if trainer.current_epoch == self.epoch and args[-1] == self.batch:
            raise RuntimeError("simulated crash")


class CrashInValidation(L.Callback):
    """Crashes in the middle of the epoch's first validation (after the sanity check)."""

    def __init__(self, epoch: int, batch: int) -> None:
        self.epoch, self.batch = epoch, batch

    def on_validation_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: object,
        batch: object,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        if not trainer.sanity_checking and (trainer.current_epoch, batch_idx) == (
            self.epoch,
            self.batch,
        ):
            raise RuntimeError("simulated crash")


def with_callbacks(config: dict, **changes: object) -> dict:
    return {**config, "callbacks": {**config["callbacks"], **changes}}


def every_batch(config: dict, **changes: object) -> dict:
    """``config`` writing ``last.ckpt`` after every batch as well as at epoch ends."""
    checkpoint = {**config["callbacks"]["checkpoint"], "last_every_minutes": 0}
    return with_callbacks(config, checkpoint=checkpoint, **changes)


def validating_twice_an_epoch(config: dict) -> dict:
    return {**config, "trainer": {**config["trainer"], "val_check_interval": 0.5}}


def watching_the_loss(config: dict) -> dict:
    """The best checkpoint by val/loss: with OneCycle the last validation is the best."""
    checkpoint = {**config["callbacks"]["checkpoint"], "monitor": "val/loss", "mode": "min"}
    return with_callbacks(config, checkpoint=checkpoint)


@pytest.mark.parametrize(
    ("config", "crash", "saved_step"),
    [
        pytest.param(CONFIG, Crash(1, 6), 12, id="chars-epoch-end"),
        pytest.param(every_batch(CONFIG), Crash(1, 6), 18, id="chars-mid-epoch"),
        pytest.param(
            every_batch(CONFIG, ema={"decay": 0.9}),
            Crash(1, 6),
            18,
            id="chars-mid-epoch-ema",
        ),
        pytest.param(LINES_CONFIG, Crash(1, 6), 10, id="lines-epoch-end"),
        pytest.param(every_batch(LINES_CONFIG), Crash(1, 6), 16, id="lines-mid-epoch"),
        # Saved after the validation that follows batch 4: the resume does not repeat it.
        pytest.param(every_batch(LINES_CONFIG), Crash(1, 5), 15, id="lines-after-validation"),
        # Killed during a validation: the resume starts from the batch before it and runs
        # it. A checkpoint written between that batch and its validation (step 18, 36)
        # resumed past it: the validation was missing from metrics.csv and, the run's last
        # one, from the best checkpoint and the test figures.
        pytest.param(
            validating_twice_an_epoch(every_batch(CONFIG)),
            CrashInValidation(1, 1),
            17,
            id="chars-during-mid-epoch-validation",
        ),
        pytest.param(
            watching_the_loss(every_batch(CONFIG)),
            CrashInValidation(2, 1),
            35,
            id="chars-during-last-validation",
        ),
    ],
)
def test_crash_mid_epoch_then_resume_equals_unbroken_run(
    config: dict,
    crash: L.Callback,
    saved_step: int,
    tiny_chars: str,
    tiny_lines: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The in-process twin of the SIGKILL test below: fast, same guarantee.

    A crash in the second epoch leaves ``last.ckpt`` at the end of the first epoch, or
    at the batch before the crash when it is written every batch. With a weight average,
    both the raw weights and the average must continue exactly.
    """
    parsed = parse_config(config)
    build_callbacks = run.build_callbacks

    def crashing(config: ExperimentConfig, run_dir: Path) -> list[L.Callback]:
        return [*build_callbacks(config, run_dir), crash]

    monkeypatch.setattr(run, "build_callbacks", crashing)
    with pytest.raises(RuntimeError, match="simulated crash"):
        run_experiment(parsed, run_dir=tmp_path / "crashed")
    monkeypatch.setattr(run, "build_callbacks", build_callbacks)
    saved = torch.load(tmp_path / "crashed" / "checkpoints" / "last.ckpt", weights_only=True)
    assert saved["global_step"] == saved_step

    resumed = resume_run(tmp_path / "crashed")
    unbroken = run_experiment(parsed, run_dir=tmp_path / "unbroken")
    assert_same_run(resumed, unbroken)


@pytest.mark.slow
def test_sigkill_mid_epoch_then_resume_equals_unbroken_run(tiny_chars: str, tmp_path: Path) -> None:
    config = every_batch(CONFIG)
    config_file = tmp_path / "killed.yaml"
    config_file.write_text(yaml.safe_dump(config))
    killed_dir = tmp_path / "runs" / "killed"

    # Kill it after batch 6 of epoch 1 (0-based): well inside the second epoch.
    process = start_cli(
        ["train", str(config_file)], {RUN_DIR_ENV: str(killed_dir), "FAKE_CLI_STALL": "1:6"}
    )
    try:
        wait_for_line(process, "STALLED", timeout=120)
        os.kill(process.pid, signal.SIGKILL)
        assert process.wait(timeout=30) == -signal.SIGKILL
    finally:
        if process.poll() is None:
            process.kill()
        assert process.stdout is not None
        process.stdout.close()
    assert not (killed_dir / "summary.json").exists()
    saved = torch.load(killed_dir / "checkpoints" / "last.ckpt", weights_only=True)
    assert saved["global_step"] == 18, "last.ckpt should be batch 5 of the second epoch"

    # Resume through the real CLI, in a fresh process, as a user would.
    resumed = subprocess.run(
        [sys.executable, "-m", "tests.training.fake_cli", "train", "--resume", str(killed_dir)],
        cwd=REPO,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    resumed_summary = json.loads((killed_dir / "summary.json").read_text())

    unbroken_summary = run_experiment(parse_config(config), run_dir=tmp_path / "runs" / "unbroken")

    assert_same_run(resumed_summary, unbroken_summary)
    # Both segments of the killed run count towards its training time.
    assert resumed_summary["training_time_s"] > 0


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["sigint", "sigterm"])
def test_a_signal_stops_training_with_its_exit_code_and_how_to_resume(
    signum: int, tiny_chars: str, tmp_path: Path
) -> None:
    """SIGTERM once ended a run with exit 0 and no word (a scheduler took it for done), Ctrl-C
    with exit 1 and no word; and nothing kept a second process from training the folder."""
    config_file = tmp_path / "killed.yaml"
    config_file.write_text(yaml.safe_dump(every_batch(CONFIG)))
    run_dir = tmp_path / "runs" / "stopped"
    process = start_cli(
        ["train", str(config_file)], {RUN_DIR_ENV: str(run_dir), "FAKE_CLI_STALL": "1:6"}
    )
    try:
        wait_for_line(process, "STALLED", timeout=120)
        with pytest.raises(ConfigError, match="is being trained by another process"):
            resume_run(run_dir)
        os.kill(process.pid, signum)
        output = process.communicate(timeout=120)[0]
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == (130 if signum == signal.SIGINT else 143), output[-3000:]
    assert f"resume with: text-recognizer train --resume {run_dir}" in " ".join(output.split())
    assert not (run_dir / "summary.json").exists()


@pytest.mark.parametrize("content", [b"", b"\x80\x02garbage" * 50], ids=["empty", "garbage"])
def test_resuming_from_an_unreadable_checkpoint_without_a_best_one_says_so(
    content: bytes, tmp_path: Path
) -> None:
    from text_recognizer.training.config import dump_config

    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "config.yaml").write_text(dump_config(parse_config(CONFIG)))
    (tmp_path / "checkpoints" / "last.ckpt").write_bytes(content)
    with pytest.raises(
        ConfigError,
        match=r"last\.ckpt is unreadable .*; best\.ckpt does not exist\. Start it again",
    ):
        resume_run(tmp_path)


def watching_the_worst(config: dict) -> dict:
    """``best.ckpt`` kept at the first validation (the worst score, mode flipped), so that
    it is well behind ``last.ckpt`` when that is lost."""
    checkpoint = dict(config["callbacks"]["checkpoint"])
    checkpoint["mode"] = "min" if checkpoint["mode"] == "max" else "max"
    return with_callbacks(config, checkpoint=checkpoint)


@pytest.mark.parametrize(
    ("config", "best_step"),
    [
        pytest.param(watching_the_worst(CONFIG), 12, id="chars-best-at-epoch-end"),
        # Validation twice an epoch: best.ckpt is saved at the end of one mid-epoch.
        pytest.param(watching_the_worst(LINES_CONFIG), 5, id="lines-best-mid-epoch"),
    ],
)
def test_a_damaged_last_checkpoint_resumes_from_best_and_ends_as_unbroken(
    config: dict,
    best_step: int,
    tiny_chars: str,
    tiny_lines: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A truncated ``last.ckpt`` (a disk that filled, a copy cut short) stopped the resume,
    and the advice was a new run from the best weights: its optimizer, schedule and data
    position started afresh. ``best.ckpt`` holds the whole training state too."""
    parsed = parse_config(config)
    build_callbacks = run.build_callbacks

    def crashing(config: ExperimentConfig, run_dir: Path) -> list[L.Callback]:
        return [*build_callbacks(config, run_dir), Crash(2, 3)]

    monkeypatch.setattr(run, "build_callbacks", crashing)
    with pytest.raises(RuntimeError, match="simulated crash"):
        run_experiment(parsed, run_dir=tmp_path / "damaged")
    monkeypatch.setattr(run, "build_callbacks", build_callbacks)
    folder = tmp_path / "damaged" / "checkpoints"
    assert torch.load(folder / "best.ckpt", weights_only=True)["global_step"] == best_step
    whole = (folder / "last.ckpt").read_bytes()
    (folder / "last.ckpt").write_bytes(whole[: len(whole) // 2])

    with caplog.at_level("WARNING", logger="text_recognizer"):
        resumed = resume_run(tmp_path / "damaged")
    said = " ".join(caplog.text.split())
    assert "last.ckpt is unreadable" in said and "kept as last.ckpt.unreadable" in said
    resumed_from = f"resuming from {folder / 'best.ckpt'}, saved at step {best_step}, with"
    assert f"{resumed_from} the whole training state;" in said
    assert (folder / "last.ckpt.unreadable").read_bytes() == whole[: len(whole) // 2]
    unbroken = run_experiment(parsed, run_dir=tmp_path / "unbroken")
    assert_same_run(resumed, unbroken)


def test_failed_save_keeps_previous_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "checkpoints" / "last.ckpt"
    io = AtomicCheckpointIO()
    io.save_checkpoint({"step": 1, "weights": torch.ones(1000)}, path)

    def crash_half_way(checkpoint: dict, target: Path) -> None:
        Path(target).write_bytes(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(callbacks, "_atomic_save", crash_half_way)
    with pytest.raises(OSError, match="disk full"):
        io.save_checkpoint({"step": 2, "weights": torch.zeros(1000)}, path)
    kept = torch.load(path, weights_only=True)
    assert kept["step"] == 1 and bool((kept["weights"] == 1).all())
    assert [p.name for p in path.parent.iterdir()] == ["last.ckpt"], "temporary file left behind"


SAVE_LOOP = """
import sys, torch
from text_recognizer.training.callbacks import AtomicCheckpointIO
io, path = AtomicCheckpointIO(), sys.argv[1]
for step in range(1_000_000):
    io.save_checkpoint({"step": step, "weights": torch.full((2_000_000,), float(step))}, path)
    print(step, flush=True)
"""


@pytest.mark.slow
def test_sigkill_during_save_never_corrupts_last_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "last.ckpt"
    process = subprocess.Popen(
        [sys.executable, "-c", SAVE_LOOP, str(path)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "0"  # one complete checkpoint exists
        # Kill while the next save is being written (its temporary file exists).
        deadline = time.monotonic() + 30
        while not list(tmp_path.glob(".last.ckpt.*.tmp")) and time.monotonic() < deadline:
            time.sleep(0.001)
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
        if process.stdout is not None:
            process.stdout.close()
    checkpoint = torch.load(path, weights_only=True)
    assert bool((checkpoint["weights"] == checkpoint["step"]).all())


def test_latest_run_orders_by_time_then_suffix(tmp_path: Path) -> None:
    for name in ("20261125-101500", "20261125-101500-2", "20261125-101500-10", "20261124-235959"):
        (tmp_path / "runs" / "g" / "n" / name).mkdir(parents=True)
        (tmp_path / "runs" / "g" / "n" / name / "config.yaml").write_text("{}")
    assert latest_run("g", "n").name == "20261125-101500-10"
    assert latest_run().name == "20261125-101500-10"
    with pytest.raises(ConfigError, match="no run of g/other"):
        latest_run("g", "other")


def test_cli_resume_last_continues_the_newest_run_of_the_config(
    tiny_chars: str, tmp_path: Path
) -> None:
    config = {**CONFIG, "trainer": {**CONFIG["trainer"], "max_epochs": 1}}
    config_file = tmp_path / "exp.yaml"
    config_file.write_text(yaml.safe_dump(config))
    older = run_experiment(
        parse_config(config), run_dir=tmp_path / "runs/tests/killed/20200101-000000"
    )
    newest = run_experiment(parse_config(config))
    assert Path(newest["run_dir"]) != Path(older["run_dir"])

    result = CliRunner().invoke(app, ["train", str(config_file), "--resume", "last"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["run_dir"] == newest["run_dir"]
    result = CliRunner().invoke(
        app, ["train", str(config_file), "--resume", "last", "--set", "optimizer.lr=1"]
    )
    assert result.exit_code == 1 and "exact resume takes the run's own config" in result.output


def one_epoch(config: dict) -> dict:
    return {**config, "trainer": {**config["trainer"], "max_epochs": 1}}


@pytest.mark.parametrize(
    ("edit", "named"),
    [
        # The restored optimizer kept its own learning rate: the edit was silently ignored.
        ({"optimizer": {"name": "adamw", "lr": 0.02}}, r"optimizer\.lr: 0\.01 -> 0\.02"),
        # The data position counted batches of the old size: the run skipped half an epoch.
        ({"data": {**CONFIG["data"], "batch_size": 32}}, r"data\.batch_size: 16 -> 32"),
    ],
    ids=["lr", "batch-size"],
)
def test_resuming_a_run_whose_config_yaml_was_edited_names_the_edit(
    edit: dict, named: str, tiny_chars: str, tmp_path: Path
) -> None:
    run_dir = tmp_path / "run"
    run_experiment(parse_config(one_epoch(CONFIG)), run_dir=run_dir)
    config_file = run_dir / "config.yaml"
    config_file.write_text(yaml.safe_dump({**yaml.safe_load(config_file.read_text()), **edit}))
    with pytest.raises(ConfigError, match=rf"config\.yaml was edited .*{named}.*init\.weights="):
        resume_run(run_dir)


def test_resuming_with_more_max_time_is_not_an_edit(tiny_chars: str, tmp_path: Path) -> None:
    """``trainer.max_time`` is how a run that it stopped is given more time."""
    run_dir = tmp_path / "run"
    trained = run_experiment(parse_config(one_epoch(CONFIG)), run_dir=run_dir)
    config_file = run_dir / "config.yaml"
    config = yaml.safe_load(config_file.read_text())
    config["trainer"]["max_time"] = "00:01:00:00"
    config_file.write_text(yaml.safe_dump(config))
    assert resume_run(run_dir)["global_step"] == trained["global_step"]


def test_a_resume_deletes_the_half_written_saves_of_killed_processes(
    tiny_chars: str, tmp_path: Path
) -> None:
    """A process killed while saving leaves its temporary file, as large as a checkpoint;
    a run killed again and again filled its folder with them."""
    run_dir = tmp_path / "run"
    run_experiment(parse_config(one_epoch(CONFIG)), run_dir=run_dir)
    left = run_dir / "checkpoints" / ".last.ckpt.12345.tmp"
    left.write_bytes(b"half a checkpoint")
    resume_run(run_dir)
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == ["best.ckpt", "last.ckpt"]


def test_sigterm_before_training_starts_stops_the_run_and_leaves_no_folder(
    tiny_chars: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Outside Lightning's fit, SIGTERM killed the process without a word and left a folder
    with a config.yaml and no checkpoint, which could not be resumed."""
    build_trainer = run.build_trainer

    def terminated_while_building(*args: object, **kwargs: object) -> L.Trainer:
        trainer = build_trainer(*args, **kwargs)  # type: ignore[arg-type]
        os.kill(os.getpid(), signal.SIGTERM)
        return trainer

    def not_taken(signum: int, frame: object) -> None:  # rather than end pytest's process
        raise AssertionError("the run left SIGTERM to the handler it found")

    monkeypatch.setattr(run, "build_trainer", terminated_while_building)
    before = signal.signal(signal.SIGTERM, not_taken)
    try:
        with pytest.raises(run.TrainingInterruptedError, match="SIGTERM") as stopped:
            run_experiment(parse_config(CONFIG), run_dir=tmp_path / "run")
        assert signal.getsignal(signal.SIGTERM) is not_taken
    finally:
        signal.signal(signal.SIGTERM, before)
    assert stopped.value.exit_code == 143
    assert not (tmp_path / "run").exists()
