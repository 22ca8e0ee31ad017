"""Export a trained checkpoint to ONNX plus a JSON file the Recognizer reads.

The JSON carries everything inference needs besides the weights (charset, kind,
input height, version, metrics), so a model always decodes with its own charset and
serving needs neither the training code nor PyTorch.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import torch
from torch import nn

from text_recognizer import __version__
from text_recognizer.errors import ConfigError
from text_recognizer.files import check_writable, temp_beside
from text_recognizer.models.base import RecognitionModule
from text_recognizer.models.loading import load_module, resolve_checkpoint
from text_recognizer.recognizer import step_graph_path

if TYPE_CHECKING:
    from text_recognizer.networks.transformer import TransformerRecognizer

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


class EncoderExport(nn.Module):
    """ONNX graph 1: ``images [B,1,H,W]``, ``widths [B]`` -> ``memory_keys_values``,
    ``memory_valid`` (see :meth:`TransformerRecognizer.memory_keys_values`).

    Inference only: the wrapper puts itself (and so the network) in eval mode, because
    ``torch.onnx.export`` restores the *wrapper's* mode on the network afterwards.
    """

    def __init__(self, network: TransformerRecognizer) -> None:
        super().__init__()
        self.network = network
        self.eval()

    def forward(
        self, images: torch.Tensor, widths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        memory, memory_valid = self.network.encode(images, widths)
        return self.network.memory_keys_values(memory), memory_valid


class DecoderStepExport(nn.Module):
    """ONNX graph 2: ``token [B]``, ``cache``, ``memory_keys_values``, ``memory_valid`` ->
    ``log_probs [B, C]``, ``cache`` (one token longer). Start with a cache of length 0."""

    def __init__(self, network: TransformerRecognizer) -> None:
        super().__init__()
        self.network = network
        self.eval()

    def forward(
        self,
        token: torch.Tensor,
        cache: torch.Tensor,
        memory_keys_values: torch.Tensor,
        memory_valid: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return self.network.decode_step(token, cache, memory_keys_values, memory_valid)


def write_onnx(
    wrapper: nn.Module,
    args: tuple[Any, ...],
    path: Path,
    input_names: list[str],
    output_names: list[str],
    dynamic_axes: dict[str, dict[int, str]],
    opset: int = OPSET,
) -> Path:
    """Trace ``wrapper`` to ``path`` atomically: a temp file, renamed once complete."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # Per process: two exports to one path must not write into each other's temp file.
    tmp = temp_beside(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the legacy exporter's deprecation and tracer notes
            torch.onnx.export(
                wrapper,
                args,
                str(tmp),
                input_names=input_names,
                output_names=output_names,
                dynamic_axes=dynamic_axes,
                opset_version=opset,
                dynamo=False,
            )
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)  # no half-written file left behind
        raise
    return path


def export_seq2seq_graphs(
    network: TransformerRecognizer, encoder_path: Path, step_path: Path, opset: int = OPSET
) -> None:
    """Write the encoder and decoder-step graphs, each atomically (temp file, then rename).

    Batch, image width, memory length and cache length stay dynamic; see ``docs/models.md``
    for the loop that drives them.
    """
    was_training = network.training
    network.eval()
    images, widths = torch.zeros(1, 1, network.input_height, 128), torch.tensor([128])
    memory, memory_valid = network.encode(images, widths)
    memory_keys_values = network.memory_keys_values(memory)
    # Trace the step with a non-empty cache: a zero-length trace could specialise on it.
    start = torch.full((1, 1), network.start_index)
    _, cache = network.decode_cached(
        start, network.empty_cache(memory_keys_values), memory_keys_values, memory_valid
    )
    memory_axes = {
        "memory_keys_values": {2: "batch", 4: "positions"},
        "memory_valid": {0: "batch", 1: "positions"},
    }
    graphs: list[tuple[nn.Module, tuple[torch.Tensor, ...], Path, list[str], list[str], Any]] = [
        (
            EncoderExport(network),
            (images, widths),
            encoder_path,
            ["images", "widths"],
            ["memory_keys_values", "memory_valid"],
            {"images": {0: "batch", 3: "width"}, "widths": {0: "batch"}, **memory_axes},
        ),
        (
            DecoderStepExport(network),
            (start[:, 0], cache, memory_keys_values, memory_valid),
            step_path,
            ["token", "cache", "memory_keys_values", "memory_valid"],
            ["log_probs", "new_cache"],
            {
                "token": {0: "batch"},
                "cache": {2: "batch", 4: "length"},
                "log_probs": {0: "batch"},
                "new_cache": {2: "batch", 4: "length"},
                **memory_axes,
            },
        ),
    ]
    # Both traced before either is renamed into place: an encoder must never be left
    # beside an earlier export's step.
    traced = [Path(g[2]).with_name(f".{Path(g[2]).name}.{os.getpid()}.part") for g in graphs]
    try:
        for (wrapper, args, _, inputs, outputs, axes), tmp in zip(graphs, traced, strict=True):
            write_onnx(wrapper, args, tmp, inputs, outputs, axes, opset)
        traced[1].replace(step_path)  # the step first: the encoder is what opens the model
        traced[0].replace(encoder_path)
    finally:
        for tmp in traced:
            tmp.unlink(missing_ok=True)
    network.train(was_training)


def metadata(module: RecognitionModule, metrics: dict[str, Any] | None = None) -> dict[str, Any]:
    """What an exported model's ``.json`` holds: everything reading it needs besides the
    graph (kind, charset, input height, decoder), so no checkpoint or config is needed."""
    meta = {
        "format": "text-recognizer-onnx/1",
        "version": __version__,
        "kind": module.kind,
        "network": module.hparams["network"],
        "network_args": module.hparams["network_args"],
        "input_height": module.input_height,
        "charset": list(module.charset.tokens),
        "metrics": metrics or {},
    }
    if module.model_name == "seq2seq":  # a line read token by token, not CTC frames
        network = cast("TransformerRecognizer", module.network)
        meta["decoder"] = "seq2seq"
        meta["max_length"] = int(getattr(module, "max_length", None) or network.max_length)
    elif module.kind == "line":
        meta["decoder"] = "ctc"
    return meta


def export_module(
    module: RecognitionModule, output: Path, metrics: dict[str, Any] | None = None
) -> Path:
    """Export a loaded module (one trained in your own ``Trainer``, say) to ``output``
    (.onnx and its .json; a seq2seq model's decoder step too). Returns the .onnx file."""
    output = Path(output).with_suffix(".onnx")
    network = module.network.eval()
    height = module.input_height
    wrapper: nn.Module
    if module.model_name == "seq2seq":  # two graphs: the encoder at output, the step beside it
        step = step_graph_path(output)
        seq2seq = cast("TransformerRecognizer", network)
        return _write_with_meta(
            module, output, metrics, lambda: export_seq2seq_graphs(seq2seq, output, step)
        )
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

    def write() -> None:
        write_onnx(wrapper, args, output, names, outputs, axes)

    return _write_with_meta(module, output, metrics, write)


def _write_with_meta(
    module: RecognitionModule,
    output: Path,
    metrics: dict[str, Any] | None,
    write_graphs: Callable[[], None],
) -> Path:
    """Write the graphs and the ``.json`` beside ``output``, replaced together or not at all:
    the .json goes to a temp file first, the graphs are traced and renamed into place,
    then the .json renamed beside them. A failure before the renames leaves an earlier
    export of ``output`` as it was."""
    meta_file = output.with_suffix(".json")
    meta_tmp = temp_beside(meta_file)
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        meta_tmp.write_text(json.dumps(metadata(module, metrics), indent=2), encoding="utf-8")
        write_graphs()
        meta_tmp.replace(meta_file)
    except OSError as error:  # a full disk, or a folder that went away meanwhile
        raise ConfigError(
            f"cannot write {output} ({error.strerror or type(error).__name__}): "
            "choose another --output"
        ) from None
    finally:
        meta_tmp.unlink(missing_ok=True)
    return output


#: The file an export into an existing folder writes (with its ``.json``).
DEFAULT_NAME = "model.onnx"


def export_onnx(source: Path, output: Path) -> Path:
    """Export a run folder's best checkpoint (or a ``.ckpt``) to ``output`` (.onnx + .json);
    ``output`` an existing folder: to ``DEFAULT_NAME`` in it; without a suffix: ``.onnx``
    added; any suffix but ``.onnx`` is refused. Returns the .onnx file."""
    return export_files(source, output)[0]


def export_files(source: Path, output: Path) -> list[Path]:
    """:func:`export_onnx`, returning every file written, as ``text-recognizer export``
    names them: the .onnx (a seq2seq model's decoder step after it) and the .json last."""
    source, output = Path(source), Path(output)
    if source.suffix.lower() == ".onnx":
        raise ConfigError(
            f"{source} is already an ONNX model: export takes a run folder or a .ckpt"
        )
    if output.is_dir():
        output = output / DEFAULT_NAME
    elif output.suffix.lower() not in ("", ".onnx"):
        # Writing x.onnx for -o x.txt would leave the user looking for a file never written.
        raise ConfigError(
            f"{output} does not end in .onnx: export writes an ONNX model and its .json "
            f"beside it; name the model file, e.g. -o {output.with_suffix('.onnx')}"
        )
    else:
        output = output.with_suffix(".onnx")
    checkpoint = resolve_checkpoint(source)
    check_writable(output)  # before loading and tracing, which take a while
    check_writable(output.with_suffix(".json"))
    module = load_module(checkpoint)
    if module.model_name == "seq2seq":
        check_writable(step_graph_path(output))
    path = export_module(module, output, tested_metrics(checkpoint))
    graphs = [path, step_graph_path(path)] if module.model_name == "seq2seq" else [path]
    return [*graphs, path.with_suffix(".json")]


def tested_metrics(checkpoint: Path) -> dict[str, Any]:
    """The run's test metrics where they were measured on ``checkpoint`` (its
    ``summary.json`` names the checkpoint tested: the best, else the last); else none."""
    summary_file = checkpoint.parent.parent / "summary.json"
    if not summary_file.is_file():
        return {}
    summary = json.loads(summary_file.read_text())
    tested = summary.get("best_checkpoint") or ""
    # By name: a run folder may have been moved since.
    if Path(tested).name != checkpoint.name:
        return {}
    return dict(summary.get("test") or {})
