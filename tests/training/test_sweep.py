"""Sweeps: the sweep file's schema without Ray, and real Ray Tune sweeps of tiny trainings."""

from __future__ import annotations

import json
import shlex
import shutil
import tempfile
import textwrap
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from typer.testing import CliRunner

from text_recognizer.cli import app
from text_recognizer.errors import ConfigError, TextRecognizerError
from text_recognizer.training.config import load_config
from text_recognizer.training.sweep import (
    base_config,
    best_command,
    best_first,
    load_sweep,
    run_sweep,
    search_space,
    trial_config,
    trial_row,
    unfinished_run,
)

runner = CliRunner()

# Real data, tiny: every Ray worker builds it by name (no test-only registration there).
BASE = """
name: tiny
seed: 1
data:
  name: synthetic_chars
  args: {num_train: 256, num_val: 64, num_test: 64}
  batch_size: 64
network: {name: lenet}
model: {name: classifier}
optimizer: {name: adamw, lr: 1.0e-3}
callbacks:
  checkpoint: {monitor: val/acc, mode: max}
  progress_bar: none
trainer: {max_epochs: 2, num_threads: 1}
"""


def write_sweep(folder: Path, text: str) -> Path:
    (folder / "base.yaml").write_text(BASE)
    path = folder / "sweep.yaml"
    path.write_text(textwrap.dedent(text))
    return path


@pytest.mark.parametrize(
    ("search", "extra", "message"),
    [
        ("optimizer.lr: {normal: [0, 1]}", "", "search.optimizer.lr must be one of"),
        ("optimizer.lr: {uniform: [0.1]}", "", "must be [low, high] with low < high"),
        ("optimizer.lr: {loguniform: [0, 1]}", "", "needs a low above 0"),
        ("optimizer.lr: {uniform: [0, 1]}", "algorithm: grid", "grid takes lists"),
        ("optimizer.lr: {grid: [1, 2]}", "algorithm: bayes", "bayes cannot take grid"),
        ("network.args.channels: {choice: [8]}", "algorithm: pbt", "copies weights"),
        ("name: {choice: [a, b]}", "", "the sweep names its trials"),
        ("optimizer.lr: {choice: [1]}", "searcher: tpe", "unknown key 'searcher'"),
        ("optimizer.lr: {uniform: [low, 1]}", "", "uniform takes numbers: [low, high]"),
        ("optimizer.lr: {loguniform: [1e-4, 1.0]}", "", "YAML reads 1e-3 as text"),
        ("trainer.max_epochs: {randint: [1, 2.5]}", "", "randint takes whole numbers"),
    ],
)
def test_a_bad_sweep_file_says_what_is_wrong(
    tmp_path: Path, search: str, extra: str, message: str
) -> None:
    path = write_sweep(tmp_path, f"sweep: s\nbase: base.yaml\nsearch:\n  {search}\n{extra}\n")
    with pytest.raises(ConfigError, match="invalid sweep") as caught:
        load_sweep(path)
    assert message in str(caught.value)


def test_a_base_that_is_not_there_is_named_as_the_sweep_file_wrote_it(tmp_path: Path) -> None:
    (tmp_path / "sweeps").mkdir()
    path = write_sweep(
        tmp_path / "sweeps", "sweep: s\nbase: lenet.yaml\nsearch: {a: {choice: [1]}}"
    )
    with pytest.raises(ConfigError) as caught:
        load_sweep(path)
    assert str(caught.value) == (
        f"sweep {path}: its base {tmp_path / 'sweeps' / 'lenet.yaml'} does not exist "
        f"(base: lenet.yaml, read relative to the sweep file's folder); fix base in {path}"
    )


def test_every_problem_of_the_search_is_reported_at_once(tmp_path: Path) -> None:
    path = write_sweep(
        tmp_path,
        """
        sweep: s
        base: base.yaml
        search:
          optimizer.lr: {lognormal: [1.0e-4, 1.0e-2]}
          optimizer.weight_decay: {uniform: [0.1, 0.01]}
          data.batch_size: {choice: []}
          trainer.max_epochs: {randint: [3, 3]}
        algorithm: pbt
        scheduler: asha
        """,
    )
    with pytest.raises(ConfigError) as caught:
        load_sweep(path)
    lines = str(caught.value).splitlines()
    assert lines[1:6] == [
        "  search.optimizer.lr must be one of {choice, grid, uniform, loguniform, randint}",
        "  search.optimizer.weight_decay.uniform must be [low, high] with low < high",
        "  search.data.batch_size.choice needs values",
        "  search.trainer.max_epochs.randint must be [low, high] with low < high",
        "  pbt is its own scheduler: leave scheduler at fifo",
    ]


def test_search_space_and_trial_configs(tmp_path: Path) -> None:
    from ray import tune

    path = write_sweep(
        tmp_path,
        """
        sweep: s
        base: base.yaml
        set: {trainer.max_epochs: 3}
        search:
          optimizer.lr: {loguniform: [1.0e-4, 1.0e-2]}
          data.batch_size: {choice: [32, 64]}
          optimizer.weight_decay: {grid: [0.0, 0.1]}
        """,
    )
    sweep = load_sweep(path)
    assert sweep.base == tmp_path / "base.yaml"
    space = search_space(sweep)
    assert isinstance(space["optimizer.lr"], tune.search.sample.Float)
    assert space["optimizer.weight_decay"] == {"grid_search": [0.0, 0.1]}
    base = base_config(sweep)
    assert base["trainer"]["max_epochs"] == 3 and base["group"] == "s"
    config = trial_config(base, {"optimizer.lr": 0.003, "data.batch_size": 32}, "trial_00001")
    assert config.optimizer.lr == 0.003 and config.data.batch_size == 32
    assert config.name == "trial_00001" and config.group == "s"
    assert base["optimizer"]["lr"] == 1.0e-3  # the base is left as it was
    with pytest.raises(ConfigError, match=r"data\.batch_size"):
        trial_config(base, {"data.batch_size": "many"}, "trial_00002")


def test_the_best_trial_has_a_train_command_with_its_values_in_full(tmp_path: Path) -> None:
    path = write_sweep(
        tmp_path,
        """
        sweep: s
        base: base.yaml
        set: {trainer.max_epochs: 1}
        search:
          optimizer.lr: {loguniform: [1.0e-4, 1.0e-2]}
          network.args.channels: {choice: [[8, 16], [16, 32]]}
          data.name: {choice: [synthetic_chars, "yes"]}
        """,
    )
    sweep = load_sweep(path)
    params = {
        "optimizer.lr": 0.0018789852661499496,
        "network.args.channels": [16, 32],
        "data.name": "yes",
    }
    rows = [{"params": params, "best": 0.5}, {"params": dict.fromkeys(params), "best": None}]
    command = best_command(sweep, rows)
    assert command is not None
    program, verb, base, *sets = shlex.split(command)
    assert [program, verb, base] == ["text-recognizer", "train", str(tmp_path / "base.yaml")]
    assert sets[::2] == ["--set"] * 3
    config = load_config(Path(base), sets[1::2]).model_dump(mode="json")
    assert config["optimizer"]["lr"] == params["optimizer.lr"]  # not the table's 0.001879
    assert config["network"]["args"]["channels"] == [16, 32]
    assert config["data"]["name"] == "yes"  # quoted: YAML would read it as true
    assert config["trainer"]["max_epochs"] == 2  # the base's: the sweep's set shortens trials
    assert best_command(sweep, rows[1:]) is None and best_command(sweep, []) is None


def test_a_trial_whose_metric_is_never_finite_is_listed_last_as_diverged(tmp_path: Path) -> None:
    """NaN compared as neither better nor worse: a diverged trial topped the table, and the
    best trial's command trained with its learning rate of 1e30."""
    import pandas as pd

    path = write_sweep(
        tmp_path,
        """
        sweep: s
        base: base.yaml
        search:
          optimizer.lr: {choice: [1.0e+30, 1.0e-3]}
        metric: val/loss
        mode: min
        """,
    )
    sweep = load_sweep(path)

    def result(trial: str, lr: float, losses: list[float]) -> SimpleNamespace:
        return SimpleNamespace(
            metrics_dataframe=pd.DataFrame({"val/loss": losses}),
            metrics={"epoch": len(losses), "run_dir": str(tmp_path / trial), "done": True},
            config={"optimizer.lr": lr},
            path=str(tmp_path / "tune" / trial),
            error=None,
        )

    results = [
        result("trial_00000", 1e30, [float("nan")]),
        result("trial_00001", 1e-3, [4.4, 4.3]),
        result("trial_00002", 1e30, [float("inf"), float("nan")]),
    ]
    rows = best_first([trial_row(r, sweep, "val/loss", "min", False) for r in results], "min")
    assert [(r["trial"], r["best"], r["status"]) for r in rows] == [
        ("trial_00001", 4.3, "finished"),
        ("trial_00000", None, "diverged"),
        ("trial_00002", None, "diverged"),
    ]
    json.dumps(rows, allow_nan=False)  # sweep.json is JSON: NaN is not
    assert (
        best_command(sweep, rows) == f"text-recognizer train {sweep.base} --set optimizer.lr=0.001"
    )


@pytest.fixture
def no_ray(monkeypatch: pytest.MonkeyPatch) -> None:
    """Ray must not start: the sweep fails before."""
    import ray

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("Ray started")

    monkeypatch.setattr(ray, "init", refuse)


@pytest.mark.parametrize(
    ("search", "extra", "message"),
    [
        (
            "optimiser.lr: {choice: [1.0e-3]}",
            "",
            "checked with optimiser.lr=0.001): invalid experiment config:\n"
            "  unknown key 'optimiser'; allowed here: name, group,",
        ),
        ("optimizer.lr: {choice: [fast, 1.0e-3]}", "", "key 'optimizer.lr' = 'fast' is invalid"),
        ("trainer.max_epochs: {randint: [0, 3]}", "", "key 'trainer.max_epochs' = 0 is invalid"),
        # Its low (1) is a whole number, every draw (2.27) is not: every trial failed.
        ("trainer.max_epochs: {uniform: [1, 3]}", "", "use randint for a whole number"),
        (
            "optimizer.lr: {uniform: [1.0e-3, 1.0e-2]}",
            "metric: val/accc",
            "metric 'val/accc' is not reported: a classifier model reports val/loss, val/acc, "
            "train/loss after every validation",
        ),
        ("optimizer.lr: {uniform: [1.0e-3, 1.0e-2]}", "metric: train/acc", "'train/acc'"),
        # The base's checkpoint maximises val/acc: its mode would maximise the loss.
        ("optimizer.lr: {uniform: [1.0e-3, 1.0e-2]}", "metric: val/loss", "mode: min or mode"),
        # Pages in a list's later value: only the first was looked at, the rest failed in Ray.
        (
            "data.name: {choice: [synthetic_chars, synthetic_paragraphs]}",
            "",
            "the trials with data.name=synthetic_paragraphs would be refused: data "
            "'synthetic_paragraphs' holds pages",
        ),
    ],
)
@pytest.mark.usefixtures("no_ray")
def test_a_search_that_would_fail_every_trial_fails_before_ray_starts(
    tmp_path: Path, search: str, extra: str, message: str
) -> None:
    path = write_sweep(tmp_path, f"sweep: s\nbase: base.yaml\nsearch:\n  {search}\n{extra}\n")
    result = runner.invoke(app, ["sweep", str(path)])
    assert result.exit_code == 1, result.output
    assert f"error: sweep {path}:" in result.output and message in result.output
    assert not (tmp_path / "runs" / "s").exists()


@pytest.mark.usefixtures("no_ray")
def test_the_checkpoint_monitor_is_the_default_metric_and_checked_too(tmp_path: Path) -> None:
    path = write_sweep(tmp_path, "sweep: s\nbase: base.yaml\nsearch: {optimizer.lr: {choice: [1]}}")
    base = (tmp_path / "base.yaml").read_text()
    (tmp_path / "base.yaml").write_text(base.replace("monitor: val/acc", "monitor: train/acc"))
    with pytest.raises(ConfigError, match=r"metric \(from .*base.yaml's checkpoint monitor\)"):
        run_sweep(path)


def test_a_sweep_without_ray_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib.util

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name: None if name == "optuna" else find_spec(name)
    )
    path = write_sweep(
        tmp_path,
        "sweep: s\nbase: base.yaml\nsearch: {optimizer.lr: {uniform: [0.1, 1]}}\n"
        "algorithm: bayes\n",
    )
    with pytest.raises(
        TextRecognizerError, match=r"need optuna: pip install 'text-recognizer\[sweep\]'"
    ):
        run_sweep(path)


def test_failed_trials_are_listed_with_their_own_messages(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The table said only 'failed'; the reason was in Ray's tracebacks among Tune's
    tables, and sweep.json's error was the whole traceback."""
    from ray.exceptions import RayTaskError

    from text_recognizer.training import sweep

    wrapped = RayTaskError(
        "train_trial", "Traceback ...", ConfigError("bad value")
    ).as_instanceof_cause()
    assert sweep.trial_error(wrapped) == "bad value"
    crash = RayTaskError("train_trial", "Traceback ...", RuntimeError("out of memory"))
    assert sweep.trial_error(crash.as_instanceof_cause()) == "RuntimeError: out of memory"

    def row(trial: str, error: str | None) -> dict:
        status = "failed" if error else "finished"
        return {"trial": trial, "params": {"optimizer.lr": 0.1}, "best": None, "epochs": 0,
                "run_dir": None, "status": status, "error": error}  # fmt: skip

    rows = [row("trial_00000", "bad value"), row("trial_00001", "bad value")]
    monkeypatch.setattr(sweep, "run_sweep", lambda *args: ("val/acc", rows))
    monkeypatch.chdir(tmp_path)
    path = write_sweep(
        tmp_path, "sweep: s\nbase: base.yaml\nsearch: {optimizer.lr: {choice: [0.1]}}"
    )
    result = runner.invoke(app, ["sweep", str(path)])
    assert result.exit_code == 1
    assert "every trial failed:\n  trial_00000, trial_00001: bad value" in result.output
    # Where the tracebacks are, though no trial has a run folder to name it by.
    assert "this table: runs/s/sweep.json" in result.output
    rows[1] = row("trial_00001", None)
    result = runner.invoke(app, ["sweep", str(path)])
    assert "1 of 2 trials failed:\n  trial_00000: bad value" in result.output


def test_a_resumed_sweep_counts_the_trials_that_finished_before_it_stopped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Tune's saved state can hold a trial that finished by itself without its `done` mark:
    a resumed sweep called it stopped, said the sweep was interrupted and exited with 130
    (seen with `algorithm: random`, two at a time). Tune is stood in for here: which
    trials the state marks is a matter of timing in a real one."""
    import pandas as pd
    import ray
    from ray import tune

    path = write_sweep(
        tmp_path,
        "sweep: s\nbase: base.yaml\nsearch: {optimizer.lr: {choice: [1.0e-3, 2.0e-3]}}\n"
        "algorithm: grid\n",
    )
    runs = tmp_path / "runs" / "s"
    (runs / "tune" / "s").mkdir(parents=True)
    results = []
    for index, (lr, done, finished) in enumerate([(1e-3, False, True), (2e-3, True, True)]):
        run_dir = runs / f"trial_0000{index}" / "20261207-000000"
        run_dir.mkdir(parents=True)
        if finished:
            (run_dir / "summary.json").write_text("{}")
        metrics = {"val/acc": 0.5 + index / 10, "epoch": 2, "run_dir": str(run_dir), "done": done}
        results.append(
            SimpleNamespace(
                metrics=metrics,
                metrics_dataframe=pd.DataFrame([metrics]),
                path=str(runs / "tune" / "s" / f"trial_0000{index}"),
                config={"optimizer.lr": lr},
                error=None,
            )
        )
    tuner = SimpleNamespace(fit=lambda: results)
    monkeypatch.setattr(ray, "init", lambda **kwargs: None)
    monkeypatch.setattr(ray, "shutdown", lambda: None)
    monkeypatch.setattr(tune, "with_parameters", lambda trainable, **kwargs: trainable)
    monkeypatch.setattr(tune, "with_resources", lambda trainable, resources: trainable)
    monkeypatch.setattr(tune.Tuner, "can_restore", staticmethod(lambda where: True))
    monkeypatch.setattr(tune.Tuner, "restore", staticmethod(lambda *args, **kwargs: tuner))

    result = runner.invoke(app, ["sweep", str(path), "--resume"])
    assert result.exit_code == 0, result.output
    summary = json.loads((runs / "sweep.json").read_text())
    assert summary["interrupted"] is False
    assert [t["status"] for t in summary["trials"]] == ["finished", "finished"]
    # A trial with neither the mark nor a summary stopped part-way: it is said so.
    (runs / "trial_00000" / "20261207-000000" / "summary.json").unlink()
    result = runner.invoke(app, ["sweep", str(path), "--resume"])
    assert result.exit_code == 130
    summary = json.loads((runs / "sweep.json").read_text())
    assert summary["interrupted"] is True
    assert {t["trial"]: t["status"] for t in summary["trials"]} == {
        "trial_00000": "stopped",
        "trial_00001": "finished",
    }


def trial_runs(runs: Path, sweep: str) -> dict[str, dict]:
    """Each trial's config, as its run folder saved it."""
    return {
        config.parents[1].name: yaml.safe_load(config.read_text())
        for config in sorted((runs / sweep).glob("trial_*/*/config.yaml"))
    }


@pytest.fixture
def ray_tmp(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Ray's own temp root (``/tmp/ray`` otherwise), short: its socket paths must fit in
    107 bytes, which a pytest folder may not."""
    folder = Path(tempfile.mkdtemp(prefix="ray-", dir="/tmp"))
    monkeypatch.setenv("RAY_TMPDIR", str(folder))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.xdist_group("ray")
def test_a_random_sweep_with_asha_from_the_cli(tmp_path: Path, ray_tmp: Path) -> None:
    path = write_sweep(
        tmp_path,
        """
        sweep: tiny_random
        base: base.yaml
        search:
          optimizer.lr: {loguniform: [1.0e-4, 1.0e-2]}
          data.batch_size: {choice: [32, 64]}
        samples: 3
        scheduler: asha
        """,
    )
    result = runner.invoke(app, ["sweep", str(path)])
    assert result.exit_code == 0, result.output
    assert "best val/acc" in result.output
    summary = json.loads((tmp_path / "runs" / "tiny_random" / "sweep.json").read_text())
    assert summary["metric"] == "val/acc" and summary["mode"] == "max"
    trials = summary["trials"]
    assert len(trials) == 3 and not any(t["error"] for t in trials)
    # ASHA stops trials early on purpose: finished, not interrupted.
    assert summary["interrupted"] is False and {t["status"] for t in trials} == {"finished"}
    bests = [t["best"] for t in trials]
    assert bests == sorted(bests, reverse=True)
    runs = trial_runs(tmp_path / "runs", "tiny_random")
    assert sorted(runs) == sorted(t["trial"] for t in trials)
    for trial in trials:  # each trial is an ordinary run with the values it was given
        config = runs[trial["trial"]]
        assert config["optimizer"]["lr"] == pytest.approx(trial["params"]["optimizer.lr"])
        assert config["data"]["batch_size"] == trial["params"]["data.batch_size"]
        assert 1 <= trial["epochs"] <= 2
    assert len({t["params"]["optimizer.lr"] for t in trials}) == 3
    # The best trial's values, in full, ready to train at full length.
    best = trials[0]["params"]
    assert summary["best_command"] == (
        f"text-recognizer train {tmp_path / 'base.yaml'} --set "
        f"optimizer.lr={best['optimizer.lr']!r} --set data.batch_size={best['data.batch_size']}"
    )
    assert summary["best_command"] in result.output.replace("\n", "")
    # The local Ray's session folder went with it (it piled up in /tmp/ray, one a sweep).
    assert (ray_tmp / "ray").is_dir() and not list((ray_tmp / "ray").glob("session_2*"))
    again = runner.invoke(app, ["sweep", str(path)])
    assert again.exit_code == 1
    assert "holds a sweep named tiny_random already" in again.output


@pytest.mark.slow
def test_a_grid_sweep_runs_every_combination(tmp_path: Path) -> None:
    path = write_sweep(
        tmp_path,
        """
        sweep: tiny_grid
        base: base.yaml
        set: {trainer.max_epochs: 1}
        search:
          optimizer.lr: {grid: [1.0e-3, 3.0e-3]}
          data.batch_size: {choice: [32, 64]}
        algorithm: grid
        """,
    )
    metric, trials = run_sweep(path)
    assert metric == "val/acc"
    combinations = {(t["params"]["optimizer.lr"], t["params"]["data.batch_size"]) for t in trials}
    assert combinations == {(1e-3, 32), (1e-3, 64), (3e-3, 32), (3e-3, 64)}
    assert len(trial_runs(tmp_path / "runs", "tiny_grid")) == 4
    assert {t["status"] for t in trials} == {"finished"}


@pytest.mark.slow
def test_a_bayesian_sweep_with_optuna(tmp_path: Path) -> None:
    path = write_sweep(
        tmp_path,
        """
        sweep: tiny_bayes
        base: base.yaml
        search:
          optimizer.lr: {loguniform: [1.0e-4, 1.0e-2]}
          optimizer.weight_decay: {uniform: [0.0, 0.1]}
        algorithm: bayes
        samples: 3
        concurrent: 1
        """,
    )
    _, trials = run_sweep(path)
    assert len(trials) == 3 and not any(t["error"] for t in trials)
    for trial in trials:
        assert 1e-4 <= trial["params"]["optimizer.lr"] <= 1e-2
        assert 0.0 <= trial["params"]["optimizer.weight_decay"] <= 0.1
        assert trial["epochs"] == 2 and trial["status"] == "finished"


@pytest.mark.slow
def test_population_based_training_copies_weights_between_trials(tmp_path: Path) -> None:
    path = write_sweep(
        tmp_path,
        """
        sweep: tiny_pbt
        base: base.yaml
        set: {trainer.max_epochs: 3}
        search:
          optimizer.lr: {loguniform: [1.0e-4, 1.0e-2]}
        algorithm: pbt
        samples: 2
        """,
    )
    _, trials = run_sweep(path)
    assert [t["epochs"] for t in trials] == [3, 3]  # counted on across the copies
    assert {t["status"] for t in trials} == {"finished"}  # PBT's pauses are no interruption
    # The trailing trial went on from the leading one's weights, with a changed lr.
    configs = [
        yaml.safe_load(config.read_text())
        for config in (tmp_path / "runs" / "tiny_pbt").glob("trial_*/*/config.yaml")
    ]
    copied = [c for c in configs if c["init"]]
    assert copied
    assert all(c["init"]["weights"].endswith("weights.ckpt") for c in copied)
    assert all(c["trainer"]["max_epochs"] < 3 for c in copied)
    # The copied weights a run names stay with the sweep (they were left in /tmp copies).
    sweep_folder = (tmp_path / "runs" / "tiny_pbt").resolve()
    for config in copied:
        weights = Path(config["init"]["weights"])
        assert weights.is_file() and weights.resolve().is_relative_to(sweep_folder), weights
    # Each row is the trial's own: the last exploit gave the trailing trial the leading
    # one's last result (its run folder) and new values it never trained with.
    for trial in trials:
        run_dir = Path(trial["run_dir"])
        assert run_dir.parent.name == trial["trial"]
        trained = yaml.safe_load((run_dir / "config.yaml").read_text())
        assert trained["optimizer"]["lr"] == pytest.approx(trial["params"]["optimizer.lr"])


@pytest.mark.slow
def test_a_killed_sweep_resumes_where_it_stopped(tmp_path: Path) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    path = write_sweep(
        tmp_path,
        """
        sweep: tiny_resume
        base: base.yaml
        set: {trainer.max_epochs: 4}
        search:
          optimizer.lr: {choice: [1.0e-3, 2.0e-3]}
        algorithm: grid
        concurrent: 1
        """,
    )
    sweep = subprocess.Popen(
        [sys.executable, "-m", "text_recognizer.cli", "sweep", str(path)],
        cwd=tmp_path,
        start_new_session=True,  # its Ray processes too, to kill them all at once
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    first = tmp_path / "runs" / "tiny_resume" / "trial_00000"
    deadline = time.monotonic() + 180
    while not list(first.glob("*/checkpoints/last.ckpt")):
        assert sweep.poll() is None and time.monotonic() < deadline, "no checkpoint in time"
        time.sleep(0.2)
    os.killpg(sweep.pid, signal.SIGKILL)
    sweep.wait()
    assert not first.with_name("trial_00001").exists()  # concurrent: 1
    (killed,) = first.iterdir()
    assert not (killed / "summary.json").exists()

    result = runner.invoke(app, ["sweep", str(path), "--resume"])
    assert result.exit_code == 0, result.output
    (resumed,) = first.iterdir()  # the same run folder, gone on with, not a new one
    summary = json.loads((resumed / "summary.json").read_text())
    assert summary["epochs"] == 4
    trials = json.loads((tmp_path / "runs" / "tiny_resume" / "sweep.json").read_text())["trials"]
    assert sorted(t["trial"] for t in trials) == ["trial_00000", "trial_00001"]
    assert all(t["epochs"] == 4 and t["status"] == "finished" for t in trials)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("stop", "code", "said"),
    # SIGTERM (a scheduler's stop, `kill`) hit Ray's handler in the driver: a crash
    # report, exit 134 and no word of --resume.
    [("SIGINT", 130, "interrupted"), ("SIGTERM", 143, "stopped (SIGTERM)")],
)
def test_an_interrupted_sweep_says_so_and_resumes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stop: str, code: int, said: str
) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    write_sweep(
        tmp_path,
        """
        sweep: tiny_interrupted
        base: base.yaml
        set: {trainer.max_epochs: 4}
        search:
          optimizer.lr: {choice: [1.0e-3, 2.0e-3, 3.0e-3]}
        algorithm: grid
        concurrent: 1
        """,
    )
    log = tmp_path / "sweep.log"
    with log.open("w") as out:
        sweep = subprocess.Popen(
            [sys.executable, "-m", "text_recognizer.cli", "sweep", "sweep.yaml"],
            cwd=tmp_path,
            start_new_session=True,  # its Ray processes too, to clean up at once
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    second = tmp_path / "runs" / "tiny_interrupted" / "trial_00001"
    try:
        deadline = time.monotonic() + 300
        while not list(second.glob("*/checkpoints/last.ckpt")):
            assert sweep.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        os.kill(sweep.pid, getattr(signal, stop))  # to the sweep alone
        assert sweep.wait(timeout=120) == code, log.read_text()
    finally:
        if sweep.poll() is None:
            os.killpg(sweep.pid, signal.SIGKILL)
    output = log.read_text()
    assert "Tuner.restore" not in output
    assert (
        f"error: sweep {said}: 1 of 3 trials finished or failed; finish it with: "
        "text-recognizer sweep sweep.yaml --resume" in " ".join(output.split())
    )
    summary = json.loads((tmp_path / "runs" / "tiny_interrupted" / "sweep.json").read_text())
    assert summary["interrupted"] is True
    assert summary["stopped_by"] == (stop if stop == "SIGTERM" else None)
    trials = {t["status"]: t for t in summary["trials"]}
    assert len(summary["trials"]) == 3 and sorted(trials) == ["finished", "not started", "stopped"]
    assert trials["finished"]["trial"] == "trial_00000" and trials["finished"]["epochs"] == 4
    assert trials["stopped"]["trial"] == "trial_00001" and 1 <= trials["stopped"]["epochs"] < 4
    assert trials["stopped"]["error"] is None and trials["not started"]["epochs"] == 0

    monkeypatch.chdir(tmp_path)  # the hint's relative path
    result = runner.invoke(app, ["sweep", "sweep.yaml", "--resume"])
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "runs" / "tiny_interrupted" / "sweep.json").read_text())
    assert summary["interrupted"] is False
    assert sorted(t["trial"] for t in summary["trials"]) == [f"trial_0000{i}" for i in range(3)]
    assert all(t["status"] == "finished" and t["epochs"] == 4 for t in summary["trials"])


def test_a_trial_stopped_with_only_best_ckpt_is_resumed_not_started_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As `train --resume` does: a trial stopped after a mid-epoch validation (or whose
    # last.ckpt was damaged and set aside) has only best.ckpt, which holds the whole state.
    monkeypatch.setenv("TEXT_RECOGNIZER_RUNS", str(tmp_path))
    trial = tmp_path / "sweep" / "trial_00000"
    older, latest = trial / "20260101-000000", trial / "20260102-000000"
    (older / "checkpoints").mkdir(parents=True)
    (older / "checkpoints" / "last.ckpt").write_bytes(b"x")
    (older / "summary.json").write_text("{}")
    assert unfinished_run("sweep", "trial_00000") is None
    (latest / "checkpoints").mkdir(parents=True)
    assert unfinished_run("sweep", "trial_00000") is None  # nothing to resume from
    (latest / "checkpoints" / "best.ckpt").write_bytes(b"x")
    assert unfinished_run("sweep", "trial_00000") == latest
    (latest / "summary.json").write_text("{}")
    assert unfinished_run("sweep", "trial_00000") is None
