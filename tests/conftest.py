"""Shared fixtures: every test writes data and runs under its own temporary folder."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")


@pytest.fixture(autouse=True)
def isolated_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Point data and run folders at a temp dir so tests never touch ./data or ./runs, and
    drop the proxy variables: urllib would send the tests' requests to 127.0.0.1 to a
    developer's proxy, off this machine (the proxy tests set their own)."""
    for name in list(os.environ):
        if name.lower().endswith("_proxy"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("TEXT_RECOGNIZER_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("TEXT_RECOGNIZER_RUNS", str(tmp_path / "runs"))
    yield tmp_path


from tests.fixtures import tiny_char_run  # noqa: E402

__all__ = ["isolated_dirs", "tiny_char_run"]
