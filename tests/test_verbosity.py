"""``-q``/``-v``/``-vv`` set the level of our logger and Lightning's alike."""

from __future__ import annotations

import logging
import subprocess
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from text_recognizer.cli import app

LOGGERS = ("text_recognizer", "lightning", "lightning.pytorch", "lightning.fabric")


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    names = (*LOGGERS, "py.warnings")
    handlers, levels = list(root.handlers), {n: logging.getLogger(n).level for n in names}
    with warnings.catch_warnings():  # the filters the CLI adds
        yield
    logging.captureWarnings(False)
    root.handlers[:] = handlers
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


WARN = """
import sys, warnings
from text_recognizer.cli import configure_logging
configure_logging(int(sys.argv[1]))
warnings.warn("log_every_n_steps is above the batches of an epoch", UserWarning)
warnings.warn("`isinstance(treespec, LeafSpec)` is deprecated, use ... instead.", FutureWarning)
"""


@pytest.mark.parametrize(("verbosity", "shown"), [(-1, False), (0, True)], ids=["-q", "default"])
def test_python_warnings_follow_the_level_and_dependency_noise_is_dropped(
    verbosity: int, shown: bool
) -> None:
    """-q ("only errors") printed Lightning's warnings, among them one about its own use
    of a torch API, three times a training, at every level. A process of its own: pytest
    records the warnings of a test itself."""
    done = subprocess.run(
        [sys.executable, "-c", WARN, str(verbosity)], capture_output=True, text=True, check=True
    )
    assert ("log_every_n_steps" in done.stderr) == shown
    assert "LeafSpec" not in done.stderr


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


def test_a_training_prints_lightning_lines_once_and_only_when_asked(tmp_path: Path) -> None:
    """Lightning sets its loggers to INFO, with a console handler of its own, when the
    training code first imports it, after the CLI has set the levels: its lines printed
    twice, and at the default level too. A real process: in this one Lightning is loaded."""
    from tests.data.test_folder import TEXTS, tiny_folder_config, write_lines

    write_lines(tmp_path / "scans", TEXTS)
    config = tiny_folder_config("scans")
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(config))
    outputs = {}
    for flags in ([], ["-v"]):
        command = [sys.executable, "-m", "text_recognizer.cli", *flags, "train", "tiny.yaml"]
        done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stderr[-2000:]
        outputs[" ".join(flags)] = done.stderr.splitlines()
    assert not [line for line in outputs[""] if "INFO" in line]
    lines = [line for line in outputs["-v"] if line.startswith("INFO")]
    assert any(line.startswith("INFO lightning.pytorch") for line in lines)
    assert not [line for line in lines if line.startswith("INFO: ")]  # Lightning's own handler
    assert len(lines) == len(set(lines))
