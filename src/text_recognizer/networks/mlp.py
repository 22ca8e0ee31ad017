"""A multilayer perceptron for 28x28 characters: the simplest baseline."""

from __future__ import annotations

import torch
from torch import nn


class Mlp(nn.Module):
    def __init__(
        self,
        num_classes: int = 83,
        input_size: int = 28,
        hidden: tuple[int, ...] = (1024, 128),
        dropout: float = 0.2,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        width = input_size * input_size
        for size in hidden:
            layers += [nn.Linear(width, size), nn.ReLU(inplace=True), nn.Dropout(dropout)]
            width = size
        layers.append(nn.Linear(width, num_classes))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, 1, S, S]`` images -> ``[B, num_classes]`` logits."""
        return self.layers(x)
