"""Character classification: cross-entropy loss and accuracy per split."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
import torchmetrics

from text_recognizer.models.base import RecognitionModule


class CharClassifier(RecognitionModule):
    """Single characters: a network's logits ``[B, C]`` trained with cross-entropy, and
    accuracy per split (``model: classifier``)."""

    model_name = "classifier"

    def __init__(self, network: str, **kwargs: Any) -> None:
        super().__init__(network, **kwargs)
        num_classes = len(self.charset)
        # ModuleDict keys may not shadow nn.Module attributes such as ``train``.
        self.accuracy = torch.nn.ModuleDict(
            {
                f"{split}_acc": torchmetrics.Accuracy(task="multiclass", num_classes=num_classes)
                for split in ("train", "val", "test")
            }
        )

    def _step(self, batch: tuple[torch.Tensor, torch.Tensor], split: str) -> torch.Tensor:
        images, targets = batch
        logits = self(images)
        loss = F.cross_entropy(logits, targets)
        accuracy: torchmetrics.Metric = self.accuracy[f"{split}_acc"]  # type: ignore[assignment]
        accuracy(logits, targets)
        on_step = split == "train"
        self.log(
            f"{split}/loss",
            loss,
            on_step=on_step,
            on_epoch=True,
            prog_bar=True,
            batch_size=len(targets),
            # Evaluation losses are averaged over DDP ranks at epoch end; syncing the
            # training loss would cost an all-reduce per step for a progress-bar figure.
            sync_dist=not on_step,
        )
        self.log(f"{split}/acc", accuracy, on_step=False, on_epoch=True, prog_bar=True)
        return loss

    def training_step(
        self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int
    ) -> torch.Tensor:
        return self._step(batch, "train")

    def validation_step(
        self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int
    ) -> torch.Tensor:
        return self._step(batch, "val")

    def test_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        return self._step(batch, "test")

    @torch.no_grad()
    def predict_proba(self, images: torch.Tensor) -> torch.Tensor:
        """``[B,1,28,28]`` bright-ink images -> class probabilities ``[B, len(charset)]``."""
        self.eval()
        return F.softmax(self(images), dim=-1)
