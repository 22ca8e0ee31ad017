"""LineCnn and Crnn: shapes, frame counts, padding, ONNX parity and a memorisation run."""

from __future__ import annotations

import itertools
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from text_recognizer.charset import DEFAULT_CHARSET
from text_recognizer.decoding import greedy_ctc_decode
from text_recognizer.export import write_onnx
from text_recognizer.metrics import cer
from text_recognizer.networks import NETWORKS, Crnn, LineCnn

NUM_CLASSES = len(DEFAULT_CHARSET)
LINE_NETWORKS = [LineCnn, Crnn]


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)
    torch.manual_seed(0)


def randomise_batch_norm(network: nn.Module) -> nn.Module:
    """Fresh BN layers map 0 to 0; trained ones do not, which is what exposes padding leaks."""
    for module in network.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 1.5)
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.uniform_(-0.3, 0.3)
    return network.eval()


@pytest.mark.parametrize("network_class", LINE_NETWORKS)
@pytest.mark.parametrize("height", [28, 32, 64])
def test_frames_match_output_lengths(network_class: type[nn.Module], height: int) -> None:
    network = network_class(num_classes=NUM_CLASSES, input_height=height).eval()
    for width in (9, 17, 100, 401, 600):
        with torch.no_grad():
            logits = network(torch.rand(2, 1, height, width))
        assert logits.shape[0] == 2 and logits.shape[2] == NUM_CLASSES
        frames = network.output_lengths(torch.tensor([width, width]))
        assert frames.tolist() == [logits.shape[1]] * 2
        assert logits.shape[1] == -(-width // 4)  # time downsampling 4: ceil(W / 4)


@pytest.mark.parametrize("network_class", LINE_NETWORKS)
def test_enough_frames_for_ctc_on_typical_lines(network_class: type[nn.Module]) -> None:
    """At the narrowest typical handwriting (8 px/char) a 48-char line still aligns."""
    network = network_class(num_classes=NUM_CLASSES)
    text = "Bookkeeper Mississippi committee all well, too."  # many doubled letters
    repeats = sum(a == b for a, b in itertools.pairwise(text))
    frames = int(network.output_lengths(torch.tensor([8 * len(text)])))
    assert frames >= len(text) + repeats  # CTC's hard lower bound
    assert frames >= 2 * len(text)  # one frame per character plus a blank between


@pytest.mark.parametrize("network_class", LINE_NETWORKS)
def test_rejects_wrong_height(network_class: type[nn.Module]) -> None:
    network = network_class(num_classes=NUM_CLASSES, input_height=32)
    with pytest.raises(ValueError, match=r"\[B, 1, 32, W\]"):
        network(torch.rand(1, 1, 28, 100))


def test_registered_by_name_with_config_values() -> None:
    crnn = NETWORKS.build("crnn", {"lstm_hidden": "32", "channels": [8, 16, 16, 32]}, num_classes=7)
    assert isinstance(crnn, Crnn) and crnn.classifier.out_features == 7
    line_cnn = NETWORKS.build("line_cnn", {"window_width": 20}, num_classes=7)
    assert isinstance(line_cnn, LineCnn)
    with pytest.raises(ValueError, match="window_width"):
        LineCnn(window_width=24)


def test_line_cnn_padding_only_touches_frames_within_reach_of_the_edge() -> None:
    network = randomise_batch_norm(LineCnn(num_classes=NUM_CLASSES))
    line = torch.rand(1, 1, 32, 300)
    padded = F.pad(line, (0, 120))
    with torch.no_grad():
        alone, batched = network(line), network(padded)[:, : network(line).shape[1]]
    difference = (alone - batched).abs().amax(dim=-1)[0]
    # The window (28 px) plus the 3x3 convs reach ~5 frames into the padding; nothing earlier.
    assert difference[:-6].max() < 1e-5
    assert difference[-1] > 1e-4  # the test can see a leak


def test_crnn_with_widths_gives_a_padded_line_its_own_logits() -> None:
    """With widths the backward LSTM never reads padding; only the convs' reach remains."""
    network = randomise_batch_norm(Crnn(num_classes=NUM_CLASSES))
    widths = torch.tensor([403, 250, 101])
    batch = torch.zeros(3, 1, 32, 403)
    for i, width in enumerate(widths.tolist()):
        batch[i, :, :, :width] = torch.rand(1, 32, width)
    frames = network.output_lengths(widths)
    with torch.no_grad():
        with_widths, without = network(batch, widths), network(batch)
        for i, width in enumerate(widths.tolist()):
            alone = network(batch[i : i + 1, :, :, :width])[0]
            scale = alone.abs().mean()
            error = (with_widths[i, : frames[i]] - alone).abs().max() / scale
            leaky_error = (without[i, : frames[i]] - alone).abs().max() / scale
            assert error < 0.1
            if i > 0:  # a padded line: without widths the backward LSTM reads padding
                assert leaky_error > 2 * error


def export_onnx(network: nn.Module, path: Path, with_widths: bool) -> ort.InferenceSession:
    class WithWidths(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.network = network

        def forward(self, images: torch.Tensor, widths: torch.Tensor) -> torch.Tensor:
            return self.network(images, widths)  # type: ignore[no-any-return]

    module = WithWidths().eval() if with_widths else network.eval()
    args: tuple[torch.Tensor, ...] = (torch.rand(2, 1, 32, 96),)
    names, axes = (
        ["images"],
        {"images": {0: "batch", 3: "width"}, "logits": {0: "batch", 1: "time"}},
    )
    if with_widths:
        args, names = (*args, torch.tensor([96, 60])), ["images", "widths"]
        axes["widths"] = {0: "batch"}
    write_onnx(module, args, path, names, ["logits"], axes)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


@pytest.mark.parametrize(
    ("network_class", "with_widths"), [(LineCnn, False), (Crnn, False), (Crnn, True)]
)
def test_onnx_export_matches_pytorch_for_any_batch_and_width(
    network_class: type[nn.Module], with_widths: bool, tmp_path: Path
) -> None:
    network = randomise_batch_norm(network_class(num_classes=NUM_CLASSES))
    session = export_onnx(network, tmp_path / "line.onnx", with_widths)
    network.eval()  # export restores the wrapper's (training) mode on the network
    for batch, width in [(1, 57), (3, 517)]:
        images = torch.rand(batch, 1, 32, width)
        widths = torch.tensor([width] + [width - 40 * i for i in range(1, batch)])
        inputs = {"images": images.numpy()}
        if with_widths:
            inputs["widths"] = widths.numpy()
        with torch.no_grad():
            expected = network(images, widths if with_widths else None).numpy()
        (logits,) = session.run(None, inputs)
        assert logits.shape == expected.shape
        frames = network.output_lengths(widths)
        for i in range(batch):
            np.testing.assert_allclose(logits[i, : frames[i]], expected[i, : frames[i]], atol=1e-4)


def draw_line(text: str, height: int = 32) -> np.ndarray:
    """Bright text on black, as the datasets deliver lines."""
    font = cv2.FONT_HERSHEY_SIMPLEX
    (width, _), _ = cv2.getTextSize(text, font, 0.7, 1)
    image = np.zeros((height, width + 8), np.uint8)
    cv2.putText(image, text, (4, 23), font, 0.7, 255, 1, cv2.LINE_AA)
    return image


def test_crnn_memorises_four_lines() -> None:
    """The whole path (network, output_lengths, CTC, greedy decode) can learn: CER 0."""
    texts = ["hello", "CTC 42", "fox", "a-b c."]
    images = [draw_line(t) for t in texts]
    widths = torch.tensor([im.shape[1] for im in images])
    batch = torch.zeros(len(texts), 1, 32, int(widths.max()))
    for i, image in enumerate(images):
        batch[i, 0, :, : image.shape[1]] = torch.from_numpy(image / 255.0)
    targets = [torch.tensor(DEFAULT_CHARSET.encode(t)) for t in texts]
    target_lengths = torch.tensor([len(t) for t in targets])
    padded_targets = nn.utils.rnn.pad_sequence(targets, batch_first=True)
    network = Crnn(num_classes=NUM_CLASSES)
    optimizer = torch.optim.AdamW(network.parameters(), lr=5e-3)
    frames = network.output_lengths(widths)
    predictions: list[str] = []
    for step in range(300):
        network.train()
        log_probs = network(batch, widths).log_softmax(-1)
        loss = F.ctc_loss(log_probs.transpose(0, 1), padded_targets, frames, target_lengths)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % 10 == 9:
            network.eval()
            with torch.no_grad():
                decoded = greedy_ctc_decode(network(batch, widths), frames)
            predictions = [text for text, _ in decoded]
            if cer(predictions, texts) == 0:
                break
    assert predictions == texts
    assert all(0 < confidence <= 1 for _, confidence in decoded)


# Backward passes of a small CRNN (a strided 1x1 shortcut reads 4, then 8 channels) at
# the varying widths of bucketed line batches, in float32 and under bf16 autocast.
SMALL_CRNN_STEPS = """
import torch
from text_recognizer.networks import Crnn
torch.set_num_threads(1)
torch.manual_seed(0)
network = Crnn(num_classes=20, channels=[4, 8, 8, 16], lstm_hidden=16, dropout=0.0)
for bf16 in (False, True):
    for width in (97, 400, 731, 256, 1024):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            logits = network(torch.rand(32, 1, 32, width))
        logits.float().square().mean().backward()
print("trained", flush=True)
"""


def test_a_small_crnn_trains_without_a_native_crash() -> None:
    """On AVX512 hosts oneDNN's weight gradient of a strided 1x1 convolution with fewer than
    16 input channels, on channels-last tensors, corrupted memory: such a CRNN segfaulted
    or aborted ("double free or corruption") in its first training steps. In a process of
    its own, so that a crash fails this test rather than ending the test run."""
    import os
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-c", SMALL_CRNN_STEPS],
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "OMP_NUM_THREADS": "1"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert (result.returncode, result.stdout) == (0, "trained\n"), result.stderr[-2000:]


@pytest.mark.parametrize(
    ("channels", "channels_last"),
    [
        ([16, 32, 64, 128], True),  # the shipped line network keeps the faster layout
        ([16, 32, 64, 96], True),  # crnn's defaults
        ([4, 8, 8, 16], False),
        ([16, 15, 32, 64], False),  # the second stage's shortcut reads 15 channels
    ],
)
def test_small_encoders_keep_the_layout_onednn_computes_correctly(
    channels: list[int], channels_last: bool
) -> None:
    network = Crnn(num_classes=NUM_CLASSES, channels=channels)
    assert network.encoder.channels_last is channels_last
    weight = network.encoder.stages[0][0].conv1.weight  # 3x3: the two layouts differ
    assert weight.is_contiguous(memory_format=torch.channels_last) is channels_last
    assert weight.is_contiguous() is not channels_last
