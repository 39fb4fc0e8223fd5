"""Robustness benchmark: codes and yes/no answers on voices, readings and lines we do not have.

Not a test: it prints figures. Every engine hears the same audio, and every reading goes through
the dialog's own public reading (:meth:`dialogs.reset.ResetDialog.read`), so "whole code" means
the digits the dialog would act on. Each condition but the stacked ones changes ONE thing from
the base (the corpus speaker's real digit clips, read digit by digit with 150-400 ms gaps, over
an 8 kHz μ-law line):

* voice: ``tempo`` (sox ``tempo`` 0.8-0.9 or 1.15-1.3), ``pitch`` (sox ``pitch`` ±200-300
  cents), ``formant`` (vocal tract length perturbation: the spectral envelope warped by
  0.85-0.9 or 1.1-1.15 with F0 kept, by cepstral smoothing in numpy, as sox has no formant
  effect), ``espeak`` (espeak-ng's Northern, Central and Southern voices with its variants);
* reading: ``fast`` (20-90 ms gaps), ``slow`` (150-400 ms: the base itself), ``pairs`` ("ba
  mươi tư", "mười lăm", "hai mươi mốt"), ``grouped`` (4 + 3 + 3: "hai mươi mốt, linh năm, ba,
  mười tư"; the corpus has no "trăm"), ``fillers`` ("dạ", "số", "vâng", "rồi"), ``parts`` (two
  or three parts with 0.6-1.1 s pauses, one utterance), ``paused`` (digit by digit, a pause of
  1.5-2.5 s after the 4th, 7th, 8th or 9th digit: a caller who stops to look at the card; a
  live call's turn ends on it and the dialog asks for the rest);
* damage: ``onset`` / ``tail`` (20-80 ms cut off the voiced edge of one to three words),
  ``masked`` (one word 15-20 dB softer than the others, over the pink-noise line: a soft or
  swallowed word that the noise covers, which the model hears as blank or as a trace; a check
  reported outside the tuning mean, as the word often leaves no trace at all: what counts is
  that no wrong code is read back as certain);
* line: ``alaw``, ``gsm`` (GSM 06.10 full rate through sox), ``loss`` (1-5 % of 20 ms packets
  lost, no concealment), ``pink`` (pink noise at 10-15 dB SNR), ``quiet`` (-24 dB: the corpus
  speaker is loud, -14 dBFS, so this is -38 dBFS), ``faint`` (a caller 24 dB below a talker at
  the nominal -26 dBov: -50 dBFS ±3 dB), and
  ``babble`` (several telephone speakers of the corpus at 10-15 dB SNR);
* stacked: two changes at once, a voice or a way of reading over a line (``pitch+quiet``,
  ``pitch+pink``, ``formant+gsm``, ``formant+loss``, ``tempo+pink``, ``pairs+gsm``), the way
  the unseen callers were checked: each change alone scores near 100 %, together they need not.

**Held out: ``babble``.** No parameter of the recogniser or the dialog was chosen on it (the
fill rule of :class:`assistant.asr.decoder.FillRule` was set on the other conditions); it is
reported on its own line, next to the mean of the others.

Also: ``partial`` (four digits while ten are expected: the dialog must hear four, never a filled
ten), and yes/no: the corpus's 500 telephone answers as recorded, and the same answers over the
GSM, pink-noise and babble lines (right / unclear / wrong, answers the dialog reads with
``ResetDialog.read``). RTF: process CPU time over the turns' audio for our recogniser, one
thread. Per code, also the dialog's own answer to the turn (``ResetDialog.step``): "read back
right" when it reads back exactly the code said, which is what a replayed call of the code and
then "đúng" needs to end with a password.

Every item is heard the way the box's channels hear a turn (``recognize_turn``, with the box's
``LiveSettings``): each turn comes after ``--context-s`` + ``--lead-in-s`` of the line before it
(the panel's silence over the condition's line; for a recorded answer its own first 0.25 s,
repeated), the recogniser hears it from the lead-in before the caller's speech is detected, and
the line before that as context when it is noisy enough; speech is detected by ``--vad``
(the phone line's Silero VAD by default, here at 16 kHz). Before all that, the box has heard
``PROMPT_LINE_S`` more of the line while its prompt played: the line the caller's speech must
be louder than (:meth:`assistant.audio.endpoint.Endpointer.hear_line`, as a live call does).
Every code is also heard through the box's live channel over a simulated 8 kHz line, turn end
included (:class:`LiveEars`, column "live whole %"; ``--no-live`` to skip): the replay path
never ends a turn early, so only this column sees a turn the running reading ends before the
caller is done. A turn that ends short gets the dialog's prompt for the rest, and the caller
reads on over it: "live read back right %" is the code the dialog then reads back.

    PYTHONPATH=. .venv/bin/python scripts/bench_robust.py --n 4 --yesno-limit 0

(``--n`` codes per condition; ``--yesno-limit`` answers per category, 0 for all.) Each
condition draws its codes and audio from its own random stream (the seed and the condition's
name), so adding or leaving out a condition does not change another condition's items.
"""

from __future__ import annotations

import argparse
import itertools
import random
import subprocess
import sys
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench_codes import (
    DIGIT_NAMES,
    RATE,
    Corpus,
    Judge,
    edit_distance,
    load_engine,
    pair_words,
    pct,
    random_code,
    read_pcm,
    silence,
)

from assistant.audio.endpoint import EndpointSettings
from assistant.audio.g711 import phone_line
from assistant.audio.resample import resample
from assistant.audio.vad import VoiceActivity, make_vad
from assistant.call.channels.live import GrammarJudge, LiveChannel, LiveSettings
from assistant.call.channels.replay import recognize_turn
from assistant.call.prompt_voice import PromptVoice
from assistant.call.runtime import SayResult
from assistant.core.dialog import Event, Heard, Listen, Say
from assistant.core.paths import shared_corpus_dir
from assistant.core.ports import (
    PCM,
    Audio,
    ListenMode,
    ListenSpec,
    Recognition,
    Recognizer,
    RecognizerSession,
)
from assistant.core.settings import VAD_ENGINES
from assistant.language.numbers import NumberReader
from assistant.language.prompts import Prompts
from assistant.testing.audio import FakeSynthesizer
from assistant.testing.media import ScriptedMedia, Silence, Speak
from dialogs.reset import Phase, ResetDialog, ResetState

HELD_OUT = "babble"
#: Conditions reported on their own, outside the tuning mean: a masked word often leaves no trace
#: at all in the model's output, so what counts there is that the dialog says it is not sure
#: (or asks for the rest) instead of reading a wrong code back as certain.
CHECKS = ("masked",)
#: the line heard while the prompt played, before the turn: the endpointer's line estimate
PROMPT_LINE_S = EndpointSettings().noise_window_s
FloatArray = npt.NDArray[np.float64]

# --------------------------------------------------------------------------------------------
# Perturbations
# --------------------------------------------------------------------------------------------


def sox(pcm: PCM, *effects: str, rate_in: int = RATE) -> PCM:
    """Run sox effects over 16-bit mono audio (raw through pipes), out at 16 kHz. ``-R``: sox
    dithers its 16-bit output from a random seed unless asked to repeat itself, and without it
    one panel seed gave different audio, and different readings, from one run to the next."""
    raw = ["-t", "raw", "-e", "signed", "-b", "16", "-c", "1"]
    cmd = ["sox", "-V1", "-R", *raw, "-r", str(rate_in), "-", *raw, "-r", str(RATE), "-", *effects]
    out = subprocess.run(cmd, input=pcm.astype("<i2").tobytes(), capture_output=True, check=True)
    return np.frombuffer(out.stdout, dtype="<i2").astype(np.int16)


def gsm_round_trip(pcm8k: PCM) -> PCM:
    """GSM 06.10 full rate at 8 kHz: encoded and decoded by sox."""
    raw = ["-t", "raw", "-e", "signed", "-b", "16", "-c", "1", "-r", "8000"]
    gsm = ["-t", "gsm", "-r", "8000", "-c", "1"]
    enc = subprocess.run(
        ["sox", "-V1", "-R", *raw, "-", *gsm, "-"],
        input=pcm8k.astype("<i2").tobytes(),
        capture_output=True,
        check=True,
    ).stdout
    dec = subprocess.run(
        ["sox", "-V1", "-R", *gsm, "-", *raw, "-"], input=enc, capture_output=True, check=True
    ).stdout
    return np.frombuffer(dec, dtype="<i2").astype(np.int16)[: len(pcm8k)]


def active_power(pcm: PCM) -> float:
    """Mean power of the 20 ms frames within 13 dB of the loudest (the speech)."""
    x = pcm.astype(np.float64)
    frames = x[: len(x) // 320 * 320].reshape(-1, 320)
    e = (frames**2).mean(axis=1)
    if not len(e) or e.max() <= 0:
        return 0.0
    return float(e[e > 0.05 * e.max()].mean())


def pink_noise(n: int, rng: np.random.Generator) -> FloatArray:
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.arange(len(spec), dtype=np.float64)
    f[0] = 1.0
    return np.fft.irfft(spec / np.sqrt(f), n)


def add_noise(pcm: PCM, noise: FloatArray, snr_db: float) -> PCM:
    p_n = float((noise**2).mean()) or 1.0
    scaled = noise * np.sqrt(active_power(pcm) / p_n / 10 ** (snr_db / 10))
    mixed: PCM = np.clip(pcm.astype(np.float64) + scaled, -32768, 32767).astype(np.int16)
    return mixed


def babble_noise(n: int, talkers: list[PCM], rng: random.Random) -> FloatArray:
    """Five to seven telephone talkers of the corpus, each looped from a random offset."""
    out = np.zeros(n)
    for clip in rng.sample(talkers, rng.randint(5, 7)):
        x = clip.astype(np.float64)
        x /= np.sqrt(active_power(clip)) or 1.0
        reps = np.tile(np.concatenate([x, np.zeros(rng.randint(800, 4000))]), n // len(x) + 2)
        start = rng.randrange(len(reps) - n)
        out += reps[start : start + n]
    return out


def formant_shift(pcm: PCM, alpha: float) -> PCM:
    """Vocal tract length perturbation: each STFT frame's cepstrally smoothed envelope warped
    by ``alpha`` (the harmonics, so F0, kept), overlap-added with the original phase."""
    x = pcm.astype(np.float64)
    n, hop, lifter = 512, 128, 30
    win = np.hanning(n)
    pad = np.concatenate([np.zeros(n), x, np.zeros(n)])
    out = np.zeros(len(pad))
    norm = np.zeros(len(pad))
    freqs = np.arange(n // 2 + 1, dtype=np.float64)
    for i in range((len(pad) - n) // hop + 1):
        spec = np.fft.rfft(pad[i * hop : i * hop + n] * win)
        cep = np.fft.irfft(np.log(np.abs(spec) + 1e-9), n)
        cep[lifter : n - lifter] = 0.0
        env = np.fft.rfft(cep, n).real
        spec = spec * np.exp(np.interp(freqs / alpha, freqs, env) - env)
        out[i * hop : i * hop + n] += np.fft.irfft(spec, n) * win
        norm[i * hop : i * hop + n] += win**2
    y = (out / np.maximum(norm, 1e-6))[n : n + len(x)]
    peak = float(np.abs(y).max()) or 1.0
    return (y * min(1.0, 32000 / peak)).astype(np.int16)


def clip_word(pcm: PCM, rng: random.Random, where: str) -> PCM:
    """20-80 ms cut off the word's voiced onset or tail (edges found by energy)."""
    x = pcm.astype(np.float64)
    e = (x[: len(x) // 160 * 160].reshape(-1, 160) ** 2).mean(axis=1)
    on: npt.NDArray[np.intp] = (
        np.nonzero(e > 0.02 * e.max())[0] if len(e) and e.max() > 0 else np.zeros(0, np.intp)
    )
    if not len(on):
        return pcm
    a, b = int(on[0]) * 160, int(on[-1] + 1) * 160
    cut = int(RATE * rng.uniform(0.02, 0.08))
    return pcm[min(a + cut, b - 160) :] if where == "onset" else pcm[: max(b - cut, a + 160)]


def soften(pcm: PCM, rng: random.Random) -> PCM:
    """The word 15-20 dB softer."""
    gain = 10 ** (-rng.uniform(15, 20) / 20)
    return (pcm.astype(np.float64) * gain).astype(np.int16)


def espeak(text: str, voice: str, wpm: int, pitch: int) -> PCM:
    wav = subprocess.run(
        ["espeak-ng", "-v", voice, "-s", str(wpm), "-p", str(pitch), "--stdout", text],
        capture_output=True,
        check=True,
        timeout=30,
    ).stdout
    import io
    import wave

    with wave.open(io.BytesIO(wav)) as w:
        rate = w.getframerate()
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.int16)
    return resample(pcm, rate, RATE)


ESPEAK_VOICES = ("vi", "vi+m3", "vi+f2", "vi-vn-x-central", "vi-vn-x-south", "vi-vn-x-south+f4")


# --------------------------------------------------------------------------------------------
# Readings
# --------------------------------------------------------------------------------------------


@dataclass
class Panel:
    corpus: Corpus
    rng: random.Random
    nrng: np.random.Generator
    talkers: list[PCM] = field(default_factory=list)

    def reseed(self, seed: int, stream: str) -> None:
        """Draw from now on from ``stream``'s own random sequence for ``seed``."""
        self.rng = random.Random(f"{seed}:{stream}")
        self.nrng = np.random.default_rng([seed, zlib.crc32(stream.encode())])

    def digits(self, code: str, gap: tuple[float, float] = (0.15, 0.4), damage: str = "") -> PCM:
        rng = self.rng
        hit = set(rng.sample(range(len(code)), rng.randint(1, 3))) if damage else set()
        if damage == "masked":
            hit = {rng.randrange(len(code))}
        parts = [silence(rng, 0.2, 0.4)]
        for i, d in enumerate(code):
            clip = rng.choice(self.corpus.digits[d])
            if i in hit:
                clip = soften(clip, rng) if damage == "masked" else clip_word(clip, rng, damage)
            parts += [clip, silence(rng, *gap)]
        return np.concatenate(parts)

    def words(
        self, groups: list[list[str]], inner: tuple[float, float], outer: tuple[float, float]
    ) -> PCM:
        rng = self.rng
        parts = [silence(rng, 0.2, 0.4)]
        for group in groups:
            for w in group:
                parts += [self.corpus.word(rng, w), silence(rng, *inner)]
            parts.append(silence(rng, *outer))
        return np.concatenate(parts)

    def pair(self, a: str, b: str) -> list[str]:
        """A pair as read aloud, a leading 0 as "linh" or "không" ("linh năm", "không tư")."""
        if a == "0":
            unit = {"4": ["tư"], "5": ["lăm"]}.get(b, [DIGIT_NAMES[b]])
            return [self.rng.choice(["linh", "không"]), *unit]
        return pair_words(a, b, self.rng)

    def build(self, cond: str, code: str) -> PCM:
        rng = self.rng
        if "+" in cond:  # stacked: the voice or reading here, the line in :meth:`line`
            return self.build(cond.split("+", maxsplit=1)[0], code)
        if cond == "fast":
            return self.digits(code, (0.02, 0.09))
        if cond in ("onset", "tail", "masked"):
            return self.digits(code, damage=cond)
        if cond == "pairs":
            pairs = [pair_words(code[i], code[i + 1], rng) for i in range(0, 10, 2)]
            return self.words(pairs, (0.03, 0.1), (0.25, 0.5))
        if cond == "grouped":  # 4 + 3 + 3: two pairs, then a digit and a pair, twice
            groups = [self.pair(code[0], code[1]), self.pair(code[2], code[3])]
            groups += [[DIGIT_NAMES[code[4]], *self.pair(code[5], code[6])]]
            groups += [[DIGIT_NAMES[code[7]], *self.pair(code[8], code[9])]]
            return self.words(groups, (0.03, 0.1), (0.25, 0.5))
        if cond == "fillers":
            head = rng.choice([["dạ"], ["số"], ["dạ", "số"], ["vâng", "số"]])
            cut = rng.choice([3, 4, 5, 6])
            seq = [*head, *[DIGIT_NAMES[d] for d in code[:cut]], rng.choice(["dạ", "rồi", "vâng"])]
            seq += [DIGIT_NAMES[d] for d in code[cut:]]
            return self.words([[w] for w in seq], (0.0, 0.0), (0.15, 0.4))
        if cond == "parts":
            cuts = sorted(rng.sample(range(2, 9), rng.choice([1, 2])))
            bounds = [0, *cuts, 10]
            pieces = [self.digits(code[a:b]) for a, b in itertools.pairwise(bounds)]
            out: list[PCM] = []
            for p in pieces:
                out += [p, silence(rng, 0.4, 0.8)]  # + the piece's own 0.15-0.4 s tail
            return np.concatenate(out)
        if cond == "paused":  # the caller stops to look at the card, then reads the rest
            cut = rng.choice([4, 7, 8, 9])
            pause = silence(rng, 1.5, 2.5)
            return np.concatenate([self.digits(code[:cut]), pause, self.digits(code[cut:])])
        if cond == "espeak":
            style = rng.randrange(3)
            if style == 0:
                text = ", ".join(DIGIT_NAMES[d] for d in code)
            elif style == 1:
                text = ", ".join(
                    " ".join(pair_words(code[j], code[j + 1], rng)) for j in range(0, 10, 2)
                )
            else:
                text = "dạ, mã số của tôi là, " + ", ".join(DIGIT_NAMES[d] for d in code)
            voice = rng.choice(ESPEAK_VOICES)
            pcm = espeak(text, voice, rng.choice([130, 150, 170]), rng.choice([35, 50, 65]))
            return np.concatenate([silence(rng, 0.2, 0.4), pcm, silence(rng, 0.3, 0.5)])
        pcm = self.digits(code)
        if cond == "tempo":
            factor = rng.choice([rng.uniform(0.8, 0.9), rng.uniform(1.15, 1.3)])
            return sox(pcm, "tempo", "-s", f"{factor:.3f}")
        if cond == "pitch":
            return sox(pcm, "pitch", str(rng.choice([-300, -200, 200, 300])))
        if cond == "formant":
            return formant_shift(pcm, rng.choice([0.85, 0.9, 1.1, 1.15]))
        return pcm  # slow (the base), and every line condition

    def line(self, pcm: PCM, cond: str) -> PCM:
        """The audio as the recogniser gets it: 16 kHz, after the condition's line."""
        rng = self.rng
        cond = cond.rsplit("+", maxsplit=1)[-1]  # stacked: the line part
        if cond == "gsm":
            return resample(gsm_round_trip(resample(pcm, RATE, 8000)), 8000, RATE)
        if cond == "quiet":
            pcm = (pcm.astype(np.float64) * 10 ** (-24 / 20)).astype(np.int16)
        elif cond == "faint":  # 24 dB below a talker at the nominal -26 dBov, +-3 dB
            level = 10 * np.log10(active_power(pcm) / 32768.0**2)
            gain = -50.0 + rng.uniform(-3, 3) - level
            pcm = (pcm.astype(np.float64) * 10 ** (gain / 20)).astype(np.int16)
        elif cond in ("pink", "masked"):
            pcm = add_noise(pcm, pink_noise(len(pcm), self.nrng), rng.uniform(10, 15))
        elif cond == "babble":
            pcm = add_noise(pcm, babble_noise(len(pcm), self.talkers, rng), rng.uniform(10, 15))
        out = phone_line(Audio(pcm, RATE), "alaw" if cond == "alaw" else "ulaw")
        samples = out.samples
        if cond == "loss":
            samples = samples.copy()
            frac = rng.uniform(0.01, 0.05)
            step = out.rate // 50
            for i in range(0, len(samples), step):
                if rng.random() < frac:
                    samples[i : i + step] = 0
        return resample(samples, out.rate, RATE)

    def over_line(self, before: PCM, pcm: PCM, cond: str) -> PCM:
        """The line before the turn (``before``: its noise, its losses) and the turn, over the
        condition's line, as one recording: the box hears it as a live call hears its line
        (:func:`hear`)."""
        return self.line(np.concatenate([before, pcm]), cond)


def line_before(pcm: PCM, seconds: float) -> PCM:
    """``seconds`` of a recording's own line before its speech: its first 0.25 s, repeated
    (the corpus's answers start 0.4-0.9 s before the word)."""
    n = round(seconds * RATE)
    head = pcm[: RATE // 4]
    if n <= 0 or not len(head):
        return np.zeros(0, dtype=np.int16)
    return np.tile(head, n // len(head) + 1)[:n]


def hear(
    session: RecognizerSession,
    pcm: PCM,
    spec: ListenSpec,
    settings: LiveSettings,
    vad: Callable[[int], VoiceActivity] | None,
) -> tuple[Recognition, float]:
    """One recording heard as the box's channels hear a turn (:func:`assistant.call.channels.
    replay.recognize_turn`: its first ``PROMPT_LINE_S`` as the line heard during the prompt,
    the lead-in from the caller's first speech, the line before it as context; speech detected
    by a fresh ``vad`` stream); the result and the process CPU seconds it took (the detector's
    included)."""
    started = time.process_time()
    detector = vad(RATE) if vad is not None else None
    prompt = round(PROMPT_LINE_S * RATE)
    event = recognize_turn(
        session,
        Audio(pcm[prompt:], RATE),
        spec,
        chunk_s=0.02,
        settings=settings,
        vad=detector,
        line=pcm[:prompt],
    )
    result = event.recognition if isinstance(event, Heard) else Recognition()
    return result, time.process_time() - started


#: the phone line's rate, at which a live call's channel hears its turns
LINE_RATE = 8000
#: the prompt a live channel plays before it listens for a code
PROMPT = "ask_code"


#: turns a live call's dialog is followed for after the first one (LiveEars)
FOLLOW_TURNS = 3


@dataclass(frozen=True)
class LiveEars:
    """Hears a code the way a SIP call's channel does, turn end included: the box's
    :class:`~assistant.call.channels.live.LiveChannel` over a simulated 8 kHz line (time as
    data: nothing sleeps), with the grammar's early end (:class:`GrammarJudge`) and the
    detector of ``--vad``. The channel first plays a prompt over the recording's first
    ``PROMPT_LINE_S`` (not interruptible), so that it has heard the line while it spoke, as
    a call's channel has when it starts to listen. What :func:`hear` leaves out: a turn that
    the running reading ends before the caller is done.

    Such a turn is not the end of the call: the dialog then asks for the rest ("Quý khách đã
    đọc 7 chữ số. Xin đọc tiếp 3 chữ số còn lại"), and a caller who only paused between the
    parts of the code reads on over that prompt. So the ears also follow the dialog: its
    prompts are played as the call's runtime plays them (interruptible before a listen: the
    caller's speech stops them), the recording going on underneath, and its next turn is
    heard, at most ``FOLLOW_TURNS`` of them, until it reads a code back (column "live read
    back right %")."""

    reader: NumberReader
    settings: LiveSettings
    voice: PromptVoice

    @staticmethod
    def load(reader: NumberReader, settings: LiveSettings) -> LiveEars:
        prompts = Prompts.load()
        # a stand-in voice whose one prompt lasts the panel's prompt time (PROMPT_LINE_S)
        chars = sum(1 for c in prompts.text(Say(PROMPT)) if not c.isspace())
        synth = FakeSynthesizer(LINE_RATE, seconds_per_char=PROMPT_LINE_S / max(1, chars))
        return LiveEars(reader, settings, PromptVoice(prompts, synth, LINE_RATE))

    def hear(
        self,
        session: RecognizerSession,
        rate: int,
        pcm: PCM,
        spec: ListenSpec,
        vad: Callable[[int], VoiceActivity] | None,
        dialog: ResetDialog,
        state: ResetState,
    ) -> tuple[Recognition, str | None]:
        """``pcm`` (the panel's 16 kHz recording, line before the turn included) as the
        line delivers it, heard by a live channel listening for ``spec``'s digits; and the
        code ``dialog``, from ``state``, reads back once it has followed its own prompts
        (None: it reads nothing back)."""
        media = ScriptedMedia([Speak(resample(pcm, RATE, LINE_RATE)), Silence(4.0)])
        channel = LiveChannel(
            media,
            session,
            rate,
            self.voice,
            settings=self.settings,
            clock=media.clock,
            judge=GrammarJudge(self.reader),
            vad=vad,
        )
        channel.say(Say(PROMPT), interruptible=False)
        event: Event = channel.listen(Listen.digits(spec.expected_digits))
        first = event.recognition if isinstance(event, Heard) else Recognition()
        for _ in range(FOLLOW_TURNS):
            state, actions = dialog.step(state, event)
            listens = [a for a in actions if isinstance(a, Listen)]
            if state.phase is not Phase.COLLECT or not listens or not isinstance(event, Heard):
                break
            for action in actions:  # as the runtime: the prompts after an interrupted one skipped
                if isinstance(action, Say):
                    said = channel.say(action, interruptible=True)
                    if said is not SayResult.DONE:
                        break
            event = channel.listen(listens[0])
        return first, state.candidate if state.phase is Phase.CONFIRM else None


FAMILIES: dict[str, tuple[str, ...]] = {
    "voice": ("tempo", "pitch", "formant", "espeak"),
    "reading": ("fast", "slow", "pairs", "grouped", "fillers", "parts", "paused"),
    "damage": ("onset", "tail", "masked"),
    "line": ("alaw", "gsm", "loss", "pink", "quiet", "faint"),
    # two changes at once, as the unseen callers were checked: another voice (or way of
    # reading) over a real line
    "stacked": (
        "pitch+quiet",
        "pitch+pink",
        "formant+gsm",
        "formant+loss",
        "tempo+pink",
        "pairs+gsm",
    ),
    "held out": (HELD_OUT,),
}


# --------------------------------------------------------------------------------------------
# Running and scoring
# --------------------------------------------------------------------------------------------


@dataclass
class Tally:
    n: int = 0
    whole: int = 0
    edits: int = 0
    digits: int = 0
    short: int = 0  # fewer digits than said
    wrong_sure: int = 0  # a wrong code with no digit marked unsure
    wrong_whole_sure: int = 0  # of those, as many digits as said: read back as certain
    right_unsure: int = 0  # the right code, a digit marked unsure (read back as unsure)
    read_back: int = 0  # the dialog's answer to the turn: a read-back of exactly the right code
    live_whole: int = 0  # the right code, heard as a live call's channel hears it (LiveEars)
    live_n: int = 0
    live_back: int = 0  # ... and the dialog, its prompts for the rest followed, reads it back
    cpu: float = 0.0
    audio: float = 0.0


def run_codes(
    engines: dict[str, Recognizer],
    items: list[tuple[str, str, PCM, int, float]],
    judge: Judge,
    dialog: ResetDialog,
    settings: LiveSettings,
    vad: Callable[[int], VoiceActivity] | None,
    progress: Callable[[str], None],
    live: LiveEars | None = None,
) -> dict[tuple[str, str], Tally]:
    out: dict[tuple[str, str], Tally] = {}
    first_turn = ResetState(phase=Phase.COLLECT, caller="0912345678", attempts=1)
    for name, rec in engines.items():
        session = rec.open_session()
        for cond, code, pcm, expected, secs in items:
            spec = ListenSpec(ListenMode.DIGITS, expected)
            result, cpu = hear(session, pcm, spec, settings, vad)
            got, unsure = judge.digits(result)
            t = out.setdefault((name, cond), Tally())
            t.n += 1
            t.whole += got == code
            t.edits += edit_distance(got, code)
            t.digits += len(code)
            t.short += len(got) < len(code)
            t.wrong_sure += got != code and not unsure
            t.wrong_whole_sure += got != code and len(got) == len(code) and not unsure
            t.right_unsure += got == code and bool(unsure)
            # what a replayed call (the code, then "đúng") hinges on: the right code read back
            state, _ = dialog.step(first_turn, Heard(result))
            t.read_back += state.phase is Phase.CONFIRM and state.candidate == code
            t.cpu += cpu
            t.audio += secs
            if live is not None:
                heard, back = live.hear(
                    session, rec.sample_rate, pcm, spec, vad, dialog, first_turn
                )
                t.live_whole += judge.digits(heard)[0] == code
                t.live_back += back == code
                t.live_n += 1
        session.close()
        progress(f"{name}: codes done")
    return out


@dataclass
class Answers:
    n: int = 0
    right: int = 0
    unclear: int = 0
    wrong: int = 0
    cpu: float = 0.0
    audio: float = 0.0
    wrong_files: list[str] = field(default_factory=list)  # corpus file names heard wrong


def run_yesno(
    engines: dict[str, Recognizer],
    items: list[tuple[str, str, PCM, str, float]],
    judge: ResetDialog,
    settings: LiveSettings,
    vad: Callable[[int], VoiceActivity] | None,
    progress: Callable[[str], None],
) -> dict[tuple[str, str], Answers]:
    out: dict[tuple[str, str], Answers] = {}
    for name, rec in engines.items():
        session = rec.open_session()
        for cond, truth, pcm, file, secs in items:
            result, cpu = hear(session, pcm, ListenSpec(ListenMode.YESNO), settings, vad)
            answer = judge.read(Heard(result)).answer
            a = out.setdefault((name, cond), Answers())
            a.n += 1
            a.right += answer == truth
            a.unclear += answer is None
            a.wrong += answer is not None and answer != truth
            if answer is not None and answer != truth:
                best = result.hypotheses[0] if result.hypotheses else None
                heard = "-"
                if best is not None:
                    score = "" if best.confidence is None else f" {best.confidence:.2f}"
                    heard = f"{best.text!r}{score}"
                a.wrong_files.append(f"{file} ({heard})")
            a.cpu += cpu
            a.audio += secs
        session.close()
        progress(f"{name}: yes/no done")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--engines", default="onnx,vietasr")
    parser.add_argument("--n", type=int, default=4, help="codes per condition")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--yesno-limit", type=int, default=40, help="answers per category (0: all)")
    parser.add_argument(
        "--yesno-lines", default="gsm,pink,babble", help="lines the answers are also heard over"
    )
    parser.add_argument("--conditions", default="", help="a subset of the conditions")
    parser.add_argument(
        "--context-s",
        type=float,
        default=LiveSettings().context_s,
        help="seconds of the line before a turn heard as context, as the box does (0: none)",
    )
    parser.add_argument(
        "--lead-in-s",
        type=float,
        default=LiveSettings().lead_in_s,
        help="a turn is heard from this long before the caller's speech starts, as the box does",
    )
    parser.add_argument(
        "--vad",
        choices=VAD_ENGINES,
        default="silero",
        help="voice-activity detector a turn is heard with, as on the phone line",
    )
    parser.add_argument(
        "--live",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also hear every code as a SIP call's channel does, turn end included",
    )
    args = parser.parse_args(argv)

    root = shared_corpus_dir()
    if root is None:
        print("shared corpus not found (../shared/corpus/real_vi_dev): nothing to measure")
        return 2
    corpus = Corpus.load(root)
    panel = Panel(corpus, random.Random(args.seed), np.random.default_rng(args.seed))
    answers = []
    for path, category in corpus.answers:
        pcm, rate = read_pcm(path)
        pcm = resample(pcm, rate, RATE)
        if category == "other_command":
            panel.talkers.append(pcm)
        else:
            answers.append(("yes" if category == "yes" else "no", pcm, path.name))
    panel.talkers += [a for _, a, _ in answers[::25]]
    wanted = [c for c in args.conditions.split(",") if c] or [
        c for family in FAMILIES.values() for c in family
    ]

    def progress(line: str) -> None:
        print("  " + line, file=sys.stderr, flush=True)

    started = time.perf_counter()
    settings = LiveSettings(lead_in_s=args.lead_in_s, context_s=args.context_s)
    # the line the box has heard when speech starts: the prompt's time, context, lead-in
    before_s = PROMPT_LINE_S + args.context_s + args.lead_in_s
    quiet = np.zeros(round(before_s * RATE), dtype=np.int16)  # the panel's silence before
    items: list[tuple[str, str, PCM, int, float]] = []
    for cond in wanted:
        panel.reseed(args.seed, cond)
        for _ in range(args.n):
            code = random_code(panel.rng)
            pcm = panel.build(cond, code)
            items.append((cond, code, panel.over_line(quiet, pcm, cond), 10, len(pcm) / RATE))
    panel.reseed(args.seed, "partial")
    for _ in range(args.n):
        code = random_code(panel.rng)[:4]
        pcm = panel.digits(code)
        items.append(("partial", code, panel.over_line(quiet, pcm, "slow"), 10, len(pcm) / RATE))
    if args.yesno_limit:
        picked = [a for a in answers if a[0] == "yes"][: args.yesno_limit]
        picked += [a for a in answers if a[0] == "no"][: args.yesno_limit]
    else:
        picked = answers
    yesno_items: list[tuple[str, str, PCM, str, float]] = []
    for truth, pcm, name in picked:
        turn = np.concatenate([line_before(pcm, before_s), pcm])
        yesno_items.append(("as recorded", truth, turn, name, len(pcm) / RATE))
    for cond in [c for c in args.yesno_lines.split(",") if c]:
        panel.reseed(args.seed, f"answers over {cond}")
        for truth, pcm, name in picked[::5]:
            turn = panel.over_line(line_before(pcm, before_s), pcm, cond)
            yesno_items.append((cond, truth, turn, name, len(pcm) / RATE))
    progress(f"built {len(items)} codes and {len(yesno_items)} answers")

    reader = NumberReader.load()
    judge = Judge(reader)
    dialog = ResetDialog(reader)  # its public reading, for the answers
    engines: dict[str, Recognizer] = {}
    for name in args.engines.split(","):
        engines[name], secs, _ = load_engine(name, 1)
        progress(f"loaded {name} in {secs:.1f} s")
    vad = make_vad(args.vad, RATE)
    live = LiveEars.load(reader, settings) if args.live else None
    codes = run_codes(engines, items, judge, dialog, settings, vad, progress, live)
    yesno = run_yesno(engines, yesno_items, dialog, settings, vad, progress)
    report(args, engines, wanted, codes, yesno)
    print(f"\nwall time {time.perf_counter() - started:.0f} s")
    for rec in engines.values():
        rec.close()
    return 0


def report(
    args: argparse.Namespace,
    engines: dict[str, Recognizer],
    wanted: list[str],
    codes: dict[tuple[str, str], Tally],
    yesno: dict[tuple[str, str], Answers],
) -> None:
    names = list(engines)
    print(
        f"\n# bench_robust --engines {args.engines} --n {args.n} --seed {args.seed} "
        f"--yesno-limit {args.yesno_limit} --context-s {args.context_s} "
        f"--lead-in-s {args.lead_in_s} --vad {args.vad}  (held out: {HELD_OUT})"
    )
    head = " | ".join(
        f"{n} whole % | {n} DER % | {n} short | {n} wrong, sure | {n} right, unsure | "
        f"{n} read back right % | {n} live whole % | {n} live read back right %"
        for n in names
    )
    print(f"\n| family | condition | n | {head} | onnx RTF |")
    print("|---|---|---|" + "---|" * (8 * len(names)) + "---|")
    for family, conds in FAMILIES.items():
        for cond in conds:
            if cond not in wanted or (names[0], cond) not in codes:
                continue
            cells = []
            for n in names:
                t = codes[n, cond]
                cells.append(
                    f"{pct(t.whole, t.n)} | {pct(t.edits, t.digits)} | {t.short} | "
                    f"{t.wrong_sure} | {t.right_unsure} | {pct(t.read_back, t.n)} | "
                    f"{pct(t.live_whole, t.live_n)} | {pct(t.live_back, t.live_n)}"
                )
            o = codes.get(("onnx", cond))
            rtf = f"{o.cpu / o.audio:.3f}" if o and o.audio else "-"
            print(
                f"| {family} | {cond} | {codes[names[0], cond].n} | {' | '.join(cells)} | {rtf} |"
            )
    for n in names:
        tuned = [
            codes[n, c] for c in wanted if c != HELD_OUT and c not in CHECKS and (n, c) in codes
        ]
        if tuned:
            whole = sum(t.whole for t in tuned) / sum(t.n for t in tuned)
            back = sum(t.read_back for t in tuned) / sum(t.n for t in tuned)
            live_n = sum(t.live_n for t in tuned)
            live = (
                f", as a live call's channel hears them "
                f"{pct(sum(t.live_whole for t in tuned), live_n).strip()} %, read back right "
                f"after the dialog's prompts for the rest "
                f"{pct(sum(t.live_back for t in tuned), live_n).strip()} %"
                if live_n
                else ""
            )
            print(
                f"\n{n}: whole codes over the tuning conditions {100 * whole:.1f} % (read back "
                f"right {100 * back:.1f} %{live})",
                end="",
            )
        if (n, HELD_OUT) in codes:
            h = codes[n, HELD_OUT]
            print(f"; held-out {HELD_OUT} {pct(h.whole, h.n).strip()} % (n={h.n})", end="")
            if h.live_n:
                print(
                    f" (live {pct(h.live_whole, h.live_n).strip()} %, read back right "
                    f"{pct(h.live_back, h.live_n).strip()} %)",
                    end="",
                )
        for check in CHECKS:
            if (n, check) in codes:
                m = codes[n, check]
                print(
                    f"; {check} (outside the mean): whole {m.whole} of {m.n}, short {m.short}, "
                    f"wrong read back as certain {m.wrong_whole_sure}",
                    end="",
                )
        if (n, "partial") in codes:
            p = codes[n, "partial"]
            print(f"; four digits read (10 expected) heard as those four: {p.whole} of {p.n}")
    print("\n| engine | answers | n | right % | unclear % | wrong |")
    print("|---|---|---|---|---|---|")
    for (n, cond), a in yesno.items():
        print(f"| {n} | {cond} | {a.n} | {pct(a.right, a.n)} | {pct(a.unclear, a.n)} | {a.wrong} |")
    for (n, cond), a in yesno.items():
        if a.wrong_files:
            print(f"  {n}, {cond}: heard wrong: {', '.join(a.wrong_files)}")
    for engine in (n for n in names if n.startswith("onnx")):
        cpu = sum(t.cpu for (n, _), t in codes.items() if n == engine)
        cpu += sum(a.cpu for (n, _), a in yesno.items() if n == engine)
        audio = sum(t.audio for (n, _), t in codes.items() if n == engine)
        audio += sum(a.audio for (n, _), a in yesno.items() if n == engine)
        if audio:
            print(
                f"\n{engine} real-time factor over everything (process CPU, one thread): "
                f"{cpu / audio:.3f}"
            )


if __name__ == "__main__":
    raise SystemExit(main())
