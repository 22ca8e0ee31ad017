"""Processed-dataset caches: HDF5 files keyed by the parameters that built them.

The key is a hash of every parameter, so a change of parameters never reads a stale
cache, and files are written under a temporary name and renamed so a killed build
never leaves a half-written cache behind (the next build removes its temporary file).
Data too large to hold at once is written as it is made (:class:`H5Writer`). Numeric
arrays carry a Fletcher-32 checksum per chunk and string arrays a SHA-256 of their
strings, so bytes damaged later on disk are reported instead of read as pixels or text.
h5py is imported where files are read or written: it comes with the ``train`` extra,
and the reader's LM cache needs only the key.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import io
import json
import logging
import math
import os
import shutil
import socket
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from text_recognizer.errors import DataError
from text_recognizer.files import process_running

log = logging.getLogger(__name__)
CACHE_FORMAT_VERSION = 1


def cache_key(params: Mapping[str, Any]) -> str:
    """A short stable hash of JSON-serialisable parameters."""
    payload = json.dumps({"v": CACHE_FORMAT_VERSION, **params}, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def cache_path(directory: Path, name: str, params: Mapping[str, Any]) -> Path:
    return directory / f"{name}-{cache_key(params)}.h5"


DATA_FOLDER_ADVICE = (
    "choose another data folder (--root, the dataset's root argument, or $TEXT_RECOGNIZER_DATA)"
)


def ensure_writable_folder(
    folder: Path, what: str = "to", advice: str = DATA_FOLDER_ADVICE
) -> None:
    """Create ``folder`` and check a file can be written in it, before minutes of work are
    spent on what could not be saved; a ``DataError`` naming the folder otherwise
    ("cannot write {what} {folder} (why): {advice}")."""
    probe = folder / f".write-test.{os.getpid()}"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe.touch()
        probe.unlink()
    except OSError as error:
        raise DataError(
            f"cannot write {what} {folder} ({error.strerror or error}): {advice}"
        ) from None


def _temp_file(path: Path, pid: int) -> Path:
    # The host too: on a shared data folder, another machine's process ids mean nothing here.
    return path.with_name(f".{path.name}.{socket.gethostname()}.{pid}.tmp")


def _remove_stopped_builds(path: Path) -> None:
    """Delete the temporary files of builds of ``path`` on this host whose process is gone:
    a killed build (SIGKILL, a closed terminal, the OOM killer) cannot remove its own, and
    each would keep up to a cache's size of disk for ever."""
    prefix = _temp_file(path, 0).name[: -len("0.tmp")]
    for tmp in path.parent.glob(f"{glob.escape(prefix)}*.tmp"):
        pid = tmp.name[len(prefix) : -len(".tmp")]
        if pid.isdigit() and not process_running(int(pid)):
            tmp.unlink(missing_ok=True)
            log.info("removed %s, left by a build that was stopped", tmp)


class _KeptWriteErrors(io.RawIOBase):
    """The file HDF5 writes a cache through. A write that fails (a full disk, a quota, a
    file-size limit, an I/O error) is kept here for :class:`H5Writer` to raise, and HDF5
    is told it succeeded: once one of its writes fails, HDF5 2.0 (h5py 3.16) crashes the
    process (a segmentation fault) on a later call, leaving no message."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self._raw = path.open("w+b", buffering=0)  # closed in close()
        self.error: OSError | None = None

    def readable(self) -> bool:
        return True

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self._raw.seek(offset, whence)

    def tell(self) -> int:
        return self._raw.tell()

    def readinto(self, buffer: Any) -> int:
        return self._raw.readinto(buffer) or 0

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        done = 0
        # h5py ignores a short write's count, so the rest is written here.
        while self.error is None and done < len(view):
            try:
                done += self._raw.write(view[done:]) or 0
            except OSError as error:
                self.error = error
        return len(view)

    def truncate(self, size: int | None = None) -> int:
        try:
            return self._raw.truncate(size)
        except OSError as error:
            self.error = self.error or error
            return self._raw.tell() if size is None else size

    def close(self) -> None:
        super().close()
        self._raw.close()


#: A string dataset's attribute holding the SHA-256 of its strings: HDF5 keeps no
#: checksum of variable-length strings, so a damaged byte read as another character.
STRINGS_CHECKSUM = "sha256"


def _strings_checksum(strings: np.ndarray) -> str:
    return hashlib.sha256(json.dumps(strings.reshape(-1).tolist()).encode()).hexdigest()


Writer = TypeVar("Writer", bound="H5Writer")


class H5Writer:
    """An HDF5 cache written as its data is made, so a build holds one piece at a time.

    Used as a context manager: the file is written under a temporary name in the same
    folder and renamed to ``path`` only when the block ends without an error, so a build
    that fails or is killed never leaves a half-written cache (a killed one's temporary
    file is removed by the next build of the same cache). A write the disk refuses (full,
    a quota, a file-size limit) is a ``DataError`` naming the file, and leaves nothing.
    Numeric arrays are stored as :func:`write_h5` stores them (LZF, a Fletcher-32 checksum
    per chunk), strings as UTF-8 variable-length strings with a SHA-256 of them, ``attrs``
    as JSON.
    """

    #: Elements of a row per chunk of a growing dataset: h5py's own guess for ~1 GB.
    CHUNK = 1 << 17

    def __init__(self, path: Path, attrs: Mapping[str, Any] | None = None) -> None:
        self.path = path
        self.attrs = dict(attrs or {})
        self._tmp = _temp_file(path, os.getpid())
        self._file: Any = None
        self._disk: _KeptWriteErrors | None = None

    def __enter__(self: Writer) -> Writer:  # a subclass's own type, for its add methods
        import h5py

        ensure_writable_folder(self.path.parent)
        _remove_stopped_builds(self.path)
        self._disk = _KeptWriteErrors(self._tmp)
        try:
            self._file = h5py.File(self._disk, "w")
        except BaseException:
            self._disk.close()
            self._tmp.unlink(missing_ok=True)
            raise
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        try:
            try:
                with self._writing():
                    self._close(complete=exc_type is None)
            except DataError:
                if exc_type is None:
                    raise
                # Else the error that stopped the block is the one to see (Ctrl-C, or this
                # very write error raised by append).
            if exc_type is None:
                self._tmp.replace(self.path)
        finally:
            self._tmp.unlink(missing_ok=True)

    def _close(self, complete: bool) -> None:
        """Close the file, first writing what ends it where the build was ``complete``."""
        assert self._disk is not None
        try:
            if complete:
                self.finish()
                self._file.attrs["params"] = json.dumps(self.attrs, sort_keys=True, default=str)
        finally:
            try:
                self._file.close()  # writes what HDF5 still holds
            finally:
                self._disk.close()

    @contextlib.contextmanager
    def _writing(self) -> Iterator[None]:
        """Raise a write the disk refused as a ``DataError``: after the block, or in place
        of the error HDF5 then meets (reading back a chunk that was never written)."""
        disk = self._disk
        assert disk is not None
        try:
            yield
        except (OSError, RuntimeError, ValueError):
            if disk.error is None:
                raise
        if disk.error is not None:
            raise DataError(
                f"cannot write {self.path.name} in {self.path.parent} "
                f"({disk.error.strerror or disk.error}): free some space or "
                f"{DATA_FOLDER_ADVICE}; nothing was cached"
            ) from disk.error

    def finish(self) -> None:
        """Write what is kept until the end (a subclass's small arrays) before the file is
        closed and renamed; an error here leaves no cache either."""

    def put(self, key: str, array: np.ndarray) -> None:
        """Write ``array`` whole as dataset ``key``."""
        import h5py

        with self._writing():
            if array.dtype.kind in "OU":
                strings = np.asarray(array, dtype=object)
                dataset = self._file.create_dataset(
                    key, data=strings, dtype=h5py.string_dtype("utf-8")
                )
                dataset.attrs[STRINGS_CHECKSUM] = _strings_checksum(strings)
                return
            chunked = array.ndim > 0 and array.size > 0
            self._file.create_dataset(
                key,
                data=array,
                compression="lzf",
                chunks=True if chunked else None,
                fletcher32=chunked,  # filters need chunks; a scalar has none
            )

    def append(self, key: str, rows: np.ndarray, axis: int = 0) -> None:
        """Add ``rows`` (numeric) to the end of dataset ``key`` along ``axis``, which the
        first call makes; later rows must match its dtype and its shape on the other axes
        (``axis=1`` grows a strip of lines ``[H, W]`` by the lines' widths).

        A disk too full for the rows is a ``DataError`` (and the temporary file is removed
        as the block ends), said before HDF5 is asked to write them."""
        free = shutil.disk_usage(self._tmp.parent).free
        # The rows uncompressed, and room for HDF5's chunk cache (1 MB) and its metadata.
        if free < rows.nbytes + (2 << 20):
            raise DataError(
                f"{self._tmp.parent} has {free / 1e6:.1f} MB free, too little to go on writing "
                f"{self.path.name} (the next {rows.nbytes / 1e6:.1f} MB of it): free some space "
                f"or {DATA_FOLDER_ADVICE}; nothing was cached"
            )
        with self._writing():
            self._append(key, rows, axis)

    def _append(self, key: str, rows: np.ndarray, axis: int) -> None:
        if key not in self._file:
            before, after = rows.shape[:axis], rows.shape[axis + 1 :]
            # A chunk of ~CHUNK elements: whole along the other axes, as long as that allows
            # along the growing one.
            along = max(1, self.CHUNK // max(1, math.prod(before + after)))
            self._file.create_dataset(
                key,
                shape=(*before, 0, *after),
                maxshape=(*before, None, *after),
                dtype=rows.dtype,
                chunks=(*before, along, *after),
                compression="lzf",
                fletcher32=True,
            )
        dataset = self._file[key]
        start = dataset.shape[axis]
        dataset.resize(start + rows.shape[axis], axis=axis)
        where = (slice(None),) * axis + (slice(start, None),)
        dataset[where] = rows


def write_h5(
    path: Path, arrays: Mapping[str, np.ndarray], attrs: Mapping[str, Any] | None = None
) -> None:
    """Write arrays to ``path`` atomically (temp file in the same folder, then rename).

    String arrays are stored as UTF-8 variable-length strings; ``attrs`` (e.g. the
    parameters) are stored as JSON so a cache documents how it was built. A disk that
    cannot hold them is a ``DataError``, as for :class:`H5Writer`. Data made a piece at a
    time is better written as it is made, with :class:`H5Writer`.
    """
    with H5Writer(path, attrs) as writer:
        for key, array in arrays.items():
            writer.put(key, array)


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
                    expected = dataset.attrs.get(STRINGS_CHECKSUM)
                    # Caches written before strings had a checksum have none to check.
                    if expected is not None and expected != _strings_checksum(out[key]):
                        raise ValueError(f"the strings of {key!r} do not match their checksum")
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
