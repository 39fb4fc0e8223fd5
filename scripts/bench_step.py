"""What one model step costs, graph against graph, and how far their outputs move.

Figures only, printed; not a test (issue 11). Spliced codes of the corpus speaker (150-400 ms
gaps) go through a μ-law line and the filterbank once; then every graph runs all of them
chunk by chunk with its caches, in turns (``--rounds``), so that a noisy host slows them
alike. Per graph: process CPU per step, and against the first graph the largest change of a
log-probability and the share of frames whose best class changed.

Graphs:

* ``fold2``: the weights dequantised once and the projected convolution caches, bit for bit
  the shipped model's arithmetic (the box's graph before the int8 front end);
* ``box``: what the box runs (:func:`assistant.asr.fold.prepare`: also the front end's
  second convolution as an int8 matrix product, the layer norms fused, and the positional
  rows fed from the table shared by all calls, :mod:`assistant.asr.positions`);
* ``fold5``: ``box`` with the conformer's pointwise convolutions in float32, as before
  version 6;
* ``fold4``: ``fold5`` with the positional rows projected in the step, as before version 5;
* ``int8``: ``fold2`` and the int8 front end, the layer norms as exported;
* ``reordered``: ``fold2`` with that convolution still in float32 but summed as a matrix
  product of its patches, the arithmetic another CPU's kernels would do: how far the
  model's outputs move when nothing but the order of float sums changes;
* ``shipped``: the graph as it comes in the wheel.

Usage: ``PYTHONPATH=. .venv/bin/python scripts/bench_step.py [--codes 8] [--rounds 6]
[--graphs fold2,box,fold5,fold4,int8,reordered]``.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_codes import RATE, Corpus, build_codes

from assistant.asr.engine import (
    ATT_CACHE_SHAPE,
    CHUNK_FRAMES,
    CNN_CACHE_SHAPE,
    OUT_FRAMES,
    STEP_FRAMES,
    open_folded,
)
from assistant.asr.features import compute_fbank
from assistant.asr.fold import (
    Graphs,
    cache_projected_frames,
    fold_dequantized_weights,
    prepare,
    quantise_front_convolution,
)
from assistant.asr.model import load_model
from assistant.audio.g711 import phone_line
from assistant.audio.resample import resample
from assistant.core.paths import shared_corpus_dir
from assistant.core.ports import Audio


def fold2(raw: bytes) -> bytes:
    import onnx

    graph = onnx.load_from_string(fold_dequantized_weights(raw).onnx)
    cache_projected_frames(graph.graph)
    return bytes(graph.SerializeToString())


def int8_front(raw: bytes) -> bytes:
    import onnx

    model = onnx.load_from_string(raw)
    quantise_front_convolution(model)
    return fold2(model.SerializeToString())


def reordered(raw: bytes) -> bytes:
    """``fold2`` with the front end's second convolution in float32 as a matrix product of its
    patches (the int8 rewrite's graph, its kernel dequantised back): the same sums in another
    order."""
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load_from_string(raw)
    if quantise_front_convolution(model) != 1:
        raise SystemExit("the model's front end is not the expected shape")
    inits = {t.name: t for t in model.graph.initializer}
    nodes = []
    for node in model.graph.node:
        if node.op_type != "DynamicQuantizeMatMul":
            nodes.append(node)
            continue
        patches, weight, scale, _zero, bias = node.input
        w = numpy_helper.to_array(inits[weight]).astype(np.float32)
        s = numpy_helper.to_array(inits[scale]).astype(np.float32)
        model.graph.initializer.append(numpy_helper.from_array(w * s, "rq/w"))
        nodes.append(helper.make_node("MatMul", [patches, "rq/w"], ["rq/y"]))
        nodes.append(helper.make_node("Add", ["rq/y", bias], [node.output[0]]))
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    return fold2(model.SerializeToString())


def run(session: Any, feats: np.ndarray) -> tuple[np.ndarray, int]:
    att = np.zeros(ATT_CACHE_SHAPE, np.float32)
    cnn = np.zeros(CNN_CACHE_SHAPE, np.float32)
    outs = []
    k = 0
    while len(feats) >= CHUNK_FRAMES:
        feed = {
            "chunk": feats[None, :CHUNK_FRAMES],
            "offset": np.array([[OUT_FRAMES * k]], np.int64),
            "att_cache": att,
            "cnn_cache": cnn,
        }
        logp, att, cnn = session.run(None, feed)
        outs.append(logp[0])
        feats = feats[STEP_FRAMES:]
        k += 1
    return np.concatenate(outs), k


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--codes", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--graphs", default="fold2,box,int8,reordered")
    parser.add_argument("--seed", type=int, default=5)
    args = parser.parse_args(argv)
    root = shared_corpus_dir()
    if root is None:
        print("shared corpus not found (../shared/corpus/real_vi_dev): nothing to measure")
        return 2
    codes = build_codes(Corpus.load(root), random.Random(args.seed), args.codes)
    feats = []
    for _, pcm in codes:
        line = phone_line(Audio(pcm, RATE), "ulaw")
        feats.append(compute_fbank(resample(line.samples, line.rate, RATE)))
    raw = load_model().onnx

    def box(b: bytes, **options: bool) -> Graphs:
        folded = prepare(b, **options)
        return Graphs(folded.onnx, folded.projector or None)

    makers: dict[str, Callable[[bytes], Graphs]] = {
        "fold2": lambda b: Graphs(fold2(b)),
        "box": box,
        "fold5": lambda b: box(b, int8_pointwise=False),
        "fold4": lambda b: Graphs(prepare(b, positions=False, int8_pointwise=False).onnx),
        "int8": lambda b: Graphs(int8_front(b)),
        "reordered": lambda b: Graphs(reordered(b)),
        "shipped": Graphs,
    }
    names = [g for g in args.graphs.split(",") if g]
    unknown = [g for g in names if g not in makers]
    if unknown or not names:
        parser.error(f"graphs are among {', '.join(makers)}")
    sessions = {g: open_folded(makers[g](raw)) for g in names}
    cpu = dict.fromkeys(names, 0.0)
    steps = dict.fromkeys(names, 0)
    first: dict[str, list[np.ndarray]] = {g: [] for g in names}
    for r in range(args.rounds):
        for g, session in sessions.items():
            started = time.process_time()
            for f in feats:
                out, n = run(session, f)
                steps[g] += n
                if r == 0:
                    first[g].append(out)
            cpu[g] += time.process_time() - started
    base = names[0]
    print(
        f"# bench_step: {args.codes} codes, {steps[base] // args.rounds} steps each round, "
        f"{args.rounds} rounds in turns\n"
    )
    print(
        f"| graph | CPU per step | vs {base} | largest change of a log-probability "
        "| frames whose best class changed |"
    )
    print("|---|---|---|---|---|")
    for g in names:
        ms = cpu[g] / steps[g] * 1000
        ratio = cpu[g] / steps[g] / (cpu[base] / steps[base])
        diff = max(float(np.abs(a - b).max()) for a, b in zip(first[g], first[base], strict=True))
        moved = np.concatenate(
            [a.argmax(1) != b.argmax(1) for a, b in zip(first[g], first[base], strict=True)]
        ).mean()
        print(f"| {g} | {ms:.1f} ms | {ratio:.2f} | {diff:.2f} | {moved * 100:.2f} % |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
