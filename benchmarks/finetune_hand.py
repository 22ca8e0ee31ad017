"""Fine-tuning on one person's handwriting, simulated by one unseen font: the gain on that
hand, and what it costs on the synthetic test hands and on other new hands.

``finetune_real.py`` fine-tunes on real characters, but its lines are digit and vowel
strings; a user's own lines are English in one hand. This script takes one font the
project never trains on (from a folder, as ``unseen_hands.py`` does) as that hand:
``--train-lines`` lines of corpus text in it to fine-tune on, 100 to validate, 300
others to test, all rendered with the training renderer; the other fonts of the folder
(``--other-lines`` each) are the new hands it must still read.

    python benchmarks/finetune_hand.py --fonts /tmp/hands --hand sacramento \\
        --rehearsal 0 --rehearsal 3000
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
from finetune_real import finetune
from realdata_lines import write_folder
from unseen_hands import find_fonts, render_hand

from text_recognizer.evaluate import evaluate
from text_recognizer.metrics import cer
from text_recognizer.recognizer import Recognizer


def dark_on_white(images: list[np.ndarray]) -> list[np.ndarray]:
    """The renderer draws bright ink on black; a user's scans are dark on white."""
    return [255 - image for image in images]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fonts", type=Path, required=True, help="folder of unseen fonts")
    parser.add_argument("--hand", required=True, help="the font to fine-tune on, by name")
    parser.add_argument("--train-lines", type=int, default=200)
    parser.add_argument("--other-lines", type=int, default=20, help="lines per other hand")
    parser.add_argument("--synthetic-lines", type=int, default=2000)
    parser.add_argument("--rehearsal", type=int, action="append")
    args = parser.parse_args()

    fonts = find_fonts(args.fonts)
    hand = next((f for f in fonts if f.name == args.hand), None)
    if hand is None:
        parser.error(f"no font named {args.hand} under {args.fonts}")
    others = {f.name: render_hand(f, args.other_lines, 0) for f in fonts if f is not hand}
    with tempfile.TemporaryDirectory() as temporary:
        root = Path(temporary)
        for split, count, seed in (
            ("train", args.train_lines, 1),
            ("val", 100, 2),
            ("test", 300, 3),
        ):
            images, texts = render_hand(hand, count, seed)
            write_folder(root / split, dark_on_white(images), texts)

        def scores(model: str) -> str:
            own = evaluate(model, data="folder", data_args={"path": str(root / "test")},
                           split="all").metrics["cer"]  # fmt: skip
            reader = Recognizer.from_pretrained(model)
            predicted = [r.text for images, _ in others.values()
                         for r in reader.recognize_batch(images, "line")]  # fmt: skip
            truths = [t for _, texts in others.values() for t in texts]
            synthetic = evaluate(model, data="synthetic_lines", data_args={"stream": True},
                                 seed=42, limit=args.synthetic_lines).metrics["cer"]  # fmt: skip
            return f"{own:.3f} | {cer(predicted, truths):.3f} | {synthetic:.3f}"

        print(
            f"| model | training | {args.hand} (300 test lines) | {len(others)} other unseen "
            f"hands | synthetic test |\n|---|---:|---:|---:|---:|"
        )
        print(f"| bundled | - | {scores('default')} |", flush=True)
        for rehearsal in args.rehearsal or [0]:
            summary = finetune(root, rehearsal, [])
            label = f"fine-tuned, {args.train_lines} lines + {rehearsal} rehearsal"
            print(
                f"| {label} | {summary['training_time_s']:.0f} s | {scores(summary['run_dir'])} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
