"""The wheel users install holds every file of the package and nothing else.

Hatchling leaves out what ``.gitignore`` matches, so a model, font or page added under a
pattern it lists (``*.onnx`` in some folder, ``data/``) would be missing from the
installed package while every test run from the checkout passed.
"""

from __future__ import annotations

import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

wheel_builder = pytest.importorskip("hatchling.builders.wheel")

ROOT = Path(__file__).resolve().parents[1]


def tracked_package_files() -> list[str]:
    git = shutil.which("git")
    if git is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout: the package's files are not known")
    listed = subprocess.run(
        [git, "ls-files", "src/text_recognizer"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return [path.removeprefix("src/") for path in listed]


def test_the_wheel_holds_every_file_of_the_package_and_nothing_else(tmp_path: Path) -> None:
    (wheel,) = wheel_builder.WheelBuilder(str(ROOT)).build(
        directory=str(tmp_path), versions=["standard"]
    )
    names = set(zipfile.ZipFile(wheel).namelist())
    missing = [path for path in tracked_package_files() if path not in names]
    assert not missing, f"in git but not in the wheel: {missing}"
    package = {name for name in names if not name.startswith("text_recognizer-")}
    assert all(name.startswith("text_recognizer/") for name in package)
    assert not [name for name in package if "__pycache__" in name or name.endswith(".pyc")]
    for needed in (
        "assets/models/line.onnx",
        "assets/models/line.json",
        "serving/static/index.html",
        "py.typed",  # without it mypy skips the package in users' code (PEP 561)
    ):
        assert f"text_recognizer/{needed}" in names
    assert Path(wheel).stat().st_size < 20_000_000  # shipped files stay a few MB each
