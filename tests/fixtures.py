"""Session fixtures: one tiny trained character model shared by inference tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.training.fakes import TinyChars
from text_recognizer.data import DATASETS
from text_recognizer.training.config import parse_config
from text_recognizer.training.run import run_experiment


@pytest.fixture(scope="session")
def tiny_char_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run folder holding a LeNet trained to tell four bar patterns apart (A-D)."""
    DATASETS._entries["tiny_chars_session"] = TinyChars
    try:
        config = parse_config(
            {
                "name": "tiny",
                "group": "tests",
                "seed": 0,
                "data": {"name": "tiny_chars_session", "args": {"size": 384}, "batch_size": 16},
                "network": {"name": "lenet", "args": {"channels": [8, 16], "fc_dim": 32}},
                "optimizer": {"lr": 1e-2},
                "scheduler": {"name": "onecycle"},
                "callbacks": {
                    "checkpoint": {"monitor": "val/acc", "mode": "max"},
                    "progress_bar": "none",
                },
                "trainer": {"max_epochs": 3, "num_threads": 1},
            }
        )
        run_dir = tmp_path_factory.mktemp("run")
        run_experiment(config, run_dir=run_dir)
    finally:
        del DATASETS._entries["tiny_chars_session"]
    return run_dir
