"""Tiny in-memory datasets for fast training tests."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from text_recognizer.charset import DEFAULT_CHARSET
from text_recognizer.data import DATASETS, BaseDataModule
from text_recognizer.data.module import ArrayDataset
from text_recognizer.data.synthetic_lines import PackedLines


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


class TinyLines(BaseDataModule):
    """Lines of 2-5 letters A-D, each a bar at its own height: variable widths, so the
    training loader is the width-bucketed one real line datasets get."""

    kind = "line"

    def __init__(
        self,
        size: int = 64,
        width_stretch: list[float] | None = None,
        page_cuts: float = 0.0,
        fine_pens: float = 0.0,
        **kwargs: object,
    ) -> None:
        super().__init__(
            width_stretch=width_stretch,
            page_cuts=page_cuts,
            fine_pens=fine_pens,
            **kwargs,  # type: ignore[arg-type]
        )
        self.size = size

    @property
    def input_height(self) -> int:
        return 32

    def setup(self, stage: str | None = None) -> None:
        rng = np.random.default_rng(self.seed)
        texts = ["".join(rng.choice(list("ABCD"), rng.integers(2, 6))) for _ in range(self.size)]
        images = []
        for text in texts:
            image = rng.integers(0, 40, (32, 12 * len(text) + 8)).astype(np.uint8)
            for i, char in enumerate(text):
                row = 4 + "ABCD".index(char) * 6
                image[row : row + 5, 4 + 12 * i : 12 + 12 * i] = 255
            images.append(image)
        offsets = np.cumsum([0, *(image.shape[1] for image in images)])
        strip = np.concatenate(images, axis=1)

        def lines(start: int, stop: int) -> PackedLines:
            return PackedLines(
                strip[:, offsets[start] : offsets[stop]],
                offsets[start : stop + 1] - offsets[start],
                np.array(texts[start:stop]),
                np.zeros(stop - start, dtype=np.int64),
            )

        n = self.size // 4
        self.data_train = lines(2 * n, self.size)
        self.data_val = lines(0, n)
        self.data_test = lines(n, 2 * n)


@pytest.fixture
def tiny_lines() -> Iterator[str]:
    DATASETS._entries["tiny_lines"] = TinyLines
    yield "tiny_lines"
    del DATASETS._entries["tiny_lines"]


@pytest.fixture
def tiny_chars() -> Iterator[str]:
    DATASETS._entries["tiny_chars"] = TinyChars
    yield "tiny_chars"
    del DATASETS._entries["tiny_chars"]
