"""Speed of the line networks on a CPU, and what CTC beam search + a character LM buy.

For each network config: parameters, training throughput (lines/s: forward + CTC loss
+ backward + AdamW step, batch 32 of random height-32 lines ~400 px wide, 2 threads),
and inference latency at batch 1 on one thread in PyTorch eager and in ONNX Runtime.
Wall-clock times are medians of the repeats (best in brackets); one-thread figures also
come as CPU time, which ignores other processes' share of a busy core (see ``Timing``).

With ``--decoding``: sentences of the shipped corpus (every 10th held out) become noisy
CTC posteriors (each character 1-2 frames, blanks between, 15% of characters with a
rival that may outscore it: a random character, or a look-alike such as ``a``/``o``),
decoded greedily, by beam search, and by beam search with a character 5-gram LM built
from the other sentences. The noise is synthetic and kinder to an LM than a real
model's errors (a real error's rival is often also plausible text): re-measure on a
trained model's outputs before quoting the gain.

    python benchmarks/line_model_speed.py              # networks only, < 2 min
    python benchmarks/line_model_speed.py --decoding   # + decoders (first run builds the LM)
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from text_recognizer.charset import DEFAULT_CHARSET
from text_recognizer.networks import NETWORKS

CONFIGS: list[tuple[str, str, dict[str, Any]]] = [
    ("line_cnn", "line_cnn", {}),
    ("crnn small (16-32-48-96, h64)", "crnn", {"channels": [16, 32, 48, 96], "lstm_hidden": 64}),
    ("crnn default (16-32-64-96, h64)", "crnn", {}),
    ("crnn 16-32-64-128, h96", "crnn", {"channels": [16, 32, 64, 128], "lstm_hidden": 96}),
    (
        "crnn shipped (16-32-64-128, blocks 1-2-1, h96)",
        "crnn",
        {"channels": [16, 32, 64, 128], "blocks": [1, 2, 1], "lstm_hidden": 96},
    ),
    ("crnn wide (24-48-96-160, h128)", "crnn", {"channels": [24, 48, 96, 160], "lstm_hidden": 128}),
]


@dataclass(frozen=True)
class Timing:
    """Seconds per call: wall-clock median and best, and the median CPU time of this process.

    On one thread, CPU time ignores the time other processes hold the core, so it is the
    load-proof estimate on a shared machine; with 2 threads it also counts spin-waiting.
    """

    median: float
    best: float
    cpu: float


def timed(function: Callable[[], object], repeats: int) -> Timing:
    """Time ``repeats`` calls after one warm-up call."""
    function()
    wall, cpu = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        function()
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return Timing(statistics.median(wall), min(wall), statistics.median(cpu))


def random_batch(
    batch_size: int, width: int, rng: np.random.Generator
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Lines of width ~``width`` (±10%), right-padded, with ~10 px per target character."""
    widths = torch.from_numpy(rng.integers(int(width * 0.9), int(width * 1.1) + 1, batch_size))
    images = torch.zeros(batch_size, 1, 32, int(widths.max()))
    for i, w in enumerate(widths.tolist()):
        images[i, :, :, :w] = torch.rand(1, 32, w)
    lengths = widths // 10
    targets = torch.randint(4, len(DEFAULT_CHARSET), (batch_size, int(lengths.max())))
    return images, widths, targets, lengths


def training_step_time(
    network: nn.Module, batch_size: int, width: int, steps: int, threads: int, bf16: bool = False
) -> Timing:
    """One training step; ``bf16`` runs the forward pass under bfloat16 autocast, as
    ``trainer.precision: bf16-mixed`` does (weights and loss stay float32)."""
    torch.set_num_threads(threads)
    network.train()
    optimizer = torch.optim.AdamW(network.parameters(), lr=1e-3)
    images, widths, targets, lengths = random_batch(batch_size, width, np.random.default_rng(0))
    frames = network.output_lengths(widths)  # type: ignore[operator]

    def step() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            logits = network(images, widths)
        log_probs = logits.float().log_softmax(-1)
        loss = F.ctc_loss(log_probs.transpose(0, 1), targets, frames, lengths, zero_infinity=True)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    return timed(step, steps)


def inference_time(network: nn.Module, width: int, repeats: int) -> tuple[Timing, Timing]:
    """(PyTorch eager, ONNX Runtime) seconds per line at batch 1 on one thread."""
    import onnxruntime as ort

    torch.set_num_threads(1)
    network.eval()
    line = torch.rand(1, 1, 32, width)
    with torch.inference_mode():
        eager = timed(lambda: network(line), repeats)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "line.onnx"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the legacy exporter's deprecation notice
            torch.onnx.export(
                network,
                (line,),
                str(path),
                input_names=["images"],
                output_names=["logits"],
                dynamic_axes={"images": {0: "batch", 3: "width"}},
                opset_version=17,
                dynamo=False,
            )
        options = ort.SessionOptions()
        options.intra_op_num_threads = options.inter_op_num_threads = 1
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        feed = {"images": line.numpy()}
        onnx = timed(lambda: session.run(None, feed), repeats)
    return eager, onnx


def benchmark_networks(args: argparse.Namespace) -> None:
    torch.manual_seed(0)
    print(
        f"training: batch {args.batch_size}, width ~{args.width} (±10%), {args.steps} steps, "
        f"{args.threads} threads (wall: median, best) and 1 thread (CPU time); "
        f"inference: batch 1, width {args.width}, 1 thread, {args.repeats} runs "
        "(wall median, CPU time)\n"
    )
    bf16_header = (
        f" train lines/s bf16-mixed, {args.threads} thr | bf16/fp32 |" if args.bf16 else ""
    )
    print(
        f"| network | params | train lines/s, {args.threads} thr |{bf16_header} train lines/s, "
        "1 thr CPU | torch ms/line | ORT ms/line | torch/ORT (CPU) |\n"
        f"|---|---:|---:|{'---:|---:|' if args.bf16 else ''}---:|---:|---:|---:|"
    )
    for label, name, config in CONFIGS:
        network = NETWORKS.build(name, config, num_classes=len(DEFAULT_CHARSET))
        params = sum(p.numel() for p in network.parameters())
        batch = args.batch_size
        train = training_step_time(network, batch, args.width, args.steps, args.threads)
        bf16_cells = ""
        if args.bf16:
            fast = training_step_time(network, batch, args.width, args.steps, args.threads, True)
            bf16_cells = (
                f"| {batch / fast.median:.0f} ({batch / fast.best:.0f}) "
                f"| {train.median / fast.median:.2f}x "
            )
        single = training_step_time(network, batch, args.width, args.steps, 1)
        eager, onnx = inference_time(network, args.width, args.repeats)
        print(
            f"| {label} | {params / 1e6:.2f}M "
            f"| {batch / train.median:.0f} ({batch / train.best:.0f}) {bf16_cells}"
            f"| {batch / single.cpu:.0f} "
            f"| {1e3 * eager.median:.1f} ({1e3 * eager.cpu:.1f}) "
            f"| {1e3 * onnx.median:.1f} ({1e3 * onnx.cpu:.1f}) "
            f"| {eager.cpu / onnx.cpu:.1f}x |",
            flush=True,
        )


# Characters a handwriting model plausibly confuses; the rival of a corrupted character.
LOOKALIKES = dict(
    zip(
        "aoecnhulIl1rvftsgqbdimwyj0OS5zZB8",
        "oacehnvIl1lvrtf5qgdbjwmjyO0S5Zz8B",
        strict=True,
    )
)


def noisy_posteriors(
    texts: list[str], rng: np.random.Generator, lookalikes: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Logits ``[B, T, C]`` and frame counts for ``texts`` (noise model in the module docstring).

    With ``lookalikes`` a corrupted character's rival is its look-alike (when it has one),
    which is harder for an LM to veto than a random character.
    """
    charset = DEFAULT_CHARSET
    characters = charset.characters
    lines = []
    for text in texts:
        frames: list[tuple[int, int | None]] = []
        previous = None
        for char in text:
            token = charset.index(char)
            if token == previous or rng.random() < 0.5:  # a repeat needs a blank between
                frames.append((charset.blank, None))
            rival = None
            if rng.random() < 0.15:
                fallback = characters[int(rng.integers(len(characters)))]
                rival = charset.index(LOOKALIKES.get(char, fallback) if lookalikes else fallback)
            frames += [(token, rival)] * int(rng.integers(1, 3))
            previous = token
        frames.append((charset.blank, None))
        logits = rng.normal(0.0, 1.0, (len(frames), len(charset))).astype(np.float32)
        for t, (token, rival) in enumerate(frames):
            logits[t, token] += 6.0
            if rival is not None:
                logits[t, rival] += 6.0 + rng.uniform(-1.0, 2.0)
        lines.append(logits)
    lengths = np.array([len(x) for x in lines])
    batch = np.full((len(lines), int(lengths.max()), len(charset)), -1e4, np.float32)
    batch[:, :, charset.blank] = 0.0
    for i, logits in enumerate(lines):
        batch[i, : len(logits)] = logits
    return batch, lengths


def benchmark_decoding(args: argparse.Namespace) -> None:
    from text_recognizer.data.sources.corpus import load_sentences
    from text_recognizer.decoding import CharNgramLm, beam_search_decode, greedy_ctc_decode
    from text_recognizer.metrics import cer, wer

    sentences = load_sentences("default")
    train = [s for i, s in enumerate(sentences) if i % 10]
    held_out = [s for i, s in enumerate(sentences) if i % 10 == 0]
    start = time.perf_counter()
    lm = CharNgramLm.build(train, order=args.lm_order)
    print(f"\nLM: {lm.path} ({len(train)} sentences, {time.perf_counter() - start:.1f} s)")
    lm.kenlm()  # load the ARPA file before timing

    def piece(sentence: str, limit: int = 45) -> str:
        cut = sentence[: limit + 1].rfind(" ") if len(sentence) > limit else len(sentence)
        return sentence[: cut if cut > 0 else limit]

    texts = [piece(s) for s in held_out[: args.lines]]
    decoders: list[tuple[str, dict[str, Any] | None]] = [
        ("greedy", None),
        ("beam 10, no LM", {"beam_size": 10}),
    ]
    decoders += [
        (
            f"beam 10 + {args.lm_order}-gram LM, weight {w}",
            {"beam_size": 10, "lm": lm, "lm_weight": w},
        )
        for w in (0.5, 1.0, 1.5)
    ]
    decoders.append((f"beam 32 + {args.lm_order}-gram LM, weight 1.0", {"beam_size": 32, "lm": lm}))
    torch.set_num_threads(1)
    for lookalikes in (False, True):
        logits, lengths = noisy_posteriors(texts, np.random.default_rng(0), lookalikes)
        print(
            f"\n{len(texts)} held-out lines, {lengths.mean():.0f} frames on average, "
            f"{'look-alike' if lookalikes else 'random'} rivals, 1 thread\n\n"
            "| decoder | CER | WER | ms/line (CPU ms/line) |\n|---|---:|---:|---:|"
        )
        for label, options in decoders:
            start, start_cpu = time.perf_counter(), time.process_time()
            if options is None:
                decoded = greedy_ctc_decode(logits, lengths)
            else:
                decoded = beam_search_decode(logits, lengths, **options)
            wall = 1e3 * (time.perf_counter() - start) / len(texts)
            cpu = 1e3 * (time.process_time() - start_cpu) / len(texts)
            predictions = [text for text, _ in decoded]
            print(
                f"| {label} | {cer(predictions, texts):.4f} | {wer(predictions, texts):.4f} "
                f"| {wall:.2f} ({cpu:.2f}) |",
                flush=True,
            )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--width", type=int, default=400, help="line width in pixels")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2, help="threads for training")
    parser.add_argument("--steps", type=int, default=5, help="timed training steps per network")
    parser.add_argument("--repeats", type=int, default=30, help="timed inference runs per network")
    parser.add_argument(
        "--bf16", action="store_true", help="also time training steps under bfloat16 autocast"
    )
    parser.add_argument("--decoding", action="store_true", help="also benchmark the decoders")
    parser.add_argument("--no-networks", action="store_true", help="skip the network table")
    parser.add_argument("--lines", type=int, default=400, help="held-out lines to decode")
    parser.add_argument("--lm-order", type=int, default=5)
    args = parser.parse_args(argv)
    if args.no_networks and not args.decoding:
        parser.error("--no-networks leaves nothing to measure: add --decoding")
    if not args.no_networks:
        benchmark_networks(args)
    if args.decoding:
        benchmark_decoding(args)


if __name__ == "__main__":
    main()
