"""Weights & Biases logging (optional) and a callback that shows what the model reads.

``logger.wandb`` in a config adds Lightning's ``WandbLogger`` beside the CSV and
TensorBoard loggers. With no API key (no ``WANDB_API_KEY``, no ``wandb login``) it runs
offline and writes to ``<run>/wandb/``; ``wandb sync <run>/wandb/offline-run-*`` uploads
it later. ``WANDB_MODE`` always wins. A resumed run continues the same W&B run.

``PredictionImageLogger`` logs the same few validation images every epoch, captioned
"pred / confidence / truth", to W&B and, as one captioned grid, to TensorBoard.
"""

from __future__ import annotations

import hashlib
import logging
import netrc
import os
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import lightning as L
import numpy as np
import torch
from lightning.pytorch import loggers as ll
from PIL import Image, ImageDraw, ImageFont

from text_recognizer.errors import ConfigError
from text_recognizer.evaluate import batch_truths, predict_batch
from text_recognizer.training.config import ExperimentConfig

log = logging.getLogger(__name__)


def has_wandb_key() -> bool:
    """Whether W&B can authenticate: ``WANDB_API_KEY``, or a ``wandb login`` entry in netrc."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    host = urlparse(os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")).hostname
    netrc_file = Path(os.environ.get("NETRC", Path.home() / ".netrc"))
    try:
        return netrc.netrc(str(netrc_file)).authenticators(host or "") is not None
    except (OSError, netrc.NetrcParseError):
        return False


def wandb_offline() -> bool:
    mode = os.environ.get("WANDB_MODE")
    if mode:
        return mode in ("offline", "dryrun", "disabled")
    return not has_wandb_key()


def build_wandb_logger(config: ExperimentConfig, run_dir: Path) -> ll.WandbLogger:
    """A ``WandbLogger`` writing under ``run_dir``; online only when W&B has a key."""
    settings = config.logger.wandb
    assert settings is not None
    try:
        import wandb
    except ImportError:
        raise ConfigError(
            "logger.wandb needs the wandb package: pip install 'text-recognizer[wandb]' "
            "(or remove logger.wandb from the config)"
        ) from None
    if wandb.run is not None:
        # Lightning would log into a run left open by an earlier experiment in this process.
        wandb.finish()
    offline = wandb_offline()
    if offline:
        log.info(
            "W&B: offline (no API key); upload later with `wandb sync %s/wandb/offline-run-*`",
            run_dir,
        )
    logger = ll.WandbLogger(
        name=config.name,
        project=settings.project,
        entity=settings.entity,
        group=config.group,
        save_dir=str(run_dir),
        # The same id for the same folder: a resumed run continues its W&B run.
        version=hashlib.sha1(str(Path(run_dir).resolve()).encode()).hexdigest()[:16],  # noqa: S324 - an id, not security
        offline=offline,
        config=config.model_dump(mode="json"),
        log_model=False,  # checkpoints stay in the run folder
        # -q: only errors. W&B prints its own lines (where the run goes, how to sync it).
        settings=wandb.Settings(silent=not log.isEnabledFor(logging.WARNING)),
    )
    # Lightning passes anonymous=None, which W&B warns on every run "has no effect": noise
    # nobody can act on, printed at -q too.
    getattr(logger, "_wandb_init", {}).pop("anonymous", None)
    return logger


def _display(image: torch.Tensor) -> Image.Image:
    """A ``[1, H, W]`` bright-ink float image as dark ink on white, as people write."""
    pixels = (255 - image[0].clamp(0, 1).mul(255).round()).to(torch.uint8).cpu().numpy()
    return Image.fromarray(pixels, mode="L")


def caption_grid(images: list[Image.Image], captions: list[str], columns: int) -> np.ndarray:
    """Images with their captions under them, tiled ``columns`` wide: ``[H, W]`` uint8."""
    font = ImageFont.load_default()
    height = 64  # tiles are scaled to this height; the caption adds a line below
    tiles = []
    for image, caption in zip(images, captions, strict=True):
        width = min(512, max(1, round(image.width * height / image.height)))
        resample = Image.Resampling.NEAREST if image.height < height else Image.Resampling.BILINEAR
        scaled = image.resize((width, height), resample)
        text_width = int(ImageDraw.Draw(scaled).textlength(caption, font=font))
        tile = Image.new("L", (max(width, text_width) + 8, height + 18), 255)
        tile.paste(scaled, (4, 0))
        ImageDraw.Draw(tile).text((4, height + 3), caption, fill=0, font=font)
        tiles.append(tile)
    rows = [tiles[i : i + columns] for i in range(0, len(tiles), columns)]
    cell_width = max(t.width for t in tiles)
    grid = Image.new("L", (cell_width * min(columns, len(tiles)), (height + 18) * len(rows)), 255)
    for r, row in enumerate(rows):
        for c, tile in enumerate(row):
            grid.paste(tile, (c * cell_width, r * (height + 18)))
    return np.asarray(grid)


class PredictionImageLogger(L.Callback):
    """Log the first ``count`` validation images each epoch with "pred / confidence / truth".

    The same images every epoch, so the captions show the model learning them. Goes to
    every logger that takes images: W&B (one image each, captioned) and TensorBoard (one
    captioned grid). Predictions run once per epoch on the kept batch, in eval mode and
    without touching any RNG, so logging never changes training.
    """

    def __init__(self, count: int = 8) -> None:
        self.count = count
        self._batch: list[torch.Tensor] | None = None

    def on_validation_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        if batch_idx == 0 and dataloader_idx == 0 and not trainer.sanity_checking:
            self._batch = [part[: self.count].detach().cpu() for part in batch]

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        batch, self._batch = self._batch, None
        if batch is None or not trainer.is_global_zero:
            return
        device_batch = [part.to(pl_module.device) for part in batch]
        predictions = predict_batch(pl_module, device_batch)
        truths = batch_truths(batch, pl_module.charset)  # type: ignore[arg-type]
        captions = [
            f"{text!r} / {confidence:.2f} / {truth!r}"
            for (text, confidence), truth in zip(predictions, truths, strict=True)
        ]
        images = [_display(image) for image in batch[0]]
        if len(batch) == 4:  # padded lines: show each at its true width
            images = [
                im.crop((0, 0, int(w), im.height)) for im, w in zip(images, batch[1], strict=True)
            ]
        step = trainer.global_step
        for logger in trainer.loggers:
            if isinstance(logger, ll.WandbLogger):
                logger.log_image("val/predictions", images, step=step, caption=captions)
            elif isinstance(logger, ll.TensorBoardLogger):
                grid = caption_grid(images, captions, columns=4 if len(batch) == 2 else 1)
                logger.experiment.add_image("val/predictions", grid, step, dataformats="HW")
