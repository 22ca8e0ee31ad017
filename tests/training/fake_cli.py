"""``python -m tests.training.fake_cli ARGS``: the real CLI, with the fake datasets registered.

Tests that run training in a subprocess (kill and resume, experiment groups, DDP ranks)
start it through this module, so the subprocess can build ``tiny_chars``.

``FAKE_CLI_STALL=EPOCH:BATCH`` makes training print ``STALLED`` after that batch and wait
there, so a test can kill it at a known point in the middle of an epoch.
``FAKE_CLI_RANKS=FOLDER`` makes every DDP rank write ``rank<N>.json`` there when training
ends (its step, its weights' checksum, its metrics), so a test can check the ranks agree.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import lightning as L

from tests.training.fakes import TinyChars
from text_recognizer.cli import app
from text_recognizer.data import DATASETS
from text_recognizer.training import run
from text_recognizer.training.config import ExperimentConfig


class StallAfterBatch(L.Callback):
    def __init__(self, epoch: int, batch: int) -> None:
        self.epoch, self.batch = epoch, batch

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, idx: int
    ) -> None:
        if trainer.current_epoch == self.epoch and idx == self.batch:
            print(f"STALLED epoch={self.epoch} batch={self.batch}", flush=True)
            deadline = time.monotonic() + 600
            # Lightning's SIGTERM handler only sets this flag: end the stall to let it act.
            while not trainer.received_sigterm and time.monotonic() < deadline:
                time.sleep(0.1)


class ReportRank(L.Callback):
    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        report = {
            "global_rank": trainer.global_rank,
            "world_size": trainer.world_size,
            "global_step": trainer.global_step,
            "weights": sum(float(p.detach().double().sum()) for p in pl_module.parameters()),
            "metrics": {k: float(v) for k, v in trainer.callback_metrics.items()},
        }
        (self.folder / f"rank{trainer.global_rank}.json").write_text(json.dumps(report))


def main() -> None:
    DATASETS._entries.setdefault("tiny_chars", TinyChars)
    extra: list[L.Callback] = []
    if stall := os.environ.get("FAKE_CLI_STALL"):
        epoch, batch = (int(part) for part in stall.split(":"))
        extra.append(StallAfterBatch(epoch, batch))
    if ranks := os.environ.get("FAKE_CLI_RANKS"):
        extra.append(ReportRank(Path(ranks)))
    if extra:
        build_callbacks = run.build_callbacks

        def with_extra(config: ExperimentConfig, run_dir: Path) -> list[L.Callback]:
            return [*build_callbacks(config, run_dir), *extra]

        run.build_callbacks = with_extra  # type: ignore[assignment]
    app(sys.argv[1:], prog_name="text-recognizer")


if __name__ == "__main__":
    main()
