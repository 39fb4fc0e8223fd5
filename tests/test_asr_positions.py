"""The positional rows projected once for all calls (assistant.asr.positions).

A small graph with the model's pattern (rows of a constant int8 table at ``offset`` ..
``offset + W - 1``, dequantised, projected by one matrix per layer) pins the split: the step
fed from the shared table computes bit for bit what the graph computed itself, at every offset,
while the table grows, past what it keeps, and from several threads at once. The real model's
split is pinned in ``tests/test_asr_fold.py``.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import pytest

from assistant.asr.positions import (
    LIMIT_KEY,
    PROJECTOR_INPUT,
    ROWS_PREFIX,
    WINDOW_KEY,
    PositionedModel,
    PositionTable,
    positioned,
    split_positions,
)
from assistant.core.errors import RecognizerError

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402  (after the skips above)

RNG = np.random.default_rng(11)
LIMIT, WIDTH, OUT, WINDOW = 300, 8, 6, 5


def step_graph(*, stride: int = 1) -> Any:
    """out_l = x @ (DQ(table[offset + stride * i]) @ w_l)^T for two layers ``l``, the way the
    model's attention uses its positional rows (``stride`` 1: the model's positions)."""
    inits = [
        numpy_helper.from_array(
            RNG.integers(-120, 120, size=(LIMIT, WIDTH), dtype=np.int8), "table"
        ),
        numpy_helper.from_array(np.array(0.03, np.float32), "scale"),
        numpy_helper.from_array(np.array(2, np.int8), "zero"),
        numpy_helper.from_array(np.array([-1, 1, 1], np.int64), "shape"),
        numpy_helper.from_array(
            (stride * np.arange(WINDOW, dtype=np.int64)).reshape(1, 1, WINDOW), "steps"
        ),
        numpy_helper.from_array(RNG.standard_normal((WIDTH, OUT)).astype(np.float32), "w0"),
        numpy_helper.from_array(RNG.standard_normal((WIDTH, OUT)).astype(np.float32), "w1"),
    ]
    nodes = [
        helper.make_node("Reshape", ["offset", "shape"], ["o3"]),
        helper.make_node("Add", ["o3", "steps"], ["index"]),
        helper.make_node("Gather", ["table", "index"], ["rows8"]),
        helper.make_node("DequantizeLinear", ["rows8", "scale", "zero"], ["rows"]),
    ]
    outputs = []
    for layer in range(2):
        nodes += [
            helper.make_node("MatMul", ["rows", f"w{layer}"], [f"p{layer}"]),
            helper.make_node("Transpose", [f"p{layer}"], [f"t{layer}"], perm=[0, 1, 3, 2]),
            helper.make_node("MatMul", ["x", f"t{layer}"], [f"out{layer}"]),
        ]
        outputs.append(
            helper.make_tensor_value_info(f"out{layer}", TensorProto.FLOAT, [1, 1, 3, WINDOW])
        )
    graph = helper.make_graph(
        nodes,
        "step",
        [
            helper.make_tensor_value_info("offset", TensorProto.INT64, [1, 1]),
            helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 3, OUT]),
        ],
        outputs,
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def session(graph: bytes) -> Any:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(graph, options, providers=["CPUExecutionProvider"])


def feed(offset: int) -> dict[str, np.ndarray]:
    x = np.random.default_rng(offset).standard_normal((1, 1, 3, OUT)).astype(np.float32)
    return {"offset": np.array([[offset]], np.int64), "x": x}


def split_pair(**table: Any) -> tuple[Any, PositionedModel]:
    """The graph as it was, and its split with a table of the given settings."""
    model = step_graph()
    whole = session(model.SerializeToString())
    split = split_positions(model)
    assert split is not None
    rows = PositionTable(
        session(split.projector),
        layers=split.layers,
        window=split.window,
        limit=split.limit,
        width=OUT,
        **table,
    )
    return whole, PositionedModel(session(model.SerializeToString()), rows)


def test_the_split_takes_the_projections_out_of_the_step() -> None:
    model = step_graph()
    split = split_positions(model)
    assert split is not None
    assert (split.layers, split.window, split.limit) == (2, WINDOW, LIMIT)
    kinds = [n.op_type for n in model.graph.node]
    assert "Gather" not in kinds and "DequantizeLinear" not in kinds
    assert kinds.count("MatMul") == 2  # the products with x stay; the projections left
    assert {i.name for i in model.graph.input} == {
        "offset",
        "x",
        "position_rows_00",
        "position_rows_01",
    }
    assert {i.name for i in model.graph.initializer} == set()  # table and weights moved
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta == {WINDOW_KEY: str(WINDOW), LIMIT_KEY: str(LIMIT)}
    projector = onnx.load_from_string(split.projector)
    assert [i.name for i in projector.graph.input] == [PROJECTOR_INPUT]
    assert [o.name for o in projector.graph.output] == ["position_rows_00", "position_rows_01"]


@pytest.mark.parametrize(
    "table",
    [{}, {"block": 1, "prefill": 0}, {"block": 7, "prefill": 3, "cached": 40}],
    ids=["defaults", "a row at a time", "past what it keeps"],
)
def test_the_split_step_computes_bit_for_bit_what_the_graph_did(table: dict[str, int]) -> None:
    whole, split = split_pair(**table)
    offsets = [*range(0, 120, 10), 5, 33, 61, *range(200, LIMIT - WINDOW + 1, 19)]
    for offset in offsets:
        for a, b in zip(whole.run(None, feed(offset)), split.run(None, feed(offset)), strict=True):
            np.testing.assert_array_equal(a, b)


def test_the_table_grows_only_as_far_as_a_call_got_and_keeps_what_it_projected() -> None:
    _, split = split_pair(block=20, prefill=0)
    table = split.table
    assert table.filled == 0 and table.fills == 0
    split.run(None, feed(0))
    assert table.filled == 20 and table.fills == 1
    split.run(None, feed(10))
    assert table.filled == 20 and table.fills == 1  # positions 10..14: already there
    split.run(None, feed(16))
    assert table.filled == 40 and table.fills == 2  # 20..39 added, 0..19 kept
    rows = table.rows(3)
    assert all(not r.flags.writeable for r in rows)  # views of the shared table


def test_a_position_past_the_encoding_is_an_error_not_a_wrong_row() -> None:
    _, split = split_pair()
    with pytest.raises(ValueError, match="outside the model"):
        split.run(None, feed(LIMIT - WINDOW + 1))
    with pytest.raises(ValueError, match="outside the model"):
        split.table.rows(-1)
    with pytest.raises(ValueError, match="one call at a time"):
        split.run(None, {**feed(0), "offset": np.array([[0], [10]], np.int64)})


def test_calls_on_many_threads_read_the_same_rows() -> None:
    whole, split = split_pair(block=3, prefill=0)
    expected = {o: whole.run(None, feed(o)) for o in range(0, 200, 10)}
    errors: list[BaseException] = []

    def call(start: int) -> None:
        try:
            for offset in range(start, 200, 10):
                for a, b in zip(expected[offset], split.run(None, feed(offset)), strict=True):
                    np.testing.assert_array_equal(a, b)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=call, args=(10 * (i % 3),)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert 190 + WINDOW <= split.table.filled < 190 + WINDOW + 3  # as far as the calls got


def test_a_graph_whose_rows_are_not_consecutive_positions_is_left_alone() -> None:
    model = step_graph(stride=2)
    before = model.SerializeToString()
    assert split_positions(model) is None
    assert model.SerializeToString() == before
    assert not any(i.name.startswith(ROWS_PREFIX) for i in model.graph.input)


def test_positioned_reads_the_sizes_from_the_graphs() -> None:
    model = step_graph()
    split = split_positions(model)
    assert split is not None
    model_run = positioned(session(model.SerializeToString()), session(split.projector))
    assert (model_run.table.layers, model_run.table.window) == (2, WINDOW)
    assert (model_run.table.limit, model_run.table.width) == (LIMIT, OUT)


def test_a_step_graph_without_its_sizes_does_not_load() -> None:
    model = step_graph()
    split = split_positions(model)
    assert split is not None
    del model.metadata_props[:]
    with pytest.raises(RecognizerError) as caught:
        positioned(session(model.SerializeToString()), session(split.projector))
    assert caught.value.code == "asr_load_failed"
