"""The Recognizer's line decoders: greedy by default, beam search with an optional LM."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from text_recognizer.charset import DEFAULT_CHARSET
from text_recognizer.cli import app
from text_recognizer.data.sources import corpus
from text_recognizer.decoding import CharNgramLm
from text_recognizer.errors import ConfigError, DataError
from text_recognizer.paths import ASSETS_DIR
from text_recognizer.recognizer import Recognizer

CS = DEFAULT_CHARSET
LM_TEXTS = ["the cat sat on the mat", "the dog ate the cake", "then the man saw the sea"] * 5


class NearMissLineModel:
    """A line model that reads every image as "tha cat", with "the cat" a close second."""

    def __init__(self) -> None:
        self.meta: dict[str, Any] = {"kind": "line", "charset": list(CS.tokens), "input_height": 32}

    def line_log_probs(
        self, images: np.ndarray, widths: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        rows = []
        for i, char in enumerate("the cat"):
            probs = np.full(len(CS), 0.01 / (len(CS) - 2))
            probs[CS.index(char)] = 0.99
            if i == 2:  # 'a' beats 'e' by a hair
                probs[CS.index("a")], probs[CS.index("e")] = 0.99 * 0.55, 0.99 * 0.45
            blank = np.full(len(CS), 0.01 / (len(CS) - 1))
            blank[CS.blank] = 0.99
            rows += [probs, blank]
        log_probs = np.log(np.array(rows, np.float32))
        batch = np.repeat(log_probs[None], len(images), axis=0)
        return batch, np.full(len(images), len(rows), np.int64)

    def char_probs(self, images: np.ndarray) -> np.ndarray:
        raise NotImplementedError


LINE = np.full((32, 120), 255, np.uint8)
LINE[12:20, 10:110] = 0  # some ink: blank images are refused


@pytest.fixture
def lm_file(tmp_path: Path) -> Path:
    return CharNgramLm.build(LM_TEXTS, order=4, path=tmp_path / "chars.arpa").path


def test_greedy_by_default_beam_alone_agrees_and_the_lm_fixes_the_word(lm_file: Path) -> None:
    model = NearMissLineModel()
    assert Recognizer([model]).recognize(LINE).text == "tha cat"
    assert Recognizer([model], beam_size=8).recognize(LINE).text == "tha cat"
    with_lm = Recognizer([model], beam_size=8, lm=lm_file).recognize_batch([LINE, LINE])
    assert [r.text for r in with_lm] == ["the cat", "the cat"]
    # The confidence stays the model's own P(text | image): lower for the LM's choice.
    assert with_lm[0].confidence < Recognizer([model]).recognize(LINE).confidence


@pytest.mark.parametrize("source", ["default", "brown"])
def test_a_named_lm_is_counted_from_its_sentence_source_once(
    source: str, isolated_dirs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[str] = []

    def load_sentences(name: str = "default") -> tuple[str, ...]:
        asked.append(name)
        return tuple(LM_TEXTS)

    monkeypatch.setattr(corpus, "load_sentences", load_sentences)
    first = Recognizer([NearMissLineModel()], beam_size=8, lm=source)
    assert asked == [source]
    assert first.recognize(LINE).text == "the cat"
    assert first.lm is not None and first.lm.path.is_relative_to(isolated_dirs / "data")
    written = first.lm.path.stat().st_mtime_ns
    again = Recognizer([NearMissLineModel()], beam_size=8, lm=source)
    assert again.lm is not None and again.lm.path.stat().st_mtime_ns == written


def test_bad_decoding_arguments_are_clear(tmp_path: Path) -> None:
    model = NearMissLineModel()
    with pytest.raises(ConfigError, match="beam_size must be a whole number"):
        Recognizer([model], beam_size=0)
    with pytest.raises(ConfigError, match="needs beam search"):
        Recognizer([model], lm="default")
    with pytest.raises(Exception, match="does not exist"):
        Recognizer([model], beam_size=4, lm=tmp_path / "missing.arpa")


def test_a_damaged_lm_file_is_refused_when_the_recognizer_is_made(
    lm_file: Path, tmp_path: Path
) -> None:
    """It was loaded on the first line read, and failed there with KenLM's RuntimeError
    (a traceback on the command line)."""
    damaged = tmp_path / "damaged.arpa"
    damaged.write_text(lm_file.read_text()[:300])
    with pytest.raises(DataError, match=r"damaged\.arpa is not a readable ARPA file"):
        Recognizer([NearMissLineModel()], beam_size=4, lm=damaged)
    sample = ASSETS_DIR / "samples" / "lines" / "line_00.png"
    result = CliRunner().invoke(
        app, ["recognize", "--beam", "4", "--lm", str(damaged), str(sample)]
    )
    assert result.exit_code == 1 and "is not a readable ARPA file" in result.output
    assert isinstance(result.exception, SystemExit)  # no traceback


def test_cli_reads_bundled_lines_with_beam_search_and_an_lm(lm_file: Path) -> None:
    samples = sorted((ASSETS_DIR / "samples" / "lines").glob("*.png"))[:2]
    runner = CliRunner()
    greedy = runner.invoke(app, ["recognize", "--kind", "line", *map(str, samples)])
    beam = runner.invoke(app, ["recognize", "--kind", "line", "--beam", "10", *map(str, samples)])
    assert greedy.exit_code == beam.exit_code == 0
    assert greedy.output == beam.output  # a beam without LM keeps the best path here
    lm = runner.invoke(
        app, ["recognize", "--beam", "10", "--lm", str(lm_file), "--kind", "line", str(samples[0])]
    )
    assert lm.exit_code == 0 and str(samples[0]) in lm.output
    refused = runner.invoke(app, ["recognize", "--lm", str(lm_file), str(samples[0])])
    assert refused.exit_code != 0 and "needs beam search" in refused.output


def test_read_at_widths_keeps_each_lines_most_confident_reading() -> None:
    from text_recognizer.recognizer import read_at_widths

    lines = [np.ones((4, 20), np.float32), np.ones((4, 40), np.float32)]
    seen: list[list[int]] = []

    def read(batch: list[np.ndarray]) -> list[tuple[str, float]]:
        widths = [line.shape[1] for line in batch]
        seen.append(widths)
        # line 0 reads best squeezed, line 1 best stretched
        return [(f"w{widths[0]}", 1 / widths[0]), (f"w{widths[1]}", float(widths[1]))]

    assert read_at_widths(lines, read, (0.5, 1.0, 2.0)) == [("w10", 0.1), ("w80", 80.0)]
    assert seen == [[10, 20], [20, 40], [40, 80]]  # one read per factor, heights kept


def test_width_search_is_off_by_default_and_checked() -> None:
    from text_recognizer.recognizer import WIDTH_SEARCH, width_factors

    assert Recognizer.from_pretrained().width_factors == (1.0,)
    assert Recognizer.from_pretrained(width_search=True).width_factors == WIDTH_SEARCH
    assert Recognizer.from_pretrained(width_search=[0.9, 1.1]).width_factors == (0.9, 1.1)
    with pytest.raises(ConfigError, match="must be positive"):
        width_factors([1.0, 0.0])


def test_recognizers_sharing_one_lm_read_at_once_as_each_reads_alone(lm_file: Path) -> None:
    """``serve --workers N`` loads its LM once for all N: searches in several threads at
    once only read it (flashlight-text's KenLM; each search keeps its own states)."""
    from concurrent.futures import ThreadPoolExecutor

    from text_recognizer.paths import SAMPLES_DIR

    lm = CharNgramLm(lm_file)
    workers = [Recognizer.from_pretrained("line", threads=1, beam_size=10, lm=lm) for _ in range(4)]
    assert all(worker.lm is lm for worker in workers)
    lines = sorted((SAMPLES_DIR / "lines").glob("*.png"))
    alone = [workers[0].recognize(line) for line in lines]
    with ThreadPoolExecutor(len(workers)) as pool:
        jobs = [
            pool.submit(lambda worker: [worker.recognize(line) for line in lines * 3], worker)
            for worker in workers
        ]
        for job in jobs:
            assert [result.text for result in job.result()] == [r.text for r in alone] * 3
