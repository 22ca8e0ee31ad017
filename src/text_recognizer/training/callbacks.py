"""Callbacks and plugins our runs add to Lightning's own.

Lightning restores model, optimiser, scheduler, epoch and step from a checkpoint; these
add what an *exact* resume also needs (RNG states, accumulated training time) and make
checkpoint writes atomic so a kill during a save never corrupts ``last.ckpt``.
"""

from __future__ import annotations

import logging
import os
import random
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.fabric.utilities.cloud_io import _atomic_save
from lightning.pytorch import callbacks as lc
from lightning.pytorch.plugins.io import TorchCheckpointIO
from torch.optim import lr_scheduler

log = logging.getLogger(__name__)


class AtomicCheckpointIO(TorchCheckpointIO):
    """Write each checkpoint to a temporary file beside it, then rename it into place."""

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: Any, storage_options: Any = None
    ) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            _atomic_save(checkpoint, tmp)
            with tmp.open("rb") as f:
                os.fsync(f.fileno())
            tmp.replace(path)
        finally:
            tmp.unlink(missing_ok=True)


def epoch_trained_through(trainer: L.Trainer) -> bool:
    """Whether the epoch under way has trained its last batch (with SWA's batch-norm epoch,
    one more than the loader has is counted: the loader's end says so then)."""
    progress = trainer.fit_loop.epoch_loop.batch_progress
    return progress.current.ready >= trainer.num_training_batches or progress.is_last_batch


class LastCheckpoint(lc.ModelCheckpoint):
    """``last.ckpt``, the state ``--resume`` starts from: at the end of every epoch, every
    ``every`` of training in between (None: at epoch ends only), and where a run stops
    in the middle of an epoch (``max_time``).

    Lightning resumes exactly from the end of an epoch, from the end of a training batch,
    and from the end of a validation; not from a batch followed by a validation (it takes
    that validation as done, so a run killed during it resumed without it: a missing row
    in metrics.csv, and after the last epoch's, a best checkpoint and test figures that
    differ from an unbroken run's), nor from the end of an epoch cut short (it goes on
    with the next epoch, skipping the rest of that one). So a save due after a batch that
    a validation follows waits for that validation's end, or for the epoch's end when it
    is the last batch; and an epoch cut short is saved at its last batch, not at its end.
    """

    def __init__(self, dirpath: Path, every: timedelta | None) -> None:
        super().__init__(dirpath=dirpath, filename="last", enable_version_counter=False)
        self.every = every
        self._last_saved = time.monotonic()
        self._after_validation = False  # a save waits for the validation under way

    @property
    def path(self) -> str:
        return str(Path(str(self.dirpath)) / "last.ckpt")

    def _save(self, trainer: L.Trainer) -> None:
        self._save_checkpoint(trainer, self.path)
        self._last_saved = time.monotonic()

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._last_saved = time.monotonic()

    def on_train_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        if epoch_trained_through(trainer):
            return  # the epoch's end follows, and saves
        due = False
        if self.every is not None:
            # Decided on rank 0 for all: the ranks' clocks differ, and every rank must save.
            due = time.monotonic() - self._last_saved >= self.every.total_seconds()
            due = bool(trainer.strategy.broadcast(due))
        due = due or trainer.should_stop
        if not due or self._should_skip_saving_checkpoint(trainer):
            return
        fetcher = trainer.fit_loop._data_fetcher  # set while an epoch trains
        if fetcher is not None and trainer.fit_loop.epoch_loop._should_check_val_fx(fetcher):
            self._after_validation = True
        else:
            self._save(trainer)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._after_validation and not trainer.sanity_checking:
            self._after_validation = False
            self._save(trainer)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if epoch_trained_through(trainer):
            self._save(trainer)


class ConfigRecord(L.Callback):
    """Save the run's resolved config in every checkpoint, so that a resume can compare it
    with ``config.yaml``: an edit there (a learning rate, a batch size) would otherwise be
    ignored by the restored optimizer, or mix two configs in one run, without a word."""

    KEY = "experiment_config"

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config

    def on_save_checkpoint(
        self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        checkpoint[self.KEY] = self.config


class RngStateCallback(L.Callback):
    """Save and restore Python, NumPy and torch RNG states with every checkpoint."""

    def on_save_checkpoint(
        self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        # Plain types and tensors only, so the checkpoint loads with ``weights_only=True``.
        kind, keys, pos, has_gauss, gauss = np.random.get_state(legacy=True)
        checkpoint["rng_states"] = {
            "python": random.getstate(),
            "numpy": [kind, torch.tensor(np.asarray(keys, np.int64)), pos, has_gauss, gauss],
            "torch": torch.get_rng_state(),
        }

    def on_load_checkpoint(
        self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        states = checkpoint.get("rng_states")
        if states:
            random.setstate(states["python"])
            kind, keys, pos, has_gauss, gauss = states["numpy"]
            np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
            torch.set_rng_state(states["torch"])


class DataPositionCallback(L.Callback):
    """Save where the training data stood in its epoch; start a resumed run's data there.

    Lightning restores the loops' counters from a checkpoint but not the loader's
    position: resumed mid-epoch, it would train on the epoch's first batches again and
    never on the last ones. Our samplers depend only on (seed, epoch), so the position
    is two numbers; the data module builds the training loader to start there.
    """

    def __init__(self) -> None:
        #: Whole epochs trained and batches into the next, as of the last batch trained:
        #: what the summary reports (Lightning counts an epoch cut short as a whole one,
        #: and a resumed run that trains nothing as none).
        self.position = {"epoch": 0, "batches": 0}

    def _update(self, trainer: L.Trainer) -> dict[str, int]:
        # Lightning increments current_epoch only after the epoch-end hooks, so here it is
        # the epoch being trained, finished or not.
        epoch = trainer.current_epoch
        batches = trainer.fit_loop.epoch_loop.batch_progress.current.ready
        if epoch_trained_through(trainer):
            epoch, batches = epoch + 1, 0
        self.position = {"epoch": epoch, "batches": batches}
        return self.position

    def on_train_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        self._update(trainer)

    def on_save_checkpoint(
        self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        checkpoint["data_position"] = dict(self._update(trainer))

    def on_load_checkpoint(
        self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        # Runs before Lightning builds the training loader (it does so to count the
        # steps of the LR schedule), so the loader is built at the right place.
        position = checkpoint.get("data_position")
        if position is not None:
            self.position = dict(position)
        datamodule = getattr(trainer, "datamodule", None)
        if position is not None and getattr(datamodule, "augments_in_workers", bool)():
            log.warning(
                "resuming a run whose training lines are augmented in %d loader workers: "
                "their random numbers come from the workers' own generators, which the "
                "checkpoint cannot hold, so from here the augmentation (and the weights) "
                "differ from an unbroken run's; data.num_workers: 0 resumes exactly",
                datamodule.num_workers,  # type: ignore[union-attr]
            )
        resume_at = getattr(datamodule, "resume_at", None)
        if position is None or resume_at is None:
            return
        if position["batches"] > 0 and trainer.world_size > 1:
            log.warning(
                "resuming at batch %d of epoch %d under %d processes: the distributed "
                "sampler cannot start mid-epoch, so this epoch starts from its beginning",
                position["batches"],
                position["epoch"],
                trainer.world_size,
            )
            position = {"epoch": position["epoch"], "batches": 0}
        resume_at(position["epoch"], position["batches"])


def rescale_one_cycle(scheduler: lr_scheduler.OneCycleLR, total_steps: int) -> None:
    """Make a OneCycleLR end at ``total_steps``: every phase boundary scaled alike."""
    scale = (total_steps - 1) / (scheduler.total_steps - 1)
    for phase in scheduler._schedule_phases:
        phase["end_step"] = phase["end_step"] * scale
    scheduler.total_steps = total_steps


class MaxTimeForecast(L.Callback):
    """Warn early when ``max_time`` will stop the run before its last step, or (``fit``)
    shorten a one-cycle schedule so that it ends in time.

    A one-cycle schedule anneals the learning rate only near its end, so a run cut short
    by ``max_time`` keeps a high learning rate and ends with a worse model; on a slower CPU
    than the config was sized for, that happens silently. Every ``every`` steps this
    projects the finish from the pace so far (the first time, after ``every`` steps, with
    no validation in it yet, so it acts only when even that optimistic projection is
    over). When the projection is over, it warns once and says what to change or, with
    ``fit``, compresses the schedule to end at the step the pace reaches in 90 % of the
    time left, and stops the run there; if the run then slows down (a busier host, the
    validations), a later check shortens it again, and if it speeds up so that over a
    fifth of the time left would go unused, it gets steps back (up to the configured
    length, not in the schedule's last tenth). The fitted length is saved in checkpoints
    (the scheduler's own state holds the rescaled phases), so a resumed run ends at the
    same step, and the run validates at that step before it stops, as it would at an
    epoch's end.
    """

    def __init__(self, every: int = 300, fit: bool = False) -> None:
        self.every = every
        self.fit = fit
        self.timer: lc.Timer | None = None  # Lightning's, present when max_time is set
        self.start: tuple[int, float] = (0, 0.0)  # (step, elapsed s) when training began
        self.next_check = every  # steps after the start
        self.warned = False
        self.fitted_steps: int | None = None

    def state_dict(self) -> dict[str, Any]:
        return {"fitted_steps": self.fitted_steps}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.fitted_steps = state_dict.get("fitted_steps")

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.fitted_steps is not None:  # resumed after the schedule was shortened
            trainer.fit_loop.epoch_loop.max_steps = self.fitted_steps
            self.warned = True
        callbacks = trainer.callbacks  # type: ignore[attr-defined]
        self.timer = next((c for c in callbacks if isinstance(c, lc.Timer)), None)
        if self.timer is not None:
            self.start = (trainer.global_step, self.timer.time_elapsed("train"))

    @staticmethod
    def _one_cycle(trainer: L.Trainer) -> lr_scheduler.OneCycleLR | None:
        schedulers = [config.scheduler for config in trainer.lr_scheduler_configs]
        found = [s for s in schedulers if isinstance(s, lr_scheduler.OneCycleLR)]
        return found[0] if len(found) == 1 else None

    def on_train_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        if self.fitted_steps is not None and trainer.global_step >= self.fitted_steps:
            # Stopping by max_steps alone skips validation when the end falls mid-epoch:
            # the annealed last steps would never be scored or saved as the best model.
            trainer.should_stop = True
            return
        timer = self.timer
        steps = trainer.global_step - self.start[0]
        if timer is None or steps < self.next_check:
            return
        self.next_check = steps + self.every
        elapsed = timer.time_elapsed("train")
        left = timer.time_remaining("train") or 0.0
        pace = (elapsed - self.start[1]) / steps
        if pace <= 0:
            return
        step, total = trainer.global_step, int(trainer.estimated_stepping_batches)
        end = self.fitted_steps or total
        needed = (end - step) * pace
        fit_end = step + max(1, int(0.9 * left / pace))  # the step 90 % of the time left reaches
        scheduler = self._one_cycle(trainer) if self.fit else None
        if scheduler is not None and self.fitted_steps is not None and needed < 0.8 * left:
            # Ahead of the fitted schedule (it was fitted in a slow spell): give steps back,
            # up to the configured length, unless the schedule is nearly over.
            longer = min(total, fit_end)
            if longer > end and step < 0.9 * end:
                self._refit(trainer, scheduler, longer)
                log.info(
                    "the run sped up (%.2f s/step): the schedule now ends at step %s",
                    pace,
                    f"{longer:,}",
                )
            return
        if needed <= left:
            return
        reach = step + int(left / pace)
        if scheduler is not None:
            self._refit(trainer, scheduler, fit_end)
            if self.warned:
                log.warning(
                    "the run slowed to %.2f s/step: trainer.max_time would stop it at about "
                    "step %s of %s, so the schedule now ends at step %s",
                    pace,
                    f"{reach:,}",
                    f"{end:,}",
                    f"{fit_end:,}",
                )
                return
            outcome = (
                f"the schedule now ends at step {fit_end:,} instead "
                "(callbacks.fit_to_max_time). To train the whole schedule,"
            )
        elif self.warned:
            return
        else:
            outcome = (
                "the model will be worse than the schedule would make it. To finish the "
                "schedule, shorten it (trainer.limit_train_batches / max_epochs) or"
            )
        self.warned = True
        log.warning(
            "at this pace (%.2f s/step) trainer.max_time (%.0f min) %s stop the run at about "
            "step %s of %s, before its learning-rate schedule ends: %s lift the limit "
            "(--set trainer.max_time=null: about %.0f min in all).",
            pace,
            (elapsed + left) / 60,
            "would" if scheduler is not None else "will",
            f"{reach:,}",
            f"{total:,}",
            outcome,
            (elapsed + (total - step) * pace) / 60,
        )

    def _refit(self, trainer: L.Trainer, scheduler: lr_scheduler.OneCycleLR, steps: int) -> None:
        self.fitted_steps = steps
        rescale_one_cycle(scheduler, steps)
        trainer.fit_loop.epoch_loop.max_steps = steps


class ProgressLog(L.Callback):
    """One INFO line per validation where no progress bar is drawn (stderr is a file or a
    pipe, or ``progress_bar: none``): without it ``-v`` showed nothing between the start
    and the end of a run."""

    def __init__(self, monitor: str) -> None:
        self.monitor = monitor
        self.started = time.monotonic()

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.started = time.monotonic()

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if (
            trainer.sanity_checking
            or not trainer.is_global_zero
            or not log.isEnabledFor(logging.INFO)
        ):
            return
        metrics = trainer.callback_metrics
        shown = sorted(k for k in metrics if k.startswith("val/") or k == "train/loss")
        values = ", ".join(f"{k} {float(metrics[k]):.4g}" for k in shown)
        # The checkpoint callback has not seen this validation yet (it runs after us).
        checkpoint = trainer.checkpoint_callback
        scores = [float(metrics[self.monitor])] if self.monitor in metrics else []
        if (earlier := getattr(checkpoint, "best_model_score", None)) is not None:
            scores.append(float(earlier))
        pick = max if getattr(checkpoint, "mode", "min") == "max" else min
        best_text = f", best {self.monitor} {pick(scores):.4g}" if scores else ""
        log.info(
            "epoch %d/%s, step %s: %s%s (%.0f s)",
            trainer.current_epoch + 1,
            trainer.max_epochs,
            f"{trainer.global_step:,}",
            values,
            best_text,
            time.monotonic() - self.started,
        )


class TrainingTimeCallback(L.Callback):
    """Total wall time spent in ``fit`` and samples trained on, summed over resumed segments.

    ``samples / total_s`` is the run's end-to-end throughput (validation included): the
    figure a user's wall clock sees, not a step-only profile.
    """

    def __init__(self) -> None:
        self.previous_s = 0.0
        self.started: float | None = None
        self.samples = 0

    @property
    def total_s(self) -> float:
        running = time.perf_counter() - self.started if self.started is not None else 0.0
        return self.previous_s + running

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.started = time.perf_counter()

    def on_train_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        self.samples += len(batch[0])  # every batch is (inputs, ...) with inputs first

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.previous_s = self.total_s
        self.started = None

    def state_dict(self) -> dict[str, Any]:
        return {"total_s": self.total_s, "samples": self.samples}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.previous_s = float(state_dict.get("total_s", 0.0))
        self.samples = int(state_dict.get("samples", 0))
