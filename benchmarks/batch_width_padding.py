"""Training-step time of the shipped line network when batch widths are rounded up.

Cached lines vary in width, so nearly every training batch has a new width, and oneDNN
builds (JIT-compiles) convolution kernels per shape. Padding each batch with background
up to a multiple of ``M`` pixels (the line datasets' ``width_multiple``) costs a little
more arithmetic and lets the kernels be reused. Each setting runs in its own process
(the kernel cache is per process), in turn, for several rounds: the median of the
rounds is the figure, the spread shows the host's noise. Real batches of the shipped
config (cached ``synthetic_lines``, width stretch, page cuts, fine pens; 32 lines), the
shipped network, bfloat16 autocast where the CPU has it, CTC loss, gradient clipping
and AdamW as in training, 2 threads.

    python benchmarks/batch_width_padding.py           # multiples 1, 8, 32, 64
    python benchmarks/batch_width_padding.py --multiple 1 --multiple 32 --rounds 5
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any


def measure(multiple: int, steps: int, num_train: int, threads: int) -> dict[str, float]:
    """ms per training step, and batch widths seen, with widths rounded up to ``multiple``."""
    import torch
    import torch.nn.functional as F

    from text_recognizer.data.synthetic_lines import SyntheticLines
    from text_recognizer.networks import NETWORKS
    from text_recognizer.training.run import cpu_has_bf16

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    data = SyntheticLines(
        num_train=num_train,
        seed=42,
        stroke_fraction=0.3,
        batch_size=32,
        width_stretch=[0.6, 1.6],
        page_cuts=0.25,
        fine_pens=0.3,
        width_multiple=multiple,
    )
    data.prepare_data()
    data.setup("fit")
    network = NETWORKS.build(
        "crnn",
        {"channels": [16, 32, 64, 128], "blocks": [1, 2, 1], "lstm_hidden": 96, "dropout": 0.0},
    )
    optimizer = torch.optim.AdamW(network.parameters(), lr=1e-3)

    def epochs() -> Iterator[Any]:
        """Batch after batch, epoch after epoch: a small cache has fewer than the steps."""
        while True:
            count = 0
            for batch in data.train_dataloader():
                count += 1
                yield batch
            if not count:
                raise SystemExit(f"--num-train {num_train} makes no batch of 32: raise it")

    batches = epochs()
    bf16 = cpu_has_bf16()
    widths_seen: set[int] = set()

    def step() -> None:
        images, widths, targets, lengths = next(batches)
        widths_seen.add(images.shape[-1])
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            logits = network(images, widths)
        log_probs = F.log_softmax(logits.float(), dim=-1)
        frames = network.output_lengths(widths).clamp(max=log_probs.shape[1])
        loss = F.ctc_loss(log_probs.transpose(0, 1), targets, frames, lengths, zero_infinity=True)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(network.parameters(), 5.0)
        optimizer.step()

    for _ in range(10):
        step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return {
        "ms_per_step": (time.perf_counter() - start) / steps * 1000,
        "distinct_widths": len(widths_seen),
        "bf16": float(bf16),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--multiple", type=int, action="append", help="default: 1 8 32 64")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=150, help="timed steps per process")
    parser.add_argument(
        "--num-train",
        type=int,
        default=300_000,
        help="cached training lines (built the first time: the default takes minutes)",
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child is not None:
        print(json.dumps(measure(args.child, args.steps, args.num_train, args.threads)))
        return
    multiples = args.multiple or [1, 8, 32, 64]
    times: dict[int, list[float]] = {m: [] for m in multiples}
    distinct: dict[int, int] = {}
    for round_index in range(args.rounds):
        # rotate the order so no setting always runs first (the host's speed drifts)
        order = (
            multiples[round_index % len(multiples) :] + multiples[: round_index % len(multiples)]
        )
        for multiple in order:
            command = [
                sys.executable, __file__, "--child", str(multiple), "--steps", str(args.steps),
                "--num-train", str(args.num_train), "--threads", str(args.threads),
            ]  # fmt: skip
            # stderr passes through: a cache build's progress, or why a setting failed
            result = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=False)
            if result.returncode:
                raise SystemExit(f"multiple {multiple} failed (its error is above)")
            figures = json.loads(result.stdout.strip().splitlines()[-1])
            times[multiple].append(figures["ms_per_step"])
            distinct[multiple] = int(figures["distinct_widths"])
            print(
                f"round {round_index + 1}, multiple {multiple}: "
                f"{figures['ms_per_step']:.0f} ms/step ({distinct[multiple]} batch widths)",
                flush=True,
            )
    base = statistics.median(times[multiples[0]])
    print(f"\n| batch width rounded up to | ms/step (median of {args.rounds}) | rounds | "
          f"distinct widths in {args.steps + 10} steps | vs {multiples[0]} |")  # fmt: skip
    print("|---:|---:|---|---:|---:|")
    for multiple in multiples:
        median = statistics.median(times[multiple])
        rounds = ", ".join(f"{t:.0f}" for t in times[multiple])
        ratio = base / median
        print(f"| {multiple} | {median:.0f} | {rounds} | {distinct[multiple]} | {ratio:.2f}x |")


if __name__ == "__main__":
    main()
