"""The Emnist DataModule end to end on a tiny ``matlab.zip`` with EMNIST's real layout."""

from __future__ import annotations

import hashlib
import io
import shutil
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest
import scipy.io
import torch
from typer.testing import CliRunner

from text_recognizer.charset import DEFAULT_CHARSET, EMNIST_CHARACTERS
from text_recognizer.cli import app
from text_recognizer.data import DATASETS
from text_recognizer.data.cache import write_h5
from text_recognizer.data.emnist import Emnist, balanced_indices
from text_recognizer.data.sources.emnist import BYCLASS_MEMBER, read_byclass
from text_recognizer.errors import ConfigError, DataError

if TYPE_CHECKING:
    from http_fixtures import LocalServer

pytest_plugins = ["http_fixtures"]  # the http_server and refused_url fixtures

# Class c has 1 + c % 5 training images (1..5, mean 2.95 -> balanced cap 2) and 1 test image.
TRAIN_LABELS = np.repeat(np.arange(62), 1 + np.arange(62) % 5)
TEST_LABELS = np.arange(62)


def upright_image(label: int) -> np.ndarray:
    """An asymmetric 'L' (bar down the left, foot along the bottom) with the label at (2, 20)."""
    image = np.zeros((28, 28), dtype=np.uint8)
    image[4:24, 6:9] = 255  # vertical bar, left
    image[21:24, 6:20] = 200  # foot, bottom
    image[2, 20] = label  # top right: ties each image to its label
    return image


def matlab_images(labels: np.ndarray) -> np.ndarray:
    """Rows of 784 in MATLAB's column-major order, as EMNIST stores them."""
    return np.stack([upright_image(int(c)).reshape(-1, order="F") for c in labels])


def make_matlab_zip(mapping: np.ndarray | None = None, compress_mat: bool = False) -> bytes:
    if mapping is None:
        mapping = np.array([[i, ord(c)] for i, c in enumerate(EMNIST_CHARACTERS)], dtype=np.float64)
    dataset = {
        "train": {"images": matlab_images(TRAIN_LABELS), "labels": TRAIN_LABELS[:, None]},
        "test": {"images": matlab_images(TEST_LABELS), "labels": TEST_LABELS[:, None]},
        "mapping": mapping,
    }
    mat = io.BytesIO()
    scipy.io.savemat(mat, {"dataset": dataset}, do_compression=compress_mat)
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("matlab/emnist-digits.mat", b"another split, never read")
        zf.writestr(BYCLASS_MEMBER, mat.getvalue())
    return archive.getvalue()


ZIP_BYTES = make_matlab_zip()
ZIP_SHA = hashlib.sha256(ZIP_BYTES).hexdigest()


@pytest.fixture
def served_zip(http_server: LocalServer) -> str:
    return http_server.add("/matlab.zip", ZIP_BYTES)


def make_module(tmp_path: Path, urls: list[str], **kwargs: object) -> Emnist:
    return Emnist(root=tmp_path / "data", urls=urls, sha256=ZIP_SHA, **kwargs)  # type: ignore[arg-type]


def test_download_convert_and_split(served_zip: str, tmp_path: Path) -> None:
    module = make_module(tmp_path, [served_zip], balance=False, val_fraction=0.2)
    module.prepare_data()
    assert (tmp_path / "data" / "emnist" / "matlab.zip").read_bytes() == ZIP_BYTES
    assert module.cache_file.exists() and module.cache_file.suffix == ".h5"
    module.setup()
    assert module.data_train is not None and module.data_val is not None
    assert module.data_test is not None
    assert len(module.data_val) == round(len(TRAIN_LABELS) * 0.2)
    assert len(module.data_train) + len(module.data_val) == len(TRAIN_LABELS)
    assert len(module.data_test) == len(TEST_LABELS)
    assert module.input_height == 28

    for dataset in (module.data_train, module.data_val, module.data_test):
        for index in range(len(dataset)):
            image, target = dataset[index]
            assert image.shape == (1, 28, 28) and image.dtype == torch.float32
            pixels = (image[0].numpy() * 255).round().astype(np.uint8)
            label = int(pixels[2, 20])
            # Upright, not transposed: the bar is on the left and the foot at the bottom.
            expected = upright_image(label)
            np.testing.assert_array_equal(pixels, expected)
            assert int(target) == label + 4
            assert DEFAULT_CHARSET.decode([int(target)]) == EMNIST_CHARACTERS[label]
    # Spot-check the charset mapping by name.
    targets = np.asarray(module.data_test.targets)
    assert DEFAULT_CHARSET.decode(targets[[0, 9, 10, 35, 36, 61]].tolist()) == "09AZaz"


def test_balance_caps_classes_at_the_mean(served_zip: str, tmp_path: Path) -> None:
    module = make_module(tmp_path, [served_zip], val_fraction=0.0)
    module.prepare_data()
    module.setup()
    assert module.data_train is not None
    counts = np.bincount(np.asarray(module.data_train.targets) - 4, minlength=62)
    assert counts.max() == 2  # int(mean 2.95)
    assert counts.min() == 1
    assert counts.sum() == sum(min(n, 2) for n in 1 + np.arange(62) % 5)


def test_balanced_indices_are_seeded_and_capped() -> None:
    labels = np.array([0] * 10 + [1] * 2 + [2] * 3)  # mean 5
    first = balanced_indices(labels, np.random.default_rng(1))
    assert np.bincount(labels[first]).tolist() == [5, 2, 3]
    assert np.array_equal(first, balanced_indices(labels, np.random.default_rng(1)))
    assert not np.array_equal(first, balanced_indices(labels, np.random.default_rng(2)))


def test_splits_are_seeded_and_subsampled(served_zip: str, tmp_path: Path) -> None:
    def val_targets(seed: int, **kwargs: object) -> np.ndarray:
        module = make_module(tmp_path, [served_zip], seed=seed, balance=False, **kwargs)
        module.prepare_data()
        module.setup()
        assert module.data_val is not None
        return np.asarray(module.data_val.targets)

    assert np.array_equal(val_targets(0), val_targets(0))
    assert not np.array_equal(val_targets(0), val_targets(1))

    small = make_module(tmp_path, [served_zip], balance=False, subsample_fraction=0.5)
    small.prepare_data()
    small.setup()
    assert small.data_train is not None and small.data_test is not None
    num_val = round(len(TRAIN_LABELS) * 0.1)
    assert len(small.data_train) == round((len(TRAIN_LABELS) - num_val) * 0.5)
    assert len(small.data_test) == len(TEST_LABELS)  # test stays whole


def test_prepare_twice_neither_downloads_nor_rebuilds(
    http_server: LocalServer, served_zip: str, tmp_path: Path
) -> None:
    module = make_module(tmp_path, [served_zip])
    module.prepare_data()
    built = module.cache_file.stat().st_mtime_ns
    make_module(tmp_path, [served_zip]).prepare_data()
    assert http_server.hits == {"/matlab.zip": 1}
    assert module.cache_file.stat().st_mtime_ns == built


def test_file_placed_by_hand_needs_no_network(tmp_path: Path, refused_url: str) -> None:
    placed = tmp_path / "data" / "emnist" / "matlab.zip"
    placed.parent.mkdir(parents=True)
    placed.write_bytes(ZIP_BYTES)
    module = make_module(tmp_path, [refused_url])
    module.prepare_data()
    module.setup()
    assert module.data_test is not None and len(module.data_test) == 62


def test_offline_error_says_where_to_place_the_file(tmp_path: Path, refused_url: str) -> None:
    module = make_module(tmp_path, [refused_url])
    with pytest.raises(DataError) as error:
        module.prepare_data()
    message = str(error.value)
    assert refused_url in message and ZIP_SHA in message
    assert str(tmp_path / "data" / "emnist" / "matlab.zip") in message
    assert not module.cache_file.exists()


def test_compressed_mat_is_read_too(tmp_path: Path) -> None:
    path = tmp_path / "matlab.zip"
    path.write_bytes(make_matlab_zip(compress_mat=True))
    arrays = read_byclass(path, progress=False)
    np.testing.assert_array_equal(arrays["x_train"][0], upright_image(0))
    assert arrays["y_test"].tolist() == list(range(4, 66))


def test_archive_without_byclass_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "matlab.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("matlab/emnist-digits.mat", b"x")
    with pytest.raises(DataError, match=r"has no matlab/emnist-byclass\.mat"):
        read_byclass(path, progress=False)


@pytest.mark.parametrize("member", [b"", b"MATLAB 5.0 MAT-file"], ids=["empty", "header cut"])
def test_a_byclass_member_that_is_not_a_mat_file_is_rejected(tmp_path: Path, member: bytes) -> None:
    path = tmp_path / "matlab.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(BYCLASS_MEMBER, member)
    with pytest.raises(DataError, match=r"cannot read matlab/emnist-byclass\.mat .*download it"):
        read_byclass(path, progress=False)


def test_unexpected_label_mapping_is_rejected(tmp_path: Path) -> None:
    swapped = np.array([[i, ord(c)] for i, c in enumerate(EMNIST_CHARACTERS)])
    swapped[[10, 36], 1] = swapped[[36, 10], 1]  # 'A' <-> 'a'
    path = tmp_path / "matlab.zip"
    path.write_bytes(make_matlab_zip(mapping=swapped))
    with pytest.raises(DataError, match=r"label mapping differs .* \[10, 36\]"):
        read_byclass(path, progress=False)


def test_setup_before_prepare_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="call prepare_data"):
        make_module(tmp_path, ["http://127.0.0.1:9/matlab.zip"]).setup()


def test_a_cache_without_emnist_arrays_says_to_delete_it(tmp_path: Path) -> None:
    module = make_module(tmp_path, ["http://127.0.0.1:9/matlab.zip"])
    write_h5(module.cache_file, {"x_train": np.zeros((2, 28, 28), np.uint8)})
    with pytest.raises(DataError, match=r"has no y_train, x_test, y_test .*delete it"):
        module.setup()


def test_repr_shows_sizes_shapes_balance_and_cache(served_zip: str, tmp_path: Path) -> None:
    module = make_module(tmp_path, [served_zip])
    assert "not loaded" in repr(module)
    module.prepare_data()
    module.setup()
    text = repr(module)
    assert "train=" in text and "val=" in text and "test=62" in text
    assert "1x28x28 float32 in [0, 1]" in text
    assert "pixel range 0..255" in text
    assert "test 1/1/1.0" in text  # per-class min/max/mean
    assert str(module.cache_file) in text


def test_bad_arguments_raise_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="val_fraction"):
        Emnist(root=tmp_path, val_fraction=1.0)
    with pytest.raises(ConfigError, match="subsample_fraction"):
        Emnist(root=tmp_path, subsample_fraction=0.0)
    with pytest.raises(ConfigError, match="http"):
        Emnist(root=tmp_path, urls=["ftp://example.org/matlab.zip"])


def test_registry_builds_from_a_config(served_zip: str, tmp_path: Path) -> None:
    module = DATASETS.build(
        "emnist",
        {"root": str(tmp_path), "urls": [served_zip], "sha256": ZIP_SHA, "val_fraction": "0.5"},
    )
    assert isinstance(module, Emnist) and module.val_fraction == 0.5


def test_cli_download_and_info_through_env_mirror(
    http_server: LocalServer, served_zip: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(
        "TEXT_RECOGNIZER_EMNIST_URLS", f"{http_server.url('/gone.zip')}, {served_zip}"
    )
    monkeypatch.setenv("TEXT_RECOGNIZER_EMNIST_SHA256", ZIP_SHA)
    root = tmp_path / "cli-data"
    runner = CliRunner()
    result = runner.invoke(app, ["data", "download", "emnist", "--root", str(root)])
    assert result.exit_code == 0, result.output
    assert "emnist: ready" in result.output
    assert http_server.hits == {"/gone.zip": 1, "/matlab.zip": 1}

    result = runner.invoke(app, ["data", "info", "emnist", "--root", str(root)])
    assert result.exit_code == 0, result.output
    assert "test=62" in result.output and "cache:" in result.output

    shutil.rmtree(root)
    monkeypatch.setenv("TEXT_RECOGNIZER_EMNIST_URLS", http_server.url("/gone.zip"))
    result = runner.invoke(app, ["data", "download", "emnist", "--root", str(root)])
    assert result.exit_code == 1
    assert "HTTP 404" in result.output and "place it at" in result.output
