"""The shipped models and samples: consistent metadata, and `make demo` reads the samples."""

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.inference_only import run_without_training
from text_recognizer.charset import DEFAULT_CHARSET
from text_recognizer.demo import run_demo
from text_recognizer.errors import ConfigError, ImageError
from text_recognizer.images import Pages, load_image
from text_recognizer.labels import read_labels
from text_recognizer.paths import MODELS_DIR, SAMPLES_DIR
from text_recognizer.recognizer import Recognizer


@pytest.mark.parametrize(("name", "kind", "height"), [("char", "char", 28), ("line", "line", 32)])
def test_bundled_model_metadata(name: str, kind: str, height: int) -> None:
    meta = json.loads((MODELS_DIR / f"{name}.json").read_text())
    assert meta["kind"] == kind
    assert meta["input_height"] == height
    assert tuple(meta["charset"]) == DEFAULT_CHARSET.tokens
    assert (MODELS_DIR / f"{name}.onnx").stat().st_size < 5_000_000


def test_samples_have_labels_and_files() -> None:
    for kind, count in (("chars", 8), ("lines", 8), ("paragraphs", 3)):
        labelled = read_labels(SAMPLES_DIR / kind)
        assert len(labelled) >= count
        assert all(row.image.is_file() and row.text for row in labelled)


def test_default_recognizer_loads_both_kinds() -> None:
    assert Recognizer.from_pretrained().kinds == ["char", "line"]


def test_a_bundled_model_loads_by_its_name_and_a_wrong_name_lists_them() -> None:
    assert Recognizer.from_pretrained("line").kinds == ["line"]
    assert Recognizer.from_pretrained("char").kinds == ["char"]
    with pytest.raises(
        ConfigError, match=r"lines: not a bundled model \('default', 'char', 'line'"
    ):
        Recognizer.from_pretrained("lines")


def test_threads_set_how_many_cores_each_model_call_takes(tmp_path: Path) -> None:
    line = SAMPLES_DIR / "lines" / "line_00.png"
    alone = Recognizer.from_pretrained().recognize(line)
    for name in ("default", "line"):
        one = Recognizer.from_pretrained(name, threads=1)
        for model in one.models.values():
            assert model.session.get_session_options().intra_op_num_threads == 1
        assert one.recognize(line).text == alone.text
    for wrong in (-1, 1.5, True):
        with pytest.raises(ConfigError, match="threads must be a whole number"):
            Recognizer.from_pretrained(threads=wrong)
    # A copy of a bundled model named in capitals is still an ONNX model.
    (tmp_path / "LINE.ONNX").write_bytes((MODELS_DIR / "line.onnx").read_bytes())
    (tmp_path / "LINE.json").write_bytes((MODELS_DIR / "line.json").read_bytes())
    assert Recognizer.from_pretrained(tmp_path / "LINE.ONNX").recognize(line).text == alone.text


def test_lines_and_pages_turned_half_a_turn_are_read_as_upright_with_upside_down() -> None:
    plain, both = Recognizer.from_pretrained(), Recognizer.from_pretrained(upside_down=True)
    for sample, kind in (("lines/line_00.png", "line"), ("paragraphs/page_00.png", "paragraph")):
        grey = load_image(SAMPLES_DIR / sample)
        turned = np.ascontiguousarray(grey[::-1, ::-1])
        upright = plain.recognize(grey, kind=kind)
        assert plain.recognize(turned, kind=kind).text != upright.text  # read as garbage
        read = both.recognize(turned, kind=kind)
        assert (read.text, read.rotation, upright.rotation) == (upright.text, 180, 0)
        assert read.to_dict()["rotation"] == 180 and "rotation" not in upright.to_dict()
        # Its places are in the image as given: the upright ones turned half a turn.
        width, height = upright.size
        for got, want in zip(read.lines or [read], upright.lines or [upright], strict=True):
            assert want.polygon is not None and got.polygon is not None
            expected = [(width - 1 - x, height - 1 - y) for x, y in want.polygon]
            assert np.abs(np.subtract(got.polygon, expected)).max() <= 2
        assert both.recognize(grey, kind=kind).text == upright.text  # upright stays upright
    char = SAMPLES_DIR / "chars" / "char_00.png"  # a 6 turned is a 9: characters as given
    assert both.recognize(char, kind="char").text == plain.recognize(char, kind="char").text


@pytest.mark.parametrize("turns", [1, 3])
def test_lines_and_pages_lying_on_their_side_are_turned_upright_by_default(turns: int) -> None:
    sideways, upright = (
        Recognizer.from_pretrained(),
        Recognizer.from_pretrained(orientation="upright"),
    )
    assert sideways.orientation == "sideways"
    for sample, kind in (("lines/line_00.png", "line"), ("paragraphs/page_00.png", "paragraph")):
        grey = load_image(SAMPLES_DIR / sample)
        turned = np.ascontiguousarray(np.rot90(grey, turns))  # counter-clockwise
        truth = upright.recognize(grey, kind=kind)
        for asked in (kind, "auto"):
            assert upright.recognize(turned, kind=asked).text != truth.text  # read as garbage
            read = sideways.recognize(turned, kind=asked)
            assert (read.kind, read.text) == (kind, truth.text)
            # np.rot90 turned it counter-clockwise: it is read turned back clockwise.
            assert read.rotation == (90 if turns == 1 else 270)
            # Its places are in the image as given: the upright ones turned with it.
            assert read.size == (turned.shape[1], turned.shape[0])
            width, height = truth.size
            for got, want in zip(read.lines or [read], truth.lines or [truth], strict=True):
                assert want.polygon is not None and got.polygon is not None
                expected = [
                    (y, width - 1 - x) if turns == 1 else (height - 1 - y, x)
                    for x, y in want.polygon
                ]
                assert np.abs(np.subtract(got.polygon, expected)).max() <= 2


def test_upright_lines_pages_and_characters_are_not_turned() -> None:
    sideways, upright = (
        Recognizer.from_pretrained(),
        Recognizer.from_pretrained(orientation="upright"),
    )
    samples = [
        row.image for kind in ("lines", "paragraphs") for row in read_labels(SAMPLES_DIR / kind)
    ]
    for sample in samples:
        for kind in ("auto", "line" if sample.parent.name == "lines" else "paragraph"):
            read, given = (
                sideways.recognize(sample, kind=kind),
                upright.recognize(sample, kind=kind),
            )
            assert read == given
    # A character is read as given, however tall: a "1" on its side is no line.
    chars = [row.image for row in read_labels(SAMPLES_DIR / "chars")]
    one = np.full((120, 60), 255, np.uint8)
    one[10:110, 27:33] = 0
    for image in [*chars, one, np.ascontiguousarray(np.rot90(one))]:
        assert sideways.recognize(image) == upright.recognize(image)


def test_orientation_and_the_older_upside_down_flag() -> None:
    assert Recognizer.from_pretrained(upside_down=True).orientation == "any"
    assert Recognizer.from_pretrained(upside_down=True, orientation="any").upside_down
    assert not Recognizer.from_pretrained().upside_down
    with pytest.raises(ConfigError, match="orientation must be one of upright, sideways, any"):
        Recognizer.from_pretrained(orientation="left")
    with pytest.raises(ConfigError, match="contradicts orientation 'upright'"):
        Recognizer.from_pretrained(upside_down=True, orientation="upright")


def test_demo_reads_the_samples() -> None:
    rows, summary = run_demo()
    assert rows[0] == ["sample", "kind", "truth", "prediction", "confidence", "CER"]
    pages = read_labels(SAMPLES_DIR / "paragraphs")
    assert len(rows) - 1 == sum(
        len(read_labels(SAMPLES_DIR / kind)) for kind in ("chars", "lines")
    ) + sum(page.text.count("\n") + 1 for page in pages)
    # A page is a row per line, against the line written there, its name on the first.
    named = [row for row in rows[1:] if row[1] == "paragraph"]
    assert [row[0] for row in named] == [page.image.name for page in pages]
    first = rows.index(named[0])
    written = pages[0].text.split("\n")
    assert [row[2] for row in rows[first : first + len(written)]] == written
    assert all(row[0] == "" for row in rows[first + 1 : first + len(written)])
    assert "characters:" in summary and "lines: CER" in summary
    assert "pages: CER" in summary and "(15 lines found of 15)" in summary
    # Regression floors for the shipped models on their bundled samples (held-out fonts).
    chars = [row for row in rows[1:] if row[1] == "char"]
    assert sum(row[2] == row[3] for row in chars) >= len(chars) - 2
    lines = [float(row[5]) for row in rows[1:] if row[1] == "line"]
    assert sum(lines) / len(lines) < 0.25
    page_lines = [float(row[5]) for row in rows[first:]]
    assert sum(page_lines) / len(page_lines) < 0.25


def test_the_bundled_line_model_reads_tilted_samples_nearly_as_well_as_level_ones() -> None:
    import numpy as np

    from text_recognizer.images import load_image
    from text_recognizer.metrics import cer
    from text_recognizer.preprocessing import rotate

    # All eight samples: one line may be read right even tilted, eight tell levelling apart.
    rows = read_labels(SAMPLES_DIR / "lines")
    texts = [row.text for row in rows]
    levels = [load_image(row.image) for row in rows]
    tilted = [
        rotate(image.astype(np.float32), 3.0, float(np.median(image))).astype(np.uint8)
        for image in levels
    ]
    reader = Recognizer.from_pretrained()
    as_is = Recognizer.from_pretrained(deskew=False)
    level_cer = cer([r.text for r in reader.recognize_batch(levels, kind="line")], texts)
    levelled_cer = cer([r.text for r in reader.recognize_batch(tilted, kind="line")], texts)
    unlevelled_cer = cer([r.text for r in as_is.recognize_batch(tilted, kind="line")], texts)
    assert levelled_cer <= level_cer + 0.05
    assert unlevelled_cer > levelled_cer + 0.03


def test_the_bundled_line_model_reads_leaning_samples_nearly_as_well_as_upright_ones() -> None:
    import numpy as np

    from text_recognizer.images import load_image
    from text_recognizer.metrics import cer
    from text_recognizer.preprocessing import shear

    rows = read_labels(SAMPLES_DIR / "lines")
    texts = [row.text for row in rows]
    uprights = [load_image(row.image) for row in rows]
    reader = Recognizer.from_pretrained()
    as_is = Recognizer.from_pretrained(deslant=False)
    upright_cer = cer([r.text for r in reader.recognize_batch(uprights, kind="line")], texts)
    for lean in (0.5, -0.3):  # far right, and back-handed
        leaning = [
            255 - shear(255 - image.astype(np.float32), lean).astype(np.uint8) for image in uprights
        ]
        deslanted_cer = cer([r.text for r in reader.recognize_batch(leaning, kind="line")], texts)
        leaning_cer = cer([r.text for r in as_is.recognize_batch(leaning, kind="line")], texts)
        assert deslanted_cer <= upright_cer + 0.03
        assert leaning_cer > deslanted_cer + 0.02


def test_cli_recognize_deslants_unless_told_not_to(tmp_path: Path) -> None:
    import numpy as np
    from PIL import Image
    from typer.testing import CliRunner

    from text_recognizer.cli import app
    from text_recognizer.images import load_image
    from text_recognizer.preprocessing import shear

    row = read_labels(SAMPLES_DIR / "lines")[5]
    leaning = shear(255 - load_image(row.image).astype(np.float32), -0.4)  # back-handed
    path = tmp_path / "leaning.png"
    Image.fromarray(255 - np.clip(leaning, 0, 255).astype(np.uint8)).save(path)
    expected = {
        flag: Recognizer.from_pretrained(deslant=deslant).recognize(path, kind="line").text
        for flag, deslant in (("--deslant", True), ("--no-deslant", False))
    }
    assert expected["--deslant"] != expected["--no-deslant"]
    for flag, text in expected.items():
        result = CliRunner().invoke(app, ["recognize", "--kind", "line", "--json", flag, str(path)])
        assert result.exit_code == 0, result.output
        assert json.loads(result.output)["text"] == text


@pytest.mark.parametrize("level", [0, 255])
def test_a_blank_character_says_so_whatever_its_shade(level: int) -> None:
    """The Recognizer has turned the ink bright already: the error must not ask for that."""
    blank = np.full((30, 30), level, dtype=np.uint8)
    with pytest.raises(ImageError, match="the image is blank: no ink found") as caught:
        Recognizer.from_pretrained().recognize(blank, kind="char")
    assert "bright ink" not in str(caught.value)


def test_reading_needs_none_of_the_training_dependencies() -> None:
    """An inference-only install reads every kind of image, greedily and by beam search,
    and runs the demo; torch alone would add ~1 s to every command, Lightning ~2 s."""
    done = run_without_training(
        "from text_recognizer.paths import SAMPLES_DIR\n"
        "from text_recognizer.recognizer import Recognizer\n"
        "for options in ({}, {'beam_size': 5}, {'width_search': True}):\n"
        "    recognizer = Recognizer.from_pretrained(**options)\n"
        "    for sample in ('lines/line_00.png', 'chars/char_00.png', 'paragraphs/page_00.png'):\n"
        "        print(recognizer.recognize(SAMPLES_DIR / sample).text)\n"
        "from text_recognizer.cli import run\n"
        "sys.argv = ['text-recognizer', 'demo']\n"
        "run()\n"
    )
    assert done.returncode == 0, done.stderr
    assert "the heart, he would" in done.stdout
    assert "lines: CER" in done.stdout


def test_beam_search_with_the_default_language_model_needs_no_training_dependency(
    tmp_path: Path,
) -> None:
    """``--lm default`` counts the shipped corpus (cut short here: the whole takes ~10 s)
    with the dataset package's light parts only."""
    done = run_without_training(
        "import os\n"
        f"os.environ['TEXT_RECOGNIZER_DATA'] = {str(tmp_path)!r}\n"
        "from text_recognizer.data.sources import corpus\n"
        "whole = corpus.load_sentences\n"
        "corpus.load_sentences = lambda source: whole(source)[:500]\n"
        "from text_recognizer.paths import SAMPLES_DIR\n"
        "from text_recognizer.recognizer import Recognizer\n"
        "recognizer = Recognizer.from_pretrained(beam_size=5, lm='default')\n"
        "print(recognizer.recognize(SAMPLES_DIR / 'lines/line_00.png').text)\n"
    )
    assert done.returncode == 0, done.stderr
    assert "the heart, he would" in done.stdout
    assert list((tmp_path / "lm").glob("*.arpa"))


def test_commands_that_need_training_dependencies_say_how_to_get_them(tmp_path: Path) -> None:
    done = run_without_training(
        "from text_recognizer.cli import run\n"
        f"sys.argv = 'text-recognizer data info synthetic_chars --root {tmp_path}'.split()\n"
        "run()\n"
    )
    assert done.returncode == 1
    assert "pip install 'text-recognizer[train]'" in done.stderr
    assert "Traceback" not in done.stderr
    done = run_without_training(
        "from text_recognizer.recognizer import Recognizer\n"
        f"Recognizer.from_pretrained({str(tmp_path / 'model.ckpt')!r})\n"
    )
    assert "pip install 'text-recognizer[train]', or read the model exported to ONNX" in done.stderr


def test_a_sweep_without_the_training_dependencies_names_the_sweep_extra(tmp_path: Path) -> None:
    """[sweep] includes [train]: naming [train] would send the user round twice."""
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text("sweep: s\n")
    done = run_without_training(
        "from text_recognizer.cli import run\n"
        f"sys.argv = ['text-recognizer', 'sweep', {str(sweep)!r}]\n"
        "run()\n"
    )
    assert done.returncode == 1
    assert "pip install 'text-recognizer[sweep]'" in done.stderr
    assert "[train]" not in done.stderr and "Traceback" not in done.stderr


def test_a_batch_of_lines_is_read_by_width_and_returned_in_order(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """recognize_batch sorts lines by width into network runs and puts the readings back
    in the images' order: with one line per run, each reads exactly as it does alone."""
    import text_recognizer.recognizer as recognizer_module

    recognizer = Recognizer.from_pretrained()
    lines = sorted((SAMPLES_DIR / "lines").glob("*.png"))
    images = [np.asarray(Image.open(path).convert("L")) for path in lines]
    # Widths in no order: each sample cut to a different share of its width.
    cuts = [image[:, : image.shape[1] * (3 + i % 5) // 7] for i, image in enumerate(images)]
    alone = [recognizer.recognize(image, kind="line") for image in cuts]
    monkeypatch.setattr(recognizer_module, "LINE_BATCH", 1)
    batched = recognizer.recognize_batch(cuts, kind="line")
    assert len({image.shape[1] for image in cuts}) == len(cuts)
    assert [(r.text, r.confidence) for r in batched] == [(r.text, r.confidence) for r in alone]


def test_a_mixed_batch_reads_each_image_as_it_reads_alone() -> None:
    recognizer = Recognizer.from_pretrained()
    paths = [SAMPLES_DIR / name for name in ("chars/char_00.png", "paragraphs/page_00.png")]
    paths += [SAMPLES_DIR / "lines/line_00.png", SAMPLES_DIR / "chars/char_01.png"]
    batched = recognizer.recognize_batch(paths)
    alone = [recognizer.recognize(path) for path in paths]
    assert [r.kind for r in batched] == ["char", "paragraph", "line", "char"]
    assert [r.text for r in batched] == [r.text for r in alone]
    assert [line.box for line in batched[1].lines] == [line.box for line in alone[1].lines]


def test_an_unreadable_image_in_a_batch_is_named() -> None:
    recognizer = Recognizer.from_pretrained()
    line = np.asarray(Image.open(SAMPLES_DIR / "lines/line_00.png").convert("L"))
    blank = np.full((40, 400), 255, dtype=np.uint8)
    with pytest.raises(ImageError, match=r"^image 2 of 3: .*no ink"):
        recognizer.recognize_batch([line, blank, line], kind="line")
    with pytest.raises(ImageError, match=r"^the image is blank"):  # alone: nothing to name
        recognizer.recognize(np.zeros((28, 28), dtype=np.uint8), kind="char")


def test_recognize_each_gives_an_unreadable_images_error_in_its_place(tmp_path: Path) -> None:
    """recognize_each reads as recognize_batch does, but a bad image costs only itself."""
    recognizer = Recognizer.from_pretrained()
    pages = [SAMPLES_DIR / "paragraphs" / f"page_0{n}.png" for n in range(2)]
    blank = tmp_path / "blank.png"
    Image.fromarray(np.full((300, 400), 255, np.uint8)).save(blank)
    speck = np.full((300, 400), 255, np.uint8)
    speck[100:103, 200:203] = 0
    outcomes = recognizer.recognize_each([pages[0], blank, speck, pages[1]], kind="paragraph")
    batched = recognizer.recognize_batch(pages, kind="paragraph")
    assert [type(o).__name__ for o in outcomes] == ["Result", "ImageError", "ImageError", "Result"]
    assert outcomes[0] == batched[0] and outcomes[3] == batched[1]  # words and places too
    assert str(outcomes[1]).startswith(f"{blank}: ")  # a file is named
    assert str(outcomes[2]) == "no line of text found in the image"  # its place says which
    assert recognizer.recognize_each([]) == []
    with pytest.raises(ConfigError, match="kind must be one of"):
        recognizer.recognize_each(pages, kind="page")  # type: ignore[arg-type]


def test_one_image_passed_where_a_list_goes_is_refused_and_any_iterable_is_read() -> None:
    """recognize_batch("a.png") once read the path letter by letter ("a: no such file"), an
    array row by row; a generator failed on len()."""
    recognizer = Recognizer.from_pretrained()
    path = SAMPLES_DIR / "lines/line_00.png"
    line = load_image(path)
    for method in (recognizer.recognize_batch, recognizer.recognize_each):
        for single in (str(path), path, path.read_bytes(), line, Image.fromarray(line)):
            with pytest.raises(ImageError, match=r"takes a list of images, not one .*\[image\]"):
                method(single)  # type: ignore[arg-type]
        with Pages(path) as document, pytest.raises(ImageError, match="recognize_document"):
            method(document)  # type: ignore[arg-type]
    expected = recognizer.recognize(path)
    assert recognizer.recognize_batch(p for p in [path, line]) == [expected, expected]
    assert recognizer.recognize_each(iter([line])) == [expected]


def test_one_recognizer_shared_by_threads_reads_what_one_thread_reads() -> None:
    """What docs/quickstart.md promises: no state of a call is kept on the Recognizer."""
    from concurrent.futures import ThreadPoolExecutor

    recognizer = Recognizer.from_pretrained(beam_size=4, orientation="any")
    images = sorted(SAMPLES_DIR.glob("*/*.png"))[::2]
    alone = [recognizer.recognize(image) for image in images]
    with ThreadPoolExecutor(4) as pool:
        assert list(pool.map(recognizer.recognize, images * 2)) == alone * 2


def test_a_recognizer_built_from_a_name_or_bad_width_search_says_what_to_pass() -> None:
    with pytest.raises(ConfigError, match=r"not 'default': Recognizer\.from_pretrained\(path\)"):
        Recognizer("default")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"not PosixPath\(.*line\.onnx'\)"):
        Recognizer([MODELS_DIR / "line.onnx"])  # type: ignore[list-item]
    with pytest.raises(ConfigError, match="width_search must be True, False or a list"):
        Recognizer.from_pretrained("line", width_search="yes")


def test_line_decoding_without_a_line_model_is_refused_before_an_lm_is_counted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The character model alone took a beam, an LM and width search without a word, and
    counted the LM (~10 s, 19 MB on first use) that nothing would read with."""
    from text_recognizer.decoding.ngram import CharNgramLm

    def counted(*args: object, **kwargs: object) -> None:
        raise AssertionError("an LM was counted")

    monkeypatch.setattr(CharNgramLm, "from_corpus", counted)
    for decoding in ({"beam_size": 4, "lm": "default"}, {"beam_size": 4}, {"width_search": True}):
        with pytest.raises(ConfigError, match=r"read lines, and the loaded models read none"):
            Recognizer.from_pretrained("char", **decoding)
    assert Recognizer.from_pretrained("char").kinds == ["char"]
    # Width search of the one width only (as evaluate passes "off") is no search.
    assert Recognizer.from_pretrained("char", width_search=[1.0]).kinds == ["char"]
