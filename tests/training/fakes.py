"""Tiny in-memory datasets for fast training tests."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from text_recognizer.charset import DEFAULT_CHARSET
from text_recognizer.data import DATASETS, BaseDataModule
from text_recognizer.data.module import ArrayDataset


class TinyChars(BaseDataModule):
    """Four classes drawn as distinct bars: learnable in a few steps."""

    kind = "char"

    def __init__(self, size: int = 64, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.size = size

    @property
    def input_height(self) -> int:
        return 28

    def setup(self, stage: str | None = None) -> None:
        rng = np.random.default_rng(self.seed)
        labels = rng.integers(0, 4, self.size)
        images = np.zeros((self.size, 28, 28), dtype=np.uint8)
        for i, label in enumerate(labels):
            images[i, 4 + label * 5 : 8 + label * 5, 4:24] = 255
        images = np.clip(images + rng.integers(0, 40, images.shape), 0, 255).astype(np.uint8)
        targets = [DEFAULT_CHARSET.index("ABCD"[k]) for k in labels]
        n = self.size // 4
        self.data_train = ArrayDataset(images[2 * n :], targets[2 * n :])
        self.data_val = ArrayDataset(images[:n], targets[:n])
        self.data_test = ArrayDataset(images[n : 2 * n], targets[n : 2 * n])


@pytest.fixture
def tiny_chars() -> Iterator[str]:
    DATASETS._entries["tiny_chars"] = TinyChars
    yield "tiny_chars"
    del DATASETS._entries["tiny_chars"]
