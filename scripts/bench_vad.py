"""Voice-activity detectors against today's energy detector, on real recorded words.

    PYTHONPATH=. .venv/bin/python scripts/bench_vad.py [--clips 150] [--seeds 4]

Every detector runs inside the real :class:`~assistant.audio.endpoint.Endpointer` (same
start/end rules, only the per-frame speech decision differs) on 8 kHz G.711 audio:

* **speech items**: real isolated words from ``../shared/corpus/real_vi_dev`` (the one-speaker
  digit/yes/no words and every n-th telephone "đúng"/"không"/command recording), each put
  between 1.0 s of line noise before and 1.5 s after, over a phone line, in four conditions
  (a quiet line; white noise at 15 and 5 dB SNR; mains hum with hiss). The true word start and
  end come from the clean recording (first and last 10 ms frame within 30 dB of its loudest).
  Reported: words missed, *clipped onsets* (the detected onset more than 40 ms after the true
  one), median onset error, *late ends* (the detected end of speech more than 150 ms after the
  true one), median/p90 end error, and words cut short (end more than 60 ms early).
* **noise items**: 4 s of noise without speech (hiss, white noise at -40 and -30 dBFS, hum,
  a 425 Hz dial tone, clicks, a noise level that steps up 25 dB, street-like brown noise);
  reported: *false starts* (a SpeechStarted), per item.

Also the detector's CPU time per second of audio. Prints a table; nothing is written.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from assistant.audio.endpoint import Endpointer, EndpointSettings, SpeechEnded, SpeechStarted
from assistant.audio.g711 import decode, encode, phone_line
from assistant.audio.resample import resample
from assistant.audio.vad import SileroModel, VoiceActivity, WebRtcVad
from assistant.audio.wav import read_wav
from assistant.core.paths import shared_corpus_dir
from assistant.core.ports import PCM, Audio

RATE = 8000
LEAD_S = 1.0
TAIL_S = 1.5
CLIPPED_S = 0.04
LATE_S = 0.15
EARLY_S = 0.06
EARLY_START_S = 0.1

Detector = Callable[[], VoiceActivity | None]


@dataclass
class Clip:
    name: str
    audio: Audio  # 16 kHz clean
    on_s: float
    off_s: float


@dataclass
class Tally:
    words: int = 0
    missed: int = 0
    early_start: int = 0
    clipped: int = 0
    late: int = 0
    early: int = 0
    onset_err: list[float] = field(default_factory=list)
    end_err: list[float] = field(default_factory=list)
    noise_items: int = 0
    false_starts: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)
    cpu_s: float = 0.0
    audio_s: float = 0.0


def true_bounds(audio: Audio) -> tuple[float, float] | None:
    hop = audio.rate // 100
    x = audio.samples.astype(np.float64)
    n = len(x) // hop
    if n == 0:
        return None
    frames = x[: n * hop].reshape(n, hop)
    level = 10 * np.log10(np.mean(frames**2, axis=1) / 32768.0**2 + 1e-12)
    loud = np.flatnonzero(level >= max(level.max() - 30.0, -55.0))
    if not len(loud):
        return None
    return loud[0] * hop / audio.rate, (loud[-1] + 1) * hop / audio.rate


def load_clips(corpus: Path, limit: int) -> list[Clip]:
    rows = (corpus / "manifest.tsv").read_text(encoding="utf-8").splitlines()[1:]
    names = [r.split("\t")[0] for r in rows]
    words = [n for n in names if n.startswith("lephuongbg_words/")]
    phone = [n for n in names if n.startswith("undertheseanlp_diadiem/")]
    step = max(1, len(phone) // max(1, limit - len(words)))
    chosen = words + phone[::step][: max(0, limit - len(words))]
    clips = []
    for name in chosen:
        audio = read_wav(corpus / name, 16000)
        bounds = true_bounds(audio)
        if bounds is not None:
            clips.append(Clip(name, audio, *bounds))
    return clips


def _white(n: int, dbfs: float, rng: np.random.Generator) -> np.ndarray:
    return rng.standard_normal(n) * 32768.0 * 10 ** (dbfs / 20)


def _hum(n: int, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(n) / RATE
    phase = rng.uniform(0, 2 * np.pi)
    hum = sum(np.sin(2 * np.pi * 50 * k * t + phase * k) / k for k in (1, 3, 5, 7))
    return hum * 32768.0 * 10 ** (-32 / 20) + _white(n, -55, rng)


def _brown(n: int, dbfs: float, rng: np.random.Generator) -> np.ndarray:
    x = np.cumsum(rng.standard_normal(n))
    x -= np.convolve(x, np.ones(801) / 801, mode="same")  # keep it zero-mean
    x /= max(1e-9, float(np.sqrt(np.mean(x**2))))
    return x * 32768.0 * 10 ** (dbfs / 20)


def noise_only(kind: str, seconds: float, seed: int) -> PCM:
    rng = np.random.default_rng(seed)
    n = int(seconds * RATE)
    if kind == "hiss":
        x = _white(n, -65, rng)
    elif kind == "white-40":
        x = _white(n, -40, rng)
    elif kind == "white-30":
        x = _white(n, -30, rng)
    elif kind == "hum":
        x = _hum(n, rng)
    elif kind == "dialtone":
        t = np.arange(n) / RATE
        x = np.sin(2 * np.pi * 425 * t) * 32768 * 10 ** (-20 / 20) + _white(n, -60, rng)
    elif kind == "clicks":
        x = _white(n, -60, rng)
        for at in range(RATE // 4, n, RATE // 2):
            x[at : at + 24] += rng.standard_normal(24) * 12000
    elif kind == "step":
        x = _white(n, -60, rng)
        x[n // 2 :] *= 10 ** (25 / 20)
    elif kind == "brown":
        x = _brown(n, -35, rng)
    else:
        raise ValueError(kind)
    line = phone_line(Audio(np.clip(np.rint(x), -32768, 32767).astype(np.int16), RATE))
    return line.samples


NOISE_KINDS = ("hiss", "white-40", "white-30", "hum", "dialtone", "clicks", "step", "brown")
CONDITIONS = ("quiet", "snr15", "snr5", "hum")


def speech_item(clip: Clip, condition: str, seed: int) -> tuple[PCM, float, float]:
    """The clip at 8 kHz between line noise, in ``condition``, through G.711 once."""
    rng = np.random.default_rng(seed)
    speech = resample(clip.audio.samples, clip.audio.rate, RATE).astype(np.float64)
    n_lead, n_tail = int(LEAD_S * RATE), int(TAIL_S * RATE)
    x = np.concatenate([np.zeros(n_lead), speech, np.zeros(n_tail)])
    lo, hi = int(clip.on_s * RATE), int(clip.off_s * RATE)
    active = speech[lo:hi] if hi > lo else speech
    rms = float(np.sqrt(np.mean(active**2))) if len(active) else 1000.0
    rms_db = 20 * math.log10(max(rms, 1.0) / 32768.0)
    if condition == "quiet":
        x += _white(len(x), -65, rng)
    elif condition == "snr15":
        x += _white(len(x), rms_db - 15, rng)
    elif condition == "snr5":
        x += _white(len(x), rms_db - 5, rng)
    elif condition == "hum":
        x += _hum(len(x), rng)
    pcm = np.clip(np.rint(x), -32768, 32767).astype(np.int16)
    return decode(encode(pcm, "ulaw"), "ulaw"), LEAD_S + clip.on_s, LEAD_S + clip.off_s


def run_item(
    pcm: PCM, make: Detector, settings: EndpointSettings, tally: Tally
) -> tuple[SpeechStarted | None, SpeechEnded | None]:
    vad = make()
    ep = Endpointer(RATE, settings, vad=vad)
    started: SpeechStarted | None = None
    ended: SpeechEnded | None = None
    t0 = time.process_time()
    for i in range(0, len(pcm), 160):  # 20 ms packets, as from the phone line
        for e in ep.feed(pcm[i : i + 160]):
            if isinstance(e, SpeechStarted) and started is None:
                started = e
            elif isinstance(e, SpeechEnded) and ended is None:
                ended = e
    tally.cpu_s += time.process_time() - t0
    tally.audio_s += len(pcm) / RATE
    return started, ended


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=150, help="speech clips (default 150)")
    parser.add_argument("--seeds", type=int, default=4, help="noise items per kind (default 4)")
    args = parser.parse_args(argv)
    corpus = shared_corpus_dir()
    if corpus is None:
        print("../shared/corpus/real_vi_dev is absent: nothing to measure", file=sys.stderr)
        return 2
    clips = load_clips(corpus, args.clips)
    silero = SileroModel.load()
    base = EndpointSettings(end_silence_s=0.5, no_input_s=60.0, max_speech_s=30.0)
    flat = replace(base, continue_probability=0.5)
    detectors: dict[str, tuple[Detector, EndpointSettings]] = {
        "energy (today)": (lambda: None, base),
        "silero 0.5/0.35": (lambda: silero.stream(RATE), base),
        "silero 0.5/0.5": (lambda: silero.stream(RATE), flat),
        "webrtc mode 2": (lambda: WebRtcVad(RATE, mode=2), base),
        "webrtc mode 3": (lambda: WebRtcVad(RATE, mode=3), base),
    }
    print(
        f"{len(clips)} real word recordings x {len(CONDITIONS)} conditions; "
        f"{len(NOISE_KINDS)} noise kinds x {args.seeds} items of 4 s; 8 kHz G.711"
    )
    results: dict[str, dict[str, Tally]] = {}
    for name, (make, settings) in detectors.items():
        per: dict[str, Tally] = {c: Tally() for c in (*CONDITIONS, "noise")}
        for ci, clip in enumerate(clips):
            for k, condition in enumerate(CONDITIONS):
                pcm, on, off = speech_item(clip, condition, seed=ci * 7 + k)
                tally = per[condition]
                started, ended = run_item(pcm, make, settings, tally)
                tally.words += 1
                if started is None:
                    tally.missed += 1
                    continue
                err_on = started.onset_s - on
                if err_on < -EARLY_START_S:  # started on the noise before the word
                    tally.early_start += 1
                    continue
                tally.onset_err.append(err_on)
                tally.clipped += err_on > CLIPPED_S
                if ended is not None:
                    err_end = ended.speech_end_s - off
                    tally.end_err.append(err_end)
                    tally.late += err_end > LATE_S
                    tally.early += err_end < -EARLY_S
        for kind in NOISE_KINDS:
            for seed in range(args.seeds):
                tally = per["noise"]
                started, _ = run_item(noise_only(kind, 4.0, 1000 + seed), make, settings, tally)
                tally.noise_items += 1
                tally.false_starts += started is not None
                tally.by_kind[kind] = tally.by_kind.get(kind, 0) + (started is not None)
        results[name] = per
    header = (
        f"{'detector':16} {'condition':9} {'missed':>7} {'noise':>6} {'clipped':>8} "
        f"{'onset p50':>10} "
        f"{'late':>6} {'cut':>5} {'end p50':>8} {'end p90':>8}"
    )
    print(header)
    for name, per in results.items():
        for condition in CONDITIONS:
            t = per[condition]
            print(
                f"{name:16} {condition:9} {t.missed:>3}/{t.words:<3} {t.early_start:>6} "
                f"{t.clipped:>4}/{t.words:<3} "
                f"{1000 * pct(t.onset_err, 50):>8.0f}ms {t.late:>6} {t.early:>5} "
                f"{1000 * pct(t.end_err, 50):>6.0f}ms {1000 * pct(t.end_err, 90):>6.0f}ms"
            )
    print(f"\n{'detector':16} {'false starts on noise':>22} {'CPU ms per s of audio':>22}")
    for name, per in results.items():
        t = per["noise"]
        cpu = sum(x.cpu_s for x in per.values()) / max(1e-9, sum(x.audio_s for x in per.values()))
        print(f"{name:16} {t.false_starts:>12}/{t.noise_items:<9} {1000 * cpu:>22.2f}")
    print("\nfalse starts by noise kind:")
    for name, per in results.items():
        print(
            f"  {name:16} "
            + ", ".join(f"{k} {per['noise'].by_kind.get(k, 0)}" for k in NOISE_KINDS)
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
