"""Line recognition with CTC: the loss over padded variable-width batches, CER/WER per split."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from text_recognizer.errors import ConfigError
from text_recognizer.models.base import LineBatch, LineModule


class CtcLineModel(LineModule):
    """Any line network with ``forward(images, widths)`` and ``output_lengths(widths)``."""

    model_name = "ctc"

    def __init__(self, network: str, **kwargs: Any) -> None:
        super().__init__(network, **kwargs)
        # Else a character network (or one's own without it) fails on the first batch.
        if not callable(getattr(self.network, "output_lengths", None)):
            raise ConfigError(
                f"network {network!r} has no output_lengths(widths): a CTC line model needs a "
                "line network (crnn, line_cnn), or one of your own with forward(images, widths) "
                "and output_lengths(widths) (docs/models.md, 'Your own network')"
            )

    def forward(self, images: torch.Tensor, widths: torch.Tensor | None = None) -> torch.Tensor:
        return self.network(images, widths)

    def output_lengths(self, widths: torch.Tensor) -> torch.Tensor:
        return self.network.output_lengths(widths)  # type: ignore[operator]

    def _loss(self, batch: LineBatch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        images, widths, targets, target_lengths = batch
        # float32 first: under bf16 autocast on CPU log_softmax would stay in bfloat16,
        # too coarse for the CTC loss's sums over long alignments.
        log_probs = F.log_softmax(self(images, widths).float(), dim=-1)
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

    def evaluation_outputs(self, batch: LineBatch) -> tuple[torch.Tensor, list[str]]:
        loss, log_probs, input_lengths = self._loss(batch)
        return loss, self.decode(log_probs, input_lengths)

    def decode(self, log_probs: torch.Tensor, lengths: torch.Tensor) -> list[str]:
        """Greedy best-path decoding (beam search lives in ``decoding.beam``)."""
        from text_recognizer.decoding import greedy_ctc_decode

        # A diverged network's NaN scores read as nothing, as they always did, so that the
        # run ends as early stopping decides (val/loss not finite), not in the decoder's error.
        broken = (log_probs.isnan() | log_probs.isposinf()).flatten(1).any(1)
        if not bool(broken.any()):
            return [text for text, _ in greedy_ctc_decode(log_probs, lengths, self.charset)]
        texts = [""] * len(broken)
        kept = (~broken).nonzero().flatten()
        if len(kept):
            decoded = greedy_ctc_decode(log_probs[kept], lengths[kept], self.charset)
            for i, (text, _) in zip(kept.tolist(), decoded, strict=True):
                texts[i] = text
        return texts
