"""Shared by the line-model tests: rendered line batches and fitting one batch through Lightning."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader

from text_recognizer.charset import DEFAULT_CHARSET
from text_recognizer.data.module import collate_lines


def render_line(text: str, height: int = 32) -> torch.Tensor:
    """A synthetic line: bright text on black, ``[1, height, W]`` in [0, 1]."""
    font, scale, thickness = cv2.FONT_HERSHEY_SIMPLEX, 0.7, 1
    (width, text_height), _ = cv2.getTextSize(text, font, scale, thickness)
    image = np.zeros((height, width + 8), np.uint8)
    cv2.putText(
        image, text, (4, (height + text_height) // 2), font, scale, 255, thickness, cv2.LINE_AA
    )
    return torch.from_numpy(image).float().div(255)[None]


def line_batch(texts: list[str]) -> tuple[torch.Tensor, ...]:
    return collate_lines([(render_line(t), torch.tensor(DEFAULT_CHARSET.encode(t))) for t in texts])


def fit_one_batch(
    model: L.LightningModule,
    texts: list[str],
    steps: int,
    tmp_path: Path,
    batch: tuple[torch.Tensor, ...] | None = None,
    **trainer_args: Any,
) -> dict[str, float]:
    """Train on one fixed batch of ``texts`` (``line_batch``, unless ``batch`` is given)
    for ``steps`` steps; return the validation metrics."""
    batch = line_batch(texts) if batch is None else batch
    loader = DataLoader([batch], batch_size=None)  # the same batch every step
    trainer = L.Trainer(
        max_steps=steps,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        default_root_dir=tmp_path,
        **trainer_args,
    )
    trainer.fit(model, train_dataloaders=loader)
    return trainer.validate(model, dataloaders=loader, verbose=False)[0]
