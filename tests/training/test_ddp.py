"""DDP on CPU: two gloo processes train one run, through the real CLI.

Lightning's DDP launcher re-runs the command for rank 1, so this goes through a
subprocess (``tests.training.fake_cli``), as a user's ``text-recognizer train`` would.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_two_process_gloo_run_shares_one_folder_and_agrees(tmp_path: Path) -> None:
    config = {
        "name": "ddp",
        "group": "tests",
        "data": {"name": "tiny_chars", "args": {"size": 128}, "batch_size": 16},
        "network": {"name": "lenet", "args": {"channels": [4, 8], "fc_dim": 16}},
        "callbacks": {"checkpoint": {"monitor": "val/acc", "mode": "max"}, "progress_bar": "none"},
        "trainer": {
            "max_epochs": 2,
            "accelerator": "cpu",
            "devices": 2,
            "strategy": "ddp",
            "num_threads": 1,
        },
    }
    config_file = tmp_path / "ddp.yaml"
    config_file.write_text(yaml.safe_dump(config))
    ranks = tmp_path / "ranks"
    ranks.mkdir()
    done = subprocess.run(
        [sys.executable, "-m", "tests.training.fake_cli", "train", str(config_file)],
        cwd=REPO,
        env={**os.environ, "OMP_NUM_THREADS": "1", "FAKE_CLI_RANKS": str(ranks)},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    # One run folder (rank 1 did not make its own), written once, complete.
    (run_dir,) = (tmp_path / "runs" / "tests" / "ddp").iterdir()
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["run_dir"] == str(run_dir)
    for name in ("config.yaml", "checkpoints/best.ckpt", "checkpoints/last.ckpt", "metrics.csv"):
        assert (run_dir / name).is_file(), name

    rank0, rank1 = (json.loads((ranks / f"rank{r}.json").read_text()) for r in (0, 1))
    assert rank0["world_size"] == rank1["world_size"] == 2
    # Each rank saw half of the 64 training images: 2 steps per epoch, not 4.
    assert rank0["global_step"] == rank1["global_step"] == summary["global_step"] == 4
    assert rank0["weights"] == rank1["weights"]  # gradients were all-reduced every step
    assert rank0["metrics"]["val/acc"] == rank1["metrics"]["val/acc"]  # synced across ranks
    assert rank0["metrics"]["val/loss"] == rank1["metrics"]["val/loss"]  # sync_dist=True
