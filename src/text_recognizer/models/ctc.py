"""Line recognition with CTC: the loss over padded variable-width batches, CER/WER per split."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from text_recognizer.metrics import CharErrorRate, WordErrorRate
from text_recognizer.models.base import RecognitionModule

LineBatch = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]


class CtcLineModel(RecognitionModule):
    """Any line network with ``forward(images, widths)`` and ``output_lengths(widths)``."""

    model_name = "ctc"
    kind = "line"

    def __init__(self, network: str, **kwargs: Any) -> None:
        super().__init__(network, **kwargs)
        # Total edits / total reference length, per split (rapidfuzz-backed torchmetrics).
        self.error_rates = torch.nn.ModuleDict(
            {f"{split}_cer": CharErrorRate() for split in ("val", "test")}
            | {f"{split}_wer": WordErrorRate() for split in ("val", "test")}
        )

    def forward(self, images: torch.Tensor, widths: torch.Tensor | None = None) -> torch.Tensor:
        return self.network(images, widths)

    def output_lengths(self, widths: torch.Tensor) -> torch.Tensor:
        return self.network.output_lengths(widths)  # type: ignore[operator]

    def _loss(self, batch: LineBatch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        images, widths, targets, target_lengths = batch
        log_probs = F.log_softmax(self(images, widths), dim=-1)
        input_lengths = self.output_lengths(widths).clamp(max=log_probs.shape[1])
        loss = F.ctc_loss(
            log_probs.transpose(0, 1),  # CTC wants [T, B, C]
            targets,
            input_lengths,
            target_lengths,
            blank=self.charset.blank,
            zero_infinity=True,  # an impossible alignment (line too narrow) must not poison a batch
        )
        return loss, log_probs, input_lengths

    def training_step(self, batch: LineBatch, batch_idx: int) -> torch.Tensor:
        loss, _, _ = self._loss(batch)
        self.log(
            "train/loss", loss, on_step=True, on_epoch=True, prog_bar=True, batch_size=len(batch[0])
        )
        return loss

    def _evaluate(self, batch: LineBatch, split: str) -> torch.Tensor:
        loss, log_probs, input_lengths = self._loss(batch)
        predictions = self.decode(log_probs, input_lengths)
        references = [
            self.charset.decode(t[:n].tolist()) for t, n in zip(batch[2], batch[3], strict=True)
        ]
        size = len(references)
        cer, wer = self.error_rates[f"{split}_cer"], self.error_rates[f"{split}_wer"]
        cer(predictions, references)
        wer(predictions, references)
        self.log(f"{split}/loss", loss, on_epoch=True, prog_bar=True, batch_size=size)
        self.log(f"{split}/cer", cer, on_epoch=True, prog_bar=True, batch_size=size)  # type: ignore[arg-type]
        self.log(f"{split}/wer", wer, on_epoch=True, batch_size=size)  # type: ignore[arg-type]
        return loss

    def validation_step(self, batch: LineBatch, batch_idx: int) -> torch.Tensor:
        return self._evaluate(batch, "val")

    def test_step(self, batch: LineBatch, batch_idx: int) -> torch.Tensor:
        return self._evaluate(batch, "test")

    def decode(self, log_probs: torch.Tensor, lengths: torch.Tensor) -> list[str]:
        """Greedy best-path decoding (beam search lives in ``decoding.beam``)."""
        from text_recognizer.decoding import greedy_ctc_decode

        return [text for text, _ in greedy_ctc_decode(log_probs, lengths, self.charset)]
