"""Line recognition as sequence-to-sequence: teacher-forced cross-entropy, decoded CER/WER.

The network (``transformer``) reads ``<start> + text`` and is trained to predict
``text + <end>`` at every position at once; validation and test decode autoregressively
(greedy, or beam search with ``beam_size > 1``) so the error rates measure what a user gets.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F

from text_recognizer.decoding.seq2seq import texts_and_confidences
from text_recognizer.errors import ConfigError
from text_recognizer.models.base import LineBatch, LineModule

log = logging.getLogger(__name__)

#: The network's CTC head in a state dict (``TransformerRecognizer.ctc_classifier``).
CTC_HEAD = "network.ctc_classifier."


class Seq2SeqLineModel(LineModule):
    """A network with ``forward(images, tokens, widths)`` and ``generate(...)``.

    Args:
        network: network name (``transformer``).
        beam_size: hypotheses kept when decoding for validation, test and :meth:`recognize`
            (1 = greedy, the fastest).
        max_length: the longest text decoded (default: the network's ``max_length``).
        ctc_weight: weight of an auxiliary CTC loss on the encoder's columns (the network's
            CTC head, with the charset's blank) against the decoder's cross-entropy, in
            ``[0, 1)``: the loss is ``(1 - w) * cross-entropy + w * CTC`` (joint CTC-attention,
            Kim et al. 2017). It aligns the encoder early, where cross-attention alone spends
            thousands of steps as a mere language model (docs/models.md). Training only.
    """

    model_name = "seq2seq"

    def __init__(
        self,
        network: str,
        beam_size: int = 1,
        max_length: int | None = None,
        ctc_weight: float = 0.3,
        **kwargs: Any,
    ) -> None:
        super().__init__(network, **kwargs)
        if beam_size < 1:
            raise ConfigError(f"model.args.beam_size={beam_size} must be at least 1")
        if not 0.0 <= ctc_weight < 1.0:
            raise ConfigError(f"model.args.ctc_weight={ctc_weight} must be in [0, 1)")
        if ctc_weight > 0 and getattr(self.network, "ctc_classifier", None) is None:
            raise ConfigError(
                f"model.args.ctc_weight={ctc_weight} needs the network's CTC head: set "
                "network.args.ctc_head=true, or model.args.ctc_weight=0"
            )
        self.ctc_weight = ctc_weight
        longest = getattr(self.network, "max_length", 0)
        if max_length is not None and not 1 <= max_length <= longest:
            raise ConfigError(
                f"model.args.max_length={max_length} must be in [1, {longest}] (the network's "
                "max_length); raise network.args.max_length to decode longer texts"
            )
        self.beam_size = beam_size
        self.max_length = max_length
        specials = {
            "pad_index": self.charset.pad,
            "start_index": self.charset.start,
            "end_index": self.charset.end,
        }
        for name, index in specials.items():
            if getattr(self.network, name, None) != index:
                raise ConfigError(
                    f"network {network!r} has {name}={getattr(self.network, name, None)}, but the "
                    f"charset puts that token at {index}; set network.args.{name}={index}"
                )

    def load_state_dict(
        self, state_dict: Mapping[str, Any], strict: bool = True, assign: bool = False
    ) -> Any:
        """As ``nn.Module``'s; weights saved without the CTC head (a run from before the head
        existed, or with ``ctc_head`` false) load as the model they were: without the head,
        on cross-entropy alone, so that their run resumes as it trained (its optimizer
        state has no head) and they read, export and fine-tune as before."""
        has_head = any(key.startswith(CTC_HEAD) for key in state_dict)
        if getattr(self.network, "ctc_classifier", None) is not None and not has_head:
            self.network.ctc_classifier = None  # type: ignore[assignment]
            self.hparams["network_args"] = {**self.hparams["network_args"], "ctc_head": False}
            if self.ctc_weight:
                log.info(
                    "these weights have no CTC head: ctc_weight %g -> 0 (cross-entropy alone, "
                    "as they were trained)",
                    self.ctc_weight,
                )
                self.ctc_weight = self.hparams["ctc_weight"] = 0.0
        return super().load_state_dict(state_dict, strict=strict, assign=assign)

    def forward(  # type: ignore[override]  # a decoder needs its input tokens
        self, images: torch.Tensor, tokens: torch.Tensor, widths: torch.Tensor | None = None
    ) -> torch.Tensor:
        return self.network(images, tokens, widths)

    def teacher_forcing(
        self, targets: torch.Tensor, target_lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``<pad>``-padded texts ``[B, L]`` -> decoder inputs and outputs, both ``[B, L + 1]``.

        Inputs are ``<start> + text``; outputs ``text + <end>``; the rest is ``<pad>``, which
        the loss ignores.
        """
        batch = targets.shape[0]
        start = targets.new_full((batch, 1), self.charset.start)
        pad = targets.new_full((batch, 1), self.charset.pad)
        inputs = torch.cat([start, targets], dim=1)
        outputs = torch.cat([targets, pad], dim=1)
        outputs.scatter_(1, target_lengths[:, None], self.charset.end)
        return inputs, outputs

    def _loss(self, batch: LineBatch) -> torch.Tensor:
        images, widths, targets, target_lengths = batch
        inputs, outputs = self.teacher_forcing(targets, target_lengths)
        if self.ctc_weight == 0:
            logits = self(images, inputs, widths)
        else:
            memory, memory_valid, ctc_logits = self.network.ctc_logits(images, widths)  # type: ignore[operator]
            logits = self.network.decode(memory, memory_valid, inputs)  # type: ignore[operator]
        logits = logits.float()  # float32 losses under bf16 autocast
        loss = F.cross_entropy(
            logits.reshape(-1, logits.shape[-1]), outputs.reshape(-1), ignore_index=self.charset.pad
        )
        if self.ctc_weight == 0:
            return loss
        log_probs = F.log_softmax(ctc_logits.float(), dim=-1)
        ctc = F.ctc_loss(
            log_probs.transpose(0, 1),  # [T, B, C]
            targets,
            memory_valid.view(len(images), -1, log_probs.shape[1])[:, 0].sum(dim=1),
            target_lengths,
            blank=self.charset.blank,
            zero_infinity=True,
        )
        return (1 - self.ctc_weight) * loss + self.ctc_weight * ctc

    def training_step(self, batch: LineBatch, batch_idx: int) -> torch.Tensor:
        loss = self._loss(batch)
        self.log(
            "train/loss", loss, on_step=True, on_epoch=True, prog_bar=True, batch_size=len(batch[0])
        )
        return loss

    def evaluation_outputs(self, batch: LineBatch) -> tuple[torch.Tensor, list[str]]:
        images, widths, _, _ = batch
        return self._loss(batch), [text for text, _ in self.recognize(images, widths)]

    @torch.no_grad()
    def recognize(
        self, images: torch.Tensor, widths: torch.Tensor | None = None
    ) -> list[tuple[str, float]]:
        """Decode a batch of lines: ``(text, confidence)`` per image (call in ``eval()`` mode).

        The confidence is ``exp(score)``: the geometric mean of the emitted tokens'
        probabilities, in ``(0, 1]``.
        """
        tokens, scores = self.network.generate(  # type: ignore[operator]
            images, widths, max_length=self.max_length, beam_size=self.beam_size
        )
        return texts_and_confidences(tokens.tolist(), scores.tolist(), self.charset)
