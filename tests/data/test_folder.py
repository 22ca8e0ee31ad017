from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from tests.models.lines import render_line

from text_recognizer.charset import DEFAULT_CHARSET
from text_recognizer.data import DATASETS
from text_recognizer.data.folder import LabelledFolder
from text_recognizer.errors import ConfigError, DataError
from text_recognizer.images import load_image
from text_recognizer.preprocessing import prepare_line

TEXTS = [f"line {i} of {w}" for i, w in enumerate(["ten", "cats", "sat", "on", "a", "mat"] * 2)]


def write_lines(folder: Path, texts: list[str], jsonl: bool = False) -> None:
    """Dark-on-white PNG scans of ``texts`` plus their labels file, as a user would have them."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for i, text in enumerate(texts):
        ink = (render_line(text, height=48)[0].numpy() * 255).astype(np.uint8)
        Image.fromarray(255 - ink).convert("RGB").save(folder / f"scan_{i:02d}.png")
        rows.append((f"scan_{i:02d}.png", text))
    if jsonl:
        lines = [json.dumps({"image": name, "text": text}) for name, text in rows]
        (folder / "labels.jsonl").write_text("\n".join(lines) + "\n")
    else:
        (folder / "labels.tsv").write_text("".join(f"{n}\t{t}\n" for n, t in rows))


def tiny_folder_config(path: str, **data_args: object) -> dict:
    """One quick epoch of a small line network on a folder (3 of 12 lines validate)."""
    return {
        "name": "own_lines",
        "data": {"name": "folder", "args": {"path": path, "val_fraction": 0.25, **data_args},
                 "batch_size": 4},
        "network": {"name": "line_cnn"},
        "model": {"name": "ctc"},
        "callbacks": {"checkpoint": {"monitor": "val/cer", "mode": "min"}, "progress_bar": "none"},
        "trainer": {"max_epochs": 1, "num_threads": 1},
    }  # fmt: skip


def test_one_labels_file_is_split_by_seed_and_keeps_file_order(tmp_path: Path) -> None:
    write_lines(tmp_path, TEXTS)
    data = DATASETS.build("folder", {"path": str(tmp_path), "val_fraction": 0.25}, seed=1)
    data.prepare_data()
    data.setup("fit")
    assert data.data_train and data.data_val and data.data_test
    sizes = [len(data.data_train), len(data.data_val), len(data.data_test)]
    assert sizes == [8, 3, 1]  # round(0.25 * 12), round(0.1 * 12), the rest
    names = data.data_train.names + data.data_val.names + data.data_test.names
    assert sorted(names) == [f"scan_{i:02d}.png" for i in range(12)]
    assert data.data_val.names == sorted(data.data_val.names)
    again = LabelledFolder(tmp_path, val_fraction=0.25, seed=1)
    again.setup("fit")
    assert again.data_val is not None and again.data_val.names == data.data_val.names
    other = LabelledFolder(tmp_path, val_fraction=0.25, seed=2)
    other.setup("fit")
    assert other.data_val is not None and other.data_val.names != data.data_val.names
    assert "path=" in repr(data) and "train=8" in repr(data)


def test_items_are_what_the_recognizer_would_feed_the_model(tmp_path: Path) -> None:
    write_lines(tmp_path, TEXTS[:3])
    data = LabelledFolder(tmp_path, test_fraction=1.0, val_fraction=0.0)
    data.setup("test")
    assert data.data_test is not None and data.data_train is None
    image, target = data.data_test[0]
    expected = prepare_line(load_image(tmp_path / "scan_00.png"), 32)
    assert image.shape == (1, 32, expected.shape[1])
    np.testing.assert_array_equal(image[0].numpy(), expected)  # exactly, not rounded to uint8
    assert DEFAULT_CHARSET.decode(target.tolist()) == TEXTS[0]
    np.testing.assert_array_equal(
        data.data_test.widths, [i.shape[-1] for i in data.data_test.images]
    )


def test_deslant_false_reads_lines_as_recognizer_deslant_false_does(tmp_path: Path) -> None:
    from text_recognizer.preprocessing import shear

    tmp_path.mkdir(exist_ok=True)
    ink = render_line(TEXTS[0], height=48)[0].numpy().astype(np.float32)
    leaning = 255 - np.clip(shear(ink, 0.7) * 255, 0, 255).astype(np.uint8)  # far right
    Image.fromarray(leaning).save(tmp_path / "scan_00.png")
    (tmp_path / "labels.tsv").write_text(f"scan_00.png\t{TEXTS[0]}\n")
    items = {}
    for deslant in (True, False):
        data = LabelledFolder(tmp_path, test_fraction=1.0, val_fraction=0.0, deslant=deslant)
        data.setup("test")
        assert data.data_test is not None
        items[deslant] = data.data_test[0][0][0].numpy()
        expected = prepare_line(leaning, 32, deslant=deslant)
        np.testing.assert_array_equal(items[deslant], expected)
    assert items[True].shape[1] < items[False].shape[1]  # upright-er: narrower


def test_split_subfolders_and_jsonl(tmp_path: Path) -> None:
    write_lines(tmp_path / "train", TEXTS[:4], jsonl=True)
    write_lines(tmp_path / "test", TEXTS[4:6])
    data = LabelledFolder(tmp_path)
    data.setup("fit")
    assert data.data_train is not None and len(data.data_train) == 4
    assert data.data_val is None  # no val/ subfolder: no validation split
    assert data.data_test is not None and data.data_test.names == [
        "test/scan_00.png",
        "test/scan_01.png",
    ]


def test_a_labels_file_beside_labelled_split_subfolders_is_refused(tmp_path: Path) -> None:
    """Reading the subfolders as the splits left the folder's own labels file out, unsaid."""
    write_lines(tmp_path, TEXTS[:4])
    write_lines(tmp_path / "test", TEXTS[4:6], jsonl=True)
    with pytest.raises(DataError) as error:
        LabelledFolder(tmp_path).prepare_data()
    message = str(error.value)
    assert "has both labels.tsv and split subfolders with labels files (test/labels.jsonl)" in (
        message
    )
    assert "keep one layout" in message
    # Without the subfolder's labels, its images are the folder's own file's to name.
    (tmp_path / "test" / "labels.jsonl").unlink()
    with (tmp_path / "labels.tsv").open("a") as f:
        f.write(f"test/scan_00.png\t{TEXTS[4]}\n")
    data = LabelledFolder(tmp_path, val_fraction=0, test_fraction=0)
    data.setup()
    assert data.data_train is not None and len(data.data_train) == 5
    assert "train=5, val=0, test=0" in repr(data)  # set up: an empty split holds 0


def test_character_folders(tmp_path: Path) -> None:
    tmp_path.mkdir(exist_ok=True)
    rows = []
    for i, char in enumerate("AbC"):
        image = Image.new("L", (60, 80), 255)
        image.paste(0, (20 + i, 10, 40, 70))  # a dark bar on white paper
        image.save(tmp_path / f"{i}.png")
        rows.append(f"{i}.png\t{char}\n")
    (tmp_path / "labels.tsv").write_text("".join(rows))
    data = LabelledFolder(tmp_path, kind="char", test_fraction=1.0, val_fraction=0.0)
    data.setup("test")
    assert data.kind == "char" and data.input_height == 28
    image, target = data.data_test[1]  # type: ignore[index]
    assert image.shape == (1, 28, 28) and int(target) == DEFAULT_CHARSET.index("b")


def test_bad_rows_are_all_named_in_one_error(tmp_path: Path) -> None:
    write_lines(tmp_path, TEXTS[:3])
    (tmp_path / "corrupt.png").write_bytes(b"not a png")
    with (tmp_path / "labels.tsv").open("a") as f:
        f.write("missing.png\thello\n")
        f.write("scan_00.png\tnaïve €\n")
        f.write("scan_01.png\t\n")
        f.write("corrupt.png\tok\n")
    data = LabelledFolder(tmp_path)
    with pytest.raises(DataError) as error:
        data.prepare_data()
    message = str(error.value)
    assert "3 bad rows" in message and "labels.tsv:4" in message
    assert "missing.png: no such image" in message
    assert "outside the charset" in message and "empty transcription" in message
    assert "fix or remove those rows" in message
    # The corrupt image passes the labels check and fails, named, when it is read.
    (tmp_path / "labels.tsv").write_text("scan_00.png\tok\ncorrupt.png\tok\n")
    with pytest.raises(DataError, match=r"1 bad images:\n  .*labels.tsv:2: .*corrupt.png"):
        LabelledFolder(tmp_path, val_fraction=0, test_fraction=0).setup("fit")


def test_an_image_listed_twice_is_a_bad_row(tmp_path: Path) -> None:
    write_lines(tmp_path, TEXTS[:4])
    with (tmp_path / "labels.tsv").open("a") as f:
        f.write("./scan_02.png\tanother reading\n")  # the same file, spelt otherwise
    with pytest.raises(DataError) as error:
        LabelledFolder(tmp_path, val_fraction=0.25, test_fraction=0.25).prepare_data()
    # Seeded, the two rows fall in test and val: the same line would be tuned on and scored.
    twice = r"1 bad rows:\n  \w+: labels.tsv:[35]: scan_02.png: listed twice \(also \w+: labels"
    assert re.search(twice, str(error.value))


def test_images_outside_the_folder_are_named_relative_to_it(tmp_path: Path) -> None:
    write_lines(tmp_path / "scans", TEXTS[:2])
    folder = tmp_path / "labels_only"
    folder.mkdir()
    (folder / "labels.tsv").write_text(
        f"../scans/scan_00.png\t{TEXTS[0]}\n{tmp_path / 'scans' / 'scan_01.png'}\t{TEXTS[1]}\n"
    )
    data = LabelledFolder(folder, val_fraction=0, test_fraction=0)
    data.setup("fit")
    assert data.data_train is not None
    assert data.data_train.names == ["../scans/scan_00.png", "../scans/scan_01.png"]


def test_clear_errors_for_a_wrong_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(DataError, match="no such folder"):
        LabelledFolder(tmp_path / "nope").prepare_data()
    with pytest.raises(DataError, match="has no labels file"):
        LabelledFolder(tmp_path).prepare_data()
    # The path left out, the current folder was read: it said '. has no labels file'.
    monkeypatch.chdir(tmp_path)
    where = re.escape(str(tmp_path.resolve()))
    with pytest.raises(DataError, match=rf"^{where} has no labels file: point the dataset at"):
        LabelledFolder().prepare_data()
    (tmp_path / "labels.tsv").write_text("a.png\tab\n")
    with pytest.raises(DataError, match=rf"labels.tsv is a file; .*\(here perhaps {tmp_path}\)"):
        LabelledFolder(tmp_path / "labels.tsv").prepare_data()
    (tmp_path / "labels.tsv").unlink()
    with pytest.raises(ConfigError, match="add up to 1 at most"):
        LabelledFolder(tmp_path, val_fraction=0.6, test_fraction=0.6)
    for height in (0, -4, 100_000):  # 0 read as 32; the others failed in OpenCV, unexplained
        with pytest.raises(ConfigError, match=f"input_height = {height} must be 8 to 512 pixels"):
            LabelledFolder(tmp_path, input_height=height)
    with pytest.raises(ConfigError, match="kind must be"):
        LabelledFolder(tmp_path, kind="page")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="width_stretch stretches text lines"):
        LabelledFolder(tmp_path, kind="char", width_stretch=[0.8, 1.2])
    Image.new("L", (30, 30)).save(tmp_path / "a.png")
    (tmp_path / "labels.jsonl").write_text('{"image": "a.png", "text": "ab"}\n')
    with pytest.raises(DataError, match="one character per image"):
        LabelledFolder(tmp_path, kind="char").prepare_data()


def test_a_line_model_trains_on_a_folder(tmp_path: Path) -> None:
    from text_recognizer.training.config import parse_config
    from text_recognizer.training.run import run_experiment

    write_lines(tmp_path / "scans", TEXTS)
    config = tiny_folder_config(str(tmp_path / "scans"), width_stretch=[0.7, 1.3])
    summary = run_experiment(parse_config(config))
    assert summary["train_samples"] == 8  # 12 rows - 3 val - 1 test
    assert summary["test"]["test/cer"] >= 0


def test_an_empty_split_is_named_before_training_and_an_empty_test_split_skips_the_test(
    tmp_path: Path,
) -> None:
    """A small folder (or one without a val/ subfolder) fails before the trainer starts,
    saying why, not in a Lightning traceback; without a test split the run is not tested."""
    from text_recognizer.training.config import parse_config
    from text_recognizer.training.run import run_experiment

    write_lines(tmp_path / "few", TEXTS[:4])  # 10 % of 4 lines: no val, no test line
    with pytest.raises(DataError, match=r"nothing to validate on: val_fraction=0\.1 of the 4 "):
        run_experiment(parse_config(tiny_folder_config(str(tmp_path / "few"), val_fraction=0.1)))
    config = tiny_folder_config(str(tmp_path / "few"), val_fraction=0.5, test_fraction=0.5)
    with pytest.raises(DataError, match=r"nothing to train on: val_fraction=0\.5 and test_fra"):
        run_experiment(parse_config(config))
    write_lines(tmp_path / "split" / "train", TEXTS[:4])
    write_lines(tmp_path / "split" / "test", TEXTS[4:6])
    with pytest.raises(DataError, match=r"nothing to validate on: .*split has no val/ subfolder"):
        run_experiment(parse_config(tiny_folder_config(str(tmp_path / "split"))))
    (tmp_path / "split" / "test").rename(tmp_path / "split" / "val")
    summary = run_experiment(parse_config(tiny_folder_config(str(tmp_path / "split"))))
    assert summary["train_samples"] == 4 and summary["test"] == {}


def test_a_labelled_image_of_several_pages_is_a_bad_image(tmp_path: Path) -> None:
    """A label is of one line: which page of a multi-page TIFF would it be of?"""
    write_lines(tmp_path, TEXTS[:2])
    pages = [Image.open(tmp_path / f"scan_0{i}.png") for i in range(2)]
    pages[0].save(tmp_path / "both.tif", save_all=True, append_images=pages[1:])
    pages[0].save(tmp_path / "one.tif")
    (tmp_path / "labels.tsv").write_text(f"one.tif\t{TEXTS[0]}\nboth.tif\t{TEXTS[1]}\n")
    with pytest.raises(
        DataError, match=r"1 bad images:\n  .*labels.tsv:2: .*both.tif: holds 2 pages"
    ):
        LabelledFolder(tmp_path, val_fraction=0, test_fraction=0).setup("fit")
    (tmp_path / "labels.tsv").write_text(f"one.tif\t{TEXTS[0]}\n")
    data = LabelledFolder(tmp_path, val_fraction=0, test_fraction=0)
    data.setup("fit")
    assert data.data_train is not None and len(data.data_train.images) == 1


def test_max_image_pixels_raises_and_lowers_the_limit_on_a_folders_images(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``evaluate --data folder`` read images held to ``images.MAX_PIXELS`` alone: a folder
    of 600-dpi A3 scans could not be read. ``--data-arg max_image_pixels=N`` sets the
    limit, as ``recognize --max-image-megapixels`` does. (The module's default is lowered
    here so that a rendered line is past it.)"""
    import text_recognizer.images as images

    write_lines(tmp_path, TEXTS[:2])
    pixels = min(Image.open(tmp_path / f"scan_0{i}.png").size[0] * 48 for i in range(2))
    monkeypatch.setattr(images, "MAX_PIXELS", pixels - 1)  # both past it
    with pytest.raises(DataError, match=r"2 bad images:(.|\n)*larger than .* max_image_pixels=N"):
        LabelledFolder(tmp_path, val_fraction=0, test_fraction=0).setup("fit")
    data = LabelledFolder(tmp_path, val_fraction=0, test_fraction=0, max_image_pixels=10**6)
    data.setup("fit")
    assert data.data_train is not None and len(data.data_train.images) == 2
    with pytest.raises(ConfigError, match="max_image_pixels must be 1 or more"):
        LabelledFolder(tmp_path, max_image_pixels=0)
