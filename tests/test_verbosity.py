"""``-q``/``-v``/``-vv`` set the level of our logger and Lightning's alike."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from typer.testing import CliRunner

from text_recognizer.cli import app

LOGGERS = ("text_recognizer", "lightning", "lightning.pytorch", "lightning.fabric")


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, levels = list(root.handlers), {n: logging.getLogger(n).level for n in LOGGERS}
    yield
    root.handlers[:] = handlers
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


@pytest.mark.parametrize(
    ("flags", "level"),
    [
        (["-q"], logging.ERROR),
        ([], logging.WARNING),
        (["-v"], logging.INFO),
        (["-vv"], logging.DEBUG),
        (["-vvv"], logging.DEBUG),
    ],
)
def test_flags_map_to_levels(flags: list[str], level: int) -> None:
    result = CliRunner().invoke(app, [*flags, "data", "list"])
    assert result.exit_code == 0, result.output
    assert {name: logging.getLogger(name).level for name in LOGGERS} == dict.fromkeys(
        LOGGERS, level
    )
