import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, PngImagePlugin
from typer.testing import CliRunner

from text_recognizer import __version__
from text_recognizer.cli import app

runner = CliRunner()


def test_version_and_help() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and __version__ in result.output
    for command in ([], ["recognize"], ["train"], ["data"], ["config"], ["export"], ["demo"]):
        result = runner.invoke(app, [*command, "--help"])
        assert result.exit_code == 0, (command, result.output)
        assert "Usage" in result.output


def test_train_help_says_where_a_run_goes() -> None:
    """A newcomer's first question after training: where is the model, and what next."""
    result = runner.invoke(app, ["train", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    assert "runs/<group>/<name>/<timestamp>/" in text and "$TEXT_RECOGNIZER_RUNS" in text
    assert "text-recognizer export RUN -o model.onnx" in text


def test_recognize_help_says_what_a_row_holds() -> None:
    """The rows were three unnamed columns; a newcomer had to guess the third."""
    result = runner.invoke(app, ["recognize", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    assert "the image, the text read and its confidence" in text
    assert "image:1, image:2" in text


def test_config_show_applies_overrides() -> None:
    result = runner.invoke(
        app, ["config", "show", "configs/chars_lenet.yaml", "--set", "optimizer.lr=0.5"]
    )
    assert result.exit_code == 0, result.output
    assert "lr: 0.5" in result.output


def test_config_error_is_one_clear_line() -> None:
    result = runner.invoke(
        app, ["config", "show", "configs/chars_lenet.yaml", "--set", "trainer.epochs=3"]
    )
    assert result.exit_code == 1
    assert "unknown key 'trainer.epochs'" in result.output
    assert "Traceback" not in result.output


def test_recognize_reports_bad_files_and_keeps_going(tiny_char_run: Path, tmp_path: Path) -> None:
    good = tmp_path / "good.png"
    image = np.zeros((28, 28), dtype=np.uint8)
    image[9:13, 4:24] = 255
    Image.fromarray(image).save(good)
    bad = tmp_path / "bad.png"
    bad.write_text("nope")
    result = runner.invoke(
        app, ["recognize", "--model", str(tiny_char_run), "--json", str(bad), str(good)]
    )
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line.startswith("{")]
    assert '"error"' in lines[0] and "bad.png" in lines[0]
    assert '"text"' in lines[1] and '"confidence"' in lines[1]
    blank = tmp_path / "blank.png"
    Image.fromarray(np.zeros((28, 28), dtype=np.uint8)).save(blank)
    arguments = ["recognize", "--model", str(tiny_char_run), "--json", str(blank), str(tmp_path)]
    result = runner.invoke(app, arguments)
    assert result.exit_code == 1
    errors = [json.loads(line)["error"] for line in result.output.splitlines() if line[:1] == "{"]
    assert errors[0].startswith(f"{blank}: the image is blank")  # the file named once
    assert errors[1].startswith(f"{tmp_path}: a folder, not an image")


def test_recognize_reads_in_batches_and_a_bad_file_loses_only_itself(tmp_path: Path) -> None:
    from text_recognizer.paths import SAMPLES_DIR

    bad = tmp_path / "bad.png"
    bad.write_text("nope")
    lines = [str(SAMPLES_DIR / "lines" / f"line_0{i}.png") for i in range(3)]
    images = [lines[0], str(bad), lines[1], lines[2]]
    result = runner.invoke(app, ["recognize", "--json", "--batch", "3", *images])
    assert result.exit_code == 1
    read = [json.loads(line) for line in result.output.splitlines() if line[:1] == "{"]
    assert [row["image"] for row in read] == images
    assert read[1]["error"].startswith(f"{bad}: not a readable image")
    assert [row.get("kind") for row in read] == ["line", None, "line", "line"]
    assert read[0]["text"].startswith("the heart, he would")


def test_recognize_reads_standard_input_as_dash() -> None:
    from text_recognizer.paths import SAMPLES_DIR

    line = SAMPLES_DIR / "lines" / "line_00.png"
    result = runner.invoke(app, ["recognize", "--json", "-"], input=line.read_bytes())
    assert result.exit_code == 0, result.output
    row = json.loads(result.output.splitlines()[-1])
    assert row["image"] == "-" and row["text"].startswith("the heart, he would")
    result = runner.invoke(app, ["recognize", "--json", "-"], input=b"not an image")
    assert result.exit_code == 1
    assert json.loads(result.output.splitlines()[-1])["error"].startswith("-: not a readable")


def test_standard_input_s_page_xml_is_stdin_xml(tmp_path: Path) -> None:
    from text_recognizer.paths import SAMPLES_DIR

    line = (SAMPLES_DIR / "lines" / "line_00.png").read_bytes()
    args = ["recognize", "--page-xml", str(tmp_path), "-"]
    result = runner.invoke(app, args, input=line)
    assert result.exit_code == 0, result.output
    assert [path.name for path in tmp_path.iterdir()] == ["stdin.xml"]  # not "-.xml"
    (tmp_path / "stdin.png").write_bytes(line)  # another image of that name: refused up front
    result = runner.invoke(app, [*args, str(tmp_path / "stdin.png")], input=line)
    assert result.exit_code != 0 and "would both be written as stdin.xml" in result.output


def test_recognize_turns_a_line_on_its_side_unless_told_it_is_upright(tmp_path: Path) -> None:
    from text_recognizer.paths import SAMPLES_DIR

    line = np.asarray(Image.open(SAMPLES_DIR / "lines" / "line_00.png"))
    Image.fromarray(np.ascontiguousarray(np.rot90(line))).save(tmp_path / "sideways.png")
    texts = {}
    for options in ([], ["--orientation", "upright"], ["--upside-down"]):
        result = runner.invoke(
            app, ["recognize", "--json", *options, str(tmp_path / "sideways.png")]
        )
        assert result.exit_code == 0, result.output
        texts[" ".join(options)] = json.loads(result.output.splitlines()[-1])["text"]
    assert texts[""] == texts["--upside-down"] == "the heart, he would have cared"
    assert texts["--orientation upright"] != texts[""]
    both = [
        "recognize",
        "--upside-down",
        "--orientation",
        "upright",
        str(tmp_path / "sideways.png"),
    ]
    result = runner.invoke(app, both)
    assert result.exit_code == 1
    assert "--upside-down is --orientation any, which contradicts --orientation upright" in (
        result.output
    )


def test_recognize_refuses_a_kind_without_its_model_once_before_reading(
    tiny_char_run: Path,
) -> None:
    from text_recognizer.paths import SAMPLES_DIR

    lines = [str(SAMPLES_DIR / "lines" / f"line_0{i}.png") for i in range(3)]
    result = runner.invoke(
        app, ["recognize", "--model", str(tiny_char_run), "--kind", "line", *lines]
    )
    assert result.exit_code == 1
    assert result.output.count("no line model loaded") == 1


def test_recognize_refuses_an_lm_weight_that_cannot_be_used() -> None:
    line = "src/text_recognizer/assets/samples/lines/line_00.png"
    result = runner.invoke(app, ["recognize", "--lm-weight", "0.5", line])
    assert result.exit_code == 1 and "there is none" in result.output
    result = runner.invoke(
        app, ["recognize", "--beam", "5", "--lm", "x.arpa", "--lm-weight", "nan", line]
    )
    assert result.exit_code == 1 and "finite number" in result.output


def test_data_info_takes_dataset_arguments() -> None:
    from text_recognizer.paths import SAMPLES_DIR

    lines = str(SAMPLES_DIR / "lines")
    result = runner.invoke(app, ["data", "info", "folder", "--data-arg", f"path={lines}"])
    assert result.exit_code == 0, result.output
    printed = " ".join(result.output.split())  # rich wraps at the terminal width
    assert "LabelledFolder(" in printed and "train=6, val=1, test=1" in printed
    result = runner.invoke(app, ["data", "info", "folder", "--data-arg", "path=nowhere"])
    assert result.exit_code == 1 and "--data-arg path=DIR" in " ".join(result.output.split())


def test_data_download_builds_the_cache_of_an_experiment_seed(tmp_path: Path) -> None:
    """An experiment with seed 7 renders other characters than seed 0: --seed builds its
    cache ahead of training (data info/download could only build seed 0's)."""
    sizes = ["--data-arg", "num_train=40", "--data-arg", "num_val=8", "--data-arg", "num_test=8"]
    download = ["data", "download", "synthetic_chars", *sizes]
    for seed, caches in (("0", 3), ("7", 6), ("7", 6)):  # seed 7 again: its cache, found
        result = runner.invoke(app, [*download, "--seed", seed])
        assert result.exit_code == 0, result.output
        assert len(list((tmp_path / "data" / "synthetic_chars").glob("*.h5"))) == caches


@pytest.mark.parametrize("command", [["data", "info", "folder"], ["evaluate", "default"]])
def test_a_data_arg_without_a_value_says_key_equals_value(command: list[str]) -> None:
    result = runner.invoke(app, [*command, "--data-arg", "path"])
    assert result.exit_code == 1
    printed = " ".join(result.output.split())
    assert "--data-arg 'path' must look like key=value" in printed
    assert "key.path" not in printed  # --set's form, for config keys


def test_recognize_reads_every_page_of_a_tiff_in_order_with_its_number(tmp_path: Path) -> None:
    from tests.pages import compose_page, multipage_tiff, on_margin, sample_line
    from text_recognizer.paths import SAMPLES_DIR
    from text_recognizer.recognizer import Recognizer

    pages = [
        compose_page([0, 1])[0],
        on_margin(sample_line(5, scale=2.0)),
        np.full((300, 200), 255, np.uint8),  # a blank back of a duplex scan
    ]
    scan = tmp_path / "scan.tif"
    scan.write_bytes(multipage_tiff(pages, compression="tiff_deflate"))
    lines = [str(SAMPLES_DIR / "lines" / f"line_0{i}.png") for i in range(3)]
    images = [lines[0], str(scan), lines[1], lines[2]]
    alone = [Recognizer.from_pretrained().recognize(page) for page in pages[:2]]
    # Read in batches of two: the pages come in order between the images around them.
    result = runner.invoke(app, ["recognize", "--batch", "2", *images])
    assert result.exit_code == 1  # the blank page
    rows = [row.split("\t") for row in result.stdout.splitlines()]
    assert [row[0] for row in rows] == [
        lines[0],
        f"{scan} page 1:1",
        f"{scan} page 1:2",
        f"{scan} page 2",
        lines[1],
        lines[2],
    ]
    assert [row[1] for row in rows[1:4]] == [*alone[0].text.split("\n"), alone[1].text]
    assert f"{scan} page 3: the image is blank" in result.stderr.replace("\n", "")

    result = runner.invoke(app, ["recognize", "--json", *images])
    read = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(row["image"], row.get("page")) for row in read] == [
        (lines[0], None),
        (str(scan), 1),
        (str(scan), 2),
        (str(scan), 3),
        (lines[1], None),
        (lines[2], None),
    ]
    assert [row["kind"] for row in read[1:3]] == ["paragraph", "line"]
    assert read[3]["error"].startswith(f"{scan} page 3: the image is blank")
    # A file of one page prints as any image does.
    one = tmp_path / "one.tif"
    one.write_bytes(multipage_tiff(pages[1:2]))
    result = runner.invoke(app, ["recognize", str(one)])
    assert result.exit_code == 0 and result.stdout.startswith(f"{one}\t{alone[1].text}\t")


def test_recognize_opens_each_file_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A file was opened to count its pages, then again to read them: a large PDF or
    TIFF parsed twice. Opens (Pillow's or PDFium's) are counted by the file's path."""
    pytest.importorskip("pypdfium2")
    import text_recognizer.images as images
    from tests.pages import compose_page, multipage_tiff, on_margin, sample_line

    opened: list[str] = []
    open_image, open_pdf = images._open, images._Pdf.__init__

    def counted_open(file: object, prefix: str, limit: int) -> Image.Image:
        opened.append(str(file))
        return open_image(file, prefix, limit)

    def counted_pdf(self: object, file: object, prefix: str, *args: object) -> None:
        opened.append(str(file))
        open_pdf(self, file, prefix, *args)

    monkeypatch.setattr(images, "_open", counted_open)
    monkeypatch.setattr(images._Pdf, "__init__", counted_pdf)
    line = on_margin(sample_line(5, scale=2.0))
    files = {
        "pages.tif": multipage_tiff([compose_page([0, 1])[0], line]),
        "one.tif": multipage_tiff([line]),
    }
    out = io.BytesIO()
    Image.fromarray(line).save(out, format="PDF", resolution=200)
    files["one.pdf"] = out.getvalue()
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    Image.fromarray(line).save(tmp_path / "line.png")
    paths = [str(tmp_path / name) for name in [*files, "line.png"]]
    result = runner.invoke(app, ["recognize", *paths])
    assert result.exit_code == 0, result.output
    assert [row.split("\t")[0] for row in result.stdout.splitlines()] == [
        f"{paths[0]} page 1:1",
        f"{paths[0]} page 1:2",
        f"{paths[0]} page 2",
        *paths[1:],
    ]
    assert sorted(opened) == sorted(paths)
    # In batches: a file of one page waits for its batch closed, and is opened again.
    opened.clear()
    result = runner.invoke(app, ["recognize", "--batch", "4", *paths])
    assert result.exit_code == 0, result.output
    assert sorted(opened) == sorted([*paths, paths[1], paths[2]])


def test_recognize_says_what_is_odd_about_a_file_in_its_own_words(tmp_path: Path) -> None:
    """Pillow's decompression-bomb and EXIF warnings (its own source line, no file named)
    were printed as they were; a PNG quoting "%PDF-" was refused as a damaged PDF; a DCX
    fax's pages were read as an animation's first frame."""
    from tests.pages import dcx, on_margin, sample_line
    from text_recognizer.recognizer import Recognizer

    lines = [on_margin(sample_line(i, scale=2.0)) for i in (0, 5)]
    huge = tmp_path / "huge.png"
    Image.new("1", (10_000, 10_000)).save(huge)
    quoting = tmp_path / "quoting.png"
    text = PngImagePlugin.PngInfo()
    text.add_text("Comment", "%PDF-1.4")
    Image.fromarray(lines[0]).save(quoting, pnginfo=text)
    fax = tmp_path / "fax.dcx"
    fax.write_bytes(dcx(lines))
    photo = tmp_path / "photo.jpg"
    out = io.BytesIO()
    Image.fromarray(lines[1]).save(out, format="JPEG", quality=95, exif=Image.Exif())
    exif = bytearray(out.getvalue())
    start = exif.index(b"Exif\0\0") + 6
    exif[start + 4 : start + 8] = b"\xff\xff\xff\x7f"  # its first directory: past the end
    photo.write_bytes(bytes(exif))
    paths = [str(path) for path in (huge, quoting, fax, photo)]
    result = runner.invoke(app, ["recognize", "--json", *paths])
    assert result.exit_code == 1
    for words in ("DecompressionBomb", "py.warnings", "Traceback", "PIL/", "animation"):
        assert words not in result.output, words
    read = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(row["image"], row.get("page")) for row in read] == [
        (paths[0], None),
        (paths[1], None),
        (paths[2], 1),
        (paths[2], 2),
        (paths[3], None),
    ]
    assert read[0]["error"] == (
        f"{huge}: the image is 10000x10000 pixels (100,000,000): larger than 40,000,000 "
        "pixels, the most read in one image; crop it or scale it down first, or raise the limit: "
        "--max-image-megapixels (text-recognizer recognize, serve) or max_image_pixels (Python; "
        "--data-arg max_image_pixels=N for a folder dataset)"
    )
    alone = [Recognizer.from_pretrained().recognize(line).text for line in lines]
    assert [row["text"] for row in read[1:]] == [alone[0], *alone, alone[1]]
    assert f"{photo}: its EXIF data is damaged" in result.stderr.replace("\n", " ")


def test_data_info_and_download_print_paths_as_they_are(tmp_path: Path) -> None:
    """A path holding [...] (rich markup) or too long for the terminal is printed whole,
    on one line, so that it can be copied."""
    import shutil

    from text_recognizer.paths import SAMPLES_DIR

    folder = tmp_path / "scans [red] of my grandmother's letters, transcribed by hand" / "lines"
    shutil.copytree(SAMPLES_DIR / "lines", folder)
    for command in ("info", "download"):
        result = runner.invoke(app, ["data", command, "folder", "--data-arg", f"path={folder}"])
        assert result.exit_code == 0, result.output
        assert str(folder) in result.output.splitlines()[-1], result.output
    result = runner.invoke(app, ["data", "info", "synthetic_chars", "--root", str(folder.parent),
                                 "--data-arg", "num_train=0", "--data-arg", "num_val=0",
                                 "--data-arg", "num_test=0"])  # fmt: skip
    assert result.exit_code == 0, result.output
    caches = [line for line in result.output.splitlines() if "cache" in line]
    assert len(caches) == 3
    assert all(f"cache {folder.parent}/synthetic_chars/synthetic_chars_" in c for c in caches)


def test_recognize_max_image_megapixels_raises_and_lowers_the_pixel_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An image past ``images.MAX_PIXELS`` (a 600-dpi A3 scan: 70 million) could not be
    read at all but by editing that constant: --max-image-megapixels raises the limit,
    for a lone image and for each page of a TIFF, and the error names it. (The module's
    default is lowered here so that a sample line is past it.)"""
    import text_recognizer.images as images
    from tests.pages import multipage_tiff, on_margin, sample_line
    from text_recognizer.recognizer import Recognizer

    monkeypatch.setattr(images, "MAX_PIXELS", 50_000)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", Image.MAX_IMAGE_PIXELS)  # put back after
    line = on_margin(sample_line(0, scale=2.0))  # 94x814: 76,516 pixels
    path, scan = tmp_path / "line.png", tmp_path / "scan.tif"
    Image.fromarray(line).save(path)
    scan.write_bytes(multipage_tiff([line, line[:, :400]]))
    result = runner.invoke(app, ["recognize", "--json", str(path), str(scan)])
    assert result.exit_code == 1
    read = [json.loads(row) for row in result.stdout.splitlines()]
    assert read[0]["error"] == (
        f"{path}: the image is 814x94 pixels (76,516): larger than 50,000 pixels, the most "
        "read in one image; crop it or scale it down first, or raise the limit: "
        "--max-image-megapixels (text-recognizer recognize, serve) or max_image_pixels (Python; "
        "--data-arg max_image_pixels=N for a folder dataset)"
    )
    assert "larger than 50,000 pixels" in read[1]["error"] and read[1]["page"] == 1
    assert "text" in read[2] and read[2]["page"] == 2  # 37,600 pixels: under the limit
    result = runner.invoke(
        app, ["recognize", "--json", "--max-image-megapixels", "0.08", str(path), str(scan)]
    )
    assert result.exit_code == 0, result.output
    read = [json.loads(row) for row in result.stdout.splitlines()]
    expected = Recognizer.from_pretrained().recognize(line).text
    assert [row["text"] for row in read[:2]] == [expected, expected]
    result = runner.invoke(app, ["recognize", "--max-image-megapixels", "0.04", str(path)])
    assert result.exit_code == 1 and "larger than 40,000 pixels" in result.output
    # Past what Pillow opens (179 million): this process lifts Pillow's cap to it.
    result = runner.invoke(app, ["recognize", "--max-image-megapixels", "300", str(path)])
    assert result.exit_code == 0, result.output
    assert Image.MAX_IMAGE_PIXELS is not None and 2 * Image.MAX_IMAGE_PIXELS >= 300_000_000


def test_line_options_with_kind_char_are_refused_before_reading(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """--beam, --lm, --width-search and the like with --kind char changed nothing, and said
    nothing; --lm default first counted its LM (~10 s) for nothing."""
    from text_recognizer.decoding.ngram import CharNgramLm
    from text_recognizer.paths import SAMPLES_DIR

    def counted(*args: object, **kwargs: object) -> None:
        raise AssertionError("an LM was counted")

    monkeypatch.setattr(CharNgramLm, "from_corpus", counted)
    char = str(SAMPLES_DIR / "chars" / "char_00.png")
    for options, named in [
        (["--beam", "4", "--lm", "default"], "--beam, --lm change how lines"),
        (["--width-search"], "--width-search changes how lines"),
        (["--no-deslant", "--upside-down"], "--no-deslant, --upside-down change"),
    ]:
        result = runner.invoke(app, ["recognize", "--kind", "char", *options, char])
        assert result.exit_code == 1, (options, result.output)
        assert named in result.stderr and "--kind char reads each image" in result.stderr
        assert result.stdout == ""
    result = runner.invoke(app, ["recognize", "--kind", "char", "--orientation", "upright", char])
    assert result.exit_code == 0, result.output  # as characters are read anyway
