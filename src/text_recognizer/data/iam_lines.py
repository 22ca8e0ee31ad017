"""IAM handwritten lines (real scans) as a DataModule: the benchmark real handwriting is read on.

``prepare_data`` downloads ``iamdb.zip`` (checksummed; :mod:`text_recognizer.data.sources.iam`),
cuts every line from its page and prepares it exactly as the Recognizer prepares a user's
line (:func:`~text_recognizer.preprocessing.prepare_line`: levelled, deslanted, cropped to the
ink, scaled to ``input_height``), then caches the three splits to HDF5, keyed by the archive's
checksum and those parameters. The splits are writer-independent
(:meth:`~text_recognizer.data.sources.iam.IamArchive.splits`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from tqdm import tqdm

from text_recognizer.charset import DEFAULT_CHARSET
from text_recognizer.data.cache import cache_path, ensure_writable_folder
from text_recognizer.data.module import BaseDataModule, splits_for
from text_recognizer.data.sources.download import RemoteFile, bar_disabled, download
from text_recognizer.data.sources.iam import (
    IAM_OTHERWISE,
    IamArchive,
    IamLineFiles,
    check_transcription,
    iam_remote,
)
from text_recognizer.data.synthetic_lines import PackedLines, PackedLinesWriter
from text_recognizer.errors import ConfigError, DataError, ImageError
from text_recognizer.images import load_image
from text_recognizer.preprocessing import prepare_line

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")
#: (split or None when left out, line id, text, grey crop or None when left out)
Line = tuple[str | None, str, str, np.ndarray | None]
CROP_VERSION = 1  # bump when the crops change, so old caches are not read


class IamLineSet(PackedLines):
    """Cached IAM lines; ``names`` are the IAM line ids, for evaluation reports."""

    @property
    def names(self) -> list[str]:
        return [str(source) for source in self.sources]


class IamLines(BaseDataModule):
    """IAM lines: ~13,000 lines of 657 writers, scanned, with their transcriptions.

    Args:
        input_height: height lines are scaled to (32: the shipped line model).
        deslant: shear each line to the lean the model reads best, as the Recognizer
            does by default; ``False`` reads lines as ``Recognizer(deslant=False)`` does.
        padding: pixels at 300 dpi around a line's ink boxes before it is prepared
            (at most half the gap to the next line vertically).
        width_stretch, page_cuts, fine_pens, width_multiple: training augmentations and
            batch padding, as for ``synthetic_lines`` (for training or fine-tuning on IAM).
        urls, sha256: mirrors and checksum of ``iamdb.zip`` (default: the FSDL mirror;
            or ``$TEXT_RECOGNIZER_IAM_URLS`` / ``$TEXT_RECOGNIZER_IAM_SHA256``).
        path: instead of ``iamdb.zip``, a folder holding IAM as its authors distribute it,
            extracted (:class:`~text_recognizer.data.sources.iam.IamLineFiles`): their line
            images, ``lines.txt``, ``forms.txt``, the LWITLRT set files and the forms' XML.
        transcription: with ``path``, ``"xml"`` scores against each line's text as written
            (``said, and``; ``iamdb.zip``'s lines are always read so) and ``"lines.txt"``
            against ``lines.txt``'s tokenised text (``said , and``).
    """

    kind: ClassVar = "line"
    data_train: IamLineSet | None
    data_val: IamLineSet | None
    data_test: IamLineSet | None

    def __init__(
        self,
        batch_size: int = 32,
        num_workers: int = 0,
        seed: int = 0,
        root: Path | None = None,
        input_height: int = 32,
        deslant: bool = True,
        padding: int = 16,
        width_stretch: Sequence[float] | None = None,
        page_cuts: float = 0.0,
        fine_pens: float = 0.0,
        width_multiple: int = 1,
        urls: list[str] | None = None,
        sha256: str | None = None,
        path: str | Path | None = None,
        transcription: str = "xml",
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
        if not 8 <= input_height <= 512:  # a huge one failed allocating its lines
            raise ConfigError(f"input_height = {input_height} must be 8 to 512 pixels")
        if padding < 0:
            raise ConfigError(f"padding = {padding} must be 0 or more")
        try:
            self.remote: RemoteFile = iam_remote(urls, sha256)
        except ValueError as error:
            raise ConfigError(f"iam_lines: {error}") from None
        self.height = input_height
        self.deslant = deslant
        self.padding = padding
        if check_transcription(transcription) != "xml" and path is None:
            raise ConfigError(
                f"transcription = {transcription!r} needs path= (IAM as its authors distribute "
                "it): iamdb.zip holds only the forms' XML, whose text is as written"
            )
        self.path = None if path is None else Path(path).expanduser()
        self.transcription = transcription
        self._source_hash: str | None = None
        self.skipped: dict[str, int] = {}

    @property
    def input_height(self) -> int:
        return self.height

    @property
    def download_dir(self) -> Path:
        """Where ``iamdb.zip`` is downloaded to, or may be placed by hand."""
        return self.root / "iam"

    def params(self, split: str) -> dict[str, Any]:
        """Everything that determines a split's cached lines (the cache key)."""
        return {
            "crops": CROP_VERSION,
            "split": split,
            "sha256": self.remote.sha256 if self.path is None else self._fingerprint(),
            "input_height": self.height,
            "deslant": self.deslant,
            "padding": self.padding,
            "transcription": self.transcription,
        }

    def _fingerprint(self) -> str:
        if self._source_hash is None:
            assert self.path is not None
            self._source_hash = IamLineFiles(self.path, self.transcription).fingerprint()
        return self._source_hash

    def cache_file(self, split: str) -> Path:
        return cache_path(self.root / "iam", f"iam_lines_{split}", self.params(split))

    def prepare_data(self) -> None:
        """Download and cut the lines, unless every split is cached already."""
        self.prepare_splits(SPLITS)

    def prepare_splits(self, splits: Sequence[str]) -> None:
        # One pass over the pages (or line files) builds every split.
        if all(self.cache_file(split).exists() for split in splits):
            return
        ensure_writable_folder(self.cache_file(SPLITS[0]).parent)  # before the cutting
        if self.path is not None:
            files = IamLineFiles(self.path, self.transcription)
            self._build(self._official_lines(files), str(self.path))
            return
        archive_path = download(self.remote, self.download_dir, otherwise=IAM_OTHERWISE)
        with IamArchive(archive_path, self.padding) as archive:
            self._build(self._archive_lines(archive), str(archive_path))

    def _archive_lines(self, archive: IamArchive) -> Iterator[Line]:
        forms = archive.forms()
        split_of = archive.splits(forms)
        for form in tqdm(
            forms, desc="IAM lines: cutting pages", unit="page", disable=bar_disabled()
        ):
            split = split_of.get(form.id)
            if split is None:
                yield from ((None, line.id, line.text, None) for line in form.lines)
                continue
            for line, crop in archive.line_crops(form):
                yield split, line.id, line.text, crop

    def _official_lines(self, files: IamLineFiles) -> Iterator[Line]:
        split_of = files.splits()
        for line_id, text, png in tqdm(
            files.lines(), desc="IAM lines", unit="line", disable=bar_disabled()
        ):
            split = split_of.get(line_id.rsplit("-", 1)[0])
            if split is None:
                yield None, line_id, text, None
                continue
            try:
                yield split, line_id, text, load_image(png)
            except ImageError as error:
                raise DataError(f"{error}: extract IAM's lines.tgz completely") from None

    def _build(self, source: Iterator[Line], where: str) -> None:
        skipped = {"characters outside the charset": 0, "no ink": 0, "writer held out": 0}
        # Each line is written to its split's cache as it is prepared; a split's cache
        # appears only once every split is complete.
        with ExitStack() as stack:
            writers = {
                split: stack.enter_context(
                    PackedLinesWriter(self.cache_file(split), self.params(split), self.height)
                )
                for split in SPLITS
            }
            for split, line_id, text, crop in source:
                if split is None or crop is None:
                    skipped["writer held out"] += 1
                    continue
                if DEFAULT_CHARSET.unknown(text):
                    skipped["characters outside the charset"] += 1
                    continue
                try:
                    prepared = prepare_line(crop, self.height, deslant=self.deslant)
                except ImageError:
                    skipped["no ink"] += 1
                    continue
                line = np.rint(prepared * 255).astype(np.uint8)
                writers[split].add([line], [text], [line_id])
            empty = [split for split in SPLITS if not len(writers[split])]
            if empty:  # raised inside the block: no split's cache is kept
                raise DataError(f"{where}: no lines for the {empty[0]} split")
        self.skipped = {reason: count for reason, count in skipped.items() if count}
        if self.skipped:
            log.info("IAM lines left out: %s", self.skipped)

    def setup(self, stage: str | None = None) -> None:
        """Load the splits ``stage`` reads (all for ``None``), building the caches if needed."""
        wanted = splits_for(stage)
        self.prepare_splits(wanted)
        for split in wanted:
            setattr(self, f"data_{split}", IamLineSet.read(self.cache_file(split)))

    def __repr__(self) -> str:
        lines = [
            f"{type(self).__name__}: IAM handwritten lines, {self.height} px high, "
            f"deslant={self.deslant}, padding={self.padding}",
            f"  source:  {self.path or self.download_dir / self.remote.filename}"
            + (f" (text from {self.transcription})" if self.path is not None else ""),
        ]
        for split in SPLITS:
            dataset = getattr(self, f"data_{split}")
            if dataset is None:
                lines.append(f"  {split}: not loaded (cache {self.cache_file(split)})")
                continue
            widths = dataset.widths
            lines.append(
                f"  {split}: {len(dataset):,} lines, width {widths.mean():.0f} px "
                f"(min {widths.min()}, max {widths.max()}), cache {self.cache_file(split)}"
            )
        return "\n".join(lines)
