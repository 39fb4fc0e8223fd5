"""What the final decoding of a turn costs: the digit search a caller waits for at every code.

Figures only, printed; not a test (issue 11). Spliced codes of the corpus speaker (150-400 ms
gaps, ``bench_codes.build_codes``) go through a μ-law line and the recogniser once, to its
``end``; then the digits decoder (:meth:`assistant.asr.decoder.DigitDecoder.decode`: the
counting Viterbi search, the length prior, the substitutions, the N-best and the fill rule)
runs on each code's frame scores ``--rounds`` times, and the process CPU per decoding is
printed (median and mean over the codes), with the codes read whole. Then as the box runs it:
the search fed each model step's ten frames as they come (:meth:`DigitDecoder.search`), and at
the turn's end only what is left (the open run of blank frames, the trace, the prior, the
N-best and the fill rule), with the readings checked against the whole search's. It is pure
Python and numpy under the interpreter lock: when 16 callers finish their codes in the same
second, their decodings run one after another.

Usage: ``PYTHONPATH=. .venv/bin/python scripts/bench_decode.py [--codes 20] [--rounds 10]``.
Run it from an older checkout (a git worktree) to compare.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_codes as bc

from assistant.asr.engine import OnnxRecognizer
from assistant.audio.g711 import phone_line
from assistant.audio.resample import resample
from assistant.core.paths import shared_corpus_dir
from assistant.core.ports import Audio, ListenMode, ListenSpec
from assistant.language.numbers import NumberReader


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--codes", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--seed", type=int, default=5)
    args = parser.parse_args(argv)
    corpus_dir = shared_corpus_dir()
    if corpus_dir is None or not (corpus_dir / "manifest.tsv").is_file():
        print("needs ../shared/corpus (real digit recordings)", file=sys.stderr)
        return 2
    corpus = bc.Corpus.load(corpus_dir)
    codes = bc.build_codes(corpus, random.Random(args.seed), args.codes)
    recognizer = OnnxRecognizer.load()
    decoder = recognizer.digits
    reader = NumberReader.load()
    spec = ListenSpec(ListenMode.DIGITS, 10)
    per_code: list[float] = []
    #: per code: CPU at the turn's end with the search fed during the turn, and of the feeding
    streamed: list[tuple[float, float]] | None = [] if hasattr(decoder, "search") else None
    same = 0
    frames: list[int] = []
    whole = 0
    for code, pcm in codes:
        line = phone_line(Audio(pcm, bc.RATE), "ulaw")
        heard = resample(line.samples, line.rate, recognizer.sample_rate)
        session = recognizer.open_session()
        session.begin(spec)
        session.feed(heard)
        recognition = session.end()
        whole += reader.read_digits(recognition.text).digits == code
        # the very frame scores end() decoded (kept until close), decoded again and timed
        scores = session._frame_scores(len(decoder.grammar.words))
        session.close()
        frames.append(scores.num_frames)
        decoder.decode(scores, 10)  # warm
        cpu = time.process_time()
        for _ in range(args.rounds):
            found = decoder.decode(scores, 10)
        per_code.append((time.process_time() - cpu) / args.rounds)
        if streamed is None:
            continue
        # as the box runs it: the search fed one model step (10 frames) at a time while the
        # caller speaks, and at the turn's end only the rest
        fed = 0.0
        for _ in range(args.rounds):
            cpu = time.process_time()
            search = decoder.search(10)
            for t in range(0, scores.num_frames, 10):
                search.advance(scores.frames(t, t + 10))
            fed += time.process_time() - cpu
        at_end = time.process_time()
        for _ in range(args.rounds):
            late = decoder.decode(scores, 10, search)
        streamed.append(((time.process_time() - at_end) / args.rounds, fed / args.rounds))
        same += late == found
    recognizer.close()
    ms = np.asarray(per_code) * 1000
    print(
        f"# bench_decode: {len(codes)} codes, {np.mean(frames):.0f} output frames on average, "
        f"{args.rounds} decodings each"
    )
    print(
        f"digits decode, process CPU per code: median {np.median(ms):.1f} ms, "
        f"mean {np.mean(ms):.1f} ms, max {np.max(ms):.1f} ms; codes whole {whole}/{len(codes)}"
    )
    if streamed:
        end_ms = np.asarray([e for e, _ in streamed]) * 1000
        fed_ms = np.asarray([f for _, f in streamed]) * 1000
        print(
            f"with the search fed step by step during the turn (as the box runs it): at the "
            f"turn's end median {np.median(end_ms):.1f} ms, mean {np.mean(end_ms):.1f} ms, max "
            f"{np.max(end_ms):.1f} ms; the feeding, spread over the turn, median "
            f"{np.median(fed_ms):.1f} ms per code; readings the same as the whole search "
            f"{same}/{len(streamed)}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
