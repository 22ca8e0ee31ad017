"""The IAM Handwriting Database as the FSDL lineage mirrors it: scanned forms and their XML.

IAM (Marti & Bunke, 2002) holds 1,539 pages of English prose (sentences of the LOB corpus)
written by 657 people and scanned at 300 dpi. FSDL's ``iamdb.zip`` holds
``iamdb/forms/<form>.jpg`` (the pages, stored at half resolution), ``iamdb/xml/<form>.xml``
(each handwritten line's text and the boxes of its ink components, in full-resolution
pixels) and ``iamdb/task/*.txt`` (the line ids of the Large Writer Independent Text Line
Recognition Task, LWITLRT). Lines are cut from the pages by their boxes, straight out of
the zip: nothing is extracted to disk. The scale between the XML's pixels and the page
image's comes from the form's own ``width``, so full-resolution pages read the same way:
those of IAM as its authors distribute it (``formsA-D.tgz`` ..., ``xml.tgz`` and the
LWITLRT sets extracted into a folder), which :class:`IamArchive` reads as well.
"""

from __future__ import annotations

import hashlib
import io
import logging
import re
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from xml.etree.ElementTree import Element

import cv2
import numpy as np
from defusedxml import ElementTree
from PIL import Image, UnidentifiedImageError
from tqdm import tqdm

from text_recognizer.data.sources.download import RemoteFile, bar_disabled, remote_file
from text_recognizer.errors import ConfigError, DataError
from text_recognizer.images import MAX_PIXELS

log = logging.getLogger(__name__)

IAM_DPI = 300  # the forms' full resolution, in which the XML's boxes are given
IAM_FILENAME = "iamdb.zip"
IAM_SHA256 = "f3c9e87a88a313e557c6d3548ed8a2a1af2dc3c4a678c5f3fc6f972ba4a50c55"
IAM_URLS: tuple[str, ...] = (
    "https://s3-us-west-2.amazonaws.com/fsdl-public-assets/iam/iamdb.zip",  # FSDL mirror
)
ENV_PREFIX = "TEXT_RECOGNIZER_IAM"  # _URLS, _SHA256: see remote_file
#: The LWITLRT set files, and the split that each one's forms belong to.
TASK_SETS = {"testset.txt": "test", "validationset1.txt": "val", "validationset2.txt": "val"}
_XML = re.compile(r"(?:^|/)xml/([^/]+)\.xml$")
_PAGE = re.compile(r"(?:^|/)forms/([^/]+)\.(?:jpg|jpeg|png)$", re.IGNORECASE)
_TASK = re.compile(r"(?:^|/)task/([^/]+\.txt)$")
_FORM_ID = re.compile(r"[a-z]\d\d-\d\d\d[a-z]?")  # a01-000u
#: IAM's form scans, as its authors distribute them (each archive extracts to <form>.png).
FORM_ARCHIVES = "formsA-D.tgz, formsE-H.tgz and formsI-Z.tgz"
#: When iamdb.zip cannot be had: its only mirror is not IAM's authors', who offer the data
#: to whoever registers.
IAM_OTHERWISE = (
    "Or use IAM as its authors distribute it: register at "
    "https://fki.tic.heia-fr.ch/databases/iam-handwriting-database, download lines.tgz, "
    f"ascii.tgz, xml.tgz, largeWriterIndependentTextLineRecognitionTask.zip (and {FORM_ARCHIVES} "
    "for pages), extract them into one folder and pass that folder as path= "
    "(--data-arg path=FOLDER; see docs/datasets/iam_lines.md)."
)


def iam_remote(urls: Sequence[str] | None = None, sha256: str | None = None) -> RemoteFile:
    """The archive to fetch: explicit arguments, else ``$TEXT_RECOGNIZER_IAM_URLS`` /
    ``$TEXT_RECOGNIZER_IAM_SHA256``, else FSDL's mirror."""
    return remote_file(IAM_FILENAME, IAM_SHA256, IAM_URLS, ENV_PREFIX, urls, sha256)


@dataclass(frozen=True)
class IamLine:
    """One handwritten line of a form: its id (``a01-000u-00``), text and padded box
    ``(x0, y0, x1, y1)`` in the XML's full-resolution pixels."""

    id: str
    text: str
    box: tuple[int, int, int, int]


@dataclass(frozen=True)
class IamForm:
    id: str  # "a01-000u"
    writer: str
    width: int  # of the full-resolution page, for the page image's scale
    lines: tuple[IamLine, ...]

    @property
    def boxes(self) -> list[tuple[int, int, int, int]]:
        return [line.box for line in self.lines]


class IamArchive:
    """``iamdb.zip``, or IAM as its authors distribute it extracted into a folder, opened
    for reading: its forms, the LWITLRT splits and line crops.

    Args:
        path: the archive, or the folder (the forms' scans, ``<form>.png``, and their
            XML, ``<form>.xml``, and the LWITLRT set files anywhere under it).
        padding: pixels (full resolution) added around each line's ink boxes; vertically
            at most half the gap to the neighbouring lines, so a crop holds little of them.
    """

    def __init__(self, path: Path, padding: int = 16) -> None:
        self.path = path
        self.padding = padding
        self._zip: zipfile.ZipFile | None = None
        if path.is_dir():
            self._open_folder()
            return
        try:
            self._zip = zipfile.ZipFile(path)
            names = self._zip.namelist()
        except (zipfile.BadZipFile, OSError) as error:
            raise DataError(
                f"cannot read {path} as a zip ({error}); delete it and download it again"
            ) from error
        self._xml = {m[1]: name for name in names if (m := _XML.search(name))}
        self._pages = {m[1]: name for name in names if (m := _PAGE.search(name))}
        self._tasks = {m[1]: name for name in names if (m := _TASK.search(name))}
        if not self._xml:
            shown = ", ".join(names[:5])
            raise DataError(
                f"{path} holds no xml/<form>.xml files (it holds: {shown}); it is not the "
                "IAM archive iamdb.zip (forms/, xml/, task/): delete it and download it again"
            )

    def _open_folder(self) -> None:
        """Files found by name, anywhere under the folder: the authors' archives extract
        flat or into folders, as they were unpacked."""
        self._xml, self._pages, self._tasks = {}, {}, {}
        for file in sorted(self.path.rglob("*")):
            member, suffix = file.relative_to(self.path).as_posix(), file.suffix.lower()
            if file.name in TASK_SETS:
                self._tasks[file.name] = member
            elif _FORM_ID.fullmatch(file.stem) and suffix == ".xml":
                self._xml[file.stem] = member
            elif _FORM_ID.fullmatch(file.stem) and suffix in (".png", ".jpg", ".jpeg"):
                self._pages[file.stem] = member
        if not self._xml:
            raise DataError(
                f"{self.path} has no form XML files (a01-000u.xml ...), which hold the lines' "
                "places and text: extract IAM's xml.tgz into it"
            )

    def __enter__(self) -> IamArchive:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._zip is not None:
            self._zip.close()

    def _read(self, member: str) -> bytes:
        if self._zip is None:
            try:
                return (self.path / member).read_bytes()
            except OSError as error:
                raise DataError(f"cannot read {self.path / member} ({error})") from error
        try:
            return self._zip.read(member)
        except (zipfile.BadZipFile, OSError, RuntimeError) as error:  # CRC errors are BadZipFile
            raise DataError(
                f"{self.path}: {member} is corrupt ({error}); "
                "delete the archive and download it again"
            ) from error

    def fingerprint(self) -> str:
        """A hash of a folder's XML and set files and of its scans' names and sizes: the
        cache key's source (reading every scan would take minutes)."""
        digest = hashlib.sha256()
        for member in [*sorted(self._xml.values()), *sorted(self._tasks.values())]:
            digest.update(member.encode() + self._read(member))
        for member in sorted(self._pages.values()):
            digest.update(f"{member} {(self.path / member).stat().st_size}".encode())
        return digest.hexdigest()

    def forms(self) -> list[IamForm]:
        """Every form whose XML lists handwritten lines, sorted by id."""
        return [form for key in sorted(self._xml) if (form := self._form(key)).lines]

    def _form(self, key: str) -> IamForm:
        member = self._xml[key]
        try:
            root = ElementTree.fromstring(self._read(member))
            lines = _lines(root.findall("handwritten-part/line"), self.padding)
            return IamForm(
                root.attrib["id"], root.attrib["writer-id"], int(root.attrib["width"]), lines
            )
        except (ElementTree.ParseError, KeyError, ValueError) as error:
            raise DataError(
                f"{self.path}: {member} is not an IAM form description ({error!r})"
            ) from error

    def splits(self, forms: Sequence[IamForm]) -> dict[str, str]:
        """Form id -> ``train`` / ``val`` / ``test`` (:func:`writer_independent_splits`)."""
        missing = [name for name in TASK_SETS if name not in self._tasks]
        if missing and self._zip is None:
            raise DataError(
                f"{self.path} has no {missing[0]} (anywhere under it), a set of the LWITLRT "
                "split: extract largeWriterIndependentTextLineRecognitionTask.zip into it"
            )
        if missing:
            raise DataError(
                f"{self.path} has no task/{missing[0]} (the LWITLRT split); it is not the "
                "full IAM archive iamdb.zip: delete it and download it again"
            )
        task_sets = {name: self._read(self._tasks[name]).decode() for name in TASK_SETS}
        return writer_independent_splits({form.id: form.writer for form in forms}, task_sets)

    def page(self, form: IamForm) -> np.ndarray:
        """The form's scanned page as uint8 grey (dark ink on light paper)."""
        member = self._pages.get(form.id)
        if member is None and self._zip is None:
            raise DataError(
                f"{self.path} has no {form.id}.png, the scan of form {form.id} (anywhere under "
                f"it): extract IAM's {FORM_ARCHIVES} into it"
            )
        if member is None:
            raise DataError(
                f"{self.path} has no forms/{form.id}.jpg for xml/{form.id}.xml; the archive "
                "is incomplete: delete it and download it again"
            )
        try:
            with Image.open(io.BytesIO(self._read(member))) as image:
                if image.width * image.height > MAX_PIXELS:
                    raise DataError(f"{self.path}: {member} is {image.width}x{image.height} pixels")
                return np.asarray(image.convert("L"))
        except (UnidentifiedImageError, Image.DecompressionBombError, OSError) as error:
            again = (
                "delete the archive and download it again"
                if self._zip is not None
                else f"extract it again from IAM's {FORM_ARCHIVES}"
            )
            raise DataError(
                f"{self.path}: {member} is not a readable image ({error}); {again}"
            ) from error

    def paragraph(self, form: IamForm, dpi: int | None = None) -> tuple[np.ndarray, str]:
        """The handwritten part of the form (every line's box) and its text, lines joined
        by newlines; scaled to ``dpi`` (``IAM_DPI`` is full resolution), or as stored."""
        page = self.page(form)
        scale = page.shape[1] / form.width
        x0, y0 = (max(0, round(min(box[i] for box in form.boxes) * scale)) for i in (0, 1))
        x1, y1 = (round(max(box[i] for box in form.boxes) * scale) for i in (2, 3))
        crop, text = page[y0:y1, x0:x1], "\n".join(line.text for line in form.lines)
        factor = 1.0 if dpi is None else dpi / IAM_DPI / scale
        if abs(factor - 1) < 0.01:  # iamdb.zip's pages at 150 dpi: resampling would only blur
            return crop, text
        shrink = cv2.INTER_AREA if factor < 1 else cv2.INTER_CUBIC
        return cv2.resize(crop, None, fx=factor, fy=factor, interpolation=shrink), text

    def line_crops(self, form: IamForm) -> Iterator[tuple[IamLine, np.ndarray]]:
        """Each line of ``form`` with its crop of the page (uint8 grey, dark ink)."""
        page = self.page(form)
        scale = page.shape[1] / form.width
        for line in form.lines:
            x0, y0, x1, y1 = (round(v * scale) for v in line.box)
            x0, y0 = max(0, x0), max(0, y0)
            crop = page[y0 : min(y1, page.shape[0]), x0 : min(x1, page.shape[1])]
            if crop.size:
                yield line, crop


def _lines(elements: Sequence[Element], padding: int) -> tuple[IamLine, ...]:
    """Lines with their padded boxes; a line without ink boxes (none in IAM) is skipped."""
    found: list[tuple[str, str, tuple[int, int, int, int]]] = []
    for element in elements:
        boxes = [
            tuple(int(c.attrib[key]) for key in ("x", "y", "width", "height"))
            for c in element.findall("word/cmp")
        ]
        if not boxes:
            continue
        box = (
            min(x for x, _, _, _ in boxes),
            min(y for _, y, _, _ in boxes),
            max(x + w for x, _, w, _ in boxes),
            max(y + h for _, y, _, h in boxes),
        )
        found.append((element.attrib["id"], _line_text(element), box))
    lines = []
    for i, (line_id, text, (x0, y0, x1, y1)) in enumerate(found):
        # Neighbouring lines' boxes may overlap (descenders): then no vertical padding.
        above = y0 - found[i - 1][2][3] if i > 0 else 2 * padding
        below = found[i + 1][2][1] - y1 if i + 1 < len(found) else 2 * padding
        top = min(padding, max(above, 0) // 2)
        bottom = min(padding, max(below, 0) // 2)
        lines.append(IamLine(line_id, text, (x0 - padding, y0 - top, x1 + padding, y1 + bottom)))
    return tuple(lines)


def _line_text(element: Element) -> str:
    """A line's text as written (``said, and``); the parser turns &quot; into '"', and
    some files escape it twice."""
    return element.attrib["text"].replace("&quot;", '"')


def writer_independent_splits(
    writers: Mapping[str, str], task_sets: Mapping[str, str]
) -> dict[str, str]:
    """Form id -> ``train`` / ``val`` / ``test``, from every form's writer and the text of
    each LWITLRT set file (``TASK_SETS``: line ids).

    Test and validation are the forms of LWITLRT's test and validation lines (as FSDL
    splits IAM, whole forms). Training takes every other form whose writer wrote none of
    those, so no hand is both trained on and scored: the forms of a test or validation
    writer outside those sets are left out.
    """
    split_of: dict[str, str] = {}
    for name, split in TASK_SETS.items():
        for line_id in task_sets[name].split():
            form_id = line_id.rsplit("-", 1)[0]
            # A form in both lists (none in the real sets) is scored as test.
            if split_of.get(form_id) != "test":
                split_of[form_id] = split
    held_out = {writers[form] for form in split_of if form in writers}
    for form, writer in writers.items():
        if form not in split_of and writer not in held_out:
            split_of[form] = "train"
    return split_of


#: Where a line's text comes from, in IAM as its authors distribute it.
TRANSCRIPTIONS = ("xml", "lines.txt")


def check_transcription(transcription: str) -> str:
    if transcription not in TRANSCRIPTIONS:
        raise ConfigError(
            f"transcription = {transcription!r}: expected one of {', '.join(TRANSCRIPTIONS)}"
        )
    return transcription


class IamLineFiles:
    """IAM as its authors distribute it, extracted into one folder (after registering):
    the line images (``lines.tgz``: ``lines/a01/a01-000u/a01-000u-00.png``), ``lines.txt``
    and ``forms.txt`` (``ascii.tgz``), the LWITLRT set files
    (``largeWriterIndependentTextLineRecognitionTask.zip``) and, for the default
    transcription, the forms' XML (``xml.tgz``: ``a01-000u.xml``), anywhere under the folder.

    Args:
        folder: where they were extracted.
        transcription: ``"xml"`` takes each line's text as written from its form's XML
            (``said, and``), as ``iamdb.zip``'s lines have it; ``"lines.txt"`` takes
            ``lines.txt``'s tokenised text, the ``|`` between words read as spaces
            (``said , and``), as IAM line benchmarks trained on it score. A model that
            writes punctuation as written pays one error per separated mark there.
    """

    NEEDED = ("lines.txt", "forms.txt", *TASK_SETS)

    def __init__(self, folder: Path, transcription: str = "xml") -> None:
        self.folder = Path(folder)
        self.transcription = check_transcription(transcription)
        if self.folder.is_file():  # iamdb.zip, perhaps: that is read from the data folder
            raise DataError(
                f"{self.folder} is a file; path= names the folder IAM's files were extracted "
                "into (without path=, iamdb.zip is read from <root>/iam/)"
            )
        if not self.folder.is_dir():
            raise DataError(f"{self.folder}: no such folder (IAM's extracted files go there)")
        self.files: dict[str, Path] = {}
        for name in self.NEEDED:
            found = sorted(self.folder.rglob(name))
            if not found:
                raise DataError(
                    f"{self.folder} has no {name} (anywhere under it): extract IAM's "
                    "lines.tgz, ascii.tgz and largeWriterIndependentTextLineRecognitionTask.zip "
                    "into it"
                )
            self.files[name] = found[0]
        self.xml_files: list[Path] = []
        if transcription == "xml":
            self.xml_files = sorted(
                path for path in self.folder.rglob("*.xml") if _FORM_ID.fullmatch(path.stem)
            )
            if not self.xml_files:
                raise DataError(
                    f"{self.folder} has no form XML files (a01-000u.xml ...), which hold the "
                    "lines' text as written: extract IAM's xml.tgz into it, or pass "
                    "transcription=lines.txt to score against lines.txt's tokenised text"
                )

    def fingerprint(self) -> str:
        """A hash of the transcriptions, writers and sets, and of the line images' names and
        sizes: the cache key's source (reading every image would take minutes; a line image
        added, removed or replaced by another changes its name or, all but always, its size)."""
        digest = hashlib.sha256(self.transcription.encode())
        for path in [self.files[name] for name in self.NEEDED] + self.xml_files:
            digest.update(path.read_bytes())
        for path in sorted(self.folder.rglob("*.png")):
            digest.update(f"{path.relative_to(self.folder)} {path.stat().st_size}".encode())
        return digest.hexdigest()

    def lines(self) -> list[tuple[str, str, Path]]:
        """(line id, text, image path) for every line of ``lines.txt``, in its order."""
        text = self.files["lines.txt"].read_text(encoding="utf-8", errors="replace")
        rows = []
        for number, row in enumerate(text.splitlines(), 1):
            if not row.strip() or row.startswith("#"):
                continue
            fields = row.split(" ", 8)
            if len(fields) != 9:
                raise DataError(f"{self.files['lines.txt']}:{number}: not a lines.txt row: {row!r}")
            rows.append((fields[0], fields[8].replace("|", " ").replace("&quot;", '"')))
        if not rows:
            raise DataError(f"{self.files['lines.txt']} lists no lines")
        if self.transcription == "xml":
            written = self._written()
            missing = [line_id for line_id, _ in rows if line_id not in written]
            if len(missing) > len(rows) // 100:  # more than a stray line: files are missing
                raise DataError(
                    f"{self.folder}: {len(missing)} lines of lines.txt ({missing[0]} ...) are "
                    "in no form XML file: extract IAM's xml.tgz completely"
                )
            if missing:
                log.warning("IAM: %d lines of lines.txt are in no form XML, left out: %s",
                            len(missing), ", ".join(missing[:5]))  # fmt: skip
            rows = [(line_id, written[line_id]) for line_id, _ in rows if line_id in written]
        images = self._images_folder(rows[0][0])
        return [(line_id, words, images / _line_path(line_id)) for line_id, words in rows]

    def _written(self) -> dict[str, str]:
        """Line id -> its text as written, from every form's XML."""
        texts = {}
        for path in tqdm(
            self.xml_files, desc="IAM forms' XML", unit="form", disable=bar_disabled()
        ):
            try:
                root = ElementTree.fromstring(path.read_bytes())
                for element in root.findall("handwritten-part/line"):
                    texts[element.attrib["id"]] = _line_text(element)
            except (ElementTree.ParseError, KeyError) as error:
                raise DataError(f"{path} is not an IAM form description ({error!r})") from error
        return texts

    def splits(self) -> dict[str, str]:
        """Form id -> split (:func:`writer_independent_splits`), writers from ``forms.txt``."""
        writers = {}
        for row in self.files["forms.txt"].read_text(errors="replace").splitlines():
            fields = row.split()
            if len(fields) >= 2 and not row.startswith("#"):
                writers[fields[0]] = fields[1]
        task_sets = {name: self.files[name].read_text() for name in TASK_SETS}
        return writer_independent_splits(writers, task_sets)

    def _images_folder(self, line_id: str) -> Path:
        """The folder under which ``a01/a01-000u/a01-000u-00.png`` and the rest lie."""
        for candidate in sorted(self.folder.rglob(f"{line_id}.png")):
            return candidate.parents[2]
        raise DataError(
            f"{self.folder} has no {line_id}.png (the first line of lines.txt): extract "
            "IAM's lines.tgz into it"
        )


def _line_path(line_id: str) -> Path:
    form = line_id.rsplit("-", 1)[0]
    return Path(form.split("-")[0]) / form / f"{line_id}.png"
