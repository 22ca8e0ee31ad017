"""Checksummed mirror downloads against a local HTTP server."""

from __future__ import annotations

import hashlib
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from text_recognizer.data.sources.download import RemoteFile, download, sha256sum
from text_recognizer.errors import DataError

if TYPE_CHECKING:
    from http_fixtures import LocalServer

pytest_plugins = ["http_fixtures"]  # the http_server and refused_url fixtures

PAYLOAD = bytes(range(256)) * 40  # 10 KiB
PAYLOAD_SHA = hashlib.sha256(PAYLOAD).hexdigest()


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def download_in_child(url: str, folder: Path, **popen: Any) -> subprocess.Popen[Any]:
    """``download`` of ``url`` (PAYLOAD's checksum) into ``folder`` in another process,
    which a test may kill or interrupt."""
    script = (
        "import sys; from pathlib import Path\n"
        "from text_recognizer.data.sources.download import RemoteFile, download\n"
        "download(RemoteFile('a.bin', sys.argv[1], (sys.argv[2],)), Path(sys.argv[3]),"
        " progress=False)"
    )
    return subprocess.Popen(
        [sys.executable, "-c", script, PAYLOAD_SHA, url, str(folder)],
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
        **popen,
    )


def test_download_verifies_and_moves_into_place(
    http_server: LocalServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = http_server.add("/a.bin", PAYLOAD)
    path = download(RemoteFile("a.bin", PAYLOAD_SHA, (url,)), tmp_path / "dl")
    assert path == tmp_path / "dl" / "a.bin"
    assert path.read_bytes() == PAYLOAD
    assert leftovers(tmp_path / "dl") == ["a.bin"]  # no temporary file left
    assert "a.bin" in capsys.readouterr().err  # the tqdm bar, labelled with the file name


def test_falls_back_to_the_next_mirror(http_server: LocalServer, tmp_path: Path) -> None:
    missing = http_server.url("/gone.bin")
    good = http_server.add("/a.bin", PAYLOAD)
    path = download(RemoteFile("a.bin", PAYLOAD_SHA, (missing, good)), tmp_path, progress=False)
    assert path.read_bytes() == PAYLOAD
    assert http_server.hits == {"/gone.bin": 1, "/a.bin": 1}


def test_wrong_checksum_names_urls_checksum_and_path(
    http_server: LocalServer, tmp_path: Path
) -> None:
    url = http_server.add("/a.bin", PAYLOAD)
    expected = "0" * 64
    with pytest.raises(DataError) as error:
        download(RemoteFile("a.bin", expected, (url,)), tmp_path, progress=False)
    message = str(error.value)
    assert url in message
    assert f"sha256 mismatch (got 10240 bytes, sha256 {PAYLOAD_SHA})" in message  # what arrived
    assert expected in message
    assert str(tmp_path / "a.bin") in message
    assert leftovers(tmp_path) == []


def test_truncated_transfer_fails_and_leaves_nothing(
    http_server: LocalServer, tmp_path: Path
) -> None:
    url = http_server.add("/a.bin", PAYLOAD[:1000], content_length=len(PAYLOAD))
    with pytest.raises(DataError, match=r"truncated transfer: got 1000 of 10240 bytes"):
        download(RemoteFile("a.bin", PAYLOAD_SHA, (url,)), tmp_path, progress=False)
    assert leftovers(tmp_path) == []


def test_offline_error_names_every_url(tmp_path: Path, refused_url: str) -> None:
    other = refused_url.replace("matlab.zip", "mirror2.zip")
    with pytest.raises(DataError) as error:
        download(RemoteFile("a.bin", PAYLOAD_SHA, (refused_url, other)), tmp_path, progress=False)
    message = str(error.value)
    assert f"{refused_url}: cannot connect" in message
    assert f"{other}: cannot connect" in message
    assert PAYLOAD_SHA in message
    assert f"place it at {tmp_path / 'a.bin'}" in message
    assert leftovers(tmp_path) == []


def test_http_errors_are_reported_per_url(http_server: LocalServer, tmp_path: Path) -> None:
    broken = http_server.add("/a.bin", b"oops", status=500)
    with pytest.raises(DataError, match=r"/a\.bin: HTTP 500"):
        download(RemoteFile("a.bin", PAYLOAD_SHA, (broken,)), tmp_path, progress=False)


def test_stalled_server_times_out(http_server: LocalServer, tmp_path: Path) -> None:
    slow = http_server.add("/a.bin", PAYLOAD, delay_s=1.0)
    with pytest.raises(DataError, match=r"timed out after 0\.2 s"):
        download(RemoteFile("a.bin", PAYLOAD_SHA, (slow,)), tmp_path, timeout=0.2, progress=False)
    assert leftovers(tmp_path) == []


def test_a_server_that_trickles_bytes_is_given_up(
    http_server: LocalServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A byte every 50 ms never trips the read timeout: the download once waited for the
    whole body (or for ever), a byte at a time."""
    import text_recognizer.data.sources.download as download_module

    monkeypatch.setattr(download_module, "STALL_WINDOW_S", 0.3)
    monkeypatch.setattr(download_module, "MIN_BYTES_PER_S", 100)
    slow = http_server.add("/a.bin", PAYLOAD[:100], trickle_s=0.05)
    remote = RemoteFile("a.bin", hashlib.sha256(PAYLOAD[:100]).hexdigest(), (slow,))
    with pytest.raises(DataError, match=r"a\.bin: too slow: \d bytes in the last 0 s, under 100"):
        download(remote, tmp_path, timeout=5, progress=False)
    assert leftovers(tmp_path) == []
    # At full speed the same window and rate let it through.
    fast = http_server.add("/b.bin", PAYLOAD[:100])
    download(RemoteFile("a.bin", remote.sha256, (fast,)), tmp_path, timeout=5, progress=False)


def test_file_placed_by_hand_is_used_without_network(tmp_path: Path, refused_url: str) -> None:
    (tmp_path / "a.bin").write_bytes(PAYLOAD)
    path = download(RemoteFile("a.bin", PAYLOAD_SHA, (refused_url,)), tmp_path, progress=False)
    assert path.read_bytes() == PAYLOAD


def test_wrong_file_in_place_is_reported_not_deleted(tmp_path: Path, refused_url: str) -> None:
    (tmp_path / "a.bin").write_bytes(b"something else")
    with pytest.raises(DataError) as error:
        download(RemoteFile("a.bin", PAYLOAD_SHA, (refused_url,)), tmp_path, progress=False)
    assert str(tmp_path / "a.bin") in str(error.value)
    assert PAYLOAD_SHA in str(error.value)
    assert (tmp_path / "a.bin").read_bytes() == b"something else"


def test_remote_file_rejects_bad_definitions() -> None:
    with pytest.raises(ValueError, match="64 hex digits"):
        RemoteFile("a.bin", "abc", ())
    with pytest.raises(ValueError, match="http"):
        RemoteFile("a.bin", PAYLOAD_SHA, ("file:///etc/passwd",))
    with pytest.raises(ValueError, match="bare file name"):
        RemoteFile("../a.bin", PAYLOAD_SHA, ())
    assert RemoteFile("a.bin", PAYLOAD_SHA.upper(), ()).sha256 == PAYLOAD_SHA


def test_a_bad_value_from_the_environment_names_its_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from text_recognizer.data.sources.download import remote_file

    monkeypatch.setenv("X_SHA256", "abc")
    with pytest.raises(ValueError, match=r"got 'abc' \(from \$X_SHA256\)$"):
        remote_file("a.bin", PAYLOAD_SHA, (), "X")
    monkeypatch.setenv("X_URLS", "ftp://mirror/a.bin")
    with pytest.raises(ValueError, match=r"\(from \$X_URLS and \$X_SHA256\)$"):
        remote_file("a.bin", PAYLOAD_SHA, (), "X")
    with pytest.raises(ValueError, match=r"64 hex digits, got 'abc'$"):  # an argument's own
        remote_file("a.bin", PAYLOAD_SHA, (), "Y", sha256="abc")


def test_sha256sum(tmp_path: Path) -> None:
    (tmp_path / "a.bin").write_bytes(PAYLOAD)
    assert sha256sum(tmp_path / "a.bin") == PAYLOAD_SHA


def test_a_data_folder_under_a_file_is_a_clear_error(
    http_server: LocalServer, tmp_path: Path
) -> None:
    url = http_server.add("/a.bin", PAYLOAD)
    (tmp_path / "data").write_text("a file where the data folder should be")
    with pytest.raises(DataError, match=r"cannot write to .*data/emnist .*another data folder"):
        download(RemoteFile("a.bin", PAYLOAD_SHA, (url,)), tmp_path / "data" / "emnist")
    assert http_server.hits == {}  # refused before any download


# Downloads into a process whose files may not exceed 4 KiB, as on a full disk.
_FULL_DISK_DOWNLOAD = """
import resource, signal, sys
from pathlib import Path
from text_recognizer.data.sources.download import RemoteFile, download
from text_recognizer.errors import DataError
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails instead
resource.setrlimit(resource.RLIMIT_FSIZE, (4096, resource.RLIM_INFINITY))
sha256, dest, *urls = sys.argv[1:]
try:
    download(RemoteFile("a.bin", sha256, tuple(urls)), Path(dest), progress=False)
except DataError as error:
    print(error)
"""


@pytest.mark.skipif(sys.platform == "win32", reason="RLIMIT_FSIZE is POSIX")
def test_a_full_disk_is_reported_as_such_without_trying_other_mirrors(
    http_server: LocalServer, tmp_path: Path
) -> None:
    first = http_server.add("/a.bin", PAYLOAD)
    second = http_server.add("/mirror/a.bin", PAYLOAD)
    done = subprocess.run(
        [sys.executable, "-c", _FULL_DISK_DOWNLOAD, PAYLOAD_SHA, str(tmp_path), first, second],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"cannot write {tmp_path}"), done.stdout
    assert "File too large" in done.stdout
    assert "free some space" in done.stdout
    assert http_server.hits == {"/a.bin": 1}  # the second mirror would fill the disk too
    assert leftovers(tmp_path) == []


def test_a_killed_download_leaves_no_partial_file_behind_after_the_next(
    http_server: LocalServer, tmp_path: Path
) -> None:
    stalled = http_server.add(
        "/stalled.bin", PAYLOAD[:1000], content_length=len(PAYLOAD), hold_s=30
    )
    process = download_in_child(stalled, tmp_path)
    try:
        deadline = time.monotonic() + 30
        while not any(name.endswith(".part") for name in leftovers(tmp_path)):
            assert process.poll() is None and time.monotonic() < deadline, "no download started"
            time.sleep(0.05)
    finally:
        process.kill()  # as SIGKILL, the OOM killer or a power cut do: no clean-up runs
        process.wait()
    assert [name for name in leftovers(tmp_path) if name.endswith(".part")]
    good = http_server.add("/a.bin", PAYLOAD)
    download(RemoteFile("a.bin", PAYLOAD_SHA, (good,)), tmp_path, progress=False)
    assert leftovers(tmp_path) == ["a.bin"]


def test_partial_files_of_running_or_other_hosts_downloads_are_kept(
    http_server: LocalServer, tmp_path: Path
) -> None:
    running = tmp_path / f".a.bin.{socket.gethostname()}.{os.getppid()}.part"
    elsewhere = tmp_path / ".a.bin.another-host.1.part"
    for part in (running, elsewhere):
        part.write_bytes(b"still arriving")
    download(RemoteFile("a.bin", PAYLOAD_SHA, (http_server.add("/a.bin", PAYLOAD),)), tmp_path)
    assert leftovers(tmp_path) == sorted([running.name, elsewhere.name, "a.bin"])


def test_redirects_are_followed_to_http_only(
    http_server: LocalServer, tmp_path: Path, refused_url: str
) -> None:
    with type(http_server)() as other:  # another port: a mirror that moved
        moved = other.add("/a.bin", PAYLOAD)
        url = http_server.add("/old/a.bin", b"", status=302, location=moved)
        assert download(RemoteFile("a.bin", PAYLOAD_SHA, (url,)), tmp_path / "http").exists()
    # urllib alone would follow this one too (to an FTP server, if one listened there).
    ftp = refused_url.replace("http://", "ftp://")
    to_ftp = http_server.add("/ftp/a.bin", b"", status=302, location=ftp)
    with pytest.raises(DataError, match=rf"/ftp/a\.bin: redirected to {ftp}, which is not http"):
        download(RemoteFile("a.bin", PAYLOAD_SHA, (to_ftp,)), tmp_path / "ftp", progress=False)


def test_a_redirect_loop_is_one_line_of_the_error(http_server: LocalServer, tmp_path: Path) -> None:
    """urllib's reason for a loop spans three lines, which broke the list of URLs tried."""
    loop = http_server.add("/loop/a.bin", b"", status=302, location=http_server.url("/loop/a.bin"))
    with pytest.raises(DataError) as error:
        download(RemoteFile("a.bin", PAYLOAD_SHA, (loop,)), tmp_path, progress=False)
    line = f"  - {loop}: HTTP 302 The HTTP server returned a redirect error that would lead to"
    assert f"{line} an infinite loop. The last 30x error message was: Found\n" in str(error.value)


@pytest.fixture
def quiet_logging() -> Iterator[None]:
    """The command line's -q: our logger at errors only."""
    logger = logging.getLogger("text_recognizer")
    level = logger.level
    logger.setLevel(logging.ERROR)
    yield
    logger.setLevel(level)


def test_no_progress_bar_when_logging_is_errors_only(
    http_server: LocalServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    quiet_logging: None,
) -> None:
    """-q ("only errors") still drew the download's bar on stderr."""
    url = http_server.add("/a.bin", PAYLOAD)
    download(RemoteFile("a.bin", PAYLOAD_SHA, (url,)), tmp_path)
    assert capsys.readouterr().err == ""
    download(RemoteFile("b.bin", PAYLOAD_SHA, (url,)), tmp_path, progress=True)  # asked for
    assert "b.bin" in capsys.readouterr().err


@pytest.mark.parametrize("variable", ["http_proxy", "HTTP_PROXY", "all_proxy"])
def test_a_proxy_in_the_environment_is_used_even_if_set_after_import(
    http_server: LocalServer, tmp_path: Path, refused_url: str, monkeypatch: pytest.MonkeyPatch,
    variable: str,
) -> None:  # fmt: skip
    """urllib read the proxy variables once, when the module was imported: a proxy set
    afterwards (a notebook, a test) was gone around, and all_proxy, which curl honours, was
    ignored. The URL's port is closed: only the proxy (this server) can answer it."""
    http_server.add(refused_url, PAYLOAD)  # a proxy is asked for the whole URL
    monkeypatch.setenv(variable, http_server.url(""))
    path = download(RemoteFile("matlab.zip", PAYLOAD_SHA, (refused_url,)), tmp_path)
    assert path.read_bytes() == PAYLOAD
    assert http_server.hits == {refused_url: 1}


def test_no_proxy_and_a_proxy_that_fails_are_named_in_the_error(
    http_server: LocalServer, tmp_path: Path, refused_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("http_proxy", http_server.url("").replace("://", "://user:secret@"))
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    with pytest.raises(DataError, match=rf"- {refused_url}: cannot connect"):  # no proxy
        download(RemoteFile("matlab.zip", PAYLOAD_SHA, (refused_url,)), tmp_path)
    assert http_server.hits == {}
    monkeypatch.delenv("no_proxy")
    # This "proxy" answers 502, as one that cannot reach the mirror does.
    http_server.add(refused_url, b"bad gateway", status=502)
    with pytest.raises(DataError) as error:
        download(RemoteFile("matlab.zip", PAYLOAD_SHA, (refused_url,)), tmp_path)
    assert f"- {refused_url} (via proxy {http_server.url('')}): HTTP 502" in str(error.value)
    assert "secret" not in str(error.value)


def test_a_socks_proxy_is_refused_not_gone_around(
    http_server: LocalServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """urllib cannot speak SOCKS; it sent plain HTTP to the SOCKS port instead."""
    url = http_server.add("/a.bin", PAYLOAD)
    monkeypatch.setenv("all_proxy", "socks5h://user:secret@127.0.0.1:1080")
    with pytest.raises(DataError) as error:
        download(RemoteFile("a.bin", PAYLOAD_SHA, (url,)), tmp_path)
    message = str(error.value)
    assert message.startswith("the http proxy is socks5h://127.0.0.1:1080 (from $http_proxy")
    assert "cannot use: set it to an http:// proxy" in message
    assert str(tmp_path / "a.bin") in message
    assert http_server.hits == {}
    monkeypatch.setenv("no_proxy", "127.0.0.1")  # not used for this mirror: no matter
    assert download(RemoteFile("a.bin", PAYLOAD_SHA, (url,)), tmp_path).exists()


@pytest.mark.slow  # the command line's imports: ~10 s on a loaded 2-core machine
@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT to a child is POSIX")
def test_ctrl_c_during_a_download_stops_quietly_and_leaves_nothing(
    http_server: LocalServer, tmp_path: Path
) -> None:
    """As a user at the command line: exit status 130, no traceback, no partial file."""
    stalled = http_server.add("/matlab.zip", PAYLOAD[:1000], content_length=len(PAYLOAD), hold_s=30)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(sys.path),
        "TEXT_RECOGNIZER_EMNIST_URLS": stalled,
        "TEXT_RECOGNIZER_EMNIST_SHA256": PAYLOAD_SHA,
    }
    command = [sys.executable, "-m", "text_recognizer.cli", "data", "download", "emnist"]
    process = subprocess.Popen(
        [*command, "--root", str(tmp_path)], env=env, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 60
        while not any(name.endswith(".part") for name in leftovers(tmp_path / "emnist")):
            assert process.poll() is None and time.monotonic() < deadline, "no download started"
            time.sleep(0.05)
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=30)
    finally:
        process.kill()
    assert process.returncode == 130, err
    assert "Traceback" not in err
    assert leftovers(tmp_path / "emnist") == []


def part_files(folder: Path) -> list[str]:
    return [name for name in leftovers(folder) if ".part" in name]


def stopped_part(folder: Path, name: str = "a.bin") -> Path:
    """The partial file name of a download on this host whose process has ended."""
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    return folder / f".{name}.{socket.gethostname()}.{int(done.stdout)}.part"


@pytest.mark.parametrize(
    "version", [{"etag": '"v1"'}, {"last_modified": "Mon, 07 Dec 2026 10:00:00 GMT"}]
)
def test_a_cut_transfer_resumes_from_where_it_stopped(
    http_server: LocalServer, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    version: dict[str, str],
) -> None:  # fmt: skip
    """A dropped connection at 6000 of 10240 bytes: the next call asks for the rest only
    (If-Range: the version the first part came from) and ends with the right file."""
    url = http_server.add("/a.bin", PAYLOAD, ranges=True, cut_after=6000, **version)
    remote = RemoteFile("a.bin", PAYLOAD_SHA, (url,))
    with pytest.raises(DataError, match="truncated transfer: got 6000 of 10240 bytes") as error:
        download(remote, tmp_path, progress=False)
    (part,) = [name for name in part_files(tmp_path) if name.endswith(".part")]
    assert (tmp_path / part).read_bytes() == PAYLOAD[:6000]
    assert part_files(tmp_path) == [part, part + ".json"]  # nothing named like the file
    assert f"The 6000 bytes received from {url} are kept in {tmp_path / part}" in str(error.value)

    http_server.routes["/a.bin"].cut_after = None
    assert download(remote, tmp_path, progress=True).read_bytes() == PAYLOAD
    assert http_server.ranges_asked[-1] == ("bytes=6000-", next(iter(version.values())))
    assert leftovers(tmp_path) == ["a.bin"]
    assert "5.86k/10.0k" in capsys.readouterr().err  # the bar starts at the bytes there


def test_a_killed_download_is_resumed_by_the_next_process(
    http_server: LocalServer, tmp_path: Path
) -> None:
    """SIGKILL at 6000 bytes (the process cannot clean up or save anything): the next
    download, in another process, takes the partial file over and fetches the rest."""
    http_server.add(
        "/a.bin", PAYLOAD, ranges=True, etag='"v1"', cut_after=6000, hold_s=30
    )  # sends 6000 bytes, then nothing while the connection stays open
    process = download_in_child(http_server.url("/a.bin"), tmp_path)
    part = tmp_path / f".a.bin.{socket.gethostname()}.{process.pid}.part"
    try:
        deadline = time.monotonic() + 30
        while not (part.exists() and part.stat().st_size == 6000):
            assert process.poll() is None and time.monotonic() < deadline, "no bytes arrived"
            time.sleep(0.05)
    finally:
        process.kill()
        process.wait()
    route = http_server.routes["/a.bin"]
    route.cut_after, route.hold_s = None, 0.0
    remote = RemoteFile("a.bin", PAYLOAD_SHA, (http_server.url("/a.bin"),))
    assert download(remote, tmp_path, progress=False).read_bytes() == PAYLOAD
    assert http_server.ranges_asked[-1] == ("bytes=6000-", '"v1"')
    assert leftovers(tmp_path) == ["a.bin"]


def test_a_server_without_ranges_starts_over_and_says_so(
    http_server: LocalServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url = http_server.add("/a.bin", PAYLOAD, etag='"v1"', cut_after=6000)  # no Range support
    remote = RemoteFile("a.bin", PAYLOAD_SHA, (url,))
    with pytest.raises(DataError, match="truncated"):
        download(remote, tmp_path, progress=False)
    http_server.routes["/a.bin"].cut_after = None
    with caplog.at_level(logging.WARNING, logger="text_recognizer"):
        assert download(remote, tmp_path, progress=False).read_bytes() == PAYLOAD
    assert http_server.ranges_asked[-1] == ("bytes=6000-", '"v1"')  # asked, got 200
    assert f"{url} does not resume downloads (it sent the whole file)" in caplog.text
    assert leftovers(tmp_path) == ["a.bin"]


def test_a_file_that_changed_on_the_server_is_fetched_whole(
    http_server: LocalServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The mirror served an old version when the transfer was cut, the right one now:
    appending the new version's tail to the old head would give a file that is neither."""
    old = bytes(reversed(PAYLOAD))
    url = http_server.add("/a.bin", old, ranges=True, etag='"old"', cut_after=6000)
    remote = RemoteFile("a.bin", PAYLOAD_SHA, (url,))
    with pytest.raises(DataError, match="truncated"):
        download(remote, tmp_path, progress=False)
    http_server.add("/a.bin", PAYLOAD, ranges=True, etag='"new"')
    with caplog.at_level(logging.WARNING, logger="text_recognizer"):
        assert download(remote, tmp_path, progress=False).read_bytes() == PAYLOAD
    assert http_server.ranges_asked[-1] == ("bytes=6000-", '"old"')
    assert f"it changed on {url} since the partial download" in caplog.text
    assert leftovers(tmp_path) == ["a.bin"]


def test_a_range_past_the_end_starts_over(
    http_server: LocalServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A partial file longer than the server's file (HTTP 416) is dropped, not kept."""
    short = PAYLOAD[:5000]
    remote = RemoteFile("a.bin", hashlib.sha256(short).hexdigest(), (http_server.url("/a.bin"),))
    http_server.add("/a.bin", PAYLOAD, ranges=True, etag='"v1"', cut_after=6000)
    with pytest.raises(DataError, match="truncated"):
        download(remote, tmp_path, progress=False)
    http_server.add("/a.bin", short, ranges=True, etag='"v1"')
    with caplog.at_level(logging.WARNING, logger="text_recognizer"):
        assert download(remote, tmp_path, progress=False).read_bytes() == short
    assert "refused to resume a.bin at byte 6000 (HTTP 416): starting over" in caplog.text
    assert leftovers(tmp_path) == ["a.bin"]


def test_a_resumed_file_with_a_wrong_checksum_is_not_kept(
    http_server: LocalServer, tmp_path: Path
) -> None:
    url = http_server.add("/a.bin", PAYLOAD, ranges=True, etag='"v1"', cut_after=6000)
    remote = RemoteFile("a.bin", "0" * 64, (url,))
    with pytest.raises(DataError, match="truncated"):
        download(remote, tmp_path, progress=False)
    http_server.routes["/a.bin"].cut_after = None
    with pytest.raises(
        DataError, match=rf"sha256 mismatch \(got 10240 bytes, sha256 {PAYLOAD_SHA}"
    ):
        download(remote, tmp_path, progress=False)
    assert leftovers(tmp_path) == []  # whole but wrong: resuming it could never help


def test_a_running_download_s_partial_file_is_not_taken_over(
    http_server: LocalServer, tmp_path: Path
) -> None:
    """Two processes downloading at once: neither touches the other's file."""
    running = tmp_path / f".a.bin.{socket.gethostname()}.{os.getppid()}.part"
    running.write_bytes(PAYLOAD[:6000])
    info = running.with_name(running.name + ".json")
    url = http_server.add("/a.bin", PAYLOAD, ranges=True, etag='"v1"')
    info.write_text(
        f'{{"url": "{url}", "validator": "\\"v1\\"", "sha256": "{PAYLOAD_SHA}", "total": 10240}}'
    )
    download(RemoteFile("a.bin", PAYLOAD_SHA, (url,)), tmp_path, progress=False)
    assert http_server.ranges_asked == [(None, None)]  # from zero
    assert running.read_bytes() == PAYLOAD[:6000]
    assert leftovers(tmp_path) == sorted(["a.bin", running.name, info.name])


def test_a_whole_partial_file_of_a_stopped_download_is_used_without_network(
    tmp_path: Path, refused_url: str
) -> None:
    """Killed after the last byte but before the rename: only the checksum is left to do."""
    part = stopped_part(tmp_path)
    part.write_bytes(PAYLOAD)
    part.with_name(part.name + ".json").write_text(
        f'{{"url": "{refused_url}", "validator": "\\"v1\\"", "sha256": "{PAYLOAD_SHA}",'
        ' "total": 10240}'
    )
    path = download(RemoteFile("a.bin", PAYLOAD_SHA, (refused_url,)), tmp_path, progress=False)
    assert path.read_bytes() == PAYLOAD
    assert leftovers(tmp_path) == ["a.bin"]


def test_a_partial_file_without_its_origin_is_deleted_not_resumed(
    http_server: LocalServer, tmp_path: Path
) -> None:
    part = stopped_part(tmp_path)
    part.write_bytes(b"x" * 6000)  # killed before its origin was written: unknown bytes
    url = http_server.add("/a.bin", PAYLOAD, ranges=True, etag='"v1"')
    assert download(RemoteFile("a.bin", PAYLOAD_SHA, (url,)), tmp_path).read_bytes() == PAYLOAD
    assert http_server.ranges_asked == [(None, None)]
    assert leftovers(tmp_path) == ["a.bin"]


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT to a child is POSIX")
def test_ctrl_c_keeps_the_bytes_of_a_resumable_download(
    http_server: LocalServer, tmp_path: Path
) -> None:
    """Ctrl-C at 90 % of a big archive once threw the 90 % away."""
    http_server.add("/a.bin", PAYLOAD, ranges=True, etag='"v1"', cut_after=9000, hold_s=30)
    process = download_in_child(
        http_server.url("/a.bin"),
        tmp_path,
        stderr=subprocess.PIPE,
        text=True,
    )
    part = tmp_path / f".a.bin.{socket.gethostname()}.{process.pid}.part"
    try:
        deadline = time.monotonic() + 30
        while not (part.exists() and part.stat().st_size == 9000):
            assert process.poll() is None and time.monotonic() < deadline, "no bytes arrived"
            time.sleep(0.05)
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=30)
    finally:
        process.kill()
    assert "KeyboardInterrupt" in err
    assert f"kept the 9000 bytes of a.bin received so far in {part}" in err
    route = http_server.routes["/a.bin"]
    route.cut_after, route.hold_s = None, 0.0
    remote = RemoteFile("a.bin", PAYLOAD_SHA, (http_server.url("/a.bin"),))
    assert download(remote, tmp_path, progress=False).read_bytes() == PAYLOAD
    assert http_server.ranges_asked[-1] == ("bytes=9000-", '"v1"')


def test_the_mirror_a_partial_file_came_from_is_asked_first_and_only_it(
    http_server: LocalServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Another server's ETag means nothing to this one: only the partial file's own mirror
    can continue it, so it goes first; once it is no mirror, the file starts over."""
    first = http_server.add("/first/a.bin", PAYLOAD, ranges=True, etag='"1"')
    second = http_server.add("/second/a.bin", PAYLOAD, ranges=True, etag='"2"', cut_after=6000)
    with pytest.raises(DataError, match="kept in"):
        download(RemoteFile("a.bin", PAYLOAD_SHA, (second,)), tmp_path, progress=False)
    http_server.routes["/second/a.bin"].cut_after = None
    download(RemoteFile("a.bin", PAYLOAD_SHA, (first, second)), tmp_path, progress=False)
    assert http_server.hits == {"/second/a.bin": 2}
    assert http_server.ranges_asked[-1] == ("bytes=6000-", '"2"')

    (tmp_path / "a.bin").unlink()
    http_server.routes["/second/a.bin"].cut_after = 6000
    with pytest.raises(DataError, match="kept in"):
        download(RemoteFile("a.bin", PAYLOAD_SHA, (second,)), tmp_path, progress=False)
    with caplog.at_level(logging.WARNING, logger="text_recognizer"):
        download(RemoteFile("a.bin", PAYLOAD_SHA, (first,)), tmp_path, progress=False)
    assert f"starting over, the partial download came from {second}, no longer a mirror" in (
        caplog.text
    )
    assert http_server.ranges_asked[-1] == (None, None)
    assert leftovers(tmp_path) == ["a.bin"]
