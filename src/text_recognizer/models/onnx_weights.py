"""Read a network's trained weights back out of an exported ONNX model, to fine-tune it.

The bundled models ship as ONNX only (a training checkpoint is three times larger and
holds optimiser state nobody fine-tuning needs). ONNX keeps every trained number, in
the exporter's layout: convolutions with their batch norm folded in, LSTM gates in
ONNX's order, linear weights transposed. ``network_from_onnx`` rebuilds the network
from the model's JSON and undoes that layout, layer by layer in the order the network
runs them.

A folded batch norm cannot be unfolded (its statistics are gone), so it comes back as
the folded convolution followed by a batch norm that passes values through with the
folded bias: the same function in eval mode. Fine-tuning from such weights must keep
batch norms in eval mode (``init.freeze_batchnorm``), or their batch statistics would
rescale every layer. The rebuilt network is checked against ONNX Runtime on a test
input before it is returned.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch
from onnx import numpy_helper
from torch import nn

from text_recognizer.errors import ConfigError
from text_recognizer.networks import NETWORKS
from text_recognizer.recognizer import onnx_session, read_model_json

#: The largest difference allowed between the rebuilt network's outputs and ONNX Runtime's.
TOLERANCE = 1e-3
# ONNX orders an LSTM's four gate blocks input, output, forget, cell; PyTorch input,
# forget, cell, output.
_ONNX_TO_TORCH_GATES = [0, 2, 3, 1]


def read_metadata(path: Path) -> dict[str, Any]:
    """The JSON beside an exported ``.onnx`` (network, its arguments, charset, kind)."""
    meta_path = Path(path).with_suffix(".json")
    if not meta_path.is_file():
        raise ConfigError(
            f"{meta_path} does not exist: an exported model needs its .json beside it"
        )
    return read_model_json(meta_path)


def network_from_onnx(path: Path) -> tuple[nn.Module, dict[str, Any]]:
    """The trained network (eval mode) of an exported model, and the model's metadata.

    Raises ``ConfigError`` when the file is not one of our exports, holds a layer this
    reader does not know, or does not reproduce the ONNX model's outputs.
    """
    path = Path(path)
    meta = read_metadata(path)
    try:
        network = NETWORKS.build(meta["network"], meta["network_args"])
    except (KeyError, TypeError, ValueError) as error:
        raise ConfigError(f"{path}: its .json does not describe a network: {error}") from None
    session = onnx_session(path)  # first: a clear error where the file is no ONNX model
    graph = onnx.load(str(path)).graph
    weights = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    network.eval()
    calls = _layer_calls(network, meta)
    try:
        with torch.no_grad():
            _assign(calls, graph, weights, path)
    except ValueError as error:  # a stored array of the wrong shape
        raise _mismatch(path, str(error)) from None
    _check_outputs(network, meta, path, session)
    return network, meta


# --- which layer runs when ---------------------------------------------------------------

_LAYERS = (nn.Conv2d, nn.Conv1d, nn.BatchNorm1d, nn.BatchNorm2d, nn.LSTM, nn.Linear)


def _sample_input(meta: dict[str, Any]) -> tuple[torch.Tensor, ...]:
    height = int(meta["input_height"])
    generator = torch.Generator().manual_seed(0)
    if meta.get("kind") == "char":
        return (torch.rand(2, 1, height, height, generator=generator),)
    width = height * 8
    return torch.rand(2, 1, height, width, generator=generator), torch.tensor([width, width - 40])


def _layer_calls(network: nn.Module, meta: dict[str, Any]) -> list[tuple[nn.Module, bool]]:
    """Layers with weights in the order one forward pass runs them; for each batch norm,
    whether it directly normalises a convolution's output (and so was folded into it)."""
    unknown = {
        type(m).__name__
        for m in network.modules()
        if not isinstance(m, _LAYERS) and any(True for _ in m.parameters(recurse=False))
    }
    if unknown:
        raise ConfigError(
            f"cannot read a {meta['network']} network's weights back from ONNX (it has "
            f"{', '.join(sorted(unknown))} layers): fine-tune it from its checkpoint instead"
        )
    calls: list[tuple[nn.Module, bool]] = []
    # Held, not just their ids: a freed tensor's id can be reused by a later one.
    conv_outputs: dict[int, torch.Tensor] = {}

    def record(module: nn.Module, inputs: tuple[Any, ...], output: Any) -> None:
        normalises_conv = id(inputs[0]) in conv_outputs
        folded = isinstance(module, nn.modules.batchnorm._BatchNorm) and normalises_conv
        if isinstance(module, nn.Conv1d | nn.Conv2d):
            conv_outputs[id(output)] = output
        calls.append((module, folded))

    handles = [m.register_forward_hook(record) for m in network.modules() if isinstance(m, _LAYERS)]
    try:
        with torch.no_grad():
            network(*_sample_input(meta))
    finally:
        for handle in handles:
            handle.remove()
    return calls


def _weight_nodes(graph: onnx.GraphProto, weights: dict[str, np.ndarray]) -> list[onnx.NodeProto]:
    """Nodes holding layer weights, in graph order (which is the traced order)."""
    kinds = {"Conv", "LSTM", "Gemm", "BatchNormalization"}
    return [
        node
        for node in graph.node
        if node.op_type in kinds
        or (node.op_type == "MatMul" and any(name in weights for name in node.input))
    ]


# --- undoing the exporter's layout -------------------------------------------------------


def _assign(
    calls: list[tuple[nn.Module, bool]],
    graph: onnx.GraphProto,
    weights: dict[str, np.ndarray],
    path: Path,
) -> None:
    queue: Iterator[onnx.NodeProto] = iter(_weight_nodes(graph, weights))
    folded_bias: dict[int, np.ndarray] = {}
    previous: nn.Module | None = None
    for module, folded in calls:
        if isinstance(module, nn.modules.batchnorm._BatchNorm) and folded:
            if previous is None or id(previous) not in folded_bias:
                raise _mismatch(path, "a batch norm's convolution has no bias to take")
            _pass_through(module, folded_bias.pop(id(previous)))
        elif isinstance(module, nn.LSTM):
            for layer in range(module.num_layers):
                _set_lstm(module, layer, _next(queue, "LSTM", path), weights, path)
        elif isinstance(module, nn.Conv1d | nn.Conv2d):
            node = _next(queue, "Conv", path)
            _copy(module.weight, _array(weights, node.input[1], path))
            bias = _array(weights, node.input[2], path) if len(node.input) > 2 else None
            if module.bias is not None:
                _copy(module.bias, bias if bias is not None else np.zeros(module.out_channels))
            elif bias is not None:
                folded_bias[id(module)] = bias
        elif isinstance(module, nn.Linear):
            _set_linear(module, _next(queue, "Gemm|MatMul", path), graph, weights, path)
        else:  # a batch norm the exporter kept as it was
            assert isinstance(module, nn.modules.batchnorm._BatchNorm)
            node = _next(queue, "BatchNormalization", path)
            scale, shift, mean, var = (_array(weights, n, path) for n in node.input[1:5])
            assert module.running_mean is not None and module.running_var is not None
            _copy(module.weight, scale)
            _copy(module.bias, shift)
            _copy(module.running_mean, mean)
            _copy(module.running_var, var)
        previous = module
    if folded_bias:
        raise _mismatch(path, "a convolution's bias has no batch norm to go to")
    left = list(queue)
    if left:
        raise _mismatch(path, f"{len(left)} weight nodes left over, {left[0].op_type} first")


def _next(queue: Iterator[onnx.NodeProto], ops: str, path: Path) -> onnx.NodeProto:
    node = next(queue, None)
    if node is None or node.op_type not in ops.split("|"):
        found = node.op_type if node is not None else "the end of the graph"
        raise _mismatch(path, f"expected a {ops} node, found {found}")
    return node


def _set_linear(
    module: nn.Linear,
    node: onnx.NodeProto,
    graph: onnx.GraphProto,
    weights: dict[str, np.ndarray],
    path: Path,
) -> None:
    if node.op_type == "Gemm":
        trans_b = next((a.i for a in node.attribute if a.name == "transB"), 0)
        matrix = _array(weights, node.input[1], path)
        _copy(module.weight, matrix if trans_b else matrix.T)
        if module.bias is not None:
            _copy(module.bias, _array(weights, node.input[2], path))
        return
    # MatMul(x, W) with W stored [in, out]; the bias, if any, is the Add that follows.
    _copy(module.weight, weights[next(n for n in node.input if n in weights)].T)
    if module.bias is None:
        return
    add = next((n for n in graph.node if n.op_type == "Add" and node.output[0] in n.input), None)
    stored = [name for name in (add.input if add is not None else []) if name in weights]
    if not stored:
        raise _mismatch(path, "a linear layer's bias was not found after its MatMul")
    _copy(module.bias, weights[stored[0]])


def _set_lstm(
    module: nn.LSTM,
    layer: int,
    node: onnx.NodeProto,
    weights: dict[str, np.ndarray],
    path: Path,
) -> None:
    """ONNX LSTM inputs W ``[dirs, 4H, in]``, R ``[dirs, 4H, H]``, B ``[dirs, 8H]``."""
    w, r, b = (_array(weights, name, path) for name in node.input[1:4])
    hidden = module.hidden_size
    if w.shape[0] != (2 if module.bidirectional else 1):
        raise _mismatch(path, f"an LSTM node has {w.shape[0]} directions")
    for direction in range(w.shape[0]):
        suffix = f"_l{layer}" + ("_reverse" if direction else "")
        params = {
            "weight_ih": w[direction],
            "weight_hh": r[direction],
            "bias_ih": b[direction, : 4 * hidden],
            "bias_hh": b[direction, 4 * hidden :],
        }
        for name, value in params.items():
            gates = value.reshape(4, hidden, *value.shape[1:])[_ONNX_TO_TORCH_GATES]
            _copy(getattr(module, name + suffix), gates.reshape(value.shape))


def _pass_through(norm: nn.modules.batchnorm._BatchNorm, bias: np.ndarray) -> None:
    """Make an eval-mode batch norm add ``bias`` and nothing else."""
    assert norm.running_var is not None and norm.running_mean is not None
    norm.weight.fill_(1.0)
    _copy(norm.bias, bias)
    norm.running_mean.zero_()
    norm.running_var.fill_(1.0 - norm.eps)


def _array(weights: dict[str, np.ndarray], name: str, path: Path) -> np.ndarray:
    if name not in weights:
        raise _mismatch(path, f"{name!r} is computed in the graph, not stored")
    return weights[name]


def _copy(tensor: torch.Tensor, value: np.ndarray) -> None:
    if tuple(tensor.shape) != value.shape:
        raise ConfigError(
            f"shape {value.shape} in the ONNX model does not fit {tuple(tensor.shape)}"
        )
    tensor.copy_(torch.from_numpy(np.array(value, dtype=np.float32)))


def _mismatch(path: Path, what: str) -> ConfigError:
    return ConfigError(
        f"{path}: its graph does not match the network its .json describes ({what}); "
        "only models exported by text-recognizer can be read back"
    )


# --- the check ---------------------------------------------------------------------------


def _check_outputs(network: nn.Module, meta: dict[str, Any], path: Path, session: Any) -> None:
    """Raise unless the rebuilt network gives ONNX Runtime's ``session``'s outputs on a
    test input."""
    inputs = _sample_input(meta)
    feed = {arg.name: x.numpy() for arg, x in zip(session.get_inputs(), inputs, strict=True)}
    expected = session.run(None, feed)[0]
    with torch.no_grad():
        logits = network(*inputs)
    if meta.get("kind") == "char":
        ours = torch.softmax(logits, dim=-1).numpy()
    else:
        ours = torch.log_softmax(logits, dim=-1).numpy()
        # Frames past a line's true length are padding: compare the real ones only.
        lengths = network.output_lengths(inputs[1])  # type: ignore[operator]
        mask = np.arange(ours.shape[1])[None, :] < lengths.numpy()[:, None]
        ours, expected = ours[mask], expected[mask]
    difference = float(np.abs(ours - expected).max())
    if not difference <= TOLERANCE:
        raise _mismatch(path, f"outputs differ from ONNX Runtime's by {difference:.2g}")
