"""Processed-dataset caches: HDF5 files keyed by the parameters that built them.

The key is a hash of every parameter, so a change of parameters never reads a stale
cache, and files are written under a temporary name and renamed so a killed build
never leaves a half-written cache behind. Numeric arrays carry a Fletcher-32 checksum per
chunk, so bytes damaged later on disk are reported instead of read as pixels. h5py is
imported where files are read or written: it comes with the ``train`` extra, and the
reader's LM cache needs only the key.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from text_recognizer.errors import DataError

log = logging.getLogger(__name__)
CACHE_FORMAT_VERSION = 1


def cache_key(params: Mapping[str, Any]) -> str:
    """A short stable hash of JSON-serialisable parameters."""
    payload = json.dumps({"v": CACHE_FORMAT_VERSION, **params}, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def cache_path(directory: Path, name: str, params: Mapping[str, Any]) -> Path:
    return directory / f"{name}-{cache_key(params)}.h5"


def ensure_writable_folder(folder: Path) -> None:
    """Create ``folder`` and check a file can be written in it, before minutes of work are
    spent on what could not be saved; a ``DataError`` naming the folder otherwise."""
    probe = folder / f".write-test.{os.getpid()}"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe.touch()
        probe.unlink()
    except OSError as error:
        raise DataError(
            f"cannot write to {folder} ({error.strerror or error}): choose another data "
            "folder (--root, the dataset's root argument, or $TEXT_RECOGNIZER_DATA)"
        ) from None


def write_h5(
    path: Path, arrays: Mapping[str, np.ndarray], attrs: Mapping[str, Any] | None = None
) -> None:
    """Write arrays to ``path`` atomically (temp file in the same folder, then rename).

    String arrays are stored as UTF-8 variable-length strings; ``attrs`` (e.g. the
    parameters) are stored as JSON so a cache documents how it was built.
    """
    import h5py

    ensure_writable_folder(path.parent)
    # HDF5 aborts the whole process when the disk fills mid-write (h5py 3.16, HDF5 2.0),
    # before Python sees an error: say so first where the arrays may not fit. Compressed,
    # they take less, so this warns rather than refuses.
    raw = sum(np.asarray(a).nbytes for a in arrays.values())
    free = shutil.disk_usage(path.parent).free
    if free < raw:
        log.warning(
            "writing %s (up to %.1f MB before compression) with %.1f MB free on its disk: "
            "if the disk fills, HDF5 stops this process; free some space if it does",
            path.name,
            raw / 1e6,
            free / 1e6,
        )
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with h5py.File(tmp, "w") as f:
            for key, array in arrays.items():
                if array.dtype.kind in "OU":
                    f.create_dataset(
                        key, data=np.asarray(array, dtype=object), dtype=h5py.string_dtype("utf-8")
                    )
                else:
                    chunked = array.ndim > 0 and array.size > 0
                    f.create_dataset(
                        key,
                        data=array,
                        compression="lzf",
                        chunks=True if chunked else None,
                        fletcher32=chunked,  # filters need chunks; a scalar has none
                    )
            f.attrs["params"] = json.dumps(dict(attrs or {}), sort_keys=True, default=str)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def read_h5(path: Path, keys: Sequence[str] = ()) -> dict[str, np.ndarray]:
    """Read every dataset of an HDF5 cache into memory; strings come back as ``str``.

    ``keys`` are the datasets the caller needs: a cache without one of them, or one whose
    bytes were damaged, is a ``DataError`` that says to delete it.
    """
    import h5py

    try:
        with h5py.File(path, "r") as f:
            out: dict[str, np.ndarray] = {}
            for key in f:
                dataset = f[key]
                if h5py.check_string_dtype(dataset.dtype):
                    out[key] = np.array(dataset.asstr()[()], dtype=object)
                else:
                    out[key] = dataset[()]
    # h5py reports damaged metadata as KeyError or RuntimeError as well as OSError, and a
    # damaged string as UnicodeDecodeError (a ValueError).
    except (OSError, KeyError, RuntimeError, ValueError) as error:
        raise DataError(
            f"cache {path} is unreadable ({error}); delete it and it will be rebuilt"
        ) from error
    missing = [key for key in keys if key not in out]
    if missing:
        raise DataError(
            f"cache {path} has no {', '.join(missing)} (it holds: {', '.join(out) or 'nothing'}); "
            "delete it and it will be rebuilt"
        )
    return out
