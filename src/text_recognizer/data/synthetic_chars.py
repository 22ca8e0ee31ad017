"""EMNIST-compatible characters rendered from the shipped handwriting fonts.

Every sample goes through the same ``emnist_style`` conversion as EMNIST itself, the
real evaluation sets and users' images at inference, so a model trained here can be
used on real handwriting as it is. Train samples come from the train fonts only and
val/test samples from held-out fonts, so validation measures an unseen hand.

Case: EMNIST crops each character to its ink, so a lowercase 'o' and a capital 'O'
come out the same size; the only cue left is the stroke width relative to the letter
(one pen draws both, so the small letter's strokes look thicker once it is scaled up).
We keep that cue: a sample's glyph is drawn at a "pen" size chosen for the sample, not
scaled to fill the frame, and stroke-width changes are in pen pixels. Fonts that draw
lowercase as capitals give their lowercase glyphs to the capital classes instead.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from collections.abc import Generator, Sequence
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import cv2
import numpy as np
from PIL import Image, ImageDraw
from tqdm import tqdm

from text_recognizer.charset import DEFAULT_CHARSET, EMNIST_CHARACTERS, IAM_PUNCTUATION
from text_recognizer.data import augment as aug
from text_recognizer.data.cache import H5Writer, cache_path, ensure_writable_folder, read_h5
from text_recognizer.data.module import ArrayDataset, BaseDataModule, splits_for
from text_recognizer.data.render_pool import interruptible, pool_results, render_pool
from text_recognizer.data.sources.download import bar_disabled
from text_recognizer.data.sources.fonts import Font, list_fonts, load_font
from text_recognizer.errors import ConfigError, DataError
from text_recognizer.preprocessing import emnist_style

# Bump when rendering or augmentation changes, so old caches are never reused.
GENERATOR_VERSION = 1
IMAGE_SIZE = 28
CHUNK_SIZE = 500  # samples per work unit; fixed so results do not depend on worker count
PEN_SIZES = (32, 64)  # font size range in pixels at which glyphs are drawn and augmented
SPLITS = ("train", "val", "test")
# Writers skip the dots of i and j, and NIST's segmentation (EMNIST's source) often
# dropped them: without dotless examples a dotless 'i' can only ever be read as 'I' or 'l'.
DOTTED = "ij"
DOTLESS_PROBABILITY = 0.25


@dataclass(frozen=True)
class Option:
    """One way to draw a class: this font's glyph for ``glyph`` (may differ from the label)."""

    font: Font
    glyph: str


def class_options(fonts: Sequence[Font], classes: str) -> dict[str, list[Option]]:
    """For each class, the (font, glyph) pairs that draw it; never a missing glyph.

    A capitals-only font draws nothing for lowercase classes, and its "lowercase" glyphs
    (other drawings of the capitals) become extra variants of the capital classes.
    """
    options: dict[str, list[Option]] = {c: [] for c in classes}
    for font in fonts:
        for char in classes:
            if char.islower() and font.capitals_only:
                continue
            if char not in font.missing:
                options[char].append(Option(font, char))
            if char.isupper() and font.capitals_only and char.lower() not in font.missing:
                options[char].append(Option(font, char.lower()))
    return options


def render_glyph(font: Font, glyph: str, pen_size: int) -> np.ndarray:
    """Draw one glyph, bright on black, with a margin of half the pen size for augmentation."""
    pil_font = load_font(font.path, pen_size)
    left, top, right, bottom = pil_font.getbbox(glyph)
    margin = pen_size // 2
    width = int(right - left) + 2 * margin
    height = int(bottom - top) + 2 * margin
    image = Image.new("L", (max(width, 1), max(height, 1)), 0)
    ImageDraw.Draw(image).text((margin - left, margin - top), glyph, fill=255, font=pil_font)
    bitmap = np.asarray(image).copy()
    if bitmap.max() < 128:
        raise DataError(f"font {font.name} drew no ink for {glyph!r}; rescan the font manifest")
    return bitmap


def largest_component(image: np.ndarray) -> np.ndarray:
    """Keep only the largest connected stroke: an 'i' or 'j' without its dot."""
    count, labels, stats, _ = cv2.connectedComponentsWithStats((image > 64).astype(np.uint8))
    if count <= 2:  # background plus one stroke: nothing to drop
        return image
    largest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    return np.where(labels == largest, image, 0).astype(np.uint8)


def augment_glyph(
    image: np.ndarray, rng: np.random.Generator, pen_size: int, strength: float
) -> np.ndarray:
    """Make a font glyph look handwritten: pen width, slant, angle, shape, scan blur/noise.

    Distances scale with the pen size, so the result does not depend on it. The biases
    (thicker strokes, wider letters, hard edges half the time) move the fonts towards
    real hand-printed characters, measured on NIST scans after ``emnist_style``: their
    ink covers 29-40% of the 28x28 frame where plain fonts cover 22-28%, and their
    letters are about 20% wider.
    """
    if strength <= 0:
        return image
    unit = pen_size / 48.0 * strength
    image = aug.stroke_width(image, rng, pixels=(-0.5 * unit, 3.0 * unit))
    image = aug.affine(
        image,
        rng,
        max_rotation=15.0 * strength,
        max_shear=0.35 * strength,
        scale_range=(1.0, 1.0),  # emnist_style rescales anyway
        aspect_range=(-0.2 * strength, 0.5 * strength),
    )
    if rng.random() < 0.9:
        image = aug.elastic(image, rng, alpha=4.0 * unit, sigma=6.0 * pen_size / 48.0)
    if rng.random() < 0.5:
        image = aug.binarize(image, rng)
    else:
        image = aug.blur(image, rng, max_sigma=0.6 * unit)
    image = aug.ink_intensity(image, rng, (1.0 - 0.4 * min(strength, 1.0), 1.0))
    return aug.noise(image, rng, max_std=4.0 * strength)


def _render_chunk(
    task: tuple[list[Option], np.ndarray, float, np.random.SeedSequence],
) -> np.ndarray:
    """Render one work unit: the option to draw for each sample, deterministic per seed."""
    options, pen_sizes, strength, seed = task
    rng = np.random.default_rng(seed)
    images = np.empty((len(options), IMAGE_SIZE, IMAGE_SIZE), dtype=np.uint8)
    for i, (option, pen_size) in enumerate(zip(options, pen_sizes, strict=True)):
        glyph = render_glyph(option.font, option.glyph, int(pen_size))
        if option.glyph in DOTTED and strength > 0 and rng.random() < DOTLESS_PROBABILITY:
            glyph = largest_component(glyph)
        images[i] = emnist_style(augment_glyph(glyph, rng, int(pen_size), strength), IMAGE_SIZE)
    return images


def _init_worker() -> None:
    cv2.setNumThreads(0)  # OpenCV's own thread pool deadlocks or oversubscribes in workers


def generate(
    fonts: Sequence[Font],
    classes: str,
    num: int,
    seed: int | np.random.SeedSequence,
    strength: float = 1.0,
    workers: int = 1,
    desc: str = "rendering characters",
) -> tuple[np.ndarray, np.ndarray]:
    """``num`` samples balanced over ``classes``: uint8 images ``[num, 28, 28]`` and labels.

    Labels are charset indices. The result depends only on the arguments, never on
    ``workers``: every chunk of ``CHUNK_SIZE`` samples has its own child seed.
    """
    targets, chunks = generate_chunks(fonts, classes, num, seed, strength, workers, desc)
    images = np.empty((num, IMAGE_SIZE, IMAGE_SIZE), dtype=np.uint8)
    start = 0
    for chunk in chunks:
        images[start : start + len(chunk)] = chunk
        start += len(chunk)
    return images, targets


def generate_chunks(
    fonts: Sequence[Font],
    classes: str,
    num: int,
    seed: int | np.random.SeedSequence,
    strength: float = 1.0,
    workers: int = 1,
    desc: str = "rendering characters",
) -> tuple[np.ndarray, Generator[np.ndarray, None, None]]:
    """:func:`generate`'s labels, and its images a chunk of ``CHUNK_SIZE`` at a time, in
    order, as the ``workers`` render them: to be written as they come, not held at once.

    The chunks are rendered as the generator is read; close it (``contextlib.closing``)
    to stop the workers of a build given up half-way.
    """
    options = class_options(fonts, classes)
    empty = [c for c, opts in options.items() if not opts]
    if empty:
        raise DataError(
            f"no font in {[f.name for f in fonts]} can draw {''.join(empty)!r}; "
            "add fonts to this split in fonts.json or leave those classes out"
        )
    root = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
    plan_seed, *chunk_seeds = root.spawn(1 + -(-num // CHUNK_SIZE))
    plan = np.random.default_rng(plan_seed)
    # Balanced: every class num // len(classes) times, the remainder to random classes.
    labels = np.concatenate(
        [
            np.repeat(np.arange(len(classes)), num // len(classes)),
            plan.permutation(len(classes))[: num % len(classes)],
        ]
    )
    labels = plan.permutation(labels)
    # Every font equally likely for a class, whatever number of glyphs it offers for it.
    weights = {}
    for char, opts in options.items():
        per_font = Counter(option.font.name for option in opts)
        w = np.array([1.0 / per_font[option.font.name] for option in opts])
        weights[char] = w / w.sum()
    chosen = [
        options[classes[k]][plan.choice(len(options[classes[k]]), p=weights[classes[k]])]
        for k in labels
    ]
    pen_sizes = plan.integers(PEN_SIZES[0], PEN_SIZES[1] + 1, size=num)
    tasks = [
        (
            chosen[start : start + CHUNK_SIZE],
            pen_sizes[start : start + CHUNK_SIZE],
            strength,
            chunk_seeds[index],
        )
        for index, start in enumerate(range(0, num, CHUNK_SIZE))
    ]
    targets = np.array([DEFAULT_CHARSET.index(classes[k]) for k in labels], dtype=np.int64)
    return targets, _rendered(tasks, workers, num, desc)


def _rendered(
    tasks: list[tuple[list[Option], np.ndarray, float, np.random.SeedSequence]],
    workers: int,
    total: int,
    desc: str,
) -> Generator[np.ndarray, None, None]:
    with tqdm(total=total, desc=desc, unit="char", leave=False, disable=bar_disabled()) as progress:
        if workers <= 1 or len(tasks) <= 1:  # none: an empty split (a pool needs a process)
            _init_worker()
            for chunk in map(_render_chunk, tasks):
                yield chunk
                progress.update(len(chunk))
        else:
            with render_pool(min(workers, len(tasks)), _init_worker) as pool:
                for chunk in interruptible(pool_results(pool, _render_chunk, tasks)):
                    yield chunk
                    progress.update(len(chunk))


class SyntheticChars(BaseDataModule):
    """EMNIST-style 28x28 characters (white ink on black) rendered from handwriting fonts.

    Balanced over the 62 EMNIST classes (plus IAM punctuation with ``punctuation=True``),
    labelled with charset indices (EMNIST label ``i`` is index ``i + 4``). Built once in
    ``prepare_data()`` and cached per split in HDF5, keyed by every parameter that
    changes the data (``build_workers`` does not: results never depend on it).
    ``augment`` scales the augmentation strength: 0 draws the fonts' glyphs as they are.
    """

    kind: ClassVar = "char"

    def __init__(
        self,
        num_train: int = 100_000,
        num_val: int = 10_000,
        num_test: int = 10_000,
        augment: float = 1.0,
        punctuation: bool = False,
        seed: int = 0,
        batch_size: int = 128,
        num_workers: int = 0,
        root: Path | None = None,
        build_workers: int | None = None,
    ) -> None:
        super().__init__(batch_size=batch_size, num_workers=num_workers, seed=seed, root=root)
        for name, value in (("num_train", num_train), ("num_val", num_val), ("num_test", num_test)):
            if value < 0:
                raise ConfigError(f"{name} = {value} must be >= 0")
        if augment < 0:
            raise ConfigError(f"augment = {augment} must be >= 0 (0 turns augmentation off)")
        self.sizes = {"train": num_train, "val": num_val, "test": num_test}
        self.augment = float(augment)
        self.punctuation = punctuation
        self.classes = EMNIST_CHARACTERS + (IAM_PUNCTUATION.replace(" ", "") if punctuation else "")
        self.build_workers = build_workers if build_workers is not None else (os.cpu_count() or 1)
        self.targets: dict[str, np.ndarray] = {}

    @property
    def input_height(self) -> int:
        return IMAGE_SIZE

    def params(self, split: str) -> dict[str, Any]:
        """Everything that determines a split's data (the cache key)."""
        fonts = [
            {
                "name": f.name,
                "file": f.path.name,
                "missing": "".join(sorted(f.missing)),
                "capitals_only": f.capitals_only,
            }
            for f in list_fonts(split)
        ]
        fonts_hash = hashlib.sha256(json.dumps(fonts).encode()).hexdigest()[:16]
        return {
            "generator": GENERATOR_VERSION,
            "split": split,
            "num": self.sizes[split],
            "augment": self.augment,
            "classes": self.classes,
            "seed": self.seed,
            "fonts": fonts_hash,
        }

    def cache_file(self, split: str) -> Path:
        folder = self.root / "synthetic_chars"
        return cache_path(folder, f"synthetic_chars_{split}", self.params(split))

    def prepare_data(self) -> None:
        """Render and cache every split that is not cached yet (once, on one process)."""
        self.prepare_splits(SPLITS)

    def prepare_splits(self, splits: Sequence[str]) -> None:
        for index, split in enumerate(SPLITS):
            path = self.cache_file(split)
            if split not in splits or path.exists():
                continue
            ensure_writable_folder(path.parent)  # before the rendering, not after
            # Splits get unrelated streams from one seed; fonts differ between them anyway.
            seed = np.random.SeedSequence(self.seed, spawn_key=(index,))
            targets, chunks = generate_chunks(
                list_fonts(split),
                self.classes,
                self.sizes[split],
                seed,
                strength=self.augment,
                workers=self.build_workers,
                desc=f"SyntheticChars {split}",
            )
            # Each chunk written as it is rendered: a build holds a few, not the split.
            with H5Writer(path, self.params(split)) as writer, closing(chunks):
                for chunk in chunks:
                    writer.append("images", chunk)
                if not self.sizes[split]:
                    writer.put("images", np.empty((0, IMAGE_SIZE, IMAGE_SIZE), np.uint8))
                writer.put("labels", targets)

    def setup(self, stage: str | None = None) -> None:
        """Load the splits ``stage`` reads (all for ``None``), rendering any not cached yet."""
        wanted = splits_for(stage)
        self.prepare_splits(wanted)  # a no-op when cached; lets setup() alone work in scripts
        for split in wanted:
            data = read_h5(self.cache_file(split), keys=("images", "labels"))
            self.targets[split] = data["labels"]
            setattr(self, f"data_{split}", ArrayDataset(data["images"], data["labels"].tolist()))

    def __repr__(self) -> str:
        lines = [
            f"SyntheticChars({self._split_sizes()}, image=1x{IMAGE_SIZE}x{IMAGE_SIZE} uint8 "
            f"(bright ink), classes={len(self.classes)}, augment={self.augment}, seed={self.seed})"
        ]
        for split in SPLITS:
            fonts = len(list_fonts(split))
            if split in self.targets and len(self.targets[split]):
                counts = Counter(self.targets[split].tolist()).values()
                balance = f"{min(counts)}..{max(counts)} per class"
            else:
                balance = "not built" if split not in self.targets else "empty"
            lines.append(f"  {split:5} {fonts} fonts, {balance}, cache {self.cache_file(split)}")
        return "\n".join(lines)


#: Demo characters: digits, capitals and lowercase whose case survives EMNIST cropping.
SAMPLE_CHARACTERS = "2479AKRbegh"


def write_samples(directory: Path, seed: int = 0) -> list[tuple[str, str]]:
    """Write demo character images from the *test* fonts, plus ``labels.tsv``.

    Each is a glyph drawn at a pen size with the training augmentation, then saved as a
    user's photo would be: dark ink on white paper with a margin, at its own size (the
    recognizer does the EMNIST-style cropping and scaling).
    """
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    fonts = list_fonts("test")
    rows = []
    for index, char in enumerate(SAMPLE_CHARACTERS):
        options = class_options(fonts, char)[char]
        option = options[int(rng.integers(len(options)))]
        pen_size = 64
        glyph = augment_glyph(render_glyph(option.font, option.glyph, pen_size), rng, pen_size, 0.6)
        page = np.pad(255 - glyph, 12, constant_values=255)
        name = f"char_{index:02d}.png"
        Image.fromarray(page).save(directory / name)
        rows.append((name, char))
    (directory / "labels.tsv").write_text("".join(f"{name}\t{text}\n" for name, text in rows))
    return rows


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="Write the demo character images.")
    parser.add_argument("--write-samples", type=Path, metavar="DIR", required=True)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    for name, text in write_samples(args.write_samples, args.seed):
        print(f"{name}\t{text}")
