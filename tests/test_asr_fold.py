"""Folding the weights the model dequantises on every run (assistant.asr.fold).

A small QDQ graph pins which nodes are folded and that the folded graph computes the same; the
real model (skipped without viet-asr) pins what is folded there and that a recorded code still
reads the same.
"""

from __future__ import annotations

import wave
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from assistant.asr.fold import (
    Graphs,
    cache_projected_frames,
    cached,
    fold_dequantized_weights,
    folded_model,
    folded_path,
    fuse_layer_norms,
    prepare,
    projector_path,
    quantise_front_convolution,
)
from assistant.asr.fold import main as fold_main
from assistant.core.errors import RecognizerError

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402  (after the skips above)

RNG = np.random.default_rng(5)


def _int8(shape: tuple[int, ...]) -> np.ndarray:
    return RNG.integers(-120, 120, size=shape, dtype=np.int8)


def qdq_graph() -> bytes:
    """y_int8 = MatMul(DQ(DynamicQuantizeLinear(x)), DQ(w1))  (onnxruntime runs it in int8)
    y_float = MatMul(DQ(t), DQ(w2))  (a float MatMul: t is a computed int8 tensor)
    y_nbits = MatMul(x, DQ(w1))  (onnxruntime makes it a block-quantised MatMul)
    y_conv = Conv(image, DQ(k) per output channel) + DQ(bias)"""
    inits = [
        numpy_helper.from_array(_int8((8, 8)), "w1"),
        numpy_helper.from_array(np.array(0.02, np.float32), "w1_scale"),
        numpy_helper.from_array(np.array(0, np.int8), "w1_zero"),
        numpy_helper.from_array(_int8((8, 8)), "w2"),
        numpy_helper.from_array(np.array(0.03, np.float32), "w2_scale"),
        numpy_helper.from_array(np.array(3, np.int8), "w2_zero"),
        numpy_helper.from_array(_int8((4, 2, 3, 3)), "k"),
        numpy_helper.from_array(np.array([0.01, 0.02, 0.03, 0.04], np.float32), "k_scale"),
        numpy_helper.from_array(np.array([0, 1, -1, 2], np.int8), "k_zero"),
        numpy_helper.from_array(_int8((1, 4, 1, 1)), "bias"),
        numpy_helper.from_array(np.array(0.05, np.float32), "bias_scale"),
        numpy_helper.from_array(np.array(0, np.int8), "bias_zero"),
    ]
    nodes = [
        helper.make_node("DynamicQuantizeLinear", ["x"], ["xq", "xs", "xz"]),
        helper.make_node("DequantizeLinear", ["xq", "xs", "xz"], ["xd"]),
        helper.make_node("DequantizeLinear", ["w1", "w1_scale", "w1_zero"], ["w1d"], name="dq_w1"),
        helper.make_node("MatMul", ["xd", "w1d"], ["y_int8"]),
        helper.make_node("DequantizeLinear", ["w2", "w2_scale", "w2_zero"], ["w2d"], name="dq_w2"),
        helper.make_node("DequantizeLinear", ["t", "w2_scale"], ["td"]),
        helper.make_node("MatMul", ["td", "w2d"], ["y_float"]),
        helper.make_node("MatMul", ["x", "w1d"], ["y_nbits"]),
        helper.make_node("DequantizeLinear", ["k", "k_scale", "k_zero"], ["kd"], axis=0),
        helper.make_node("Conv", ["image", "kd"], ["conv"]),
        helper.make_node("DequantizeLinear", ["bias", "bias_scale", "bias_zero"], ["biasd"]),
        helper.make_node("Add", ["conv", "biasd"], ["y_conv"]),
    ]
    graph = helper.make_graph(
        nodes,
        "qdq",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, [4, 8]),
            helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 2, 5, 5]),
            helper.make_tensor_value_info("t", TensorProto.INT8, [4, 8]),
        ],
        [
            helper.make_tensor_value_info("y_int8", TensorProto.FLOAT, [4, 8]),
            helper.make_tensor_value_info("y_float", TensorProto.FLOAT, [4, 8]),
            helper.make_tensor_value_info("y_conv", TensorProto.FLOAT, [1, 4, 3, 3]),
            helper.make_tensor_value_info("y_nbits", TensorProto.FLOAT, [4, 8]),
        ],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return bytes(model.SerializeToString())


def conv_graph(
    *,
    kernel: tuple[int, int] = (3, 3),
    strides: tuple[int, int] = (2, 2),
    group: int = 1,
    pads: tuple[int, int, int, int] = (0, 0, 0, 0),
    zero: int = 0,
) -> Any:
    """y = Relu(Conv(x, DQ(k) per output channel, bias)) over a [B, 8, 9, 11] input."""
    out_c, in_c = 6, 8
    k = _int8((out_c, in_c // group, *kernel))
    inits = [
        numpy_helper.from_array(k, "k"),
        numpy_helper.from_array(RNG.uniform(0.002, 0.01, out_c).astype(np.float32), "k_scale"),
        numpy_helper.from_array(np.full(out_c, zero, np.int8), "k_zero"),
        numpy_helper.from_array(RNG.normal(0, 0.1, out_c).astype(np.float32), "bias"),
    ]
    nodes = [
        helper.make_node("DequantizeLinear", ["k", "k_scale", "k_zero"], ["kd"], axis=0),
        helper.make_node(
            "Conv",
            ["x", "kd", "bias"],
            ["c"],
            kernel_shape=list(kernel),
            strides=list(strides),
            group=group,
            pads=list(pads),
        ),
        helper.make_node("Relu", ["c"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "conv",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", in_c, 9, 11])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def _int8_conv_reference(model: Any, x: np.ndarray) -> np.ndarray:
    """What the rewrite computes, in numpy: the input quantised once to uint8 over the whole
    tensor (DynamicQuantizeLinear), integer patch products with the int8 kernel, rescaled."""
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    k, scale, bias = inits["k"].astype(np.int64), inits["k_scale"], inits["bias"]
    lo, hi = min(0.0, float(x.min())), max(0.0, float(x.max()))
    x_scale = np.float32((hi - lo) / 255.0)
    x_zero = int(np.clip(np.rint(-lo / x_scale), 0, 255))
    q = np.clip(np.rint(x / x_scale) + x_zero, 0, 255).astype(np.int64) - x_zero
    out_c, _, kh, kw = k.shape
    rows, cols = (x.shape[2] - kh) // 2 + 1, (x.shape[3] - kw) // 2 + 1
    y = np.zeros((x.shape[0], out_c, rows, cols))
    for r in range(rows):
        for c in range(cols):
            patch = q[:, :, 2 * r : 2 * r + kh, 2 * c : 2 * c + kw]
            y[:, :, r, c] = np.einsum("bchw,ochw->bo", patch, k)
    y = y * (x_scale * scale)[None, :, None, None] + bias[None, :, None, None]
    out: np.ndarray = np.maximum(y, 0.0).astype(np.float32)
    return out


def test_a_wide_int8_convolution_becomes_an_int8_matrix_product_of_its_patches() -> None:
    model = conv_graph()
    source = model.SerializeToString()
    assert quantise_front_convolution(model, min_channels=8) == 1
    ops = [n.op_type for n in model.graph.node]
    assert "Conv" not in ops and "DequantizeLinear" not in ops
    assert ops.count("DynamicQuantizeMatMul") == 1 and ops.count("Slice") == 9
    assert {t.name for t in model.graph.initializer}.isdisjoint({"k", "kd"})  # int8 kept once
    x = RNG.normal(0, 1, (2, 8, 9, 11)).astype(np.float32)  # a batch of two
    float_y = run(source, {"x": x})[0]
    int8_y = run(model.SerializeToString(), {"x": x})[0]
    assert int8_y.shape == float_y.shape == (2, 6, 4, 5)
    reference = _int8_conv_reference(onnx.load_from_string(source), x)
    np.testing.assert_allclose(int8_y, reference, atol=1e-5)
    # 8-bit input: close to the float convolution, not equal to it
    assert 0 < np.abs(int8_y - float_y).max() < 0.02 * np.abs(float_y).max()


@pytest.mark.parametrize(
    "shape",
    [
        {"kernel": (1, 1)},  # 1x1: cache_projected_frames rewrites those
        {"group": 2},
        {"pads": (1, 1, 1, 1)},
        {"zero": 1},  # an int8 kernel with an offset
    ],
)
def test_other_convolutions_are_left_alone(shape: dict[str, Any]) -> None:
    model = conv_graph(**shape)
    before = model.SerializeToString()
    assert quantise_front_convolution(model, min_channels=8) == 0
    assert model.SerializeToString() == before


def test_narrow_convolutions_are_left_alone() -> None:
    model = conv_graph()
    assert quantise_front_convolution(model) == 0  # 8 input channels, fewer than the default


def _int8_pointwise_reference(model: Any, x: np.ndarray) -> np.ndarray:
    """A 1x1 convolution as the rewrite computes it, in numpy: the input quantised once to
    uint8 over the whole tensor, the integer product with the int8 kernel, rescaled."""
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    k, scale, bias = inits["k"].astype(np.int64)[:, :, 0, 0], inits["k_scale"], inits["bias"]
    lo, hi = min(0.0, float(x.min())), max(0.0, float(x.max()))
    x_scale = np.float32((hi - lo) / 255.0)
    x_zero = int(np.clip(np.rint(-lo / x_scale), 0, 255))
    q = np.clip(np.rint(x / x_scale) + x_zero, 0, 255).astype(np.int64) - x_zero
    y = np.einsum("bchw,oc->bohw", q, k) * (x_scale * scale)[None, :, None, None]
    out: np.ndarray = np.maximum(y + bias[None, :, None, None], 0.0).astype(np.float32)
    return out


def test_a_pointwise_int8_convolution_becomes_an_int8_matrix_product() -> None:
    model = conv_graph(kernel=(1, 1), strides=(1, 1))
    source = model.SerializeToString()
    folded = prepare(source, positions=False)
    assert folded.int8_pointwise == 1
    rewritten = onnx.load_from_string(folded.onnx)
    assert "com.microsoft" in {o.domain for o in rewritten.opset_import}
    ops = [n.op_type for n in rewritten.graph.node]
    assert "Conv" not in ops and ops.count("DynamicQuantizeMatMul") == 1
    x = RNG.normal(0, 1, (2, 8, 9, 11)).astype(np.float32)
    float_y = run(source, {"x": x})[0]
    int8_y = run(folded.onnx, {"x": x})[0]
    assert int8_y.shape == float_y.shape == (2, 6, 9, 11)
    np.testing.assert_allclose(int8_y, _int8_pointwise_reference(model, x), atol=1e-5)
    assert 0 < np.abs(int8_y - float_y).max() < 0.02 * np.abs(float_y).max()
    # and without the rewrite the same graph keeps its float convolution
    assert prepare(source, positions=False, int8_pointwise=False).int8_pointwise == 0


@pytest.mark.parametrize(
    "shape",
    [
        {"kernel": (1, 1), "strides": (2, 2)},
        {"kernel": (1, 1), "strides": (1, 1), "group": 2},
        {"kernel": (1, 1), "strides": (1, 1), "zero": 1},  # an int8 kernel with an offset
        {"kernel": (3, 3), "strides": (1, 1)},  # wider: quantise_front_convolution's
    ],
)
def test_other_convolutions_stay_in_float(shape: dict[str, Any]) -> None:
    folded = prepare(conv_graph(**shape).SerializeToString(), positions=False)
    assert folded.int8_pointwise == 0
    assert "Conv" in [n.op_type for n in onnx.load_from_string(folded.onnx).graph.node]


def layer_norm_graph(*, gamma_input: bool = False, reuse: bool = False) -> Any:
    """y = LayerNorm(x) over the last axis, written out as the export writes it, then Relu."""
    channels = 16
    inits = [
        numpy_helper.from_array(np.array(1e-5, np.float32), "eps"),
        numpy_helper.from_array(RNG.normal(1, 0.2, (1, 1, channels)).astype(np.float32), "beta"),
    ]
    if not gamma_input:
        gamma = RNG.normal(1, 0.2, (1, 1, channels)).astype(np.float32)
        inits.append(numpy_helper.from_array(gamma, "gamma"))
    nodes = [
        helper.make_node("GlobalAveragePool", ["x"], ["m"]),
        helper.make_node("Sub", ["x", "m"], ["d"]),
        helper.make_node("Mul", ["d", "d"], ["d2"]),
        helper.make_node("GlobalAveragePool", ["d2"], ["v"]),
        helper.make_node("Add", ["v", "eps"], ["ve"]),
        helper.make_node("Sqrt", ["ve"], ["s"]),
        helper.make_node("Reciprocal", ["s"], ["r"]),
        helper.make_node("Mul", ["d", "r"], ["n"]),
        helper.make_node("Mul", ["n", "gamma"], ["g"]),
        helper.make_node("Add", ["g", "beta"], ["b"]),
        helper.make_node("Relu", ["b"], ["y"]),
    ]
    if reuse:  # the reciprocal of the deviation is used by another node too
        nodes.append(helper.make_node("Mul", ["y", "r"], ["y2"]))
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 10, channels])]
    if gamma_input:
        inputs.append(helper.make_tensor_value_info("gamma", TensorProto.FLOAT, [1, 1, channels]))
    out = helper.make_tensor_value_info("y2" if reuse else "y", TensorProto.FLOAT, None)
    graph = helper.make_graph(nodes, "ln", inputs, [out], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def test_a_layer_norm_written_out_becomes_one_node_computing_the_same() -> None:
    model = layer_norm_graph()
    source = model.SerializeToString()
    assert fuse_layer_norms(model.graph) == 1
    assert [n.op_type for n in model.graph.node] == ["LayerNormalization", "Relu"]
    x = (RNG.normal(0, 3, (2, 10, 16)) + RNG.normal(0, 5, (2, 10, 1))).astype(np.float32)
    before, after = run(source, {"x": x})[0], run(model.SerializeToString(), {"x": x})[0]
    np.testing.assert_allclose(after, before, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("shape", [{"gamma_input": True}, {"reuse": True}])
def test_a_layer_norm_whose_scale_is_computed_or_whose_parts_are_used_is_left_alone(
    shape: dict[str, bool],
) -> None:
    model = layer_norm_graph(**shape)
    before = model.SerializeToString()
    assert fuse_layer_norms(model.graph) == 0
    assert model.SerializeToString() == before


def run(graph: bytes, feed: dict[str, np.ndarray]) -> list[Any]:
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(graph, options, providers=["CPUExecutionProvider"])
    return list(session.run(None, feed))


def test_constant_weights_used_in_float_are_folded_and_int8_ones_left_alone() -> None:
    source = qdq_graph()
    folded = fold_dequantized_weights(source)
    assert folded.nodes == 3  # w2 (float MatMul), the convolution's kernel, the bias
    assert folded.values == 64 + 72 + 4
    graph = onnx.load_from_string(folded.onnx).graph
    left = [n.name for n in graph.node if n.op_type == "DequantizeLinear" and n.name]
    assert left == ["dq_w1"]  # the int8 MatMuls' weight stays int8
    names = {t.name for t in graph.initializer}
    assert {"w2d", "kd", "biasd", "w1"} <= names and not {"w2", "k", "bias"} & names

    feed = {
        "x": RNG.standard_normal((4, 8)).astype(np.float32),
        "image": RNG.standard_normal((1, 2, 5, 5)).astype(np.float32),
        "t": _int8((4, 8)),
    }
    before, after = run(source, feed), run(folded.onnx, feed)
    for a, b in zip(before, after, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_folded_values_are_exactly_what_dequantize_linear_computes() -> None:
    source_graph = qdq_graph()
    source = {
        t.name: numpy_helper.to_array(t)
        for t in onnx.load_from_string(source_graph).graph.initializer
    }
    got = {
        t.name: numpy_helper.to_array(t)
        for t in onnx.load_from_string(
            fold_dequantized_weights(source_graph).onnx
        ).graph.initializer
    }
    k = source["k"].astype(np.int32) - source["k_zero"].astype(np.int32).reshape(4, 1, 1, 1)
    expected = k.astype(np.float32) * source["k_scale"].reshape(4, 1, 1, 1)
    assert got["kd"].dtype == np.float32
    np.testing.assert_array_equal(got["kd"], expected)
    w2 = (source["w2"].astype(np.int32) - 3).astype(np.float32) * np.float32(0.03)
    np.testing.assert_array_equal(got["w2d"], w2)


def test_bytes_that_are_not_onnx_are_a_clear_error() -> None:
    with pytest.raises(RecognizerError) as info:
        fold_dequantized_weights(b"\xff\x00 not a model")
    assert info.value.code == "asr_load_failed"


# -- the convolution module's cache -------------------------------------------------------------

CACHED, NEW, CH = 6, 2, 4  # frames kept, frames per step, channels (the model: 30, 10, 448)


def conv_module_graph() -> bytes:
    """One convolution module's front as the model has it: the cache (input frames) and the new
    frames concatenated, the last CACHED kept as the next cache, a pointwise convolution and a
    GLU over all of them; ``g`` is the GLU's output for every frame, cached ones included."""
    rng = np.random.default_rng(11)
    inits = [
        numpy_helper.from_array(np.array(0, np.int64), "layer"),
        numpy_helper.from_array(np.array([0, 0, NEW], np.int64), "starts"),
        numpy_helper.from_array(np.array([2**31 - 1, 2**31 - 1, CACHED + NEW], np.int64), "ends"),
        numpy_helper.from_array(np.array([0, 1, 2], np.int64), "axes"),
        numpy_helper.from_array(np.array([-1, 1, CH, CACHED], np.int64), "cache_shape"),
        numpy_helper.from_array(np.array([2], np.int64), "unsq"),
        numpy_helper.from_array(rng.standard_normal((2 * CH, CH, 1, 1)).astype(np.float32), "w"),
        numpy_helper.from_array(rng.standard_normal(2 * CH).astype(np.float32), "b"),
        numpy_helper.from_array(np.array([-1, CACHED + NEW, 2 * CH], np.int64), "glu_shape"),
    ]
    nodes = [
        helper.make_node("Gather", ["cnn_cache", "layer"], ["held"], axis=1),
        helper.make_node("Transpose", ["x"], ["xt"], perm=[0, 2, 1]),
        helper.make_node("Concat", ["held", "xt"], ["all"], axis=2),
        helper.make_node("Slice", ["all", "starts", "ends", "axes"], ["kept"]),
        helper.make_node("Reshape", ["kept", "cache_shape"], ["r_cnn_cache"]),
        helper.make_node("Unsqueeze", ["all", "unsq"], ["all4"]),
        helper.make_node("Conv", ["all4", "w", "b"], ["pw"]),
        helper.make_node("Transpose", ["pw"], ["pwt"], perm=[0, 2, 3, 1]),
        helper.make_node("Reshape", ["pwt", "glu_shape"], ["pwr"]),
        helper.make_node("Split", ["pwr"], ["a", "gate"], axis=2),
        helper.make_node("Sigmoid", ["gate"], ["sg"]),
        helper.make_node("Mul", ["a", "sg"], ["g"]),
    ]
    graph = helper.make_graph(
        nodes,
        "conv_module",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, ["B", NEW, CH]),
            helper.make_tensor_value_info("offset", TensorProto.INT64, ["B", 1]),
            helper.make_tensor_value_info("cnn_cache", TensorProto.FLOAT, ["B", 1, CH, CACHED]),
        ],
        [
            helper.make_tensor_value_info("g", TensorProto.FLOAT, ["B", CACHED + NEW, CH]),
            helper.make_tensor_value_info("r_cnn_cache", TensorProto.FLOAT, ["B", 1, CH, CACHED]),
        ],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return bytes(model.SerializeToString())


def stream(graph: bytes, steps: list[np.ndarray]) -> list[np.ndarray]:
    """Each step's GLU output, from zero caches at offset 0, each step's cache fed back."""
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(graph, options, providers=["CPUExecutionProvider"])
    cache = np.zeros((1, 1, CH, CACHED), np.float32)
    outputs = []
    for i, x in enumerate(steps):
        feed = {"x": x, "offset": np.array([[NEW * i]], np.int64), "cnn_cache": cache}
        g, cache = session.run(None, feed)
        outputs.append(g)
    return outputs


def test_the_cache_holds_projected_frames_and_every_step_computes_the_same() -> None:
    source = conv_module_graph()
    graph_model = onnx.load_from_string(source)
    assert cache_projected_frames(graph_model.graph) == 1
    onnx.checker.check_model(graph_model)
    nodes = graph_model.graph.node
    producer = {out: n for n in nodes for out in n.output}
    # the pointwise convolution now sees the new frames only, and a zero frame (the GLU of
    # what an all-zero cache holds, used at offset 0)
    convs = [n for n in nodes if n.op_type == "Conv"]
    assert len(convs) == 2
    sources = {
        producer[c.input[0]].op_type if c.input[0] in producer else c.input[0] for c in convs
    }
    assert sources == {"Unsqueeze", "pc0/zeros"}
    assert producer[next(c for c in convs if c.input[0] in producer).input[0]].input[0] == "xt"
    rewritten = graph_model.SerializeToString()
    steps = [RNG.standard_normal((1, NEW, CH)).astype(np.float32) for _ in range(6)]
    for before, after in zip(stream(source, steps), stream(rewritten, steps), strict=True):
        np.testing.assert_array_equal(before, after)


def test_a_graph_without_the_pattern_is_left_alone() -> None:
    graph_model = onnx.load_from_string(qdq_graph())
    before = graph_model.SerializeToString()
    assert cache_projected_frames(graph_model.graph) == 0
    assert graph_model.SerializeToString() == before


# -- kept on disk -------------------------------------------------------------------------------


def toy_model() -> Any:
    from assistant.asr.model import ModelData

    return ModelData(onnx=qdq_graph(), tokens=(), library=Path("toy.so"), sha256="ab" * 32)


def test_the_folded_graph_is_written_once_and_then_loaded_from_disk(tmp_path: Path) -> None:
    model = toy_model()
    first = folded_model(model, tmp_path)
    step, projector = folded_path(model, tmp_path), projector_path(model, tmp_path)
    # the toy has no positional projection: its projector file is written, and empty
    assert first == Graphs(step, None) and projector.read_bytes() == b""
    assert step.read_bytes() == prepare(model.onnx).onnx
    stamp = step.stat().st_mtime_ns
    assert folded_model(model, tmp_path) == first and step.stat().st_mtime_ns == stamp
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [step.name, step.stem + ".sha256", projector.name, projector.stem + ".sha256"]
    )
    run(
        step.read_bytes(),
        {
            "x": np.ones((4, 8), np.float32),
            "image": np.ones((1, 2, 5, 5), np.float32),
            "t": _int8((4, 8)),
        },
    )


def test_writing_a_newer_version_deletes_the_older_ones(tmp_path: Path) -> None:
    model = toy_model()
    older = tmp_path / f"vietasr-{model.sha256[:16]}-fold1.onnx"
    older_projector = tmp_path / f"vietasr-{model.sha256[:16]}-fold4-positions.onnx"
    other_model = tmp_path / "vietasr-0123456789abcdef-fold1.onnx"
    for path in (older, older.with_suffix(".sha256"), older_projector, other_model):
        path.write_bytes(b"old")
    written = folded_model(model, tmp_path)
    assert isinstance(written.step, Path) and written.step.is_file()
    assert projector_path(model, tmp_path).is_file()
    assert not older.exists() and not older.with_suffix(".sha256").exists()
    assert not older_projector.exists()
    assert other_model.read_bytes() == b"old"  # another model's file is not ours to delete


@pytest.mark.parametrize("damaged", ["step", "projector"])
def test_a_damaged_folded_file_is_rebuilt(tmp_path: Path, damaged: str) -> None:
    model = toy_model()
    graphs = folded_model(model, tmp_path)
    assert isinstance(graphs.step, Path)
    path = graphs.step if damaged == "step" else projector_path(model, tmp_path)
    whole = path.read_bytes()
    path.write_bytes(whole[: len(whole) // 2] + b"x")  # a copy cut short, or changed
    assert cached(model, tmp_path) is None
    assert folded_model(model, tmp_path) == graphs and path.read_bytes() == whole


def test_a_missing_projector_is_no_fold(tmp_path: Path) -> None:
    model = toy_model()
    graphs = folded_model(model, tmp_path)
    projector_path(model, tmp_path).unlink()
    assert cached(model, tmp_path) is None
    assert folded_model(model, tmp_path) == graphs and projector_path(model, tmp_path).is_file()


def test_a_folder_that_cannot_be_written_folds_in_memory(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    model = toy_model()
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    result = folded_model(model, blocked)
    assert result == Graphs(fold_dequantized_weights(model.onnx).onnx, None)
    assert "folding it in memory" in caplog.text


def test_the_command_builds_the_file_and_then_says_it_is_there(
    tmp_path: Path, model: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    assert fold_main(["--dir", str(tmp_path)]) == 0
    assert "dequantised once" in capsys.readouterr().out
    assert cached(model, tmp_path) == Graphs(
        folded_path(model, tmp_path), projector_path(model, tmp_path)
    )
    assert fold_main(["--dir", str(tmp_path)]) == 0
    assert "already folded" in capsys.readouterr().out


# -- the real model -----------------------------------------------------------------------------


def test_the_real_model_loses_its_per_step_dequantisation_and_reads_the_same(model: Any) -> None:
    from assistant.asr.engine import OnnxRecognizer
    from assistant.core.ports import ListenMode, ListenSpec

    folded = prepare(model.onnx)
    # 12 layers x (two pointwise and one depthwise convolution kernels, the positional
    # projection) and the first front-end kernel: 9.8 million values; each layer's
    # convolution cache; the second front-end convolution runs in int8
    assert folded.nodes == 49 and folded.values == 9_804_480 and folded.projected_caches == 12
    assert folded.int8_convolutions == 1 and folded.fused_norms == 73
    # the two pointwise convolutions of each layer's module over its frames (not the one
    # over the constant zero frame) run in int8
    assert folded.int8_pointwise == 24
    wav = Path(__file__).parent / "fixtures" / "asr"
    clips = sorted(wav.glob("*.wav"))
    if not clips:
        pytest.skip("no fixture audio")
    readings = []
    makers: tuple[Callable[[], OnnxRecognizer], ...] = (
        lambda: OnnxRecognizer(model, fold_weights=False),
        lambda: OnnxRecognizer(model, fold_weights=True),
        OnnxRecognizer.load,  # the box's way: from the folded file in asr_models/
    )
    for make in makers:
        recognizer = make()
        session = recognizer.open_session()
        spec = ListenSpec(ListenMode.DIGITS, 10)
        texts = []
        for clip in clips:
            with wave.open(str(clip)) as w:
                pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.int16)
            session.begin(spec)
            for i in range(0, len(pcm), 320):
                session.feed(pcm[i : i + 320])
            texts.append(session.end().text)
        readings.append(texts)
        recognizer.close()
    assert readings[0] == readings[1] == readings[2]


def test_the_real_models_projected_caches_give_the_same_log_probabilities_bit_for_bit(
    model: Any,
) -> None:
    """And the int8 front-end and pointwise convolutions and the fused layer norms move them,
    but not the best class of a frame."""
    from assistant.asr.engine import (
        ATT_CACHE_SHAPE,
        CHUNK_FRAMES,
        CNN_CACHE_SHAPE,
        OUT_FRAMES,
        STEP_FRAMES,
        open_graph,
    )
    from assistant.asr.features import compute_fbank
    from assistant.asr.positions import PositionedModel, PositionTable

    clips = sorted((Path(__file__).parent / "fixtures" / "asr").glob("*.wav"))
    if not clips:
        pytest.skip("no fixture audio")
    with wave.open(str(clips[0])) as w:
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.int16)
    feats = compute_fbank(np.tile(pcm, 3))  # positions past the first step's 50, many times
    outputs = []
    projected = onnx.load_from_string(fold_dequantized_weights(model.onnx).onnx)
    assert cache_projected_frames(projected.graph) == 12
    box = prepare(model.onnx)
    assert box.position_layers == 12
    graphs = (
        fold_dequantized_weights(model.onnx).onnx,
        projected.SerializeToString(),
        prepare(model.onnx, positions=False).onnx,
        box.onnx,
    )
    for graph in graphs:
        session = open_graph(graph)
        if graph is box.onnx:  # its rows from a table that grows at every step
            projector = open_graph(box.projector)
            table = PositionTable(
                projector, layers=12, window=50, limit=5040, width=448, block=1, prefill=0
            )
            session = PositionedModel(session, table)
        att = np.zeros(ATT_CACHE_SHAPE, np.float32)
        cnn = np.zeros(CNN_CACHE_SHAPE, np.float32)
        steps = []
        for k in range((len(feats) - CHUNK_FRAMES) // STEP_FRAMES + 1):
            chunk = feats[k * STEP_FRAMES : k * STEP_FRAMES + CHUNK_FRAMES][None]
            offset = np.array([[OUT_FRAMES * k]], np.int64)
            feed = {"chunk": chunk, "offset": offset, "att_cache": att, "cnn_cache": cnn}
            logp, att, cnn = session.run(None, feed)
            steps.append(logp)
        outputs.append(np.concatenate(steps, axis=1))
        del session
    assert outputs[0].shape[1] >= 30  # several seconds of speech, caches carried throughout
    np.testing.assert_array_equal(outputs[0], outputs[1])
    # the positional rows from the shared table: the same numbers as projected in the step
    np.testing.assert_array_equal(outputs[3], outputs[2])
    assert table.fills == outputs[0].shape[1] // OUT_FRAMES
    # 8-bit input to the front end and the pointwise convolutions, the norms' sums in another
    # order: other numbers (on 8 recorded codes, 0.17 % of frames had another best class), the
    # same best class on every frame of this clip
    assert np.abs(outputs[2] - outputs[1]).max() > 0
    np.testing.assert_array_equal(outputs[2].argmax(-1), outputs[1].argmax(-1))
