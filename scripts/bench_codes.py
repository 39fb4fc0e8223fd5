"""Benchmark the recognisers on social-insurance codes and yes/no answers (not a test).

It is long because it builds its own test material (spliced corpus codes, line conditions) and
reports on several engines in one run.

Whole-code accuracy goes through the dialog's own path: recogniser (digits mode,
``expected_digits=10``) → hypotheses → the reset dialog's reading (best hypothesis through
:class:`assistant.language.numbers.NumberReader`, digits marked unsure from rival
hypotheses and low word scores) → digits == code. Yes/no: recogniser (yes/no mode) → best
text → ``read_yesno``.

Sets (seeded; every engine hears the same audio):

* ``codes``: 10 random digits, each a random recording of that digit by the shared corpus
  speaker (variant clips "lẻ", "linh", "mốt", "tư", "lăm", "nhăm", "bẩy" included), 150-400 ms
  gaps;
* ``pairs``: the same clips read in pairs ("mười hai", "ba mươi tư", "hai mươi mốt", "không
  năm"), 30-100 ms inside a pair, 250-500 ms between pairs;
* ``fillers``: codes with the speaker's "dạ", "số", "vâng", "rồi" before, inside and after;
* ``partial``: three to five digits while ten are expected (a code read in several turns);
* ``espeak``: espeak-ng's Northern voice reading codes digit by digit, in pairs and after "dạ,
  mã số của tôi là" (a second, synthetic voice; this model hears it badly);
* ``commands``: the corpus's other telephone commands ("cà phê", "trạm ay têm"...) in digits
  mode: nothing should be read;
* ``yesno``: the corpus's 500 telephone answers "đúng" / "không" (8 kHz), and its 150 other
  commands, which must read as neither yes nor no.

Conditions: ``clean`` (16 kHz), ``ulaw`` / ``alaw`` (8 kHz G.711 round trip, back to 16 kHz as
the runtime does), ``noisy`` (μ-law, 300-3400 Hz band, white noise at -45 dBFS).
RTF is process CPU time over audio time, decoding fed in 20 ms frames, one onnxruntime thread.

The default run (about 5 minutes on a 2-core box) uses 5 utterances per set and condition and
40 telephone clips per category; the full figures: ``--n-codes 25 --conditions
clean,ulaw,alaw,noisy --yesno-limit 0`` (about 45 minutes with both engines).
"""

from __future__ import annotations

import argparse
import csv
import io
import random
import resource
import subprocess
import sys
import time
import wave
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from assistant.audio.g711 import phone_line
from assistant.audio.resample import resample
from assistant.core.dialog import Heard
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
from assistant.language.numbers import NumberReader, YesNo

RATE = 16000
FEED = 320  # 20 ms frames, as the runtime feeds them
SPEAKER = "lephuongbg_words:lephuong"
#: The word the box says for each digit, from ``data/numbers.toml`` (the corpus names its clips so).
DIGIT_NAMES = {d: NumberReader.load().digit_word(d) for d in "0123456789"}
CONDITIONS = ("clean", "ulaw", "alaw", "noisy")

# --------------------------------------------------------------------------------------------
# Audio material
# --------------------------------------------------------------------------------------------


def read_pcm(path: Path) -> tuple[PCM, int]:
    with wave.open(str(path)) as w:
        rate = w.getframerate()
        data = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.int16)
    return data, rate


def silence(rng: random.Random, lo: float, hi: float) -> PCM:
    return np.zeros(int(RATE * rng.uniform(lo, hi)), dtype=np.int16)


@dataclass
class Corpus:
    """The corpus speaker's clips by word, and the telephone answers."""

    words: dict[str, list[PCM]] = field(default_factory=dict)  # transcript -> clips
    digits: dict[str, list[PCM]] = field(default_factory=dict)  # digit -> clips of any variant
    answers: list[tuple[Path, str]] = field(default_factory=list)  # (file, category)

    @staticmethod
    def load(root: Path) -> Corpus:
        corpus = Corpus()
        with (root / "manifest.tsv").open(encoding="utf-8") as fh:
            for row in csv.DictReader(fh, delimiter="\t"):
                path = root / row["file"]
                if row["speaker"] == SPEAKER:
                    pcm, rate = read_pcm(path)
                    if rate != RATE:
                        pcm = resample(pcm, rate, RATE)
                    corpus.words.setdefault(row["transcript"], []).append(pcm)
                    d = row["digits"]
                    if len(d) == 1 and d.isdigit() and row["category"] != "number_word":
                        corpus.digits.setdefault(d, []).append(pcm)
                elif row["category"] in ("yes", "no", "other_command"):
                    corpus.answers.append((path, row["category"]))
        return corpus

    def word(self, rng: random.Random, text: str) -> PCM:
        return rng.choice(self.words[text])


def pair_words(a: str, b: str, rng: random.Random) -> list[str]:
    """How a two-digit group is read aloud (the way Vietnamese speakers group codes)."""
    if a == "0":
        return ["không", DIGIT_NAMES[b]]
    unit = {"0": [], "1": ["một"], "4": [rng.choice(["bốn", "tư"])], "5": ["lăm"]}
    if a == "1":
        return ["mười", *unit.get(b, [DIGIT_NAMES[b]])]
    unit["1"] = ["mốt"]
    return [DIGIT_NAMES[a], "mươi", *unit.get(b, [DIGIT_NAMES[b]])]


def random_code(rng: random.Random) -> str:
    return "".join(rng.choice("0123456789") for _ in range(10))


def build_codes(corpus: Corpus, rng: random.Random, n: int) -> list[tuple[str, PCM]]:
    out = []
    for _ in range(n):
        code = random_code(rng)
        parts = [silence(rng, 0.2, 0.4)]
        for d in code:
            parts += [rng.choice(corpus.digits[d]), silence(rng, 0.15, 0.4)]
        out.append((code, np.concatenate(parts)))
    return out


def build_pairs(corpus: Corpus, rng: random.Random, n: int) -> list[tuple[str, PCM]]:
    out = []
    for _ in range(n):
        code = random_code(rng)
        parts = [silence(rng, 0.2, 0.4)]
        for i in range(0, 10, 2):
            for w in pair_words(code[i], code[i + 1], rng):
                parts += [corpus.word(rng, w), silence(rng, 0.03, 0.1)]
            parts.append(silence(rng, 0.25, 0.5))
        out.append((code, np.concatenate(parts)))
    return out


def build_fillers(corpus: Corpus, rng: random.Random, n: int) -> list[tuple[str, PCM]]:
    out = []
    for _ in range(n):
        code = random_code(rng)
        parts = [silence(rng, 0.2, 0.4)]
        for w in rng.choice([["dạ"], ["số"], ["dạ", "số"], ["vâng"], ["vâng", "số"]]):
            parts += [corpus.word(rng, w), silence(rng, 0.05, 0.2)]
        cut = rng.choice([3, 4, 5, 6])
        for i, d in enumerate(code):
            if i == cut:
                parts += [
                    corpus.word(rng, rng.choice(["dạ", "rồi", "vâng"])),
                    silence(rng, 0.1, 0.3),
                ]
            parts += [rng.choice(corpus.digits[d]), silence(rng, 0.15, 0.4)]
        if rng.random() < 0.5:
            parts += [corpus.word(rng, "rồi"), silence(rng, 0.1, 0.3)]
        out.append((code, np.concatenate(parts)))
    return out


def espeak(text: str, rate_wpm: int) -> PCM:
    """espeak-ng's Northern voice at 16 kHz; its exact digital silence gets a -70 dBFS floor."""
    wav = subprocess.run(
        ["espeak-ng", "-v", "vi", "-s", str(rate_wpm), "--stdout", text],
        capture_output=True,
        check=True,
        timeout=30,
    ).stdout
    with wave.open(io.BytesIO(wav)) as w:
        rate = w.getframerate()
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.int16)
    return resample(pcm, rate, RATE)


def build_espeak(rng: random.Random, n: int) -> list[tuple[str, PCM]]:
    out = []
    for i in range(n):
        code = random_code(rng)
        style = i % 3
        if style == 0:
            text = ", ".join(DIGIT_NAMES[d] for d in code)
        elif style == 1:
            text = ", ".join(
                " ".join(pair_words(code[j], code[j + 1], rng)) for j in range(0, 10, 2)
            )
        else:
            head = rng.choice(["dạ, mã số của tôi là", "vâng, số của em là", "dạ"])
            text = head + ", " + ", ".join(DIGIT_NAMES[d] for d in code) + rng.choice(["", " ạ"])
        pcm = espeak(text, rng.choice([130, 150]))
        out.append((code, np.concatenate([silence(rng, 0.2, 0.4), pcm, silence(rng, 0.3, 0.5)])))
    return out


def channel(pcm: PCM, condition: str, seed: int) -> PCM:
    """The audio as the recogniser gets it: at 16 kHz, after the condition's phone line."""
    if condition == "clean":
        return pcm
    audio = Audio(pcm, RATE)
    if condition == "ulaw":
        line = phone_line(audio, "ulaw")
    elif condition == "alaw":
        line = phone_line(audio, "alaw")
    elif condition == "noisy":
        line = phone_line(audio, "ulaw", band=True, noise_dbfs=-45.0, seed=seed)
    else:
        raise ValueError(condition)
    return resample(line.samples, line.rate, RATE)


# --------------------------------------------------------------------------------------------
# Running and scoring
# --------------------------------------------------------------------------------------------


def recognise(session: RecognizerSession, pcm: PCM, spec: ListenSpec) -> tuple[Recognition, float]:
    """One utterance fed in 20 ms frames; the result and the process CPU seconds it took."""
    started = time.process_time()
    session.begin(spec)
    for i in range(0, len(pcm), FEED):
        session.feed(pcm[i : i + FEED])
    result = session.end()
    return result, time.process_time() - started


def edit_distance(a: str, b: str) -> int:
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


@dataclass
class Score:
    n: int = 0
    whole: int = 0
    edits: int = 0
    digits: int = 0
    oracle: int = 0  # the code among the hypotheses
    scored: int = 0  # results with confidences
    wrong_sure: int = 0  # wrong code that the dialog would read back with no digit marked unsure
    wrong_unsure: int = 0  # wrong code with at least one digit marked unsure
    right_unsure: int = 0  # right code with a digit marked unsure
    cpu: float = 0.0
    audio: float = 0.0

    def add(self, code: str, rec: Recognition, judge: Judge, cpu: float, secs: float) -> None:
        got, unsure = judge.digits(rec)
        self.n += 1
        self.whole += got == code
        self.edits += edit_distance(got, code)
        self.digits += len(code)
        self.oracle += any(judge.reader.read_digits(h.text).digits == code for h in rec.hypotheses)
        if any(h.confidence is not None for h in rec.hypotheses):
            self.scored += 1
            self.wrong_sure += got != code and not unsure
            self.wrong_unsure += got != code and unsure
            self.right_unsure += got == code and unsure
        self.cpu += cpu
        self.audio += secs


class Judge:
    """Reads a recognition the way the reset dialog does: its digits, and whether the dialog
    marks any digit unsure (rival readings of the same length, or a digit word scored low)."""

    def __init__(self, reader: NumberReader) -> None:
        from dialogs.reset import ResetDialog

        self.reader = reader
        self._dialog = ResetDialog(reader)

    def digits(self, rec: Recognition) -> tuple[str, bool]:
        reading = self._dialog.read(Heard(rec))  # the dialog's own reading of the turn
        return (reading.digits if reading.usable else ""), bool(reading.unsure)


def pct(a: int, b: int) -> str:
    return f"{100.0 * a / b:5.1f}" if b else "   - "


# --------------------------------------------------------------------------------------------


def load_engine(name: str, threads: int) -> tuple[Recognizer, float, float]:
    started = time.perf_counter()
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    rec: Recognizer
    if name in ("onnx", "onnx-unfolded"):
        from assistant.asr.engine import OnnxRecognizer

        # onnx-unfolded: the graph as shipped, its weights dequantised on every step
        rec = OnnxRecognizer.load(threads=threads, fold_weights=name == "onnx")
    elif name == "vietasr":
        from assistant.asr.vietasr import VietAsrRecognizer

        rec = VietAsrRecognizer(sample_rate=RATE)
    elif name == "vosk":
        from assistant.asr.factory import SpeechSettings, make_recognizer

        rec = make_recognizer(SpeechSettings(asr="vosk"))
    else:
        raise SystemExit(f"unknown engine {name!r}")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    return rec, time.perf_counter() - started, rss - rss_before


@dataclass
class Item:
    """One utterance to decode in digits mode: the digits said, how many the dialog expects."""

    code: str
    pcm: PCM
    expected: int = 10


def build_partial(corpus: Corpus, rng: random.Random, n: int) -> list[Item]:
    """Three to five digits while the dialog still expects ten (a code read in parts)."""
    out = []
    for _ in range(n):
        code = random_code(rng)[: rng.choice([3, 4, 5])]
        parts = [silence(rng, 0.2, 0.4)]
        for d in code:
            parts += [rng.choice(corpus.digits[d]), silence(rng, 0.15, 0.4)]
        out.append(Item(code, np.concatenate(parts)))
    return out


def build_commands(corpus: Corpus, limit: int) -> list[Item]:
    """The corpus's other commands ("cà phê", "trạm ay têm"...) heard in digits mode: no digits."""
    out: list[Item] = []
    for path, category in corpus.answers:
        if category == "other_command" and not (limit and len(out) >= limit):
            pcm, rate = read_pcm(path)
            out.append(Item("", resample(pcm, rate, RATE)))
    return out


def bench_digits(
    engines: dict[str, Recognizer],
    sets: dict[str, tuple[list[Item], list[str]]],
    judge: Judge,
    seed: int,
    progress: Callable[[str], None],
) -> dict[tuple[str, str, str], Score]:
    scores: dict[tuple[str, str, str], Score] = {}
    for set_name, (items, conditions) in sets.items():
        for cond in conditions:
            audios = [channel(it.pcm, cond, seed + i) for i, it in enumerate(items)]
            for name, rec in engines.items():
                session = rec.open_session()
                score = scores.setdefault((name, set_name, cond), Score())
                for item, pcm in zip(items, audios, strict=True):
                    spec = ListenSpec(ListenMode.DIGITS, item.expected)
                    result, cpu = recognise(session, pcm, spec)
                    score.add(item.code, result, judge, cpu, len(pcm) / RATE)
                session.close()
                progress(f"{name:8s} {set_name:8s} {cond:6s} whole {pct(score.whole, score.n)} %")
    return scores


@dataclass
class YesNoScore:
    n: int = 0
    right: int = 0
    unclear: int = 0
    wrong: int = 0
    neg_n: int = 0
    neg_answer: int = 0  # other commands read as yes or no
    cpu: float = 0.0
    audio: float = 0.0


def bench_yesno(
    engines: dict[str, Recognizer],
    corpus: Corpus,
    reader: NumberReader,
    limit: int,
    progress: Callable[[str], None],
) -> dict[str, YesNoScore]:
    answers = corpus.answers
    if limit:  # the first ``limit`` of each category
        taken: dict[str, int] = {}
        answers = []
        for path, category in corpus.answers:
            if taken.get(category, 0) < limit:
                taken[category] = taken.get(category, 0) + 1
                answers.append((path, category))
    loaded = []
    for path, category in answers:
        pcm, rate = read_pcm(path)
        loaded.append((resample(pcm, rate, RATE), category))
    out: dict[str, YesNoScore] = {}
    for name, rec in engines.items():
        session = rec.open_session()
        score = out.setdefault(name, YesNoScore())
        for pcm, category in loaded:
            result, cpu = recognise(session, pcm, ListenSpec(ListenMode.YESNO))
            answer = reader.read_yesno(result.text) if result.hypotheses else None
            score.cpu += cpu
            score.audio += len(pcm) / RATE
            if category == "other_command":
                score.neg_n += 1
                score.neg_answer += answer is not None
                continue
            score.n += 1
            expected = YesNo.YES if category == "yes" else YesNo.NO
            if answer is None:
                score.unclear += 1
            elif answer == expected:
                score.right += 1
            else:
                score.wrong += 1
        session.close()
        progress(f"{name:8s} yesno    right {pct(score.right, score.n)} %")
    return out


#: Sets and the conditions each is measured in by default.
DEFAULT_SETS = {
    "codes": ["clean", "ulaw", "alaw", "noisy"],
    "pairs": ["ulaw", "noisy"],
    "fillers": ["ulaw"],
    "partial": ["noisy"],
    "espeak": ["ulaw"],
    "commands": ["clean"],
    "yesno": ["phone"],
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--engines", default="onnx,vietasr", help="onnx, vietasr, vosk")
    parser.add_argument("--n-codes", type=int, default=5, help="utterances per set and condition")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--threads", type=int, default=1, help="onnxruntime intra-op threads")
    parser.add_argument(
        "--sets", default=",".join(DEFAULT_SETS), help="any of " + ", ".join(DEFAULT_SETS)
    )
    parser.add_argument(
        "--conditions", default="", help="clean, ulaw, alaw, noisy for every set (default: per set)"
    )
    parser.add_argument(
        "--yesno-limit",
        type=int,
        default=40,
        help="telephone clips per category: yes, no, other command (0: all 250 + 250 + 150)",
    )
    args = parser.parse_args(argv)

    root = shared_corpus_dir()
    if root is None:
        print("shared corpus not found (../shared/corpus/real_vi_dev): nothing to measure")
        return 2
    wanted = [s for s in args.sets.split(",") if s]
    unknown = set(wanted) - set(DEFAULT_SETS)
    if unknown:
        parser.error(f"unknown sets: {sorted(unknown)}")
    override = [c for c in args.conditions.split(",") if c]
    reader = NumberReader.load()
    judge = Judge(reader)
    corpus = Corpus.load(root)
    rng = random.Random(args.seed)
    n = args.n_codes

    def items(pairs: list[tuple[str, PCM]]) -> list[Item]:
        return [Item(code, pcm) for code, pcm in pairs]

    builders: dict[str, Callable[[], list[Item]]] = {
        "codes": lambda: items(build_codes(corpus, rng, n)),
        "pairs": lambda: items(build_pairs(corpus, rng, n)),
        "fillers": lambda: items(build_fillers(corpus, rng, n)),
        "partial": lambda: build_partial(corpus, rng, n),
        "espeak": lambda: items(build_espeak(rng, n)),
        "commands": lambda: build_commands(corpus, args.yesno_limit),
    }
    sets: dict[str, tuple[list[Item], list[str]]] = {}
    for name, build in builders.items():
        if name in wanted:
            conditions = ["clean"] if name == "commands" else override or DEFAULT_SETS[name]
            sets[name] = (build(), conditions)

    def progress(line: str) -> None:
        print("  " + line, file=sys.stderr, flush=True)

    started = time.perf_counter()
    engines: dict[str, Recognizer] = {}
    loads: dict[str, tuple[float, float]] = {}
    for name in args.engines.split(","):
        rec, secs, rss = load_engine(name, args.threads)
        engines[name] = rec
        loads[name] = (secs, rss)
        progress(f"loaded {name} in {secs:.2f} s (+{rss:.0f} MB peak RSS)")

    digits = bench_digits(engines, sets, judge, args.seed, progress)
    yesno = (
        bench_yesno(engines, corpus, reader, args.yesno_limit, progress)
        if "yesno" in wanted
        else {}
    )
    report(args, digits, yesno, loads)
    print(f"\nwall time {time.perf_counter() - started:.0f} s")
    for rec in engines.values():
        rec.close()
    return 0


def report(
    args: argparse.Namespace,
    digits: dict[tuple[str, str, str], Score],
    yesno: dict[str, YesNoScore],
    loads: dict[str, tuple[float, float]],
) -> None:
    print(
        f"\n# bench_codes --engines {args.engines} --n-codes {args.n_codes} --seed {args.seed} "
        f"--threads {args.threads}"
    )
    print(
        "\n| engine | set | condition | n | whole code % | digit error % | code in N-best % "
        "| wrong, no digit unsure | wrong, flagged | right, flagged | RTF (CPU) |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for (name, set_name, cond), s in digits.items():
        flags = s.scored > 0
        if set_name == "commands":
            got_digits = s.n - s.whole
            print(
                f"| {name} | commands (no digits said) | {cond} | {s.n} | "
                f"{pct(s.whole, s.n)} (nothing read) | {got_digits} read digits | - | - | - | - | "
                f"{s.cpu / s.audio:.3f} |"
            )
            continue
        print(
            f"| {name} | {set_name} | {cond} | {s.n} | {pct(s.whole, s.n)} | "
            f"{pct(s.edits, s.digits)} | {pct(s.oracle, s.n)} | "
            f"{s.wrong_sure if flags else '-'} | {s.wrong_unsure if flags else '-'} | "
            f"{s.right_unsure if flags else '-'} | {s.cpu / s.audio:.3f} |"
        )
    if yesno:
        print(
            "\n| engine | answers | right % | unclear % | wrong % | other commands read as "
            "yes/no | RTF (CPU) |"
        )
        print("|---|---|---|---|---|---|---|")
        for name, y in yesno.items():
            print(
                f"| {name} | {y.n} | {pct(y.right, y.n)} | {pct(y.unclear, y.n)} | "
                f"{pct(y.wrong, y.n)} | {y.neg_answer} of {y.neg_n} | {y.cpu / y.audio:.3f} |"
            )
    print("\n| engine | load s | peak RSS added by loading, MB | RTF over everything (CPU) |")
    print("|---|---|---|---|")
    for name, (secs, rss) in loads.items():
        cpu = sum(s.cpu for (e, _, _), s in digits.items() if e == name)
        audio = sum(s.audio for (e, _, _), s in digits.items() if e == name)
        if name in yesno:
            cpu += yesno[name].cpu
            audio += yesno[name].audio
        print(f"| {name} | {secs:.2f} | {rss:.0f} | {cpu / audio if audio else 0:.3f} |")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(f"\npeak RSS of the whole run: {peak:.0f} MB")


if __name__ == "__main__":
    raise SystemExit(main())
