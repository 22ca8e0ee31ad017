"""LineCnn: the Full Stack Deep Learning sliding-window CNN, for CTC.

A small conv stack turns the line into a feature map at 1/4 of its width; one
convolution then spans the full remaining height and ``window_width`` pixels of the
line, and is slid one step (4 px) at a time: each output frame classifies the window
centred on it. No recurrence, so it is fast and exports to anything, but each frame
only sees ``window_width`` pixels of context (the CRNN sees the whole line).
"""

from __future__ import annotations

import torch
from torch import nn

from text_recognizer.networks.resnet import check_line_images, conv_bn_relu, conv_out_size


class LineCnn(nn.Module):
    """``[B, 1, H, W]`` line images -> ``[B, T, num_classes]`` logits, ``T = ceil(W / 4)``.

    Args:
        num_classes: size of the charset (blank included).
        input_height: line height in pixels (28, 32 and 64 are tested).
        conv_dim: channels of the first conv block (doubled twice deeper in).
        window_width: width in pixels of the window each frame sees (a multiple of 4 whose
            quarter is odd, e.g. 20, 28, 36), about 2-3 characters.
        fc_dim: size of the per-window hidden layer.
        dropout: dropout before the classifier.
    """

    downsample = 4

    def __init__(
        self,
        num_classes: int = 83,
        input_height: int = 32,
        conv_dim: int = 16,
        window_width: int = 28,
        fc_dim: int = 128,
        dropout: float = 0.2,
    ) -> None:
        super().__init__()
        window = window_width // self.downsample
        if window_width % self.downsample or window % 2 == 0:
            raise ValueError(
                f"window_width={window_width} must be a multiple of 4 whose quarter is odd "
                "(e.g. 20, 28, 36) so the window is centred on its frame"
            )
        if input_height < 16:
            raise ValueError(f"input_height={input_height} is too small; use 16 px or more")
        self.input_height = input_height
        self.strides = ((2, 2), (1, 1), (2, 2), (1, 1), (2, 1))
        self.convs = nn.Sequential(
            conv_bn_relu(1, conv_dim, self.strides[0]),
            conv_bn_relu(conv_dim, conv_dim, self.strides[1]),
            conv_bn_relu(conv_dim, 2 * conv_dim, self.strides[2]),
            conv_bn_relu(2 * conv_dim, 2 * conv_dim, self.strides[3]),
            conv_bn_relu(2 * conv_dim, 4 * conv_dim, self.strides[4]),
        )
        feature_height = input_height
        for stride_h, _ in self.strides:
            feature_height = conv_out_size(feature_height, stride_h)
        # The sliding window: full height, `window` frames wide, one step per frame.
        self.window = nn.Sequential(
            nn.Conv2d(4 * conv_dim, fc_dim, (feature_height, window), padding=(0, window // 2)),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
        )
        self.classifier = nn.Linear(fc_dim, num_classes)

    def output_lengths(self, widths: torch.Tensor) -> torch.Tensor:
        """Number of real (non-padding) frames for images of true width ``widths``."""
        for _, stride_w in self.strides:
            widths = torch.div(widths - 1, stride_w, rounding_mode="floor") + 1
        return widths

    def forward(self, images: torch.Tensor, widths: torch.Tensor | None = None) -> torch.Tensor:
        """Logits ``[B, T, num_classes]``; frames past ``output_lengths(widths)`` are padding.

        ``widths`` is accepted (and unused) so every line network has one signature.
        """
        check_line_images(images, self.input_height)
        features = self.window(self.convs(images)).squeeze(2).transpose(1, 2)  # [B, T, fc_dim]
        return self.classifier(features)
