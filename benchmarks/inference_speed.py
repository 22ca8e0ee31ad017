"""Per-image latency of the Recognizer at batch 1 on one thread: ONNX Runtime vs PyTorch.

Times the whole call a user makes (`recognize`: preprocessing, the network, decoding) on
the bundled sample images, after a warm-up, and prints the median per image side by side.

    python benchmarks/inference_speed.py                          # bundled ONNX models only
    python benchmarks/inference_speed.py --checkpoint RUN_DIR     # plus PyTorch eager on a run
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch

from text_recognizer.demo import read_labels
from text_recognizer.paths import MODELS_DIR, SAMPLES_DIR
from text_recognizer.recognizer import OnnxModel, Recognizer, TorchModel


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
    print(f"{'model':<28}{'kind':<6}{'runtime':<14}{'ms/image (median)':>18}")
    rows = []
    for path in sorted(MODELS_DIR.glob("*.onnx")):
        model = OnnxModel(path, threads=1)
        rows.append((path.name, model, "onnxruntime"))
    for checkpoint in args.checkpoint:
        rows.append((checkpoint.name, TorchModel(checkpoint), "torch eager"))
    for name, model, runtime in rows:
        kind = model.meta["kind"]
        images = [path for path, _ in read_labels(SAMPLES_DIR / f"{kind}s")]
        ms = median_ms(Recognizer([model]), images, kind, args.repeats)
        print(f"{name:<28}{kind:<6}{runtime:<14}{ms:>18.2f}")


if __name__ == "__main__":
    main()
