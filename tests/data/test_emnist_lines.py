"""EmnistLines: lines composed from a (fake) character dataset, cached and deterministic."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from tests.data.memory import traced_peak

from text_recognizer.charset import DEFAULT_CHARSET, EMNIST_CHARACTERS
from text_recognizer.data import DATASETS
from text_recognizer.data.emnist_lines import CHAR_SIZE, SPLITS, EmnistLines, compose_line
from text_recognizer.data.module import ArrayDataset, BaseDataModule, StripWriter
from text_recognizer.errors import ConfigError, DataError

# Each split's glyphs have their own ink level, so a line shows which split it came from.
INK = {"train": 101, "val": 151, "test": 201}


class FakeChars(BaseDataModule):
    """EMNIST-like characters (0-9 A-Z a-z, no punctuation): each class a distinct bar
    pattern plus per-sample noise, ``per_char`` images per class and split."""

    def __init__(
        self, per_char: int = 3, characters: str = EMNIST_CHARACTERS, seed: int = 0,
        root: Path | None = None,
    ) -> None:  # fmt: skip
        super().__init__(seed=seed, root=root)
        self.per_char = per_char
        self.characters = characters
        self.prepared = 0

    def prepare_data(self) -> None:
        self.prepared += 1

    def setup(self, stage: str | None = None) -> None:
        rng = np.random.default_rng(self.seed)
        for split, ink in INK.items():
            images, targets = [], []
            for k, char in enumerate(self.characters):
                for _ in range(self.per_char):
                    image = np.zeros((CHAR_SIZE, CHAR_SIZE), np.uint8)
                    image[4 + k % 20 : 8 + k % 20, 4:24] = ink  # where the bar is names the class
                    image[rng.integers(4, 24, 5), rng.integers(4, 24, 5)] = ink
                    images.append(image)
                    targets.append(DEFAULT_CHARSET.index(char))
            setattr(self, f"data_{split}", ArrayDataset(np.stack(images), targets))


def make(tmp_path: Path, **kwargs: Any) -> EmnistLines:
    args: dict[str, Any] = {
        "num_train": 12, "num_val": 4, "num_test": 4, "max_length": 16, "root": tmp_path / "data",
    }  # fmt: skip
    args.update(kwargs)
    if "char_source" not in args:
        args.setdefault("char_module", FakeChars())
    return EmnistLines(**args)


def loaded(tmp_path: Path, **kwargs: Any) -> EmnistLines:
    lines = make(tmp_path, **kwargs)
    lines.prepare_data()
    lines.setup()
    return lines


def split_items(lines: EmnistLines, split: str) -> list[tuple[torch.Tensor, torch.Tensor]]:
    dataset = getattr(lines, f"data_{split}")
    return [dataset[i] for i in range(len(dataset))]


def test_same_seed_gives_identical_lines_in_a_fresh_cache(tmp_path: Path) -> None:
    a = loaded(tmp_path / "a", seed=3)
    b = loaded(tmp_path / "b", seed=3)
    c = loaded(tmp_path / "c", seed=4)
    for split in ("train", "val", "test"):
        for (xa, ya), (xb, yb) in zip(split_items(a, split), split_items(b, split), strict=True):
            assert torch.equal(xa, xb) and torch.equal(ya, yb)
    texts = [DEFAULT_CHARSET.decode(y.tolist()) for _, y in split_items(a, "train")]
    assert texts != [DEFAULT_CHARSET.decode(y.tolist()) for _, y in split_items(c, "train")]


def test_split_sizes_images_and_targets(tmp_path: Path) -> None:
    lines = loaded(tmp_path, min_overlap=0.25, max_overlap=0.25)
    step = CHAR_SIZE - round(0.25 * CHAR_SIZE)
    allowed = set(EMNIST_CHARACTERS) | {" "}
    for split, size in (("train", 12), ("val", 4), ("test", 4)):
        items = split_items(lines, split)
        assert len(items) == size
        for image, target in items:
            text = DEFAULT_CHARSET.decode(target.tolist())
            assert target.dtype == torch.int64 and len(target) == len(text)
            assert 1 <= len(text) <= 16 and set(text) <= allowed  # punctuation has no image
            assert text == " ".join(text.split())
            assert image.dtype == torch.float32 and image.shape[:2] == (1, CHAR_SIZE)
            spaces = text.count(" ")
            assert (
                image.shape[2] == CHAR_SIZE + step * (len(text) - 1) + (CHAR_SIZE - step) * spaces
            )
            # Ink only from this split's glyphs (train lines from train characters, ...).
            assert round(float(image.max()) * 255) == INK[split]
            assert float(image.min()) >= 0.0 and float(image.max()) <= 1.0


def test_a_split_of_no_lines_loads_empty(tmp_path: Path) -> None:
    lines = loaded(tmp_path, num_val=0, num_test=0)
    assert len(lines.data_train) == 12  # type: ignore[arg-type]
    assert len(lines.data_val) == 0 and len(lines.data_test) == 0  # type: ignore[arg-type]
    assert "val=0" in repr(lines)


def test_width_stays_within_the_overlap_range(tmp_path: Path) -> None:
    lines = loaded(tmp_path, min_overlap=0.0, max_overlap=0.5, num_train=40)
    for image, target in split_items(lines, "train"):
        n = len(target)
        assert CHAR_SIZE + (CHAR_SIZE - 14) * (n - 1) <= image.shape[2] <= CHAR_SIZE * n


def test_text_keeps_punctuation_when_the_source_draws_it(tmp_path: Path) -> None:
    characters = EMNIST_CHARACTERS + ".,'\"-;:?!()"
    lines = loaded(tmp_path, char_module=FakeChars(characters=characters), num_train=60)
    texts = [DEFAULT_CHARSET.decode(y.tolist()) for _, y in split_items(lines, "train")]
    assert any(set(t) & set(".,'\"-;:?!()") for t in texts)


def test_compose_line_pastes_left_to_right_and_combines_with_max() -> None:
    glyphs = {"a": np.full((1, CHAR_SIZE, CHAR_SIZE), 100, np.uint8),
              "b": np.full((1, CHAR_SIZE, CHAR_SIZE), 200, np.uint8)}  # fmt: skip
    line = compose_line("ab a", glyphs, np.random.default_rng(0), 0.5, 0.5)
    assert line.shape == (CHAR_SIZE, 14 + 14 + 28 + 28)  # nothing overlaps a space
    columns = line[0]
    assert (columns[:14] == 100).all()  # a alone
    assert (columns[14:42] == 200).all()  # b, and max(100, 200) where a and b overlap
    assert (columns[42:56] == 0).all()  # the word gap: one step wide
    assert (columns[56:] == 100).all()


def test_cache_key_changes_with_every_parameter(tmp_path: Path) -> None:
    base: dict[str, Any] = {"char_source": "emnist", "char_source_args": {"balance": True}}
    variants: list[dict[str, Any]] = [
        {},
        {"char_source": "synthetic_chars", "char_source_args": {}},
        {"char_source_args": {"balance": False}},
        {"max_length": 17},
        {"min_overlap": 0.1},
        {"max_overlap": 0.4},
        {"num_train": 13},
        {"num_val": 5},
        {"num_test": 5},
        {"sentence_source": "brown"},
        {"numbers": 0.2},
        {"seed": 1},
    ]
    files = {make(tmp_path, **{**base, **v}).cache_file for v in variants}
    assert len(files) == len(variants)
    # Unchanged parameters, or ones lines do not depend on, keep the key.
    assert make(tmp_path, **base).cache_file == make(tmp_path, **base, batch_size=7).cache_file
    # An injected character module is keyed by its data.
    one, other = make(tmp_path), make(tmp_path, char_module=FakeChars(seed=1))
    assert one.cache_file != other.cache_file
    assert one.cache_file == make(tmp_path, char_module=FakeChars()).cache_file


def test_cache_key_follows_the_character_source_s_own_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another EMNIST archive (its checksum from the environment), or characters rendered
    anew, are other glyphs: their lines were once read from the old lines' cache."""
    emnist = {"char_source": "emnist"}
    first = make(tmp_path, **emnist).cache_file
    monkeypatch.setenv("TEXT_RECOGNIZER_EMNIST_SHA256", "0" * 64)
    assert make(tmp_path, **emnist).cache_file != first
    assert make(tmp_path, **emnist, char_source_args={"sha256": "0" * 64}).cache_file != first
    chars = make(tmp_path, char_source="synthetic_chars")
    caches = chars.cache_params()["char_source"]["caches"]
    assert caches == [chars._named_char_source().cache_file(s).name for s in SPLITS]  # type: ignore[operator]


def test_builds_the_char_source_by_name_once_then_reads_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    built: list[FakeChars] = []

    def build_fake(per_char: int = 3, root: Path | None = None) -> FakeChars:
        built.append(FakeChars(per_char=per_char, root=root))
        return built[-1]

    monkeypatch.setitem(DATASETS._entries, "fake_chars", build_fake)
    first = loaded(tmp_path, char_source="fake_chars", char_source_args={"per_char": 2})
    assert built[0].per_char == 2 and built[0].root == tmp_path / "data"
    assert [fake.prepared for fake in built] == [1]
    again = loaded(tmp_path, char_source="fake_chars", char_source_args={"per_char": 2})
    assert sum(fake.prepared for fake in built) == 1  # the cache answered
    assert again.cache_file == first.cache_file
    assert torch.equal(split_items(again, "val")[0][0], split_items(first, "val")[0][0])


def test_built_by_name_through_the_registry_with_config_checks(tmp_path: Path) -> None:
    lines = DATASETS.build("emnist_lines", {"max_length": "8", "num_train": 3}, root=tmp_path)
    assert isinstance(lines, EmnistLines) and lines.max_length == 8
    with pytest.raises(ConfigError, match="max_overlap"):
        DATASETS.build("emnist_lines", {"max_overlap": 1.0})
    with pytest.raises(ConfigError, match="sentence_source"):
        DATASETS.build("emnist_lines", {"sentence_source": "wiki"})
    with pytest.raises(ConfigError, match="num_val"):
        DATASETS.build("emnist_lines", {"num_val": -1})
    with pytest.raises(ConfigError, match="numbers"):
        DATASETS.build("emnist_lines", {"numbers": 2})


def test_a_source_without_letters_is_a_clear_error(tmp_path: Path) -> None:
    lines = make(tmp_path, char_module=FakeChars(characters="0123456789"))
    with pytest.raises(DataError, match="no letter images"):
        lines.prepare_data()


def test_loader_pads_lines_into_batches(tmp_path: Path) -> None:
    lines = loaded(tmp_path, batch_size=5)
    images, widths, targets, lengths = next(iter(lines.train_dataloader()))
    assert images.shape[:3] == (5, 1, CHAR_SIZE) and images.shape[3] == int(widths.max())
    assert targets.shape == (5, int(lengths.max()))
    assert lines.input_height == CHAR_SIZE


def test_repr_names_source_sizes_and_widths(tmp_path: Path) -> None:
    lines = make(tmp_path, char_source="emnist", char_source_args={"balance": False})
    before = repr(lines)
    assert "EmnistLines" in before and "emnist(balance=False)" in before
    assert "train=12" in before and "not loaded" in before and "overlap 0.00-0.33" in before
    lines = loaded(tmp_path)
    after = repr(lines)
    assert "train=12  val=4  test=4" in after and "not loaded" not in after
    assert "1x28xW" in after and "FakeChars" in after


def build_peak(tmp_path: Path, lines: int) -> tuple[int, EmnistLines]:
    """The most memory (traced) that composing ``lines`` training lines took, and the lines."""
    module = make(tmp_path, num_train=lines, max_length=32)
    module._prepared_char_module()  # the characters, as any build's, before it is measured
    peak = traced_peak(module.prepare_data)
    module.setup()
    return peak, module


def test_a_build_holds_a_megabyte_of_lines_at_a_time_not_the_split(tmp_path: Path) -> None:
    build_peak(tmp_path / "first", 1)  # what only a process's first build loads (the corpus)
    few, _ = build_peak(tmp_path / "few", 400)
    peak, module = build_peak(tmp_path / "many", 800)
    assert module.data_train is not None and len(module.data_train) == 800
    held = sum(image.nbytes for image in module.data_train.images[400:])
    assert held > 3 * StripWriter.BUFFER  # ~4 MB (~10 kB a line)
    # Held whole, 400 more lines would add twice their size while being written.
    assert peak < few + StripWriter.BUFFER, f"{few / 1e6:.1f}, {peak / 1e6:.1f} MB at the peak"
