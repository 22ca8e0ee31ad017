"""Experiment groups: one YAML file lists experiments; plan them as commands or run them.

A group file names a group, an optional base config, overrides shared by every
experiment, and the experiments, each with a name, an optional config of its own and
its overrides::

    group: chars_compare
    base: chars_lenet.yaml            # relative to this file
    set: {trainer.max_epochs: 4}      # every experiment
    experiments:
      - name: lenet
      - name: lenet_lr3e-4
        set: {optimizer.lr: 3.0e-4}
      - name: mlp
        config: chars_mlp.yaml

``plan`` turns each experiment into one ``text-recognizer train`` command (to paste, or
to pipe into ``parallel -j2``); ``run`` starts those commands itself, N at a time, one
GPU each when there are GPUs, and gathers every run's ``summary.json`` into one table.
Every experiment's config is validated before anything starts.
"""

from __future__ import annotations

import json
import logging
import os
import shlex
import signal
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TextIO, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from text_recognizer.errors import ConfigError, TextRecognizerError
from text_recognizer.training.config import (
    NAME_PATTERN,
    ExperimentConfig,
    apply_overrides,
    load_config,
    no_such_file,
    read_yaml,
)
from text_recognizer.training.run import RUN_DIR_ENV, has_checkpoint, new_run_dir

log = logging.getLogger(__name__)
Model = TypeVar("Model", bound=BaseModel)

#: What ``plan`` prints in front of ``train``; ``run`` starts this Python's CLI instead.
CLI = ("text-recognizer",)

#: The file descriptor of a pipe whose other end only the group's process holds: a job
#: reads end-of-file there when that process dies, however it died (``end_with_parent``).
PARENT_PIPE_ENV = "TEXT_RECOGNIZER_PARENT_PIPE"

#: How long a job orphaned by its group may take to stop on SIGTERM before it is killed:
#: a validation under way finishes first. Its folder stays locked until it is gone.
ORPHAN_GRACE_S = 120.0


class GroupEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=NAME_PATTERN, description="experiment name (its run folder)")
    config: Path | None = Field(None, description="its own config; default: the group's base")
    set: dict[str, Any] = Field(default_factory=dict, description="dotted overrides")


class ExperimentGroup(BaseModel):
    model_config = ConfigDict(extra="forbid")

    group: str = Field(pattern=NAME_PATTERN, description="group name: runs/<group>/<name>/...")
    base: Path | None = Field(None, description="config every experiment starts from")
    set: dict[str, Any] = Field(default_factory=dict, description="overrides for every one")
    experiments: list[GroupEntry] = Field(min_length=1)

    @model_validator(mode="after")
    def _check(self) -> ExperimentGroup:
        names = [e.name for e in self.experiments]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"experiment names must be unique; repeated: {', '.join(duplicates)}")
        for entry in self.experiments:
            if entry.config is None and self.base is None:
                raise ValueError(f"experiment {entry.name!r} has no config and the group no base")
        for where, overrides in [("set", self.set)] + [
            (f"experiments.{e.name}.set", e.set) for e in self.experiments
        ]:
            if reserved := sorted({"name", "group"} & set(overrides)):
                raise ValueError(f"{where} may not set {', '.join(reserved)}: the group sets them")
        return self


def format_value(value: Any) -> str:
    """A value for ``--set key=VALUE`` that reads back as the same value.

    JSON is YAML, so lists, numbers and booleans survive as they are; a string is left
    bare unless YAML would read it as something else (``yes``, ``1e-3``, ``""``).
    """
    if isinstance(value, str):
        try:
            if apply_overrides({}, [f"x={value}"])["x"] == value:
                return value
        except ConfigError:
            pass
    return json.dumps(value)


@dataclass
class PlannedExperiment:
    """One experiment of a group: the ``train`` arguments that run it, and its config."""

    name: str
    config_path: Path
    overrides: list[str]
    config: ExperimentConfig

    def train_args(self) -> list[str]:
        args = ["train", str(self.config_path)]
        for override in self.overrides:
            args += ["--set", override]
        return args

    def command(self, prefix: Sequence[str] = CLI) -> list[str]:
        return [*prefix, *self.train_args()]


def read_yaml_model(
    path: Path, model: type[Model], what: str, hint: Callable[[Any], str] = lambda raw: ""
) -> Model:
    """A YAML file validated as ``model``; every problem in one ``ConfigError`` naming the
    key, then the keys there are, then ``hint(raw)``."""
    path = Path(path)
    if not path.is_file():
        raise no_such_file(what, path)
    raw = read_yaml(path, model.model_fields)
    try:
        return model.model_validate(raw)
    except ValidationError as error:
        lines = []
        for item in error.errors():
            key = ".".join(str(p) for p in item["loc"]) or "<root>"
            if item["type"] == "extra_forbidden":
                lines.append(f"unknown key {key!r}")
            elif item["type"] == "missing":
                lines.append(f"missing required key {key!r}")
            else:  # a check of the whole file names its keys itself
                message = item["msg"].removeprefix("Value error, ")
                lines.append(f"{key}: {message}" if item["loc"] else message)
        raise ConfigError(f"invalid {what} {path}:\n  " + "\n  ".join(lines) + hint(raw)) from None


def load_group(path: Path) -> ExperimentGroup:
    def hint(raw: Any) -> str:
        out = "\n  (keys: group, base, set, experiments (each: name, config, set))"
        if isinstance(raw, dict) and "network" in raw:
            out += f"\n  {path} looks like one experiment: `text-recognizer train {path}`"
        return out

    return read_yaml_model(path, ExperimentGroup, "experiment group", hint)


def plan_group(path: Path) -> list[PlannedExperiment]:
    """Every experiment of the group file as ``train`` arguments, each config validated."""
    path = Path(path)
    group = load_group(path)
    planned = []
    for entry in group.experiments:
        source = entry.config or group.base
        assert source is not None  # checked by the schema
        config_path = source if source.is_absolute() else path.parent / source
        overrides = [f"{k}={format_value(v)}" for k, v in {**group.set, **entry.set}.items()]
        overrides += [f"group={group.group}", f"name={entry.name}"]
        try:
            config = load_config(config_path, overrides)
        except ConfigError as error:
            raise ConfigError(f"experiment {entry.name!r} of {path}: {error}") from None
        planned.append(PlannedExperiment(entry.name, config_path, overrides, config))
    return planned


#: How ``train`` exits when a signal stops it (its last.ckpt is kept: it can resume).
STOPPED_BY = {130: "Ctrl-C", 143: "SIGTERM"}


@dataclass
class JobResult:
    name: str
    run_dir: Path
    returncode: int | None = None
    seconds: float = 0.0
    summary: dict[str, Any] | None = None
    command: list[str] = field(default_factory=list)
    not_started: str | None = None  # why it was never started
    earlier: bool = False  # finished by an earlier `run` of the group (``--resume``)
    reason: str | None = None  # a failed job's own error line, from its train.log

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and self.summary is not None

    @property
    def resumable(self) -> bool:
        """Stopped part-way with a checkpoint to go on from (``last.ckpt``, or ``best.ckpt``
        alone): ``--resume`` continues it."""
        return not self.ok and has_checkpoint(self.run_dir)

    @property
    def status(self) -> str:
        if self.not_started:
            return f"not started ({self.not_started})"
        if self.ok:
            return "ok (earlier run)" if self.earlier else "ok"
        if self.returncode in STOPPED_BY:
            return f"stopped ({STOPPED_BY[self.returncode]})"
        if self.returncode is not None and self.returncode < 0:
            try:
                name = signal.Signals(-self.returncode).name
            except ValueError:
                name = f"signal {-self.returncode}"
            return f"killed ({name})"
        if self.returncode == 0:
            return "failed (no summary.json)"
        return f"failed (exit {self.returncode})"


def error_line(log: Path) -> str | None:
    """What a job said when it failed: its ``error:`` line, else (a traceback) the last line."""
    try:
        lines = [line.strip() for line in log.read_text(errors="replace").splitlines()]
    except OSError:
        return None
    lines = [line for line in lines if line]
    errors = [line for line in lines if line.startswith("error:")]
    last = errors[-1].removeprefix("error:").strip() if errors else (lines[-1] if lines else "")
    return last[:300] or None


class GroupInterruptedError(TextRecognizerError):
    """Ctrl-C or SIGTERM stopped the group; its jobs were stopped and ``--resume`` finishes it."""

    def __init__(self, results: list[JobResult], signum: int, path: Path) -> None:
        self.results = results
        self.exit_code = 128 + signum  # what a shell reports for the signal
        done = sum(result.ok for result in results)
        super().__init__(
            f"experiment group stopped ({'SIGTERM' if signum == signal.SIGTERM else 'Ctrl-C'}): "
            f"{done} of {len(results)} experiments finished; finish it with: "
            f"text-recognizer experiments run {shlex.quote(str(path))} --resume"
        )


class _TerminatedError(Exception):
    """SIGTERM, raised in the main thread so that the jobs are stopped, not orphaned."""


def _cli_prefix() -> list[str]:
    """This environment's ``text-recognizer`` script, else ``python -m text_recognizer.cli``."""
    script = Path(sys.executable).with_name("text-recognizer")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "text_recognizer.cli"]


def _gpu_count() -> int:
    import torch

    return torch.cuda.device_count()


def run_group(
    path: Path,
    jobs: int = 1,
    prefix: Sequence[str] | None = None,
    on_event: Callable[[str], None] | None = None,
    resume: bool = False,
    on_problem: Callable[[str], None] | None = None,
) -> list[JobResult]:
    """Run every experiment of a group as its own ``train`` process, ``jobs`` at a time.

    Each job gets a slot; with GPUs, slot ``i`` sees only GPU ``i % count``
    (``CUDA_VISIBLE_DEVICES``); on CPU the cores are divided between the slots. A job's
    output goes to ``train.log`` in its run folder. ``prefix`` is the command that runs
    the CLI (default: this environment's ``text-recognizer``). With ``resume``, an
    experiment whose newest run finished is not run again, and one stopped part-way goes
    on from its last checkpoint. Ctrl-C or SIGTERM stops every job (each keeps its last
    checkpoint) and raises ``GroupInterruptedError`` with the results so far.

    ``on_event`` hears of progress (a job started, finished); ``on_problem`` (by default
    ``on_event``) of a failed dataset or job, so that ``-q`` can print only those.
    """
    if jobs < 1:
        raise ConfigError(f"--jobs must be at least 1, not {jobs}")
    planned = plan_group(path)
    prefix = list(prefix or _cli_prefix())
    report = on_event or (lambda message: log.info("%s", message))
    problem = on_problem or report
    results: dict[str, JobResult] = {}
    continued: dict[str, Path] = {}
    if resume:
        results, continued = _earlier_runs(planned, report)
    to_run = [p for p in planned if p.name not in results]
    failed = prepare_datasets([p for p in to_run if p.name not in continued], report, problem)
    gpus = _gpu_count()
    threads = max(1, (os.cpu_count() or 1) // jobs)
    # Each job would only fail on its dataset again (a download retried once per job).
    for p in to_run:
        if p.name in failed:
            results[p.name] = JobResult(p.name, Path("-"), not_started=failed[p.name])
    waiting = [p for p in to_run if p.name not in failed]
    running: dict[int, tuple[subprocess.Popen[bytes], JobResult, float, TextIO]] = {}
    stopped_by: int | None = None
    previous = _raise_on_sigterm()
    # Killed with SIGKILL (or crashed), this process could not stop its jobs: they trained
    # on unseen, their folders locked. Each job holds the read end of this pipe and stops
    # when it reads end-of-file, which only this process's death or the close below gives.
    watched, alive = os.pipe() if os.name == "posix" else (None, None)
    try:
        while waiting or running:
            for slot in range(jobs):
                if slot in running or not waiting:
                    continue
                experiment = waiting.pop(0)
                running[slot] = _start(
                    experiment,
                    slot,
                    prefix,
                    gpus,
                    threads,
                    report,
                    continued.get(experiment.name),
                    watched,
                )
                results[experiment.name] = running[slot][1]
            time.sleep(0.2)
            for slot, (process, result, started, logfile) in list(running.items()):
                if process.poll() is None:
                    continue
                logfile.close()
                del running[slot]
                _finish(result, process, started)
                why = f": {result.reason}" if result.reason else ""
                (report if result.ok else problem)(
                    f"{result.name}: {result.status} after {result.seconds:.0f} s{why} "
                    f"(log: {result.run_dir / 'train.log'})"
                )
    except KeyboardInterrupt:
        stopped_by = signal.SIGINT
    except _TerminatedError:
        stopped_by = signal.SIGTERM
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        for process, result, started, logfile in running.values():  # stop the rest
            process.terminate()  # train saves nothing more and exits 143, resumable
            process.wait()
            logfile.close()
            _finish(result, process, started)
        for fd in (watched, alive):
            if fd is not None:
                os.close(fd)
    stopped = JobResult("", Path("-"), not_started="the group was stopped")
    ordered = [results.get(p.name) or replace(stopped, name=p.name) for p in planned]
    if stopped_by is not None:
        raise GroupInterruptedError(ordered, stopped_by, path)
    return ordered


def _raise_on_sigterm() -> Any:
    """Turn SIGTERM into an exception while jobs run, so that they are stopped with the
    group: left to the default, the group died and its jobs trained on unseen. Only the
    main thread may set a handler; elsewhere nothing changes (None)."""

    def stop(signum: int, frame: Any) -> None:
        raise _TerminatedError

    try:
        return signal.signal(signal.SIGTERM, stop)
    except ValueError:  # not the main thread
        return None


def _finish(result: JobResult, process: subprocess.Popen[bytes], started: float) -> None:
    result.returncode = process.returncode
    result.seconds = time.monotonic() - started
    summary_file = result.run_dir / "summary.json"
    if process.returncode == 0 and summary_file.is_file():
        result.summary = json.loads(summary_file.read_text())
    elif process.returncode not in STOPPED_BY and (process.returncode or 0) >= 0:
        result.reason = error_line(result.run_dir / "train.log")


def _earlier_runs(
    planned: Sequence[PlannedExperiment], report: Callable[[str], None]
) -> tuple[dict[str, JobResult], dict[str, Path]]:
    """For ``--resume``: the experiments whose newest run finished (their results), and
    those stopped part-way with the same config (their run folders, to go on from)."""
    from text_recognizer.training.config import parse_config
    from text_recognizer.training.run import latest_run

    done: dict[str, JobResult] = {}
    continued: dict[str, Path] = {}
    for experiment in planned:
        try:
            folder = latest_run(experiment.config.group, experiment.name)
        except ConfigError:
            continue  # never started: it starts now
        summary = folder / "summary.json"
        if summary.is_file():
            done[experiment.name] = JobResult(
                experiment.name, folder, 0, summary=json.loads(summary.read_text()), earlier=True
            )
            report(f"{experiment.name}: finished earlier in {folder}")
        elif has_checkpoint(folder):
            saved = parse_config(read_yaml(folder / "config.yaml"))
            if _same_experiment(saved, experiment.config):
                continued[experiment.name] = folder
            else:
                report(f"{experiment.name}: the group file changed it since {folder}: a new run")
    return done, continued


def _same_experiment(saved: ExperimentConfig, planned: ExperimentConfig) -> bool:
    """Whether a run folder's config is the group's experiment (threads are the slot's)."""
    exclude = {"trainer": {"num_threads"}}
    return saved.model_dump(exclude=exclude) == planned.model_dump(exclude=exclude)


def prepare_datasets(
    planned: Sequence[PlannedExperiment],
    report: Callable[[str], None],
    problem: Callable[[str], None] | None = None,
) -> dict[str, str]:
    """Download or build each distinct dataset once, before any job starts; returns the
    experiments whose dataset failed, each with why (told to ``problem``, by default
    ``report``).

    Parallel jobs would otherwise all download or render the same files at the same time.
    """
    from text_recognizer.training.run import build_datamodule

    problem = problem or report
    errors: dict[str, str | None] = {}
    failed = {}
    for experiment in planned:
        data = experiment.config.data
        key = json.dumps([data.name, data.args, experiment.config.seed], sort_keys=True)
        if key not in errors:
            report(f"preparing dataset {data.name} {data.args or ''}".rstrip())
            try:
                build_datamodule(experiment.config).prepare_data()
                errors[key] = None
            except TextRecognizerError as error:
                problem(f"dataset {data.name} failed: {error}")
                errors[key] = f"dataset {data.name} failed"
        if (error_text := errors[key]) is not None:
            failed[experiment.name] = error_text
    return failed


def _start(
    experiment: PlannedExperiment,
    slot: int,
    prefix: list[str],
    gpus: int,
    threads: int,
    report: Callable[[str], None],
    resume_from: Path | None = None,
    parent_pipe: int | None = None,
) -> tuple[subprocess.Popen[bytes], JobResult, float, TextIO]:
    env = dict(os.environ)
    if parent_pipe is not None:
        env[PARENT_PIPE_ENV] = str(parent_pipe)
    if resume_from is not None:
        run_dir = resume_from
        # The run keeps its own config, threads included; OMP_NUM_THREADS below still holds.
        command = [*prefix, "train", "--resume", str(run_dir)]
    else:
        run_dir = new_run_dir(experiment.config)
        run_dir.mkdir(parents=True)
        env[RUN_DIR_ENV] = str(run_dir)
        command = experiment.command(prefix)
    if gpus:
        env["CUDA_VISIBLE_DEVICES"] = str(slot % gpus)
        where = f"GPU {slot % gpus}"
    else:
        env["OMP_NUM_THREADS"] = str(threads)
        if resume_from is None:
            command += ["--set", f"trainer.num_threads={threads}"]
        where = f"CPU, {threads} thread{'s' if threads > 1 else ''}"
    logfile = (run_dir / "train.log").open("a" if resume_from else "w")
    logfile.write(shlex.join(command) + "\n")
    logfile.flush()
    # An argument list, no shell: names and values cannot be read as shell syntax.
    process = subprocess.Popen(  # noqa: S603
        command,
        env=env,
        stdout=logfile,
        stderr=subprocess.STDOUT,
        pass_fds=() if parent_pipe is None else (parent_pipe,),
    )
    how = "resumed" if resume_from else "started"
    report(f"{experiment.name}: {how} on {where} in {run_dir}")
    result = JobResult(experiment.name, run_dir, command=command)
    return process, result, time.monotonic(), logfile


def end_with_parent(grace_s: float = ORPHAN_GRACE_S) -> None:
    """In a job of ``experiments run``: stop this process when the group's process dies.

    A thread waits on the pipe ``PARENT_PIPE_ENV`` names; at end-of-file it sends this
    process SIGTERM, which stops training as a scheduler's stop does (exit 143, the last
    checkpoint kept, so ``experiments run --resume`` goes on from it), and kills it if it
    is still alive ``grace_s`` later. A pipe, not Linux's ``PR_SET_PDEATHSIG``: it works on
    macOS too, needs no ``preexec_fn`` (unsafe in a process with threads), and does not
    fire when only the thread that started the job ends. Outside a group: nothing.
    """
    value = os.environ.pop(PARENT_PIPE_ENV, None)  # not for this job's own children
    if value is None:
        return
    try:
        fd = int(value)
        is_pipe = stat.S_ISFIFO(os.fstat(fd).st_mode)
    except (ValueError, OSError):
        is_pipe = False
    if not is_pipe:  # set by hand, or lost on the way: there is nothing to watch
        log.warning(
            "%s=%s is not an open pipe: this job will not stop with its group",
            PARENT_PIPE_ENV,
            value,
        )
        return

    def watch() -> None:
        try:
            while os.read(fd, 1):  # the group's process writes nothing; b"": it is gone
                pass
        except OSError:
            pass
        log.warning(
            "the experiment group's process ended without stopping this job: stopping it "
            "(its last checkpoint is kept; `experiments run GROUP --resume` goes on from it)"
        )
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(grace_s)
        os.kill(os.getpid(), signal.SIGKILL)

    threading.Thread(target=watch, name="end-with-parent", daemon=True).start()


def summary_rows(results: Sequence[JobResult]) -> list[list[str]]:
    """Header plus one row per experiment: name, status, best score, test metrics, time, folder."""
    rows = [["experiment", "status", "best", "test", "training time", "run folder"]]
    for result in results:
        summary = result.summary or {}
        best = summary.get("best_score")
        best_text = f"{summary.get('monitor')}={best:.4f}" if best is not None else "-"
        test = ", ".join(f"{k}={v:.4f}" for k, v in sorted(summary.get("test", {}).items()))
        seconds = summary.get("training_time_s")
        rows.append(
            [
                result.name,
                result.status,
                best_text,
                test or "-",
                f"{seconds:.1f} s" if seconds is not None else "-",
                str(result.run_dir),
            ]
        )
    return rows
