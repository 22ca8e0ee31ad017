"""The benchmarks are not run by the suite, so a change to the package can break one
unnoticed: each still imports, builds its options (``--help``), and every name it takes
from the package, at the top or inside a function, is still there."""

from __future__ import annotations

import ast
import importlib
import runpy
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
SCRIPTS = sorted(BENCHMARKS.glob("*.py"))


@pytest.fixture
def sandbox(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A script's own ``sys.path`` inserts and its sibling modules go when the test ends."""
    monkeypatch.setattr(sys, "path", [str(BENCHMARKS), *sys.path])
    before = set(sys.modules)
    yield
    for name in set(sys.modules) - before:
        if str(getattr(sys.modules[name], "__file__", "") or "").startswith(str(BENCHMARKS)):
            del sys.modules[name]


def test_every_benchmark_is_checked() -> None:
    assert len(SCRIPTS) > 20


@pytest.mark.usefixtures("sandbox")
@pytest.mark.parametrize("script", SCRIPTS, ids=lambda path: path.stem)
def test_benchmark_imports_and_prints_its_help(
    script: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--help`` says what a script measures, its docstring's whole first paragraph, and
    runs nothing (a script without options once ran its whole benchmark instead)."""
    monkeypatch.setattr(sys, "argv", [str(script), "--help"])
    with pytest.raises(SystemExit) as exited:
        runpy.run_path(str(script), run_name="__main__")
    assert exited.value.code in (0, None)
    printed = capsys.readouterr().out
    assert "usage:" in printed
    summary = (ast.get_docstring(ast.parse(script.read_text())) or "").split("\n\n")[0]
    assert " ".join(summary.split()) in " ".join(printed.split())


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda path: path.stem)
def test_benchmark_imports_from_the_package_exist(script: Path) -> None:
    """Imports inside functions too, which ``--help`` never reaches."""
    missing = []
    for node in ast.walk(ast.parse(script.read_text())):
        if not isinstance(node, ast.ImportFrom) or not node.module:
            continue
        if not node.module.startswith(("text_recognizer", "tests")):
            continue
        module = importlib.import_module(node.module)
        for alias in node.names:
            if hasattr(module, alias.name):
                continue
            try:
                importlib.import_module(f"{node.module}.{alias.name}")
            except ModuleNotFoundError:
                missing.append(f"line {node.lineno}: from {node.module} import {alias.name}")
    assert not missing, "\n".join(missing)


@pytest.mark.usefixtures("sandbox")
def test_real_rows_left_out_are_said(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Without ``../shared/realdata`` a table loses its real rows: say so, and how to add them."""
    from realdata_lines import real_lines_if_there

    assert real_lines_if_there(tmp_path / "absent", 3, 0) == {}
    assert f"no real data at {tmp_path / 'absent'}" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.usefixtures("sandbox")
def test_batch_width_padding_runs_on_a_cache_smaller_than_its_steps(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """64 cached lines are 2 batches; the 11 steps go round them (they once ran out)."""
    from batch_width_padding import main

    main(
        ["--multiple", "1", "--rounds", "1", "--steps", "1", "--num-train", "64", "--threads", "1"]
    )
    assert "| 1 |" in capsys.readouterr().out


@pytest.mark.slow
@pytest.mark.usefixtures("sandbox")
def test_document_open_leaves_no_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import tempfile

    import text_recognizer.images as images

    # The script wraps these to count opens; put the originals back afterwards.
    monkeypatch.setattr(images, "_open", images._open)
    monkeypatch.setattr(images._Pdf, "__init__", images._Pdf.__init__)
    temporary = tmp_path / "temporary"
    temporary.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temporary))
    from document_open import main

    main(["--pages", "1", "--repeats", "1"])
    assert "scan.pdf (1 pages" in capsys.readouterr().out
    assert list(temporary.iterdir()) == []


@pytest.mark.usefixtures("sandbox")
@pytest.mark.parametrize("out", [".", "..", "../other"])
def test_batchnorm_recalibration_never_writes_over_a_run(tmp_path: Path, out: str) -> None:
    """``--out`` is deleted and rewritten: never the run, a folder holding it, or other files."""
    from batchnorm_recalibration import main

    run = tmp_path / "runs" / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / "last.ckpt").write_bytes(b"weights")
    (tmp_path / "runs" / "other").mkdir()
    (tmp_path / "runs" / "other" / "notes.txt").write_text("mine")
    with pytest.raises(SystemExit, match="give a new folder"):
        main([str(run), "--out", str(run / out)])
    assert (run / "checkpoints" / "last.ckpt").read_bytes() == b"weights"
    assert (tmp_path / "runs" / "other" / "notes.txt").read_text() == "mine"


@pytest.mark.usefixtures("sandbox")
def test_batchnorm_recalibration_may_write_over_its_own_output(tmp_path: Path) -> None:
    from batchnorm_recalibration import check_out

    out = tmp_path / "recalibrated"
    (out / "checkpoints").mkdir(parents=True)
    (out / "checkpoints" / "best.ckpt").write_bytes(b"")
    (out / "config.yaml").write_text("")
    check_out(tmp_path / "run", out)  # a second run of the script into the same folder


@pytest.mark.usefixtures("sandbox")
def test_paragraphs_reads_the_first_pages_of_a_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--pages`` once shaped composed pages only, and was ignored with ``--folder``."""
    import json

    import cv2
    from paragraphs import main

    from tests.pages import compose_page

    rows = []
    for index in range(2):
        page, truths = compose_page([index, index + 3])
        cv2.imwrite(str(tmp_path / f"page{index}.png"), page)
        rows.append(json.dumps({"image": f"page{index}.png", "text": "\n".join(truths)}) + "\n")
    (tmp_path / "labels.jsonl").write_text("".join(rows))
    main(["--folder", str(tmp_path), "--pages", "1"])
    printed = capsys.readouterr()
    assert printed.out.startswith("1 pages, 2 lines")
    assert "pages: " in printed.err  # progress: IAM's forms once read for minutes unsaid
    with pytest.raises(SystemExit, match="no pages to read"):
        main(["--folder", str(tmp_path), "--pages", "0"])


@pytest.mark.usefixtures("sandbox")
def test_paragraphs_takes_one_source_of_pages(tmp_path: Path) -> None:
    from paragraphs import main

    with pytest.raises(SystemExit) as exited:  # once: --iam read, --folder dropped unsaid
        main(["--iam", str(tmp_path / "iamdb.zip"), "--folder", str(tmp_path)])
    assert exited.value.code == 2


@pytest.mark.usefixtures("sandbox")
def test_serving_speed_says_why_the_server_stopped() -> None:
    """A server that exits at once (a missing extra, a bad option) is reported with its
    error at once, not after a minute's wait as 'did not start'."""
    from serving_speed import free_port, start_server

    with pytest.raises(SystemExit, match="no-such-option"):
        start_server(free_port(), "--no-such-option")


@pytest.mark.usefixtures("sandbox")
@pytest.mark.parametrize(
    ("script", "argv"),
    [
        ("line_model_speed", ["--no-networks"]),  # once: printed nothing, said nothing
        ("word_boxes", ["--lines", "1", "--margin"]),  # once: timed, but scored no margin
    ],
)
def test_options_that_leave_nothing_to_measure_are_refused(
    script: str, argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    main = importlib.import_module(script).main
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    assert "error:" in capsys.readouterr().err


@pytest.mark.usefixtures("sandbox")
def test_stroke_search_refuses_a_folder_without_fonts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Once: every split read (minutes), then a row of 0 unseen lines at CER 0.0000."""
    from stroke_search import main

    with pytest.raises(SystemExit):
        main(["--fonts", str(tmp_path)])
    assert f"no usable fonts under {tmp_path}" in capsys.readouterr().err


@pytest.mark.usefixtures("sandbox")
@pytest.mark.parametrize(
    "script", ["line_confidence", "width_selection", "stroke_search", "width_sensitivity"]
)
def test_line_set_benchmarks_make_a_quick_run_with_lines(
    script: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """They once read the whole 2000-line splits, 2-9 minutes, with no way to run small."""
    main = importlib.import_module(script).main
    main(["--lines", "3", "--realdata", str(tmp_path / "absent")])
    out = capsys.readouterr().out
    rows = [row for row in out[out.index("| ") :].split("\n\n")[0].splitlines()]  # 1st table
    data = [row for row in rows[1:] if not row.startswith("|---")]
    assert data and all(row.split("|")[1].strip() for row in data)
    if script != "width_selection":  # the others print each set's line count
        cells = [row.split("|")[1:3] for row in data]
        assert sum(int(count) for name, count in cells if name.strip().startswith("val")) == 3
    with pytest.raises(SystemExit) as exited:
        main(["--lines", "0"])
    assert exited.value.code == 2
