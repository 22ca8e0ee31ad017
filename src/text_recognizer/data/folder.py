"""Your own labelled images as a dataset: to measure a model on them, or to train on them.

A folder holds images and a labels file with each image's transcription (``labels.tsv``
or ``labels.jsonl``, see :mod:`text_recognizer.labels`). Either the folder's labels file is one
pool that is split by ``val_fraction`` / ``test_fraction`` (seeded), or subfolders
``train/``, ``val/`` and ``test/`` each hold a labels file and are the splits as they are.

Images go through the very preprocessing the Recognizer applies to a user's image
(``prepare_line`` or ``emnist_style``), so a model scores here as it would in use; pages
(``kind="paragraph"``, texts of lines joined by newlines) are kept as they are, for the
Recognizer to find their lines. They are read and prepared in ``setup`` (with a progress
bar), not cached: the folder is the user's, and a cache of it would go stale the moment
they fix a label.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from text_recognizer.charset import DEFAULT_CHARSET
from text_recognizer.data.line_render import HEIGHT  # the rendered rehearsal lines' height
from text_recognizer.data.module import ArrayDataset, BaseDataModule, Kind, PageSet
from text_recognizer.data.sources.download import bar_disabled
from text_recognizer.errors import ConfigError, DataError, ImageError
from text_recognizer.images import Pages, image_pixel_limit
from text_recognizer.labels import LABEL_FILES, Labelled, read_labels
from text_recognizer.preprocessing import emnist_style, normalize_polarity, prepare_line

SPLITS = ("train", "val", "test")
#: How many bad rows an error message lists before it says "and N more".
_SHOWN_PROBLEMS = 5


def _page_text_problem(text: str) -> str | None:
    """What is wrong with a page's text (its lines joined by newlines), if anything."""
    if "\\n" in text:  # a backslash and an n, as a labels.tsv row would hold a line break
        return (
            "'\\n' written out (a backslash and n) in the text: labels.tsv cannot hold a line "
            'break; write the pages\' texts in labels.jsonl, where "\\n" in a string is one'
        )
    if any(not line.strip() for line in text.split("\n")):
        # It counts as a line never found and a newline never read, on every model.
        return (
            "an empty line in the text (a leading, trailing or doubled '\\n'): a page's text "
            "is its lines joined by one '\\n' each"
        )
    return None


class LabelledArrays(ArrayDataset):
    """Prepared images with their targets, plus the source image of each (for reports).

    Lines are kept as the float32 ``[0, 1]`` arrays ``prepare_line`` returns, not rounded
    to uint8 like cached datasets, so that a line scores exactly as the Recognizer reads it.
    """

    def __init__(
        self, images: list[np.ndarray], targets: Sequence[object], names: list[str]
    ) -> None:
        super().__init__(images, targets)
        self.names = names

    @property
    def widths(self) -> np.ndarray:
        return np.array([image.shape[-1] for image in self.images], dtype=np.int64)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        image = self.images[index]
        if image.dtype == np.uint8:
            return super().__getitem__(index)
        return torch.from_numpy(image).unsqueeze(0), torch.as_tensor(self.targets[index])


class LabelledFolder(BaseDataModule):
    """Images and transcriptions from a folder of your own (layouts: module docstring).

    Args:
        path: the folder.
        kind: ``line`` (transcriptions are text lines), ``char`` (one character each) or
            ``paragraph`` (pages, each transcription their lines joined by newlines: for
            ``evaluate``, which reads them as the Recognizer reads a page).
        input_height: height images are scaled to (32: the shipped line model; chars are
            square, 28 for EMNIST-style models); pages are kept at their own size.
        val_fraction, test_fraction: shares of a single labels file held out (seeded);
            ignored when the folder has ``train/``, ``val/`` and ``test/`` subfolders.
        width_stretch: lines only: ``[low, high]`` random horizontal stretch of every
            training batch (:class:`~text_recognizer.data.module.StretchWidths`).
        page_cuts: lines only: share of training lines made to look cut from a page:
            tilted, with neighbouring lines' ink (:class:`~text_recognizer.data.module.PageCuts`).
        fine_pens: lines only: share of training lines with thinner strokes
            (:class:`~text_recognizer.data.module.FinePens`).
        width_multiple: lines only: pad every training batch to a multiple of this many
            pixels (:func:`~text_recognizer.data.module.pad_to_multiple`); 1: off.
        deslant: lines only: shear each line to the lean the model reads best, as the
            Recognizer does by default (``prepare_line``); ``False`` reads lines as
            ``Recognizer(deslant=False)`` does.
        rehearsal: lines only: this many synthetic lines (``synthetic_lines``' training
            hands and text, seeded) are added to the training split, so a model fine-tuned
            on a narrow folder keeps reading what it read before (docs/training.md).
        max_image_pixels: the most pixels an image (or page) may hold, as
            ``Recognizer(max_image_pixels=...)``; None: ``images.MAX_PIXELS`` (40 million).
    """

    # Pages (kind "paragraph") are PageSets.
    data_train: LabelledArrays | None
    data_val: LabelledArrays | None
    data_test: LabelledArrays | None

    def __init__(
        self,
        path: str | Path = ".",
        kind: Kind = "line",
        input_height: int | None = None,
        val_fraction: float = 0.1,
        test_fraction: float = 0.1,
        batch_size: int = 32,
        num_workers: int = 0,
        seed: int = 0,
        root: Path | None = None,
        width_stretch: Sequence[float] | None = None,
        page_cuts: float = 0.0,
        fine_pens: float = 0.0,
        width_multiple: int = 1,
        deslant: bool = True,
        rehearsal: int = 0,
        max_image_pixels: int | None = None,
    ) -> None:
        super().__init__(
            batch_size=batch_size,
            num_workers=num_workers,
            seed=seed,
            root=root,
            width_stretch=width_stretch,
            page_cuts=page_cuts,
            fine_pens=fine_pens,
            width_multiple=width_multiple,
        )
        if kind not in ("line", "char", "paragraph"):
            raise ConfigError(f"kind must be 'line', 'char' or 'paragraph', got {kind!r}")
        if kind != "line" and width_stretch is not None:
            raise ConfigError(f"width_stretch stretches text lines; remove it for kind: {kind}")
        for name, value in (
            ("page_cuts", page_cuts),
            ("fine_pens", fine_pens),
            ("width_multiple", width_multiple - 1),
        ):
            if kind != "line" and value:
                raise ConfigError(f"{name} augments text lines; remove it for kind: {kind}")
        if kind == "paragraph" and input_height is not None:
            raise ConfigError(
                "input_height: pages are kept at their own size (the Recognizer scales each "
                "line it finds to the model's height); remove it for kind: paragraph"
            )
        if input_height is not None and not 8 <= input_height <= 512:
            # 0 read as "not given" (32), < 0 and huge heights failed in OpenCV on the images
            raise ConfigError(
                f"input_height = {input_height} must be 8 to 512 pixels: the model's own (32 "
                "for the shipped line model, 28 for characters), or leave it out"
            )
        if rehearsal < 0 or (rehearsal and kind != "line"):
            raise ConfigError(f"rehearsal={rehearsal}: a number of lines >= 0, for kind: line only")
        if rehearsal and (input_height or 32) != HEIGHT:
            raise ConfigError(
                f"rehearsal lines are rendered {HEIGHT} px high; "
                f"input_height={input_height} cannot take them"
            )
        if not (0 <= val_fraction <= 1 and 0 <= test_fraction <= 1) or (
            val_fraction + test_fraction > 1
        ):
            raise ConfigError(
                f"val_fraction={val_fraction} and test_fraction={test_fraction} must be in "
                "[0, 1] and add up to 1 at most"
            )
        self.path = Path(path).expanduser()  # a config's path: ~/my_lines
        self.kind = kind  # type: ignore[misc]  # a class constant elsewhere; chosen here
        self.height = input_height or (32 if kind == "line" else 28)
        self.deslant = deslant
        self.rehearsal = rehearsal
        self.max_image_pixels = image_pixel_limit(max_image_pixels)
        self._rehearsal: LabelledArrays | None = None
        self.val_fraction = val_fraction
        self.test_fraction = test_fraction
        self._rows: dict[str, list[Labelled]] | None = None
        self._set_up: set[str] = set()  # splits read by setup(), an empty one left None

    @property
    def input_height(self) -> int:
        return self.height

    def split_rows(self) -> dict[str, list[Labelled]]:
        """The labels file rows of each split (subfolders, or one file split by seed)."""
        if self._rows is not None:
            return self._rows
        if self.path.is_file():  # often its labels file: my_lines/labels.tsv
            raise DataError(
                f"{self.path} is a file; path= names the folder that holds the images and "
                f"their labels file (here perhaps {self.path.parent})"
            )
        if not self.path.is_dir():
            raise DataError(
                f"{self.path}: no such folder; point the dataset at yours: "
                "`evaluate ... --data-arg path=DIR`, `train CONFIG --set data.args.path=DIR`, "
                "or data.args.path in the config"
            )
        subfolders = self._split_subfolders()
        if not subfolders and not any((self.path / name).is_file() for name in LABEL_FILES):
            # Most often the path was left out (it defaults to the current folder).
            raise DataError(
                f"{self.path.resolve()} has no labels file: point the dataset at the folder "
                "that has one (`evaluate ... --data-arg path=DIR`, `train CONFIG --set "
                "data.args.path=DIR`), or add labels.tsv (image<TAB>text per row) or "
                'labels.jsonl ({"image": ..., "text": ...} per line) beside the images'
            )
        if subfolders:
            rows = {s: read_labels(self.path / s) if s in subfolders else [] for s in SPLITS}
        else:
            pool = read_labels(self.path)
            order = np.random.default_rng(self.seed).permutation(len(pool))
            num_test = round(self.test_fraction * len(pool))
            num_val = round(self.val_fraction * len(pool))
            chosen = {
                "test": order[:num_test],
                "val": order[num_test : num_test + num_val],
                "train": order[num_test + num_val :],
            }
            # Each split keeps the file's order, so reports list rows as the user wrote them.
            rows = {s: [pool[i] for i in sorted(chosen[s].tolist())] for s in SPLITS}
        self._rows = rows
        return rows

    def _split_subfolders(self) -> list[str]:
        """The ``train/``, ``val/``, ``test/`` subfolders, where they are the splits: none
        where the folder has a labels file of its own (they may hold its images then)."""
        subfolders = [s for s in SPLITS if (self.path / s).is_dir()]
        top = [name for name in LABEL_FILES if (self.path / name).is_file()]
        if not top:
            return subfolders
        labelled = [
            Path(s, n) for s in subfolders for n in LABEL_FILES if (self.path / s / n).is_file()
        ]
        if labelled:  # reading either would silently leave the other's rows out
            splits = ", ".join(map(str, labelled))
            raise DataError(
                f"{self.path} has both {top[0]} and split subfolders with labels files "
                f"({splits}): keep one layout. Either the subfolders are the splits (move "
                f"{top[0]} out of {self.path}), or {top[0]} is split by seed (move the "
                "subfolders' labels files out)"
            )
        return []

    def empty_split(self, split: str) -> str | None:
        rows = self.split_rows()
        if rows[split] or (split == "train" and self.rehearsal):
            return None
        if self._split_subfolders():
            folder = self.path / split
            if folder.is_dir():
                return f"{folder} holds no labelled images"
            return f"{self.path} has no {split}/ subfolder: add one with its labels file"
        total = sum(len(split_rows) for split_rows in rows.values())
        if split == "train":
            return (
                f"val_fraction={self.val_fraction} and test_fraction={self.test_fraction} "
                f"leave none of the {total} labelled images in {self.path} to train on: add "
                "images, or lower data.args.val_fraction and data.args.test_fraction"
            )
        share = self.val_fraction if split == "val" else self.test_fraction
        return (
            f"{split}_fraction={share} of the {total} labelled images in {self.path} rounds "
            f"to none: add images, or raise data.args.{split}_fraction"
        )

    def prepare_data(self) -> None:
        """Check the labels before anything is trained: every image exists, every text is
        writable with the charset (and one character long for ``kind="char"``)."""
        problems = []
        # An image listed twice could be trained on and scored, or carry two transcriptions.
        first_row: dict[Path, str] = {}
        for split, rows in self.split_rows().items():
            for row in rows:
                problem = self._check_row(row)
                image = row.image.resolve()
                if problem is None and image in first_row:
                    problem = f"{row.image.name}: listed twice (also {first_row[image]})"
                first_row.setdefault(image, f"{split}: {row.row}")
                if problem:
                    problems.append(f"{split}: {row.row}: {problem}")
        self._raise_if(problems, "rows")

    def _check_row(self, row: Labelled) -> str | None:
        if not row.image.is_file():
            return f"{row.image.name}: no such image"
        if not row.text.strip():
            return "empty transcription"
        if "\n" in row.text and self.kind != "paragraph":
            return "a line break in the text: for pages (lines joined by newlines), kind=paragraph"
        if "\r" in row.text:  # a Windows line break, "\r\n"
            return "a carriage return ('\\r') in the text: join a page's lines with '\\n' alone"
        if self.kind == "paragraph":
            problem = _page_text_problem(row.text)
            if problem:
                return problem
        unknown = DEFAULT_CHARSET.unknown(row.text.replace("\n", ""))
        if unknown:
            return f"characters outside the charset: {''.join(sorted(set(unknown)))!r}"
        if self.kind == "char" and len(row.text) != 1:
            return f"a char dataset needs one character per image, got {row.text!r}"
        return None

    def _raise_if(self, problems: list[str], what: str) -> None:
        if not problems:
            return
        shown = "\n  ".join(problems[:_SHOWN_PROBLEMS])
        more = len(problems) - _SHOWN_PROBLEMS
        raise DataError(
            f"{self.path}: {len(problems)} bad {what}:\n  {shown}"
            + (f"\n  ... and {more} more" if more > 0 else "")
            + "\nfix or remove those rows of the labels file"
        )

    def setup(self, stage: str | None = None) -> None:
        self.prepare_data()
        splits = self.split_rows()
        wanted = ("test",) if stage == "test" else SPLITS
        problems: list[str] = []
        for split in wanted:
            rows = splits[split]
            images, texts, names = [], [], []
            progress = tqdm(
                rows, desc=f"reading {split} images", unit="image", disable=bar_disabled()
            )
            for row in progress:
                try:
                    images.append(self._prepare(row.image))
                except ImageError as error:
                    problems.append(f"{split}: {row.row}: {error}")
                    continue
                texts.append(row.text)
                # relpath: a labels file may name an image outside the folder (../, absolute)
                names.append(os.path.relpath(row.image, self.path))
            dataset: LabelledArrays | PageSet | None = None
            if rows and self.kind == "paragraph":
                dataset = PageSet(images, texts, names)
            elif rows:
                encoded = [DEFAULT_CHARSET.encode(text) for text in texts]
                targets = [e[0] if self.kind == "char" else np.array(e) for e in encoded]
                dataset = LabelledArrays(images, targets, names)
            setattr(self, f"data_{split}", dataset)
            self._set_up.add(split)
        self._raise_if(problems, "images")

    def training_set(self) -> LabelledArrays | None:
        """The train split plus the rehearsal lines: those are trained on, never scored."""
        if self.rehearsal and self._rehearsal is None:
            self._rehearsal = self._rehearsal_lines()  # rendered once, when training starts
        own, extra = self.data_train, self._rehearsal
        if extra is None:
            return own
        if own is None:
            return extra
        return LabelledArrays(
            [*own.images, *extra.images], [*own.targets, *extra.targets], own.names + extra.names
        )

    def _rehearsal_lines(self) -> LabelledArrays:
        from text_recognizer.data.synthetic_lines import LineSpec, render_lines

        # The shipped line config's mix: 30 % stroke faces, 10 % of lines with numbers.
        spec = LineSpec("train", self.seed, 48, 0.3, "default", 0.1)
        lines = render_lines(spec, chunk=0, count=self.rehearsal)
        images, targets, names = [], [], []
        for i, line in enumerate(
            tqdm(
                lines,
                total=self.rehearsal,
                desc="rendering rehearsal lines",
                disable=bar_disabled(),
            )
        ):
            images.append(line.image.astype(np.float32) / 255.0)
            targets.append(np.array(DEFAULT_CHARSET.encode(line.text)))
            names.append(f"<rehearsal line {i}>")
        return LabelledArrays(images, targets, names)

    def _prepare(self, path: Path) -> np.ndarray:
        """``[H, W]`` with bright ink, as the Recognizer feeds it to the model: uint8
        characters, float32 lines; a page uint8 grey as it is."""
        with Pages(path, max_image_pixels=self.max_image_pixels) as pages:
            if len(pages) > 1:  # which page would the label be of?
                raise ImageError(
                    f"{path}: holds {len(pages)} pages, and a label is of one page, line or "
                    "character: save each page as an image of its own, with its own label"
                )
            grey = pages.load(1)
        if self.kind == "paragraph":
            return grey
        if self.kind == "char":
            return emnist_style(normalize_polarity(grey), self.height)
        return prepare_line(grey, self.height, deslant=self.deslant).astype(np.float32, copy=False)

    def _split_sizes(self) -> str:
        sizes = []
        for split in SPLITS:
            data = getattr(self, f"data_{split}")
            size = len(data) if data is not None else 0 if split in self._set_up else "?"
            sizes.append(f"{split}={size}")
        return ", ".join(sizes)

    def __repr__(self) -> str:
        height = "" if self.kind == "paragraph" else f"input_height={self.height}, "
        return (
            f"LabelledFolder(path={str(self.path)!r}, kind={self.kind}, {height}"
            f"rehearsal={self.rehearsal}, {self._split_sizes()}, batch_size={self.batch_size})"
        )
