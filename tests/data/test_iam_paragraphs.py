"""IamParagraphs on the small ``iamdb.zip`` that ``test_iam_lines`` builds, served from
127.0.0.1, and pages evaluated as the Recognizer reads them (IAM's and a folder's)."""

from __future__ import annotations

import hashlib
import io
import json
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest
from PIL import Image
from test_iam_lines import FORMS, ZIP_BYTES, ZIP_SHA, form_xml, make_iamdb_zip, served_zip
from tests.data.memory import traced_peak
from tests.pages import SAMPLE_NAMES, TRUTHS, compose_page
from typer.testing import CliRunner

from text_recognizer.cli import app
from text_recognizer.data import DATASETS
from text_recognizer.data.iam_lines import IamLines
from text_recognizer.data.iam_paragraphs import IamParagraphs
from text_recognizer.data.module import PageSet
from text_recognizer.data.sources.iam import IamArchive
from text_recognizer.errors import ConfigError, DataError
from text_recognizer.evaluate import evaluate

if TYPE_CHECKING:
    from http_fixtures import LocalServer

pytest_plugins = ["http_fixtures"]
__all__ = ["served_zip"]  # the fixture, shared with test_iam_lines


def truth(form_id: str) -> str:
    return "\n".join(TRUTHS[SAMPLE_NAMES[i]] for i in FORMS[form_id][1])


def test_pages_are_cropped_per_split_from_the_archive_iam_lines_downloaded(
    served_zip: str, http_server: LocalServer, tmp_path: Path
) -> None:
    IamLines(root=tmp_path, urls=[served_zip], sha256=ZIP_SHA).prepare_data()
    module = IamParagraphs(root=tmp_path, urls=[served_zip], sha256=ZIP_SHA)
    module.setup("test")
    assert http_server.hits == {"/iamdb.zip": 1}  # the same file: not downloaded again
    assert not module.cache_file("train").exists()  # only what was asked for is cropped
    assert module.data_test is not None and module.data_test.names == ["f01-000"]
    page, text = module.data_test[0]
    assert text == truth("f01-000")
    with IamArchive(tmp_path / "iam" / "iamdb.zip") as archive:
        form = next(form for form in archive.forms() if form.id == "f01-000")
        stored, _ = archive.paragraph(form)
    # 150 dpi is how iamdb.zip stores its pages: the crop as it is, not resampled.
    assert page.dtype == np.uint8 and np.array_equal(page, stored)

    module.setup()
    assert module.data_val is not None and module.data_val.names == ["f02-000"]
    # f04-000 is by the test form's writer: held out, as from iam_lines' training lines.
    assert module.data_train is not None and module.data_train.names == ["f03-000", "f03-001"]
    assert module.data_val.texts == [truth("f02-000")] and module.data_val.num_lines == 2
    assert module.skipped == {"writer held out": 1}
    assert "test: 1 pages, 3 lines" in repr(module) and "150 dpi" in repr(module)

    # Cached: read again without the archive, and a build elsewhere gives the same pages.
    (tmp_path / "iam" / "iamdb.zip").unlink()
    again = IamParagraphs(root=tmp_path, urls=[served_zip], sha256=ZIP_SHA)
    again.setup("test")
    assert again.data_test is not None and np.array_equal(again.data_test[0][0], page)
    elsewhere = IamParagraphs(root=tmp_path / "other", urls=[served_zip], sha256=ZIP_SHA)
    elsewhere.setup()
    for split in ("train", "val", "test"):
        built, read = getattr(elsewhere, f"data_{split}"), getattr(module, f"data_{split}")
        assert built.texts == read.texts and built.names == read.names
        assert all(np.array_equal(a, b) for a, b in zip(built.pages, read.pages, strict=True))


def test_a_lower_dpi_scales_the_pages_and_the_cache_key_follows_it(
    served_zip: str, tmp_path: Path
) -> None:
    (tmp_path / "iam").mkdir()
    (tmp_path / "iam" / "iamdb.zip").write_bytes(ZIP_BYTES)
    full = IamParagraphs(root=tmp_path, sha256=ZIP_SHA)
    small = IamParagraphs(root=tmp_path, sha256=ZIP_SHA, dpi=100)
    for module in (full, small):
        module.setup("test")
    assert full.data_test is not None and small.data_test is not None
    (high, wide), (low, narrow) = full.data_test[0][0].shape, small.data_test[0][0].shape
    assert abs(low - high * 2 / 3) <= 1 and abs(narrow - wide * 2 / 3) <= 1
    names = {
        full.cache_file("test"),
        small.cache_file("test"),
        full.cache_file("val"),
        IamParagraphs(root=tmp_path, sha256="1" * 64).cache_file("test"),
        IamLines(root=tmp_path, sha256=ZIP_SHA).cache_file("test"),
    }
    assert len(names) == 5
    same = IamParagraphs(root=tmp_path, sha256=ZIP_SHA)
    assert same.cache_file("test") == full.cache_file("test")


def write_authors_layout(folder: Path, leave_out: str = "") -> None:
    """The test archive as IAM's authors distribute it: the scans at full resolution
    (formsA-D.tgz ... extract flat), xml/ (xml.tgz) and the LWITLRT set files."""
    with zipfile.ZipFile(io.BytesIO(ZIP_BYTES)) as archive:
        for member in archive.namelist():
            name = member.rsplit("/", 1)[-1]
            if member.startswith("iamdb/forms/") and name[:-4] != leave_out:
                page = Image.open(io.BytesIO(archive.read(member)))
                page = page.resize((page.width * 2, page.height * 2), Image.Resampling.BICUBIC)
                page.save(folder / name.replace(".jpg", ".png"))
            elif name != leave_out and name.endswith((".xml", ".txt")):
                target = folder / member.split("/")[1] / name
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(archive.read(member))


def test_iam_as_its_authors_distribute_it(
    served_zip: str, tmp_path: Path, refused_url: str
) -> None:
    (tmp_path / "IAM").mkdir()
    write_authors_layout(tmp_path / "IAM")
    module = IamParagraphs(root=tmp_path / "data", path=tmp_path / "IAM", urls=[refused_url])
    module.setup()  # no download: the folder is the source
    assert module.data_test is not None and module.data_train is not None
    assert module.data_test.names == ["f01-000"] and module.data_test.texts == [truth("f01-000")]
    assert module.data_train.names == ["f03-000", "f03-001"]
    # Full-resolution scans scaled to 150 dpi: the zip's pages, give or take a pixel.
    zipped = IamParagraphs(root=tmp_path / "zipped", urls=[served_zip], sha256=ZIP_SHA)
    zipped.setup("test")
    assert zipped.data_test is not None
    (high, wide), (zip_high, zip_wide) = module.data_test[0][0].shape, zipped.data_test[0][0].shape
    assert abs(high - zip_high) <= 1 and abs(wide - zip_wide) <= 1
    assert f"source:  {tmp_path / 'IAM'}" in repr(module)
    report = evaluate("default", "iam_paragraphs", "test",
                      {"root": tmp_path / "data", "path": tmp_path / "IAM"})  # fmt: skip
    assert report.metrics["lines_found"] == 3 and report.metrics["cer"] < 0.1
    # Another transcription in the XML is another cache.
    before = module.cache_file("test")
    xml = tmp_path / "IAM" / "xml" / "f01-000.xml"
    xml.write_text(xml.read_text().replace("the heart", "the hearth"))
    assert IamParagraphs(root=tmp_path / "data", path=tmp_path / "IAM").cache_file("test") != before


def test_an_incomplete_folder_says_what_is_missing(tmp_path: Path) -> None:
    for name, leave_out, message in [
        ("IAM1", "f01-000", r"no f01-000.png, the scan of form f01-000 .*formsA-D.tgz"),
        ("IAM2", "testset.txt", r"no testset.txt .*largeWriterIndependentTextLine"),
    ]:
        (tmp_path / name).mkdir()
        write_authors_layout(tmp_path / name, leave_out)
        with pytest.raises(DataError, match=message):
            IamParagraphs(root=tmp_path / "data", path=tmp_path / name).setup("test")
    (tmp_path / "IAM3").mkdir()
    write_authors_layout(tmp_path / "IAM3")
    for xml in (tmp_path / "IAM3" / "xml").iterdir():
        xml.unlink()
    with pytest.raises(DataError, match=r"no form XML files .*xml\.tgz"):
        IamParagraphs(root=tmp_path / "data", path=tmp_path / "IAM3").prepare_data()
    with pytest.raises(DataError, match="no such folder"):
        IamParagraphs(root=tmp_path / "data", path=tmp_path / "nowhere").prepare_data()
    (tmp_path / "iamdb.zip").write_bytes(ZIP_BYTES)
    with pytest.raises(DataError, match=r"iamdb.zip is a file; .*read from <root>/iam/"):
        IamParagraphs(root=tmp_path / "data", path=tmp_path / "iamdb.zip").prepare_data()
    assert not list((tmp_path / "data").rglob("*.h5"))


def test_a_killed_build_leaves_no_cache_and_the_next_build_makes_it_whole(
    tmp_path: Path,
) -> None:
    (tmp_path / "iam").mkdir()
    (tmp_path / "iam" / "iamdb.zip").write_bytes(ZIP_BYTES)
    cropping = tmp_path / "cropping"
    # A build of every split, stopped for good at its third page and killed there.
    build = subprocess.Popen(
        [sys.executable, "-c", KILLED_BUILD, str(tmp_path), ZIP_SHA, str(cropping)],
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while not cropping.exists() and build.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        build.send_signal(signal.SIGKILL)  # as the OOM killer stops a process: no clean-up
        _, stderr = build.communicate()
    assert cropping.exists() and build.returncode == -signal.SIGKILL, stderr.decode()
    module = IamParagraphs(root=tmp_path, sha256=ZIP_SHA)
    files = sorted(file.name for file in (tmp_path / "iam").iterdir())
    assert not any(module.cache_file(split).exists() for split in ("train", "val", "test"))
    # Every split's cache was being written (the test and val pages were in): none is there.
    assert len([name for name in files if name.endswith(".tmp")]) == 3, files

    module.setup()
    assert [file.name for file in (tmp_path / "iam").iterdir() if file.name.endswith(".tmp")] == []
    assert module.data_test is not None and module.data_test.names == ["f01-000"]
    assert module.data_val is not None and module.data_val.names == ["f02-000"]
    assert module.data_train is not None and module.data_train.names == ["f03-000", "f03-001"]
    assert module.data_val.texts == [truth("f02-000")]


# Runs IamParagraphs(root=argv[1], sha256=argv[2]).prepare_data(), which stops at its
# third page after creating the file argv[3].
KILLED_BUILD = """
import sys, time
from pathlib import Path
from text_recognizer.data.iam_paragraphs import IamParagraphs
from text_recognizer.data.module import PageSet
from text_recognizer.data.sources.iam import IamArchive

crop, calls = IamArchive.paragraph, []

def paragraph(archive, form, dpi=None):
    calls.append(form.id)
    if len(calls) == 3:
        Path(sys.argv[3]).touch()
        time.sleep(600)
    return crop(archive, form, dpi)

IamArchive.paragraph = paragraph
IamParagraphs(root=Path(sys.argv[1]), sha256=sys.argv[2]).prepare_data()
"""


def form_scans_zip(count: int) -> bytes:
    """``iamdb.zip`` of ``count`` test forms of IAM's size (1,240 x 1,750 px at 150 dpi),
    each with a handwritten part of ~1,100 x 870 px (the ink does not matter here)."""
    scan = io.BytesIO()
    Image.fromarray(np.full((1750, 1240), 230, np.uint8)).save(scan, "JPEG")
    boxes = [(200, 1400 + 200 * row, 2400, 1500 + 200 * row) for row in range(9)]
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        for number in range(count):
            form_id = f"a{number:02d}-000"
            zf.writestr(f"iamdb/forms/{form_id}.jpg", scan.getvalue())
            xml = form_xml(form_id, f"{number:03d}", boxes, ["a line"] * len(boxes))
            zf.writestr(f"iamdb/xml/{form_id}.xml", xml.replace(' width="1200"', ' width="2480"'))
        zf.writestr("iamdb/task/testset.txt", "".join(f"a{n:02d}-000-00\n" for n in range(count)))
        for name in ("validationset1.txt", "validationset2.txt", "trainset.txt"):
            zf.writestr(f"iamdb/task/{name}", "")
    return archive.getvalue()


def build_peak(root: Path, forms: int) -> tuple[int, PageSet]:
    """The most memory (traced) that building the test pages of ``forms`` forms took, and
    the pages."""
    archive = form_scans_zip(forms)
    (root / "iam").mkdir(parents=True)
    (root / "iam" / "iamdb.zip").write_bytes(archive)
    module = IamParagraphs(root=root, sha256=hashlib.sha256(archive).hexdigest())
    peak = traced_peak(module.prepare_splits, ["test"])
    module.setup("test")
    assert module.data_test is not None and len(module.data_test) == forms
    return peak, module.data_test


def test_a_build_holds_a_page_at_a_time_not_the_split(tmp_path: Path) -> None:
    few, _ = build_peak(tmp_path / "few", 12)
    peak, pages = build_peak(tmp_path / "many", 24)
    page = pages[0][0]
    assert page.shape == (866, 1116)  # the boxes, padded, at 150 dpi
    # Held whole, 12 more pages would add 12 MB, twice that while being written.
    assert peak < few + page.nbytes, f"{few / 1e6:.1f} MB, {peak / 1e6:.1f} MB at the peak"
    assert peak < 4 * 1750 * 1240  # the scan, as read and as grey, and the page cut from it


@pytest.mark.parametrize(
    ("archive", "message"),
    [
        (b"not a zip at all", "cannot read .* as a zip"),
        (make_iamdb_zip(leave_out="testset.txt"), "no task/testset.txt"),
        (make_iamdb_zip(leave_out="f01-000"), "no forms/f01-000.jpg"),
    ],
)
def test_bad_archives_are_clear_errors(
    archive: bytes, message: str, http_server: LocalServer, tmp_path: Path
) -> None:
    url = http_server.add("/iamdb.zip", archive)
    module = IamParagraphs(root=tmp_path, urls=[url], sha256=hashlib.sha256(archive).hexdigest())
    with pytest.raises(DataError, match=message):
        module.setup("test")
    # No cache of a bad archive, nor a temporary file of one.
    assert not [file.name for file in (tmp_path / "iam").iterdir() if ".h5" in file.name]


def test_bad_arguments_are_refused(served_zip: str, tmp_path: Path) -> None:
    with pytest.raises(DataError, match="sha256 mismatch"):
        IamParagraphs(root=tmp_path, urls=[served_zip], sha256="0" * 64).prepare_data()
    with pytest.raises(ConfigError, match=r"dpi = 30: use 75 to 300"):
        DATASETS.build("iam_paragraphs", {"dpi": 30})
    with pytest.raises(ConfigError, match="64 hex digits"):
        IamParagraphs(sha256="abc")
    with pytest.raises(ConfigError, match="has no argument 'input_height'"):
        DATASETS.build("iam_paragraphs", {"input_height": 32})


def test_iam_pages_evaluate_as_the_recognizer_reads_them(served_zip: str, tmp_path: Path) -> None:
    from text_recognizer.metrics import cer
    from text_recognizer.recognizer import Recognizer

    args = {"root": tmp_path, "urls": [served_zip], "sha256": ZIP_SHA}
    report = evaluate("default", "iam_paragraphs", "test", args)
    module = IamParagraphs(root=tmp_path, sha256=ZIP_SHA)
    module.setup("test")
    assert module.data_test is not None
    read = Recognizer.from_pretrained().recognize(module.data_test[0][0], kind="paragraph")
    assert report.num_samples == 1 and report.kind == "paragraph"
    assert report.metrics["cer"] == pytest.approx(cer([read.text], [truth("f01-000")]))
    assert report.metrics["cer"] < 0.1  # a page read wrongly reads as another text
    assert report.metrics["lines_found"] == report.metrics["lines_truth"] == 3
    assert report.metrics["pages_all_lines_found"] == 1.0
    assert [sample.name for sample in report.worst] in ([], ["f01-000"])


def pages_folder(folder: Path, layouts: list[list[int]]) -> list[str]:
    """Pages of the sample lines (one a layout) with a labels.jsonl; their texts."""
    folder.mkdir(parents=True)
    texts, rows = [], []
    for number, indices in enumerate(layouts):
        page, lines = compose_page(indices, tilt=1.0 if number % 2 else 0.0)
        Image.fromarray(page).save(folder / f"page_{number}.png")
        texts.append("\n".join(lines))
        rows.append(json.dumps({"image": f"page_{number}.png", "text": texts[-1]}))
    (folder / "labels.jsonl").write_text("\n".join(rows) + "\n")
    return texts


def test_a_folder_of_pages_scores_as_its_pages_read(tmp_path: Path) -> None:
    from text_recognizer.metrics import cer, wer
    from text_recognizer.recognizer import Recognizer

    texts = pages_folder(tmp_path / "pages", [[0, 1, 2], [3, 4, 5, 6], [7, 0]])
    runner = CliRunner()
    command = [
        "evaluate",
        "default",
        "--data",
        "folder",
        "--data-arg",
        "kind=paragraph",
        "--split",
        "all",
    ]
    pages, report_file = f"path={tmp_path / 'pages'}", str(tmp_path / "report.json")
    result = runner.invoke(app, [*command, "--data-arg", pages, "-o", report_file])
    assert result.exit_code == 0, result.output
    assert "on folder/all (3 pages, greedy)" in result.output
    assert "lines_found=9, lines_truth=9" in result.output
    report = json.loads(Path(report_file).read_text())
    recognizer = Recognizer.from_pretrained()
    read = [
        recognizer.recognize(tmp_path / "pages" / f"page_{n}.png", kind="paragraph").text
        for n in range(3)
    ]
    assert report["metrics"]["cer"] == pytest.approx(cer(read, texts))
    assert report["metrics"]["wer"] == pytest.approx(wer(read, texts))
    # The sample lines read at CER ~0.05 alone; lines shuffled, lost or read from the
    # wrong paper would cost far more.
    assert report["metrics"]["cer"] < 0.08
    assert {sample["name"] for sample in report["worst"]} <= {f"page_{n}.png" for n in range(3)}

    beam = evaluate("default", "folder", "all", {"path": tmp_path / "pages",
                                                  "kind": "paragraph"}, decoder=None,
                    width_search=True)  # fmt: skip
    assert beam.decoder == "greedy, best of widths 0.85/1/1.25" and beam.num_samples == 3


def test_the_lines_of_several_pages_are_read_in_shared_batches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Read a page at a time, each page's lines were a network run of their own (5-10
    lines, where a run takes 32): 1.3x the time over synthetic_paragraphs' test pages."""
    from text_recognizer.recognizer import OnnxModel

    pages_folder(tmp_path / "pages", [[0, 1, 2], [3, 4, 5, 6], [7, 0]])
    runs: list[int] = []
    read = OnnxModel.line_log_probs

    def counted(self: OnnxModel, images: np.ndarray, widths: np.ndarray) -> object:
        runs.append(len(images))
        return read(self, images, widths)

    monkeypatch.setattr(OnnxModel, "line_log_probs", counted)
    report = evaluate("default", "folder", "all", {"path": tmp_path / "pages", "kind": "paragraph"})
    assert report.metrics["lines_found"] == report.metrics["lines_truth"] == 9
    assert runs == [9]  # the three pages' lines in one run
    runs.clear()
    evaluate("default", "folder", "all", {"path": tmp_path / "pages", "kind": "paragraph"},
             width_search=True)  # fmt: skip
    assert runs == [9, 9, 9]  # one a width


def test_pages_read_by_an_exported_model_a_checkpoint_and_a_beam(tmp_path: Path) -> None:
    import torch

    from text_recognizer.decoding import CtcDecoder
    from text_recognizer.metrics import cer
    from text_recognizer.models import CtcLineModel
    from text_recognizer.paths import MODELS_DIR
    from text_recognizer.recognizer import Recognizer

    texts = pages_folder(tmp_path / "pages", [[0, 1, 2], [3, 4]])
    args = {"path": tmp_path / "pages", "kind": "paragraph"}
    paths = [tmp_path / "pages" / f"page_{n}.png" for n in range(2)]

    def direct_cer(recognizer: Recognizer) -> float:
        return cer([recognizer.recognize(p, kind="paragraph").text for p in paths], texts)

    bundled = evaluate("default", "folder", "all", args)
    exported = evaluate(MODELS_DIR / "line.onnx", "folder", "all", args)
    assert exported.metrics == bundled.metrics and bundled.metrics["lines_found"] == 5
    beam = evaluate("default", "folder", "all", args, decoder=CtcDecoder(4))
    assert beam.decoder == "beam 4"
    assert beam.metrics["cer"] == pytest.approx(direct_cer(Recognizer.from_pretrained(beam_size=4)))
    torch.manual_seed(0)  # an untrained line model, as a run saves it (models.loading)
    module = CtcLineModel("line_cnn", network_args={"input_height": 32}, input_height=32)
    checkpoint = tmp_path / "lines.ckpt"
    torch.save({"model_name": "ctc", "hyper_parameters": dict(module.hparams),
                "state_dict": module.state_dict()}, checkpoint)  # fmt: skip
    eager = evaluate(checkpoint, "folder", "all", args)
    assert eager.metrics["cer"] == pytest.approx(direct_cer(Recognizer.from_pretrained(checkpoint)))
    assert eager.metrics["cer"] > 0.5  # untrained: it is this model that read the pages


def test_a_run_fine_tuned_on_a_folder_of_lines_scores_a_folder_of_pages(tmp_path: Path) -> None:
    """A run of configs/lines_finetune.yaml (a folder of lines, width_stretch, rehearsal)
    scored on a folder of pages was refused for those line arguments, which it inherited
    as its own dataset's: "width_stretch stretches text lines; remove it". A split the
    folder lacks was "dataset folder has no val split", not which subfolder is missing."""
    import torch
    import yaml

    from text_recognizer.models import CtcLineModel

    pages_folder(tmp_path / "pages", [[0, 1]])
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    config = yaml.safe_load((Path(__file__).parents[2] / "configs/lines_finetune.yaml").read_text())
    config["data"]["args"]["path"] = str(tmp_path / "my_lines")
    (run / "config.yaml").write_text(yaml.safe_dump(config))
    module = CtcLineModel("line_cnn", network_args={"input_height": 32}, input_height=32)
    torch.save({"model_name": "ctc", "hyper_parameters": dict(module.hparams),
                "state_dict": module.state_dict()}, run / "checkpoints" / "best.ckpt")  # fmt: skip
    report = evaluate(run, "folder", "all", {"path": tmp_path / "pages", "kind": "paragraph"})
    assert report.num_samples == 1 and report.data_args == {
        "path": tmp_path / "pages",
        "kind": "paragraph",
    }
    (tmp_path / "pages" / "test").mkdir()  # splits in subfolders: there is no val/ here
    for name in ("labels.jsonl", "page_0.png"):
        (tmp_path / "pages" / name).rename(tmp_path / "pages" / "test" / name)
    with pytest.raises(ConfigError, match=r"pages has no val/ subfolder: add .*: --split all$"):
        evaluate(run, "folder", "val", {"path": tmp_path / "pages", "kind": "paragraph"})


def test_a_page_on_which_no_line_is_found_reads_as_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from text_recognizer.evaluate import line_counts, read_pages
    from text_recognizer.recognizer import Recognizer

    speck = np.full((300, 400), 255, np.uint8)
    speck[100:103, 200:203] = 0
    page, texts = compose_page([0, 1])
    pages = [(speck, "a line\nand another"), (page, "\n".join(texts))]
    names = ["speck.png", "page.png"]
    predictions, found = read_pages(Recognizer.from_pretrained(), pages, "pages", names)
    assert predictions[0] == ("", 0.0) and found == [0, 2]
    # Which page: the warning comes before the report, and a folder may hold thousands.
    assert "a page read as nothing (speck.png): no line of text found" in caplog.text
    counts = line_counts([text for _, text in pages], found)
    assert counts == {"lines_found": 2, "lines_truth": 4, "pages_all_lines_found": 0.5}


def test_pages_refuse_what_does_not_apply_to_them(tmp_path: Path) -> None:
    texts = pages_folder(tmp_path / "pages", [[0, 1]])
    with pytest.raises(ConfigError, match=r"is a char model; the dataset holds pages"):
        evaluate("char", "folder", "all", {"path": tmp_path / "pages", "kind": "paragraph"})
    with pytest.raises(ConfigError, match="input_height: pages are kept at their own size"):
        DATASETS.build("folder", {"path": tmp_path / "pages", "kind": "paragraph",
                                  "input_height": 32})  # fmt: skip
    with pytest.raises(ConfigError, match="width_stretch stretches text lines"):
        DATASETS.build("folder", {"path": tmp_path / "pages", "kind": "paragraph",
                                  "width_stretch": [0.8, 1.2]})  # fmt: skip
    # A page's text in a folder of lines says what it is.
    lines = DATASETS.build("folder", {"path": tmp_path / "pages"})
    with pytest.raises(DataError, match=r"labels.jsonl:1: a line break in the text: .*paragraph"):
        lines.prepare_data()
    assert "\n" in texts[0]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        # Each a clear row error, where they read as a character outside the charset...
        ("first line\r\nsecond line", r"a carriage return \('\\r'\) .*'\\n' alone"),
        ("first line\\nsecond line", r"'\\n' written out .*write the pages' texts in labels.jsonl"),
        # ... or counted as lines never found (and a newline never read) against every model.
        ("first line\nsecond line\n", r"an empty line in the text \(a leading, trailing or"),
        ("first line\n\nsecond line", "an empty line in the text"),
        ("first line\n  \nsecond line", "an empty line in the text"),
    ],
)
def test_a_page_text_that_cannot_be_right_is_a_bad_row(
    text: str, message: str, tmp_path: Path
) -> None:
    Image.new("L", (40, 40), 255).save(tmp_path / "page.png")
    (tmp_path / "labels.jsonl").write_text(json.dumps({"image": "page.png", "text": text}))
    pages = DATASETS.build("folder", {"path": tmp_path, "kind": "paragraph"})
    with pytest.raises(DataError, match=r"labels.jsonl:1: " + message):
        pages.prepare_data()


@pytest.mark.parametrize(
    "data", [["data.name=iam_paragraphs"], ["data.name=folder", "data.args.kind=paragraph"]]
)
def test_training_on_pages_is_refused_up_front(data: list[str], tmp_path: Path) -> None:
    config = Path(__file__).parents[2] / "configs" / "lines_iam.yaml"
    overrides = [part for item in data for part in ("--set", item)]
    result = CliRunner().invoke(app, ["train", str(config), *overrides])
    assert result.exit_code == 1
    name = data[0].split("=")[1]
    assert f"data '{name}' holds pages, and models train on lines" in result.output
    assert f"evaluate MODEL --data {name}" in result.output
    assert "Traceback" not in result.output
    assert not [path for path in (tmp_path / "runs").rglob("*") if path.is_file()]  # no run
