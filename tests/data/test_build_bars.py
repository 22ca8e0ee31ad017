"""Build progress bars: drawn on a terminal, hidden under ``-q`` and in logs."""

from __future__ import annotations

import io
import logging
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from text_recognizer.data.emnist_lines import EmnistLines
from text_recognizer.data.synthetic_chars import SyntheticChars
from text_recognizer.data.synthetic_lines import SyntheticLines

TINY = {"num_train": 8, "num_val": 4, "num_test": 4}
BUILDS: dict[str, Callable[[Path], object]] = {
    "SyntheticChars": lambda root: SyntheticChars(root=root, build_workers=1, **TINY),
    "SyntheticLines": lambda root: SyntheticLines(root=root, build_workers=1, **TINY),
    "EmnistLines": lambda root: EmnistLines(
        root=root, char_source_args={"num_train": 124, "num_val": 124, "num_test": 124}, **TINY
    ),
}


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("name", sorted(BUILDS))
@pytest.mark.parametrize("where", ["terminal", "-q", "log"])
def test_a_build_bar_is_drawn_on_a_terminal_only_and_not_under_q(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, where: str
) -> None:
    """The synthetic builds drew their bars under -q ("only errors") and into log files
    (a group job's train.log), where the bar ran into the next line."""
    logger = logging.getLogger("text_recognizer")
    level = logger.level
    logger.setLevel(logging.ERROR if where == "-q" else logging.WARNING)
    monkeypatch.setattr(sys, "stderr", io.StringIO() if where == "log" else Terminal())
    try:
        BUILDS[name](tmp_path).prepare_data()  # type: ignore[attr-defined]
    finally:
        logger.setLevel(level)
    assert (f"{name} train" in sys.stderr.getvalue()) == (where == "terminal")
