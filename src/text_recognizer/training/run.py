"""Run an experiment: build data, network and model from a config, train with Lightning.

Each run gets ``runs/<group>/<name>/<timestamp>/`` holding the resolved ``config.yaml``,
``checkpoints/{best,last}.ckpt``, ``metrics.csv``, TensorBoard events and
``summary.json``; ``--resume`` continues the same folder from ``last.ckpt`` (from
``best.ckpt`` where ``last.ckpt`` is missing or unreadable).
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import json
import logging
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Iterator, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import lightning as L
import torch
import yaml
from lightning.fabric.utilities.exceptions import MisconfigurationException
from lightning.pytorch import callbacks as lc
from lightning.pytorch import loggers as ll
from lightning.pytorch.loggers.csv_logs import ExperimentWriter

from text_recognizer.data import DATASETS, BaseDataModule
from text_recognizer.errors import ConfigError, DataError, TextRecognizerError
from text_recognizer.models import MODELS
from text_recognizer.models.loading import load_initial_weights
from text_recognizer.networks import NETWORKS
from text_recognizer.paths import runs_dir
from text_recognizer.training.callbacks import (
    AtomicCheckpointIO,
    ConfigRecord,
    DataPositionCallback,
    LastCheckpoint,
    MaxTimeForecast,
    ProgressLog,
    RngStateCallback,
    TrainingTimeCallback,
)
from text_recognizer.training.config import (
    ExperimentConfig,
    dump_config,
    load_config,
    parse_config,
    read_yaml,
)

log = logging.getLogger(__name__)

#: A run folder chosen by a launcher: ``experiments run`` sets it for each job, and rank 0
#: of a DDP run sets it for the other ranks, which re-run the same command (a timestamped
#: folder chosen again by each rank would differ).
RUN_DIR_ENV = "TEXT_RECOGNIZER_RUN_DIR"


def refuse_pages(config: ExperimentConfig) -> None:
    """A ``ConfigError`` where the config's data are pages (iam_paragraphs,
    synthetic_paragraphs, a folder of kind paragraph): those are read by finding their lines
    and reading each with the line model, so they are refused before anything is built,
    downloaded or rendered."""
    name = config.data.name
    if getattr(DATASETS.get(name), "kind", None) == "paragraph" or (
        config.data.args.get("kind") == "paragraph"
    ):
        raise ConfigError(
            f"data {name!r} holds pages, and models train on lines or characters: train the "
            "line model on lines (iam_lines, synthetic_lines, a folder of line images) and "
            f"score it on these pages with `text-recognizer evaluate MODEL --data {name}`"
        )


def build_datamodule(config: ExperimentConfig) -> BaseDataModule:
    name = config.data.name
    refuse_pages(config)
    return DATASETS.build(
        name,
        config.data.args,
        batch_size=config.data.batch_size,
        num_workers=config.data.num_workers,
        seed=config.seed,
    )


def build_model(
    config: ExperimentConfig, datamodule: BaseDataModule, load_init: bool = True
) -> L.LightningModule:
    """The LightningModule, with data-dependent network arguments filled in and checked.

    With ``config.init`` its network starts from trained weights (``load_init=False``
    skips them: a resumed run restores its own).
    """
    injected = {
        "num_classes": len(datamodule.charset),
        "input_size": datamodule.input_height,
        "input_height": datamodule.input_height,
    }
    network_args = {**config.network.args, **NETWORKS.accepted(config.network.name, injected)}
    NETWORKS.build(config.network.name, network_args)  # fail on bad args before anything else
    model = MODELS.build(
        config.model.name,
        config.model.args,
        network=config.network.name,
        network_args=network_args,
        charset_tokens=list(datamodule.charset.tokens),
        input_height=datamodule.input_height,
        optimizer=config.optimizer.model_dump(),
        scheduler=config.scheduler.model_dump(),
        freeze_batchnorm=config.init.freeze_batchnorm if config.init else False,
    )
    if config.init is not None and load_init:
        init_network(model, config, datamodule)
    return model


def init_network(
    model: L.LightningModule, config: ExperimentConfig, datamodule: BaseDataModule
) -> None:
    """Load ``config.init.weights`` into the model's network, or say what does not fit."""
    assert config.init is not None
    kind = getattr(model, "kind", "char")
    weights = load_initial_weights(config.init.weights, kind)
    where = f"init.weights ({weights.source})"
    if weights.kind != kind:  # said first: every other difference follows from it
        raise ConfigError(
            f"{where} are a {weights.kind} model's weights, and this config trains a {kind} "
            f"model: start from a {kind} model's run, .ckpt or .onnx (or 'default')"
        )
    if list(datamodule.charset.tokens) != weights.charset_tokens:
        raise ConfigError(
            f"{where} was trained with a different charset ({len(weights.charset_tokens)} "
            f"tokens) from the dataset's ({len(datamodule.charset)}): their outputs would "
            "name the wrong characters"
        )
    if datamodule.input_height != weights.input_height:
        raise ConfigError(
            f"{where} reads images {weights.input_height} px high, the dataset gives "
            f"{datamodule.input_height}: set data.args.input_height={weights.input_height}"
        )
    own = {"name": weights.network, "args": _plain_args(weights.network_args)}
    state = model.network.state_dict()  # type: ignore[union-attr]
    # A head used in training only (the transformer's CTC head) may be on one side alone:
    # the run's own starts fresh, the weights' is left behind.
    optional = tuple(getattr(model.network, "training_only_weights", ()))

    def differs(key: str) -> bool:
        if key in state and key in weights.state_dict:
            return state[key].shape != weights.state_dict[key].shape
        return not key.startswith(optional)

    differences = [key for key in sorted(set(state) | set(weights.state_dict)) if differs(key)]
    if weights.network != config.network.name or differences:
        raise ConfigError(
            f"{where} is a different network from the config's {config.network.name} "
            f"(first differing weights: {', '.join(differences[:3]) or 'none'}); set the "
            f"network section to the weights' own:\n"
            + yaml.safe_dump({"network": own}, sort_keys=False, default_flow_style=None)
        )
    if weights.folded_batchnorm and not config.init.freeze_batchnorm:
        raise ConfigError(
            f"{where}: an ONNX export has its batch norms folded into the convolutions, so "
            "they must stay frozen: set init.freeze_batchnorm: true (or start from a .ckpt)"
        )
    fresh = {key: value for key, value in state.items() if key not in weights.state_dict}
    taken = {key: value for key, value in weights.state_dict.items() if key in state}
    model.network.load_state_dict({**fresh, **taken})  # type: ignore[union-attr]
    log.info("network weights from %s", weights.source)
    if fresh:
        log.info("not in those weights, trained from scratch: %s", ", ".join(sorted(fresh)))


def _plain_args(args: dict[str, Any]) -> dict[str, Any]:
    """Network arguments as a config would write them (without the injected ones)."""
    injected = {"num_classes", "input_size", "input_height"}
    return {k: list(v) if isinstance(v, tuple) else v for k, v in args.items() if k not in injected}


def build_callbacks(config: ExperimentConfig, run_dir: Path) -> list[L.Callback]:
    cb = config.callbacks
    callbacks: list[L.Callback] = [
        # The first ModelCheckpoint is ``trainer.checkpoint_callback``: the best, for test/export.
        lc.ModelCheckpoint(
            dirpath=run_dir / "checkpoints",
            filename="best",
            monitor=cb.checkpoint.monitor,
            mode=cb.checkpoint.mode,
            save_top_k=1,
            enable_version_counter=False,
            auto_insert_metric_name=False,
        ),
        # The latest state, for resume. Not ``save_last``: since Lightning 2.6 it only
        # writes when the best improves.
        LastCheckpoint(
            run_dir / "checkpoints",
            every=None
            if cb.checkpoint.last_every_minutes is None
            else timedelta(minutes=cb.checkpoint.last_every_minutes),
        ),
        DataPositionCallback(),  # with it a mid-epoch last.ckpt resumes exactly
        ConfigRecord(config.model_dump(mode="json")),
        RngStateCallback(),
        TrainingTimeCallback(),
        MaxTimeForecast(fit=cb.fit_to_max_time),
    ]
    if cb.early_stopping is not None:
        es = cb.early_stopping
        callbacks.append(
            lc.EarlyStopping(
                monitor=es.monitor, mode=es.mode, patience=es.patience, min_delta=es.min_delta
            )
        )
    if cb.lr_monitor:
        callbacks.append(lc.LearningRateMonitor(logging_interval="step"))
    bar = cb.progress_bar
    if bar == "auto":
        bar = "tqdm" if sys.stderr.isatty() else "none"
    if bar == "rich":
        callbacks.append(lc.RichProgressBar())
    elif bar == "tqdm":
        callbacks.append(lc.TQDMProgressBar())
    else:  # a log file or a pipe: one line per validation, with -v
        callbacks.append(ProgressLog(cb.checkpoint.monitor))
    if cb.swa is not None:
        start = cb.swa.start_epoch
        callbacks.append(lc.StochasticWeightAveraging(swa_lrs=cb.swa.lr, swa_epoch_start=start))
    if cb.ema is not None:
        # Validation, the best/last checkpoints' ``state_dict`` and hence export see the
        # average; the raw weights ride along in the checkpoint so a resume continues both.
        callbacks.append(
            lc.EMAWeightAveraging(decay=cb.ema.decay, update_starting_at_step=cb.ema.start_step)
        )
    if config.logger.wandb is not None and config.logger.wandb.prediction_images > 0:
        from text_recognizer.training.wandb import PredictionImageLogger

        callbacks.append(PredictionImageLogger(config.logger.wandb.prediction_images))
    return callbacks


class MetricsCsvLogger(ll.CSVLogger):
    """Lightning's CSV logger, but a resumed run keeps its ``metrics.csv``.

    Lightning deletes the file when a logger opens a folder that has one, which would drop
    every metric logged before a kill. With ``resume_step`` the rows logged before that
    step are kept (later ones belong to training the checkpoint does not hold, which the
    resumed run repeats) and the new rows are appended.
    """

    def __init__(self, run_dir: Path, resume_step: int | None = None) -> None:
        super().__init__(save_dir=run_dir, name="", version="")
        self.resume_step = resume_step

    @property
    def experiment(self) -> Any:
        path = Path(self.log_dir) / "metrics.csv"
        kept = path.with_name(".metrics.csv.kept")  # what a kill at the wrong moment left
        source = path if path.is_file() else kept
        if self._experiment is not None or self.resume_step is None or not source.is_file():
            return super().experiment
        with source.open(newline="") as f:
            reader = csv.DictReader(f)
            header = list(reader.fieldnames or [])
            rows = [r for r in reader if int(float(r["step"] or 0)) < self.resume_step]
        with kept.open("w", newline="") as f:
            out = csv.DictWriter(f, fieldnames=header)
            out.writeheader()
            out.writerows(rows)
        writer = super().experiment  # deletes metrics.csv
        if isinstance(writer, ExperimentWriter):  # rank 0
            kept.replace(path)
            writer.metrics_keys = header
        kept.unlink(missing_ok=True)
        return writer


def build_loggers(
    config: ExperimentConfig, run_dir: Path, resume_step: int | None = None
) -> list[Any]:
    loggers: list[Any] = [MetricsCsvLogger(run_dir, resume_step)]
    if config.logger.tensorboard:
        loggers.append(
            ll.TensorBoardLogger(
                save_dir=run_dir, name="tensorboard", version="", default_hp_metric=False
            )
        )
    if config.logger.wandb is not None:
        from text_recognizer.training.wandb import build_wandb_logger

        loggers.append(build_wandb_logger(config, run_dir))
    return loggers


def cpu_has_bf16() -> bool:
    """Whether this CPU computes in bfloat16 natively (AVX512-BF16 or AMX)."""
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(torch.cpu, name, lambda: False)() for name in checks)


def _uses_cuda(accelerator: str) -> bool:
    return accelerator in ("gpu", "cuda") or (accelerator == "auto" and torch.cuda.is_available())


def resolve_precision(precision: str, accelerator: str) -> str:
    """The Lightning precision to train in: ``auto`` becomes bf16-mixed where the hardware
    has bfloat16 arithmetic, else 32-true.

    Without AVX512-BF16 or AMX, a CPU emulates bfloat16 and autocast is a trap: the
    shipped line network trained at 0.07x its float32 speed on an AVX2 host, against
    1.36x with AVX512-BF16 (``benchmarks/line_model_speed.py --bf16``). An explicit
    bf16-mixed there is kept, with a warning.
    """
    if _uses_cuda(accelerator):
        if precision == "auto":
            return "bf16-mixed" if torch.cuda.is_bf16_supported() else "32-true"
        return precision
    if accelerator not in ("cpu", "auto"):  # mps, tpu, ...: Lightning's defaults
        return "32-true" if precision == "auto" else precision
    native = cpu_has_bf16()
    if precision == "auto":
        resolved = "bf16-mixed" if native else "32-true"
        why = "has" if native else "has no"
        log.info("precision auto: %s (this CPU %s bfloat16 instructions)", resolved, why)
        return resolved
    if precision == "bf16-mixed" and not native:
        log.warning(
            "trainer.precision is bf16-mixed but this CPU has no bfloat16 instructions "
            "(avx512_bf16 or amx_bf16 in lscpu): autocast emulates them and trains >10x "
            "slower than 32-true. Set trainer.precision: auto (bf16-mixed only where the "
            "CPU has them) or 32-true."
        )
    return precision


def build_trainer(
    config: ExperimentConfig,
    run_dir: Path,
    resume_step: int | None = None,
    callbacks: Sequence[L.Callback] = (),
) -> L.Trainer:
    t = config.trainer
    if t.num_threads:
        torch.set_num_threads(t.num_threads)
    bar = config.callbacks.progress_bar
    precision = resolve_precision(t.precision, t.accelerator)
    all_callbacks = [*build_callbacks(config, run_dir), *callbacks]
    loggers = build_loggers(config, run_dir, resume_step)
    try:
        # Every TrainerConfig key but num_threads is a Lightning Trainer argument of that name.
        return L.Trainer(
            default_root_dir=run_dir,
            **t.model_dump(exclude={"num_threads", "precision"}),
            precision=precision,  # type: ignore[arg-type]
            callbacks=all_callbacks,
            logger=loggers,
            plugins=[AtomicCheckpointIO()],
            enable_progress_bar=bar != "none" and (bar != "auto" or sys.stderr.isatty()),
            enable_model_summary=logging.getLogger("text_recognizer").isEnabledFor(logging.INFO),
        )
    except (MisconfigurationException, ValueError, TypeError, ModuleNotFoundError) as error:
        # Only settings reach the Trainer here: a name it does not know (accelerator: foo),
        # devices it does not have (accelerator: gpu on a machine without one), or the
        # package they need (accelerator: tpu without torch_xla).
        chosen = ", ".join(f"{k}={getattr(t, k)!r}" for k in ("accelerator", "devices", "strategy"))
        raise ConfigError(
            f"Lightning refused the trainer settings ({chosen}): {error}".rstrip()
        ) from None


def new_run_dir(config: ExperimentConfig) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    run_dir = runs_dir() / config.group / config.name / stamp
    suffix = 1
    while run_dir.exists():
        suffix += 1
        run_dir = runs_dir() / config.group / config.name / f"{stamp}-{suffix}"
    return run_dir


def _run_order(run_dir: Path) -> tuple[str, int]:
    """``<date>-<time>[-<n>]`` folders sort by time, then by ``n`` (so -10 comes after -9)."""
    match = re.fullmatch(r"(\d{8}-\d{6})(?:-(\d+))?", run_dir.name)
    return (match[1], int(match[2] or 1)) if match else (run_dir.name, 0)


def latest_run(group: str | None = None, name: str | None = None) -> Path:
    """The newest run folder of ``group``/``name`` (any, when not given), for ``--resume last``."""
    pattern = f"{group or '*'}/{name or '*'}/*/config.yaml"
    runs = [path.parent for path in runs_dir().glob(pattern)]
    if not runs:
        what = "/".join(part for part in (group, name) if part) or "any experiment"
        raise ConfigError(f"no run of {what} under {runs_dir()} to resume")
    return max(runs, key=_run_order)


def _git(*args: str) -> str | None:
    """``git ARGS`` in the current folder: its output, or None outside a checkout."""
    try:
        out = subprocess.run(  # noqa: S603 - only this module's fixed arguments
            ["git", *args],  # noqa: S607 - git from PATH
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def git_commit() -> str | None:
    return _git("rev-parse", "HEAD") or None


def git_dirty() -> bool | None:
    """Whether tracked files differ from the commit: then ``git_commit`` alone cannot rebuild
    the run's code."""
    status = _git("status", "--porcelain", "--untracked-files=no")
    return None if status is None else bool(status)


def run_experiment(
    config: ExperimentConfig,
    run_dir: Path | None = None,
    resume: bool = False,
    callbacks: Sequence[L.Callback] = (),
) -> dict[str, Any]:
    """Prepare data, train, test the best checkpoint, and write ``summary.json``.

    ``callbacks`` join the config's (a sweep's trial reports to Ray Tune through one).

    Under DDP every rank runs this; only global rank 0 writes ``config.yaml`` and
    ``summary.json`` (Lightning already saves checkpoints and logs from rank 0 only).
    """
    run_dir = Path(run_dir or os.environ.get(RUN_DIR_ENV) or new_run_dir(config))
    last = run_dir / "checkpoints" / "last.ckpt"
    if resume and not has_checkpoint(run_dir):
        raise ConfigError(f"cannot resume: {last} does not exist (the run saved no checkpoint yet)")
    if not resume and _is_rank_zero() and (run_dir / "config.yaml").exists():
        # A second run there would replace its checkpoints and start a new metrics.csv.
        chosen = f" ({RUN_DIR_ENV} names it)" if os.environ.get(RUN_DIR_ENV) else ""
        raise ConfigError(
            f"{run_dir}{chosen} holds a run already: resume it with text-recognizer train "
            f"--resume {run_dir}, or train in another folder"
            + (f" (unset {RUN_DIR_ENV} for a new timestamped one)" if chosen else "")
        )
    created = not run_dir.exists()
    run_dir.mkdir(parents=True, exist_ok=True)
    try:
        with _sigterm_stops(run_dir, last), run_lock(run_dir):
            if _is_rank_zero():
                _remove_unfinished_saves(run_dir)
            return _train_and_test(config, run_dir, last, resume, callbacks)
    except BaseException:
        # A run that failed before it trained (a bad dataset argument, a setting Lightning
        # refuses) leaves no folder behind: its config.yaml would refuse a new run there
        # as "a run already", which could not be resumed either (no checkpoint).
        if created and not _trained_anything(run_dir):
            shutil.rmtree(run_dir, ignore_errors=True)
        raise


@contextlib.contextmanager
def _sigterm_stops(run_dir: Path, last: Path) -> Iterator[None]:
    """SIGTERM stops the run as Ctrl-C does outside ``fit`` and ``test`` too (preparing the
    data, building the trainer), where Lightning's handler is not installed: the process
    died there with no word, and left a folder with a config.yaml and no checkpoint, which
    could not be resumed. While Lightning's handler is installed it calls this one after
    its own, and stops the run itself."""
    if threading.current_thread() is not threading.main_thread():
        yield  # a sweep's trial in a thread: signals are not ours to take
        return

    def stop(signum: int, frame: Any) -> None:
        if signal.getsignal(signal.SIGTERM) is stop:  # not called by Lightning's handler
            raise TrainingInterruptedError(run_dir, last, sigterm=True)

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _remove_unfinished_saves(run_dir: Path) -> None:
    """Delete the temporary files of checkpoint saves a killed process left half-written
    (``AtomicCheckpointIO``): each is as large as a checkpoint, and a run killed again and
    again would fill its disk with them. Called with the run folder's lock held, so no save
    of another process is under way."""
    for unfinished in (run_dir / "checkpoints").glob(".*.ckpt.*.tmp"):
        unfinished.unlink(missing_ok=True)


def _trained_anything(run_dir: Path) -> bool:
    """Whether a run folder holds a checkpoint or logged metrics: work worth keeping."""
    return (run_dir / "metrics.csv").exists() or any((run_dir / "checkpoints").glob("*.ckpt"))


def _is_rank_zero() -> bool:
    """Whether this is the process that owns the run folder: not one of the ranks a DDP run
    started (they re-run the command in rank 0's folder), nor another node's."""
    return os.environ.get("LOCAL_RANK", "0") == "0" and os.environ.get("NODE_RANK", "0") == "0"


@contextlib.contextmanager
def run_lock(run_dir: Path) -> Iterator[None]:
    """Hold the run folder for this process: two processes training one folder (two
    ``--resume`` of it at once) would interleave checkpoints and rewrite each other's
    metrics.csv. DDP's other ranks share rank 0's hold; without ``fcntl`` (Windows) no
    lock is taken."""
    if not _is_rank_zero():
        yield
        return
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    with (run_dir / ".lock").open("a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "?"
            raise ConfigError(
                f"{run_dir} is being trained by another process (pid {holder}); wait for it "
                "to end, or stop it first"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _train_and_test(
    config: ExperimentConfig,
    run_dir: Path,
    last: Path,
    resume: bool,
    callbacks: Sequence[L.Callback],
) -> dict[str, Any]:
    """``run_experiment``'s work, inside the run folder's lock; ``resume``: from ``last``
    (or ``best.ckpt`` where ``last`` is missing or unreadable)."""
    resume_step = None
    point = None
    if resume:  # no readable checkpoint or an edited config.yaml: say so now
        point = find_resume_point(run_dir)
        resume_step = point.step
        if point.config is not None:
            _refuse_edited_config(config, point.config, run_dir)
        if point.instead_of_last is not None:
            _fall_back_to_best(point, run_dir)
    # The code that trains: a checkout may move on (a commit, a merge) while a run trains.
    code = {"git_commit": git_commit(), "git_dirty": git_dirty()}
    L.seed_everything(config.seed, workers=True, verbose=False)

    datamodule = build_datamodule(config)
    model = build_model(config, datamodule, load_init=not resume)
    log.info("preparing dataset %s", config.data.name)
    datamodule.prepare_data()  # download / build caches before training starts, with progress
    for split, what in (("train", "train on"), ("val", "validate on")):
        if why := datamodule.empty_split(split):  # before the trainer, not in its traceback
            raise DataError(f"nothing to {what}: {why}")
    trainer = build_trainer(config, run_dir, resume_step, callbacks)
    if trainer.is_global_zero:
        (run_dir / "config.yaml").write_text(dump_config(config))
    ckpt_path = str(point.path) if point is not None else None
    previous = os.environ.get(RUN_DIR_ENV)
    os.environ[RUN_DIR_ENV] = str(run_dir)  # inherited by the ranks DDP launches inside fit()
    try:
        with _without_lightning_warnings_that_do_not_apply():
            trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=False)
    except SystemExit:  # how Lightning ends fit on Ctrl-C (exit 1) and on SIGTERM (exit 0)
        raise TrainingInterruptedError(run_dir, last, sigterm=trainer.received_sigterm) from None
    except MisconfigurationException as error:  # a setting Lightning refuses at fit time
        raise ConfigError(f"Lightning refused the config: {error}") from None
    except ValueError as error:
        if "val_check_interval" in str(error):  # a count of batches over the epoch's
            raise ConfigError(
                f"trainer.val_check_interval = {config.trainer.val_check_interval} batches, "
                f"but an epoch here has {trainer.num_training_batches}: give at most that, or a "
                "fraction of an epoch (0.5: twice an epoch)"
            ) from None
        if "Tried to step" not in str(error):
            raise
        # OneCycleLR's schedule has a fixed length: a config.yaml edited for more epochs.
        raise ConfigError(
            f"the run's learning-rate schedule is over ({error}): its config.yaml asks for "
            f"more steps than it was started with. Train on in a new run: --set "
            f"init.weights={run_dir}"
        ) from None
    finally:
        if previous is None:
            del os.environ[RUN_DIR_ENV]
        else:
            os.environ[RUN_DIR_ENV] = previous

    # Read before testing: loading the best checkpoint for the test also restores this
    # callback's state, which would report the time and samples at the best epoch.
    timer = next(c for c in trainer.callbacks if isinstance(c, TrainingTimeCallback))  # type: ignore[attr-defined]
    training_s, samples = timer.total_s, timer.samples
    ended_by = _ended_by(trainer)
    trained = _trained(trainer)
    _say_how_it_ended(config, run_dir, trainer, ended_by, trained, resume_step)
    checkpoint = trainer.checkpoint_callback
    best_path = getattr(checkpoint, "best_model_path", "") or str(last)
    test_metrics: dict[str, float] = {}
    if why := datamodule.empty_split("test"):
        log.warning("not tested, the test split is empty: %s", why)
    elif datamodule.data_test is not None or hasattr(datamodule, "test_dataloader"):
        try:
            with _without_lightning_warnings_that_do_not_apply():
                results = trainer.test(
                    model,
                    datamodule=datamodule,
                    ckpt_path=best_path,
                    verbose=False,
                    weights_only=False,
                )
        except SystemExit:  # Ctrl-C or SIGTERM while testing: Lightning exits, silently
            raise TrainingInterruptedError(
                run_dir, last, sigterm=trainer.received_sigterm, testing=True
            ) from None
        test_metrics = {k: float(v) for k, v in (results[0] if results else {}).items()}
    best_score = getattr(checkpoint, "best_model_score", None)
    summary = {
        "name": config.name,
        "group": config.group,
        "run_dir": str(run_dir),
        "monitor": config.callbacks.checkpoint.monitor,
        "best_score": float(best_score) if best_score is not None else None,
        "best_checkpoint": best_path,
        # Whole epochs, and how far into the next one a run stopped mid-epoch got.
        "epochs": trained["epoch"],
        "partial_epoch": (
            {"batches": trained["batches"], "of": trainer.num_training_batches}
            if trained["batches"]
            else None
        ),
        "global_step": trainer.global_step,
        "ended_by": ended_by,
        "training_time_s": round(training_s, 2),
        # Per process: under DDP each rank counts its own share of the data.
        "train_samples": samples,
        "train_samples_per_s": round(samples / training_s, 1) if training_s else None,
        "precision": str(trainer.precision),
        "test": test_metrics,
        **code,
        "command": shlex.join(sys.argv),
    }
    if trainer.is_global_zero:
        (run_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


@contextlib.contextmanager
def _without_lightning_warnings_that_do_not_apply() -> Iterator[None]:
    with warnings.catch_warnings():
        # Lightning cannot see that DataPositionCallback starts the loader mid-epoch.
        warnings.filterwarnings(
            "ignore", message="You're resuming from a checkpoint that ended before the epoch ended"
        )
        # The run folder always holds config.yaml by now; MetricsCsvLogger keeps what a
        # resumed run's metrics.csv should keep, so "previous log files" lose nothing.
        warnings.filterwarnings("ignore", message="Experiment logs directory .* exists")
        # A resumed run's own checkpoints: last.ckpt is what it resumes from.
        warnings.filterwarnings("ignore", message="Checkpoint directory .* is not empty")
        # Checkpoints written before LastCheckpoint (2026-12-07) name the two unmonitored
        # ModelCheckpoints that wrote last.ckpt then; their states hold nothing to restore.
        warnings.filterwarnings(
            "ignore",
            message=r"Be aware that when using `ckpt_path`, callbacks used to create the "
            r"checkpoint need to be provided .* callbacks: \[(\"ModelCheckpoint\{'monitor': "
            r"None, [^\"]*\"(, )?)+\]\.$",
        )
        yield


def _trained(trainer: L.Trainer) -> dict[str, int]:
    """Whole epochs trained and batches into the next. Lightning's ``current_epoch`` counts
    an epoch cut short (``max_time``, ``max_steps``) as done, and after a resume that trained
    nothing counts none of it."""
    position = next(c for c in trainer.callbacks if isinstance(c, DataPositionCallback))  # type: ignore[attr-defined]
    return dict(position.position)


def _say_how_it_ended(
    config: ExperimentConfig,
    run_dir: Path,
    trainer: L.Trainer,
    ended_by: str,
    trained: dict[str, int],
    resume_step: int | None,
) -> None:
    """One line on a run that stopped short of its schedule, or a resume that trained nothing."""
    whole = trained["epoch"]
    where = f"step {trainer.global_step:,}: {whole} whole epoch{'' if whole == 1 else 's'}"
    if trained["batches"]:
        where += (
            f" and {trained['batches']} of {trainer.num_training_batches} batches into epoch "
            f"{trained['epoch'] + 1}"
        )
    if resume_step is not None and trainer.global_step == resume_step:
        if ended_by == "max_time":
            then = (
                f"its trainer.max_time ({config.trainer.max_time}) is used up. To train on, "
                f"raise trainer.max_time in {run_dir / 'config.yaml'} and resume again, or "
                f"start a new run from its weights: --set init.weights={run_dir}"
            )
        else:
            then = f"it had already ended by {ended_by}"
        log.warning("resumed %s at %s, and nothing was left to train: %s", run_dir, where, then)
    elif ended_by == "max_time":
        log.warning(
            "trainer.max_time (%s) stopped the run at %s, before its schedule ended",
            config.trainer.max_time,
            where,
        )


def _ended_by(trainer: L.Trainer) -> str:
    """What ended training: ``early_stopping``, ``max_time`` or ``schedule`` (its epochs or
    steps all run). Read before testing, which restores the callbacks' states."""
    for callback in trainer.callbacks:  # type: ignore[attr-defined]
        if isinstance(callback, lc.EarlyStopping) and callback.stopped_epoch > 0:
            return "early_stopping"
        if isinstance(callback, lc.Timer):
            remaining = callback.time_remaining()  # None: no limit
            if remaining is not None and remaining <= 0:
                return "max_time"
    return "schedule"


def has_checkpoint(run_dir: Path) -> bool:
    """Whether ``--resume`` has a checkpoint to start from: ``last.ckpt``, or ``best.ckpt``
    (a run stopped after a mid-epoch validation and before its first epoch's end)."""
    return any((run_dir / "checkpoints" / name).is_file() for name in ("last.ckpt", "best.ckpt"))


class _UnreadableCheckpointError(Exception):
    """A checkpoint file that exists but does not load: cut short or damaged."""


def _read_checkpoint(path: Path) -> tuple[int, dict[str, Any] | None]:
    """The global step ``path`` holds and the config it was trained with (``None`` in a
    checkpoint written before checkpoints held it).

    ``_UnreadableCheckpointError`` where its content does not load; an ``OSError`` (no
    permission, a disk error) is left to the caller: the file may be whole, and falling
    back to an older checkpoint would throw away training for a problem that can be fixed.
    """
    with path.open("rb") as f:
        try:
            checkpoint = torch.load(f, map_location="cpu", weights_only=True)
            return int(checkpoint["global_step"]), checkpoint.get(ConfigRecord.KEY)
        except Exception as error:  # truncated, empty or not a checkpoint: many kinds
            reason = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise _UnreadableCheckpointError(reason) from None


@dataclasses.dataclass(frozen=True)
class ResumePoint:
    """The checkpoint a resume starts from: ``last.ckpt``, or ``best.ckpt`` where
    ``last.ckpt`` is missing or unreadable (``instead_of_last`` says which)."""

    path: Path
    step: int
    config: dict[str, Any] | None
    instead_of_last: str | None = None


def find_resume_point(run_dir: Path) -> ResumePoint:
    """The newest readable checkpoint of a run folder, or a ``ConfigError`` saying why none.

    Both checkpoints hold the whole training state (optimizer, schedule, loops, RNG,
    data position), and a resume from either continues exactly: one from ``best.ckpt``
    ends as the unbroken run would, only training again the steps since it was saved.
    """
    folder = run_dir / "checkpoints"
    last, best = folder / "last.ckpt", folder / "best.ckpt"
    problems = []
    for path in (last, best):
        if not path.is_file():
            problems.append(f"{path.name} does not exist")
            continue
        try:
            step, config = _read_checkpoint(path)
        except OSError as error:
            raise ConfigError(
                f"cannot resume: {path} cannot be read ({error.strerror or error}); make it "
                f"readable and resume again: text-recognizer train --resume {run_dir}"
            ) from None
        except _UnreadableCheckpointError as error:
            problems.append(f"{path.name} is unreadable ({error}); it was cut short or damaged")
            continue
        instead = None if path == last else problems[0]
        return ResumePoint(path, step, config, instead)
    if not last.exists() and not best.exists():
        raise ConfigError(f"cannot resume: {last} does not exist (the run saved no checkpoint yet)")
    raise ConfigError(
        f"cannot resume {run_dir}: {'; '.join(problems)}. Start it again in a new folder: "
        f"text-recognizer train {run_dir / 'config.yaml'}"
    )


def _logged_through(run_dir: Path) -> int | None:
    """The last step ``metrics.csv`` logged (None without one): how far the run got."""
    try:
        with (run_dir / "metrics.csv").open(newline="") as f:
            steps = [int(float(row["step"])) for row in csv.DictReader(f) if row.get("step")]
    except (OSError, KeyError, ValueError):
        return None
    return max(steps, default=None)


def _fall_back_to_best(point: ResumePoint, run_dir: Path) -> None:
    """Say that the resume starts from ``best.ckpt``, and what that costs; keep a damaged
    ``last.ckpt`` aside, where the resumed run's first save cannot replace it."""
    last = run_dir / "checkpoints" / "last.ckpt"
    kept = ""
    if _is_rank_zero() and last.is_file():
        aside = last.with_name("last.ckpt.unreadable")
        last.replace(aside)
        kept = f" (kept as {aside.name})"
    reached = _logged_through(run_dir)
    lost = (
        f"the {reached - point.step:,} steps trained after it (metrics.csv reaches step "
        f"{reached:,}) are trained again"
        if reached is not None and reached > point.step
        else "any steps trained after it are trained again"
    )
    log.warning(
        "%s%s: resuming from %s, saved at step %s, with the whole training state; %s",
        point.instead_of_last,
        kept,
        point.path,
        f"{point.step:,}",
        lost,
    )


#: Keys of ``config.yaml`` a resume may find changed: they change where or how fast a run
#: trains, or what it reports, not what it computes (``trainer.max_time``: the documented
#: way to give a run stopped by it more time).
RESUMABLE_EDITS = (
    "trainer.max_time",
    "trainer.num_threads",
    "data.num_workers",
    "data.args.build_workers",
    "data.args.root",
    "callbacks.progress_bar",
    "callbacks.checkpoint.last_every_minutes",
    "logger",
)

#: Schedules whose course does not depend on the run's length: a resume may train such a
#: run for more (or fewer) epochs or steps. The others are sized from it (one-cycle's
#: total steps, cosine's T_max, multistep's default milestones).
LENGTH_FREE_SCHEDULES = ("none", "step", "plateau")


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict) and value:
        flat: dict[str, Any] = {}
        for key, item in value.items():
            flat.update(_flatten(item, f"{prefix}{key}."))
        return flat
    return {prefix.rstrip("."): value}


def _lookup(config: dict[str, Any], dotted: str) -> Any:
    """The value (or section) at ``dotted``; None where a section on the way is None."""
    value: Any = config
    for part in dotted.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def _refuse_edited_config(config: ExperimentConfig, trained: dict[str, Any], run_dir: Path) -> None:
    """A ``ConfigError`` naming what ``config.yaml`` changed since the checkpoint was saved.

    The checkpoint's optimizer and schedule would silently keep their own learning rate,
    and a new batch size or dataset would start the data at the wrong place, so the run
    would train neither config. Keys the checkpoint's config lacks (added to the schema
    since) are not compared.
    """
    now = config.model_dump(mode="json")
    allowed: tuple[str, ...] = RESUMABLE_EDITS
    if config.scheduler.name in LENGTH_FREE_SCHEDULES:
        allowed += ("trainer.max_epochs", "trainer.max_steps")
    changed = [
        f"{key}: {value!r} -> {_lookup(now, key)!r}"
        for key, value in _flatten(trained).items()
        if _lookup(now, key) != value
        and not any(key == edit or key.startswith(f"{edit}.") for edit in allowed)
    ]
    if changed:
        config_file = run_dir / "config.yaml"
        raise ConfigError(
            f"cannot resume: {config_file} was edited since its last checkpoint was saved "
            f"({'; '.join(changed)}), and an exact resume trains the config the run started "
            f"with: undo the edit (only {', '.join(allowed)} may change), or train "
            f"on in a new run from its weights: text-recognizer train {config_file} "
            f"--set init.weights={run_dir}"
        )


class TrainingInterruptedError(TextRecognizerError):
    """Training was stopped by Ctrl-C or SIGTERM; the run resumes from its last checkpoint."""

    def __init__(self, run_dir: Path, last: Path, sigterm: bool, testing: bool = False) -> None:
        self.exit_code = 143 if sigterm else 130  # what a shell reports for these signals
        how = "SIGTERM" if sigterm else "interrupted"
        if testing:  # training is over: a resume trains nothing, tests and writes the summary
            super().__init__(
                f"testing stopped ({how}) after training ended; to test and write its "
                f"summary.json: text-recognizer train --resume {run_dir}"
            )
            return
        try:
            point = find_resume_point(run_dir)
        except ConfigError:
            saved, then = "it saved no checkpoint yet", "start it again"
        else:
            which = "last checkpoint" if point.instead_of_last is None else point.path.name
            saved = f"its {which} (step {point.step}) is kept"
            then = f"resume with: text-recognizer train --resume {run_dir}"
        super().__init__(f"training stopped ({how}); {saved}; {then}")


def train_from_config(path: Path, overrides: Sequence[str] = ()) -> dict[str, Any]:
    return run_experiment(load_config(path, overrides))


def resume_run(target: Path, overrides: Sequence[str] = ()) -> dict[str, Any]:
    """Continue a run folder (or the folder of a ``last.ckpt``) exactly where it stopped."""
    target = Path(target)
    run_dir = target.parent.parent if target.suffix == ".ckpt" else target
    config_file = run_dir / "config.yaml"
    if not config_file.is_file():
        raise ConfigError(f"{run_dir} is not a run folder: it has no config.yaml")
    if overrides:
        raise ConfigError(
            "an exact resume takes the run's own config; start a new run to change it"
        )
    try:  # a config.yaml edited by hand (more epochs, a later max_time) may have slipped
        config = parse_config(read_yaml(config_file))
    except ConfigError as error:
        message = str(error)
        raise ConfigError(
            message if str(config_file) in message else f"{config_file}: {message}"
        ) from None
    return run_experiment(config, run_dir=run_dir, resume=True)
