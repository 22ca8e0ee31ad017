"""The LightningDataModule base every dataset builds on.

``prepare_data`` downloads or builds caches (once, on one process), ``setup`` loads
splits into memory. Every character and line dataset yields ``(image, target)`` pairs
where ``image`` is a float32 ``[1, H, W]`` tensor in [0, 1] with bright ink on a dark
background, and ``target`` is a charset index (characters) or a 1-D tensor of indices
(lines). Paragraph datasets (``kind == "paragraph"``) yield pages as a user gives them
to the Recognizer (:class:`PageSet`): they are read line by line, never fed to a network.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal

import cv2
import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from text_recognizer.charset import DEFAULT_CHARSET, Charset
from text_recognizer.data.augment import thin_strokes
from text_recognizer.data.cache import H5Writer, read_h5
from text_recognizer.errors import ConfigError, DataError
from text_recognizer.paths import data_dir
from text_recognizer.preprocessing import ink_box, rotate

Kind = Literal["char", "line", "paragraph"]


class ArrayDataset(Dataset[tuple[torch.Tensor, torch.Tensor]]):
    """uint8 images ``[N, H, W]`` (bright ink) plus per-item targets, kept in memory."""

    def __init__(
        self, images: np.ndarray | Sequence[np.ndarray], targets: Sequence[object]
    ) -> None:
        if len(images) != len(targets):
            raise ValueError(f"{len(images)} images but {len(targets)} targets")
        self.images = images
        self.targets = targets

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        image = torch.from_numpy(np.asarray(self.images[index], dtype=np.float32) / 255.0)
        return image.unsqueeze(0), torch.as_tensor(self.targets[index])


class PageSet(Dataset[tuple[np.ndarray, str]]):
    """Pages as scanned (uint8 grey, ``[H, W]``), each with its text (lines joined by
    ``"\\n"``) and name (a form id, a file), for reports.

    Stored for an HDF5 cache (:class:`PageWriter`) as one flat pixel array and each
    page's shape.
    """

    def __init__(
        self, pages: Sequence[np.ndarray], texts: Sequence[str], names: Sequence[str]
    ) -> None:
        if not len(pages) == len(texts) == len(names):
            raise ValueError(f"{len(pages)} pages, {len(texts)} texts and {len(names)} names")
        self.pages, self.texts, self.names = list(pages), list(texts), list(names)

    def __len__(self) -> int:
        return len(self.pages)

    def __getitem__(self, index: int) -> tuple[np.ndarray, str]:
        return self.pages[index], self.texts[index]

    @property
    def num_lines(self) -> int:
        return sum(text.count("\n") + 1 for text in self.texts)

    @classmethod
    def read(cls, path: Path) -> PageSet:
        """The pages a cache written by :class:`PageWriter` holds."""
        data = read_h5(path, keys=("pixels", "shapes", "texts", "names"))
        sizes = data["shapes"].prod(axis=1)
        starts = np.concatenate([[0], np.cumsum(sizes)])
        if starts[-1] != data["pixels"].size:
            raise DataError(
                f"cache {path}: its pages' shapes do not add up to its pixels; delete it and "
                "it will be rebuilt"
            )
        pages = [
            data["pixels"][start : start + size].reshape(shape)
            for start, size, shape in zip(starts[:-1], sizes, data["shapes"].tolist(), strict=True)
        ]
        return cls(pages, [str(t) for t in data["texts"]], [str(n) for n in data["names"]])


class PageWriter(H5Writer):
    """A :class:`PageSet` cache written a page at a time, as the pages are made: a build
    holds one page, not the split (all of IAM's forms are ~1 GB of pixels).

    Used as a context manager, as :class:`~text_recognizer.data.cache.H5Writer`: the
    cache appears at ``path`` only when the block ends without an error, holding every
    page added, in order.
    """

    def __init__(self, path: Path, attrs: dict[str, Any]) -> None:
        super().__init__(path, attrs)
        self._shapes: list[tuple[int, int]] = []
        self._texts: list[str] = []
        self._names: list[str] = []

    def __len__(self) -> int:
        return len(self._shapes)

    def add(self, page: np.ndarray, text: str, name: str) -> None:
        """Write ``page`` (uint8 ``[H, W]``) with its text and name after those added before."""
        if page.ndim != 2 or page.dtype != np.uint8:
            raise ValueError(f"a page is uint8 [H, W], not {page.dtype} {list(page.shape)}")
        self.append("pixels", np.ascontiguousarray(page).ravel())
        self._shapes.append((int(page.shape[0]), int(page.shape[1])))
        self._texts.append(text)
        self._names.append(name)

    def finish(self) -> None:
        if not self._shapes:
            self.put("pixels", np.zeros(0, np.uint8))
        self.put("shapes", np.array(self._shapes, np.int64).reshape(-1, 2))
        self.put("texts", np.array(self._texts, dtype=object))
        self.put("names", np.array(self._names, dtype=object))


class StripWriter(H5Writer):
    """Line images (uint8 ``[height, W]``) cached side by side in strips ``[height, total
    width]``, written as the lines are made: a build holds a few MB of lines, not the split
    (the shipped config's 300,000 synthetic lines are ~3 GB).

    Each strip is a dataset of the file, named in ``strips``; lines added to one are
    gathered to :attr:`BUFFER` bytes, then appended to it. Used as a context manager, as
    :class:`~text_recognizer.data.cache.H5Writer`: the cache appears at ``path`` only when
    the block ends without an error. A strip no line was added to is stored ``[height, 0]``.
    """

    #: Bytes of lines gathered before they are appended: fewer, larger writes to HDF5.
    BUFFER = 1 << 20

    def __init__(
        self, path: Path, attrs: dict[str, Any], height: int, strips: Sequence[str]
    ) -> None:
        super().__init__(path, attrs)
        self.height = height
        self._pending: dict[str, list[np.ndarray]] = {key: [] for key in strips}
        self._pending_bytes = dict.fromkeys(strips, 0)
        # 8 bytes a line, where a list of ints takes 36: the shipped config has 300,000.
        self._widths = {key: array("q") for key in strips}

    def add_lines(self, strip: str, images: Sequence[np.ndarray]) -> None:
        """Add ``images`` (uint8 ``[height, W]``) to ``strip``, after the lines added before."""
        for image in images:
            if image.ndim != 2 or image.dtype != np.uint8 or image.shape[0] != self.height:
                raise ValueError(
                    f"a line of {strip} is uint8 [{self.height}, W], not {image.dtype} "
                    f"{list(image.shape)}"
                )
        self._pending[strip] += images
        self._pending_bytes[strip] += sum(image.nbytes for image in images)
        self._widths[strip].extend(int(image.shape[1]) for image in images)
        if self._pending_bytes[strip] >= self.BUFFER:
            self.flush(strip)

    def flush(self, strip: str) -> None:
        """Append the lines of ``strip`` gathered so far (a strip that is complete need not
        wait for the end of the build to give its buffer back)."""
        if self._pending[strip]:
            self.append(strip, np.concatenate(self._pending[strip], axis=1), axis=1)
            self._pending[strip], self._pending_bytes[strip] = [], 0

    def widths(self, strip: str) -> np.ndarray:
        """The widths (int64) of the lines added to ``strip``, in order."""
        return np.frombuffer(self._widths[strip], dtype=np.int64).copy()

    def finish(self) -> None:
        for strip in self._pending:
            self.flush(strip)
            if not self._widths[strip]:
                self.put(strip, np.zeros((self.height, 0), np.uint8))


def collate_lines(
    batch: Sequence[tuple[torch.Tensor, torch.Tensor]], pad_index: int = DEFAULT_CHARSET.pad
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Pad variable-width line images with background (0) and targets with ``<pad>``.

    True widths and target lengths are returned so CTC sees only real frames.
    """
    images, targets = zip(*batch, strict=True)
    height = images[0].shape[-2]
    widths = torch.tensor([im.shape[-1] for im in images], dtype=torch.long)
    lengths = torch.tensor([len(t) for t in targets], dtype=torch.long)
    padded = torch.zeros(len(images), 1, height, int(widths.max()), dtype=images[0].dtype)
    for i, image in enumerate(images):
        padded[i, :, :, : image.shape[-1]] = image
    padded_targets = torch.full(
        (len(targets), max(int(lengths.max()), 1)), pad_index, dtype=torch.long
    )
    for i, target in enumerate(targets):
        padded_targets[i, : len(target)] = target
    return padded, widths, padded_targets, lengths


class StretchWidths:
    """Training collate for lines: stretch each batch horizontally by one random factor.

    A font or a stroke face writes at one width-to-height ratio and people do not: the
    shipped line model read a narrow held-out hand at CER 0.23, and the same lines
    stretched 1.45x at 0.12 (real digit lines went the other way). The factor is
    log-uniform in ``[low, high]`` and drawn from torch's global generator, whose state
    every checkpoint saves, so a resumed run draws the same factors. One factor per batch
    keeps width-bucketed batches free of padding and makes it one resize of the padded
    batch (rows stacked: a horizontal resize never mixes rows). No line of the batch is
    squeezed below ``MIN_PX_PER_CHAR`` pixels per character, so CTC keeps enough frames.
    """

    MIN_PX_PER_CHAR = 8

    def __init__(self, low: float, high: float, pad_index: int = DEFAULT_CHARSET.pad) -> None:
        self.low, self.high, self.pad_index = low, high, pad_index

    def __call__(
        self, batch: Sequence[tuple[torch.Tensor, torch.Tensor]]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        images, widths, targets, lengths = collate_lines(batch, self.pad_index)
        log_low, log_high = math.log(self.low), math.log(self.high)
        factor = math.exp(log_low + (log_high - log_low) * float(torch.rand(())))
        floor = float((self.MIN_PX_PER_CHAR * lengths / widths).clamp(max=1.0).max())
        factor = max(factor, floor)
        batch_size, _, height, width = images.shape
        new_width = max(1, round(width * factor))
        if new_width == width:
            return images, widths, targets, lengths
        rows = images.reshape(batch_size * height, width).numpy()
        resized = cv2.resize(rows, (new_width, batch_size * height), interpolation=cv2.INTER_LINEAR)
        stretched = torch.from_numpy(resized).reshape(batch_size, 1, height, new_width)
        new_widths = (widths * factor).round().long().clamp(1, new_width)
        return stretched, new_widths, targets, lengths


class PageCuts:
    """Training lines made to look cut from a scanned page: tilted, with neighbours' ink.

    A rendered line is straight and alone in its frame. A line cut from a page is often
    tilted, so its bounding box is taller than its text and the text shrinks once the
    box is resized to the model's height (a 2 degree tilt took the shipped model's test
    CER from 0.05 to 0.10), and the box holds the descenders of the line above and the
    ascenders of the line below. With probability ``probability`` a line gets the lowest
    ink rows of another line of the batch over its top rows, and/or another line's
    highest ink rows over its bottom rows, and/or a tilt of up to ``max_rotation``
    degrees, after which it is cropped to its ink as
    :func:`~text_recognizer.preprocessing.prepare_line` crops at inference and resized
    back to the batch height. A tilt is capped so no line falls under
    ``StretchWidths.MIN_PX_PER_CHAR`` pixels per character. Draws come from torch's global
    generator (checkpointed, as for :class:`StretchWidths`).
    """

    def __init__(
        self, probability: float = 0.5, max_rotation: float = 3.0, max_rows: int = 8
    ) -> None:
        self.probability, self.max_rotation, self.max_rows = probability, max_rotation, max_rows

    def __call__(
        self, batch: Sequence[tuple[torch.Tensor, torch.Tensor]]
    ) -> list[tuple[torch.Tensor, torch.Tensor]]:
        lines = [image[0].numpy() for image, _ in batch]
        out = list(batch)
        for i, (_, target) in enumerate(batch):
            if float(torch.rand(())) < self.probability:
                out[i] = (torch.from_numpy(self.cut(lines[i], lines, len(target)))[None], target)
        return out

    def _overlay_neighbour(
        self, line: np.ndarray, lines: Sequence[np.ndarray], background: float, top: bool
    ) -> None:
        """Add another line's lowest (top=True) or highest ink rows onto ``line``'s edge."""
        other = lines[int(torch.randint(len(lines), ()))]
        other_ink = np.clip(other - float(np.median(other)), 0, None)
        ink_rows = np.nonzero(other_ink.max(axis=1) > 0.25)[0]
        if len(ink_rows) == 0:
            return
        rows = min(int(torch.randint(2, self.max_rows + 1, ())), len(ink_rows))
        edge = ink_rows[-1] + 1 if top else ink_rows[0]
        piece = other_ink[edge - rows : edge] if top else other_ink[edge : edge + rows]
        width = line.shape[1]
        shift = int(torch.randint(-piece.shape[1] // 2, width // 2 + 1, ()))
        source = piece[:, max(0, -shift) : max(0, -shift) + width - max(0, shift)]
        target = line[:rows] if top else line[-rows:]
        region = target[:, max(0, shift) : max(0, shift) + source.shape[1]]
        np.maximum(region, background + source, out=region)

    def cut(self, line: np.ndarray, lines: Sequence[np.ndarray], length: int) -> np.ndarray:
        """One float ``[H, W]`` bright-ink line of ``length`` characters -> ``[H, W']``."""
        height, width = line.shape
        background = float(np.median(line))
        canvas = line.copy()
        for top in (True, False):
            if float(torch.rand(())) < 0.5:
                self._overlay_neighbour(canvas, lines, background, top)
        np.clip(canvas, 0, 1, out=canvas)
        if float(torch.rand(())) >= 0.5:
            return canvas
        # Tilting by a adds ~width*sin(a) rows; keep the resized line at the CTC floor or above.
        room = width / (StretchWidths.MIN_PX_PER_CHAR * max(length, 1)) - 1
        limit = min(
            self.max_rotation, math.degrees(math.asin(min(1.0, max(0.0, room) * height / width)))
        )
        if limit < 0.1:
            return canvas
        canvas = rotate(canvas, limit * (2 * float(torch.rand(())) - 1), background)
        ink = canvas - background
        if float(ink.max()) <= 0:
            return canvas
        crop = canvas[ink_box(ink)]
        new_width = max(1, round(crop.shape[1] * height / crop.shape[0]))
        interpolation = cv2.INTER_AREA if crop.shape[0] > height else cv2.INTER_LINEAR
        return np.ascontiguousarray(
            cv2.resize(crop, (new_width, height), interpolation=interpolation)
        )


class FinePens:
    """Training lines written with a finer pen: strokes thinned by up to ``max_pixels``.

    Rendered strokes measure 1.0-2.7 px at 32 px (10th to 90th percentile,
    ``benchmarks/stroke_widths.py``); a fine pen scanned and scaled down to the model's
    height leaves strokes at the thin end or below it, faint rather than broken. With
    probability ``probability`` a line's strokes are thinned by ``[0.25, max_pixels]``
    pixels in all
    (:func:`~text_recognizer.data.augment.thin_strokes`). Draws come from torch's global
    generator (checkpointed, as for :class:`StretchWidths`).
    """

    def __init__(self, probability: float = 0.3, max_pixels: float = 1.0) -> None:
        self.probability, self.max_pixels = probability, max_pixels

    def __call__(
        self, batch: Sequence[tuple[torch.Tensor, torch.Tensor]]
    ) -> list[tuple[torch.Tensor, torch.Tensor]]:
        out = list(batch)
        for i, (image, target) in enumerate(batch):
            if float(torch.rand(())) < self.probability:
                rng = np.random.default_rng(int(torch.randint(2**31, ())))
                line = thin_strokes(image[0].numpy(), rng, (0.25, self.max_pixels))
                out[i] = (torch.from_numpy(line)[None], target)
        return out


def pad_to_multiple(images: torch.Tensor, multiple: int) -> torch.Tensor:
    """Pad a ``[B, 1, H, W]`` batch with background on the right to a multiple of ``multiple`` px.

    Bucketed line batches come in nearly as many widths as batches, and oneDNN builds
    (JIT-compiles) its convolution kernels per input shape and keeps a bounded number:
    rounded up to 64 px, padding included, a training step of the shipped line network
    ran 1.09-1.21x faster, and a short training run 1.25x
    (``benchmarks/batch_width_padding.py``, ``docs/benchmarks.md``). True widths travel
    beside the batch, so the padding never reaches the BiLSTM or the CTC loss; over the
    shipped config's whole schedule it still cost a little accuracy (``docs/benchmarks.md``).
    """
    extra = -images.shape[-1] % multiple
    return torch.nn.functional.pad(images, (0, extra)) if extra else images


class TrainingLineCollate:
    """Training collate for lines: thin the pen and cut as from a page (per line), pad,
    stretch (per batch), then pad the width to a multiple of ``width_multiple``."""

    def __init__(
        self,
        width_stretch: tuple[float, float] | None = None,
        page_cuts: float = 0.0,
        pad_index: int = DEFAULT_CHARSET.pad,
        fine_pens: float = 0.0,
        width_multiple: int = 1,
    ) -> None:
        self.pens = FinePens(fine_pens) if fine_pens > 0 else None
        self.cut = PageCuts(page_cuts) if page_cuts > 0 else None
        self.stretch = StretchWidths(*width_stretch, pad_index) if width_stretch else None
        self.pad_index = pad_index
        self.width_multiple = width_multiple

    def __call__(
        self, batch: Sequence[tuple[torch.Tensor, torch.Tensor]]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        if self.pens is not None:
            batch = self.pens(batch)
        if self.cut is not None:
            batch = self.cut(batch)
        collated = (
            self.stretch(batch)
            if self.stretch is not None
            else collate_lines(batch, self.pad_index)
        )
        images, widths, targets, lengths = collated
        return pad_to_multiple(images, self.width_multiple), widths, targets, lengths


class EpochShuffleSampler(Sampler[int]):
    """A shuffle that depends only on (seed, epoch), so a resumed run sees the same order.

    Lightning calls ``set_epoch`` at the start of every training epoch. ``resume_at``
    makes the first pass of a given epoch start part-way through it, where a run killed
    mid-epoch stopped. Iteration is lazy: the order is drawn when the first item is asked
    for, after Lightning has set the epoch, even where it made the loader's iterator
    before (as it does when a run resumes).
    """

    def __init__(self, size: int, seed: int = 0) -> None:
        self.size = size
        self.seed = seed
        self.epoch = 0
        self._resume: tuple[int, int] | None = None

    def set_epoch(self, epoch: int) -> None:
        if self._resume is not None and self._resume[0] != epoch:
            self._resume = None  # training has moved on to another epoch
        self.epoch = epoch

    def resume_at(self, epoch: int, skip: int) -> None:
        """Start epoch ``epoch`` at ``skip`` items in; later passes start at the beginning."""
        self.epoch = epoch
        self._resume = (epoch, skip)

    def take_skip(self) -> int:
        """Where this pass starts; clears a pending ``resume_at``."""
        resume, self._resume = self._resume, None
        return resume[1] if resume is not None else 0

    def __len__(self) -> int:
        return self.size

    def order(self) -> torch.Tensor:
        """This epoch's permutation of all items."""
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        return torch.randperm(self.size, generator=generator)

    def __iter__(self) -> Iterator[int]:
        skip = self.take_skip()
        yield from self.order()[skip:].tolist()


class WidthBucketBatchSampler(Sampler[list[int]]):
    """Batches of lines of similar width, in an order that depends only on (seed, epoch).

    Padding every line to the widest in its batch wastes about half the compute on
    random batches of sentence lines; sorting each pool of ``pool`` batches by width
    and then shuffling the batches keeps the randomness and drops most of the padding.
    ``sampler`` is public so Lightning calls its ``set_epoch``; its ``resume_at`` counts
    batches here.
    """

    def __init__(self, widths: np.ndarray, batch_size: int, seed: int = 0, pool: int = 50) -> None:
        self.widths = np.asarray(widths)
        self.batch_size = batch_size
        self.pool = pool
        self.sampler = EpochShuffleSampler(len(self.widths), seed)

    def __len__(self) -> int:
        return -(-len(self.widths) // self.batch_size)

    def __iter__(self) -> Iterator[list[int]]:
        skip = self.sampler.take_skip()
        order = self.sampler.order().numpy()
        span = self.batch_size * self.pool
        batches: list[list[int]] = []
        for start in range(0, len(order), span):
            chunk = order[start : start + span]
            chunk = chunk[np.argsort(self.widths[chunk], kind="stable")]
            batches += [
                chunk[i : i + self.batch_size].tolist()
                for i in range(0, len(chunk), self.batch_size)
            ]
        generator = torch.Generator().manual_seed(
            self.sampler.seed * 1_000_003 + self.sampler.epoch + 1
        )
        for i in torch.randperm(len(batches), generator=generator)[skip:].tolist():
            yield batches[i]


#: The splits each Lightning stage reads; any other stage (``None``) reads all three.
STAGE_SPLITS: dict[str, tuple[str, ...]] = {
    "fit": ("train", "val"),
    "validate": ("val",),
    "test": ("test",),
    "predict": ("test",),
}


def splits_for(stage: str | None) -> tuple[str, ...]:
    return STAGE_SPLITS.get(stage or "", ("train", "val", "test"))


class BaseDataModule(L.LightningDataModule):
    """Splits, loaders and a readable ``__repr__``; subclasses fill the splits."""

    kind: ClassVar[Kind] = "char"

    def __init__(
        self,
        batch_size: int = 128,
        num_workers: int = 0,
        seed: int = 0,
        root: Path | None = None,
        width_stretch: Sequence[float] | None = None,
        page_cuts: float = 0.0,
        fine_pens: float = 0.0,
        width_multiple: int = 1,
    ) -> None:
        super().__init__()
        if not isinstance(width_multiple, int) or not 1 <= width_multiple <= 512:
            raise ConfigError(
                f"width_multiple = {width_multiple!r} must be a whole number of pixels from 1 "
                "(off) to 512, e.g. 64"
            )
        self.width_multiple = width_multiple
        for name, value in (("page_cuts", page_cuts), ("fine_pens", fine_pens)):
            if not 0.0 <= value <= 1.0:
                raise ConfigError(
                    f"{name} = {value} is a probability: use a value in [0, 1], "
                    "e.g. 0.25; 0 turns it off"
                )
        self.page_cuts = float(page_cuts)
        self.fine_pens = float(fine_pens)
        self.width_stretch: tuple[float, float] | None = None
        if width_stretch is not None:
            bounds = [float(v) for v in width_stretch]
            if len(bounds) != 2 or not 0 < bounds[0] <= bounds[1]:
                raise ConfigError(
                    f"width_stretch = {list(width_stretch)} must be [low, high] with "
                    "0 < low <= high, e.g. [0.6, 1.6]; null turns it off"
                )
            self.width_stretch = (bounds[0], bounds[1])
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.seed = seed
        # expanduser: a config's root: ~/data, or zsh's --data-arg root=~/data, is the home's
        self.root = Path(root).expanduser() if root is not None else data_dir()
        self.charset: Charset = DEFAULT_CHARSET
        self.data_train: Dataset[tuple[torch.Tensor, torch.Tensor]] | None = None
        self.data_val: Dataset[tuple[torch.Tensor, torch.Tensor]] | None = None
        self.data_test: Dataset[tuple[torch.Tensor, torch.Tensor]] | None = None
        self._resume: tuple[int, int] | None = None

    @property
    def input_height(self) -> int:
        """Height in pixels of every image this module yields."""
        raise NotImplementedError

    def setup(self, stage: str | None = None) -> None:
        """Fill ``data_train``, ``data_val``, ``data_test`` with what ``stage`` reads
        (:func:`splits_for`; ``None``: every split)."""
        raise NotImplementedError

    def prepare_splits(self, splits: Sequence[str]) -> None:
        """Download or build what reading ``splits`` needs: everything, unless a subclass
        caches each split on its own (then scoring a test split skips the training cache)."""
        del splits
        self.prepare_data()

    def resume_at(self, epoch: int, batches: int) -> None:
        """Start the training data at batch ``batches`` of epoch ``epoch``: where a resumed
        run stopped. Call before the training loader is built."""
        self._resume = (epoch, batches)

    def take_resume(self) -> tuple[int, int] | None:
        """The pending ``resume_at`` position, once: for the training loader being built."""
        resume, self._resume = self._resume, None
        return resume

    def augments_in_workers(self) -> bool:
        """Whether training batches are augmented in loader worker processes: their random
        numbers then come from the workers' own generators, which no checkpoint holds, so
        a resumed run augments differently from an unbroken one."""
        augmented = self.width_stretch is not None or self.page_cuts > 0 or self.fine_pens > 0
        return self.kind == "line" and augmented and self.num_workers > 0

    def empty_split(self, split: str) -> str | None:
        """Why ``split`` holds nothing and what to do, where that is known before the split
        is built (a folder's labels); ``None``: it holds something, or it is not known."""
        del split
        return None

    def training_set(self) -> Dataset[tuple[torch.Tensor, torch.Tensor]] | None:
        """What the training loader draws from: the train split, plus any lines a subclass
        trains on that are not part of the split (a folder's ``rehearsal`` lines)."""
        return self.data_train

    def _loader(self, split: str, shuffle: bool) -> DataLoader[tuple[torch.Tensor, torch.Tensor]]:
        dataset = self.training_set() if split == "train" else getattr(self, f"data_{split}")
        if dataset is None:
            raise RuntimeError(f"call setup() before asking for the {split} loader")
        common = {
            "num_workers": self.num_workers,
            "collate_fn": self.collate_fn(split),
            "persistent_workers": self.num_workers > 0,
            "multiprocessing_context": "spawn" if self.num_workers > 0 else None,
            # Its own generator: starting an epoch then draws nothing from the global RNG,
            # so a run resumed mid-epoch (no new epoch started) draws what an unbroken one does.
            "generator": torch.Generator().manual_seed(self.seed),
        }
        resume = self.take_resume() if shuffle else None  # shuffle: the training loader
        widths = getattr(dataset, "widths", None)
        if shuffle and self.kind == "line" and widths is not None:
            batch_sampler = WidthBucketBatchSampler(widths, self.batch_size, self.seed)
            if resume is not None:
                batch_sampler.sampler.resume_at(*resume)
            return DataLoader(dataset, batch_sampler=batch_sampler, **common)  # type: ignore[arg-type]
        sampler = (
            EpochShuffleSampler(len(dataset), self.seed)
            if shuffle and hasattr(dataset, "__len__")
            else None
        )
        if resume is not None and sampler is not None:
            sampler.resume_at(resume[0], resume[1] * self.batch_size)
        return DataLoader(dataset, batch_size=self.batch_size, sampler=sampler, **common)  # type: ignore[arg-type]

    def collate_fn(self, split: str) -> Callable[..., object] | None:
        """How a split's items become a batch: padded lines, augmented when training."""
        if self.kind != "line":
            return None
        augmented = self.width_stretch is not None or self.page_cuts > 0 or self.fine_pens > 0
        if split == "train" and (augmented or self.width_multiple > 1):
            return TrainingLineCollate(
                self.width_stretch,
                self.page_cuts,
                fine_pens=self.fine_pens,
                width_multiple=self.width_multiple,
            )
        return collate_lines

    def train_dataloader(self) -> DataLoader[tuple[torch.Tensor, torch.Tensor]]:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader[tuple[torch.Tensor, torch.Tensor]]:
        return self._loader("val", shuffle=False)

    def test_dataloader(self) -> DataLoader[tuple[torch.Tensor, torch.Tensor]]:
        return self._loader("test", shuffle=False)

    def _split_sizes(self) -> str:
        parts = []
        for split in ("train", "val", "test"):
            dataset = getattr(self, f"data_{split}")
            parts.append(f"{split}={len(dataset) if dataset is not None else '?'}")
        return ", ".join(parts)

    def __str__(self) -> str:  # Lightning's own __str__ would hide the repr
        return repr(self)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self._split_sizes()}, kind={self.kind}, "
            f"batch_size={self.batch_size}, root={self.root})"
        )


class PageDataModule(BaseDataModule):
    """Pages (kind ``paragraph``), each split built and cached on its own as a
    :class:`PageSet`: read by the Recognizer to measure page reading, never trained on.
    Subclasses say where a split's cache lies and how it is built."""

    kind: ClassVar[Kind] = "paragraph"
    data_train: PageSet | None  # type: ignore[assignment]  # pages, not tensors
    data_val: PageSet | None  # type: ignore[assignment]
    data_test: PageSet | None  # type: ignore[assignment]

    def cache_file(self, split: str) -> Path:
        raise NotImplementedError

    def prepare_data(self) -> None:
        """Build and cache every split not cached yet."""
        self.prepare_splits(("train", "val", "test"))

    def setup(self, stage: str | None = None) -> None:
        """Load the splits ``stage`` reads (all for ``None``), building any not cached yet."""
        wanted = splits_for(stage)
        self.prepare_splits(wanted)
        for split in wanted:
            setattr(self, f"data_{split}", PageSet.read(self.cache_file(split)))

    def split_lines(self, detail: Callable[[PageSet], str] = lambda pages: "") -> list[str]:
        """``__repr__``'s line per split: pages (and ``detail``), lines, size, cache."""
        lines = []
        for split in ("train", "val", "test"):
            pages = getattr(self, f"data_{split}")
            if pages is None:
                lines.append(f"  {split}: not loaded (cache {self.cache_file(split)})")
                continue
            heights = np.array([page.shape[0] for page in pages.pages])
            widths = np.array([page.shape[1] for page in pages.pages])
            megabytes = self.cache_file(split).stat().st_size / 1e6
            lines.append(
                f"  {split}: {len(pages):,} pages{detail(pages)}, {pages.num_lines:,} lines, "
                f"{widths.mean():.0f} x {heights.mean():.0f} px on average, "
                f"cache {self.cache_file(split)} ({megabytes:.1f} MB)"
            )
        return lines
