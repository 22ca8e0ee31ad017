"""ResNet-style building blocks for line encoders (CRNN now, a Transformer encoder later).

Line images are wide and short, so the encoder downsamples early (a strided stem)
and later stages stride over height only: width keeps the time resolution CTC needs
(one frame per 4 px) while height is collapsed to a few rows cheaply.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

Stride = tuple[int, int]


def check_line_images(images: torch.Tensor, input_height: int) -> None:
    """Every line network's input check: ``[B, 1, input_height, W]``, with a hint to resize."""
    if torch.jit.is_tracing():  # shapes are symbolic while exporting to ONNX
        return
    if images.dim() != 4 or images.shape[1:3] != (1, input_height):
        raise ValueError(
            f"expected images of shape [B, 1, {input_height}, W]; got "
            f"{tuple(images.shape)} (resize lines to the network's input_height)"
        )


def conv_out_size(size: int, stride: int, kernel: int = 3, padding: int = 1) -> int:
    """Output size of a convolution along one axis (the formula ``nn.Conv2d`` uses)."""
    return (size + 2 * padding - kernel) // stride + 1


def conv_bn_relu(in_channels: int, out_channels: int, stride: Stride = (1, 1)) -> nn.Sequential:
    """3x3 convolution, batch norm, ReLU: the stem and the unit inside blocks."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


#: Below this many input channels, a strided 1x1 convolution's weight gradient on
#: channels-last tensors corrupts memory in oneDNN's AVX512 kernel (``jit_1x1:avx512_core``
#: backward_weights, torch 2.13): a segfault or "double free or corruption" within the
#: first training steps of a small CRNN (channels 4-8-8-16). Its default layout, and
#: oneDNN's AVX2 kernels, compute it correctly.
CHANNELS_LAST_MIN_SHORTCUT_CHANNELS = 16


def channels_last_is_safe(channels: Sequence[int], strides: Sequence[Stride]) -> bool:
    """Whether an encoder of these channels and strides may train on channels-last tensors:
    each stage's strided 1x1 shortcut (its first block) reads at least
    ``CHANNELS_LAST_MIN_SHORTCUT_CHANNELS`` channels."""
    return all(
        channels[i] >= CHANNELS_LAST_MIN_SHORTCUT_CHANNELS
        for i in range(len(channels) - 1)
        if tuple(strides[i + 1]) != (1, 1)
    )


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with an identity (or 1x1 projection) shortcut, as in ResNet-18."""

    def __init__(self, in_channels: int, out_channels: int, stride: Stride = (1, 1)) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        # Zero-init the last BN so each block starts as the identity: faster, stabler start.
        nn.init.zeros_(self.bn2.weight)
        self.shortcut: nn.Module = nn.Identity()
        if stride != (1, 1) or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return torch.relu(out + self.shortcut(x))


class ResNetEncoder(nn.Module):
    """Strided stem + residual stages: ``[B, 1, H, W]`` -> ``[B, C, H', W']`` feature map.

    Args:
        channels: stem channels, then one entry per stage.
        strides: stem stride, then one per stage (``(height, width)``).
        blocks: residual blocks per stage (one entry per stage).
    """

    def __init__(
        self,
        channels: Sequence[int] = (16, 32, 64, 128),
        strides: Sequence[Stride] = ((2, 2), (2, 2), (2, 1), (2, 1)),
        blocks: Sequence[int] = (1, 1, 1),
    ) -> None:
        super().__init__()
        if len(channels) != len(strides) or len(blocks) != len(channels) - 1:
            raise ValueError(
                f"need one stride per channel entry and one block count per stage; got "
                f"channels={list(channels)}, strides={list(strides)}, blocks={list(blocks)}"
            )
        self.strides: list[Stride] = [(s[0], s[1]) for s in strides]
        self.stem = conv_bn_relu(1, channels[0], stride=self.strides[0])
        stages = []
        for i, num_blocks in enumerate(blocks):
            stride = self.strides[i + 1]
            stage = [BasicBlock(channels[i], channels[i + 1], stride)]
            stage += [BasicBlock(channels[i + 1], channels[i + 1]) for _ in range(num_blocks - 1)]
            stages.append(nn.Sequential(*stage))
        self.stages = nn.Sequential(*stages)
        self.out_channels = channels[-1]
        # oneDNN's CPU convolutions run ~15 % faster on NHWC (channels-last) tensors: a
        # CRNN training step here went from 216-244 to 248-286 lines/s. Layout only; the
        # values, state_dict and ONNX graph are the same.
        self.channels_last = channels_last_is_safe(channels, self.strides)
        if self.channels_last:
            self.to(memory_format=torch.channels_last)  # type: ignore[call-overload]

    def output_size(self, height: int, width: int) -> tuple[int, int]:
        """Feature-map size ``(H', W')`` for an input of ``height`` x ``width``."""
        for stride_h, stride_w in self.strides:
            height, width = conv_out_size(height, stride_h), conv_out_size(width, stride_w)
        return height, width

    def output_widths(self, widths: torch.Tensor) -> torch.Tensor:
        """Feature-map width for each true image width (same formula, on a tensor)."""
        for _, stride_w in self.strides:
            widths = torch.div(widths + 2 - 3, stride_w, rounding_mode="floor") + 1
        return widths

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return self.stages(self.stem(x))
