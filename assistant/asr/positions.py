"""The attention's positional rows, projected once for every call instead of on every step.

Each of the model's 12 attention layers projects the positional encoding of the 50 positions its
keys cover (the 40 cached frames and the 10 new ones, ``offset`` to ``offset + 49`` counted from
the start of the utterance) through its own 448 x 448 matrix, on every model step: 12 float
products of 50 x 448 by 448 x 448, an eighth of a step (onnxruntime profile, issue 11). The rows
depend on nothing but the position, every utterance starts at position 0, and consecutive steps
share 40 of their 50 positions.

:func:`split_positions` (the folded graph's version 5, :mod:`assistant.asr.fold`) takes those
products out of the step graph: the step reads each layer's 50 projected rows as an input
(``position_rows_00`` ...), and a second small graph, the *projector*, computes the rows of any
positions with the same nodes and weights. :class:`PositionTable` keeps the rows every call has
reached so far, shared by all calls of the box (21.5 KB a position; a 20 s turn reaches 550
positions), and :class:`PositionedModel` feeds each step its rows from it, so the step graph
runs exactly as before with the same numbers in: onnxruntime's product gives every row the same
bits whatever the number of rows beside it (checked here on the real model), so the
log-probabilities are bit for bit those of the graph without the split.
"""

from __future__ import annotations

import math
import mmap
import threading
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from assistant.core.errors import RecognizerError

Float32 = npt.NDArray[np.float32]

#: Names of the step graph's position inputs and the projector's outputs, per layer.
ROWS_PREFIX = "position_rows_"
#: The projector's one input: the positions whose rows are wanted, shaped [1, 1, N].
PROJECTOR_INPUT = "position"
#: Metadata of the step graph: how many positions a step reads, and the encoding's length.
WINDOW_KEY = "position_window"
LIMIT_KEY = "position_limit"
#: Positions the shared table keeps (60 s of one utterance: 12.9 MB at most); a step beyond
#: them has its rows projected for itself, as the model did.
CACHED_POSITIONS = 1500
#: Positions projected at once when the table grows (8 s of speech).
FILL_BLOCK = 200


class _Runs(Protocol):
    def run(self, output_names: list[str] | None, input_feed: dict[str, Any]) -> list[Any]: ...


def _rows_name(layer: int) -> str:
    return f"{ROWS_PREFIX}{layer:02d}"


@dataclass(frozen=True)
class PositionSplit:
    """What :func:`split_positions` did: the projector graph and the layers it serves."""

    projector: bytes
    layers: int
    window: int
    limit: int


def _ancestors(graph: Any, names: list[str]) -> list[Any]:
    """The nodes ``names`` are computed from, in graph order."""
    producer = {out: node for node in graph.node for out in node.output}
    needed: set[int] = set()
    stack = list(names)
    while stack:
        node = producer.get(stack.pop())
        if node is None or id(node) in needed:
            continue
        needed.add(id(node))
        stack.extend(name for name in node.input if name)
    return [node for node in graph.node if id(node) in needed]


def evaluate(graph_model: Any, outputs: list[str], feeds: list[dict[str, Any]]) -> list[list[Any]]:
    """``outputs`` of ``graph_model``'s graph for each of ``feeds``, computed by onnxruntime
    on the part of the graph they depend on (so with the very kernels the box runs)."""
    import onnxruntime as ort
    from onnx import helper

    graph = graph_model.graph
    nodes = _ancestors(graph, outputs)
    used = {name for node in nodes for name in node.input}
    inits = [t for t in graph.initializer if t.name in used]
    inputs = [i for i in graph.input if i.name in used]
    part = helper.make_graph(
        nodes,
        "part",
        inputs,
        [helper.make_empty_tensor_value_info(name) for name in outputs],
        inits,
    )
    model = helper.make_model(part, opset_imports=list(graph_model.opset_import))
    model.ir_version = graph_model.ir_version
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.log_severity_level = 3
    session = ort.InferenceSession(
        model.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )
    return [
        list(session.run(outputs, {k: v for k, v in feed.items() if k in used})) for feed in feeds
    ]


def split_positions(graph_model: Any) -> PositionSplit | None:
    """Take the positional projections out of the step graph (in place; see the module's
    docstring). ``None``, and the graph untouched, when it has no such pattern: one ``Gather``
    from a constant [P, D] table at ``offset + 0 .. offset + W - 1``, dequantised, read only
    by ``MatMul`` nodes with constant [D, D'] weights."""
    graph = graph_model.graph
    constants = {t.name: t for t in graph.initializer}
    consumers: dict[str, list[Any]] = {}
    for node in graph.node:
        for name in dict.fromkeys(node.input):
            consumers.setdefault(name, []).append(node)
    if "offset" not in {i.name for i in graph.input}:
        return None
    for gather in [n for n in graph.node if n.op_type == "Gather"]:
        table = constants.get(gather.input[0])
        users = consumers.get(gather.output[0], [])
        axis = next((a.i for a in gather.attribute if a.name == "axis"), 0)
        if table is None or len(table.dims) != 2 or len(users) != 1 or axis != 0:
            continue
        dequant = users[0]
        if dequant.op_type != "DequantizeLinear" or not all(
            name in constants for name in dequant.input[1:] if name
        ):
            continue
        products = consumers.get(dequant.output[0], [])
        if not products or not all(
            p.op_type == "MatMul"
            and p.input[0] == dequant.output[0]
            and p.input[1] in constants
            and len(constants[p.input[1]].dims) == 2
            for p in products
        ):
            continue
        split = _split(graph_model, gather, dequant, products, int(table.dims[0]))
        if split is not None:
            return split
    return None


def _split(
    graph_model: Any, gather: Any, dequant: Any, products: list[Any], limit: int
) -> PositionSplit | None:
    from onnx import TensorProto, helper

    graph = graph_model.graph
    index = gather.input[1]
    offsets = (0, 10, 370, limit // 2)
    try:
        results = evaluate(
            graph_model, [index], [{"offset": np.array([[o]], np.int64)} for o in offsets]
        )
    except Exception:  # onnxruntime's own errors: the index needs more than the offset
        return None
    window = 0
    for offset, (value,) in zip(offsets, results, strict=True):
        got = np.asarray(value).reshape(-1)
        window = len(got)
        if not np.array_equal(got, offset + np.arange(window)):
            return None  # not the positions offset .. offset + W - 1: left alone
    if window == 0:
        return None
    constants = {t.name: t for t in graph.initializer}
    width = int(constants[products[0].input[1]].dims[1])
    # the projector: the same Gather, DequantizeLinear and products, for any positions
    names = [*gather.input[:1], *(n for n in dequant.input[1:] if n)]
    names += [p.input[1] for p in products]
    projector_nodes = [
        helper.make_node("Gather", [gather.input[0], PROJECTOR_INPUT], ["gathered"]),
        helper.make_node("DequantizeLinear", ["gathered", *dequant.input[1:]], ["rows"]),
    ]
    projector_nodes[0].attribute.extend(gather.attribute)
    projector_nodes[1].attribute.extend(dequant.attribute)
    outputs = []
    for layer, product in enumerate(products):
        projector_nodes.append(
            helper.make_node("MatMul", ["rows", product.input[1]], [_rows_name(layer)])
        )
        outputs.append(
            helper.make_tensor_value_info(_rows_name(layer), TensorProto.FLOAT, [1, 1, "N", width])
        )
    projector = helper.make_graph(
        projector_nodes,
        "positions",
        [helper.make_tensor_value_info(PROJECTOR_INPUT, TensorProto.INT64, [1, 1, "N"])],
        outputs,
        [constants[n] for n in dict.fromkeys(names)],
    )
    projector_model = helper.make_model(projector, opset_imports=list(graph_model.opset_import))
    projector_model.ir_version = graph_model.ir_version
    # the step: each product's result read as an input instead
    renamed = {p.output[0]: _rows_name(layer) for layer, p in enumerate(products)}
    dropped = {id(p) for p in products}
    kept = [node for node in graph.node if id(node) not in dropped]
    for node in kept:
        for i, name in enumerate(node.input):
            if name in renamed:
                node.input[i] = renamed[name]
    del graph.node[:]
    graph.node.extend(kept)
    for layer in range(len(products)):
        graph.input.append(
            helper.make_tensor_value_info(
                _rows_name(layer), TensorProto.FLOAT, ["batch", 1, window, width]
            )
        )
    _drop_dead_nodes(graph)
    helper.set_model_props(
        graph_model,
        {
            **{p.key: p.value for p in graph_model.metadata_props},
            WINDOW_KEY: str(window),
            LIMIT_KEY: str(limit),
        },
    )
    return PositionSplit(projector_model.SerializeToString(), len(products), window, limit)


def _drop_dead_nodes(graph: Any) -> None:
    """Remove the nodes no graph output depends on, and the constants only they read."""
    from assistant.asr.fold import _drop_unused_initializers

    live = _ancestors(graph, [o.name for o in graph.output])
    del graph.node[:]
    graph.node.extend(live)
    _drop_unused_initializers(graph)


class PositionTable:
    """The projected rows of every position a call has reached, shared by all calls.

    ``rows(offset)`` returns each layer's rows for ``offset .. offset + window - 1`` as
    read-only views (no copy). The table grows by :data:`FILL_BLOCK` positions under a lock
    when a call gets past it; beyond :data:`CACHED_POSITIONS` a step's rows are projected for
    that step alone. Memory is taken as rows are written (the table is an anonymous mapping,
    zero pages until then).
    """

    def __init__(
        self,
        projector: _Runs,
        *,
        layers: int,
        window: int,
        limit: int,
        width: int,
        cached: int = CACHED_POSITIONS,
        block: int = FILL_BLOCK,
        prefill: int = FILL_BLOCK,
    ) -> None:
        self._projector = projector
        self.layers, self.window, self.limit, self.width = layers, window, limit, width
        self._cached = max(window, min(cached, limit))
        self._block = max(1, block)
        # An anonymous mapping of its own: its pages are zero and take no memory until rows
        # are written. (np.zeros may reuse freed heap memory, which calloc must clear: the
        # whole 30 MB resident at once, and the heap around it no longer trimmable.)
        shape = (layers, self._cached, width)
        self._memory = mmap.mmap(-1, max(1, layers * self._cached * width * 4))
        self._table: Float32 = np.frombuffer(self._memory, np.float32, math.prod(shape)).reshape(
            shape
        )
        self._filled = 0
        self._lock = threading.Lock()
        self.fills = 0
        self._fill_to(min(prefill, self._cached))

    @property
    def filled(self) -> int:
        """Positions whose rows are in the table."""
        return self._filled

    def _project(self, start: int, stop: int) -> list[Float32]:
        positions = np.arange(start, stop, dtype=np.int64)[None, None]
        outs = self._projector.run(None, {PROJECTOR_INPUT: positions})
        return [np.asarray(o, np.float32).reshape(stop - start, self.width) for o in outs]

    def _fill_to(self, stop: int) -> None:
        with self._lock:
            start = self._filled
            if stop <= start:
                return
            stop = min(self._cached, max(stop, start + self._block))
            for layer, rows in enumerate(self._project(start, stop)):
                self._table[layer, start:stop] = rows
            self.fills += 1
            self._filled = stop

    def rows(self, offset: int) -> list[Float32]:
        """Each layer's projected rows for the ``window`` positions from ``offset``."""
        stop = offset + self.window
        if offset < 0 or stop > self.limit:
            raise ValueError(f"positions {offset}..{stop - 1} are outside the model's {self.limit}")
        if stop > self._cached:
            return [r.reshape(1, 1, self.window, self.width) for r in self._project(offset, stop)]
        if stop > self._filled:
            self._fill_to(stop)
        views = []
        for layer in range(self.layers):
            view = self._table[layer, offset:stop].reshape(1, 1, self.window, self.width)
            view.flags.writeable = False
            views.append(view)
        return views


class PositionedModel:
    """The split step graph as the recogniser runs it: each step's positional rows fed from
    the shared :class:`PositionTable` (the step's ``offset`` says which)."""

    def __init__(self, step: _Runs, table: PositionTable) -> None:
        self.step = step
        self.table = table
        self._names = [_rows_name(layer) for layer in range(table.layers)]

    def run(self, output_names: list[str] | None, input_feed: dict[str, Any]) -> list[Any]:
        offset = np.asarray(input_feed["offset"]).reshape(-1)
        if len(offset) != 1:
            raise ValueError("the positional rows are fed for one call at a time")
        feed = dict(input_feed)
        feed.update(zip(self._names, self.table.rows(int(offset[0])), strict=True))
        return self.step.run(output_names, feed)


def positioned(step: Any, projector: Any) -> PositionedModel:
    """A :class:`PositionedModel` over two onnxruntime sessions (the split step graph and its
    projector); the table's sizes come from the step graph's metadata and inputs. Raises
    :class:`RecognizerError` ``asr_load_failed`` when the two do not fit together."""
    try:
        meta = step.get_modelmeta().custom_metadata_map
        layers = sum(1 for i in step.get_inputs() if i.name.startswith(ROWS_PREFIX))
        width = int(projector.get_outputs()[0].shape[-1])
        table = PositionTable(
            projector,
            layers=layers,
            window=int(meta[WINDOW_KEY]),
            limit=int(meta[LIMIT_KEY]),
            width=width,
        )
    except Exception as exc:  # onnxruntime raises its own exception types
        raise RecognizerError(
            f"the folded acoustic model's positional projector does not fit its step graph: "
            f"{type(exc).__name__}: {str(exc)[:200]}",
            code="asr_load_failed",
        ) from exc
    return PositionedModel(step, table)
