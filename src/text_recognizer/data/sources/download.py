"""Checksummed downloads from a list of mirrors, with a progress bar.

Large public archives move, mirrors go down and transfers get cut, so a download
tries each mirror in turn, hashes the bytes as they arrive, and only renames a
verified file into place. A file that is already there (for example copied by hand
on a machine without internet) is checked and used without touching the network.
Only the standard library speaks HTTP, so there is nothing extra to install.
"""

from __future__ import annotations

import dataclasses
import glob
import hashlib
import http.client
import json
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
    return _digest(path).hexdigest()


def _digest(path: Path) -> Any:
    """A sha256 fed with the file's bytes, to go on with the bytes that follow it."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(CHUNK_BYTES):
            digest.update(chunk)
    return digest


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
    A transfer that is cut (a dropped connection, Ctrl-C, a killed process) keeps what
    arrived in a hidden ``.part`` file beside the target when the server named its
    version of the file (a strong ``ETag`` or a ``Last-Modified``); the next call asks
    that mirror for the rest only (``Range``, checked by ``If-Range``), and starts over
    if the server cannot resume or the file changed there. ``timeout`` (seconds) bounds
    the connect and every read, so a stalled server fails instead of hanging; a transfer
    slower than ``MIN_BYTES_PER_S`` for ``STALL_WINDOW_S`` seconds fails too (a server
    that trickles bytes). The proxy variables (``https_proxy``, ``http_proxy``,
    ``all_proxy``, ``no_proxy``) are read at each call. Raises ``DataError`` naming every
    URL with its failure (and the proxy it went through), the expected checksum and where
    to place the file by hand, then ``otherwise``: another way to the data, where there
    is one. ``progress`` (see :func:`progress_shown`) draws a bar.
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
    # A per-process temporary name in the same folder: the rename is atomic and two
    # processes downloading at once never write to the same file.
    tmp = _part_file(dest_dir, remote.filename, os.getpid())
    partial = _take_over_stopped_downloads(dest_dir, remote, tmp)
    if partial is not None and partial.total == tmp.stat().st_size:
        # Killed between the last byte and the rename: nothing is left to fetch.
        if sha256sum(tmp) == remote.sha256:
            tmp.replace(target)
            _info_file(tmp).unlink(missing_ok=True)
            log.info("completed %s from a download that was stopped", target)
            return target
        _discard(tmp)
        partial = None
    urls = list(remote.urls)
    if partial is not None and partial.url not in urls:
        log.warning(
            "%s: starting over, the partial download came from %s, no longer a mirror",
            remote.filename, partial.url,
        )  # fmt: skip
        _discard(tmp)
        partial = None
    if partial is not None:  # only its own server can continue it: that one first
        urls.remove(partial.url)
        urls.insert(0, partial.url)
    proxies = _proxies()
    opener = urllib.request.build_opener(_HttpOnlyRedirects, urllib.request.ProxyHandler(proxies))
    failures: list[str] = []
    try:
        for url in urls:
            proxy = _proxy_for(url, proxies, target)
            via = f" (via proxy {proxy})" if proxy else ""
            try:
                actual, size = _fetch(
                    opener, url, tmp, remote.sha256,
                    resume=partial if partial is not None and partial.url == url else None,
                    timeout=timeout, progress=progress_shown(progress), label=remote.filename,
                )  # fmt: skip
            except _FetchError as error:
                failures.append(f"{url}{via}: {error}")
                partial = _Partial.read(tmp, remote.sha256)  # what the next mirror may replace
                continue
            if actual != remote.sha256:
                # The size tells an error page or a truncated copy from another version.
                failures.append(f"{url}{via}: sha256 mismatch (got {size} bytes, sha256 {actual})")
                _discard(tmp)  # whole but wrong: nothing in it is worth resuming
                partial = None
                continue
            tmp.replace(target)  # atomic: same folder
            _info_file(tmp).unlink(missing_ok=True)
            log.info("downloaded %s from %s", target, url)
            return target
    finally:  # on success both files are gone already
        _keep_if_resumable(tmp, remote)

    tried = "\n".join(f"  - {line}" for line in failures) or "  (no URLs were given)"
    kept = ""
    if partial is not None and tmp.exists():
        kept = (
            f"\nThe {tmp.stat().st_size} bytes received from {partial.url} are kept in {tmp}: "
            "running this again asks that mirror for the rest only."
        )
    raise DataError(
        f"could not download {remote.filename}; tried:\n{tried}\n"
        f"Download it by hand (from any of the URLs above) and place it at {target} "
        f"(its sha256 must be {remote.sha256}); it will then be used without the network."
        + kept
        + (f"\n{otherwise}" if otherwise else "")
    )


def _part_file(dest_dir: Path, filename: str, pid: int) -> Path:
    # The host too: on a shared data folder, another machine's process ids mean nothing here.
    return dest_dir / f".{filename}.{socket.gethostname()}.{pid}.part"


def _info_file(part: Path) -> Path:
    """Where ``part``'s origin is kept: without it the bytes cannot be resumed."""
    return part.with_name(part.name + ".json")


@dataclass(frozen=True)
class _Partial:
    """What a partial download needs to be continued: the mirror it came from, that
    server's version of the file then (for ``If-Range``), the checksum it was meant to
    have and its whole size, where the server said."""

    url: str
    validator: str
    sha256: str
    total: int | None

    def write(self, part: Path) -> None:
        _info_file(part).write_text(json.dumps(dataclasses.asdict(self)))

    @classmethod
    def read(cls, part: Path, sha256: str) -> _Partial | None:
        """The origin of ``part`` if its bytes may be resumed toward a file of ``sha256``."""
        try:
            if part.stat().st_size == 0:
                return None
            partial = cls(**json.loads(_info_file(part).read_text()))
        except (OSError, ValueError, TypeError):  # none, killed mid-write, another version's
            return None
        return partial if partial.sha256 == sha256 else None


def _discard(part: Path) -> None:
    # The info first: a part without one is never resumed, whatever happens in between.
    _info_file(part).unlink(missing_ok=True)
    part.unlink(missing_ok=True)


def _keep_if_resumable(part: Path, remote: RemoteFile) -> None:
    """Keep ``part`` for the next download if it can be resumed, else delete it."""
    if not part.exists():
        _info_file(part).unlink(missing_ok=True)
    elif _Partial.read(part, remote.sha256) is None:
        _discard(part)
    else:  # Ctrl-C and the like never reach the error message that says so
        log.warning(
            "kept the %d bytes of %s received so far in %s: the next download resumes there",
            part.stat().st_size, remote.filename, part,
        )  # fmt: skip


def _take_over_stopped_downloads(dest_dir: Path, remote: RemoteFile, own: Path) -> _Partial | None:
    """Move the longest resumable partial file of a stopped download on this host (or of an
    earlier call in this process) to ``own`` and return its origin; delete the others.

    A killed download (SIGKILL, SIGTERM, a closed terminal) cannot remove its own files,
    and each would keep up to the archive's size of disk for ever. Files of a process that
    still runs, or of another host (whose process ids mean nothing here), are left alone.
    Taking one over is a rename, which only one of two processes starting at once can win
    (the loser, or at worst both, start from zero, as before resuming existed): no process
    ever writes to, renames or deletes a file of one that runs.
    """
    prefix = f".{remote.filename}.{socket.gethostname()}."
    stopped: list[Path] = []
    for path in dest_dir.glob(f"{glob.escape(prefix)}*.part*"):
        stem = path.name[: -len(".json")] if path.name.endswith(".json") else path.name
        pid = stem[len(prefix) : -len(".part")]  # not digits: a host named host.x's
        if stem.endswith(".part") and pid.isdigit() and not process_running(int(pid)):
            stopped.append(path)
    candidates = [own] if own.exists() else []
    candidates += sorted({p for p in stopped if p.suffix == ".part"} - {own})
    best: tuple[int, Path, _Partial] | None = None
    for part in candidates:
        partial = _Partial.read(part, remote.sha256)
        if partial is not None and (best is None or part.stat().st_size > best[0]):
            best = (part.stat().st_size, part, partial)
    chosen: _Partial | None = None
    if best is not None:
        _, part, chosen = best
        try:
            if part != own:
                part.replace(own)
                _info_file(part).replace(_info_file(own))
        except FileNotFoundError:  # taken over by another process a moment ago
            _discard(own)
            chosen = None
        else:
            log.info("resuming the %d bytes of %s already received", best[0], remote.filename)
    if chosen is None:
        _discard(own)
    for path in stopped:
        if path.exists() and path not in (own, _info_file(own)):
            path.unlink(missing_ok=True)
            log.info("removed %s, left by a download that was stopped", path)
    return chosen


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
    sha256: str,
    *,
    resume: _Partial | None,
    timeout: float,
    progress: bool,
    label: str,
) -> tuple[str, int]:
    """Stream ``url`` into ``dest``; return the sha256 and the size of the whole file.

    With ``resume`` (``dest`` holds the first bytes of this mirror's file) only the rest is
    asked for. A server that cannot resume (HTTP 200 or 416) or whose file changed since
    (``If-Range`` failed: HTTP 200) is started over with, and the log says why: the
    checksum is over the whole file, so a mix of two versions could never pass it anyway.
    """
    headers = {"User-Agent": f"text-recognizer/{__version__}"}
    offset = dest.stat().st_size if resume is not None and dest.exists() else 0
    received = 0
    try:
        response = None
        if resume is not None and offset:
            ranged = {**headers, "Range": f"bytes={offset}-", "If-Range": resume.validator}
            try:
                response = opener.open(_request(url, ranged), timeout=timeout)
            except urllib.error.HTTPError as error:
                if error.code != 416:
                    raise
                error.close()
                log.warning(
                    "%s refused to resume %s at byte %d (HTTP 416): starting over",
                    url, label, offset,
                )  # fmt: skip
            else:
                start = _range_start(response.headers.get("Content-Range", ""))
                if response.status == 206 and start != offset:
                    log.warning(
                        "%s answered a request for %s from byte %d with %r: starting over",
                        url, label, offset, response.headers.get("Content-Range"),
                    )  # fmt: skip
                    response.close()
                    response = None
                elif response.status != 206:
                    changed = _validator(response.headers) != resume.validator
                    log.warning(
                        "%s: starting over, %s",
                        label,
                        f"it changed on {url} since the partial download"
                        if changed
                        else f"{url} does not resume downloads (it sent the whole file)",
                    )
        if response is None:
            offset = 0
            response = opener.open(_request(url, headers), timeout=timeout)
        with response:
            resuming = offset > 0 and response.status == 206  # checked to start at offset
            length = response.headers.get("Content-Length")
            size = int(length) if length is not None and length.isdigit() else None
            if resuming:
                digest = _digest(dest)  # the checksum is over the whole file
                received = offset
                expected = None if size is None else offset + size
            else:
                _discard(dest)  # a new start: the old origin must not describe the new bytes
                digest, received, expected = hashlib.sha256(), 0, size
                validator = _validator(response.headers)
                if validator is not None:  # before any byte: bytes never outlive their origin
                    _Partial(url, validator, sha256, expected).write(dest)
            with (
                # Unbuffered: a write that fails leaves nothing for close() to fail on again.
                dest.open("ab" if resuming else "wb", buffering=0) as out,
                tqdm(
                    total=expected,
                    initial=received,
                    unit="B",
                    unit_scale=True,
                    unit_divisor=1024,
                    desc=label,
                    disable=not progress,
                    leave=False,
                ) as bar,
            ):
                window_start, window_received = time.monotonic(), received
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


def _request(url: str, headers: dict[str, str]) -> urllib.request.Request:
    # The scheme was checked to be http(s) in RemoteFile.
    return urllib.request.Request(url, headers=headers)  # noqa: S310


def _validator(headers: Any) -> str | None:
    """What ``If-Range`` can check the file by: a strong ETag, else its Last-Modified
    (a weak ETag may not be used there); None for a server that refuses ranges."""
    if headers.get("Accept-Ranges", "").strip().lower() == "none":
        return None
    etag = headers.get("ETag")
    if etag and not etag.startswith("W/"):
        return str(etag)
    modified = headers.get("Last-Modified")
    return str(modified) if modified else None


def _range_start(content_range: str) -> int | None:
    """The first byte of a ``Content-Range: bytes START-END/TOTAL`` answer."""
    match = re.fullmatch(r"\s*bytes\s+(\d+)-\d+/(?:\d+|\*)\s*", content_range)
    return int(match.group(1)) if match else None
