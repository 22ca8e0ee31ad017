"""EMNIST ByClass handwritten characters (62 classes: ``0-9 A-Z a-z``) as a DataModule.

``prepare_data`` downloads NIST's ``matlab.zip`` (checksummed) and converts the
ByClass split once to an HDF5 cache; ``setup`` loads that cache and builds the
splits: validation carved from the official training split, test = the official test
split. Targets are charset indices (EMNIST label + 4), images 28x28 with bright ink on
a dark background, as EMNIST stores them.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

import numpy as np
from tqdm import tqdm

from text_recognizer.charset import EMNIST_CHARACTERS, EMNIST_LABEL_OFFSET
from text_recognizer.data.cache import cache_path, read_h5, write_h5
from text_recognizer.data.module import ArrayDataset, BaseDataModule, Kind
from text_recognizer.data.sources.download import RemoteFile, download, progress_shown
from text_recognizer.data.sources.emnist import IMAGE_SIZE, emnist_remote, read_byclass
from text_recognizer.errors import ConfigError, DataError

log = logging.getLogger(__name__)

NUM_CLASSES = len(EMNIST_CHARACTERS)


class Emnist(BaseDataModule):
    """EMNIST ByClass: ~700k training and ~116k test characters, 28x28.

    Args:
        val_fraction: share of the official training split held out for validation.
        balance: cap every class at the mean class count (in the training pool and in
            the test split, seeded), as the FSDL lineage does: ByClass is heavily skewed
            towards digits and a few letters. ``False`` keeps the official splits whole.
        subsample_fraction: keep only this share of train and val (seeded), for quick
            experiments; test stays whole so figures remain comparable.
        urls, sha256: mirrors and checksum of ``matlab.zip`` (default: NIST's file from
            the FSDL mirror, then NIST; or ``$TEXT_RECOGNIZER_EMNIST_URLS`` /
            ``$TEXT_RECOGNIZER_EMNIST_SHA256``).
    """

    kind: ClassVar[Kind] = "char"
    data_train: ArrayDataset | None
    data_val: ArrayDataset | None
    data_test: ArrayDataset | None

    def __init__(
        self,
        batch_size: int = 128,
        num_workers: int = 0,
        seed: int = 0,
        root: Path | None = None,
        val_fraction: float = 0.1,
        balance: bool = True,
        subsample_fraction: float | None = None,
        urls: list[str] | None = None,
        sha256: str | None = None,
    ) -> None:
        super().__init__(batch_size=batch_size, num_workers=num_workers, seed=seed, root=root)
        if not 0.0 <= val_fraction < 1.0:
            raise ConfigError(f"val_fraction must be in [0, 1), got {val_fraction}")
        if subsample_fraction is not None and not 0.0 < subsample_fraction <= 1.0:
            raise ConfigError(
                f"subsample_fraction must be in (0, 1] or None, got {subsample_fraction}"
            )
        try:
            self.remote: RemoteFile = emnist_remote(urls, sha256)
        except ValueError as error:
            raise ConfigError(f"emnist: {error}") from None
        self.val_fraction = val_fraction
        self.balance = balance
        self.subsample_fraction = subsample_fraction
        self._pixel_range: tuple[int, int] | None = None

    @property
    def input_height(self) -> int:
        return IMAGE_SIZE

    @property
    def download_dir(self) -> Path:
        """Where ``matlab.zip`` is downloaded to, or may be placed by hand."""
        return self.root / "emnist"

    @property
    def cache_file(self) -> Path:
        """The HDF5 cache, keyed by the archive's checksum so another archive never reads it."""
        return cache_path(self.root / "emnist", "emnist-byclass", {"sha256": self.remote.sha256})

    def prepare_data(self) -> None:
        """Download ``matlab.zip`` if needed and convert it, unless the cache already exists."""
        if self.cache_file.exists():
            log.info("EMNIST cache %s exists", self.cache_file)
            return
        archive = download(self.remote, self.download_dir)
        arrays = read_byclass(archive)
        # write_h5 has no progress hook; a one-line status says what the pause is.
        with tqdm(
            desc=f"writing {self.cache_file}",
            bar_format="{desc}",
            leave=False,
            disable=not progress_shown(None),
        ):
            write_h5(
                self.cache_file,
                arrays,
                attrs={"source": str(archive), "sha256": self.remote.sha256, "split": "byclass"},
            )
        log.info("wrote EMNIST cache %s", self.cache_file)

    def setup(self, stage: str | None = None) -> None:
        """Load the cache and build the splits (once; later calls are free)."""
        if self.data_train is not None:
            return
        if not self.cache_file.exists():
            raise DataError(
                f"EMNIST cache {self.cache_file} is missing: call prepare_data() first "
                f"(or run `text-recognizer data download emnist --root {self.root}`)"
            )
        arrays = read_h5(self.cache_file, keys=("x_train", "y_train", "x_test", "y_test"))
        x_train, y_train = arrays["x_train"], arrays["y_train"]
        x_test, y_test = arrays["x_test"], arrays["y_test"]
        rng = np.random.default_rng(self.seed)

        # Work on index arrays and gather the (large) image arrays once per split.
        pool = balanced_indices(y_train, rng) if self.balance else np.arange(len(y_train))
        test = balanced_indices(y_test, rng) if self.balance else np.arange(len(y_test))
        shuffled = rng.permutation(pool)
        num_val = round(len(pool) * self.val_fraction)
        val, train = np.sort(shuffled[:num_val]), np.sort(shuffled[num_val:])
        if self.subsample_fraction is not None:
            train = subsample(train, self.subsample_fraction, rng)
            val = subsample(val, self.subsample_fraction, rng)

        train_images, val_images = x_train[train], x_train[val]
        # Targets as Python ints: torch.as_tensor makes int64, what the loss expects.
        self.data_train = ArrayDataset(train_images, y_train[train].tolist())
        self.data_val = ArrayDataset(val_images, y_train[val].tolist())
        self.data_test = ArrayDataset(x_test[test], y_test[test].tolist())
        seen = [a for a in (train_images, val_images) if a.size]
        self._pixel_range = (
            (min(int(a.min()) for a in seen), max(int(a.max()) for a in seen)) if seen else None
        )

    def __repr__(self) -> str:
        # Short lines: the CLI prints this to terminals 80 columns wide.
        last = EMNIST_LABEL_OFFSET + NUM_CLASSES - 1
        header = f"{type(self).__name__}: EMNIST ByClass, {NUM_CLASSES} classes (0-9 A-Z a-z)"
        footer = [
            f"  options: val_fraction={self.val_fraction} balance={self.balance} "
            f"subsample_fraction={self.subsample_fraction}",
            f"           seed={self.seed} batch_size={self.batch_size} "
            f"num_workers={self.num_workers}",
            f"  cache:   {self.cache_file}",
            f"  archive: {self.download_dir / self.remote.filename}",
        ]
        if self.data_train is None or self.data_val is None or self.data_test is None:
            return "\n".join(
                [header, "  splits:  not loaded (call prepare_data(), setup())", *footer]
            )
        splits = {"train": self.data_train, "val": self.data_val, "test": self.data_test}
        sizes = "  ".join(f"{split}={len(data):,}" for split, data in splits.items())
        pixels = "n/a" if self._pixel_range is None else "{}..{}".format(*self._pixel_range)
        counts = "  ".join(
            f"{split} {_count_summary(np.asarray(data.targets))}" for split, data in splits.items()
        )
        return "\n".join(
            [
                header,
                f"  splits:  {sizes}",
                f"  images:  1x{IMAGE_SIZE}x{IMAGE_SIZE} float32 in [0, 1], bright ink on dark",
                f"           (stored uint8; train/val pixel range {pixels})",
                f"  targets: charset indices {EMNIST_LABEL_OFFSET}..{last} "
                f"(EMNIST label + {EMNIST_LABEL_OFFSET})",
                "  per-class counts (min/max/mean):",
                f"           {counts}",
                *footer,
            ]
        )


def balanced_indices(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Sorted indices keeping at most the mean class count (over classes present) per class.

    Which items of an over-full class are kept is random (``rng``); vectorised so
    700k labels take milliseconds.
    """
    if len(labels) == 0:
        return np.arange(0)
    counts = np.bincount(labels)
    cap = max(1, int(counts[counts > 0].mean()))
    order = rng.permutation(len(labels))
    order = order[np.argsort(labels[order], kind="stable")]
    sorted_labels = labels[order]
    rank = np.arange(len(order)) - np.searchsorted(sorted_labels, sorted_labels, side="left")
    return np.sort(order[rank < cap])


def subsample(indices: np.ndarray, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """A sorted random ``fraction`` of ``indices`` (at least one when there are any)."""
    keep = max(1, round(len(indices) * fraction)) if len(indices) else 0
    return np.sort(rng.choice(indices, size=keep, replace=False))


def _count_summary(targets: Sequence[int] | np.ndarray) -> str:
    counts = np.bincount(
        np.asarray(targets, dtype=np.int64) - EMNIST_LABEL_OFFSET, minlength=NUM_CLASSES
    )
    return f"{counts.min()}/{counts.max()}/{counts.mean():.1f}"
