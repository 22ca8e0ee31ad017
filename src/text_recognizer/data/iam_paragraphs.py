"""IAM paragraphs (real scans) as a DataModule: each form's handwritten part, read as a page.

``prepare_data`` downloads ``iamdb.zip`` (the very file ``iam_lines`` reads, at the same
place: one download serves both), crops the handwritten part of every form to its lines'
boxes (:meth:`~text_recognizer.data.sources.iam.IamArchive.paragraph`), scales it to
``dpi`` and caches each split's pages to HDF5, keyed by the archive's checksum and ``dpi``.
The splits are ``iam_lines``' writer-independent ones, whole forms, so a page and its
lines are scored in the same split. With ``path``, IAM as its authors distribute it
(the forms' scans at 300 dpi, their XML and the LWITLRT sets, extracted into a folder) is
read instead of the zip. Pages are evaluated, not trained on: the Recognizer reads a page
by finding its lines and reading each with the line model.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from tqdm import tqdm

from text_recognizer.charset import DEFAULT_CHARSET
from text_recognizer.data.cache import cache_path, ensure_writable_folder
from text_recognizer.data.module import PageDataModule, PageWriter
from text_recognizer.data.sources.download import RemoteFile, bar_disabled, download
from text_recognizer.data.sources.iam import (
    FORM_ARCHIVES,
    IAM_DPI,
    IAM_OTHERWISE,
    IamArchive,
    iam_remote,
)
from text_recognizer.errors import ConfigError, DataError

log = logging.getLogger(__name__)

PAGES_VERSION = 1  # bump when the pages change, so old caches are not read
#: iamdb.zip stores its pages at this resolution: no resampling, lines ~45 px high.
DEFAULT_DPI = 150
#: IAM's lines, ~90 px high at 300 dpi, are ~22 px here: lower, little would be read.
MIN_DPI = 75


class IamParagraphs(PageDataModule):
    """IAM paragraphs: the handwritten part of each of IAM's 1,539 forms, with its text.

    Args:
        dpi: resolution pages are stored and read at (IAM's scans are 300 dpi;
            ``iamdb.zip`` stores 150, which is read as it is). Lower makes a smaller
            cache, at the cost of lines the line model must enlarge.
        urls, sha256: mirrors and checksum of ``iamdb.zip``, as for ``iam_lines``.
        path: instead of ``iamdb.zip``, a folder holding IAM as its authors distribute it,
            extracted (anywhere under it): the forms' scans (``formsA-D.tgz``,
            ``formsE-H.tgz``, ``formsI-Z.tgz``), their XML (``xml.tgz``) and the LWITLRT
            set files; ``iam_lines``' ``path`` folder with the scans added.
    """

    def __init__(
        self,
        batch_size: int = 1,
        num_workers: int = 0,
        seed: int = 0,
        root: Path | None = None,
        dpi: int = DEFAULT_DPI,
        urls: list[str] | None = None,
        sha256: str | None = None,
        path: str | Path | None = None,
    ) -> None:
        super().__init__(batch_size=batch_size, num_workers=num_workers, seed=seed, root=root)
        if not MIN_DPI <= dpi <= IAM_DPI:
            raise ConfigError(
                f"dpi = {dpi}: use {MIN_DPI} to {IAM_DPI} (IAM's scans are {IAM_DPI} dpi; "
                f"{DEFAULT_DPI}, iamdb.zip's own, is read without resampling)"
            )
        try:
            self.remote: RemoteFile = iam_remote(urls, sha256)
        except ValueError as error:
            raise ConfigError(f"iam_paragraphs: {error}") from None
        self.dpi = dpi
        self.path = None if path is None else Path(path).expanduser()
        self._source_hash: str | None = None
        self.skipped: dict[str, int] = {}

    @property
    def download_dir(self) -> Path:
        """Where ``iamdb.zip`` is downloaded to, or may be placed by hand (as ``iam_lines``)."""
        return self.root / "iam"

    def params(self, split: str) -> dict[str, Any]:
        """Everything that determines a split's cached pages (the cache key)."""
        source = self.remote.sha256 if self.path is None else self._fingerprint()
        return {"pages": PAGES_VERSION, "split": split, "sha256": source, "dpi": self.dpi}

    def _fingerprint(self) -> str:
        if self._source_hash is None:
            with self._open_folder() as folder:
                self._source_hash = folder.fingerprint()
        return self._source_hash

    def _open_folder(self) -> IamArchive:
        assert self.path is not None
        if self.path.is_file():  # iamdb.zip, perhaps: that is read from the data folder
            raise DataError(
                f"{self.path} is a file; path= names the folder IAM's files were extracted "
                "into (without path=, iamdb.zip is read from <root>/iam/)"
            )
        if not self.path.is_dir():
            raise DataError(
                f"{self.path}: no such folder (IAM's {FORM_ARCHIVES}, xml.tgz and "
                "largeWriterIndependentTextLineRecognitionTask.zip are extracted there)"
            )
        return IamArchive(self.path)

    def cache_file(self, split: str) -> Path:
        return cache_path(self.root / "iam", f"iam_paragraphs_{split}", self.params(split))

    def prepare_splits(self, splits: Sequence[str]) -> None:
        # Only the splits asked for: scoring the test split crops ~15 % of the forms.
        missing = [split for split in splits if not self.cache_file(split).exists()]
        if not missing:
            return
        ensure_writable_folder(self.download_dir)  # before the cropping
        if self.path is None:
            archive = IamArchive(download(self.remote, self.download_dir, otherwise=IAM_OTHERWISE))
        else:
            archive = self._open_folder()
        skipped = {"characters outside the charset": 0, "writer held out": 0}
        # Each page is written to its split's cache as it is cropped: all forms are ~1 GB.
        with archive, ExitStack() as stack:
            writers = {
                split: stack.enter_context(PageWriter(self.cache_file(split), self.params(split)))
                for split in missing
            }
            forms = archive.forms()
            split_of = archive.splits(forms)
            skipped["writer held out"] = sum(form.id not in split_of for form in forms)
            chosen = [form for form in forms if split_of.get(form.id) in writers]
            progress = tqdm(
                chosen, desc="IAM paragraphs: cropping", unit="page", disable=bar_disabled()
            )
            for form in progress:
                page, text = archive.paragraph(form, self.dpi)
                if DEFAULT_CHARSET.unknown(text.replace("\n", "")):
                    skipped["characters outside the charset"] += 1
                    continue
                writers[split_of[form.id]].add(page, text, form.id)
            for split, writer in writers.items():
                if not len(writer):  # raised inside the block: no split's cache is kept
                    raise DataError(f"{archive.path}: no forms for the {split} split")
        self.skipped = {reason: count for reason, count in skipped.items() if count}
        if self.skipped:
            log.info("IAM paragraphs left out: %s", self.skipped)

    def __repr__(self) -> str:
        lines = [
            f"{type(self).__name__}: IAM handwritten paragraphs (forms), {self.dpi} dpi",
            f"  source:  {self.path or self.download_dir / self.remote.filename}",
        ]
        lines += self.split_lines()
        return "\n".join(lines)
