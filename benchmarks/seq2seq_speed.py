"""What reading a line costs a seq2seq (CNN + Transformer) model: ONNX Runtime vs PyTorch.

A seq2seq model runs its encoder once per line, then its decoder once per character (and
once more for ``<end>``), so a line's cost is ``encoder + (characters + 1) x step``. This
times both parts at batch 1 on one thread, on the bundled sample lines prepared as the
Recognizer prepares them, for the network ``configs/lines_transformer.yaml`` trains (its
weights do not change the cost of a step: untrained weights are timed), exported by
``text-recognizer export``'s code and driven by the Recognizer's NumPy loop.

    python benchmarks/seq2seq_speed.py [--repeats 50]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from text_recognizer.export import export_seq2seq_graphs
from text_recognizer.images import load_image
from text_recognizer.labels import read_labels
from text_recognizer.networks.transformer import TransformerRecognizer
from text_recognizer.paths import SAMPLES_DIR
from text_recognizer.preprocessing import prepare_line
from text_recognizer.recognizer import onnx_session

#: configs/lines_transformer.yaml's network.
NETWORK = {"d_model": 128, "num_layers": 2, "num_heads": 4, "dim_feedforward": 256}
START = TransformerRecognizer().start_index


def median_ms(run: Callable[[], object], repeats: int) -> float:
    run()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def time_onnx(
    encoder: Any, step: Any, line: np.ndarray, past: int, repeats: int
) -> tuple[float, float]:
    """The encoder's and one step's median ms on ``line``; the step after ``past`` tokens."""
    images, widths = line[None, None].astype(np.float32), np.array([line.shape[1]], np.int64)
    inputs = {"images": images, "widths": widths}
    keys_values, valid = encoder.run(None, inputs)
    shape = (*keys_values.shape[:4], past, keys_values.shape[5])
    feed = {
        "token": np.array([START], np.int64),
        "cache": np.zeros(shape, np.float32),
        "memory_keys_values": keys_values,
        "memory_valid": valid,
    }
    return (
        median_ms(lambda: encoder.run(None, inputs), 5),
        median_ms(lambda: step.run(None, feed), repeats),
    )


@torch.inference_mode()
def time_torch(
    network: TransformerRecognizer, line: np.ndarray, past: int, repeats: int
) -> tuple[float, float]:
    images, widths = torch.from_numpy(line[None, None]).float(), torch.tensor([line.shape[1]])
    memory, valid = network.encode(images, widths)
    keys_values = network.memory_keys_values(memory)
    shape = (*keys_values.shape[:4], past, keys_values.shape[5])
    cache, token = torch.zeros(shape), torch.tensor([START])
    return (
        median_ms(lambda: network.encode(images, widths), 5),
        median_ms(lambda: network.decode_step(token, cache, keys_values, valid), repeats),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=50)
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    network = TransformerRecognizer(**NETWORK).eval()  # type: ignore[arg-type]
    rows = read_labels(SAMPLES_DIR / "lines")
    lines = [prepare_line(load_image(row.image), network.input_height) for row in rows]
    characters = statistics.mean(len(row.text) for row in rows)
    past = int(characters) // 2  # a step costs more the more tokens came before: a mid-line one
    with tempfile.TemporaryDirectory() as folder:
        encoder_path, step_path = Path(folder) / "m.onnx", Path(folder) / "m.step.onnx"
        export_seq2seq_graphs(network, encoder_path, step_path)
        encoder, step = onnx_session(encoder_path, 1), onnx_session(step_path, 1)
        timed = {
            "onnxruntime": [time_onnx(encoder, step, line, past, args.repeats) for line in lines],
            "torch eager": [time_torch(network, line, past, args.repeats) for line in lines],
        }
    print(f"{len(lines)} sample lines, {characters:.0f} characters on average; batch 1, 1 thread")
    print(f"{'runtime':<14}{'encoder ms/line':>16}{'step ms/token':>14}{'ms per line':>13}")
    for name, times in timed.items():
        one = statistics.median(encoder_ms for encoder_ms, _ in times)
        each = statistics.median(step_ms for _, step_ms in times)
        print(f"{name:<14}{one:>16.2f}{each:>14.3f}{one + (characters + 1) * each:>13.1f}")


if __name__ == "__main__":
    main()
