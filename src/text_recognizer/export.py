"""Export a trained checkpoint to ONNX plus a JSON file the Recognizer reads.

The JSON carries everything inference needs besides the weights (charset, kind,
input height, version, metrics), so a model always decodes with its own charset and
serving needs neither the training code nor PyTorch.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from text_recognizer import __version__
from text_recognizer.errors import ConfigError
from text_recognizer.models.base import RecognitionModule
from text_recognizer.models.loading import load_module, resolve_checkpoint

OPSET = 17


class CharExport(nn.Module):
    """images ``[B,1,S,S]`` -> probabilities ``[B, C]``."""

    def __init__(self, network: nn.Module) -> None:
        super().__init__()
        self.network = network
        self.eval()  # the exporter restores the wrapper's mode onto the network afterwards

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.network(images), dim=-1)


class LineExport(nn.Module):
    """images ``[B,1,H,W]`` + widths ``[B]`` -> log-probabilities ``[B,T,C]`` + lengths ``[B]``."""

    def __init__(self, network: nn.Module) -> None:
        super().__init__()
        self.network = network
        self.eval()

    def forward(
        self, images: torch.Tensor, widths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        # True widths keep the BiLSTM's backward pass out of the right padding.
        log_probs = torch.log_softmax(self.network(images, widths), dim=-1)
        return log_probs, self.network.output_lengths(widths)  # type: ignore[operator]


def metadata(module: RecognitionModule, metrics: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "format": "text-recognizer-onnx/1",
        "version": __version__,
        "kind": module.kind,
        "network": module.hparams["network"],
        "network_args": module.hparams["network_args"],
        "input_height": module.input_height,
        "charset": list(module.charset.tokens),
        "metrics": metrics or {},
    }


def export_module(
    module: RecognitionModule, output: Path, metrics: dict[str, Any] | None = None
) -> Path:
    if module.model_name == "seq2seq":
        # An autoregressive decoder is two graphs driven by a loop the Recognizer lacks yet.
        raise ConfigError(
            "seq2seq models export as an encoder graph plus a decoder-step graph: call "
            "text_recognizer.networks.transformer.export_onnx(network, encoder_path, step_path) "
            "(see docs/models.md); `text-recognizer export` and the Recognizer take char and "
            "CTC models"
        )
    output = Path(output).with_suffix(".onnx")
    output.parent.mkdir(parents=True, exist_ok=True)
    network = module.network.eval()
    height = module.input_height
    wrapper: nn.Module
    if module.kind == "char":
        wrapper = CharExport(network)
        args: tuple[torch.Tensor, ...] = (torch.zeros(1, 1, height, height),)
        names, outputs = ["images"], ["probs"]
        axes = {"images": {0: "batch"}, "probs": {0: "batch"}}
    else:
        wrapper = LineExport(network)
        args = (torch.zeros(1, 1, height, height * 8), torch.tensor([height * 8]))
        names, outputs = ["images", "widths"], ["log_probs", "lengths"]
        axes = {
            "images": {0: "batch", 3: "width"},
            "widths": {0: "batch"},
            "log_probs": {0: "batch", 1: "time"},
            "lengths": {0: "batch"},
        }
    tmp = output.with_name(f".{output.name}.tmp")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the legacy exporter's deprecation notice
        torch.onnx.export(
            wrapper,
            args,
            str(tmp),
            input_names=names,
            output_names=outputs,
            dynamic_axes=axes,
            opset_version=OPSET,
            dynamo=False,
        )
    tmp.replace(output)
    output.with_suffix(".json").write_text(json.dumps(metadata(module, metrics), indent=2))
    return output


def export_onnx(source: Path, output: Path) -> Path:
    """Export a run folder's best checkpoint (or a ``.ckpt``) to ``output`` (.onnx + .json)."""
    checkpoint = resolve_checkpoint(source)
    summary_file = checkpoint.parent.parent / "summary.json"
    metrics = json.loads(summary_file.read_text()).get("test", {}) if summary_file.is_file() else {}
    return export_module(load_module(checkpoint), output, metrics)
