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
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.fabric.utilities.cloud_io import _atomic_save
from lightning.pytorch import callbacks as lc
from lightning.pytorch.plugins.io import TorchCheckpointIO

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


class MaxTimeForecast(L.Callback):
    """Warn early when ``max_time`` will stop the run before its last step.

    A one-cycle schedule anneals the learning rate only near its end, so a run cut short
    by ``max_time`` keeps a high learning rate and ends with a worse model; on a slower CPU
    than the config was sized for, that happens silently. After ``after_steps`` steps
    this projects the finish from their pace (validation to come not included, so it
    warns only when even the optimistic projection is over) and says what to change.
    """

    def __init__(self, after_steps: int = 300) -> None:
        self.after_steps = after_steps
        self.start: tuple[int, float] | None = None  # (step, elapsed s) when training began
        self.done = False

    @staticmethod
    def _timer(trainer: L.Trainer) -> lc.Timer | None:
        return next((c for c in trainer.callbacks if isinstance(c, lc.Timer)), None)  # type: ignore[attr-defined]

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        timer = self._timer(trainer)
        if timer is not None:
            self.start = (trainer.global_step, timer.time_elapsed("train"))

    def on_train_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        timer = self._timer(trainer)
        if self.done or self.start is None or timer is None:
            return
        steps = trainer.global_step - self.start[0]
        if steps < self.after_steps:
            return
        self.done = True
        elapsed = timer.time_elapsed("train")
        limit = elapsed + (timer.time_remaining("train") or 0.0)
        pace = (elapsed - self.start[1]) / steps
        total = int(trainer.estimated_stepping_batches)
        finish = elapsed + (total - trainer.global_step) * pace
        if pace <= 0 or finish <= limit:
            return
        reach = trainer.global_step + int((limit - elapsed) / pace)
        log.warning(
            "at this pace (%.2f s/step) trainer.max_time (%.0f min) will stop the run at about "
            "step %s of %s, before its learning-rate schedule ends: the model will be worse "
            "than the schedule would make it. To finish the schedule, lift the limit "
            "(--set trainer.max_time=null: about %.0f min in all) or shorten the schedule "
            "(trainer.limit_train_batches / max_epochs).",
            pace,
            limit / 60,
            f"{reach:,}",
            f"{total:,}",
            finish / 60,
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
