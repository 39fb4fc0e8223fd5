"""Weights the model dequantises on every run, dequantised once at load time instead.

The acoustic model is quantised to int8 in the QDQ form: a ``DequantizeLinear`` node turns each
constant int8 weight into float32 in front of the node that uses it. onnxruntime fuses the
pairs it can run in int8 (a ``MatMul`` whose other input is a dynamically quantised activation
becomes ``DynamicQuantizeMatMul``), and keeps the others as they are: the convolutions' weights,
the biases and the positional projection are dequantised again on every model step (11.6
million values, a fifth of the step's time, measured in issue 11) although they never change.

:func:`fold_dequantized_weights` computes those float32 weights once, exactly as the node would
(``(w - zero_point) * scale`` in float32), and puts them into the graph as constants, leaving
every weight that onnxruntime runs in int8 alone. onnxruntime can then also lay the
convolutions' weights out for its blocked kernels ahead of time. The model's arithmetic is the
same; the float sums may be taken in another order by those kernels (the last bits of a
log-probability move; ``scripts/bench_robust.py`` measures what that does to readings).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from assistant.core.errors import RecognizerError

if TYPE_CHECKING:
    import onnx

#: Node kinds whose dequantised constant input onnxruntime never runs in int8.
FLOAT_CONSUMERS = frozenset({"Conv", "Add"})


@dataclass(frozen=True)
class Folded:
    """The rewritten model and what was folded (for reports)."""

    onnx: bytes
    nodes: int
    values: int


def fold_dequantized_weights(model: bytes) -> Folded:
    """The model with every constant ``DequantizeLinear`` that onnxruntime would run in float
    replaced by its float32 result. Raises :class:`RecognizerError` ``asr_load_failed`` when
    the bytes are not an ONNX model this can read."""
    try:
        import onnx
        from onnx import numpy_helper
    except ImportError as exc:
        raise RecognizerError(f"onnx is not installed: {exc}", code="asr_model_missing") from exc
    try:
        graph_model = onnx.load_from_string(model)
    except Exception as exc:  # protobuf raises its own DecodeError
        raise RecognizerError(
            f"the acoustic model cannot be read as ONNX: {type(exc).__name__}",
            code="asr_load_failed",
        ) from exc
    graph = graph_model.graph
    constants = {t.name: t for t in graph.initializer}
    consumers: defaultdict[str, list[Any]] = defaultdict(list)
    producer: dict[str, Any] = {}
    for node in graph.node:
        for name in node.input:
            consumers[name].append(node)
        for name in node.output:
            producer[name] = node

    def constant_dequantize(node: Any) -> bool:
        return node.op_type == "DequantizeLinear" and all(
            name in constants for name in node.input if name
        )

    def runs_in_float(node: Any) -> bool:
        """Every consumer uses the float weight: a convolution or an addition, or a MatMul
        whose other operand is itself dequantised from a computed int8 tensor (the model's
        positional projection), which onnxruntime leaves in float. A MatMul with a
        dynamically quantised activation is fused into an int8 MatMul, and one with a plain
        float activation into a block-quantised one: those weights stay as they are."""
        for user in consumers[node.output[0]]:
            if user.op_type in FLOAT_CONSUMERS:
                continue
            if user.op_type == "MatMul":
                others = [name for name in user.input if name != node.output[0]]
                if others and _dequantized_activation(others[0], producer, constants):
                    continue
            return False
        return True

    kept = []
    folded = 0
    values = 0
    for node in graph.node:
        if constant_dequantize(node) and runs_in_float(node):
            weight = _dequantize(node, constants, numpy_helper)
            graph.initializer.append(numpy_helper.from_array(weight, node.output[0]))
            folded += 1
            values += int(weight.size)
        else:
            kept.append(node)
    del graph.node[:]
    graph.node.extend(kept)
    used = {name for node in graph.node for name in node.input} | {o.name for o in graph.output}
    live = [t for t in graph.initializer if t.name in used]
    del graph.initializer[:]
    graph.initializer.extend(live)
    return Folded(graph_model.SerializeToString(), folded, values)


def _dequantized_activation(name: str, producer: dict[str, Any], constants: dict[str, Any]) -> bool:
    """Whether ``name`` is DequantizeLinear of a computed int8 tensor that is not a dynamically
    quantised activation (DequantizeLinear(DynamicQuantizeLinear(x)) is fused into int8)."""
    node = producer.get(name)
    if node is None or node.op_type != "DequantizeLinear" or node.input[0] in constants:
        return False
    source = producer.get(node.input[0])
    return source is None or source.op_type != "DynamicQuantizeLinear"


def _dequantize(
    node: Any, constants: dict[str, onnx.TensorProto], helper: Any
) -> npt.NDArray[np.float32]:
    """``(x - zero_point) * scale`` in float32, per tensor or along the node's axis."""
    x: npt.NDArray[Any] = np.asarray(helper.to_array(constants[node.input[0]]))
    scale = np.asarray(helper.to_array(constants[node.input[1]])).astype(np.float32)
    has_zero = len(node.input) > 2 and node.input[2]
    zero: npt.NDArray[Any] = (
        np.asarray(helper.to_array(constants[node.input[2]])) if has_zero else np.zeros((), x.dtype)
    )
    if scale.ndim == 1 and scale.size > 1:
        axis = next((a.i for a in node.attribute if a.name == "axis"), 1)
        shape = [1] * x.ndim
        shape[axis] = -1
        scale = scale.reshape(shape)
        zero = zero.reshape(shape)
    elif scale.ndim > 1:
        raise RecognizerError(
            f"blocked quantisation in {node.name!r} is not supported", code="asr_model_changed"
        )
    centred = x.astype(np.int32) - zero.astype(np.int32)
    result: npt.NDArray[np.float32] = (centred.astype(np.float32) * scale).astype(np.float32)
    return result
