"""TransformerRecognizer: shapes, masks, decoding and ONNX export parity."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from text_recognizer.charset import DEFAULT_CHARSET
from text_recognizer.export import export_seq2seq_graphs
from text_recognizer.networks import NETWORKS
from text_recognizer.networks.transformer import TransformerRecognizer, positional_encoding_2d

SMALL = {"d_model": 32, "num_heads": 2, "dim_feedforward": 64, "channels": (8, 8, 16, 32)}
START, END, PAD = DEFAULT_CHARSET.start, DEFAULT_CHARSET.end, DEFAULT_CHARSET.pad


@pytest.fixture(autouse=True)
def one_thread() -> None:
    torch.set_num_threads(1)


def small_network(seed: int = 0, **overrides: object) -> TransformerRecognizer:
    torch.manual_seed(seed)
    return TransformerRecognizer(**{**SMALL, **overrides}).eval()  # type: ignore[arg-type]


def randomise_batch_norm(network: torch.nn.Module) -> None:
    """Move every BN off its identity init, so blank background no longer maps to zero
    features (as after training) and padding could leak into real columns."""
    for module in network.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.uniform_(-0.3, 0.3)
            module.running_mean.uniform_(-0.2, 0.2)
            module.running_var.uniform_(0.5, 1.5)


def tokens_of(*texts: str) -> torch.Tensor:
    """``<start> + text``, right-padded with ``<pad>``."""
    rows = [[START, *DEFAULT_CHARSET.encode(t)] for t in texts]
    out = torch.full((len(rows), max(map(len, rows))), PAD)
    for i, row in enumerate(rows):
        out[i, : len(row)] = torch.tensor(row)
    return out


def gap(a: torch.Tensor, b: torch.Tensor) -> float:
    """Largest difference between two logit tensors, over the finite (emittable) classes."""
    return float((a - b).detach().nan_to_num(0.0).abs().max())


def mean_log_prob(
    network: TransformerRecognizer, images: torch.Tensor, emitted: torch.Tensor
) -> torch.Tensor:
    """Re-score generated sequences by teacher forcing: mean log-prob up to and with <end>."""
    inputs = torch.cat([torch.full((len(emitted), 1), START), emitted[:, :-1]], dim=1)
    log_probs = torch.log_softmax(network(images, inputs), dim=-1)
    picked = log_probs.gather(2, emitted[..., None]).squeeze(2)
    real = emitted != PAD
    return (picked * real).sum(1) / real.sum(1)


def test_registered_and_shapes() -> None:
    network = NETWORKS.build("transformer", {**SMALL, "num_classes": 83})
    assert isinstance(network, TransformerRecognizer)
    network.eval()
    images = torch.rand(3, 1, 32, 96)
    logits = network(images, tokens_of("ab", "hello", ""))
    assert logits.shape == (3, 6, 83)
    memory, valid = network.encode(images, torch.tensor([96, 64, 10]))
    rows, columns = network.encoder.output_size(32, 96)
    assert memory.shape == (3, rows * columns, 32)
    assert valid.shape == (3, rows * columns) and valid.dtype == torch.bool
    assert valid.sum(1).tolist() == [rows * 24, rows * 16, rows * 3]


def test_rejects_bad_input() -> None:
    network = small_network()
    with pytest.raises(ValueError, match=r"\[B, 1, 32, W\]"):
        network.encode(torch.rand(1, 1, 28, 64))
    with pytest.raises(ValueError, match="max_length"):
        small_network(max_length=4)(torch.rand(1, 1, 32, 64), tokens_of("abcdef"))
    with pytest.raises(ValueError, match="multiple of 4"):
        TransformerRecognizer(d_model=30, num_heads=2)
    with pytest.raises(ValueError, match="beam_size"):
        network.generate(torch.rand(1, 1, 32, 64), beam_size=0)


def test_positional_encoding_is_2d_and_unique() -> None:
    encoding = positional_encoding_2d(3, 7, 16, torch.device("cpu"))
    assert encoding.shape == (16, 3, 7)
    # The first half depends only on the row, the second only on the column.
    assert torch.equal(encoding[:8], encoding[:8, :, :1].expand(-1, -1, 7))
    assert torch.equal(encoding[8:], encoding[8:, :1, :].expand(-1, 3, -1))
    flat = encoding.flatten(1).T
    assert len(torch.unique(flat, dim=0)) == 21  # every position distinguishable


def test_causal_mask_hides_future_tokens() -> None:
    network = small_network()
    images = torch.rand(2, 1, 32, 80)
    before = network(images, tokens_of("abcdef", "uvwxyz"))
    after = network(images, tokens_of("abcXYZ", "uvw123"))
    torch.testing.assert_close(before[:, :4], after[:, :4])  # <start> + 3 shared characters
    assert gap(before[:, 4:], after[:, 4:]) > 1e-3  # later tokens do matter


def test_right_padding_does_not_change_outputs() -> None:
    network = small_network()
    randomise_batch_norm(network)
    torch.manual_seed(1)
    image = torch.zeros(1, 1, 32, 100)
    image[..., 8:24, 10:90] = torch.rand(1, 1, 16, 80)
    padded = torch.zeros(2, 1, 32, 220)
    padded[0, ..., :100] = image[0]
    padded[1] = torch.rand(1, 32, 220)  # a wide neighbour in the same batch
    tokens = tokens_of("hello", "world")
    alone = network(image, tokens[:1])
    batched = network(padded, tokens, torch.tensor([100, 220]))[:1]
    # Only the convolutions' reach into the padding at the right edge differs.
    torch.testing.assert_close(batched, alone, atol=5e-3, rtol=0)
    unmasked = network(padded, tokens)[:1]
    assert gap(unmasked, alone) > 5e-2  # the mask is what makes them agree


def test_greedy_stops_at_end_and_scores_honestly() -> None:
    network = small_network()
    torch.manual_seed(2)
    images = torch.rand(4, 1, 32, 64)
    tokens, scores = network.generate(images, max_length=12)
    assert tokens.shape[0] == 4 and tokens.shape[1] <= 13 and scores.shape == (4,)
    for row in tokens.tolist():
        assert START not in row
        if END in row:
            assert PAD not in row[: row.index(END)]
            assert set(row[row.index(END) + 1 :]) <= {PAD}
        else:
            assert len(row) == 13
    torch.testing.assert_close(scores, mean_log_prob(network, images, tokens))


def test_beam_of_one_equals_greedy() -> None:
    network = small_network(3)
    images = torch.rand(5, 1, 32, 72)
    widths = torch.tensor([72, 60, 40, 72, 20])
    greedy_tokens, greedy_scores = network.greedy_decode(images, widths, 10)
    beam_tokens, beam_scores = network.beam_search(images, widths, 10, beam_size=1)
    assert torch.equal(beam_tokens, greedy_tokens)
    torch.testing.assert_close(beam_scores, greedy_scores)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_beam_search_finds_at_least_as_likely_sequences(seed: int) -> None:
    # Few classes and sharp distributions make greedy and beam disagree often.
    network = small_network(seed, num_classes=12, max_length=10)
    with torch.no_grad():
        network.classifier.weight.mul_(10)
    images = torch.rand(6, 1, 32, 64)
    _, greedy_scores = network.generate(images, max_length=10)
    for beam_size in (2, 4):
        tokens, scores = network.generate(images, max_length=10, beam_size=beam_size)
        assert (scores >= greedy_scores - 1e-5).all()
        torch.testing.assert_close(scores, mean_log_prob(network, images, tokens))


def test_cached_steps_match_teacher_forcing() -> None:
    network = small_network(5)
    images = torch.rand(2, 1, 32, 80)
    widths = torch.tensor([80, 50])
    tokens = tokens_of("hello", "abcde")
    expected = torch.log_softmax(network(images, tokens, widths), dim=-1)
    memory, valid = network.encode(images, widths)
    keys_values = network.memory_keys_values(memory)
    cache = network.empty_cache(keys_values)
    for position in range(tokens.shape[1]):
        log_probs, cache = network.decode_step(tokens[:, position], cache, keys_values, valid)
        torch.testing.assert_close(log_probs, expected[:, position], atol=1e-5, rtol=0)
    assert cache.shape[4] == tokens.shape[1]


def test_onnx_encoder_and_decoder_step_match_pytorch(tmp_path: Path) -> None:
    ort = pytest.importorskip("onnxruntime")
    network = small_network(4)
    randomise_batch_norm(network)
    network.train()  # export traces in eval mode and leaves the mode as it found it
    export_seq2seq_graphs(network, tmp_path / "encoder.onnx", tmp_path / "step.onnx")
    assert network.training
    network.eval()
    encoder, step = (
        ort.InferenceSession(str(tmp_path / name), providers=["CPUExecutionProvider"])
        for name in ("encoder.onnx", "step.onnx")
    )

    # Another batch size and width than traced, with right padding.
    images = torch.rand(2, 1, 32, 200)
    widths = torch.tensor([200, 120])
    images[1, ..., 120:] = 0
    onnx_keys_values, onnx_valid = encoder.run(
        None, {"images": images.numpy(), "widths": widths.numpy()}
    )
    memory, valid = network.encode(images, widths)
    keys_values = network.memory_keys_values(memory)
    np.testing.assert_allclose(onnx_keys_values, keys_values.detach().numpy(), atol=1e-4)
    np.testing.assert_array_equal(onnx_valid, valid.numpy())

    # The runtime loop of docs/models.md: greedy, one token per step, from an empty cache.
    token = np.full(2, START, dtype=np.int64)
    onnx_cache = network.empty_cache(keys_values).numpy()
    cache = network.empty_cache(keys_values)
    emitted = []
    for _ in range(8):
        log_probs, onnx_cache = step.run(
            None,
            {
                "token": token,
                "cache": onnx_cache,
                "memory_keys_values": onnx_keys_values,
                "memory_valid": onnx_valid,
            },
        )
        expected, cache = network.decode_step(torch.from_numpy(token), cache, keys_values, valid)
        np.testing.assert_allclose(log_probs, expected.detach().numpy(), atol=1e-4)
        token = log_probs.argmax(-1)
        emitted.append(token)
    generated, _ = network.generate(images, widths, max_length=7)
    for row, expected_row in zip(np.stack(emitted, 1).tolist(), generated.tolist(), strict=True):
        cut = expected_row.index(END) + 1 if END in expected_row else len(expected_row)
        assert row[:cut] == expected_row[:cut]
