from __future__ import annotations

import csv
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import torch
from tests.data.memory import traced_peak
from torch.utils.data import DataLoader

from text_recognizer.charset import DEFAULT_CHARSET
from text_recognizer.data import DATASETS, synthetic_lines
from text_recognizer.data.line_render import HEIGHT
from text_recognizer.data.module import collate_lines
from text_recognizer.data.sources.fonts import list_fonts
from text_recognizer.data.sources.strokes import list_faces
from text_recognizer.data.synthetic_lines import (
    LineSpec,
    PackedLines,
    StreamedLines,
    SyntheticLines,
    render_lines,
    write_samples,
)
from text_recognizer.errors import ConfigError

SMALL: dict[str, Any] = {
    "num_train": 12,
    "num_val": 6,
    "num_test": 6,
    "max_length": 24,
    "build_workers": 1,
}


def sources_of(split: str) -> set[str]:
    return {f.name for f in list_fonts(split)} | {f.name for f in list_faces(split)}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> SyntheticLines:
    module = SyntheticLines(**SMALL, root=tmp_path_factory.mktemp("lines"))
    module.setup()
    return module


def test_items_are_32px_lines_whose_targets_decode_to_the_text(built: SyntheticLines) -> None:
    assert built.kind == "line" and built.input_height == HEIGHT == 32
    for split in ("train", "val", "test"):
        dataset = getattr(built, f"data_{split}")
        assert isinstance(dataset, PackedLines) and len(dataset) == SMALL[f"num_{split}"]
        for index in range(len(dataset)):
            image, target = dataset[index]
            text = str(dataset.texts[index])
            assert image.dtype == torch.float32 and image.shape[:2] == (1, HEIGHT)
            assert float(image.min()) >= 0.0 and float(image.max()) <= 1.0
            assert target.dtype == torch.long
            assert DEFAULT_CHARSET.decode(target.tolist()) == text
            assert 1 <= len(text) <= SMALL["max_length"] and text == text.strip()
            # Width roughly proportional to the text: no squashed or runaway lines.
            assert image.shape[-1] >= 16 and 3 <= image.shape[-1] / len(text) <= 40


def test_cached_lines_travel_to_workers_as_their_cache_path(built: SyntheticLines) -> None:
    dataset = built.data_val
    assert isinstance(dataset, PackedLines)
    payload = pickle.dumps(dataset)
    assert len(payload) < dataset.strip.nbytes  # the pixels are not in the pickle
    copy = pickle.loads(payload)
    image, target = copy[3]
    assert torch.equal(image, dataset[3][0]) and torch.equal(target, dataset[3][1])


def test_batches_pad_to_the_widest_line(built: SyntheticLines) -> None:
    images, widths, targets, lengths = next(iter(built.train_dataloader()))
    assert images.shape[:3] == (min(built.batch_size, 12), 1, HEIGHT)
    assert images.shape[-1] == int(widths.max())
    assert targets.shape == (images.shape[0], int(lengths.max()))


def test_held_out_fonts_and_faces_never_appear_in_train(built: SyntheticLines) -> None:
    train = set(built.data_train.sources.tolist())  # type: ignore[union-attr]
    assert not train & (sources_of("val") | sources_of("test"))
    assert train <= sources_of("train")
    assert set(built.data_val.sources.tolist()) <= sources_of("val")  # type: ignore[union-attr]
    assert set(built.data_test.sources.tolist()) <= sources_of("test")  # type: ignore[union-attr]


def test_capitals_only_fonts_have_upper_case_labels(built: SyntheticLines) -> None:
    capitals = {f.name for f in list_fonts() if f.capitals_only}
    for split in ("train", "val", "test"):
        dataset = getattr(built, f"data_{split}")
        for text, source in zip(dataset.texts, dataset.sources, strict=True):
            if source in capitals:
                assert text == text.upper()


def test_cached_lines_are_deterministic_per_seed(built: SyntheticLines, tmp_path: Path) -> None:
    again = SyntheticLines(**SMALL, root=tmp_path / "a")
    again.prepare_data()
    other = SyntheticLines(**{**SMALL, "num_train": 1}, seed=1, root=tmp_path / "b")
    other.setup()
    again.setup()
    for split in ("train", "val", "test"):
        a, b = getattr(built, f"data_{split}"), getattr(again, f"data_{split}")
        np.testing.assert_array_equal(a.strip, b.strip)
        assert a.texts.tolist() == b.texts.tolist()
    assert other.data_val.texts.tolist() != built.data_val.texts.tolist()  # type: ignore[union-attr]


def test_cache_key_changes_with_every_parameter(tmp_path: Path) -> None:
    base = SyntheticLines(**SMALL, root=tmp_path)
    changes: list[dict[str, Any]] = [
        {"num_val": 7},
        {"max_length": 25},
        {"stroke_fraction": 0.3},
        {"seed": 1},
        {"sentence_source": "brown"},
        {"numbers": 0.0},
    ]
    files = {base.cache_file("val")}
    for change in changes:
        files.add(SyntheticLines(**{**SMALL, **change}, root=tmp_path).cache_file("val"))
    assert len(files) == len(changes) + 1
    # Loader and build settings do not change the data, so they share the cache.
    same = SyntheticLines(
        **{**SMALL, "build_workers": 2}, batch_size=3, num_workers=1, root=tmp_path
    )
    assert same.cache_file("val") == base.cache_file("val")
    assert base.cache_file("train") != base.cache_file("val")


def test_capitals_share_keys_the_training_cache_only(tmp_path: Path) -> None:
    base = SyntheticLines(**SMALL, root=tmp_path)
    shares = [SyntheticLines(**SMALL, capitals_share=v, root=tmp_path) for v in (0.0, 0.11)]
    trains = {base.cache_file("train"), *(m.cache_file("train") for m in shares)}
    assert len(trains) == 3  # a share of 0 is not "fonts alike"
    assert {m.cache_file(split) for m in shares for split in ("val", "test")} == {
        base.cache_file("val"),
        base.cache_file("test"),
    }


def test_joined_share_keys_the_training_cache_only(tmp_path: Path) -> None:
    base = SyntheticLines(**SMALL, root=tmp_path)
    joined = SyntheticLines(**SMALL, joined_share=0.3, root=tmp_path)
    assert joined.cache_file("train") != base.cache_file("train")
    assert joined.params("train")["joined_share"] == 0.3
    assert [joined.cache_file(s) for s in ("val", "test")] == [
        base.cache_file(s) for s in ("val", "test")
    ]
    with pytest.raises(ConfigError, match="joined_share"):
        SyntheticLines(**SMALL, joined_share=2.0, root=tmp_path)


def test_glyph_jitter_keys_the_training_cache_only(tmp_path: Path) -> None:
    base = SyntheticLines(**SMALL, root=tmp_path)
    off = SyntheticLines(**SMALL, glyph_jitter=0.0, root=tmp_path)
    jittered = SyntheticLines(**SMALL, glyph_jitter=1.0, root=tmp_path)
    assert "glyph_jitter" not in base.params("train")  # caches built before it keep their keys
    assert off.cache_file("train") == base.cache_file("train")
    assert jittered.cache_file("train") != base.cache_file("train")
    assert [jittered.cache_file(s) for s in ("val", "test")] == [
        base.cache_file(s) for s in ("val", "test")
    ]
    assert jittered.spec("val").glyph_jitter == 0.0  # held-out hands are drawn as the fonts are
    for bad in (-0.5, 4.0):
        with pytest.raises(ConfigError, match="glyph_jitter"):
            SyntheticLines(**SMALL, glyph_jitter=bad, root=tmp_path)


def test_streamed_training_lines_are_deterministic_and_fresh_each_epoch(tmp_path: Path) -> None:
    spec = LineSpec(
        "train", seed=0, max_length=20, stroke_fraction=0.5, sentence_source="default", numbers=0.1
    )
    first, second = StreamedLines(spec, 5), StreamedLines(spec, 5)
    epoch_a = [(image, target) for image, target in first]
    epoch_b = [(image, target) for image, target in second]
    assert len(epoch_a) == len(first) == 5
    for (image_a, target_a), (image_b, target_b) in zip(epoch_a, epoch_b, strict=True):
        assert torch.equal(image_a, image_b) and torch.equal(target_a, target_b)
    next_epoch = [target.tolist() for _, target in first]
    assert next_epoch != [target.tolist() for _, target in epoch_a]

    module = SyntheticLines(**SMALL, stream=True, batch_size=4, root=tmp_path)
    module.setup()
    assert isinstance(module.data_train, StreamedLines)
    assert not list((tmp_path / "synthetic_lines").glob("synthetic_lines_train-*.h5"))
    batches = list(module.train_dataloader())
    assert sum(len(lengths) for _, _, _, lengths in batches) == SMALL["num_train"]
    assert "streamed" in repr(module)


def test_repr_shows_sizes_widths_fonts_and_cache(built: SyntheticLines) -> None:
    text = repr(built)
    assert "train=12" in text and "val=6" in text and "test=6" in text
    assert "width" in text and "stroke faces" in text and "synthetic_lines_val-" in text


def test_registry_builds_it_and_bad_values_are_rejected(tmp_path: Path) -> None:
    module = DATASETS.build(
        "synthetic_lines", {"num_train": 3, "stroke_fraction": "0.25"}, root=tmp_path
    )
    assert isinstance(module, SyntheticLines) and module.stroke_fraction == 0.25
    with pytest.raises(ConfigError, match="stroke_fraction"):
        SyntheticLines(stroke_fraction=2.0)
    with pytest.raises(ConfigError, match="num_val"):
        SyntheticLines(num_val=0)
    with pytest.raises(ConfigError, match="numbers"):
        SyntheticLines(numbers=-0.1)


def test_write_samples_uses_test_sources(tmp_path: Path) -> None:
    rows = write_samples(tmp_path, count=4, seed=0)
    assert len(rows) == 4
    with (tmp_path / "labels.tsv").open() as f:
        assert [tuple(row) for row in csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)] == rows
    for name, _ in rows:
        image = cv2.imread(str(tmp_path / name), cv2.IMREAD_GRAYSCALE)
        assert image.shape[0] == HEIGHT
        assert np.median(image) > 128  # dark ink on light paper, like a scan


@pytest.mark.slow
def test_parallel_build_and_loader_workers_give_the_same_data(tmp_path: Path) -> None:
    sizes = {**SMALL, "num_train": 600}  # three chunks
    serial = SyntheticLines(**sizes, root=tmp_path / "serial")
    parallel = SyntheticLines(**{**sizes, "build_workers": 2}, root=tmp_path / "parallel")
    serial.setup()
    parallel.setup()
    np.testing.assert_array_equal(serial.data_train.strip, parallel.data_train.strip)  # type: ignore[union-attr]

    spec = LineSpec(
        "train", seed=0, max_length=20, stroke_fraction=0.5, sentence_source="default", numbers=0.1
    )
    dataset = StreamedLines(spec, 600)
    in_process = sorted(tuple(t.tolist()) for _, t in dataset)
    loader = DataLoader(
        StreamedLines(spec, 600),
        batch_size=50,
        num_workers=2,
        collate_fn=collate_lines,
        multiprocessing_context="spawn",
    )
    in_workers = sorted(
        tuple(t[:n].tolist()) for _, _, ts, ns in loader for t, n in zip(ts, ns, strict=True)
    )
    assert in_workers == in_process  # same lines whatever the number of workers


@pytest.mark.slow
def test_ctrl_c_during_a_parallel_build_stops_it_without_the_workers_tracebacks(
    tmp_path: Path,
) -> None:
    from tests.data.interrupt import interrupt

    code = (
        "from text_recognizer.data.synthetic_lines import SyntheticLines\n"
        f"lines = SyntheticLines(num_train=30_000, num_val=1, num_test=1, root={str(tmp_path)!r},"
        " build_workers=2)\n"
        "print('ready', flush=True)\n"
        "try:\n"
        "    lines.prepare_data()\n"
        "except KeyboardInterrupt:\n"
        "    print('interrupted')\n"
    )
    result = interrupt(code, after_s=3.0)
    assert result.stdout.strip() == "interrupted", result.stderr
    assert "Traceback" not in result.stderr, result.stderr  # each worker printed one
    assert not list(tmp_path.rglob("*.h5"))


def noise_lines(chunk: int, count: int) -> list[np.ndarray]:
    rng = np.random.default_rng(chunk)
    return [rng.integers(0, 256, (HEIGHT, 300), dtype=np.uint8) for _ in range(count)]


def quick_chunk(task: tuple[LineSpec, int, int]) -> tuple[list[np.ndarray], list[str], list[str]]:
    """A chunk of noise lines 32 x 300 px, in a millisecond: the build around it is tested."""
    _, chunk, count = task
    return noise_lines(chunk, count), [f"line {chunk}.{i}" for i in range(count)], ["noise"] * count


def build_peak(root: Path, lines: int) -> tuple[int, PackedLines]:
    """The most memory (traced) that building ``lines`` training lines took, and the lines."""
    module = SyntheticLines(**{**SMALL, "num_train": lines}, root=root)
    peak = traced_peak(module.prepare_splits, ["train"])
    built = PackedLines.read(module.cache_file("train"))
    assert len(built) == lines
    return peak, built


def test_a_build_holds_a_chunk_of_lines_at_a_time_not_the_split(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(synthetic_lines, "_render_chunk", quick_chunk)
    size = synthetic_lines.CHUNK_SIZE
    build_peak(tmp_path / "first", 1)  # what only a process's first build loads
    few, _ = build_peak(tmp_path / "few", 2 * size)
    peak, lines = build_peak(tmp_path / "many", 4 * size)
    assert np.array_equal(lines.image(size), noise_lines(1, 1)[0])  # every chunk, in order
    chunk = size * HEIGHT * 300  # 2.5 MB
    # Held whole, 2 more chunks would add 4 chunks' size while being written.
    assert peak < few + chunk, f"{few / 1e6:.1f}, {peak / 1e6:.1f} MB at the peak"


# Builds the test split of 16 lines of SyntheticLines(root=argv[1]) in chunks of 8, and
# stops for good as it starts the second chunk, after creating the file argv[2].
KILLED_BUILD = """
import sys, time
from pathlib import Path
from text_recognizer.data import synthetic_lines

render, calls = synthetic_lines._render_chunk, []

def render_then_stop(task):
    calls.append(task)
    if len(calls) == 2:
        Path(sys.argv[2]).touch()
        time.sleep(600)
    return render(task)

synthetic_lines.CHUNK_SIZE = 8
synthetic_lines._render_chunk = render_then_stop
sizes = {"num_train": 1, "num_val": 1, "num_test": 16, "max_length": 24, "build_workers": 1}
synthetic_lines.SyntheticLines(**sizes, root=Path(sys.argv[1])).prepare_splits(["test"])
"""


def test_a_killed_build_leaves_no_cache_and_the_next_build_makes_it_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rendering = tmp_path / "rendering"
    build = subprocess.Popen(
        [sys.executable, "-c", KILLED_BUILD, str(tmp_path), str(rendering)], stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 60
        while not rendering.exists() and build.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        build.send_signal(signal.SIGKILL)  # as the OOM killer stops a process: no clean-up
        _, stderr = build.communicate()
    assert rendering.exists() and build.returncode == -signal.SIGKILL, stderr.decode()[-2000:]
    monkeypatch.setattr(synthetic_lines, "CHUNK_SIZE", 8)
    sizes = {"num_train": 1, "num_val": 1, "num_test": 16, "max_length": 24, "build_workers": 1}
    module = SyntheticLines(**sizes, root=tmp_path)
    folder = tmp_path / "synthetic_lines"
    assert not module.cache_file("test").exists()
    assert [file.name.endswith(".tmp") for file in folder.iterdir()] == [True]  # half a cache

    module.setup("test")
    assert [file.name for file in folder.iterdir()] == [module.cache_file("test").name]
    spec = module.spec("test")
    rendered = [*render_lines(spec, 0, 8), *render_lines(spec, 1, 8)]
    assert module.data_test is not None
    assert list(module.data_test.texts) == [line.text for line in rendered]
    assert np.array_equal(module.data_test.image(15), rendered[15].image)
