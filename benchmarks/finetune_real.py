"""Fine-tuning the bundled line model on real handwriting: what it gains, what it forgets.

A user with their own labelled lines fine-tunes with ``configs/lines_finetune.yaml``.
Real lines are not on this machine, so this script makes them the way
``realdata_lines.py`` does, from the real characters in ``../shared/realdata`` (MNIST
digits, NIST vowels; never train a shipped model on them, never commit them), with
each character pool split in two halves: fine-tuning lines (train, val) are pasted from
one half, test lines from the other, so no test character image was trained on.

For the bundled model and for each ``--rehearsal`` setting it prints CER on the held-out
real digit and vowel lines and on the synthetic test split (default splits, held-out
hands: what fine-tuning may make the model forget), plus the training time.

    python benchmarks/finetune_real.py --rehearsal 0 --rehearsal 1000
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from realdata_lines import DEFAULT_REALDATA, compose, load_pools, random_text, write_folder

from text_recognizer.evaluate import evaluate
from text_recognizer.training.config import load_config
from text_recognizer.training.run import run_experiment

CONFIG = Path(__file__).parent.parent / "configs" / "lines_finetune.yaml"
Pool = dict[str, list[np.ndarray]]


def split_pools(realdata: Path, rng: np.random.Generator) -> dict[str, tuple[Pool, Pool]]:
    """Each set's samples per character, split into a fine-tuning half and a test half."""
    halves = {}
    for name, pool in load_pools(realdata).items():
        fit: Pool = {}
        held: Pool = {}
        for char, samples in pool.items():
            order = rng.permutation(len(samples))
            cut = len(samples) // 2
            fit[char] = [samples[i] for i in order[:cut]]
            held[char] = [samples[i] for i in order[cut:]]
        halves[name] = (fit, held)
    return halves


def make_lines(
    pool: Pool, count: int, rng: np.random.Generator
) -> tuple[list[np.ndarray], list[str]]:
    alphabet = "".join(sorted(pool))
    texts = [random_text(alphabet, rng) for _ in range(count)]
    return [compose(text, pool, rng) for text in texts], texts


def write_folders(root: Path, realdata: Path, train_lines: int, test_lines: int) -> None:
    """``root/finetune/{train,val,test}`` (digits and vowels mixed) and ``root/test_<set>``."""
    rng = np.random.default_rng(0)
    halves = split_pools(realdata, rng)
    for split, count in (("train", train_lines), ("val", 100)):
        images, texts = [], []
        for fit, _ in halves.values():
            more_images, more_texts = make_lines(fit, count // 2, rng)
            images += more_images
            texts += more_texts
        write_folder(root / "finetune" / split, images, texts)
    all_images, all_texts = [], []
    for name, (_, held) in halves.items():
        images, texts = make_lines(held, test_lines, rng)
        write_folder(root / f"test_{name}", images, texts)
        all_images += images
        all_texts += texts
    write_folder(root / "finetune" / "test", all_images, all_texts)


def scores(model: str | Path, root: Path, synthetic_lines: int) -> list[float]:
    """CER on the real digit and vowel test lines and on the synthetic test split."""
    figures = []
    for name in ("digits", "vowels"):
        report = evaluate(model, data="folder", data_args={"path": str(root / f"test_{name}")},
                          split="all")  # fmt: skip
        figures.append(report.metrics["cer"])
    # stream=true: the default test split without building the 300,000-line training cache.
    report = evaluate(model, data="synthetic_lines", data_args={"stream": True}, seed=42,
                      limit=synthetic_lines)  # fmt: skip
    figures.append(report.metrics["cer"])
    return figures


def finetune(folder: Path, rehearsal: int, overrides: list[str]) -> dict[str, Any]:
    """Run ``configs/lines_finetune.yaml`` on ``folder``; the run's summary."""
    settings = [f"data.args.path={folder}", f"data.args.rehearsal={rehearsal}"]
    config = load_config(CONFIG, [*settings, "callbacks.progress_bar=none", *overrides])
    return run_experiment(config)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--realdata", type=Path, default=DEFAULT_REALDATA)
    parser.add_argument("--train-lines", type=int, default=1000, help="real fine-tuning lines")
    parser.add_argument("--test-lines", type=int, default=300, help="real test lines per set")
    parser.add_argument("--synthetic-lines", type=int, default=2000, help="synthetic test lines")
    parser.add_argument(
        "--rehearsal", type=int, action="append", help="synthetic lines mixed in (repeatable)"
    )
    parser.add_argument("--set", action="append", default=[], help="config override, repeatable")
    parser.add_argument("--keep", type=Path, help="write the lines here instead of a temp dir")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as temporary:
        root = args.keep or Path(temporary)
        write_folders(root, args.realdata, args.train_lines, args.test_lines)
        print(
            f"| model | training | real digit lines | real vowel lines | synthetic test "
            f"({args.synthetic_lines}) |\n|---|---:|---:|---:|---:|"
        )
        digits, vowels, synthetic = scores("default", root, args.synthetic_lines)
        print(f"| bundled | - | {digits:.3f} | {vowels:.3f} | {synthetic:.3f} |", flush=True)
        for rehearsal in args.rehearsal or [0]:
            summary = finetune(root / "finetune", rehearsal, args.set)
            digits, vowels, synthetic = scores(summary["run_dir"], root, args.synthetic_lines)
            label = f"fine-tuned, {args.train_lines} real lines + {rehearsal} rehearsal"
            if args.set:
                label += f" ({', '.join(args.set)})"
            print(
                f"| {label} | {summary['training_time_s']:.0f} s | {digits:.3f} | {vowels:.3f} "
                f"| {synthetic:.3f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
