"""A LeNet-style CNN for 28x28 characters: two conv blocks, then a small classifier head.

Batch norm and a second conv per block make it robust to the stroke-width and
placement changes between rendered training characters and real handwriting.
"""

from __future__ import annotations

import torch
from torch import nn


def conv_block(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
        nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(2),
    )


class LeNet(nn.Module):
    def __init__(
        self,
        num_classes: int = 83,
        input_size: int = 28,
        channels: tuple[int, int] = (32, 64),
        fc_dim: int = 256,
        dropout: float = 0.3,
    ) -> None:
        super().__init__()
        self.features = nn.Sequential(
            conv_block(1, channels[0]), conv_block(channels[0], channels[1])
        )
        flat = channels[1] * (input_size // 4) ** 2
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Dropout(dropout),
            nn.Linear(flat, fc_dim),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(fc_dim, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, 1, S, S]`` images -> ``[B, num_classes]`` logits."""
        return self.classifier(self.features(x))
