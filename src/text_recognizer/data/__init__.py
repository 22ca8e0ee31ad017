"""Datasets as LightningDataModules, built by name: ``DATASETS.build("emnist", {...})``.

The registry is built on first use: the datasets import Lightning (~2 s, and only with the
``train`` extra), while their light parts (the sentence corpus, the cache key) also serve the
inference-only reader.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from text_recognizer.data.module import BaseDataModule
    from text_recognizer.registry import Registry

    DATASETS: Registry[BaseDataModule]

__all__ = ["DATASETS", "BaseDataModule"]


def __getattr__(name: str) -> Any:
    if name == "BaseDataModule":
        from text_recognizer.data.module import BaseDataModule

        return BaseDataModule
    if name != "DATASETS":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from text_recognizer.data.emnist import Emnist
    from text_recognizer.data.emnist_lines import EmnistLines
    from text_recognizer.data.folder import LabelledFolder
    from text_recognizer.data.iam_lines import IamLines
    from text_recognizer.data.iam_paragraphs import IamParagraphs
    from text_recognizer.data.module import BaseDataModule
    from text_recognizer.data.synthetic_chars import SyntheticChars
    from text_recognizer.data.synthetic_lines import SyntheticLines
    from text_recognizer.data.synthetic_paragraphs import SyntheticParagraphs
    from text_recognizer.registry import Registry

    datasets: Registry[BaseDataModule] = Registry(
        "dataset",
        set_elsewhere={
            "seed": "it is the run's seed (seed: in a config; evaluate --seed)",
            "batch_size": "set data.batch_size in a config (evaluate --batch-size)",
            "num_workers": "set data.num_workers in a config",
        },
    )
    datasets.register("emnist")(Emnist)
    datasets.register("emnist_lines")(EmnistLines)
    datasets.register("folder")(LabelledFolder)
    datasets.register("iam_lines")(IamLines)
    datasets.register("iam_paragraphs")(IamParagraphs)
    datasets.register("synthetic_chars")(SyntheticChars)
    datasets.register("synthetic_lines")(SyntheticLines)
    datasets.register("synthetic_paragraphs")(SyntheticParagraphs)
    globals()["DATASETS"] = datasets  # built once; later lookups skip __getattr__
    return datasets
