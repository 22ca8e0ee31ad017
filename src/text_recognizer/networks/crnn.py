"""CRNN: a ResNet-style encoder, a 2-layer BiLSTM over width, and a per-frame classifier.

The encoder downsamples early (strided stem) and then strides over height only, so a
32 px line becomes one feature vector per 4 px of width: at 8-12 px per character that
is 2-3 frames per character, room for CTC's blanks between repeated letters (a time
stride of 8 would leave ~1 frame per character at 8 px and could not spell "ll").
Height is collapsed by a convolution spanning the remaining rows, so the network still
knows *where* in the line's height a stroke sits (ascenders vs descenders).

The defaults (0.43M parameters) are sized for training on a 2-core CPU: ~95 lines/s
per core (batch 32, width ~400, CPU time; ``benchmarks/line_model_speed.py`` compares
wider configs) and ~2 ms per line in ONNX Runtime on one thread.

Passing the true ``widths`` to :meth:`Crnn.forward` keeps the backward LSTM out of
the right-padding, so a line in a padded batch gets the logits it would get alone (up to
the convolutions' reach into the padding at the right edge). It reverses each line
within its own length instead of packing: ``pack_padded_sequence`` falls off oneDNN's
fused LSTM onto a per-step loop, which made a training step ~2.5x slower here.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from text_recognizer.networks.resnet import ResNetEncoder, Stride, check_line_images


def reverse_padded(sequences: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Reverse the first ``lengths[i]`` steps of each ``[B, T, C]`` sequence; padding stays put."""
    steps = torch.arange(sequences.shape[1], device=sequences.device).unsqueeze(0)
    last = lengths.unsqueeze(1) - 1
    index = torch.where(steps <= last, last - steps, steps)
    return sequences.gather(1, index.unsqueeze(-1).expand_as(sequences))


class BiLstm(nn.Module):
    """One bidirectional LSTM layer whose backward direction starts at each line's last real step.

    Both directions run as fused (oneDNN) unidirectional LSTMs: right-padding comes after
    the real steps in both, so it cannot reach them.
    """

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        self.forward_lstm = nn.LSTM(input_size, hidden_size, batch_first=True)
        self.backward_lstm = nn.LSTM(input_size, hidden_size, batch_first=True)

    def forward(self, sequences: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
        forward, _ = self.forward_lstm(sequences)
        if lengths is None:  # no padding: a plain reversal
            backward, _ = self.backward_lstm(sequences.flip(1))
            return torch.cat([forward, backward.flip(1)], dim=-1)
        backward, _ = self.backward_lstm(reverse_padded(sequences, lengths))
        return torch.cat([forward, reverse_padded(backward, lengths)], dim=-1)


class Crnn(nn.Module):
    """``[B, 1, H, W]`` line images -> ``[B, T, num_classes]`` logits, ``T = ceil(W / 4)``.

    Args:
        num_classes: size of the charset (blank included).
        input_height: line height in pixels (28, 32 and 64 are tested).
        channels: encoder channels: stem, then one per residual stage.
        strides: encoder strides ``(height, width)``: stem, then one per stage. The product
            of the width strides is the time downsampling (4 by default).
        blocks: residual blocks per stage.
        lstm_hidden: hidden size of each LSTM direction.
        lstm_layers: stacked BiLSTM layers.
        dropout: dropout between LSTM layers and before the classifier.
    """

    def __init__(
        self,
        num_classes: int = 83,
        input_height: int = 32,
        channels: Sequence[int] = (16, 32, 64, 96),
        strides: Sequence[Stride] = ((2, 2), (2, 2), (2, 1), (2, 1)),
        blocks: Sequence[int] = (1, 1, 1),
        lstm_hidden: int = 64,
        lstm_layers: int = 2,
        dropout: float = 0.2,
    ) -> None:
        super().__init__()
        if input_height < 16:
            raise ValueError(f"input_height={input_height} is too small; use 16 px or more")
        self.input_height = input_height
        self.encoder = ResNetEncoder(channels, strides, blocks)
        feature_height, _ = self.encoder.output_size(input_height, input_height)
        channels_out = self.encoder.out_channels
        # One conv over all remaining rows: height -> 1, keeping vertical position info.
        self.collapse = nn.Sequential(
            nn.Conv2d(channels_out, channels_out, (feature_height, 1), bias=False),
            nn.BatchNorm2d(channels_out),
            nn.ReLU(inplace=True),
        )
        self.lstms = nn.ModuleList(
            BiLstm(channels_out if i == 0 else 2 * lstm_hidden, lstm_hidden)
            for i in range(lstm_layers)
        )
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(2 * lstm_hidden, num_classes)

    def output_lengths(self, widths: torch.Tensor) -> torch.Tensor:
        """Number of real (non-padding) frames for images of true width ``widths``."""
        return self.encoder.output_widths(widths)

    def forward(self, images: torch.Tensor, widths: torch.Tensor | None = None) -> torch.Tensor:
        """Logits ``[B, T, num_classes]``; frames past ``output_lengths(widths)`` are padding.

        ``widths`` (true image widths, optional) keeps right-padding out of the BiLSTM.
        """
        check_line_images(images, self.input_height)
        sequence = self.collapse(self.encoder(images)).squeeze(2).transpose(1, 2)  # [B, T, C]
        lengths = None
        if widths is not None:
            lengths = self.output_lengths(widths).clamp(1, sequence.shape[1])
        for i, lstm in enumerate(self.lstms):
            if i > 0:
                sequence = self.dropout(sequence)
            sequence = lstm(sequence, lengths)
        return self.classifier(self.dropout(sequence))
