"""Code run in a subprocess where the training dependencies cannot be imported, as in an
inference-only install (`pip install text-recognizer`, without `[train]`)."""

from __future__ import annotations

import subprocess
import sys

WITHOUT_TRAINING = """
import sys
from text_recognizer.cli import TRAINING_MODULES

class LeftOut:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in TRAINING_MODULES:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)

sys.meta_path.insert(0, LeftOut())
"""


def run_without_training(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", WITHOUT_TRAINING + code], capture_output=True, text=True
    )
