"""Datasets as LightningDataModules, built by name: ``DATASETS.build("emnist", {...})``."""

from text_recognizer.data.emnist import Emnist
from text_recognizer.data.emnist_lines import EmnistLines
from text_recognizer.data.folder import LabelledFolder
from text_recognizer.data.iam_lines import IamLines
from text_recognizer.data.module import BaseDataModule
from text_recognizer.data.synthetic_chars import SyntheticChars
from text_recognizer.data.synthetic_lines import SyntheticLines
from text_recognizer.registry import Registry

DATASETS: Registry[BaseDataModule] = Registry("dataset")

DATASETS.register("emnist")(Emnist)
DATASETS.register("emnist_lines")(EmnistLines)
DATASETS.register("folder")(LabelledFolder)
DATASETS.register("iam_lines")(IamLines)
DATASETS.register("synthetic_chars")(SyntheticChars)
DATASETS.register("synthetic_lines")(SyntheticLines)

__all__ = ["DATASETS", "BaseDataModule"]
