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
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
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
from text_recognizer.training.run import RUN_DIR_ENV, new_run_dir

log = logging.getLogger(__name__)
Model = TypeVar("Model", bound=BaseModel)

#: What ``plan`` prints in front of ``train``; ``run`` starts this Python's CLI instead.
CLI = ("text-recognizer",)


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
    raw = read_yaml(path)
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


@dataclass
class JobResult:
    name: str
    run_dir: Path
    returncode: int | None = None
    seconds: float = 0.0
    summary: dict[str, Any] | None = None
    command: list[str] = field(default_factory=list)
    not_started: str | None = None  # why it was never started

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and self.summary is not None

    @property
    def status(self) -> str:
        if self.not_started:
            return f"not started ({self.not_started})"
        if self.ok:
            return "ok"
        if self.returncode == 0:
            return "failed (no summary.json)"
        return f"failed (exit {self.returncode})"


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
) -> list[JobResult]:
    """Run every experiment of a group as its own ``train`` process, ``jobs`` at a time.

    Each job gets a slot; with GPUs, slot ``i`` sees only GPU ``i % count``
    (``CUDA_VISIBLE_DEVICES``); on CPU the cores are divided between the slots. A job's
    output goes to ``train.log`` in its run folder. ``prefix`` is the command that runs
    the CLI (default: this environment's ``text-recognizer``).
    """
    if jobs < 1:
        raise ConfigError(f"--jobs must be at least 1, not {jobs}")
    planned = plan_group(path)
    prefix = list(prefix or _cli_prefix())
    report = on_event or (lambda message: log.info("%s", message))
    failed = prepare_datasets(planned, report)
    gpus = _gpu_count()
    threads = max(1, (os.cpu_count() or 1) // jobs)
    # Each job would only fail on its dataset again (a download retried once per job).
    results: dict[str, JobResult] = {
        p.name: JobResult(p.name, Path("-"), not_started=failed[p.name])
        for p in planned
        if p.name in failed
    }
    waiting = [p for p in planned if p.name not in failed]
    running: dict[int, tuple[subprocess.Popen[bytes], JobResult, float, TextIO]] = {}
    try:
        while waiting or running:
            for slot in range(jobs):
                if slot in running or not waiting:
                    continue
                experiment = waiting.pop(0)
                running[slot] = _start(experiment, slot, prefix, gpus, threads, report)
                results[experiment.name] = running[slot][1]
            time.sleep(0.2)
            for slot, (process, result, started, logfile) in list(running.items()):
                if process.poll() is None:
                    continue
                logfile.close()
                del running[slot]
                result.returncode = process.returncode
                result.seconds = time.monotonic() - started
                summary_file = result.run_dir / "summary.json"
                if summary_file.is_file():
                    result.summary = json.loads(summary_file.read_text())
                report(
                    f"{result.name}: {result.status} after {result.seconds:.0f} s "
                    f"(log: {result.run_dir / 'train.log'})"
                )
    finally:
        for process, result, _, logfile in running.values():  # interrupted: stop the rest
            process.terminate()
            process.wait()
            logfile.close()
            result.returncode = process.returncode
    return [results[p.name] for p in planned if p.name in results]


def prepare_datasets(
    planned: Sequence[PlannedExperiment], report: Callable[[str], None]
) -> dict[str, str]:
    """Download or build each distinct dataset once, before any job starts; returns the
    experiments whose dataset failed, each with why.

    Parallel jobs would otherwise all download or render the same files at the same time.
    """
    from text_recognizer.training.run import build_datamodule

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
                report(f"dataset {data.name} failed: {error}")
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
) -> tuple[subprocess.Popen[bytes], JobResult, float, TextIO]:
    run_dir = new_run_dir(experiment.config)
    run_dir.mkdir(parents=True)
    env = {**os.environ, RUN_DIR_ENV: str(run_dir)}
    command = experiment.command(prefix)
    if gpus:
        env["CUDA_VISIBLE_DEVICES"] = str(slot % gpus)
        where = f"GPU {slot % gpus}"
    else:
        env["OMP_NUM_THREADS"] = str(threads)
        command += ["--set", f"trainer.num_threads={threads}"]
        where = f"CPU, {threads} thread{'s' if threads > 1 else ''}"
    logfile = (run_dir / "train.log").open("w")
    logfile.write(shlex.join(command) + "\n")
    logfile.flush()
    # An argument list, no shell: names and values cannot be read as shell syntax.
    process = subprocess.Popen(command, env=env, stdout=logfile, stderr=subprocess.STDOUT)  # noqa: S603
    report(f"{experiment.name}: started on {where} in {run_dir}")
    result = JobResult(experiment.name, run_dir, command=command)
    return process, result, time.monotonic(), logfile


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
