"""Load any of our LightningModules from a checkpoint or run folder, safely.

Checkpoints are read with ``weights_only=True`` (no unpickling of arbitrary objects):
our checkpoints hold only tensors and plain types, and name their model class.
"""

from __future__ import annotations

from pathlib import Path

import torch

from text_recognizer.errors import ConfigError
from text_recognizer.models.base import RecognitionModule


def resolve_checkpoint(source: Path) -> Path:
    """A ``.ckpt`` file as given, or a run folder's best (else last) checkpoint."""
    source = Path(source)
    if source.is_dir():
        for name in ("best.ckpt", "last.ckpt"):
            candidate = source / "checkpoints" / name
            if candidate.is_file():
                return candidate
        raise ConfigError(f"{source} has no checkpoints/best.ckpt or last.ckpt")
    if not source.is_file():
        raise ConfigError(f"checkpoint {source} does not exist")
    return source


def load_module(source: Path) -> RecognitionModule:
    from text_recognizer.models import MODELS

    path = resolve_checkpoint(source)
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise ConfigError(f"{path} is not a readable text-recognizer checkpoint: {error}") from None
    name = checkpoint.get("model_name")
    if not name:
        raise ConfigError(
            f"{path} does not name its model class (not a text-recognizer checkpoint)"
        )
    module = MODELS.get(name)(**checkpoint["hyper_parameters"])
    module.load_state_dict(checkpoint["state_dict"])
    module.eval()
    return module  # type: ignore[return-value]
