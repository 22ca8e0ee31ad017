"""Where the package finds its shipped assets and where it writes data and runs."""

from __future__ import annotations

import os
from pathlib import Path

ASSETS_DIR = Path(__file__).parent / "assets"
FONTS_DIR = ASSETS_DIR / "fonts"
MODELS_DIR = ASSETS_DIR / "models"
SAMPLES_DIR = ASSETS_DIR / "samples"


def data_dir() -> Path:
    """Root for downloads and dataset caches: ``$TEXT_RECOGNIZER_DATA`` or ``./data``."""
    # `or`: a variable set but empty (TEXT_RECOGNIZER_DATA= in a script) means unset, not "."
    return Path(os.environ.get("TEXT_RECOGNIZER_DATA") or "data").expanduser()


def runs_dir() -> Path:
    """Root for training runs: ``$TEXT_RECOGNIZER_RUNS`` or ``./runs``."""
    return Path(os.environ.get("TEXT_RECOGNIZER_RUNS") or "runs").expanduser()
