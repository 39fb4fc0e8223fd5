"""How many callers reading at the same moment the recogniser keeps up with (not a test).

    PYTHONPATH=. .venv/bin/python scripts/bench_burst.py [--calls 1,4,8,12,16] [--unfolded]
        [--switch-ms 5,1 --rounds 3]

The capacity half of issue 11 without SIP, callers or the dialog, so that a change to the
recogniser can be compared in one run on a noisy host: N threads each play one spliced code of
the corpus speaker (``bench_codes.build_codes``, 150-400 ms gaps) at real-time pace, as a live
call's thread does: 20 ms frames of 8 kHz audio (μ-law round trip) through the endpointer with
Silero VAD, the 8 -> 16 kHz stream resampler and the recogniser session (one shared
:class:`~assistant.asr.engine.OnnxRecognizer`, as the box has). Per N it prints how far behind
real time the callers were when their audio ended (p50 / max), the seconds from the end of the
audio to the final reading (p50 / max; what a caller would wait beyond the turn's end rule), the
process CPU in cores, and the codes read whole. ``--switch-ms`` runs every level once per
interpreter switch interval given (``sys.setswitchinterval``; the box keeps Python's default), in
turns, ``--rounds`` times, so that the intervals are compared in one process on a host whose
speed drifts. The box's own figures come from
``bench_calls.py``; its callers and SIP stack take CPU this script leaves free.
"""

from __future__ import annotations

import argparse
import random
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_codes as bc

from assistant.asr.engine import OnnxRecognizer
from assistant.audio.endpoint import Endpointer, EndpointSettings
from assistant.audio.g711 import phone_line
from assistant.audio.resample import StreamResampler
from assistant.audio.vad import make_vad
from assistant.core.paths import shared_corpus_dir
from assistant.core.ports import Audio, ListenMode, ListenSpec
from assistant.language.numbers import NumberReader

LINE_RATE = 8000
FRAME = 160  # 20 ms at 8 kHz


@dataclass(frozen=True)
class Caller:
    lag_s: float  # behind real time when the audio ended
    final_s: float  # end of the audio -> final reading
    right: bool


def play(
    recognizer: OnnxRecognizer,
    vad: object,
    code: str,
    pcm: np.ndarray,
    start: float,
    reader: NumberReader,
    out: list[Caller],
) -> None:
    session = recognizer.open_session()
    session.begin(ListenSpec(ListenMode.DIGITS, 10))
    detector = vad(LINE_RATE) if callable(vad) else None
    endpointer = Endpointer(
        LINE_RATE, EndpointSettings(no_input_s=3600.0, max_speech_s=3600.0), vad=detector
    )
    to_asr = StreamResampler(LINE_RATE, recognizer.sample_rate)
    for k in range(0, len(pcm), FRAME):
        due = start + (k + FRAME) / LINE_RATE
        wait = due - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        frame = pcm[k : k + FRAME]
        endpointer.feed(frame)
        session.feed(to_asr.process(frame))
    ended = start + len(pcm) / LINE_RATE
    lag = time.monotonic() - ended
    session.feed(to_asr.flush())
    result = session.end()
    final = time.monotonic() - ended
    session.close()
    heard = reader.read_digits(result.text).digits
    out.append(Caller(max(0.0, lag), final, heard == code))


def level(
    recognizer: OnnxRecognizer, vad: object, codes: list[tuple[str, np.ndarray]], n: int
) -> str:
    reader = NumberReader.load()
    out: list[Caller] = []
    start = time.monotonic() + 0.5
    threads = [
        threading.Thread(target=play, args=(recognizer, vad, *codes[i], start, reader, out))
        for i in range(n)
    ]
    cpu = time.process_time()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.monotonic() - start
    cores = (time.process_time() - cpu) / wall
    lags = [c.lag_s for c in out]
    finals = [c.final_s for c in out]
    return (
        f"| {n} | {1000 * sys.getswitchinterval():g} ms "
        f"| {np.median(lags):.2f} / {max(lags):.2f} s | "
        f"{np.median(finals):.2f} / {max(finals):.2f} s | {cores:.2f} | "
        f"{sum(c.right for c in out)}/{n} |"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", default="1,4,8,12,16", help="levels of N (default 1,4,8,12,16)")
    parser.add_argument("--unfolded", action="store_true", help="the model graph as shipped")
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument(
        "--switch-ms",
        default=None,
        help="interpreter switch intervals to compare, e.g. 5,1 (default: this process's)",
    )
    parser.add_argument("--rounds", type=int, default=1, help="times through the levels")
    args = parser.parse_args(argv)
    levels = [int(x) for x in args.calls.split(",") if x.strip()]
    switches = (
        [float(x) / 1000 for x in args.switch_ms.split(",") if x.strip()]
        if args.switch_ms
        else [sys.getswitchinterval()]
    )
    corpus_dir = shared_corpus_dir()
    if corpus_dir is None or not (corpus_dir / "manifest.tsv").is_file():
        print("needs ../shared/corpus (real digit recordings)", file=sys.stderr)
        return 2
    corpus = bc.Corpus.load(corpus_dir)
    rng = random.Random(args.seed)
    codes = [
        (code, phone_line(Audio(pcm, bc.RATE), "ulaw").samples)
        for code, pcm in bc.build_codes(corpus, rng, max(levels))
    ]
    recognizer = OnnxRecognizer.load(fold_weights=not args.unfolded)
    vad = make_vad("silero", LINE_RATE)
    audio_s = float(np.mean([len(p) for _, p in codes])) / LINE_RATE
    print(
        f"# bench_burst {'unfolded' if args.unfolded else 'folded'}: callers all start at once, "
        f"codes of {audio_s:.1f} s on average"
    )
    print()
    print(
        "| N | switch interval | behind at the end of the audio (p50 / max) | end of audio -> "
        "final reading (p50 / max) | CPU, cores | codes whole |"
    )
    print("|---|---|---|---|---|---|")
    for _ in range(args.rounds):
        for n in levels:
            for switch in switches:
                sys.setswitchinterval(switch)
                print(level(recognizer, vad, codes, n), flush=True)
    recognizer.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
