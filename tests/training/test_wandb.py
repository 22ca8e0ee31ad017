"""W&B logging, offline only (``WANDB_MODE=offline`` from conftest): nothing leaves the machine."""

from __future__ import annotations

from pathlib import Path

import pytest

from text_recognizer.training import wandb as tr_wandb
from text_recognizer.training.config import parse_config
from text_recognizer.training.run import run_experiment

wandb = pytest.importorskip("wandb")


def test_run_logs_captioned_predictions_offline(
    tiny_chars: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("WANDB_CACHE_DIR", "WANDB_CONFIG_DIR", "WANDB_DATA_DIR", "XDG_CACHE_HOME"):
        monkeypatch.setenv(name, str(tmp_path / "wandb-home"))  # keep W&B out of $HOME
    config = parse_config(
        {
            "name": "wandb",
            "group": "tests",
            "seed": 0,
            "data": {"name": tiny_chars, "args": {"size": 192}, "batch_size": 16},
            "network": {"name": "lenet", "args": {"channels": [4, 8], "fc_dim": 16}},
            "callbacks": {"progress_bar": "none"},
            "trainer": {"max_epochs": 2, "num_threads": 1},
            "logger": {"wandb": {"project": "tests", "prediction_images": 5}},
        }
    )
    run_dir = tmp_path / "run"
    run_experiment(config, run_dir=run_dir)
    # The run is left open (the next experiment in this process closes it): inspect it.
    assert wandb.run is not None and wandb.run.name == "wandb"
    logged = dict(wandb.run.summary["val/predictions"])
    last_step = wandb.run.summary["trainer/global_step"]
    wandb.finish()

    (offline_run,) = (run_dir / "wandb").glob("offline-run-*")
    images = sorted((offline_run / "files" / "media" / "images" / "val").glob("predictions_*.png"))
    assert len(images) == 2 * 5  # five images, two epochs
    assert logged["count"] == 5 and len(logged["captions"]) == 5
    for caption in logged["captions"]:
        prediction, confidence, truth = caption.split(" / ")
        assert prediction.startswith("'") and 0 <= float(confidence) <= 1
        assert truth in {"'A'", "'B'", "'C'", "'D'"}

    # Users without W&B see the same images in TensorBoard.
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run_dir / "tensorboard"), size_guidance={"images": 0})
    events.Reload()
    grids = events.Images("val/predictions")
    assert [g.step for g in grids] == [last_step // 2, last_step]
    assert grids[0].width >= 4 * 64 and grids[0].height >= 2 * 64


def test_w_and_b_prints_nothing_under_quiet(
    tiny_chars: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """-q ("only errors") printed W&B's lines: where the run goes, how to sync it, and a
    warning that the anonymous setting Lightning passes has no effect."""
    import logging

    for name in ("WANDB_CACHE_DIR", "WANDB_CONFIG_DIR", "WANDB_DATA_DIR", "XDG_CACHE_HOME"):
        monkeypatch.setenv(name, str(tmp_path / "wandb-home"))
    caplog.set_level(logging.ERROR, logger="text_recognizer")  # as -q sets it
    config = parse_config(
        {
            "name": "quiet",
            "data": {"name": tiny_chars, "args": {"size": 64}, "batch_size": 16},
            "network": {"name": "lenet", "args": {"channels": [4, 8], "fc_dim": 16}},
            "scheduler": {"name": "none"},
            "callbacks": {"progress_bar": "none"},
            "trainer": {"max_epochs": 1, "num_threads": 1},
            "logger": {"wandb": {"project": "tests", "prediction_images": 2}},
        }
    )
    # W&B keeps one session per process, with the settings of its first run: a fresh one,
    # as each command has.
    wandb.teardown()
    capfd.readouterr()
    try:
        run_experiment(config, run_dir=tmp_path / "run")
        wandb.finish()
    finally:
        wandb.teardown()
    printed = capfd.readouterr()
    assert [line for line in (printed.out + printed.err).splitlines() if "wandb" in line] == []
    assert list((tmp_path / "run" / "wandb").glob("offline-run-*/files/media/images/val/*.png"))


def test_offline_unless_a_key_is_configured(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "netrc"))
    assert tr_wandb.wandb_offline()
    (tmp_path / "netrc").write_text("machine api.wandb.ai\n  login user\n  password abc\n")
    assert not tr_wandb.wandb_offline()
    monkeypatch.setenv("WANDB_MODE", "offline")
    assert tr_wandb.wandb_offline()  # an explicit mode wins
    monkeypatch.delenv("WANDB_MODE")
    (tmp_path / "netrc").unlink()
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    assert not tr_wandb.wandb_offline()


def test_missing_wandb_package_is_a_clear_error(
    tiny_chars: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    from text_recognizer.errors import ConfigError

    monkeypatch.setitem(sys.modules, "wandb", None)  # what an environment without it sees
    config = parse_config(
        {
            "name": "x",
            "data": {"name": tiny_chars},
            "network": {"name": "lenet"},
            "logger": {"wandb": {}},
        }
    )
    with pytest.raises(ConfigError, match=r"pip install 'text-recognizer\[wandb\]'"):
        tr_wandb.build_wandb_logger(config, Path("unused"))


def test_caption_grid_tiles_images_with_text() -> None:
    from PIL import Image

    images = [Image.new("L", (28, 28), 255) for _ in range(6)]
    grid = tr_wandb.caption_grid(images, [f"'{c}' / 0.50 / 'A'" for c in "ABCDEF"], columns=4)
    assert grid.ndim == 2 and grid.shape[0] == 2 * (64 + 18)
    assert grid.min() < 128  # the captions are drawn in black


def test_line_predictions_are_logged_at_their_true_width(tmp_path: Path) -> None:
    """The callback on a line model, driven by hand: one TensorBoard grid, one row per line."""
    from types import SimpleNamespace

    import torch
    from lightning.pytorch.loggers import TensorBoardLogger
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from text_recognizer.charset import DEFAULT_CHARSET
    from text_recognizer.data.module import collate_lines
    from text_recognizer.models import CtcLineModel

    torch.manual_seed(0)
    module = CtcLineModel("line_cnn", network_args={"input_height": 32}, input_height=32).eval()
    lines = [
        (torch.rand(1, 32, width), torch.tensor(DEFAULT_CHARSET.encode(text)))
        for width, text in [(60, "ab"), (120, "hello"), (90, "xyz")]
    ]
    batch = list(collate_lines(lines))
    logger = TensorBoardLogger(tmp_path, name="tb", version="")
    trainer = SimpleNamespace(
        sanity_checking=False, is_global_zero=True, global_step=7, loggers=[logger]
    )
    callback = tr_wandb.PredictionImageLogger(count=2)
    callback.on_validation_batch_end(trainer, module, None, batch, 0)  # type: ignore[arg-type]
    callback.on_validation_epoch_end(trainer, module)  # type: ignore[arg-type]
    logger.experiment.flush()

    events = EventAccumulator(str(tmp_path / "tb"), size_guidance={"images": 0})
    events.Reload()
    (grid,) = events.Images("val/predictions")
    assert grid.step == 7
    assert grid.height == 2 * (64 + 18)  # two lines, one per row
    assert grid.width >= round(120 * 64 / 32)  # the wider line at its true width, scaled
