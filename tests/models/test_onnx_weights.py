"""Weights read back from ONNX exports: the same function as the exported network."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest
import torch

from text_recognizer.charset import DEFAULT_CHARSET
from text_recognizer.errors import ConfigError
from text_recognizer.export import export_module
from text_recognizer.models import MODELS, onnx_weights
from text_recognizer.models.onnx_weights import network_from_onnx
from text_recognizer.networks import NETWORKS
from text_recognizer.paths import MODELS_DIR


def randomise(network: torch.nn.Module, seed: int = 0) -> None:
    """Random weights and batch-norm statistics: nothing may be left at an easy default."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in network.state_dict().items():
            if name.endswith("num_batches_tracked"):
                continue
            values = torch.rand(tensor.shape, generator=generator)
            tensor.copy_(0.5 + values if name.endswith("running_var") else 0.4 * values - 0.2)


@pytest.mark.parametrize(
    ("model", "network", "args", "shape"),
    [
        ("ctc", "crnn", {"channels": [8, 16, 16, 24], "lstm_hidden": 16}, (2, 1, 32, 120)),
        ("ctc", "line_cnn", {}, (2, 1, 28, 120)),
        ("classifier", "lenet", {"channels": [8, 16], "fc_dim": 32}, (2, 1, 28, 28)),
        ("classifier", "mlp", {}, (2, 1, 28, 28)),
    ],
)
def test_export_then_read_back_gives_the_same_outputs(
    model: str, network: str, args: dict[str, Any], shape: tuple[int, ...], tmp_path: Path
) -> None:
    injected = {"num_classes": len(DEFAULT_CHARSET), "input_height": shape[2], "input_size": 28}
    module = MODELS.build(
        model,
        {},
        network=network,
        network_args={**args, **NETWORKS.accepted(network, injected)},
        charset_tokens=list(DEFAULT_CHARSET.tokens),
        input_height=shape[2],
    )
    randomise(module.network)
    module.eval()
    path = export_module(module, tmp_path / "model.onnx")
    rebuilt, meta = network_from_onnx(path)
    assert meta["network"] == network
    images = torch.rand(shape, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        if model == "ctc":
            widths = torch.tensor([shape[3], shape[3] - 30])
            expected, ours = module.network(images, widths), rebuilt(images, widths)
            real = (
                torch.arange(expected.shape[1])[None]
                < module.network.output_lengths(widths)[:, None]
            )
            expected, ours = expected[real], ours[real]
        else:
            expected, ours = module.network(images), rebuilt(images)
    assert torch.allclose(ours, expected, atol=1e-4)
    # Layers the exporter does not fold come back exactly, not merely close.
    original = module.network.state_dict()
    for name, tensor in rebuilt.state_dict().items():
        if "lstm" in name or "classifier" in name or (network == "mlp" and "running" not in name):
            assert torch.equal(tensor, original[name]), name


@pytest.mark.parametrize("kind", ["line", "char"])
def test_bundled_models_read_back_as_onnx_runtime_runs_them(kind: str) -> None:
    path = MODELS_DIR / f"{kind}.onnx"
    network, meta = network_from_onnx(path)
    height = meta["input_height"]
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(5)
    if kind == "line":
        images = rng.random((1, 1, height, 333), dtype=np.float32)
        widths = np.array([333])
        expected = session.run(None, {"images": images, "widths": widths})[0]
        with torch.no_grad():
            ours = network(torch.from_numpy(images), torch.from_numpy(widths)).log_softmax(-1)
    else:
        images = rng.random((3, 1, height, height), dtype=np.float32)
        expected = session.run(None, {"images": images})[0]
        with torch.no_grad():
            ours = network(torch.from_numpy(images)).softmax(-1)
    np.testing.assert_allclose(ours.numpy(), expected, atol=1e-4)


def test_a_wrong_reading_is_caught_by_the_output_check(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(onnx_weights, "_ONNX_TO_TORCH_GATES", [0, 1, 2, 3])
    with pytest.raises(ConfigError, match="outputs differ from ONNX Runtime"):
        network_from_onnx(MODELS_DIR / "line.onnx")


def test_what_cannot_be_read_back_says_why(tmp_path: Path) -> None:
    shutil.copy(MODELS_DIR / "line.onnx", tmp_path / "lonely.onnx")
    with pytest.raises(ConfigError, match=r"needs its \.json beside"):
        network_from_onnx(tmp_path / "lonely.onnx")
    # A network this reader does not know the layers of (attention, layer norms).
    shutil.copy(MODELS_DIR / "line.onnx", tmp_path / "model.onnx")
    meta = {"network": "transformer", "network_args": {"num_classes": 83}, "input_height": 32}
    (tmp_path / "model.json").write_text(json.dumps(meta))
    with pytest.raises(ConfigError, match="fine-tune it from its checkpoint instead"):
        network_from_onnx(tmp_path / "model.onnx")
    # A JSON that describes another network than the graph holds.
    meta = {
        "network": "crnn",
        "network_args": {"num_classes": 83, "channels": [16, 32, 64, 96]},
        "input_height": 32,
        "kind": "line",
    }
    (tmp_path / "model.json").write_text(json.dumps(meta))
    with pytest.raises(ConfigError, match="does not match the network its"):
        network_from_onnx(tmp_path / "model.onnx")


@pytest.mark.parametrize(
    ("content", "reason"),
    [(b"junk\n", "Protobuf parsing failed"), (b"", "the file is empty")],
)
def test_a_corrupt_onnx_file_is_named_with_why(tmp_path: Path, content: bytes, reason: str) -> None:
    """init.weights=corrupt.onnx: a clear error, not protobuf's DecodeError."""
    shutil.copy(MODELS_DIR / "line.json", tmp_path / "corrupt.json")
    (tmp_path / "corrupt.onnx").write_bytes(content)
    expected = rf"corrupt\.onnx is not a readable ONNX model \({reason}"
    with pytest.raises(ConfigError, match=expected):
        network_from_onnx(tmp_path / "corrupt.onnx")
