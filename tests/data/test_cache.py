"""HDF5 caches: damaged or incomplete files are reported as DataError, never a crash."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from text_recognizer.data import DATASETS, synthetic_chars, synthetic_lines
from text_recognizer.data.cache import H5Writer, read_h5, write_h5
from text_recognizer.data.emnist_lines import EmnistLines
from text_recognizer.data.module import StripWriter
from text_recognizer.data.synthetic_lines import PackedLines, PackedLinesWriter
from text_recognizer.errors import DataError

IMAGES = np.random.default_rng(0).integers(0, 256, (32, 100), dtype=np.uint8)
OFFSETS = np.arange(0, 101, 10, dtype=np.int64)
TEXTS = np.array([f"line {i}" for i in range(10)], dtype=object)


def write_cache(path: Path) -> bytes:
    write_h5(path, {"images": IMAGES, "offsets": OFFSETS, "texts": TEXTS}, attrs={"seed": 0})
    return path.read_bytes()


def test_damaged_bytes_anywhere_are_reported_not_read_as_data(tmp_path: Path) -> None:
    path = tmp_path / "lines.h5"
    good = write_cache(path)
    reported = 0
    # Every 64-byte stretch of the file in turn, as a bad disk sector or a stray write does.
    for start in range(0, len(good), 64):
        damaged = bytearray(good)
        damaged[start : start + 64] = bytes(
            np.random.default_rng(start).integers(0, 256, 64, dtype=np.uint8)
        )[: len(good) - start]
        path.write_bytes(bytes(damaged))
        try:
            arrays = read_h5(path, keys=("images", "offsets", "texts"))
        except DataError as error:
            assert "delete it and it will be rebuilt" in str(error)
            reported += 1
            continue
        # What reads back without an error is what was written (the pixels are checksummed).
        assert np.array_equal(arrays["images"], IMAGES), f"pixels changed at byte {start}"
        assert np.array_equal(arrays["offsets"], OFFSETS), f"offsets changed at byte {start}"
        assert list(arrays["texts"]) == list(TEXTS), f"texts changed at byte {start}"
    assert reported > 0


def test_a_changed_character_of_a_cached_text_is_reported(tmp_path: Path) -> None:
    # HDF5 keeps no checksum of variable-length strings: "line 3" read as "Line 3".
    path = tmp_path / "lines.h5"
    good = write_cache(path)
    at = good.index(b"line 3")
    path.write_bytes(good[:at] + b"L" + good[at + 1 :])
    with pytest.raises(DataError, match=r"lines\.h5 is unreadable .*'texts'.*delete it"):
        read_h5(path)


def test_truncated_cache_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "lines.h5"
    good = write_cache(path)
    path.write_bytes(good[: len(good) // 2])
    with pytest.raises(DataError, match=r"lines\.h5 is unreadable .*delete it"):
        read_h5(path)


def test_cache_without_a_needed_array_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "chars.h5"
    write_h5(path, {"images": IMAGES})
    with pytest.raises(DataError, match=r"chars\.h5 has no labels \(it holds: images\)"):
        read_h5(path, keys=("images", "labels"))


def _never_called(*args: object, **kwargs: object) -> None:
    raise AssertionError("the build started before the data folder was checked")


# Per dataset, the function that starts its (minutes long) build.
BUILD_STARTS = {
    "synthetic_chars": (synthetic_chars, "generate_chunks"),
    "synthetic_lines": (synthetic_lines, "_render_chunk"),
    "emnist_lines": (EmnistLines, "_prepared_char_module"),
}


@pytest.mark.parametrize("name", sorted(BUILD_STARTS))
def test_a_data_root_that_is_a_file_is_refused_before_building(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(*BUILD_STARTS[name], _never_called)
    root = tmp_path / "data"
    root.write_text("a file where the data folder should be")
    with pytest.raises(DataError, match=rf"cannot write to {root}/{name} .*another data folder"):
        DATASETS.build(name, {"root": root}).prepare_data()


def test_a_streamed_cache_appears_whole_or_not_at_all(tmp_path: Path) -> None:
    path = tmp_path / "pages.h5"
    rows = [np.full(1000 * (i + 1), i, np.uint8) for i in range(3)]
    with pytest.raises(RuntimeError, match="stopped"), H5Writer(path, {"seed": 1}) as writer:
        writer.append("pixels", rows[0])
        raise RuntimeError("stopped mid-build")
    assert not list(tmp_path.iterdir())  # no cache, no temporary file
    with H5Writer(path, {"seed": 1}) as writer:
        for row in rows:
            writer.append("pixels", row)
        writer.put("names", np.array(["a", "b", "c"], dtype=object))
        assert not path.exists()  # only once the block ends
    assert [p.name for p in tmp_path.iterdir()] == ["pages.h5"]
    arrays = read_h5(path, keys=("pixels", "names"))
    assert np.array_equal(arrays["pixels"], np.concatenate(rows))
    assert list(arrays["names"]) == ["a", "b", "c"]
    import h5py

    with h5py.File(path) as f:  # checksummed as write_h5's arrays are
        assert f["pixels"].fletcher32 and f["pixels"].compression == "lzf"
        assert f.attrs["params"] == '{"seed": 1}'


def test_a_killed_builds_temporary_file_is_removed_by_the_next_build(tmp_path: Path) -> None:
    path = tmp_path / "pages.h5"
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    host = socket.gethostname()
    left = tmp_path / f".pages.h5.{host}.{gone.pid}.tmp"
    running = tmp_path / f".pages.h5.{host}.{os.getppid()}.tmp"  # a build still going
    elsewhere = tmp_path / f".pages.h5.other-host.{gone.pid}.tmp"  # its pids mean nothing here
    other_cache = tmp_path / f".lines.h5.{host}.{gone.pid}.tmp"  # another cache's: its own build's
    for file in (left, running, elsewhere, other_cache):
        file.write_bytes(b"half a cache")
    write_h5(path, {"x": np.zeros(10, np.uint8)})
    assert not left.exists()
    assert running.exists() and elsewhere.exists() and other_cache.exists()
    assert read_h5(path)["x"].shape == (10,)


def test_a_disk_too_full_to_go_on_stops_the_build_and_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Said before HDF5 is asked to write rows that cannot fit.
    usage = shutil.disk_usage(tmp_path)
    path = tmp_path / "pages.h5"
    too_full = r"MB free, too little to go on writing pages\.h5 .*free some space or choose"
    with pytest.raises(DataError, match=too_full), H5Writer(path) as writer:
        writer.append("pixels", np.zeros(1000, np.uint8))
        monkeypatch.setattr(shutil, "disk_usage", lambda _: usage._replace(free=3_000_000))
        writer.append("pixels", np.zeros(2_000_000, np.uint8))
    assert not list(tmp_path.iterdir())


# A child that may write at most 1 MB per file (RLIMIT_FSIZE): writes fail as on a full disk
# or a spent quota, which the free-space check does not see.
WRITE_OVER_A_LIMIT = """
import resource, sys
from pathlib import Path
import numpy as np
from text_recognizer.data.cache import H5Writer, write_h5
from text_recognizer.errors import DataError

resource.setrlimit(resource.RLIMIT_FSIZE, (1_000_000, 1_000_000))
folder = Path(sys.argv[1])
pixels = np.random.default_rng(0).integers(0, 256, (32, 100_000), dtype=np.uint8)
try:
    with H5Writer(folder / "streamed.h5") as writer:
        for rows in np.split(pixels, 32):
            writer.append("pixels", rows)
except DataError as error:
    print(error)
try:  # a strip of lines, grown along its width as line caches are
    with H5Writer(folder / "strip.h5") as writer:
        ink = (pixels < 40).astype(np.uint8) * 255  # compressed as lines are: chunks vary
        for lines in np.split(ink[:, :96_000], 24, axis=1):
            writer.append("strip", lines, axis=1)
except DataError as error:
    print(error)
try:
    write_h5(folder / "whole.h5", {"pixels": pixels})
except DataError as error:
    print(error)
"""


def test_a_write_the_disk_refuses_is_a_clear_error_that_leaves_nothing(tmp_path: Path) -> None:
    # HDF5 went on after a failed write and crashed the process (a segfault) a call later.
    child = subprocess.run(
        [sys.executable, "-c", WRITE_OVER_A_LIMIT, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert child.returncode == 0, child.stderr[-2000:]
    for name in ("streamed.h5", "strip.h5", "whole.h5"):
        assert (
            f"cannot write {name} in {tmp_path} (File too large): free some space or choose "
            "another data folder" in child.stdout
        ), child.stdout
    assert child.stdout.count("nothing was cached") == 3
    assert not list(tmp_path.iterdir())


def random_lines(count: int, height: int = 32, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [
        rng.integers(0, 256, (height, int(rng.integers(1, 300))), dtype=np.uint8)
        for _ in range(count)
    ]


def test_lines_streamed_to_a_cache_read_back_as_the_whole_lines_written_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A cache of lines written a few at a time is the one written whole (as lines were
    # cached before): the same arrays, dtypes, checksums and parameters.
    monkeypatch.setattr(StripWriter, "BUFFER", 20_000)  # a write every ~4 lines
    lines = random_lines(40)
    texts = [f"line {i}" for i in range(40)]
    sources = [f"font {i % 3}" for i in range(40)]
    with PackedLinesWriter(tmp_path / "streamed.h5", {"seed": 2}) as writer:
        for start, end in ((0, 1), (1, 7), (7, 30), (30, 40)):
            writer.add(lines[start:end], texts[start:end], sources[start:end])
        assert len(writer) == 40
    widths = [line.shape[1] for line in lines]
    whole = {
        "images": np.concatenate(lines, axis=1),
        "offsets": np.concatenate([[0], np.cumsum(widths)]).astype(np.int64),
        "texts": np.array(texts, dtype=object),
        "sources": np.array(sources, dtype=object),
    }
    write_h5(tmp_path / "whole.h5", whole, attrs={"seed": 2})
    streamed, expected = read_h5(tmp_path / "streamed.h5"), read_h5(tmp_path / "whole.h5")
    assert sorted(streamed) == sorted(expected) == sorted(whole)
    for key, array in expected.items():
        assert streamed[key].dtype == array.dtype and streamed[key].shape == array.shape, key
        assert np.array_equal(streamed[key], array), key
    import h5py

    with h5py.File(tmp_path / "streamed.h5") as new, h5py.File(tmp_path / "whole.h5") as old:
        assert dict(new.attrs) == dict(old.attrs)
        for key in ("images", "offsets"):
            assert new[key].fletcher32 and new[key].compression == old[key].compression == "lzf"
    packed = PackedLines.read(tmp_path / "streamed.h5")
    assert np.array_equal(packed.image(7), lines[7]) and packed.texts[7] == "line 7"


def test_a_strip_of_no_lines_is_stored_empty_and_a_line_of_another_height_is_refused(
    tmp_path: Path,
) -> None:
    path = tmp_path / "lines.h5"
    with StripWriter(path, {}, 28, ("train_images", "val_images")) as writer:
        writer.add_lines("train_images", random_lines(3, height=28))
        with pytest.raises(ValueError, match=r"uint8 \[28, W\], not uint8 \[32, 5\]"):
            writer.add_lines("train_images", [np.zeros((32, 5), np.uint8)])
        assert writer.widths("val_images").dtype == np.int64
    arrays = read_h5(path)
    assert arrays["val_images"].shape == (28, 0) and arrays["val_images"].dtype == np.uint8
    assert arrays["train_images"].shape[0] == 28
