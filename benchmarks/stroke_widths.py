"""How wide the strokes of line images are at the model's height (32 px), per set.

A stroke's width is estimated per line as its ink area over half its outline (ink: above
half the line's maximum), after the line is prepared as the Recognizer prepares it.
Sets: the synthetic validation and test splits (rendered like the training lines, other
hands), the test split through ``augment.thin_strokes`` (the ``fine_pens`` training
augmentation at its strongest), the bundled demo lines and, when ``../shared/realdata``
is there, the lines pasted from real characters. Scanned pages are not among them: a
pen's width in pixels times 32 over the line's height in pixels says where one lands.

    python benchmarks/stroke_widths.py
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from realdata_lines import real_lines_if_there
from width_sensitivity import add_set_arguments, synthetic_sets

from text_recognizer.data.augment import thin_strokes
from text_recognizer.images import load_image
from text_recognizer.labels import read_labels
from text_recognizer.paths import ASSETS_DIR
from text_recognizer.preprocessing import prepare_line


def stroke_width(line: np.ndarray) -> float:
    """Estimated stroke width in pixels of a bright-ink line: ink area over half its outline.

    A stroke of width w and length L has area wL and an outline of about 2L, counted here
    as ink/paper transitions along rows and columns (diagonal strokes count up to 1.4x
    more, so read the figures as comparisons between sets, not as calipers).
    """
    ink = np.pad(line > 0.5 * float(line.max()), 1)
    transitions = np.count_nonzero(np.diff(ink, axis=0)) + np.count_nonzero(np.diff(ink, axis=1))
    return 2.0 * float(ink.sum()) / max(transitions, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_set_arguments(parser)
    parser.add_argument("--lines", type=int, default=500, help="lines sampled per synthetic split")
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    sets: dict[str, list[np.ndarray]] = {}
    by_hand = synthetic_sets(args.num_train, args.seed)
    for split in ("val", "test"):
        images = [im for name, (ims, _) in by_hand.items() if name.startswith(split) for im in ims]
        sets[split] = [images[i] for i in rng.permutation(len(images))[: args.lines]]
    fine = np.random.default_rng(0)
    sets["test, fine pen 1 px"] = [thin_strokes(im, fine, (1.0, 1.0)) for im in sets["test"]]
    demo = ASSETS_DIR / "samples" / "lines"
    sets["demo lines"] = [load_image(row.image) for row in read_labels(demo)]
    for name, (images, _) in real_lines_if_there(args.realdata, 300, 0).items():
        sets[f"real {name}"] = images

    print("| set | lines | stroke px: 10th percentile | median | 90th percentile |")
    print("|---|---:|---:|---:|---:|")
    for name, images in sets.items():
        widths = [stroke_width(prepare_line(load_image(image), 32)) for image in images]
        low, mid, high = np.percentile(widths, [10, 50, 90])
        print(f"| {name} | {len(widths)} | {low:.1f} | {mid:.1f} | {high:.1f} |")


if __name__ == "__main__":
    main()
