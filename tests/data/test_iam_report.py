"""``benchmarks/iam_report.py`` end to end, on a small IAM laid out as its authors
distribute it (``tests/iam_authors.py``) and on the same forms as ``iamdb.zip``, served
from 127.0.0.1: the report is run once, on real IAM, by someone who cannot rerun it."""

from __future__ import annotations

import hashlib
import re
import runpy
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from tests.iam_authors import TEST_LINES, iamdb_zip, write_iam

if TYPE_CHECKING:
    from http_fixtures import LocalServer

pytest_plugins = ["http_fixtures"]

REPORT = Path(__file__).resolve().parents[2] / "benchmarks" / "iam_report.py"
ROWS = ["greedy (default)", "width search", "beam 10 + default LM",
        "width search + beam 10 + default LM"]  # fmt: skip


def run_report(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str
) -> tuple[int | str | None, str, str]:
    """The report's exit code (None: finished), standard output and standard error."""
    monkeypatch.setattr(sys, "argv", [str(REPORT), *args])
    code: int | str | None = None
    try:
        runpy.run_path(str(REPORT), run_name="__main__")
    except SystemExit as exited:
        code = exited.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


PAGES_HEADER = "| text | decoding | pages |"


def table_rows(out: str) -> list[list[str]]:
    """The rows of a table in ``out``, its header and rule left out."""
    rows = [[cell.strip() for cell in line.strip("|").split("|")]
            for line in out.splitlines() if line.startswith("| ")]  # fmt: skip
    return [row for row in rows if row[0] != "text"]


def check_lines_table(out: str, transcriptions: list[str], limit: int) -> None:
    rows = table_rows(out.split(PAGES_HEADER)[0])
    assert [(row[0], row[1]) for row in rows] == [
        (t, name) for t in transcriptions for name in ROWS
    ]
    for row in rows:
        assert row[2] == str(limit)
        for cell in (row[3], row[4], row[5], row[7]):  # cer, wer, accuracy, surest 80 %
            assert re.fullmatch(r"\d\.\d{4}", cell), row
        assert re.fullmatch(r"\d\.\d{4}|-", row[6]), row  # AUROC: "-" when all right or wrong
        assert 0 <= float(row[3]) < 0.5, row  # rendered lines read, not noise
        assert re.fullmatch(r"\d+", row[8]), row


def check_pages_table(out: str) -> None:
    rows = table_rows(out.split(PAGES_HEADER)[1])
    assert [row[1] for row in rows] == ROWS
    for row in rows:
        assert row[0] == "xml" and row[2] == "1"  # the one test form
        assert row[7] == f"{len(TEST_LINES)} of {len(TEST_LINES)}"
        for cell in row[3:7]:
            assert re.fullmatch(r"\d\.\d{4}", cell), row


@pytest.mark.slow
def test_the_report_on_iam_as_its_authors_distribute_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    write_iam(tmp_path / "IAM")
    code, out, err = run_report(
        monkeypatch, capsys, "--path", str(tmp_path / "IAM"), "--limit", "2"
    )
    assert code is None, err
    check_lines_table(out, ["xml", "lines.txt"], limit=2)
    check_pages_table(out)
    assert "Traceback" not in err


@pytest.mark.slow
def test_the_report_on_iamdb_zip_downloaded(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    http_server: LocalServer,
) -> None:
    write_iam(tmp_path / "IAM")
    archive = iamdb_zip(tmp_path / "IAM")
    monkeypatch.setenv("TEXT_RECOGNIZER_IAM_URLS", http_server.add("/iamdb.zip", archive))
    monkeypatch.setenv("TEXT_RECOGNIZER_IAM_SHA256", hashlib.sha256(archive).hexdigest())
    code, out, err = run_report(monkeypatch, capsys, "--limit", "2")
    assert code is None, err
    check_lines_table(out, ["xml"], limit=2)
    check_pages_table(out)
    assert http_server.hits == {"/iamdb.zip": 1}  # downloaded once, for lines and pages


@pytest.mark.slow
def test_without_the_forms_xml_the_report_says_so_and_reads_lines_txt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    write_iam(tmp_path / "IAM", leave_out=("xml",))
    code, out, err = run_report(
        monkeypatch, capsys, "--path", str(tmp_path / "IAM"), "--limit", "2"
    )
    assert code is None, err
    assert "no lines read (xml): " in out and "extract IAM's xml.tgz into it" in out
    check_lines_table(out, ["lines.txt"], limit=2)
    assert "no pages read: " in out.split(PAGES_HEADER)[1]


def test_a_failed_download_or_a_wrong_path_is_one_message_not_a_traceback(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    refused_url: str,
) -> None:
    """The lines' DataError came out as a traceback; and a --path that is no folder printed
    three "no ... read" lines and finished as if it had succeeded."""
    monkeypatch.setenv("TEXT_RECOGNIZER_IAM_URLS", refused_url)
    code, _, _ = run_report(monkeypatch, capsys, "--limit", "2")
    assert isinstance(code, str) and code.startswith("error: could not download iamdb.zip")
    assert code.endswith("register at https://fki.tic.heia-fr.ch/databases/iam-handwriting-"
                         "database, download lines.tgz, ascii.tgz, xml.tgz, "
                         "largeWriterIndependentTextLineRecognitionTask.zip (and formsA-D.tgz, "
                         "formsE-H.tgz and formsI-Z.tgz for pages), extract them into one "
                         "folder and pass that folder as path= (--data-arg path=FOLDER; see "
                         "docs/datasets/iam_lines.md).\n"
                         "(Here: python benchmarks/iam_report.py --path FOLDER.)")  # fmt: skip
    code, out, _ = run_report(monkeypatch, capsys, "--path", str(tmp_path / "nowhere"))
    assert code == (f"error: --path {tmp_path / 'nowhere'} is no folder: name the one IAM's "
                    "files were extracted into")  # fmt: skip
    assert out == ""


def test_the_rows_are_timed_once_the_cache_is_built(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The first row's seconds held the building of the cache (minutes on IAM), as if
    greedy decoding were by far the slowest. Each evaluation looks for its cache first."""
    import text_recognizer.evaluate
    from text_recognizer.data import DATASETS

    class StoppedError(Exception):
        pass

    cached = []

    def evaluate(
        source: str, data: str, split: str, data_args: dict[str, object], **_: object
    ) -> None:
        cached.append(DATASETS.build(data, data_args).cache_file(split).exists())
        raise StoppedError

    monkeypatch.setattr(text_recognizer.evaluate, "evaluate", evaluate)
    write_iam(tmp_path / "IAM")
    with pytest.raises(StoppedError):
        run_report(monkeypatch, capsys, "--path", str(tmp_path / "IAM"), "--limit", "1")
    assert cached == [True]
