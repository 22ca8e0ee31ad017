"""Hyperparameter sweeps with Ray Tune: grid, random, Bayesian (Optuna TPE) and PBT.

A sweep file names a base experiment and a search space over its dotted config keys::

    sweep: chars_lr
    base: chars_lenet.yaml
    set: {trainer.max_epochs: 4}
    search:
      optimizer.lr: {loguniform: [1.0e-4, 1.0e-2]}
      data.batch_size: {choice: [64, 128]}
    algorithm: random          # grid | random | bayes | pbt
    samples: 8

Every trial is an ordinary run (``runs/<sweep>/<trial>/<time>/``, with its config,
checkpoints and summary) trained by :func:`~text_recognizer.training.run.run_experiment`
inside a Ray worker, reporting the validation metrics to Tune after every epoch. Tune's
own records (the trial table, its state for ``--resume``) go to ``runs/<sweep>/tune/``.
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import math
import os
import shlex
import shutil
import signal
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import lightning as L
from pydantic import BaseModel, ConfigDict, Field, model_validator

from text_recognizer.errors import ConfigError, TextRecognizerError, require_modules
from text_recognizer.files import write_text_atomic
from text_recognizer.paths import data_dir, runs_dir
from text_recognizer.training.config import (
    NAME_PATTERN,
    VALIDATION_METRICS,
    ExperimentConfig,
    InitConfig,
    apply_overrides,
    load_config,
    parse_config,
)
from text_recognizer.training.experiments import format_value, read_yaml_model
from text_recognizer.training.run import (
    build_datamodule,
    has_checkpoint,
    refuse_pages,
    run_experiment,
)

log = logging.getLogger(__name__)

DISTRIBUTIONS = ("choice", "grid", "uniform", "loguniform", "randint")
#: Where a trial's network weights are kept for PBT to copy to another trial.
WEIGHTS = "weights.ckpt"


class SweepConfig(BaseModel):
    """A sweep: a base experiment, the keys to search and how to search them."""

    model_config = ConfigDict(extra="forbid")

    sweep: str = Field(pattern=NAME_PATTERN, description="sweep name: runs/<sweep>/<trial>/...")
    base: Path = Field(description="the experiment config every trial starts from")
    set: dict[str, Any] = Field(default_factory=dict, description="overrides for every trial")
    search: dict[str, dict[str, list[Any]]] = Field(
        min_length=1,
        description="dotted key -> one of {choice: [a, b, ...]}, {grid: [a, b, ...]}, "
        "{uniform: [low, high]}, {loguniform: [low, high]}, {randint: [low, high]} "
        "(high excluded)",
    )
    algorithm: Literal["grid", "random", "bayes", "pbt"] = Field(
        "random",
        description="grid: every combination of the grid values; random: sample each key; "
        "bayes: Optuna's TPE picks the next trial from the results so far; pbt: population "
        "based training, trials copy the best trials' weights and perturb their values",
    )
    samples: int | None = Field(
        None, ge=1, description="trials; default 8 (grid: times the whole grid is run, default 1)"
    )
    metric: str | None = Field(None, description="what to optimise; default: the checkpoint's")
    mode: Literal["min", "max"] | None = Field(None, description="default: the checkpoint's")
    scheduler: Literal["fifo", "asha"] = Field(
        "fifo", description="asha stops trials that trail the others early (not with pbt)"
    )
    grace_epochs: int = Field(1, ge=1, description="asha: epochs every trial gets at least")
    perturbation_epochs: int = Field(1, ge=1, description="pbt: epochs between exploits")
    concurrent: int = Field(2, ge=1, description="trials trained at the same time")
    cpus_per_trial: float = Field(1.0, gt=0, description="CPU cores Ray reserves per trial")
    gpus_per_trial: float = Field(0.0, ge=0, description="GPUs Ray reserves per trial")
    seed: int = Field(0, description="seed of the search itself (trials use the base's)")

    @model_validator(mode="after")
    def _check(self) -> SweepConfig:
        problems = [p for key, spec in self.search.items() if (p := self._check_key(key, spec))]
        if self.algorithm == "pbt" and self.scheduler == "asha":
            problems.append("pbt is its own scheduler: leave scheduler at fifo")
        if problems:  # all of them at once: one run to fix the file, not one per mistake
            raise ValueError("\n  ".join(problems))
        return self

    def _check_key(self, key: str, spec: dict[str, list[Any]]) -> str | None:
        """What is wrong with one search key's distribution, if anything."""
        if len(spec) != 1 or next(iter(spec)) not in DISTRIBUTIONS:
            return f"search.{key} must be one of {{{', '.join(DISTRIBUTIONS)}}}"
        (kind, values), *_ = spec.items()
        if not values:
            return f"search.{key}.{kind} needs values"
        number = int if kind == "randint" else (int, float)
        if kind in ("uniform", "loguniform", "randint") and not all(
            isinstance(v, number) and not isinstance(v, bool) for v in values
        ):
            numbers = "whole numbers" if kind == "randint" else "numbers"
            hint = ""
            if any(isinstance(v, str) and _is_float(v) for v in values):
                hint = " (YAML reads 1e-3 as text: write 1.0e-3)"
            return f"search.{key}.{kind} takes {numbers}: [low, high], not {values}{hint}"
        if kind in ("uniform", "loguniform", "randint") and (
            len(values) != 2 or not values[0] < values[1]
        ):
            return f"search.{key}.{kind} must be [low, high] with low < high"
        if kind == "loguniform" and values[0] <= 0:
            return f"search.{key}.loguniform needs a low above 0"
        if key.split(".")[0] in ("name", "group"):
            return f"search.{key}: the sweep names its trials"
        if self.algorithm == "grid" and kind not in ("grid", "choice"):
            return f"search.{key}: algorithm grid takes lists (grid or choice)"
        if self.algorithm in ("bayes", "pbt") and kind == "grid":
            return f"search.{key}: algorithm {self.algorithm} cannot take grid"
        if self.algorithm == "pbt" and key.split(".")[0] in ("network", "data", "model"):
            return (
                f"search.{key}: pbt copies weights between trials, so it can only change "
                "training settings (optimizer, scheduler, ...), not the network or data"
            )
        return None


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


class SweepInterruptedError(TextRecognizerError):
    """Ctrl-C or SIGTERM stopped the sweep; ``--resume`` finishes it."""

    def __init__(self, what: str, command: str | None, sigterm: bool = False) -> None:
        self.exit_code = 143 if sigterm else 130  # what a shell reports for these signals
        then = f"finish it with: {command}" if command else "nothing was saved: start it again"
        how = "stopped (SIGTERM)" if sigterm else "interrupted"
        super().__init__(f"sweep {how}: {what}; {then}")


#: The signal that stopped the last ``run_sweep`` of this process, if one did: "SIGTERM"
#: (a scheduler's stop, ``kill``) or None (finished, or Ctrl-C).
stopped_by: str | None = None


@contextlib.contextmanager
def _sigterm_stops_tune() -> Iterator[None]:
    """SIGTERM stops the sweep as Ctrl-C does (Tune saves its state, the table is printed).
    Ray's own handler in the driver printed a crash report and aborted (exit 134), saying
    nothing of --resume. Tune stops on SIGUSR1 as on SIGINT: SIGTERM is passed on as that."""
    global stopped_by
    stopped_by = None

    def stop(signum: int, frame: Any) -> None:
        global stopped_by
        stopped_by = "SIGTERM"
        if signal.getsignal(signal.SIGUSR1) in (signal.SIG_DFL, signal.SIG_IGN, None):
            raise KeyboardInterrupt  # Tune's own handler is not there yet (or any more)
        os.kill(os.getpid(), signal.SIGUSR1)

    if not hasattr(signal, "SIGUSR1") or threading.current_thread() is not threading.main_thread():
        yield  # Windows, or a thread: signals are not ours to take
        return
    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def resume_command(path: Path, address: str | None) -> str:
    command = f"text-recognizer sweep {shlex.quote(str(path))} --resume"
    return command + (f" --address {shlex.quote(address)}" if address else "")


#: What a trial is at the end: finished (ASHA may have stopped it early, as planned),
#: failed, or, when the sweep was interrupted, stopped mid-way or not started at all.
UNFINISHED = ("stopped", "not started")


class _NoRayResumeHint(logging.Filter):
    """Ray's hint (``Tuner.restore(...)``) is its Python API; the CLI prints its own."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Tuner.restore(" not in record.getMessage()


def load_sweep(path: Path) -> SweepConfig:
    keys = ", ".join(SweepConfig.model_fields)
    sweep = read_yaml_model(path, SweepConfig, "sweep", lambda raw: f"\n  (keys: {keys})")
    written = sweep.base
    if not written.is_absolute():
        sweep.base = Path(path).parent / written
    if not sweep.base.is_file():  # said here: load_config would name only the joined path
        relative = "" if written.is_absolute() else ", read relative to the sweep file's folder"
        raise ConfigError(
            f"sweep {path}: its base {sweep.base} does not exist (base: {written}{relative}); "
            f"fix base in {path}"
        )
    return sweep


def base_config(sweep: SweepConfig) -> dict[str, Any]:
    """The base experiment with the sweep's fixed overrides, checked, as plain data."""
    overrides = [f"{k}={format_value(v)}" for k, v in sweep.set.items()]
    config = load_config(sweep.base, [*overrides, f"group={sweep.sweep}", "name=base"])
    raw = config.model_dump(mode="json")
    if raw["init"] and not Path(raw["init"]["weights"]).is_absolute():
        local = Path(raw["init"]["weights"])
        if local.exists():  # trials run in another folder: pin the path
            raw["init"]["weights"] = str(local.resolve())
    return raw


def trial_config(base: dict[str, Any], params: dict[str, Any], name: str) -> ExperimentConfig:
    """``base`` with a trial's values and name; every value checked by the schema."""
    overrides = [f"{k}={format_value(v)}" for k, v in params.items()]
    return parse_config(apply_overrides(copy.deepcopy(base), [*overrides, f"name={name}"]))


def reported_metrics(model: str) -> tuple[str, ...]:
    """What a trial reports to Tune at every validation, the first included (Tune refuses a
    result without the metric; train/acc and train/loss_epoch come after the first)."""
    return (*VALIDATION_METRICS[model], "train/loss")


def check_search(sweep: SweepConfig, base: dict[str, Any], metric: str, path: Path) -> None:
    """Fail before Ray starts on what would fail every trial: a search key the experiment
    does not have, or a metric its model does not report; and on pages any trial would
    draw (a data key's list)."""
    # Whether a key exists does not depend on the value drawn: one point of the space shows
    # it (each list's first value, each range's low). A second point, inside each range,
    # shows a type every draw breaks: uniform draws 2.27 for an int key, never its low 1.
    lows = {key: next(iter(spec.values()))[0] for key, spec in sweep.search.items()}
    inside = {**lows, **{key: _inside(spec) for key, spec in sweep.search.items()}}
    for sample in (lows, inside):
        try:
            config = trial_config(base, sample, "trial_00000")
        except ConfigError as error:
            values = ", ".join(f"{k}={format_value(v)}" for k, v in sample.items())
            hint = ""
            if sample is inside and "integer" in str(error):
                hint = " (uniform and loguniform draw fractions: use randint for a whole number)"
            raise ConfigError(
                f"sweep {path}: its trials' configs would be refused (checked with {values}): "
                f"{error}\n  fix search in {path}{hint}"
            ) from None
    # Pages are refused by every trial that draws them: each list's values are looked at.
    for key, spec in sweep.search.items():
        (kind, choices), *_ = spec.items()
        if key.startswith("data.") and kind in ("choice", "grid"):
            for value in choices:
                try:
                    refuse_pages(trial_config(base, {**lows, key: value}, "trial_00000"))
                except ConfigError as error:
                    raise ConfigError(
                        f"sweep {path}: the trials with {key}={format_value(value)} would be "
                        f"refused: {error}\n  fix search in {path}"
                    ) from None
    reported = reported_metrics(config.model.name)
    if metric not in reported:
        source = "metric" if sweep.metric else f"metric (from {sweep.base}'s checkpoint monitor)"
        raise ConfigError(
            f"sweep {path}: {source} {metric!r} is not reported: a {config.model.name} model "
            f"reports {', '.join(reported)} after every validation; set metric to one of them"
        )


def _inside(spec: dict[str, list[Any]]) -> Any:
    """A value a range draws that is not one of its ends (a list's first value otherwise)."""
    (kind, values), *_ = spec.items()
    if kind == "uniform":
        return values[0] + 0.382 * (values[1] - values[0])
    if kind == "loguniform":
        return values[0] * (values[1] / values[0]) ** 0.382
    return values[0]


def trial_error(error: BaseException | None) -> str | None:
    """A failed trial's own message (Ray wraps it in its traceback): what the CLI prints."""
    if error is None:
        return None
    cause = getattr(error, "cause", None) or error
    if isinstance(cause, TextRecognizerError):
        return str(cause)
    return f"{type(cause).__name__}: {cause}".strip()


def sweep_samples(sweep: SweepConfig) -> int:
    return sweep.samples or (1 if sweep.algorithm == "grid" else 8)


def grid_keys(sweep: SweepConfig) -> dict[str, list[Any]]:
    """The keys whose every value runs (each combination ``samples`` times)."""
    grids = {}
    for key, spec in sweep.search.items():
        (kind, values), *_ = spec.items()
        if kind == "grid" or (kind == "choice" and sweep.algorithm == "grid"):
            grids[key] = values
    return grids


def search_space(sweep: SweepConfig) -> dict[str, Any]:
    from ray import tune

    grids = grid_keys(sweep)
    space: dict[str, Any] = {}
    for key, spec in sweep.search.items():
        (kind, values), *_ = spec.items()
        if key in grids:
            space[key] = tune.grid_search(values)
        elif kind == "choice":
            space[key] = tune.choice(values)
        elif kind == "uniform":
            space[key] = tune.uniform(*values)
        elif kind == "loguniform":
            space[key] = tune.loguniform(*values)
        else:
            space[key] = tune.randint(*values)
    return space


class TuneReport(L.Callback):
    """Reports every validation's metrics to Tune; for PBT also the network's weights, so
    that a trial can continue from another's."""

    def __init__(self, with_weights: bool, epochs_before: int = 0) -> None:
        self.with_weights = with_weights
        self.epochs_before = epochs_before  # a PBT trial that went on from another's weights

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        from ray import tune

        metrics: dict[str, Any] = {k: float(v) for k, v in trainer.callback_metrics.items()}
        metrics["epoch"] = self.epochs_before + trainer.current_epoch + 1
        metrics["run_dir"] = trainer.default_root_dir
        if not self.with_weights:
            tune.report(metrics)
            return
        with tempfile.TemporaryDirectory() as folder:
            trainer.save_checkpoint(Path(folder) / WEIGHTS, weights_only=True)
            (Path(folder) / "epochs.json").write_text(json.dumps(metrics["epoch"]))
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(folder))


def unfinished_run(group: str, name: str) -> Path | None:
    """The trial's latest run folder if it stopped before the end (a checkpoint, no summary).

    Either checkpoint counts, as for ``train --resume``: a trial stopped after a mid-epoch
    validation has only ``best.ckpt``, and a damaged ``last.ckpt`` falls back to it.
    """
    runs = sorted(path for path in (runs_dir() / group / name).glob("*") if has_checkpoint(path))
    if runs and not (runs[-1] / "summary.json").exists():
        return runs[-1]
    return None


def train_trial(params: dict[str, Any], base: dict[str, Any], pbt: bool, resume: bool) -> None:
    """One trial, in a Ray worker: an ordinary run under ``runs/<sweep>/<trial>/``."""
    from ray import tune

    config = trial_config(base, params, tune.get_context().get_trial_name())
    if resume and not pbt and (unfinished := unfinished_run(config.group, config.name)):
        # A sweep stopped mid-trial and resumed (--resume): the trial goes on exactly.
        run_experiment(config, run_dir=unfinished, resume=True, callbacks=[TuneReport(pbt)])
        return
    checkpoint = tune.get_checkpoint()
    if checkpoint is None:
        run_experiment(config, callbacks=[TuneReport(pbt)])
        return
    # PBT: go on from the weights of the trial it copies. as_directory() gives the
    # checkpoint's own folder under runs/<sweep>/tune/, which stays, for config.yaml's
    # init.weights to name; to_directory() copied it to a /tmp folder nobody removed.
    with checkpoint.as_directory() as folder_name:
        folder = Path(folder_name)
        done = json.loads((folder / "epochs.json").read_text())
        config.init = InitConfig(weights=str(folder / WEIGHTS), freeze_batchnorm=False)
        config.trainer.max_epochs -= done
        if config.trainer.max_epochs >= 1:
            run_experiment(config, callbacks=[TuneReport(pbt, epochs_before=done)])


def run_sweep(
    path: Path,
    samples: int | None = None,
    concurrent: int | None = None,
    address: str | None = None,
    resume: bool = False,
) -> tuple[str, list[dict[str, Any]]]:
    """Run (or, with ``resume``, finish) the sweep: the metric, and one summary row per
    trial, best first (also written to ``runs/<sweep>/sweep.json``)."""
    sweep = load_sweep(path)
    require_modules(
        ["ray"] + (["optuna"] if sweep.algorithm == "bayes" else []), "sweeps need", "sweep"
    )
    if samples is not None:
        sweep.samples = samples
    if concurrent is not None:
        sweep.concurrent = concurrent
    storage = (runs_dir() / sweep.sweep / "tune").resolve()
    if not resume and storage.exists():
        raise ConfigError(
            f"{storage.parent} holds a sweep named {sweep.sweep} already: finish it with "
            "--resume, or give this one another name (or delete that folder)"
        )
    base = base_config(sweep)
    monitor = base["callbacks"]["checkpoint"]
    metric = sweep.metric or monitor["monitor"]
    check_search(sweep, base, metric, path)
    if sweep.mode is None and metric != monitor["monitor"]:
        # The checkpoint's mode is for its own metric: val/loss under val/acc's "max" would
        # be maximised.
        raise ConfigError(
            f"sweep {path}: metric {metric} is not the checkpoint's ({monitor['monitor']}): say "
            "whether to minimise or maximise it: mode: min or mode: max"
        )
    mode = sweep.mode or monitor["mode"]

    # Ray reports usage statistics to its makers unless told not to; this project sends
    # nothing. A local Ray listens on this machine's network address unless told to keep to
    # loopback, as it does on macOS and Windows (read when Ray is first imported).
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if address is None:
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    import ray
    from ray import tune

    # Trials run in other processes and folders: hand them this process's data and runs roots.
    env = {
        "TEXT_RECOGNIZER_DATA": str(data_dir().resolve()),
        "TEXT_RECOGNIZER_RUNS": str(runs_dir().resolve()),
        **{k: v for k, v in os.environ.items() if k in ("WANDB_MODE", "HF_HUB_OFFLINE")},
    }
    if not resume:
        log.info("preparing dataset %s", base["data"]["name"])
        build_datamodule(parse_config(base)).prepare_data()  # once, before trials race for it
    # -q: nothing; default: Tune's trial table as it changes; -v: and every result, with
    # the trials' own log lines; -vv: all Tune says.
    level = logging.getLogger("text_recognizer").getEffectiveLevel()
    verbose = {logging.ERROR: 0, logging.WARNING: 1, logging.INFO: 2}.get(level, 3)
    logging.getLogger("ray.tune.tune").addFilter(_NoRayResumeHint())
    starts_ray = address is None and not os.environ.get("RAY_ADDRESS") and not ray.is_initialized()
    context = ray.init(
        address=address,
        runtime_env={"env_vars": env},
        include_dashboard=False,
        configure_logging=False,
        ignore_reinit_error=True,
        log_to_driver=verbose >= 2,
    )
    # The Ray started here leaves its session folder (/tmp/ray/session_*) behind at every
    # sweep; what the sweep keeps is in runs/<sweep>/, so the folder goes when Ray does.
    # A local ray.init gives a RayContext; its type says BaseContext, which lacks the info.
    info = getattr(context, "address_info", None) or {}
    session = info.get("session_dir") if starts_ray else None
    try:
        trainable = tune.with_resources(
            tune.with_parameters(
                train_trial, base=base, pbt=sweep.algorithm == "pbt", resume=resume
            ),
            {"cpu": sweep.cpus_per_trial, "gpu": sweep.gpus_per_trial},
        )
        if resume:
            where = storage / sweep.sweep
            if not tune.Tuner.can_restore(str(where)):
                raise ConfigError(f"no sweep state to resume in {where}")
            tuner = tune.Tuner.restore(str(where), trainable, resume_errored=True)
        else:
            tuner = tune.Tuner(
                trainable,
                param_space=search_space(sweep),
                tune_config=_tune_config(sweep, metric, mode),
                run_config=tune.RunConfig(
                    name=sweep.sweep, storage_path=str(storage), verbose=verbose
                ),
            )
        with _sigterm_stops_tune():
            results = tuner.fit()
    except KeyboardInterrupt:  # a second Ctrl-C: Tune gives SIGINT back after the first
        saved = tune.Tuner.can_restore(str(storage / sweep.sweep))
        command = resume_command(path, address) if saved else None
        raise SweepInterruptedError(
            "no table of the trials was written", command, sigterm=stopped_by == "SIGTERM"
        ) from None
    finally:
        ray.shutdown()
        if session:
            shutil.rmtree(session, ignore_errors=True)
    # Tune's first Ctrl-C ends fit() as if done, and stops the trials it ran as if they had
    # finished: only a trial that finished or failed has a last result marked done or an
    # error. The search makes trials as slots free up, so those not made yet are missing.
    trials = [results[index] for index in range(len(results))]
    planned = sweep_samples(sweep) * math.prod(len(v) for v in grid_keys(sweep).values())
    interrupted = len(trials) < planned or any(
        not result.error and not trial_finished(result.metrics or {}) for result in trials
    )
    rows = best_first(
        [trial_row(result, sweep, metric, mode, interrupted) for result in trials], mode
    )
    if interrupted:  # the trials the search had yet to make: no name nor values yet
        blank = {"trial": None, "params": dict.fromkeys(sweep.search), "best": None}
        more = {"epochs": 0, "run_dir": None, "status": "not started", "error": None}
        more["traceback"] = None
        rows += [{**blank, **more} for _ in range(planned - len(trials))]
    summary = {
        "sweep": sweep.sweep,
        "metric": metric,
        "mode": mode,
        "interrupted": interrupted,
        "stopped_by": stopped_by if interrupted else None,
        "best_command": best_command(sweep, rows),
        "trials": rows,
    }
    write_text_atomic(runs_dir() / sweep.sweep / "sweep.json", json.dumps(summary, indent=2))
    return metric, rows


def trial_row(
    result: Any, sweep: SweepConfig, metric: str, mode: str, interrupted: bool
) -> dict[str, Any]:
    """A trial's line of the table and of sweep.json, from Tune's result for it."""
    history = result.metrics_dataframe
    scores = history[metric] if history is not None and metric in history else None
    best = None
    if scores is not None and not scores.empty:
        best = float(scores.min() if mode == "min" else scores.max())
    last = result.metrics or {}
    params = {k: (result.config or {}).get(k) for k in sweep.search}
    run_dir = last.get("run_dir")
    if sweep.algorithm == "pbt" and (own := own_results(Path(result.path), metric)):
        # PBT's last exploit hands a trial the other's last result and new values it
        # never trained with: the trial's own results say what it did.
        top = (min if mode == "min" else max)(own, key=lambda r: float(r[metric]))
        best = float(top[metric])
        params = {k: top.get("config", {}).get(k) for k in sweep.search}
        run_dir = top.get("run_dir")  # the stretch that scored best, its checkpoints
        last = {**last, "epoch": max(int(r.get("epoch", 0)) for r in own)}
    # Never a finite score (NaN or inf, a learning rate too high): no best, ranked last,
    # where NaN compared as neither better nor worse and could top the table.
    diverged = best is not None and not math.isfinite(best)
    if diverged:
        best = None
    trial = Path(result.path).name
    status = "finished"
    if result.error:
        status = "failed"
    elif interrupted and not trial_finished(last):
        started = (runs_dir() / sweep.sweep / trial).exists()
        status = "stopped" if started else "not started"
    elif diverged:
        status = "diverged"
    return {
        "trial": trial,
        "params": params,
        "best": best,
        "epochs": int(last.get("epoch", 0)),
        "run_dir": run_dir,
        "status": status,
        "error": trial_error(result.error),
        "traceback": str(result.error) if result.error else None,
    }


def best_first(rows: list[dict[str, Any]], mode: str) -> list[dict[str, Any]]:
    """The rows ordered by their best score, those without one last."""
    sign = 1 if mode == "min" else -1
    return sorted(rows, key=lambda r: (r["best"] is None, (r["best"] or 0) * sign))


def best_command(sweep: SweepConfig, rows: list[dict[str, Any]]) -> str | None:
    """The ``train`` command for the best trial's values on the base config, every value in
    full (the table rounds them), or None when no trial scored. The sweep's own ``set`` is
    left out: it usually shortens the trials, and this trains at full length."""
    if not rows or rows[0]["best"] is None:
        return None
    args = ["text-recognizer", "train", str(sweep.base)]
    for key, value in rows[0]["params"].items():
        args += ["--set", f"{key}={format_value(value)}"]
    return shlex.join(args)


def own_results(folder: Path, metric: str) -> list[dict[str, Any]]:
    """A trial's own results with a finite metric, from Tune's ``result.json`` in its folder
    (one JSON object a line, with the values it trained with under ``config``)."""
    try:
        lines = (folder / "result.json").read_text(encoding="utf-8").splitlines()
    except OSError:
        return []
    results = []
    for line in lines:
        with contextlib.suppress(ValueError):
            result = json.loads(line)
            score = result.get(metric) if isinstance(result, dict) else None
            if isinstance(score, (int, float)) and math.isfinite(score):
                results.append(result)
    return results


def trial_finished(last: dict[str, Any]) -> bool:
    """Whether a trial ended, from its last result: Tune marks it ``done``, but the state it
    saves may hold a trial that finished by itself without the mark, so a resumed sweep
    read such trials as stopped; their run folders' ``summary.json`` says they finished."""
    if last.get("done"):
        return True
    run_dir = last.get("run_dir")
    return isinstance(run_dir, str) and bool(run_dir) and (Path(run_dir) / "summary.json").is_file()


def trial_name(trial: Any) -> str:
    """``trial_00003``: its run folder's name (Tune's own ids start with a random hex)."""
    return f"trial_{trial.trial_id.rsplit('_', 1)[-1]}"


def _tune_config(sweep: SweepConfig, metric: str, mode: str) -> Any:
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler, PopulationBasedTraining
    from ray.tune.search.basic_variant import BasicVariantGenerator

    # Tune applies max_concurrent_trials to searchers such as Optuna's, not to this one.
    search_alg: Any = BasicVariantGenerator(
        random_state=sweep.seed, max_concurrent=sweep.concurrent
    )
    scheduler: Any = FIFOScheduler()
    if sweep.algorithm == "bayes":
        from ray.tune.search.optuna import OptunaSearch

        search_alg = OptunaSearch(seed=sweep.seed)
    elif sweep.algorithm == "pbt":
        scheduler = PopulationBasedTraining(
            time_attr="epoch",
            perturbation_interval=sweep.perturbation_epochs,
            hyperparam_mutations=search_space(sweep),
            synch=True,
        )
    if sweep.scheduler == "asha":
        scheduler = ASHAScheduler(time_attr="epoch", grace_period=sweep.grace_epochs)
    return tune.TuneConfig(
        trial_name_creator=trial_name,
        trial_dirname_creator=trial_name,
        metric=metric,
        mode=mode,
        num_samples=sweep_samples(sweep),
        search_alg=search_alg,
        scheduler=scheduler,
        max_concurrent_trials=sweep.concurrent if sweep.algorithm == "bayes" else None,
    )
