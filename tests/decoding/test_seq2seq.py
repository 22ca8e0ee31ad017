"""The NumPy loop that drives an exported seq2seq model agrees with PyTorch's decoding."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from tests.networks.test_transformer import randomise_batch_norm, small_network
from text_recognizer.charset import DEFAULT_CHARSET
from text_recognizer.decoding.seq2seq import seq2seq_decode, texts_and_confidences
from text_recognizer.export import export_seq2seq_graphs

ort = pytest.importorskip("onnxruntime")


@pytest.mark.parametrize("beam_size", [1, 3])
@pytest.mark.parametrize("seed", [1, 2])
def test_onnx_loop_decodes_as_pytorch_does(tmp_path: Path, beam_size: int, seed: int) -> None:
    torch.set_num_threads(1)
    network = small_network(seed, max_length=12)
    randomise_batch_norm(network)
    export_seq2seq_graphs(network, tmp_path / "encoder.onnx", tmp_path / "step.onnx")
    encoder, step_graph = (
        ort.InferenceSession(str(tmp_path / name), providers=["CPUExecutionProvider"])
        for name in ("encoder.onnx", "step.onnx")
    )

    def step(
        token: np.ndarray, cache: np.ndarray, keys_values: np.ndarray, valid: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        inputs = {"token": token, "cache": cache, "memory_keys_values": keys_values}
        log_probs, cache = step_graph.run(None, {**inputs, "memory_valid": valid})
        return log_probs, cache

    torch.manual_seed(seed)
    images = torch.rand(3, 1, 32, 160)
    widths = torch.tensor([160, 96, 130])
    for i, width in enumerate(widths.tolist()):
        images[i, ..., width:] = 0
    keys_values, valid = encoder.run(None, {"images": images.numpy(), "widths": widths.numpy()})
    tokens, scores = seq2seq_decode(step, keys_values, valid, DEFAULT_CHARSET, 12, beam_size)
    expected_tokens, expected_scores = network.generate(images, widths, 12, beam_size)

    assert tokens.tolist() == expected_tokens.tolist()
    np.testing.assert_allclose(scores, expected_scores.numpy(), atol=1e-4)
    # Some line must say something, or the comparison shows little.
    read = texts_and_confidences(tokens.tolist(), scores.tolist(), DEFAULT_CHARSET)
    assert any(text for text, _ in read)
    assert all(0 < confidence <= 1 for _, confidence in read)


def test_texts_stop_at_end_and_confidence_is_the_geometric_mean() -> None:
    a, b = DEFAULT_CHARSET.encode("ab")
    rows = [[a, b, DEFAULT_CHARSET.end, DEFAULT_CHARSET.pad], [b, b, b, b]]
    read = texts_and_confidences(rows, [np.log(0.5), 0.0], DEFAULT_CHARSET)
    assert read == [("ab", pytest.approx(0.5)), ("bbbb", 1.0)]


@pytest.mark.parametrize(
    ("change", "said"),
    [
        ({"beam_size": 0}, "beam_size must be a whole number, 1 or more; got 0"),
        ({"max_length": 0}, "max_length must be a whole number, 1 or more; got 0"),
        ({"memory_keys_values": np.zeros((2, 3, 4, 5, 8))}, r"got shape \(2, 3, 4, 5, 8\)"),
        ({"memory_valid": np.ones((2, 5), bool)}, r"\[batch, memory\] = \[3, 5\].*\(2, 5\)"),
    ],
)
def test_wrong_arguments_are_named_before_any_step(change: dict[str, object], said: str) -> None:
    """A beam of 0 failed on an empty argmax, keys and values of one axis too few on an
    unpacking, and a memory_valid of another batch decoded that many lines, unsaid."""

    def step(*_: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        raise AssertionError("the step must not run")

    arguments: dict[str, object] = {
        "memory_keys_values": np.zeros((2, 2, 3, 4, 5, 8), np.float32),
        "memory_valid": np.ones((3, 5), bool),
        "charset": DEFAULT_CHARSET,
        "max_length": 10,
        "beam_size": 1,
    }
    with pytest.raises(ValueError, match=said):
        seq2seq_decode(step, **{**arguments, **change})  # type: ignore[arg-type]
