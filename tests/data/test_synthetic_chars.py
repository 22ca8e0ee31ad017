from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from tests.data.memory import traced_peak

from text_recognizer.charset import DEFAULT_CHARSET, EMNIST_CHARACTERS, EMNIST_LABEL_OFFSET
from text_recognizer.data import DATASETS
from text_recognizer.data import synthetic_chars as sc
from text_recognizer.data.sources.fonts import list_fonts
from text_recognizer.data.synthetic_chars import SyntheticChars, class_options, generate
from text_recognizer.errors import ConfigError, DataError


def tiny(root: Path, **overrides: object) -> SyntheticChars:
    args: dict[str, object] = {
        "num_train": 124,
        "num_val": 62,
        "num_test": 62,
        "root": root,
        "build_workers": 1,
    }
    args.update(overrides)
    data = SyntheticChars(**args)  # type: ignore[arg-type]
    data.prepare_data()
    data.setup()
    return data


def arrays(data: SyntheticChars, split: str) -> tuple[np.ndarray, np.ndarray]:
    dataset = getattr(data, f"data_{split}")
    return np.asarray(dataset.images), np.asarray(dataset.targets)


def test_samples_are_emnist_compatible_and_balanced(tmp_path: Path) -> None:
    data = tiny(tmp_path)
    images, targets = arrays(data, "train")
    assert images.shape == (124, 28, 28) and images.dtype == np.uint8
    assert targets.min() >= EMNIST_LABEL_OFFSET
    assert targets.max() < EMNIST_LABEL_OFFSET + len(EMNIST_CHARACTERS)
    assert set(Counter(targets.tolist()).values()) == {2}  # 62 classes, 2 each
    # White ink on black: dark border, bright strokes filling the frame as in EMNIST.
    assert images[:, 0, :].mean() < 40 and images.max(axis=(1, 2)).min() == 255
    image, target = data.data_train[0]  # type: ignore[index]
    assert image.shape == (1, 28, 28) and float(image.max()) <= 1.0
    assert DEFAULT_CHARSET.tokens[int(target)] in EMNIST_CHARACTERS
    assert data.input_height == 28
    text = repr(data)
    assert "train=124" in text and "2..2 per class" in text and str(tmp_path) in text


def test_same_seed_same_arrays_other_seed_other_arrays(tmp_path: Path) -> None:
    only_val = {"num_train": 0, "num_test": 0}
    first = arrays(tiny(tmp_path / "a", seed=1, **only_val), "val")
    again = arrays(tiny(tmp_path / "b", seed=1, **only_val), "val")
    other = arrays(tiny(tmp_path / "c", seed=2, **only_val), "val")
    np.testing.assert_array_equal(first[0], again[0])
    np.testing.assert_array_equal(first[1], again[1])
    assert not np.array_equal(first[0], other[0])


def test_result_does_not_depend_on_worker_count(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sc, "CHUNK_SIZE", 20)
    fonts = list_fonts("test")
    one = generate(fonts, "0123456789", 50, seed=5, workers=1)
    two = generate(fonts, "0123456789", 50, seed=5, workers=2)
    np.testing.assert_array_equal(one[0], two[0])
    np.testing.assert_array_equal(one[1], two[1])


def test_cache_is_keyed_by_every_parameter(tmp_path: Path) -> None:
    data = tiny(tmp_path, num_val=0, num_test=0)
    base = data.cache_file("train")
    assert base.is_file()
    for change in ({"augment": 0.5}, {"seed": 3}, {"num_train": 62}, {"punctuation": True}):
        args: dict[str, object] = {"num_train": 124, "root": tmp_path, **change}
        other = SyntheticChars(**args)  # type: ignore[arg-type]
        assert other.cache_file("train") != base, change
    same = SyntheticChars(num_train=124, num_val=0, num_test=0, root=tmp_path, build_workers=2)
    assert same.cache_file("train") == base  # worker count never changes the data
    mtime = base.stat().st_mtime_ns
    same.prepare_data()  # cached: nothing rebuilt
    assert base.stat().st_mtime_ns == mtime


def test_fonts_never_draw_what_they_lack() -> None:
    classes = EMNIST_CHARACTERS + "()#&+"
    options = class_options(list_fonts(), classes)
    for char, opts in options.items():
        assert opts, char
        for option in opts:
            assert option.glyph not in option.font.missing
            if char.islower():
                assert not option.font.capitals_only  # its 'a' is a capital A
            if option.glyph != char:  # a capitals-only font's lowercase glyph as a capital
                assert option.font.capitals_only and option.glyph == char.lower()
    assert not any(o.font.name == "tomson-talks" for o in options["("])


def test_held_out_fonts_only_in_val_and_test() -> None:
    train_names = {f.name for f in list_fonts("train")}
    for split in ("val", "test"):
        options = class_options(list_fonts(split), "aA0").values()
        used = {option.font.name for opts in options for option in opts}
        assert used and not used & train_names


def test_punctuation_and_missing_classes(tmp_path: Path) -> None:
    data = tiny(tmp_path, punctuation=True, num_train=79, num_val=0, num_test=0)
    _, targets = arrays(data, "train")
    assert {DEFAULT_CHARSET.tokens[t] for t in targets} == set(data.classes)
    assert "(" in data.classes and " " not in data.classes
    tomson = [f for f in list_fonts() if f.name == "tomson-talks"]
    with pytest.raises(DataError, match="can draw"):
        generate(tomson, "a(", 4, seed=0)


def test_built_by_name_and_validated(tmp_path: Path) -> None:
    data = DATASETS.build("synthetic_chars", {"num_train": 10, "augment": "0.5", "root": tmp_path})
    assert isinstance(data, SyntheticChars) and data.augment == 0.5
    with pytest.raises(ConfigError):
        SyntheticChars(augment=-1)
    with pytest.raises(ConfigError):
        SyntheticChars(num_val=-5)


def test_an_empty_split_builds_with_several_workers(tmp_path: Path) -> None:
    # A pool of no processes cannot be made: an empty split is rendered in the process.
    data = tiny(tmp_path, num_train=0, num_val=62, num_test=0, build_workers=2)
    assert arrays(data, "train")[0].shape == (0, 28, 28) and len(data.data_val) == 62  # type: ignore[arg-type]
    assert "empty" in repr(data)


def test_ctrl_c_during_a_parallel_build_stops_it_without_the_workers_tracebacks() -> None:
    from tests.data.interrupt import interrupt

    code = (
        "from text_recognizer.data.sources.fonts import list_fonts\n"
        "from text_recognizer.data.synthetic_chars import generate\n"
        "fonts = list_fonts('test')\n"
        "print('ready', flush=True)\n"
        "try:\n"
        "    generate(fonts, 'abc', 20_000, seed=0, workers=2)\n"
        "except KeyboardInterrupt:\n"
        "    print('interrupted')\n"
    )
    result = interrupt(code, after_s=2.0)
    assert result.stdout.strip() == "interrupted", result.stderr
    assert "Traceback" not in result.stderr, result.stderr  # each worker printed one


def noise_chunk(
    task: tuple[list[sc.Option], np.ndarray, float, np.random.SeedSequence],
) -> np.ndarray:
    """A chunk of noise characters, in a millisecond: the build around it is tested."""
    options, _, _, seed = task
    return np.random.default_rng(seed).integers(0, 256, (len(options), 28, 28), dtype=np.uint8)


def build_peak(root: Path, samples: int) -> tuple[int, np.ndarray]:
    """The most memory (traced) that building ``samples`` training characters took, and them."""
    data = SyntheticChars(num_train=samples, num_val=0, num_test=0, root=root, build_workers=1)
    peak = traced_peak(data.prepare_splits, ["train"])
    data.setup("fit")
    return peak, arrays(data, "train")[0]


def test_a_build_holds_a_chunk_of_characters_at_a_time_not_the_split(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sc, "_render_chunk", noise_chunk)
    build_peak(tmp_path / "first", 1)  # what only a process's first build loads
    few, _ = build_peak(tmp_path / "few", 8 * sc.CHUNK_SIZE)
    peak, images = build_peak(tmp_path / "many", 16 * sc.CHUNK_SIZE)
    assert len(images) == 16 * sc.CHUNK_SIZE
    chunk = sc.CHUNK_SIZE * 28 * 28  # 0.4 MB
    # Held whole, 8 more chunks would add 3 MB.
    assert peak < few + chunk, f"{few / 1e6:.2f}, {peak / 1e6:.2f} MB at the peak"
