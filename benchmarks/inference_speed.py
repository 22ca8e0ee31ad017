"""Per-image latency of the Recognizer at batch 1 on one thread: ONNX Runtime vs PyTorch.

Times the whole call a user makes (`recognize`: preprocessing, the network, decoding) on
the bundled sample images, after a warm-up, and prints the median per image side by side.

    python benchmarks/inference_speed.py                          # bundled ONNX models only
    python benchmarks/inference_speed.py --checkpoint RUN_DIR     # plus PyTorch eager on a run

Lines are also timed with beam search (10) and beam search + the default character LM
(``Recognizer(beam_size=10, lm="default")``; the LM is built once, before timing), with
width search, and without deslanting or levelling, to show what those cost; and 128 lines
read by one ``recognize_batch`` call, per line.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path
from typing import Any

import torch

from text_recognizer.labels import read_labels
from text_recognizer.paths import MODELS_DIR, SAMPLES_DIR
from text_recognizer.recognizer import Model, OnnxModel, Recognizer, open_checkpoint


def median_ms(recognizer: Recognizer, images: list[Path], kind: str, repeats: int) -> float:
    for image in images:  # warm-up
        recognizer.recognize(image, kind=kind)  # type: ignore[arg-type]
    times = []
    for _ in range(repeats):
        for image in images:
            start = time.perf_counter()
            recognizer.recognize(image, kind=kind)  # type: ignore[arg-type]
            times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--checkpoint",
        type=Path,
        action="append",
        default=[],
        help="run folder or .ckpt (repeatable)",
    )
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"{'model':<40}{'kind':<6}{'runtime':<14}{'ms/image (median)':>18}")
    rows: list[tuple[str, Model, str, dict[str, Any]]] = []
    for path in sorted(MODELS_DIR.glob("*.onnx")):
        model = OnnxModel(path, threads=1)
        rows.append((path.name, model, "onnxruntime", {}))
        if model.meta["kind"] == "line":
            rows.append((f"{path.name} beam 10", model, "onnxruntime", {"beam_size": 10}))
            decoding = {"beam_size": 10, "lm": "default"}
            rows.append((f"{path.name} beam 10 + LM", model, "onnxruntime", decoding))
            searching = {"width_search": True}
            rows.append((f"{path.name} width search", model, "onnxruntime", searching))
            everything = {"width_search": True, "beam_size": 10, "lm": "default"}
            rows.append(
                (f"{path.name} width search + beam 10 + LM", model, "onnxruntime", everything)
            )
            # What levelling and deslanting cost: the same greedy path without them.
            rows.append((f"{path.name} no deslant", model, "onnxruntime", {"deslant": False}))
            plain = {"deskew": False, "deslant": False}
            rows.append((f"{path.name} neither", model, "onnxruntime", plain))
    for checkpoint in args.checkpoint:
        rows.append((checkpoint.name, open_checkpoint(checkpoint), "torch eager", {}))
    for name, model, runtime, decoding in rows:
        kind = model.meta["kind"]
        images = [row.image for row in read_labels(SAMPLES_DIR / f"{kind}s")]
        ms = median_ms(Recognizer([model], **decoding), images, kind, args.repeats)
        print(f"{name:<40}{kind:<6}{runtime:<14}{ms:>18.2f}")
    # Many lines at once: recognize_batch runs them LINE_BATCH at a time, sorted by width.
    model = OnnxModel(MODELS_DIR / "line.onnx", threads=1)
    lines = [row.image for row in read_labels(SAMPLES_DIR / "lines")] * 16
    recognizer = Recognizer([model])
    recognizer.recognize_batch(lines, "line")  # warm-up
    times = []
    for _ in range(max(1, args.repeats // 4)):
        start = time.perf_counter()
        recognizer.recognize_batch(lines, "line")
        times.append((time.perf_counter() - start) * 1000 / len(lines))
    name = f"line.onnx recognize_batch ({len(lines)} lines)"
    print(f"{name:<40}{'line':<6}{'onnxruntime':<14}{statistics.median(times):>18.2f}")


if __name__ == "__main__":
    main()
