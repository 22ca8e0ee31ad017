"""Checksummed downloads from a list of mirrors, with a progress bar.

Large public archives move, mirrors go down and transfers get cut, so a download
tries each mirror in turn, hashes the bytes as they arrive, and only renames a
verified file into place. A file that is already there (for example copied by hand
on a machine without internet) is checked and used without touching the network.
Only the standard library speaks HTTP, so there is nothing extra to install.
"""

from __future__ import annotations

import glob
import hashlib
import http.client
import logging
import os
import re
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from text_recognizer import __version__
from text_recognizer.data.cache import ensure_writable_folder
from text_recognizer.errors import DataError
from text_recognizer.files import process_running

log = logging.getLogger(__name__)

CHUNK_BYTES = 1 << 20
DEFAULT_TIMEOUT_S = 30.0
#: A transfer slower than ``MIN_BYTES_PER_S`` over ``STALL_WINDOW_S`` seconds is given up
#: (curl's --speed-limit / --speed-time): a server that trickles a byte now and then never
#: trips the read timeout, and would hold the download for ever.
MIN_BYTES_PER_S = 1024
STALL_WINDOW_S = 60.0
_SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class RemoteFile:
    """A file known by its name, its sha256 and the mirrors it can be fetched from (in order)."""

    filename: str
    sha256: str
    urls: tuple[str, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "sha256", self.sha256.strip().lower())
        object.__setattr__(self, "urls", tuple(self.urls))
        if not _SHA256.fullmatch(self.sha256):
            raise ValueError(
                f"sha256 for {self.filename} must be 64 hex digits, got {self.sha256!r}"
            )
        if Path(self.filename).name != self.filename or self.filename in ("", ".", ".."):
            raise ValueError(f"filename must be a bare file name, got {self.filename!r}")
        for url in self.urls:
            if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
                raise ValueError(f"only http(s) URLs can be downloaded, got {url!r}")


def remote_file(
    filename: str,
    default_sha256: str,
    default_urls: Sequence[str],
    env_prefix: str,
    urls: Sequence[str] | None = None,
    sha256: str | None = None,
) -> RemoteFile:
    """The archive to fetch: explicit arguments, else ``${env_prefix}_URLS`` /
    ``${env_prefix}_SHA256``, else the defaults.

    The environment variables let the command line use an internal mirror (URLs
    separated by spaces or commas) without a config file.
    """
    urls_env, sha256_env = f"{env_prefix}_URLS", f"{env_prefix}_SHA256"
    from_env = []  # for the error: a variable set long ago is easily forgotten
    if urls is None and os.environ.get(urls_env, "").strip():
        urls = [u for u in re.split(r"[\s,]+", os.environ[urls_env]) if u]
        from_env.append(f"${urls_env}")
    if sha256 is None and os.environ.get(sha256_env, "").strip():
        sha256 = os.environ[sha256_env]
        from_env.append(f"${sha256_env}")
    try:
        return RemoteFile(
            filename,
            sha256 if sha256 is not None else default_sha256,
            tuple(urls) if urls is not None else tuple(default_urls),
        )
    except ValueError as error:
        if not from_env:
            raise
        raise ValueError(f"{error} (from {' and '.join(from_env)})") from None


def sha256sum(path: Path) -> str:
    """The hex sha256 of a file, read in chunks so big archives need little memory."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def progress_shown(progress: bool | None) -> bool:
    """Whether a progress bar is drawn: ``progress`` if given, else unless logging is set to
    errors only (the command line's ``-q``), which a bar on stderr would defeat."""
    return log.isEnabledFor(logging.WARNING) if progress is None else progress


def bar_disabled() -> bool | None:
    """tqdm's ``disable`` for the bar of a long step (cutting IAM's pages): none under
    ``-q`` (logging at errors only), else drawn on a terminal only."""
    return None if log.isEnabledFor(logging.WARNING) else True


def download(
    remote: RemoteFile,
    dest_dir: Path,
    *,
    timeout: float = DEFAULT_TIMEOUT_S,
    progress: bool | None = None,
    otherwise: str = "",
) -> Path:
    """Return ``dest_dir / remote.filename``, downloading and verifying it if it is missing.

    Each mirror is tried in order; the first whose bytes match ``remote.sha256`` wins.
    ``timeout`` (seconds) bounds the connect and every read, so a stalled server fails
    instead of hanging; a transfer slower than ``MIN_BYTES_PER_S`` for ``STALL_WINDOW_S``
    seconds fails too (a server that trickles bytes). The proxy variables (``https_proxy``,
    ``http_proxy``, ``all_proxy``, ``no_proxy``) are read at each call. Raises ``DataError``
    naming every URL with its failure (and the proxy it went through), the expected
    checksum and where to place the file by hand, then ``otherwise``: another way to the
    data, where there is one. ``progress`` (see :func:`progress_shown`) draws a bar.
    """
    dest_dir = Path(dest_dir)
    target = dest_dir / remote.filename
    if target.exists():
        actual = sha256sum(target)
        if actual != remote.sha256:
            raise DataError(
                f"{target} exists but its sha256 is {actual}, expected {remote.sha256}. "
                f"It is corrupt or a different file: delete it to download again, or replace "
                f"it with the right file (from {' or '.join(remote.urls) or 'its publisher'})."
            )
        log.info("using %s (sha256 verified)", target)
        return target

    ensure_writable_folder(dest_dir)
    _remove_stopped_downloads(dest_dir, remote.filename)
    proxies = _proxies()
    opener = urllib.request.build_opener(_HttpOnlyRedirects, urllib.request.ProxyHandler(proxies))
    failures: list[str] = []
    for url in remote.urls:
        proxy = _proxy_for(url, proxies, target)
        via = f" (via proxy {proxy})" if proxy else ""
        # A per-process temporary name in the same folder: the rename is atomic and
        # two processes downloading at once never write to the same file.
        tmp = _part_file(dest_dir, remote.filename, os.getpid())
        try:
            actual, size = _fetch(
                opener, url, tmp, timeout=timeout, progress=progress_shown(progress),
                label=remote.filename,
            )  # fmt: skip
            if actual != remote.sha256:
                # The size tells an error page or a truncated copy from another version.
                failures.append(f"{url}{via}: sha256 mismatch (got {size} bytes, sha256 {actual})")
                continue
            tmp.replace(target)  # atomic: same folder
            log.info("downloaded %s from %s", target, url)
            return target
        except _FetchError as error:
            failures.append(f"{url}{via}: {error}")
        finally:
            tmp.unlink(missing_ok=True)

    tried = "\n".join(f"  - {line}" for line in failures) or "  (no URLs were given)"
    raise DataError(
        f"could not download {remote.filename}; tried:\n{tried}\n"
        f"Download it by hand (from any of the URLs above) and place it at {target} "
        f"(its sha256 must be {remote.sha256}); it will then be used without the network."
        + (f"\n{otherwise}" if otherwise else "")
    )


def _part_file(dest_dir: Path, filename: str, pid: int) -> Path:
    # The host too: on a shared data folder, another machine's process ids mean nothing here.
    return dest_dir / f".{filename}.{socket.gethostname()}.{pid}.part"


def _remove_stopped_downloads(dest_dir: Path, filename: str) -> None:
    """Delete the partial files of downloads on this host whose process is gone: a killed
    download (SIGKILL, SIGTERM, a closed terminal) cannot remove its own, and each would
    keep the archive's size of disk forever."""
    prefix = f".{filename}.{socket.gethostname()}."
    for part in dest_dir.glob(f"{glob.escape(prefix)}*.part"):
        pid = part.name[len(prefix) : -len(".part")]  # not digits: a host named host.x's
        if pid.isdigit() and not process_running(int(pid)):
            part.unlink(missing_ok=True)
            log.info("removed %s, left by a download that was stopped", part)


class _FetchError(Exception):
    """One mirror failed; the message says how, for the combined error."""


class _HttpOnlyRedirects(urllib.request.HTTPRedirectHandler):
    """Follows redirects to http(s) only: urllib would follow one to ftp:// as well, past
    the http(s)-only check on the mirrors' own URLs."""

    def redirect_request(
        self, req: urllib.request.Request, fp: Any, code: int, msg: str, headers: Any, newurl: str
    ) -> urllib.request.Request | None:
        if urllib.parse.urlsplit(newurl).scheme not in ("http", "https"):
            raise _FetchError(f"redirected to {newurl}, which is not http(s)")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def _proxies() -> dict[str, str]:
    """The proxies urllib would use, read now (a ProxyHandler made at import missed a proxy
    set afterwards, in a notebook or a test), with ``all_proxy`` for http(s) as curl takes
    it (urllib ignores it)."""
    proxies = urllib.request.getproxies()
    for scheme in ("http", "https"):
        if scheme not in proxies and proxies.get("all"):
            proxies[scheme] = proxies["all"]
    return proxies


def _proxy_for(url: str, proxies: dict[str, str], target: Path) -> str:
    """The proxy ``url`` goes through (credentials hidden), or "" for none. A SOCKS proxy,
    which urllib cannot speak, is an error: going around it would be silent, and through
    it fails with a baffling message."""
    parts = urllib.parse.urlsplit(url)
    proxy = proxies.get(parts.scheme, "")
    if not proxy or (parts.hostname and urllib.request.proxy_bypass(parts.hostname)):
        return ""
    # "host:port" without a scheme is an http proxy to urllib.
    if "://" in proxy and proxy.split("://")[0].lower() not in ("http", "https"):
        raise DataError(
            f"the {parts.scheme} proxy is {_shown(proxy)} (from ${parts.scheme}_proxy or "
            "$all_proxy), which Python's urllib cannot use: set it to an http:// proxy, or "
            f"download the file by hand and place it at {target}"
        )
    return _shown(proxy)


def _shown(url: str) -> str:
    """``url`` without the user and password a proxy URL may hold, for messages."""
    scheme, _, rest = url.rpartition("://")
    authority, slash, path = rest.partition("/")
    host = authority.rsplit("@", 1)[-1]
    return f"{scheme}://{host}{slash}{path}" if scheme else f"{host}{slash}{path}"


def _fetch(
    opener: urllib.request.OpenerDirector,
    url: str,
    dest: Path,
    *,
    timeout: float,
    progress: bool,
    label: str,
) -> tuple[str, int]:
    """Stream ``url`` into ``dest``; return the sha256 and the size of what arrived."""
    # The scheme was checked to be http(s) in RemoteFile.
    headers = {"User-Agent": f"text-recognizer/{__version__}"}
    request = urllib.request.Request(url, headers=headers)  # noqa: S310
    digest = hashlib.sha256()
    received = 0
    expected: int | None = None
    try:
        with opener.open(request, timeout=timeout) as response:
            length = response.headers.get("Content-Length")
            expected = int(length) if length is not None and length.isdigit() else None
            with (
                # Unbuffered: a write that fails leaves nothing for close() to fail on again.
                dest.open("wb", buffering=0) as out,
                tqdm(
                    total=expected,
                    unit="B",
                    unit_scale=True,
                    unit_divisor=1024,
                    desc=label,
                    disable=not progress,
                    leave=False,
                ) as bar,
            ):
                window_start, window_received = time.monotonic(), 0
                # read1: what has arrived, up to a chunk (read would wait for a whole chunk).
                while chunk := response.read1(CHUNK_BYTES):
                    try:
                        rest = memoryview(chunk)
                        while rest:  # a raw write may take part of a chunk
                            rest = rest[out.write(rest) or 0 :]
                    except OSError as error:  # a full disk: no other mirror would help
                        raise DataError(
                            f"cannot write {dest} after {received} bytes of {url} "
                            f"({error.strerror or error}): free some space in {dest.parent} "
                            "or choose another data folder (--root, or $TEXT_RECOGNIZER_DATA)"
                        ) from error
                    digest.update(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
                    elapsed = time.monotonic() - window_start
                    if elapsed >= STALL_WINDOW_S:
                        got = received - window_received
                        if got < MIN_BYTES_PER_S * elapsed:
                            raise _FetchError(
                                f"too slow: {got} bytes in the last {elapsed:.0f} s, under "
                                f"{MIN_BYTES_PER_S} bytes/s (after {received} bytes)"
                            )
                        window_start, window_received = time.monotonic(), received
    except urllib.error.HTTPError as error:
        # One line: urllib's reason for a redirect loop spans three.
        raise _FetchError(f"HTTP {error.code} {' '.join(str(error.reason).split())}") from error
    except urllib.error.URLError as error:
        raise _FetchError(f"cannot connect ({error.reason})") from error
    except TimeoutError as error:
        raise _FetchError(f"timed out after {timeout:g} s (after {received} bytes)") from error
    except (OSError, http.client.HTTPException) as error:
        # Connection reset, IncompleteRead.
        raise _FetchError(f"transfer failed after {received} bytes ({error!r})") from error
    # http.client does not raise when the server closes early, so compare ourselves.
    if expected is not None and received != expected:
        raise _FetchError(f"truncated transfer: got {received} of {expected} bytes")
    return digest.hexdigest(), received
