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

**On disk, once.** Rewriting the graph in memory costs the process a few hundred megabytes at
start-up (the graph parsed, rewritten and serialised beside the model's own bytes), memory a
long-running box would keep. :func:`folded_model` therefore writes the folded graph to the
models folder once (``asr_models/vietasr-<model digest>-fold<version>.onnx``, with its SHA-256
beside it) and onnxruntime loads it from there; ``scripts/install.sh`` builds it
(``python -m assistant.asr.fold``). A file whose digest does not match is rebuilt; a folder
that cannot be written leaves the fold in memory, with a log line.

**Each frame's convolution-module input projected once** (:func:`cache_projected_frames`,
version 2). Each conformer layer's convolution module keeps the last 30 frames of its input as
its cache, and on every step ran its first pointwise convolution and GLU over those 30 again
with the 10 new frames, though their result is the one the previous step computed. The
rewritten graph keeps the GLU's output in the same cache tensor instead, and runs the pointwise
convolution and GLU over the 10 new frames only; at the utterance's first step (``offset`` 0,
whose cache is all zeros) it uses the GLU of a zero frame for the cached ones, which is what
the model computed there. The log-probabilities are bit for bit the same (a test pins it on
recorded speech); a step costs about 8 % less. The cache tensor holds other numbers than the
shipped model's, so only this graph reads what it wrote.

**The front end's second convolution in int8** (:func:`quantise_front_convolution`, version
3). Its kernel is int8 in the shipped model, but onnxruntime runs it in float32: 343 million
multiply-adds a step, the largest node of the graph. The rewrite runs it as an int8 matrix
product of its input patches, as the model's own matmuls are run; a step costs 8-15 % less
(``scripts/bench_step.py``).
This one is not the model's arithmetic bit for bit: the best class changed on 0.1 % of the
frames of 8 recorded codes. Summing the same float32 convolution in another order (the
patches times the float kernel, as another CPU's kernels would) changed 0.2 % of them, and
both moved single codes and answers of the robustness panel by the same amount in either
direction (issue 11), so the rewrite is kept.

**Each layer norm as one node** (:func:`fuse_layer_norms`, version 4). The export writes its
73 layer norms as nine nodes each, a pattern onnxruntime does not fuse; one
``LayerNormalization`` node each computes the same (its sums in another order), 5-10 %
of a step less. Judged the same way as the int8 front end.

**The positional rows projected once for all calls** (:mod:`assistant.asr.positions`,
version 5). The attention layers' positional projections leave the step graph for a second
small graph, the *projector*, written beside it (``...-fold5-positions.onnx``); the box keeps
the rows of every position reached in one table shared by all calls and feeds each step its
50 rows. The same numbers go in, so the step's log-probabilities are bit for bit those of
version 4; a step costs about 15 % less.

**The pointwise convolutions in int8** (:func:`quantise_pointwise_convolutions`, version 6).
Each conformer layer's convolution module has two 1x1 convolutions over its frames (448 ->
896 before the GLU, 448 -> 448 after the depthwise one); their kernels are int8 in the shipped
model, and after the fold above onnxruntime ran them in float32, 29 MB of float kernels read
on every step. They now run as int8 matrix products, as the model's own matmuls are run (the
frames rounded to 8 bits once per run). Not bit for bit: judged as the int8 front end was.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
import sys
import tempfile
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from assistant.core.errors import RecognizerError

if TYPE_CHECKING:
    import onnx

    from assistant.asr.model import ModelData

log = logging.getLogger(__name__)

#: Changes whenever the rewrite changes, so that an older folded file is not used.
FOLD_VERSION = 6
#: A convolution is run as an int8 matrix product (:func:`quantise_front_convolution`) when it
#: has at least this many input channels and a kernel wider than one position: the front end's
#: second convolution (448), not its first (1 channel, 3 million multiply-adds a step), nor the
#: conformer's depthwise ones (grouped) or 1x1 ones (ten frames each, and
#: :func:`cache_projected_frames` rewrites those).
MIN_INT8_CONV_CHANNELS = 64
#: Node kinds whose dequantised constant input onnxruntime never runs in int8.
FLOAT_CONSUMERS = frozenset({"Conv", "Add"})


@dataclass(frozen=True)
class Folded:
    """The rewritten model and what was folded (for reports)."""

    onnx: bytes
    nodes: int
    values: int
    #: convolution modules whose cache now holds projected frames (:func:`cache_projected_frames`)
    projected_caches: int = 0
    #: convolutions run as int8 matrix products (:func:`quantise_front_convolution`)
    int8_convolutions: int = 0
    #: layer norms run as one node each (:func:`fuse_layer_norms`)
    fused_norms: int = 0
    #: the positional projector graph (:func:`assistant.asr.positions.split_positions`), or
    #: empty when the step graph projects its positions itself
    projector: bytes = b""
    #: attention layers whose positional rows the step graph reads as inputs
    position_layers: int = 0
    #: 1x1 convolutions run as int8 matrix products (:func:`quantise_pointwise_convolutions`)
    int8_pointwise: int = 0


@dataclass(frozen=True)
class Graphs:
    """The folded graphs onnxruntime loads, each as its file or (a folder that cannot be
    written) its bytes: the step, and its positional projector (``None`` when the step graph
    projects its positions itself)."""

    step: Path | bytes
    projector: Path | bytes | None = None


def fold_dequantized_weights(model: bytes) -> Folded:
    """The model with every constant ``DequantizeLinear`` that onnxruntime would run in float
    replaced by its float32 result. Raises :class:`RecognizerError` ``asr_load_failed`` when
    the bytes are not an ONNX model this can read."""
    graph_model = _load(model)
    nodes, values = _fold_in_place(graph_model)
    return Folded(graph_model.SerializeToString(), nodes, values)


def _load(model: bytes) -> Any:
    """The parsed ONNX model; :class:`RecognizerError` when onnx is missing or the bytes are no
    model."""
    try:
        import onnx
    except ImportError as exc:
        raise RecognizerError(f"onnx is not installed: {exc}", code="asr_model_missing") from exc
    try:
        return onnx.load_from_string(model)
    except Exception as exc:  # protobuf raises its own DecodeError
        raise RecognizerError(
            f"the acoustic model cannot be read as ONNX: {type(exc).__name__}",
            code="asr_load_failed",
        ) from exc


def _consumers(nodes: list[Any]) -> defaultdict[str, list[Any]]:
    """The nodes reading each tensor (a node once per tensor, however often it reads it)."""
    consumers: defaultdict[str, list[Any]] = defaultdict(list)
    for node in nodes:
        for name in dict.fromkeys(node.input):
            consumers[name].append(node)
    return consumers


def _drop_unused_initializers(graph: Any) -> None:
    used = {name for node in graph.node for name in node.input} | {o.name for o in graph.output}
    live = [t for t in graph.initializer if t.name in used]
    del graph.initializer[:]
    graph.initializer.extend(live)


def _fold_in_place(graph_model: Any) -> tuple[int, int]:
    """:func:`fold_dequantized_weights` on a parsed model, in place: (weights, values) folded."""
    from onnx import numpy_helper

    graph = graph_model.graph
    constants = {t.name: t for t in graph.initializer}
    consumers = _consumers(list(graph.node))
    producer = {name: node for node in graph.node for name in node.output}

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
    _drop_unused_initializers(graph)
    return folded, values


def prepare(model: bytes, *, positions: bool = True, int8_pointwise: bool = True) -> Folded:
    """The graphs the box runs: :func:`quantise_front_convolution`, then
    :func:`fold_dequantized_weights`, :func:`cache_projected_frames`,
    :func:`fuse_layer_norms`, (``int8_pointwise``) :func:`quantise_pointwise_convolutions`
    and (``positions``) :func:`~assistant.asr.positions.split_positions`."""
    from assistant.asr.positions import split_positions

    graph_model = _load(model)
    convolutions = quantise_front_convolution(graph_model)
    kernels = int8_kernels(graph_model)
    weights, values = _fold_in_place(graph_model)
    layers = cache_projected_frames(graph_model.graph)
    norms = fuse_layer_norms(graph_model.graph)
    pointwise = quantise_pointwise_convolutions(graph_model.graph, kernels) if int8_pointwise else 0
    if pointwise and not any(o.domain == "com.microsoft" for o in graph_model.opset_import):
        from onnx import helper

        graph_model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    split = split_positions(graph_model) if positions else None
    return Folded(
        graph_model.SerializeToString(),
        weights,
        values,
        layers,
        convolutions,
        norms,
        split.projector if split is not None else b"",
        split.layers if split is not None else 0,
        pointwise,
    )


def quantise_front_convolution(graph_model: Any, min_channels: int = MIN_INT8_CONV_CHANNELS) -> int:
    """Run each wide convolution whose weights are int8 as an int8 matrix product; returns how
    many were rewritten (in place).

    The front end's second convolution (448 -> 448 channels, 3x3, stride 2 over 21 x 39
    frames of the first one's output) is 343 million multiply-adds a step, the largest single
    node of the model: its weights are int8 (one scale per output channel) but onnxruntime
    runs it in float32, about a sixth of a step. The rewrite gathers the patches the kernel
    sees (a ``Slice`` per kernel position of the channels-last input, concatenated), and
    multiplies them with the same int8 weights in ``DynamicQuantizeMatMul``, which quantises
    the input once per run to uint8 as the model's own matrix products do::

        Conv(x, DequantizeLinear(w_int8, scale), bias)          [B, O, Ho, Wo]
    becomes::

        p = Concat(Slice(Transpose(x), i, j, strides) for each kernel position (i, j))
        y = DynamicQuantizeMatMul(p, w_int8 as [(i, j, c), o], scale, 0, bias)
        Transpose(y)                                            [B, O, Ho, Wo]

    Not bit for bit the model's arithmetic: the activations are rounded to 8 bits where the
    model kept them in float. ``scripts/bench_robust.py`` measures what that does to readings
    (issue 11). A 1x1 convolution, or one with padding, groups, dilation, an unknown input
    size, or weights not int8 per output channel with zero offsets, is left alone. The input
    is quantised over the whole batch, so a batch of several calls would share one scale.
    """
    import onnx
    from onnx import helper, numpy_helper

    graph = graph_model.graph
    constants = {t.name: t for t in graph.initializer}
    all_nodes = list(graph.node)  # one wrapper per node, so that id() names it throughout
    producer = {name: node for node in all_nodes for name in node.output}
    consumers = _consumers(all_nodes)
    try:
        inferred = onnx.shape_inference.infer_shapes(graph_model).graph
    except Exception:  # shape inference raises its own error types
        return 0
    shapes: dict[str, list[int]] = {}
    for info in [*inferred.value_info, *inferred.input]:
        dims = info.type.tensor_type.shape.dim
        shapes[info.name] = [d.dim_value if d.HasField("dim_value") else -1 for d in dims]

    rewritten: dict[int, list[Any]] = {}
    dropped: set[int] = set()
    for conv in [n for n in all_nodes if n.op_type == "Conv"]:
        attrs = {a.name: helper.get_attribute_value(a) for a in conv.attribute}
        dequant = producer.get(conv.input[1])
        shape = shapes.get(conv.input[0], [])
        if (
            dequant is None
            or dequant.op_type != "DequantizeLinear"
            or not all(name in constants for name in dequant.input if name)
            or len(consumers[dequant.output[0]]) != 1
            or len(shape) != 4
            or min(shape[1:]) <= 0
            or attrs.get("group", 1) != 1
            or any(d != 1 for d in attrs.get("dilations", [1, 1]))
            or any(attrs.get("pads", [0, 0, 0, 0]))
            or attrs.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET", b"VALID", "VALID")
        ):
            continue
        kernel = _per_channel_int8(dequant, constants)
        if kernel is None:
            continue
        weight, scale = kernel
        if (
            weight.shape[1] < min_channels
            or weight.shape[2] * weight.shape[3] < 2
            or weight.shape[1] != shape[1]
        ):
            continue
        bias: npt.NDArray[np.float32] | None = None
        if len(conv.input) > 2 and conv.input[2]:
            source = conv.input[2]
            if source in constants:
                bias = np.asarray(numpy_helper.to_array(constants[source])).astype(np.float32)
            elif (
                (b := producer.get(source)) is not None
                and b.op_type == "DequantizeLinear"
                and all(name in constants for name in b.input if name)
            ):
                bias = _dequantize(b, constants, numpy_helper)
            else:
                continue
        out_c, in_c, kh, kw = (int(d) for d in weight.shape)
        sh, sw = (int(v) for v in attrs.get("strides", [1, 1]))
        height, width = shape[2], shape[3]
        rows, cols = (height - kh) // sh + 1, (width - kw) // sw + 1
        if rows <= 0 or cols <= 0:
            continue
        p = f"qc{len(rewritten)}/"
        added = [
            numpy_helper.from_array(
                weight.transpose(2, 3, 1, 0).reshape(kh * kw * in_c, out_c), p + "w"
            ),
            numpy_helper.from_array(scale, p + "scale"),
            numpy_helper.from_array(np.zeros(out_c, np.int8), p + "zero"),
            numpy_helper.from_array(np.array([1, 2], np.int64), p + "axes"),
            numpy_helper.from_array(np.array([sh, sw], np.int64), p + "steps"),
        ]
        nodes = [helper.make_node("Transpose", [conv.input[0]], [p + "x"], perm=[0, 2, 3, 1])]
        patches = []
        for i in range(kh):
            for j in range(kw):
                q = f"{p}{i}_{j}"
                ends = [i + (rows - 1) * sh + 1, j + (cols - 1) * sw + 1]
                added += [
                    numpy_helper.from_array(np.array([i, j], np.int64), q + "/from"),
                    numpy_helper.from_array(np.array(ends, np.int64), q + "/to"),
                ]
                nodes.append(
                    helper.make_node(
                        "Slice", [p + "x", q + "/from", q + "/to", p + "axes", p + "steps"], [q]
                    )
                )
                patches.append(q)
        inputs = [p + "patches", p + "w", p + "scale", p + "zero"]
        if bias is not None:
            added.append(numpy_helper.from_array(bias.astype(np.float32), p + "bias"))
            inputs.append(p + "bias")
        nodes += [
            helper.make_node("Concat", patches, [p + "patches"], axis=-1),
            helper.make_node("DynamicQuantizeMatMul", inputs, [p + "y"], domain="com.microsoft"),
            helper.make_node("Transpose", [p + "y"], [conv.output[0]], perm=[0, 3, 1, 2]),
        ]
        graph.initializer.extend(added)
        rewritten[id(conv)] = nodes
        dropped.add(id(dequant))
    if not rewritten:
        return 0
    kept: list[Any] = []
    for node in all_nodes:
        if id(node) in rewritten:
            kept += rewritten[id(node)]
        elif id(node) not in dropped:
            kept.append(node)
    del graph.node[:]
    graph.node.extend(kept)
    _drop_unused_initializers(graph)
    if not any(o.domain == "com.microsoft" for o in graph_model.opset_import):
        graph_model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    return len(rewritten)


def cache_projected_frames(graph: Any) -> int:
    """Rewrite, in place, every convolution module that re-projects its cached input frames
    (see the module's docstring); returns how many. A module of another shape is left alone.

    The pattern, per layer ``l`` (``x``: the module's input, ``[B, 448, 10]`` after a
    transpose)::

        c = Concat(Gather(cnn_cache, l), x)              [B, 448, 40]
        cache_out = Slice(c, 10:40)                      [B, 448, 30]
        g = GLU(Conv1x1(Unsqueeze(c)))                   [B, 40, 448]  (Transpose, Reshape,
                                                                        Split, Sigmoid, Mul)
    becomes::

        cached = Transpose(Gather(cnn_cache, l))         [B, 30, 448]
        cached = Where(offset == 0, GLU(Conv1x1(0)), cached)
        g = Concat(cached, GLU(Conv1x1(Unsqueeze(x))))   [B, 40, 448]
        cache_out = Transpose(Slice(g, 10:40))           [B, 448, 30]
    """
    from onnx import helper, numpy_helper

    constants = {t.name: t for t in graph.initializer}
    all_nodes = list(graph.node)  # one wrapper per node, so that id() names it throughout
    consumers = _consumers(all_nodes)

    def only(name: str, op_type: str) -> Any:  # a node, or None
        users = consumers[name]
        return users[0] if len(users) == 1 and users[0].op_type == op_type else None

    def ints(name: str) -> list[int] | None:
        if name not in constants:
            return None
        return [int(v) for v in np.asarray(numpy_helper.to_array(constants[name])).reshape(-1)]

    replaced: dict[int, list[Any]] = {}  # by id() of the nodes in all_nodes (names may be empty)
    dropped: set[int] = set()
    added: list[Any] = []
    first = "pc/first"
    for gather in [n for n in consumers["cnn_cache"] if n.op_type == "Gather"]:
        concat = only(gather.output[0], "Concat")
        if concat is None or len(concat.input) != 2 or concat.input[0] != gather.output[0]:
            continue
        users = consumers[concat.output[0]]
        slices = [u for u in users if u.op_type == "Slice"]
        unsqueezes = [u for u in users if u.op_type == "Unsqueeze"]
        if len(users) != 2 or len(slices) != 1 or len(unsqueezes) != 1:
            continue
        cut, unsqueeze = slices[0], unsqueezes[0]
        chain = [unsqueeze]
        for op_type in ("Conv", "Transpose", "Reshape", "Split"):
            node = only(chain[-1].output[0], op_type)
            if node is None:
                break
            chain.append(node)
        if len(chain) != 5 or len(chain[-1].output) != 2:
            continue
        conv, transpose, reshape, split = chain[1:]
        sigmoid = only(split.output[1], "Sigmoid")
        if sigmoid is None:
            continue
        mul = only(sigmoid.output[0], "Mul")
        shape = ints(reshape.input[1])
        starts, ends, axes = (ints(name) for name in cut.input[1:4])
        if (
            mul is None
            or list(mul.input) != [split.output[0], sigmoid.output[0]]
            or shape is None
            or len(shape) != 3
            or starts is None
            or starts[:2] != [0, 0]
            or axes != [0, 1, 2]
            or ends is None
            or ends[2] != shape[1]
        ):
            continue
        frames, step = shape[1], starts[2]  # 40 frames in, 10 of them new
        p = f"pc{len(replaced)}/"
        conv_attrs = {a.name: helper.get_attribute_value(a) for a in conv.attribute}

        def glu(
            source: str, q: str, conv: Any = conv, conv_attrs: dict[str, Any] = conv_attrs
        ) -> list[Any]:
            return [
                helper.make_node(
                    "Conv", [source, conv.input[1], *conv.input[2:]], [q + "c"], **conv_attrs
                ),
                helper.make_node("Transpose", [q + "c"], [q + "t"], perm=[0, 2, 3, 1]),
                helper.make_node("Reshape", [q + "t", q + "shape"], [q + "r"]),
                helper.make_node("Split", [q + "r"], [q + "a", q + "b"], axis=2),
                helper.make_node("Sigmoid", [q + "b"], [q + "s"]),
                helper.make_node("Mul", [q + "a", q + "s"], [q + "g"]),
            ]

        channels = int(numpy_helper.to_array(constants[conv.input[1]]).shape[1])
        added += [
            numpy_helper.from_array(np.array([-1, step, shape[2]], np.int64), p + "newshape"),
            numpy_helper.from_array(np.array([-1, 1, shape[2]], np.int64), p + "zeroshape"),
            numpy_helper.from_array(np.zeros((1, channels, 1, 1), np.float32), p + "zeros"),
            numpy_helper.from_array(np.array([step], np.int64), p + "from"),
            numpy_helper.from_array(np.array([frames], np.int64), p + "to"),
            numpy_helper.from_array(np.array([1], np.int64), p + "axis"),
        ]
        new = glu(p + "x", p + "new/")
        new[2].input[1] = p + "newshape"
        zero = glu(p + "zeros", p + "zero/")
        zero[2].input[1] = p + "zeroshape"
        replaced[id(mul)] = [
            helper.make_node("Unsqueeze", [concat.input[1], unsqueeze.input[1]], [p + "x"]),
            *new,
            *zero,
            helper.make_node("Transpose", [gather.output[0]], [p + "cached"], perm=[0, 2, 1]),
            helper.make_node("Where", [first, p + "zero/g", p + "cached"], [p + "held"]),
            helper.make_node("Concat", [p + "held", p + "new/g"], [mul.output[0]], axis=1),
            helper.make_node(
                "Slice", [mul.output[0], p + "from", p + "to", p + "axis"], [p + "keep"]
            ),
            helper.make_node("Transpose", [p + "keep"], [cut.output[0]], perm=[0, 2, 1]),
        ]
        dropped |= {
            id(n) for n in (concat, cut, unsqueeze, conv, transpose, reshape, split, sigmoid)
        }
    if not replaced:
        return 0
    added += [
        numpy_helper.from_array(np.array(0, np.int64), "pc/zero"),
        numpy_helper.from_array(np.array([-1, 1, 1], np.int64), "pc/b11"),
    ]
    nodes = [
        helper.make_node("Equal", ["offset", "pc/zero"], ["pc/first0"]),
        helper.make_node("Reshape", ["pc/first0", "pc/b11"], [first]),
    ]
    for node in all_nodes:
        if id(node) in replaced:
            nodes += replaced[id(node)]
        elif id(node) not in dropped:
            nodes.append(node)
    graph.initializer.extend(added)
    ordered = _topological(
        nodes, {i.name for i in graph.input} | {t.name for t in graph.initializer}
    )
    del graph.node[:]
    graph.node.extend(ordered)
    return len(replaced)


def _per_channel_int8(node: Any, constants: dict[str, Any]) -> tuple[Any, Any] | None:
    """(int8 kernel, float32 scale per output channel) of a constant ``DequantizeLinear`` of a
    4-D int8 convolution kernel with one scale per output channel and zero offsets, else
    ``None``."""
    from onnx import numpy_helper

    weight = np.asarray(numpy_helper.to_array(constants[node.input[0]]))
    scale = np.asarray(numpy_helper.to_array(constants[node.input[1]])).astype(np.float32)
    zero = (
        np.asarray(numpy_helper.to_array(constants[node.input[2]]))
        if len(node.input) > 2 and node.input[2]
        else np.zeros(1, weight.dtype)
    )
    axis = next((a.i for a in node.attribute if a.name == "axis"), 1)
    if (
        weight.dtype != np.int8
        or weight.ndim != 4
        or scale.shape != (weight.shape[0],)
        or axis != 0
        or np.any(zero != 0)
    ):
        return None
    return weight, scale


def int8_kernels(graph_model: Any) -> dict[str, tuple[Any, Any]]:
    """The int8 kernels the model dequantises, by the dequantised tensor's name: (int8 weight,
    float32 scale per output channel), for the per-channel ones with zero offsets (taken before
    :func:`fold_dequantized_weights` replaces them by their float values)."""
    constants = {t.name: t for t in graph_model.graph.initializer}
    kernels: dict[str, tuple[Any, Any]] = {}
    for node in graph_model.graph.node:
        if node.op_type == "DequantizeLinear" and all(
            name in constants for name in node.input if name
        ):
            kernel = _per_channel_int8(node, constants)
            if kernel is not None:
                kernels[node.output[0]] = kernel
    return kernels


def quantise_pointwise_convolutions(graph: Any, kernels: dict[str, tuple[Any, Any]]) -> int:
    """Run each 1x1 convolution over computed frames whose kernel is int8 in the model
    (``kernels``, from :func:`int8_kernels`) as an int8 matrix product, in place; returns how
    many. The conformer's convolution modules have two each (448 -> 896 before the GLU, 448 ->
    448 after the depthwise convolution), run in float32 over ten frames a step: 29 MB of
    float kernels read per step. As with the front end::

        Conv(x, w, bias)                                        [B, O, 1, T]
    becomes::

        y = DynamicQuantizeMatMul(Transpose(x), w_int8 as [C, O], scale, 0, bias)
        Transpose(y)                                            [B, O, 1, T]

    Not bit for bit: the frames are rounded to 8 bits once per run. A convolution over a
    constant input (the zero frame of :func:`cache_projected_frames`) is left in float.
    """
    from onnx import helper, numpy_helper

    constants = {t.name: t for t in graph.initializer}
    nodes: list[Any] = []
    added: list[Any] = []
    count = 0
    for node in graph.node:
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        kernel = (
            kernels.get(node.input[1]) if node.op_type == "Conv" and len(node.input) > 1 else None
        )
        if (
            kernel is None
            or node.input[0] in constants
            or kernel[0].shape[2:] != (1, 1)
            or attrs.get("group", 1) != 1
            or any(v != 1 for v in attrs.get("strides", [1, 1]))
            or any(attrs.get("pads", [0, 0, 0, 0]))
            or (len(node.input) > 2 and node.input[2] and node.input[2] not in constants)
        ):
            nodes.append(node)
            continue
        weight, scale = kernel
        out_c, in_c = int(weight.shape[0]), int(weight.shape[1])
        p = f"qp{count}/"
        added += [
            numpy_helper.from_array(weight.reshape(out_c, in_c).T.copy(), p + "w"),
            numpy_helper.from_array(scale, p + "scale"),
            numpy_helper.from_array(np.zeros(out_c, np.int8), p + "zero"),
        ]
        inputs = [p + "x", p + "w", p + "scale", p + "zero"]
        if len(node.input) > 2 and node.input[2]:
            inputs.append(node.input[2])
        nodes += [
            helper.make_node("Transpose", [node.input[0]], [p + "x"], perm=[0, 2, 3, 1]),
            helper.make_node("DynamicQuantizeMatMul", inputs, [p + "y"], domain="com.microsoft"),
            helper.make_node("Transpose", [p + "y"], [node.output[0]], perm=[0, 3, 1, 2]),
        ]
        count += 1
    if count:
        graph.initializer.extend(added)
        del graph.node[:]
        graph.node.extend(nodes)
        _drop_unused_initializers(graph)
    return count


def fuse_layer_norms(graph: Any) -> int:
    """Replace, in place, each layer norm written out node by node with one
    ``LayerNormalization`` node; returns how many.

    This export writes every layer norm over the last axis as nine nodes::

        m = GlobalAveragePool(x); d = x - m
        y = d * Reciprocal(Sqrt(GlobalAveragePool(d * d) + eps)) * gamma + beta

    which onnxruntime does not recognise, and runs as nine kernels each time (73 of them a
    step). ``LayerNormalization(x, gamma, beta, axis=-1, epsilon=eps)`` computes the same in
    one. Like the int8 front end, not bit for bit: the mean and variance are summed in
    another order. A chain whose intermediate values are used elsewhere, or whose gamma and
    beta are not constants over the last axis, is left alone.
    """
    from onnx import helper, numpy_helper

    constants = {t.name: t for t in graph.initializer}
    all_nodes = list(graph.node)  # one wrapper per node, so that id() names it throughout
    consumers = _consumers(all_nodes)
    outputs = {o.name for o in graph.output}

    def only(name: str, op_type: str) -> Any:  # the single user of ``name``, or None
        users = consumers[name]
        if name in outputs or len(users) != 1 or users[0].op_type != op_type:
            return None
        return users[0]

    def constant(name: str) -> npt.NDArray[np.float32] | None:
        if name not in constants:
            return None
        return np.asarray(numpy_helper.to_array(constants[name])).astype(np.float32)

    replaced: dict[int, Any] = {}
    dropped: set[int] = set()
    added: list[Any] = []
    for mean in [n for n in all_nodes if n.op_type == "GlobalAveragePool"]:
        x = mean.input[0]
        sub = only(mean.output[0], "Sub")
        if sub is None or list(sub.input) != [x, mean.output[0]]:
            continue
        users = consumers[sub.output[0]]
        square = [u for u in users if u.op_type == "Mul" and u.input[0] == u.input[1]]
        scaled = [u for u in users if u.op_type == "Mul" and u.input[0] != u.input[1]]
        if sub.output[0] in outputs or len(users) != 2 or len(square) != 1 or len(scaled) != 1:
            continue
        var = only(square[0].output[0], "GlobalAveragePool")
        add_eps = only(var.output[0], "Add") if var is not None else None
        sqrt = only(add_eps.output[0], "Sqrt") if add_eps is not None else None
        recip = only(sqrt.output[0], "Reciprocal") if sqrt is not None else None
        if (
            recip is None
            or add_eps is None
            or list(scaled[0].input) != [sub.output[0], recip.output[0]]
            or consumers[recip.output[0]] != [scaled[0]]
            or recip.output[0] in outputs
        ):
            continue
        eps = constant(add_eps.input[1])
        times = only(scaled[0].output[0], "Mul")
        plus = only(times.output[0], "Add") if times is not None else None
        if plus is None or times is None or eps is None or eps.size != 1:
            continue
        gamma, beta = constant(times.input[1]), constant(plus.input[1])
        if (
            gamma is None
            or beta is None
            or times.input[0] != scaled[0].output[0]
            or plus.input[0] != times.output[0]
            or gamma.ndim != 3  # GlobalAveragePool over [B, T, C] averages the last axis only
            or gamma.shape != beta.shape
            or int(np.prod(gamma.shape)) != gamma.shape[-1]
        ):
            continue
        p = f"ln{len(replaced)}/"
        added += [
            numpy_helper.from_array(gamma.reshape(-1), p + "gamma"),
            numpy_helper.from_array(beta.reshape(-1), p + "beta"),
        ]
        replaced[id(plus)] = helper.make_node(
            "LayerNormalization",
            [x, p + "gamma", p + "beta"],
            [plus.output[0]],
            axis=-1,
            epsilon=float(eps.reshape(-1)[0]),
        )
        dropped |= {
            id(n) for n in (mean, sub, square[0], var, add_eps, sqrt, recip, scaled[0], times)
        }
    if not replaced:
        return 0
    nodes = []
    for node in all_nodes:
        if id(node) in replaced:
            nodes.append(replaced[id(node)])
        elif id(node) not in dropped:
            nodes.append(node)
    graph.initializer.extend(added)
    del graph.node[:]
    graph.node.extend(nodes)
    _drop_unused_initializers(graph)
    return len(replaced)


def _topological(nodes: list[Any], ready: set[str]) -> list[Any]:
    """``nodes`` in an order where every input is produced before it is used."""
    ordered: list[Any] = []
    pending = nodes
    while pending:
        waiting = []
        for node in pending:
            if all(not name or name in ready for name in node.input):
                ordered.append(node)
                ready.update(node.output)
            else:
                waiting.append(node)
        if len(waiting) == len(pending):
            raise RecognizerError(
                "the rewritten acoustic model has a cycle", code="asr_load_failed"
            )
        pending = waiting
    return ordered


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


def folded_path(model: ModelData, directory: Path) -> Path:
    """Where the folded step graph of ``model`` lives in ``directory``."""
    return directory / f"vietasr-{model.sha256[:16]}-fold{FOLD_VERSION}.onnx"


def projector_path(model: ModelData, directory: Path) -> Path:
    """Where the positional projector of ``model``'s folded graph lives in ``directory``."""
    return directory / f"vietasr-{model.sha256[:16]}-fold{FOLD_VERSION}-positions.onnx"


def _digest(path: Path) -> str:
    sha = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            sha.update(block)
    return sha.hexdigest()


def _whole(path: Path) -> bool:
    try:
        recorded = path.with_suffix(".sha256").read_text(encoding="ascii").strip()
        return recorded == _digest(path)
    except (OSError, UnicodeDecodeError):
        return False


def cached(model: ModelData, directory: Path) -> Graphs | None:
    """The folded graphs' files when both are there and whole (their digests as recorded). The
    projector's file is written with every fold, empty when the step graph projects its
    positions itself."""
    step, projector = folded_path(model, directory), projector_path(model, directory)
    if not (_whole(step) and _whole(projector)):
        return None
    return Graphs(step, projector if projector.stat().st_size else None)


def _write(target: Path, data: bytes) -> None:
    """``data`` to ``target`` and its SHA-256 beside it, each atomically."""
    digest = hashlib.sha256(data).hexdigest()
    for path, content in ((target, data), (target.with_suffix(".sha256"), digest.encode())):
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".fold-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(content)
            os.chmod(tmp, 0o644)  # a model file, as readable as the models folder itself
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def write_folded(model: ModelData, directory: Path) -> tuple[Graphs, Folded]:
    """Fold ``model`` and write it to ``directory`` (atomically, the projector first: a box
    starting at the same time sees the old state or the whole new files). Raises ``OSError``
    when it cannot."""
    folded = prepare(model.onnx)
    step, projector = folded_path(model, directory), projector_path(model, directory)
    directory.mkdir(parents=True, exist_ok=True)
    _write(projector, folded.projector)
    _write(step, folded.onnx)
    for older in directory.glob(f"vietasr-{model.sha256[:16]}-fold*.onnx"):
        if older not in (step, projector):  # an earlier version's rewrite: never read again
            older.unlink(missing_ok=True)
            older.with_suffix(".sha256").unlink(missing_ok=True)
    return Graphs(step, projector if folded.projector else None), folded


def folded_model(model: ModelData, directory: Path) -> Graphs:
    """The folded graphs for onnxruntime: their files in ``directory`` (written now if missing
    or damaged), or, when the folder cannot be written, the folded bytes themselves."""
    graphs = cached(model, directory)
    if graphs is not None:
        return graphs
    try:
        return write_folded(model, directory)[0]
    except OSError as exc:
        log.warning(
            "cannot keep the folded acoustic model in %s (%s); folding it in memory",
            directory,
            type(exc).__name__,
        )
        folded = prepare(model.onnx)
        return Graphs(folded.onnx, folded.projector or None)


def main(argv: list[str] | None = None) -> int:
    """Build the folded model in the models folder (``scripts/install.sh`` runs this)."""
    from assistant.asr.model import load_model
    from assistant.core.paths import models_dir

    parser = argparse.ArgumentParser(prog="python -m assistant.asr.fold", description=main.__doc__)
    parser.add_argument("--dir", type=Path, default=None, help="default: the models folder")
    args = parser.parse_args(argv)
    directory = args.dir or models_dir()
    try:
        model = load_model()
    except RecognizerError as exc:
        print(f"error [{exc.code}]: {exc}", file=sys.stderr)
        return 1
    step = folded_path(model, directory)
    if cached(model, directory) is not None:
        print(f"{step}: already folded")
        return 0
    try:
        graphs, folded = write_folded(model, directory)
    except OSError as exc:
        print(f"error: cannot write to {directory}: {exc}", file=sys.stderr)
        return 1
    print(
        f"{step}: {folded.nodes} weights, {folded.values} values dequantised once; "
        f"{folded.projected_caches} convolution caches hold projected frames; "
        f"{folded.int8_convolutions} convolution and {folded.int8_pointwise} pointwise ones "
        f"in int8; {folded.fused_norms} layer norms "
        f"fused; {folded.position_layers} layers' positional rows projected by "
        f"{projector_path(model, directory).name if graphs.projector else 'the step itself'}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
