"""NIST's EMNIST archive: where it lives, its checksum, and reading the ByClass split.

EMNIST (Cohen et al., 2017) converts the handwritten characters of NIST Special
Database 19 to 28x28 images in MNIST's format. The ByClass split has 62 classes
(``0-9 A-Z a-z``), 697,932 training and 116,323 test images. NIST ships it as one
~700 MB ``matlab.zip``; only the ByClass member is read, straight out of the zip.
"""

from __future__ import annotations

import io
import logging
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from text_recognizer.charset import EMNIST_CHARACTERS, EMNIST_LABEL_OFFSET
from text_recognizer.data.sources.download import RemoteFile, progress_shown, remote_file
from text_recognizer.errors import DataError

log = logging.getLogger(__name__)

EMNIST_FILENAME = "matlab.zip"
EMNIST_SHA256 = "e1fa805cdeae699a52da0b77c2db17f6feb77eed125f9b45c022e7990444df95"
EMNIST_URLS: tuple[str, ...] = (
    "https://s3-us-west-2.amazonaws.com/fsdl-public-assets/matlab.zip",  # FSDL mirror: fast
    "https://biometrics.nist.gov/cs_links/EMNIST/matlab.zip",  # NIST, the source
)
BYCLASS_MEMBER = "matlab/emnist-byclass.mat"
IMAGE_SIZE = 28

ENV_PREFIX = "TEXT_RECOGNIZER_EMNIST"  # _URLS, _SHA256: see remote_file


def emnist_remote(urls: Sequence[str] | None = None, sha256: str | None = None) -> RemoteFile:
    """The archive to fetch: explicit arguments, else ``$TEXT_RECOGNIZER_EMNIST_URLS`` /
    ``$TEXT_RECOGNIZER_EMNIST_SHA256``, else NIST's file from the FSDL mirror then NIST."""
    return remote_file(EMNIST_FILENAME, EMNIST_SHA256, EMNIST_URLS, ENV_PREFIX, urls, sha256)


def read_byclass(zip_path: Path, *, progress: bool | None = None) -> dict[str, np.ndarray]:
    """Read the ByClass split from ``matlab.zip`` without extracting the archive.

    Returns ``x_train``/``x_test`` as uint8 ``[N, 28, 28]`` (upright, bright ink on a
    dark background) and ``y_train``/``y_test`` as int64 charset indices
    (EMNIST label + ``EMNIST_LABEL_OFFSET``). ``progress``: as for
    :func:`~text_recognizer.data.sources.download.progress_shown`.
    """
    from scipy.io import loadmat  # scipy is slow to import and only needed here
    from scipy.io.matlab import MatReadError

    try:
        with zipfile.ZipFile(zip_path) as archive:
            try:
                info = archive.getinfo(BYCLASS_MEMBER)
            except KeyError:
                members = ", ".join(archive.namelist()[:8])
                raise DataError(
                    f"{zip_path} has no {BYCLASS_MEMBER} (it holds: {members}); "
                    f"it is not NIST's EMNIST matlab.zip: delete it and download again"
                ) from None
            with (
                archive.open(info) as member,
                tqdm(
                    total=info.file_size,
                    unit="B",
                    unit_scale=True,
                    unit_divisor=1024,
                    desc=f"reading {BYCLASS_MEMBER}",
                    disable=not progress_shown(progress),
                    leave=False,
                ) as bar,
            ):
                mat = loadmat(_ProgressReader(member, bar), variable_names=["dataset"])
    # MatReadError (not a ValueError): a member too short to hold a MAT-file header.
    except (zipfile.BadZipFile, MatReadError, ValueError, OSError) as error:
        raise DataError(
            f"cannot read {BYCLASS_MEMBER} from {zip_path} ({error}); "
            f"delete the file and download it again"
        ) from error
    if "dataset" not in mat:
        raise DataError(f"{BYCLASS_MEMBER} in {zip_path} has no 'dataset' variable")
    try:
        # MATLAB structs load as (1, 1) record arrays, hence every [0, 0].
        dataset = mat["dataset"]
        _check_mapping(dataset["mapping"][0, 0])
        out = {}
        for split in ("train", "test"):
            fields = dataset[split][0, 0]
            out[f"x_{split}"] = _images(fields["images"][0, 0])
            out[f"y_{split}"] = _labels(fields["labels"][0, 0], len(out[f"x_{split}"]))
    except (KeyError, IndexError, ValueError) as error:
        raise DataError(
            f"{BYCLASS_MEMBER} in {zip_path} does not have EMNIST's layout ({error!r})"
        ) from error
    return out


def _images(flat: np.ndarray) -> np.ndarray:
    """``[N, 784]`` rows stored column-major (MATLAB order) -> upright ``[N, 28, 28]``."""
    if flat.ndim != 2 or flat.shape[1] != IMAGE_SIZE * IMAGE_SIZE:
        raise ValueError(f"images have shape {flat.shape}, expected (N, {IMAGE_SIZE**2})")
    images = flat.reshape(-1, IMAGE_SIZE, IMAGE_SIZE).swapaxes(1, 2)
    return np.ascontiguousarray(images, dtype=np.uint8)


def _labels(labels: np.ndarray, count: int) -> np.ndarray:
    labels = np.asarray(labels).reshape(-1).astype(np.int64)
    if len(labels) != count:
        raise ValueError(f"{len(labels)} labels for {count} images")
    if len(labels) and (labels.min() < 0 or labels.max() >= len(EMNIST_CHARACTERS)):
        raise ValueError(f"labels span {labels.min()}..{labels.max()}, expected 0..61")
    return labels + EMNIST_LABEL_OFFSET


def _check_mapping(mapping: np.ndarray) -> None:
    """The archive's label -> ASCII table must be ours, or every label would be misread."""
    table = np.asarray(mapping).astype(np.int64)
    theirs = {int(label): chr(int(code)) for label, code in table.reshape(-1, 2)}
    ours = dict(enumerate(EMNIST_CHARACTERS))
    if theirs != ours:
        wrong = sorted(k for k in ours.keys() | theirs.keys() if ours.get(k) != theirs.get(k))
        raise ValueError(
            f"label mapping differs from ByClass order (0-9 A-Z a-z) at labels {wrong[:10]}"
        )


class _ProgressReader(io.RawIOBase):
    """A read-only file that advances a progress bar as scipy reads through it."""

    def __init__(self, raw: io.BufferedIOBase | Any, bar: tqdm[Any]) -> None:
        super().__init__()
        self._raw = raw
        self._bar = bar

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        data: bytes = self._raw.read(-1 if size is None else size)
        self._bar.update(len(data))
        return data

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        position: int = self._raw.seek(offset, whence)
        self._bar.n = position
        return position

    def tell(self) -> int:
        return int(self._raw.tell())
