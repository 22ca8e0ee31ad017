"""SyntheticParagraphs: pages composed of synthetic_lines' lines, cached, read by evaluate
as the Recognizer reads pages; benchmarks/paragraphs.py composes with the same code."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any, cast

import numpy as np
import pytest
from tests.data.memory import traced_peak
from typer.testing import CliRunner

from text_recognizer.cli import app
from text_recognizer.data import DATASETS
from text_recognizer.data.synthetic_paragraphs import (
    LINE_HEIGHT,
    PageLayout,
    SyntheticParagraphs,
    compose_pages,
)
from text_recognizer.errors import ConfigError

# Few lines a split, so that the six test hands have a few each: pages of two or three.
TINY: dict[str, Any] = {"num_val": 2, "num_test": 3, "lines_per_page": [2, 3], "line_pool": 30}


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data folder with the tiny val and test pages (and their lines) cached once."""
    root = tmp_path_factory.mktemp("tiny")
    SyntheticParagraphs(root=root, **TINY).prepare_splits(["val", "test"])
    return root


def same_pages(first: list[np.ndarray], second: list[np.ndarray]) -> bool:
    return len(first) == len(second) and all(
        np.array_equal(a, b) for a, b in zip(first, second, strict=True)
    )


def test_pages_are_one_hands_lines_cached_per_split(tiny_root: Path, tmp_path: Path) -> None:
    module = SyntheticParagraphs(root=tiny_root, **TINY)
    module.setup("test")
    assert module.data_test is not None and module.data_val is None
    assert not module.cache_file("train").exists()  # only what was asked for is composed
    assert not list((tiny_root / "synthetic_lines").glob("synthetic_lines_train-*"))
    test_lines = module.material("test")
    for (page, text), name in zip(module.data_test, module.data_test.names, strict=True):
        assert page.dtype == np.uint8 and page.ndim == 2
        assert np.median(page) == 255 and page.min() < 100  # dark ink on white paper
        hand = name.split(":", 1)[1]
        own = {test_lines.texts[i] for i in test_lines.hands[hand]}
        assert 2 <= text.count("\n") + 1 <= 3 and set(text.split("\n")) <= own
        assert page.shape[0] > LINE_HEIGHT * (text.count("\n") + 1)  # lines one under another
    # The same pages the benchmark composes: one composition, the dataset's.
    again = [page.image for page in compose_pages(test_lines, 3, module.layout, module.seed)]
    assert same_pages(again, module.data_test.pages)

    # Val pages are the val hands', none of the test hands'.
    module.setup("validate")
    assert module.data_val is not None and len(module.data_val) == 2
    val_hands = {name.split(":", 1)[1] for name in module.data_val.names}
    assert val_hands <= set(module.material("val").hands)
    assert not val_hands & set(test_lines.hands)

    # Cached: read back without the lines; composed elsewhere, the very same pages.
    for cache in (tiny_root / "synthetic_lines").glob("*.h5"):
        cache.rename(tmp_path / cache.name)
    cached = SyntheticParagraphs(root=tiny_root, **TINY)
    cached.setup("test")
    assert not list((tiny_root / "synthetic_lines").glob("*.h5"))  # nothing rendered again
    for cache in tmp_path.glob("*.h5"):
        cache.rename(tiny_root / "synthetic_lines" / cache.name)
    for root in (tiny_root, tmp_path / "elsewhere"):
        built = SyntheticParagraphs(root=root, **TINY)
        built.setup("test")
        assert built.data_test is not None
        assert built.data_test.texts == module.data_test.texts
        assert built.data_test.names == module.data_test.names
        assert same_pages(built.data_test.pages, module.data_test.pages)
    reseeded = SyntheticParagraphs(root=tiny_root, seed=1, **TINY)
    reseeded.setup("test")
    assert reseeded.data_test is not None and reseeded.data_test.texts != module.data_test.texts


def test_the_cache_key_follows_every_argument(tmp_path: Path) -> None:
    base = SyntheticParagraphs(root=tmp_path, **TINY)
    changes: list[dict[str, Any]] = [
        {"num_test": 4},
        {"lines_per_page": [2, 4]},
        {"spacing": [0.9, 1.4]},
        {"tilt": 1.0},
        {"scale": 0.7},
        {"paper": 230},
        {"seed": 1},
        {"line_pool": 31},  # the lines' own key: other lines, other pages
        {"line_seed": 0},
        {"stroke_fraction": 0.5},
    ]
    keys = {SyntheticParagraphs(root=tmp_path, **{**TINY, **change}).cache_file("test")
            for change in changes}  # fmt: skip
    assert len(keys | {base.cache_file("test"), base.cache_file("val")}) == len(changes) + 2
    assert SyntheticParagraphs(root=tmp_path, **TINY).cache_file("test") == base.cache_file("test")
    # Pages of the shipped model's held-out lines: the cache that config already built.
    shipped = DATASETS.build(
        "synthetic_lines", {"num_train": 300_000, "seed": 42, "stroke_fraction": 0.3}, root=tmp_path
    )
    assert SyntheticParagraphs(root=tmp_path).lines.cache_file("test") == shipped.cache_file("test")


def test_a_build_holds_a_page_at_a_time_not_the_split(tiny_root: Path, tmp_path: Path) -> None:
    peaks, largest = [], 0
    for pages in (20, 40):
        root = tmp_path / str(pages)
        shutil.copytree(tiny_root / "synthetic_lines", root / "synthetic_lines")  # rendered
        module = SyntheticParagraphs(root=root, **{**TINY, "num_test": pages})
        peaks.append(traced_peak(module.prepare_splits, ["test"]))
        module.setup("test")
        assert module.data_test is not None and len(module.data_test) == pages
        largest = max(page.nbytes for page in module.data_test.pages)
    # Held whole, 20 more pages (~6 MB) would add twice their size while being written.
    assert peaks[1] < peaks[0] + largest, f"{peaks[0] / 1e6:.1f}, {peaks[1] / 1e6:.1f} MB"


def test_paper_and_scale_and_a_fixed_count(tiny_root: Path) -> None:
    material = SyntheticParagraphs(root=tiny_root, **TINY).material("test")
    plain, grey, half = (
        next(compose_pages(material, 1, PageLayout((3, 3), tilt=1.0, **layout), seed=5))
        for layout in ({}, {"paper": 200}, {"scale": 0.5})
    )
    assert plain.texts == grey.texts == half.texts and len(plain.texts) == 3
    assert np.median(grey.image) == 200 and abs(np.median(plain.image) - 255) < 1
    assert grey.image.min() < 80  # the ink keeps its contrast to the darker paper
    assert plain.image[0, 0] == 255 and grey.image[0, 0] == 200  # the turned page's corners
    (high, wide), (full_high, full_wide) = half.image.shape, plain.image.shape
    assert abs(high - full_high / 2) <= 1 and abs(wide - full_wide / 2) <= 1


def test_bad_arguments_say_what_to_do(tmp_path: Path) -> None:
    for args, message in [
        ({"lines_per_page": [5, 3]}, r"lines_per_page = \[5, 3\] must be \[low, high\]"),
        ({"lines_per_page": [2.5, 3]}, r"'lines_per_page\.0' = 2.5 is invalid: .*fractional"),
        ({"spacing": [0, 1]}, r"spacing = \[0.0, 1.0\] must be \[low, high\] with 0 < low"),
        ({"tilt": 60}, "tilt = 60.0 must be 0 to 45 degrees"),
        ({"scale": 0.1}, r"scale = 0.1 must be 0.25 to 4 .*0.7 makes them IAM's"),
        ({"paper": 20}, "paper = 20 must be a grey level from 64 to 255"),
        ({"num_test": 0}, "num_test = 0 must be at least 1 page"),
        ({"line_pool": 4}, r"line_pool = 4 is fewer lines than a page takes .*up to 10"),
        ({"batch": 2}, "has no argument 'batch'"),
    ]:
        with pytest.raises(ConfigError, match=message):
            DATASETS.build("synthetic_paragraphs", {"root": tmp_path, **args})
    with pytest.raises(ConfigError, match=r"lines_per_page = \[2.5, 3\] must be whole lines"):
        SyntheticParagraphs(root=tmp_path, lines_per_page=cast(Any, [2.5, 3]))  # from Python
    # Known only once the lines are rendered: no hand has that many.
    short = SyntheticParagraphs(root=tmp_path, num_test=1, lines_per_page=12, line_pool=12)
    with pytest.raises(ConfigError, match=r"no hand has 12 lines .*\(line_pool\)"):
        short.setup("test")
    assert not short.cache_file("test").exists()


def test_evaluate_reads_the_pages_as_the_recognizer_does(tiny_root: Path, tmp_path: Path) -> None:
    from text_recognizer.metrics import cer
    from text_recognizer.recognizer import Recognizer

    report = tmp_path / "report.json"
    args = [f"root={tiny_root}", *(f"{key}={value}" for key, value in TINY.items())]
    result = CliRunner().invoke(
        app,
        ["evaluate", "default", "--data", "synthetic_paragraphs", "--worst", "3", "-o",
         str(report), *(part for arg in args for part in ("--data-arg", arg))],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "default on synthetic_paragraphs/test (3 pages, greedy)" in result.output
    module = SyntheticParagraphs(root=tiny_root, **TINY)
    module.setup("test")
    assert module.data_test is not None
    truths, lines = module.data_test.texts, module.data_test.num_lines
    assert f"lines_found={lines}, lines_truth={lines}" in result.output
    metrics = json.loads(report.read_text())["metrics"]
    recognizer = Recognizer.from_pretrained()
    read = [recognizer.recognize(page, kind="paragraph").text for page in module.data_test.pages]
    assert metrics["cer"] == pytest.approx(cer(read, truths))
    # Held-out hands read at CER ~0.05; a page scored against another's text, its lines
    # out of order or its ink lost would cost far more.
    assert metrics["cer"] < 0.12 and cer(read, truths[1:] + truths[:1]) > 0.5


def test_training_on_synthetic_pages_is_refused_up_front(tmp_path: Path) -> None:
    config = Path(__file__).parents[2] / "configs" / "lines_iam.yaml"
    result = CliRunner().invoke(
        app, ["train", str(config), "--set", "data.name=synthetic_paragraphs"]
    )
    assert result.exit_code == 1
    assert "data 'synthetic_paragraphs' holds pages, and models train on lines" in result.output
    assert "Traceback" not in result.output
    assert not list((tmp_path / "data").rglob("*.h5"))  # nothing rendered or composed
    assert not [path for path in (tmp_path / "runs").rglob("*") if path.is_file()]


def test_data_info_prints_every_split(tmp_path: Path) -> None:
    args = ["lines_per_page=2", "num_train=1", "num_val=1", "num_test=1", "line_pool=30"]
    command = ["data", "info", "synthetic_paragraphs", "--root", str(tmp_path)]
    result = CliRunner().invoke(app, [*command, *(p for a in args for p in ("--data-arg", a))])
    assert result.exit_code == 0, result.output
    printed = " ".join(result.output.split())  # as wrapped to the terminal's width
    for split in ("train", "val", "test"):
        assert f"{split}: 1 pages of 1 hands, 2 lines" in printed
    assert "2 lines a page" in printed and "synthetic_lines seed 42" in printed
