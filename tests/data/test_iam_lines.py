"""IamLines end to end on a small ``iamdb.zip`` with IAM's layout, served from 127.0.0.1.

The pages are made of the bundled sample lines pasted onto paper at "half resolution",
with XML boxes in full-resolution pixels as IAM's are, so a crop that is cut, scaled or
assigned wrongly reads as a different line.
"""

from __future__ import annotations

import hashlib
import io
import logging
import re
import signal
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np
import pytest
from PIL import Image
from tests.data.memory import traced_peak
from tests.pages import SAMPLE_NAMES, SAMPLES, TRUTHS, sample_line
from typer.testing import CliRunner

from text_recognizer.cli import app
from text_recognizer.data import DATASETS
from text_recognizer.data.iam_lines import IamLines, Line
from text_recognizer.data.module import StripWriter
from text_recognizer.errors import ConfigError, DataError
from text_recognizer.images import load_image
from text_recognizer.preprocessing import prepare_line

if TYPE_CHECKING:
    from http_fixtures import LocalServer

pytest_plugins = ["http_fixtures"]

# form id -> (writer, sample line indices). f04-000's writer also wrote the test form and
# f04-000 is in no LWITLRT set, so it must be left out of training.
FORMS = {
    "f01-000": ("001", [0, 1, 2]),
    "f02-000": ("002", [3, 4]),
    "f03-000": ("003", [5]),
    "f03-001": ("003", [6]),
    "f04-000": ("001", [7]),
}
TASKS = {
    "testset.txt": ["f01-000-00", "f01-000-01"],
    "validationset1.txt": ["f02-000-00"],
    "validationset2.txt": [],
    "trainset.txt": ["f03-000-00"],
}
PAGE_WIDTH, LINE_PITCH, SCALE = 600, 70, 2  # the page image is half the XML's resolution


def form_xml(
    form_id: str, writer: str, boxes: list[tuple[int, int, int, int]], texts: list[str]
) -> str:
    lines = []
    for i, ((x0, y0, x1, y1), text) in enumerate(zip(boxes, texts, strict=True)):
        middle = (x0 + x1) // 2  # two words, two ink components each side of the middle
        escaped = text.replace("&", "&amp;").replace('"', "&quot;")
        lines.append(
            f'<line id="{form_id}-{i:02d}" text="{escaped}" segmentation="ok">'
            f'<word id="{form_id}-{i:02d}-00" text="a"><cmp x="{x0}" y="{y0}" '
            f'width="{middle - x0}" height="{y1 - y0}"/></word>'
            f'<word id="{form_id}-{i:02d}-01" text="b"><cmp x="{middle}" y="{y0 + 4}" '
            f'width="{x1 - middle}" height="{y1 - y0 - 4}"/></word></line>'
        )
    height = SCALE * (60 + LINE_PITCH * len(boxes))
    return (
        f'<?xml version="1.0" encoding="ISO-8859-1"?>\n<form id="{form_id}" writer-id="{writer}" '
        f'width="{SCALE * PAGE_WIDTH}" height="{height}"><machine-printed-part/>'
        f"<handwritten-part>{''.join(lines)}</handwritten-part></form>"
    )


def make_iamdb_zip(leave_out: str = "", page_format: str = "JPEG") -> bytes:
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for form_id, (writer, indices) in FORMS.items():
            page = np.full((60 + LINE_PITCH * len(indices), PAGE_WIDTH), 255, np.uint8)
            boxes, texts = [], []
            for row, index in enumerate(indices):
                name = SAMPLE_NAMES[index]
                line = sample_line(index)
                top, left = 30 + row * LINE_PITCH, 20
                page[top : top + line.shape[0], left : left + line.shape[1]] = line
                ink = line < (255 + int(line.min())) // 2
                rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
                x0, y0 = left + cols[0], top + rows[0]
                x1, y1 = left + cols[-1] + 1, top + rows[-1] + 1
                boxes.append((SCALE * x0, SCALE * y0, SCALE * x1, SCALE * y1))
                texts.append(TRUTHS[name])
            encoded = io.BytesIO()
            Image.fromarray(page).save(encoded, page_format, quality=95)
            if form_id != leave_out:
                zf.writestr(f"iamdb/forms/{form_id}.jpg", encoded.getvalue())
            zf.writestr(f"iamdb/xml/{form_id}.xml", form_xml(form_id, writer, boxes, texts))
        for name, ids in TASKS.items():
            if name != leave_out:
                zf.writestr(f"iamdb/task/{name}", "".join(f"{i}\n" for i in ids))
    return archive.getvalue()


ZIP_BYTES = make_iamdb_zip()
ZIP_SHA = hashlib.sha256(ZIP_BYTES).hexdigest()


@pytest.fixture
def served_zip(http_server: LocalServer) -> str:
    return http_server.add("/iamdb.zip", ZIP_BYTES)


def make_module(root: Path, urls: list[str], **kwargs: object) -> IamLines:
    return IamLines(root=root, urls=urls, sha256=ZIP_SHA, **kwargs)  # type: ignore[arg-type]


def test_download_cut_and_split_writer_independent(
    served_zip: str, http_server: LocalServer, tmp_path: Path
) -> None:
    module = make_module(tmp_path, [served_zip])
    module.prepare_data()
    module.setup()
    assert module.data_train is not None and module.data_val is not None
    assert module.data_test is not None
    # Test and val: the LWITLRT forms, whole. Train: writer 003's forms; f04-000 is
    # writer 001's (a test writer) and is left out.
    assert module.data_test.names == ["f01-000-00", "f01-000-01", "f01-000-02"]
    assert module.data_val.names == ["f02-000-00", "f02-000-01"]
    assert module.data_train.names == ["f03-000-00", "f03-001-00"]
    # Text as written, from the forms' XML, by default.
    assert list(module.data_test.texts) == [TRUTHS[SAMPLE_NAMES[i]] for i in (0, 1, 2)]
    assert "the heart, he" in module.data_test.texts[0]
    assert module.skipped == {"writer held out": 1}
    image, target = module.data_test[0]
    assert image.shape[:2] == (1, 32) and 0.0 <= float(image.min()) < float(image.max()) <= 1.0
    assert len(target) == len(TRUTHS[SAMPLE_NAMES[0]])
    # Whole lines: about as wide as the Recognizer's crop of the sample file (which also
    # keeps some of the file's paper texture at its ends).
    for width, name in zip(module.data_test.widths, SAMPLE_NAMES, strict=False):
        expected = prepare_line(load_image(SAMPLES / name), 32).shape[1]
        assert 0.8 * expected < width <= expected
    assert http_server.hits == {"/iamdb.zip": 1}

    again = make_module(tmp_path, [served_zip])
    again.setup("test")  # cached: no download, and only the test split is loaded
    assert http_server.hits == {"/iamdb.zip": 1}
    assert again.data_train is None and again.data_test is not None
    assert np.array_equal(again.data_test.strip, module.data_test.strip)
    assert "test: 3 lines" in repr(again) and "train: not loaded" in repr(again)


def test_lines_score_as_the_recognizer_reads_them(served_zip: str, tmp_path: Path) -> None:
    from text_recognizer.evaluate import evaluate
    from text_recognizer.metrics import cer
    from text_recognizer.recognizer import Recognizer

    report = evaluate("default", "iam_lines", "test", {"root": tmp_path, "urls": [served_zip],
                                                        "sha256": ZIP_SHA})  # fmt: skip
    paths = [SAMPLES / SAMPLE_NAMES[i] for i in (0, 1, 2)]
    read = Recognizer.from_pretrained().recognize_batch(paths, kind="line")
    direct = cer([r.text for r in read], [TRUTHS[p.name] for p in paths])
    assert report.num_samples == 3
    # Cut from a page and rounded to uint8, the lines read (almost) as the files do; a
    # wrong crop or scale would read as another line, at CER near 1.
    assert report.metrics["cer"] <= direct + 0.03
    assert {sample.name for sample in report.worst} <= {"f01-000-00", "f01-000-01", "f01-000-02"}


def test_cli_downloads_from_the_environment_mirror(
    served_zip: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEXT_RECOGNIZER_IAM_URLS", served_zip)
    monkeypatch.setenv("TEXT_RECOGNIZER_IAM_SHA256", ZIP_SHA)
    runner = CliRunner()
    result = runner.invoke(app, ["data", "info", "iam_lines", "--root", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "test: 3 lines" in result.output and "train: 2 lines" in result.output
    result = runner.invoke(
        app, ["evaluate", "default", "--data", "iam_lines", "--data-arg", f"root={tmp_path}"]
    )
    assert result.exit_code == 0, result.output
    assert "on iam_lines/test (3 samples" in result.output


def test_an_archive_placed_by_hand_is_used_without_the_network(
    tmp_path: Path, refused_url: str
) -> None:
    (tmp_path / "iam").mkdir()
    (tmp_path / "iam" / "iamdb.zip").write_bytes(ZIP_BYTES)
    module = make_module(tmp_path, [refused_url], deslant=False)
    module.setup("fit")
    assert module.data_train is not None and len(module.data_train) == 2


@pytest.mark.parametrize("dataset", ["iam_lines", "iam_paragraphs"])
def test_a_failed_download_says_how_to_use_iam_s_own_files(
    dataset: str, tmp_path: Path, refused_url: str
) -> None:
    """iamdb.zip has one mirror, not IAM's authors': when it fails, being told to fetch the
    file by hand from that same URL is no way forward; registering with IAM's authors is."""
    module = DATASETS.build(dataset, {"root": tmp_path, "urls": [refused_url]})
    with pytest.raises(DataError) as error:
        module.prepare_data()
    message = str(error.value)
    assert f"{refused_url}: cannot connect" in message  # the download's own report first
    assert message.endswith(
        "Or use IAM as its authors distribute it: register at "
        "https://fki.tic.heia-fr.ch/databases/iam-handwriting-database, download lines.tgz, "
        "ascii.tgz, xml.tgz, largeWriterIndependentTextLineRecognitionTask.zip (and "
        "formsA-D.tgz, formsE-H.tgz and formsI-Z.tgz for pages), extract them into one folder "
        "and pass that folder as path= (--data-arg path=FOLDER; see docs/datasets/iam_lines.md)."
    )


@pytest.mark.parametrize(
    ("archive", "message"),
    [
        (b"not a zip at all", "cannot read .* as a zip"),
        (make_iamdb_zip(leave_out="testset.txt"), "no task/testset.txt"),
        (make_iamdb_zip(leave_out="f02-000"), "no forms/f02-000.jpg"),
    ],
)
def test_bad_archives_are_clear_errors(
    archive: bytes, message: str, http_server: LocalServer, tmp_path: Path
) -> None:
    url = http_server.add("/iamdb.zip", archive)
    module = IamLines(root=tmp_path, urls=[url], sha256=hashlib.sha256(archive).hexdigest())
    with pytest.raises(DataError, match=message):
        module.prepare_data()
    assert not list((tmp_path / "iam").glob("*.h5"))  # no cache of a bad archive


def test_a_wrong_checksum_and_bad_arguments_are_refused(served_zip: str, tmp_path: Path) -> None:
    module = IamLines(root=tmp_path, urls=[served_zip], sha256="0" * 64)
    with pytest.raises(DataError, match="sha256 mismatch"):
        module.prepare_data()
    with pytest.raises(ConfigError, match="64 hex digits"):
        IamLines(sha256="abc")
    with pytest.raises(ConfigError, match="padding"):
        DATASETS.build("iam_lines", {"padding": -1})
    for height in (4, 100_000):  # a huge one failed allocating its lines, unexplained
        with pytest.raises(ConfigError, match=f"input_height = {height} must be 8 to 512"):
            DATASETS.build("iam_lines", {"input_height": height})
    with pytest.raises(ConfigError):
        DATASETS.build("iam_lines", {"num_train": 10})  # a synthetic_lines key


def test_cache_key_follows_every_parameter(tmp_path: Path) -> None:
    base = IamLines(root=tmp_path, sha256=ZIP_SHA)
    others = [
        IamLines(root=tmp_path, sha256="1" * 64),
        IamLines(root=tmp_path, sha256=ZIP_SHA, input_height=48),
        IamLines(root=tmp_path, sha256=ZIP_SHA, deslant=False),
        IamLines(root=tmp_path, sha256=ZIP_SHA, padding=8),
    ]
    names = {base.cache_file("test")} | {other.cache_file("test") for other in others}
    assert len(names) == 5
    assert base.cache_file("train") != base.cache_file("test")


def test_a_form_s_handwritten_part_reads_as_a_paragraph(tmp_path: Path) -> None:
    from text_recognizer.data.sources.iam import IamArchive
    from text_recognizer.recognizer import Recognizer

    (tmp_path / "iamdb.zip").write_bytes(ZIP_BYTES)
    with IamArchive(tmp_path / "iamdb.zip") as archive:
        form = next(form for form in archive.forms() if form.id == "f01-000")
        image, text = archive.paragraph(form)
    assert text == "\n".join(TRUTHS[SAMPLE_NAMES[i]] for i in (0, 1, 2))
    read = Recognizer.from_pretrained().recognize(image, kind="paragraph")
    assert len(read.lines) == 3


def tokenised(text: str) -> str:
    """``lines.txt``'s form of a text: punctuation marks are words of their own."""
    return re.sub(r"([,;])", r" \1", text)


def write_official_layout(folder: Path) -> None:
    """The sample lines as IAM's authors distribute lines: PNGs, lines.txt (tokenised
    text), forms.txt, the LWITLRT sets and the forms' XML (text as written)."""
    rows, forms = [], []
    (folder / "xml").mkdir(parents=True)
    for form_id, (writer, indices) in FORMS.items():
        forms.append(f"{form_id} {writer} 2 prt 7 5 52 36")
        boxes = [(0, LINE_PITCH * row, 400, LINE_PITCH * row + 60) for row in range(len(indices))]
        texts = [TRUTHS[SAMPLE_NAMES[index]] for index in indices]
        (folder / "xml" / f"{form_id}.xml").write_text(form_xml(form_id, writer, boxes, texts))
        for row, index in enumerate(indices):
            line_id = f"{form_id}-{row:02d}"
            target = folder / "lines" / form_id.split("-")[0] / form_id / f"{line_id}.png"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes((SAMPLES / SAMPLE_NAMES[index]).read_bytes())
            words = tokenised(TRUTHS[SAMPLE_NAMES[index]]).replace(" ", "|")
            rows.append(f"{line_id} ok 154 19 408 746 1661 89 {words}")
    (folder / "ascii").mkdir()
    header = "#--- lines.txt ---#\n# format: a01-000u-00 ok 154 19 408 746 1663 91 A|MOVE|to\n"
    (folder / "ascii" / "lines.txt").write_text(header + "\n".join(rows) + "\n")
    (folder / "ascii" / "forms.txt").write_text("# forms.txt\n" + "\n".join(forms) + "\n")
    (folder / "task").mkdir()
    for name, ids in TASKS.items():
        (folder / "task" / name).write_text("".join(f"{i}\n" for i in ids))


def test_iam_as_its_authors_distribute_it(tmp_path: Path, refused_url: str) -> None:
    from text_recognizer.evaluate import evaluate
    from text_recognizer.metrics import cer
    from text_recognizer.recognizer import Recognizer

    write_official_layout(tmp_path / "IAM")
    module = IamLines(root=tmp_path / "data", path=tmp_path / "IAM", urls=[refused_url])
    module.setup()  # no download: the folder is the source
    assert module.data_test is not None and module.data_train is not None
    assert module.data_test.names == ["f01-000-00", "f01-000-01", "f01-000-02"]
    assert module.data_train.names == ["f03-000-00", "f03-001-00"]
    # Text as written, from the forms' XML, by default.
    assert list(module.data_test.texts) == [TRUTHS[SAMPLE_NAMES[i]] for i in (0, 1, 2)]
    assert "the heart, he" in module.data_test.texts[0]
    assert module.skipped == {"writer held out": 1}
    # The line files are the sample files, so they score as the Recognizer reads those.
    report = evaluate("default", "iam_lines", "test", {"root": tmp_path / "data",
                                                        "path": tmp_path / "IAM"})  # fmt: skip
    paths = [SAMPLES / SAMPLE_NAMES[i] for i in (0, 1, 2)]
    read = Recognizer.from_pretrained().recognize_batch(paths, kind="line")
    expected = cer([r.text for r in read], [TRUTHS[p.name] for p in paths])
    assert report.metrics["cer"] == pytest.approx(expected, abs=0.02)
    # lines.txt's tokenised text on request, cached apart.
    before = module.cache_file("test")
    tokens = IamLines(root=tmp_path / "data", path=tmp_path / "IAM", transcription="lines.txt")
    assert tokens.cache_file("test") != before
    tokens.setup("test")
    assert tokens.data_test is not None
    assert list(tokens.data_test.texts) == [tokenised(TRUTHS[SAMPLE_NAMES[i]]) for i in (0, 1, 2)]
    assert "the heart , he" in tokens.data_test.texts[0]
    assert "text from lines.txt" in repr(tokens)
    # Another transcription is another cache.
    lines_txt = tmp_path / "IAM" / "ascii" / "lines.txt"
    lines_txt.write_text(lines_txt.read_text().replace("|", " |"))
    assert IamLines(root=tmp_path / "data", path=tmp_path / "IAM").cache_file("test") != before
    xml = tmp_path / "IAM" / "xml" / "f01-000.xml"
    xml.write_text(xml.read_text().replace("the heart", "the hearth"))
    changed = IamLines(root=tmp_path / "data", path=tmp_path / "IAM")
    assert changed.cache_file("test") != before
    changed.setup("test")
    assert changed.data_test is not None and "the hearth, he" in changed.data_test.texts[0]
    # A line image replaced (re-extracted from a corrected lines.tgz) is another cache too.
    image = tmp_path / "IAM" / "lines" / "f01" / "f01-000" / "f01-000-01.png"
    image.write_bytes((SAMPLES / SAMPLE_NAMES[3]).read_bytes())
    replaced = IamLines(root=tmp_path / "data", path=tmp_path / "IAM")
    assert replaced.cache_file("test") != changed.cache_file("test")


class Terminal(io.StringIO):
    """A stderr that says it is a terminal, where tqdm draws the bars it hides in logs."""

    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("quiet", [False, True], ids=["default", "-q"])
def test_building_bars_are_drawn_on_a_terminal_but_not_under_q(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, quiet: bool
) -> None:
    """-q ("only errors") still drew the bars of reading the forms' XML and the lines."""
    write_official_layout(tmp_path / "IAM")
    logger = logging.getLogger("text_recognizer")
    level = logger.level
    logger.setLevel(logging.ERROR if quiet else logging.WARNING)  # setLevel: clears its cache
    monkeypatch.setattr(sys, "stderr", Terminal())
    try:
        IamLines(root=tmp_path / "data", path=tmp_path / "IAM").prepare_data()
    finally:
        logger.setLevel(level)
    drawn = sys.stderr.getvalue()
    assert ("IAM forms' XML" in drawn and "IAM lines" in drawn) != quiet


def test_an_incomplete_official_layout_says_what_is_missing(tmp_path: Path) -> None:
    write_official_layout(tmp_path / "IAM")
    (tmp_path / "IAM" / "ascii" / "forms.txt").unlink()
    with pytest.raises(DataError, match=r"no forms.txt .*extract IAM's lines.tgz, ascii.tgz"):
        IamLines(root=tmp_path / "data", path=tmp_path / "IAM").prepare_data()
    write_official_layout(tmp_path / "IAM2")
    (tmp_path / "IAM2" / "lines" / "f02" / "f02-000" / "f02-000-01.png").unlink()
    with pytest.raises(DataError, match=r"f02-000-01\.png: no such file.*lines\.tgz completely"):
        IamLines(root=tmp_path / "data", path=tmp_path / "IAM2").prepare_data()
    with pytest.raises(DataError, match="no such folder"):
        IamLines(root=tmp_path / "data", path=tmp_path / "nowhere").prepare_data()
    (tmp_path / "iamdb.zip").write_bytes(ZIP_BYTES)
    with pytest.raises(DataError, match=r"iamdb.zip is a file; .*read from <root>/iam/"):
        IamLines(root=tmp_path / "data", path=tmp_path / "iamdb.zip").prepare_data()
    write_official_layout(tmp_path / "IAM3")
    for xml in (tmp_path / "IAM3" / "xml").iterdir():
        xml.unlink()
    with pytest.raises(DataError, match=r"no form XML files.*xml\.tgz.*transcription=lines\.txt"):
        IamLines(root=tmp_path / "data", path=tmp_path / "IAM3").prepare_data()
    IamLines(root=tmp_path / "data", path=tmp_path / "IAM3", transcription="lines.txt").setup()
    write_official_layout(tmp_path / "IAM4")
    (tmp_path / "IAM4" / "xml" / "f02-000.xml").unlink()
    with pytest.raises(DataError, match=r"2 lines of lines.txt \(f02-000-00 ...\) are in no form"):
        IamLines(root=tmp_path / "data", path=tmp_path / "IAM4").prepare_data()
    with pytest.raises(ConfigError, match="needs path="):
        IamLines(root=tmp_path / "data", transcription="lines.txt")
    with pytest.raises(ConfigError, match=r"expected one of xml, lines\.txt"):
        IamLines(root=tmp_path / "data", path=tmp_path / "IAM3", transcription="words")


# Runs IamLines(root=argv[1], sha256=argv[2]).prepare_data(), which stops for good at its
# third page, after creating the file argv[3].
KILLED_BUILD = """
import sys, time
from pathlib import Path
from text_recognizer.data.iam_lines import IamLines, Line
from text_recognizer.data.module import StripWriter
from text_recognizer.data.sources.iam import IamArchive

crops, calls = IamArchive.line_crops, []

def line_crops(archive, form):
    calls.append(form.id)
    if len(calls) == 3:
        Path(sys.argv[3]).touch()
        time.sleep(600)
    return crops(archive, form)

IamArchive.line_crops = line_crops
IamLines(root=Path(sys.argv[1]), sha256=sys.argv[2]).prepare_data()
"""


def test_a_killed_build_leaves_no_cache_and_the_next_build_makes_it_whole(
    tmp_path: Path,
) -> None:
    (tmp_path / "iam").mkdir()
    (tmp_path / "iam" / "iamdb.zip").write_bytes(ZIP_BYTES)
    cutting = tmp_path / "cutting"
    build = subprocess.Popen(
        [sys.executable, "-c", KILLED_BUILD, str(tmp_path), ZIP_SHA, str(cutting)],
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while not cutting.exists() and build.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        build.send_signal(signal.SIGKILL)  # as the OOM killer stops a process: no clean-up
        _, stderr = build.communicate()
    assert cutting.exists() and build.returncode == -signal.SIGKILL, stderr.decode()[-2000:]
    module = IamLines(root=tmp_path, sha256=ZIP_SHA)
    assert not any(module.cache_file(split).exists() for split in ("train", "val", "test"))
    # Every split's cache was being written (the test and val lines were in): none is there.
    files = sorted(file.name for file in (tmp_path / "iam").iterdir())
    assert len([name for name in files if name.endswith(".tmp")]) == 3, files

    module.setup()
    assert [file.name for file in (tmp_path / "iam").iterdir() if file.name.endswith(".tmp")] == []
    assert module.data_test is not None and module.data_val is not None
    assert module.data_train is not None
    assert module.data_test.names == ["f01-000-00", "f01-000-01", "f01-000-02"]
    assert module.data_val.names == ["f02-000-00", "f02-000-01"]
    assert module.data_train.names == ["f03-000-00", "f03-001-00"]


def test_a_build_holds_a_few_lines_at_a_time_not_the_split(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(StripWriter, "BUFFER", 50_000)  # a write every ~3 lines
    crop = np.full((90, 700), 235, np.uint8)  # half a line of IAM's size at 300 dpi
    points = np.stack([np.linspace(20, 680, 80), np.linspace(30, 60, 80)], 1)
    cv2.polylines(crop, [points.astype(np.int32)], False, 40, 3)

    def lines(count: int) -> Iterator[Line]:
        yield from (("train", "t-00", "a", crop), ("val", "v-00", "a", crop))
        yield from (("test", f"a-{i:02d}", "a line", crop) for i in range(count))

    peaks = []
    for count in (1, 20, 40):  # the first: what only a process's first build loads
        module = IamLines(root=tmp_path / str(count), sha256=ZIP_SHA)
        peaks.append(traced_peak(module._build, lines(count), "lines"))
        module.setup("test")
        assert module.data_test is not None and len(module.data_test) == count
    line = module.data_test.image(0)
    assert line.nbytes > 15_000  # 20 lines: ~0.35 MB
    # Held whole, 20 more lines would add twice their size while being written.
    assert peaks[2] < peaks[1] + StripWriter.BUFFER, (
        f"{peaks[1] / 1e6:.2f}, {peaks[2] / 1e6:.2f} MB"
    )
