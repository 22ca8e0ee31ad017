"""Load our LightningModules, or the network weights a run starts from, safely.

Checkpoints are read with ``weights_only=True`` (no unpickling of arbitrary objects):
our checkpoints hold only tensors and plain types, and name their model class.
"""

from __future__ import annotations

import logging
import pickle
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from text_recognizer.errors import ConfigError
from text_recognizer.models.base import RecognitionModule

log = logging.getLogger(__name__)


def resolve_checkpoint(source: Path) -> Path:
    """A ``.ckpt`` file as given, or a run folder's best (else last) checkpoint."""
    source = Path(source)
    if source.is_dir():
        best, last = source / "checkpoints" / "best.ckpt", source / "checkpoints" / "last.ckpt"
        if best.is_file():
            return best
        if last.is_file():
            # A run stopped before its first validation: its weights are not the best of any.
            log.warning(
                "%s has no best.ckpt (it stopped before a validation): using %s", source, last
            )
            return last
        raise ConfigError(f"{source} has no checkpoints/best.ckpt or last.ckpt")
    if not source.is_file():
        raise ConfigError(f"checkpoint {source} does not exist")
    return source


def why_unreadable(path: Path, error: Exception) -> str:
    """``path`` and why ``torch.load`` failed on it, in words. Never torch's own text for a
    weights-only refusal: it advises loading with ``weights_only=False``, which runs
    whatever code the file holds."""
    unreadable = f"{path} is not a readable text-recognizer checkpoint"
    try:
        with path.open("rb") as file:
            head = file.read(4)
    except OSError as os_error:
        return f"{unreadable}: {os_error.strerror or type(os_error).__name__}"
    if not head:
        return f"{unreadable}: the file is empty"
    if head != b"PK\x03\x04":  # torch.save (and so Lightning) writes a zip archive
        return (
            f"{path} is not a checkpoint (those are zip archives that torch.save writes): "
            "pass a run folder or its checkpoints/best.ckpt"
        )
    if not zipfile.is_zipfile(path):
        return f"{unreadable}: it is truncated or damaged (an incomplete zip archive)"
    if isinstance(error, pickle.UnpicklingError):
        return (
            f"{path} is not a text-recognizer checkpoint: it holds Python objects besides "
            "tensors and plain values, which are not loaded (they could run code)"
        )
    text = str(error).strip().splitlines()
    return f"{unreadable}: {text[0] if text else type(error).__name__}"


def load_module(source: Path) -> RecognitionModule:
    """The module a ``.ckpt`` (or a run folder's best) holds, in eval mode, rebuilt from its
    own saved arguments: no config needed. Only tensors and plain values are unpickled."""
    from text_recognizer.models import MODELS

    path = resolve_checkpoint(source)
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise ConfigError(why_unreadable(path, error)) from None
    name = checkpoint.get("model_name")
    if not name:
        raise ConfigError(
            f"{path} does not name its model class (not a text-recognizer checkpoint)"
        )
    module = MODELS.get(name)(**checkpoint["hyper_parameters"])
    module.load_state_dict(checkpoint["state_dict"])
    module.eval()
    return module  # type: ignore[return-value]


@dataclass(frozen=True)
class InitialWeights:
    """Trained network weights to start a run from, with what they were trained for."""

    source: str
    kind: str  # char or line: what the weights read
    network: str
    network_args: dict[str, Any]
    charset_tokens: list[str]
    input_height: int
    state_dict: dict[str, torch.Tensor]
    #: From an ONNX export: batch norms pass values through and must stay in eval mode.
    folded_batchnorm: bool


def load_initial_weights(source: str | Path, kind: str) -> InitialWeights:
    """Network weights from ``default`` (the bundled ``kind`` model), an exported
    ``.onnx`` (with its ``.json``), a ``.ckpt`` or a run folder."""
    from text_recognizer.models.onnx_weights import network_from_onnx
    from text_recognizer.paths import MODELS_DIR

    path = MODELS_DIR / f"{kind}.onnx" if str(source) == "default" else Path(source)
    if path.suffix == ".onnx":
        if not path.is_file():
            raise ConfigError(f"init.weights: {path} does not exist")
        network, meta = network_from_onnx(path)
        return InitialWeights(
            source=str(source),
            kind=str(meta["kind"]),
            network=meta["network"],
            network_args=meta["network_args"],
            charset_tokens=list(meta["charset"]),
            input_height=int(meta["input_height"]),
            state_dict=network.state_dict(),
            folded_batchnorm=True,
        )
    module = load_module(path)
    return InitialWeights(
        source=str(source),
        kind=module.kind,
        network=module.hparams["network"],
        network_args=module.hparams.get("network_args") or {},
        charset_tokens=list(module.charset.tokens),
        input_height=module.input_height,
        state_dict=module.network.state_dict(),
        folded_batchnorm=False,
    )
