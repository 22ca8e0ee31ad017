from __future__ import annotations

import shlex
import sys
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from text_recognizer.cli import app
from text_recognizer.errors import ConfigError
from text_recognizer.training import experiments
from text_recognizer.training.config import apply_overrides, load_config
from text_recognizer.training.experiments import format_value, plan_group, run_group

REPO = Path(__file__).resolve().parents[2]
runner = CliRunner()

TINY = {
    "name": "tiny",
    "seed": 0,
    "data": {"name": "tiny_chars", "args": {"size": 128}, "batch_size": 16},
    "network": {"name": "lenet", "args": {"channels": [4, 8], "fc_dim": 16}},
    "callbacks": {"checkpoint": {"monitor": "val/acc", "mode": "max"}, "progress_bar": "none"},
    "trainer": {"max_epochs": 1},
}


def write_group(folder: Path, group: dict, base: dict = TINY) -> Path:
    (folder / "base.yaml").write_text(yaml.safe_dump(base))
    path = folder / "group.yaml"
    path.write_text(yaml.safe_dump(group, sort_keys=False))
    return path


def test_shipped_group_plans_into_valid_shell_commands() -> None:
    result = runner.invoke(app, ["experiments", "plan", str(REPO / "configs/chars_group.yaml")])
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    names = []
    for line in lines:
        argv = shlex.split(line)
        assert argv[:2] == ["text-recognizer", "train"]
        assert argv[3::2] == ["--set"] * len(argv[3::2])
        config = load_config(Path(argv[2]), argv[4::2])  # validates like `train` would
        assert config.group == "chars_compare"
        names.append(config.name)
    assert names == ["lenet", "lenet_narrow", "lenet_lr5e-4", "mlp"]
    narrow = load_config(Path(shlex.split(lines[1])[2]), shlex.split(lines[1])[4::2])
    assert narrow.network.args["channels"] == [16, 32]
    assert narrow.trainer.max_epochs == 6


def test_quick_group_plans_small_valid_runs() -> None:
    """configs/chars_group_quick.yaml, the docs' group to try in minutes, stays small."""
    path = REPO / "configs/chars_group_quick.yaml"
    result = runner.invoke(app, ["experiments", "plan", str(path)])
    assert result.exit_code == 0, result.output
    configs = [
        load_config(Path(argv[2]), argv[4::2])
        for argv in map(shlex.split, result.output.strip().splitlines())
    ]
    assert [config.name for config in configs] == ["lenet", "mlp"]
    for config in configs:
        assert config.group == "chars_quick" and config.trainer.max_epochs == 2
        assert config.data.args["num_train"] == 3000


@pytest.mark.parametrize(
    "value",
    [[8, 16], 3e-4, 1e-3, True, None, "adamw", "val/acc", "yes", "", "1e-3", "a b", {"k": "no"}],
)
def test_override_values_read_back_unchanged(value: object) -> None:
    assert apply_overrides({}, [f"x={format_value(value)}"])["x"] == value


def test_overrides_apply_in_order_and_name_each_run(tmp_path: Path) -> None:
    path = write_group(
        tmp_path,
        {
            "group": "g",
            "base": "base.yaml",
            "set": {"optimizer.lr": 0.01, "trainer.max_epochs": 2},
            "experiments": [
                {"name": "a"},
                {"name": "b", "set": {"optimizer.lr": 0.5, "scheduler.name": "cosine"}},
            ],
        },
    )
    a, b = plan_group(path)
    assert (a.config.name, a.config.group, a.config.optimizer.lr) == ("a", "g", 0.01)
    assert (b.config.optimizer.lr, b.config.scheduler.name, b.config.trainer.max_epochs) == (
        0.5,
        "cosine",
        2,
    )
    assert b.command(["x"])[:3] == ["x", "train", str(tmp_path / "base.yaml")]


BASE = {"group": "g", "base": "base.yaml"}


@pytest.mark.parametrize(
    ("group", "message"),
    [
        ({**BASE, "experiments": [{"name": "a"}, {"name": "a"}]}, "unique"),
        ({"group": "g", "experiments": [{"name": "a"}]}, "no config and the group no base"),
        ({**BASE, "experiments": []}, "experiments"),
        ({**BASE, "experiments": [{"name": "a b"}]}, "experiments.0.name"),
        ({**BASE, "set": {"name": "x"}, "experiments": [{"name": "a"}]}, "may not set name"),
        ({**BASE, "experiments": [{"name": "a", "lr": 1}]}, "unknown key 'experiments.0.lr'"),
        ({**BASE, "base": "missing.yaml", "experiments": [{"name": "a"}]}, "does not exist"),
        (
            {**BASE, "experiments": [{"name": "a", "set": {"optimizer.name": "adamax"}}]},
            "(?s)experiment 'a'.*optimizer.name",
        ),
    ],
)
def test_bad_groups_are_refused_with_the_reason(tmp_path: Path, group: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        plan_group(write_group(tmp_path, group))


def test_plan_refuses_a_single_experiment_file_with_a_hint() -> None:
    result = runner.invoke(app, ["experiments", "plan", str(REPO / "configs/chars_lenet.yaml")])
    assert result.exit_code == 1
    assert "looks like one experiment" in result.output


ECHO_GPU = "import os; print('gpu', os.environ.get('CUDA_VISIBLE_DEVICES'))"

# Writes the summary a real run writes, where a real run writes it: the run folder that
# `run_group` chose and passed down in TEXT_RECOGNIZER_RUN_DIR.
FAKE_TRAIN = """
import json, os, pathlib, sys
run_dir = pathlib.Path(os.environ["TEXT_RECOGNIZER_RUN_DIR"])
summary = {"run_dir": str(run_dir), "monitor": "val/acc", "best_score": 0.5,
           "test": {"test/acc": 0.25}, "training_time_s": 1.5, "argv": sys.argv[1:]}
(run_dir / "summary.json").write_text(json.dumps(summary))
"""


@pytest.mark.usefixtures("tiny_chars")  # the group's dataset is prepared before the jobs
def test_run_assigns_gpus_round_robin_by_slot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without GPUs here, a stand-in command reports which GPU each job was given."""
    monkeypatch.setattr(experiments, "_gpu_count", lambda: 2)
    group = {"group": "g", "base": "base.yaml", "experiments": [{"name": n} for n in "abc"]}
    results = run_group(
        write_group(tmp_path, group), jobs=3, prefix=[sys.executable, "-c", ECHO_GPU]
    )
    gpus = [(r.run_dir / "train.log").read_text().splitlines()[-1] for r in results]
    assert gpus == ["gpu 0", "gpu 1", "gpu 0"]
    # The stand-in wrote no summary.json: a job that produced no result is not a success.
    assert [r.status for r in results] == ["failed (no summary.json)"] * 3


@pytest.mark.usefixtures("tiny_chars")
def test_run_collects_each_runs_summary_into_the_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(experiments, "_gpu_count", lambda: 0)
    monkeypatch.setattr(experiments.os, "cpu_count", lambda: 8)
    group = {"group": "g", "base": "base.yaml", "experiments": [{"name": "a"}, {"name": "b"}]}
    events: list[str] = []
    results = run_group(
        write_group(tmp_path, group),
        jobs=2,
        prefix=[sys.executable, "-c", FAKE_TRAIN],
        on_event=events.append,
    )
    assert [r.status for r in results] == ["ok", "ok"]
    for result, name in zip(results, "ab", strict=True):
        assert result.run_dir.parent == tmp_path / "runs" / "g" / name
        assert result.summary is not None and result.summary["run_dir"] == str(result.run_dir)
        args = result.summary["argv"]  # the train command the job was given
        assert args[:2] == ["train", str(tmp_path / "base.yaml")]
        assert f"name={name}" in args and "trainer.num_threads=4" in args  # 8 cores, 2 jobs
    assert sum("started on CPU" in e for e in events) == 2
    assert experiments.summary_rows(results)[1] == [
        "a", "ok", "val/acc=0.5000", "test/acc=0.2500", "1.5 s", str(results[0].run_dir)
    ]  # fmt: skip


def run_with_fake_cli(path: Path, jobs: int, events: list[str] | None = None) -> list:
    return run_group(
        path,
        jobs=jobs,
        prefix=[sys.executable, "-m", "tests.training.fake_cli"],
        on_event=events.append if events is not None else None,
    )


@pytest.mark.slow
@pytest.mark.usefixtures("tiny_chars")
def test_run_in_parallel_summarises_successes_and_failures(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTHONPATH", str(REPO))  # the jobs import tests.training.fake_cli
    group = {
        "group": "pair",
        "base": "base.yaml",
        "experiments": [
            {"name": "good"},
            {"name": "broken", "set": {"init.weights": "nope.ckpt"}},
            {"name": "no_data", "set": {"data.name": "nope"}},
        ],
    }
    events: list[str] = []
    good, broken, no_data = run_with_fake_cli(write_group(tmp_path, group), jobs=2, events=events)
    assert good.status == "ok", (good.run_dir / "train.log").read_text()[-2000:]
    assert broken.status == "failed (exit 1)"
    assert "nope.ckpt" in (broken.run_dir / "train.log").read_text()
    # A dataset that failed to prepare is not tried again by every job that needs it.
    assert no_data.status == "not started (dataset nope failed)"
    assert sum(": started" in e for e in events) == 2
    assert "dataset nope failed: unknown dataset 'nope'" in "\n".join(events)
    assert good.run_dir.parent == tmp_path / "runs" / "pair" / "good"
    assert good.summary is not None and good.summary["run_dir"] == str(good.run_dir)
    header, good_row, broken_row = experiments.summary_rows([good, broken])
    assert header[:4] == ["experiment", "status", "best", "test"]
    assert good_row[2].startswith("val/acc=") and "test/acc=" in good_row[3]
    assert broken_row[1:4] == ["failed (exit 1)", "-", "-"]


@pytest.mark.slow
@pytest.mark.usefixtures("tiny_chars")
def test_run_two_experiments_with_two_jobs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    group = {
        "group": "pair",
        "base": "base.yaml",
        "experiments": [{"name": "small"}, {"name": "wider", "set": {"network.args.fc_dim": 32}}],
    }
    results = run_with_fake_cli(write_group(tmp_path, group), jobs=2)
    assert [r.status for r in results] == ["ok", "ok"]
    assert results[0].summary != results[1].summary


@pytest.mark.usefixtures("tiny_chars")
def test_cli_run_prints_the_table_and_fails_if_any_failed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stand_in = [sys.executable, "-c", "import sys; sys.exit(3)"]
    monkeypatch.setattr(experiments, "run_group", partial(run_group, prefix=stand_in))
    path = write_group(
        tmp_path, {"group": "g", "base": "base.yaml", "experiments": [{"name": "x"}]}
    )
    result = runner.invoke(app, ["experiments", "run", str(path), "--jobs", "1"])
    assert result.exit_code == 1, result.output
    assert "failed (exit 3)" in result.output and "experiment group" in result.output


# A stand-in for `train`: writes the run folder a real run writes (config.yaml, last.ckpt,
# then summary.json); the experiment named "slow" waits for SIGTERM unless resumed.
STAND_IN = """
import json, os, pathlib, signal, sys, time
from text_recognizer.training.config import dump_config, load_config
args = sys.argv[1:]
resumed = args[1] == "--resume"
if resumed:
    run_dir = pathlib.Path(args[2])
else:
    run_dir = pathlib.Path(os.environ["TEXT_RECOGNIZER_RUN_DIR"])
    config = load_config(pathlib.Path(args[1]), args[3::2])
    (run_dir / "config.yaml").write_text(dump_config(config))
(run_dir / "checkpoints").mkdir(exist_ok=True)
(run_dir / "checkpoints" / "last.ckpt").write_text("")
if run_dir.parent.name == "slow" and not resumed:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    (run_dir.parents[2] / "slow.pid").write_text(str(os.getpid()))
    time.sleep(120)
if run_dir.parent.name == "broken":
    print("error: what went wrong, and what to do")
    sys.exit(1)
(run_dir / "summary.json").write_text(json.dumps({"run_dir": str(run_dir), "resumed": resumed}))
"""


@pytest.mark.usefixtures("tiny_chars")
def test_a_stopped_group_stops_its_jobs_says_so_and_resumes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SIGTERM (a scheduler's stop) ended the group at once and left its jobs training,
    unseen; Ctrl-C stopped them but printed nothing; and nothing could finish the group."""
    import os
    import signal
    import threading
    import time

    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(sys.path))  # the stand-in's imports
    names = ["quick", "slow", "later"]
    group = {"group": "g", "base": "base.yaml", "experiments": [{"name": n} for n in names]}
    path = write_group(tmp_path, group)
    prefix = [sys.executable, "-c", STAND_IN]
    pid_file = tmp_path / "runs" / "slow.pid"

    def stop_when_slow_runs() -> None:
        deadline = time.monotonic() + 60
        while not pid_file.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        if pid_file.exists():  # else the test fails on its own: no signal to this process
            os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=stop_when_slow_runs, daemon=True).start()
    with pytest.raises(experiments.GroupInterruptedError) as stopped:
        run_group(path, jobs=1, prefix=prefix)
    assert stopped.value.exit_code == 143
    assert "finish it with: text-recognizer experiments run" in str(stopped.value)
    quick, slow, later = stopped.value.results
    assert (quick.status, slow.status) == ("ok", "stopped (SIGTERM)") and slow.resumable
    assert later.status == "not started (the group was stopped)"
    with pytest.raises(ProcessLookupError):  # stopped with the group, not left running
        os.kill(int(pid_file.read_text()), 0)

    quick, slow, later = run_group(path, jobs=1, prefix=prefix, resume=True)
    assert quick.status == "ok (earlier run)" and quick.run_dir == stopped.value.results[0].run_dir
    assert slow.status == "ok" and slow.run_dir == stopped.value.results[1].run_dir
    assert slow.summary == {"run_dir": str(slow.run_dir), "resumed": True}
    assert later.status == "ok" and later.summary is not None and not later.summary["resumed"]


@pytest.mark.usefixtures("tiny_chars")
def test_a_failed_job_says_why_and_a_killed_one_by_what(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(sys.path))
    group = {"group": "g", "base": "base.yaml", "experiments": [{"name": "broken"}]}
    events: list[str] = []
    (broken,) = run_group(
        write_group(tmp_path, group),
        prefix=[sys.executable, "-c", STAND_IN],
        on_event=events.append,
    )
    assert broken.status == "failed (exit 1)"
    assert broken.reason == "what went wrong, and what to do"
    assert any("broken: failed (exit 1) after" in e and "what went wrong" in e for e in events)
    killed = experiments.JobResult("x", tmp_path, returncode=-9)
    assert killed.status == "killed (SIGKILL)"


@pytest.fixture
def restored_logging() -> Iterator[None]:
    """The CLI's -q sets the level of our loggers for the process: set them back."""
    import logging

    names = ("text_recognizer", "lightning", "lightning.pytorch", "lightning.fabric")
    root = logging.getLogger()
    handlers, levels = list(root.handlers), {n: logging.getLogger(n).level for n in names}
    yield
    logging.captureWarnings(False)
    root.handlers[:] = handlers
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


@pytest.mark.usefixtures("tiny_chars", "restored_logging")
def test_quiet_prints_a_failed_job_and_no_progress(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """-q ("only errors") printed three progress lines an experiment, as without it."""
    import os

    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(sys.path))
    stand_in = [sys.executable, "-c", STAND_IN]
    monkeypatch.setattr(experiments, "run_group", partial(run_group, prefix=stand_in))
    group = {"group": "g", "base": "base.yaml", "experiments": [{"name": "a"}, {"name": "broken"}]}
    path = write_group(tmp_path, group)
    result = runner.invoke(app, ["-q", "experiments", "run", str(path)])
    assert result.exit_code == 1, result.output
    lines = [line for line in result.output.splitlines() if line.startswith(("a:", "broken:"))]
    assert len(lines) == 1 and lines[0].startswith("broken: failed (exit 1) after")
    assert "preparing dataset" not in result.output
    assert "experiment group" in result.output  # the table is the command's result


# The group's process, as `experiments run` would be: its jobs are real `train` processes.
GROUP_PROCESS = """
import sys
from pathlib import Path
from tests.training.fakes import TinyChars
from text_recognizer.data import DATASETS
from text_recognizer.training.experiments import run_group
DATASETS._entries.setdefault("tiny_chars", TinyChars)
run_group(Path(sys.argv[1]), jobs=2, prefix=[sys.executable, "-m", "tests.training.fake_cli"])
"""


def alive(pid: int) -> bool:
    import os

    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.slow
def test_jobs_stop_when_the_group_process_is_killed(tmp_path: Path) -> None:
    """A group killed with SIGKILL (an out-of-memory killer, `kill -9`) left its jobs
    training, unseen, their run folders locked against a resume."""
    import os
    import signal
    import subprocess
    import time

    group = {"group": "g", "base": "base.yaml", "experiments": [{"name": "a"}, {"name": "b"}]}
    path = write_group(tmp_path, group, {**TINY, "trainer": {"max_epochs": 2}})
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO), *sys.path]),
        "OMP_NUM_THREADS": "1",
        "FAKE_CLI_STALL": "0:2",  # each job waits after its third batch
    }
    parent = subprocess.Popen([sys.executable, "-c", GROUP_PROCESS, str(path)], cwd=REPO, env=env)
    stalled: list[Path] = []
    jobs: list[int] = []
    try:
        logs = [tmp_path / "runs" / "g" / name for name in "ab"]
        deadline = time.monotonic() + 180
        while len(stalled) < 2 and time.monotonic() < deadline and parent.poll() is None:
            time.sleep(0.2)
            stalled = [
                log
                for folder in logs
                for log in folder.glob("*/train.log")
                if "STALLED" in log.read_text(errors="replace")
            ]
        assert len(stalled) == 2, f"the jobs did not start training (group exit {parent.poll()})"
        jobs = [int((log.parent / ".lock").read_text()) for log in stalled]
        assert all(alive(pid) for pid in jobs)
        parent.kill()
        parent.wait(timeout=30)
        deadline = time.monotonic() + 15
        while any(alive(pid) for pid in jobs) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not [pid for pid in jobs if alive(pid)], "jobs kept running after their group died"
    finally:
        if parent.poll() is None:
            parent.kill()
        for pid in jobs:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
    for log in stalled:
        said = " ".join(log.read_text(errors="replace").split())
        assert "the experiment group's process ended without stopping this job" in said


# A job's side: stops on SIGTERM (exit 143), or ignores it to be killed after the grace.
WATCHING_JOB = """
import signal, sys, time
from text_recognizer.training.experiments import end_with_parent
on_sigterm = signal.SIG_IGN if sys.argv[1] == "ignore" else (lambda *_: sys.exit(143))
signal.signal(signal.SIGTERM, on_sigterm)
end_with_parent(grace_s=1.0)
print("watching", flush=True)
time.sleep(120)
"""


@pytest.mark.parametrize(
    ("on_sigterm", "exit_code"), [("stop", 143), ("ignore", -9)], ids=["stops", "killed"]
)
def test_a_job_stops_when_the_pipe_from_its_group_closes(on_sigterm: str, exit_code: int) -> None:
    """End-of-file on the pipe is how a job learns that its group's process is gone."""
    import os
    import subprocess
    import time

    read_end, write_end = os.pipe()
    job = subprocess.Popen(
        [sys.executable, "-c", WATCHING_JOB, on_sigterm],
        env={
            **os.environ,
            "PYTHONPATH": os.pathsep.join(sys.path),
            experiments.PARENT_PIPE_ENV: str(read_end),
        },
        pass_fds=(read_end,),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    os.close(read_end)
    try:
        assert job.stdout is not None and job.stdout.readline() == "watching\n"
        time.sleep(0.5)
        assert job.poll() is None, "the job stopped while its group was alive"
        os.close(write_end)  # what the group's death does
        write_end = -1
        assert job.wait(timeout=30) == exit_code
        assert "the experiment group's process ended" in job.stdout.read()
    finally:
        if write_end >= 0:
            os.close(write_end)
        if job.poll() is None:
            job.kill()
        job.wait()
        if job.stdout is not None:
            job.stdout.close()


def test_a_job_outside_a_group_watches_nothing(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import threading

    monkeypatch.delenv(experiments.PARENT_PIPE_ENV, raising=False)
    experiments.end_with_parent()
    monkeypatch.setenv(experiments.PARENT_PIPE_ENV, "not a number")
    with caplog.at_level("WARNING", logger="text_recognizer"):  # whatever -q left before
        experiments.end_with_parent()
    assert "is not an open pipe: this job will not stop with its group" in caplog.text
    assert experiments.PARENT_PIPE_ENV not in __import__("os").environ
    assert not [t for t in threading.enumerate() if t.name == "end-with-parent"]


def test_a_job_with_only_a_best_checkpoint_is_resumable(tmp_path: Path) -> None:
    """Stopped after a mid-epoch validation, before its first epoch ended, a run has
    ``best.ckpt`` alone; ``train --resume`` goes on from it."""
    (tmp_path / "checkpoints").mkdir()
    stopped = experiments.JobResult("x", tmp_path, returncode=143)
    assert not stopped.resumable
    (tmp_path / "checkpoints" / "best.ckpt").write_bytes(b"")
    assert stopped.resumable
