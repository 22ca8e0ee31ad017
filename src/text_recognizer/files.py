"""Writing files so that a reader never sees half of one."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from text_recognizer.errors import ConfigError

#: The longest file name (in bytes) that Linux, macOS and Windows file systems take.
NAME_MAX = 255


def temp_beside(path: Path) -> Path:
    """The temporary file that an atomic write of ``path`` goes through, in its folder and
    per process. A long name's is shortened (a hash of the whole name kept, so that two
    long names still differ): ``.<name>.<pid>.tmp`` of a 245-byte name would not fit
    where the name itself does, and the write would fail for want of its temp file."""
    suffix = f".{os.getpid()}.tmp"
    name = os.fsencode(path.name)
    room = NAME_MAX - len(suffix) - 1  # the leading dot
    if len(name) > room:
        digest = hashlib.sha256(name).hexdigest()[:12].encode()
        name = name[: room - len(digest) - 1] + b"~" + digest
    return path.with_name(f".{os.fsdecode(name)}{suffix}")


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` through a temp file in the same folder, renamed
    once complete: a killed process leaves the old file or the new, never a torn one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_beside(path)
    try:
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def check_writable(path: Path, option: str = "--output") -> None:
    """A clear error, before any long work, where the file ``path`` cannot be written:
    found by writing the temporary file beside it that an atomic write uses, since
    permissions alone miss /proc, read-only mounts and root. Creates ``path``'s folder."""
    hint = f"choose another {option}"
    if path.is_dir():
        raise ConfigError(
            f"{path} is a folder: {option} names the file to write, in it or elsewhere"
        )
    existing = next(folder for folder in path.parents if folder.exists())
    if not existing.is_dir():
        raise ConfigError(f"cannot write {path}: {existing} is a file, not a folder; {hint}")
    probe = temp_beside(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        probe.touch()
        probe.unlink()
    except OSError as error:
        raise ConfigError(
            f"cannot write {path} ({error.strerror or type(error).__name__}): {hint}"
        ) from None


def check_folder_writable(folder: Path, what: str, option: str) -> None:
    """A clear error, before any long work, where ``what`` (files) cannot be written into
    ``folder``: found by writing a temporary file there, as :func:`check_writable` does.
    Creates ``folder``."""
    hint = f"choose another {option}"
    existing = next(parent for parent in (folder, *folder.parents) if parent.exists())
    if not existing.is_dir():
        raise ConfigError(
            f"cannot write {what} into {folder}: {existing} is a file, not a folder; {hint}"
        )
    probe = temp_beside(folder / "probe")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe.touch()
        probe.unlink()
    except OSError as error:
        raise ConfigError(
            f"cannot write {what} into {folder} ({error.strerror or type(error).__name__}): {hint}"
        ) from None


def process_running(pid: int) -> bool:
    """Whether process ``pid`` of this host may still be running: its temporary files are
    then its own to finish or remove (anything that cannot be told counts as running)."""
    if pid == os.getpid() or os.name != "posix":  # Windows has no cheap check: keep the file
        return True
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True
