"""Vosk (PyPI ``vosk==0.3.45``) behind the :class:`Recognizer` port.

It is long because the model-folder checks, the grammar building and Vosk's result parsing are all
specific to this one engine.

The model is a Vosk model directory: ``asr_models/<name>`` (default
``vosk-model-small-vn-0.4``, fetched by ``python scripts/download_models.py``) or any path.

* **Grammars.** In digit and yes/no turns the decoder is restricted to the words of that mode
  (from :class:`assistant.language.numbers.NumberReader`, or lists given to the constructor), plus
  ``[unk]`` when the model has it. Words the model does not know are left out with a warning
  (Vosk would ignore them, and an empty grammar crashes it). Free turns use no grammar. Models
  with a static graph (``HCLG.fst`` only) cannot take a grammar: they decode freely, with a
  warning at load.
* **Reuse.** A new ``KaldiRecognizer`` stalls at its first speech (0.7-0.9 s per the notes,
  up to 2.5 s without a grammar on the big Korean graph; under 0.1 s with a grammar), so each
  session keeps one per mode and calls ``Reset()`` between utterances. Vosk keeps its speaker
  adaptation across ``Reset()``, so recognisers are not shared between calls (one caller's
  voice does not tune the next call).
* **Pieces.** Vosk's endpointer finalises pieces in the middle of a slowly read code; every
  ``Result()`` is kept and joined with ``FinalResult()`` at :meth:`VoskSession.end`.
* **Confidences.** With ``max_alternatives`` > 1 Vosk returns an N-best list whose
  ``confidence`` is the total log score of each path. Each piece's list is turned into posteriors
  with a softmax over those scores (so the alternatives of a piece sum to 1: a posterior
  *relative to the alternatives returned*; on the Korean model the top-two softmax matches Vosk's
  own word posterior). The pieces are then combined as independent choices: a hypothesis of the
  whole utterance has the product of its pieces' posteriors, hypotheses with the same text are
  merged, and the best ``max_alternatives`` are returned. With ``max_alternatives`` <= 1 there is
  one hypothesis with per-word confidences (Vosk's MBR word posteriors, ``SetWords``) and a
  hypothesis confidence equal to its weakest word's.
"""

from __future__ import annotations

import copy
import heapq
import json
import logging
import math
import re
import time
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import vosk

from assistant.asr.session import LoadInfo, SessionGuard
from assistant.asr.session import peak_rss_mb as _peak_rss_mb
from assistant.core.errors import RecognizerError
from assistant.core.paths import models_dir
from assistant.core.ports import PCM, Hypothesis, ListenMode, ListenSpec, Recognition
from assistant.language.numbers import NumberReader

log = logging.getLogger(__name__)

DEFAULT_MODEL = "vosk-model-small-vn-0.4"
LARGE_MODEL = "vosk-model-vn-0.4"
DOWNLOAD_HINT = "python scripts/download_models.py"
UNK = "[unk]"
KALDI_DEFAULT_RATE = 16000  # Kaldi's --sample-frequency default when mfcc.conf does not set it

_SAMPLE_FREQUENCY = re.compile(r"^\s*--sample-frequency\s*=\s*([0-9.]+)\s*$", re.MULTILINE)


# --------------------------------------------------------------------------------------------
# Model directory layout
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelLayout:
    """What a Vosk model directory holds (both Vosk layouts: ``am/ conf/ graph/`` or flat)."""

    root: Path
    acoustic_model: Path | None
    mfcc_conf: Path | None
    graph: str | None  # "dynamic" (HCLr.fst + Gr.fst: grammars work), "static" (HCLG.fst)
    ivector: bool
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def dynamic_graph(self) -> bool:
        return self.graph == "dynamic"


def _graph(base: Path, prefix: str) -> tuple[str | None, list[str]]:
    """Vosk reads HCLG.fst when present, else HCLr.fst + Gr.fst + disambig_tid.int."""
    if (base / "HCLG.fst").is_file():
        return "static", []
    dynamic = ("HCLr.fst", "Gr.fst", "disambig_tid.int")
    missing = [prefix + name for name in dynamic if not (base / name).is_file()]
    if not missing:
        return "dynamic", []
    if len(missing) == len(dynamic):
        return None, [f"no decoding graph ({prefix}HCLG.fst, or {prefix}HCLr.fst + {prefix}Gr.fst)"]
    return None, [f"an incomplete decoding graph (no {', '.join(missing)})"]


def inspect_model_dir(path: str | Path) -> ModelLayout:
    """Check a model directory's layout without loading it.

    Vosk's two layouts: ``am/final.mdl`` with ``conf/`` and ``graph/`` (current models), or
    ``final.mdl``, ``mfcc.conf`` and the graph files side by side (old models).
    """
    root = Path(path)
    if not root.is_dir():
        what = "is a file, not a directory" if root.exists() else "does not exist"
        return ModelLayout(root, None, None, None, False, (f"{root} {what}",))
    problems: list[str] = []
    if (root / "am" / "final.mdl").is_file() or not (root / "final.mdl").is_file():
        mdl, conf, graph_dir, prefix = (
            root / "am/final.mdl",
            root / "conf/mfcc.conf",
            "graph",
            "graph/",
        )
        if not (root / "conf" / "model.conf").is_file():
            problems.append("no decoder settings (conf/model.conf)")
    else:
        mdl, conf, graph_dir, prefix = root / "final.mdl", root / "mfcc.conf", ".", ""
    if not mdl.is_file():
        problems.append("no acoustic model (am/final.mdl)")
    if not conf.is_file():
        problems.append(f"no feature settings ({conf.relative_to(root)})")
    graph, graph_problems = _graph(root / graph_dir, prefix)
    problems += graph_problems
    ivector = (root / "ivector" / "final.ie").is_file()
    return ModelLayout(
        root,
        mdl if mdl.is_file() else None,
        conf if conf.is_file() else None,
        graph,
        ivector,
        tuple(problems),
    )


def model_missing_error(path: Path, problems: Sequence[str]) -> RecognizerError:
    return RecognizerError(
        f"the Vosk model in {path} is missing or incomplete ({'; '.join(problems)}); "
        f"download it with `{DOWNLOAD_HINT}` (or copy the model directory there by hand)",
        code="asr_model_missing",
    )


def native_sample_rate(layout: ModelLayout) -> int:
    """The rate the model was trained at: ``--sample-frequency`` in mfcc.conf, else 16000."""
    if layout.mfcc_conf is None:
        return KALDI_DEFAULT_RATE
    try:
        text = layout.mfcc_conf.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return KALDI_DEFAULT_RATE
    match = _SAMPLE_FREQUENCY.search(text)
    if match is None:
        return KALDI_DEFAULT_RATE
    try:
        return round(float(match.group(1)))
    except ValueError:
        return KALDI_DEFAULT_RATE


# --------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Piece:
    """One stretch Vosk finalised: alternatives best first as (text, posterior or None)."""

    alternatives: tuple[tuple[str, float | None], ...]
    word_confidences: tuple[float, ...] = ()

    @property
    def text(self) -> str:
        return self.alternatives[0][0]


def _words(text: Any) -> str:
    if not isinstance(text, str):
        raise RecognizerError(
            f"Vosk returned a {type(text).__name__} as text", code="asr_decode_failed"
        )
    return " ".join(text.split())


def _loads(raw: str) -> dict[str, Any]:
    try:
        obj = json.loads(raw)
    except (TypeError, ValueError) as exc:
        raise RecognizerError(
            f"Vosk returned unreadable JSON ({len(raw)} characters): {exc}",
            code="asr_decode_failed",
        ) from exc
    if not isinstance(obj, dict):
        raise RecognizerError(
            f"Vosk returned a JSON {type(obj).__name__}, not an object", code="asr_decode_failed"
        )
    return obj


def softmax(scores: Sequence[float]) -> list[float]:
    """Posteriors from log scores (shifted by the best, so large scores do not overflow)."""
    if not scores:
        return []
    top = max(scores)
    weights = [math.exp(s - top) for s in scores]
    total = sum(weights)
    return [w / total for w in weights]


def parse_result(raw: str) -> Piece | None:
    """A ``Result()`` / ``FinalResult()`` JSON as a :class:`Piece` (None: nothing heard)."""
    obj = _loads(raw)
    if "alternatives" in obj:
        alts = obj["alternatives"]
        if not isinstance(alts, list):
            raise RecognizerError("Vosk alternatives are not a list", code="asr_decode_failed")
        texts: list[str] = []
        scores: list[float] = []
        for alt in alts:
            if not isinstance(alt, dict):
                raise RecognizerError(
                    "a Vosk alternative is not an object", code="asr_decode_failed"
                )
            try:
                score = float(alt.get("confidence", 0.0))
            except (TypeError, ValueError) as exc:
                raise RecognizerError(
                    "a Vosk alternative has no numeric confidence", code="asr_decode_failed"
                ) from exc
            texts.append(_words(alt.get("text", "")))
            scores.append(score)
        merged: dict[str, float] = {}
        for text, p in zip(texts, softmax(scores), strict=True):
            merged[text] = merged.get(text, 0.0) + p
        if not any(merged):
            return None
        ranked = sorted(merged.items(), key=lambda item: -item[1])
        return Piece(tuple((t, min(1.0, max(0.0, p))) for t, p in ranked))
    text = _words(obj.get("text", ""))
    if not text:
        return None
    confs: tuple[float, ...] = ()
    words = obj.get("result")
    if isinstance(words, list) and len(words) == len(text.split()):
        try:
            confs = tuple(min(1.0, max(0.0, float(w["conf"]))) for w in words)
        except (KeyError, TypeError, ValueError):
            confs = ()
    return Piece(((text, None),), confs)


def parse_partial(raw: str) -> str:
    return _words(_loads(raw).get("partial", ""))


def _join(texts: Iterable[str]) -> str:
    return " ".join(t for t in texts if t)


def combine(pieces: Sequence[Piece], max_alternatives: int) -> Recognition:
    """The utterance's hypotheses from its pieces (see the module docstring for the scores)."""
    if not pieces:
        return Recognition()
    if max_alternatives <= 1 or all(p.alternatives[0][1] is None for p in pieces):
        text = _join(p.text for p in pieces)
        if not text:
            return Recognition()
        confs: tuple[float, ...] = ()
        if all(p.word_confidences for p in pieces):
            confs = tuple(c for p in pieces for c in p.word_confidences)
            if len(confs) != len(text.split()):
                confs = ()
        return Recognition((Hypothesis(text, min(confs) if confs else None, confs),))
    # Best-first walk over the product of the pieces' alternatives.
    probs = [[p if p is not None else 1.0 for _, p in piece.alternatives] for piece in pieces]
    start = tuple(0 for _ in pieces)

    def cost(idx: tuple[int, ...]) -> float:
        return -sum(math.log(max(probs[i][j], 1e-300)) for i, j in enumerate(idx))

    heap: list[tuple[float, tuple[int, ...]]] = [(cost(start), start)]
    seen = {start}
    merged: dict[str, float] = {}
    budget = max_alternatives * 8  # combinations looked at: enough to refill after merging
    while heap and budget > 0:
        c, idx = heapq.heappop(heap)
        budget -= 1
        text = _join(pieces[i].alternatives[j][0] for i, j in enumerate(idx))
        merged[text] = merged.get(text, 0.0) + math.exp(-c)
        for i in range(len(idx)):
            if idx[i] + 1 < len(probs[i]):
                nxt = (*idx[:i], idx[i] + 1, *idx[i + 1 :])
                if nxt not in seen:
                    seen.add(nxt)
                    heapq.heappush(heap, (cost(nxt), nxt))
    ranked = sorted(((t, p) for t, p in merged.items() if t), key=lambda item: -item[1])
    return Recognition(
        tuple(Hypothesis(t, min(1.0, max(0.0, p))) for t, p in ranked[:max_alternatives])
    )


# --------------------------------------------------------------------------------------------
# Recogniser
# --------------------------------------------------------------------------------------------


def default_word_lists() -> tuple[list[str], list[str]]:
    """The digit and yes/no vocabularies of the number reader (its tables under data/)."""
    reader = NumberReader.load()
    return sorted(reader.vocabulary_digits()), sorted(reader.vocabulary_yesno())


def _check_rate(rate: int) -> int:
    if not 8000 <= rate <= 48000:
        raise RecognizerError(
            f"Vosk sessions need a rate within 8000..48000 Hz, not {rate}", code="asr_load_failed"
        )
    return rate


class VoskRecognizer:
    """A Vosk model loaded once and shared by every call's :class:`VoskSession`."""

    name = "vosk"

    def __init__(
        self,
        model_path: str | Path | None = None,
        *,
        model_name: str = DEFAULT_MODEL,
        sample_rate: int | None = None,
        digit_words: Iterable[str] | None = None,
        yesno_words: Iterable[str] | None = None,
        max_alternatives: int = 3,
        log_level: int = -1,
    ) -> None:
        """Load ``model_path`` (default: ``asr_models/<model_name>``).

        ``sample_rate``: the rate sessions are fed at (default: the model's own, from its
        ``conf/mfcc.conf``; Vosk converts any other rate itself). ``digit_words`` /
        ``yesno_words``: the grammar of each mode (default: the number reader's vocabularies).
        ``max_alternatives``: N-best size; 1 gives one hypothesis with word confidences.
        ``log_level``: Vosk's (Kaldi's) log verbosity, -1 keeps stderr quiet.
        """
        started = time.perf_counter()
        self.model_path = Path(model_path) if model_path is not None else models_dir() / model_name
        self.layout = inspect_model_dir(self.model_path)
        if not self.layout.ok:
            raise model_missing_error(self.model_path, self.layout.problems)
        self.sample_rate = _check_rate(
            sample_rate if sample_rate is not None else native_sample_rate(self.layout)
        )
        self.max_alternatives = max(1, max_alternatives)
        vosk.SetLogLevel(log_level)
        try:
            self._model: Any = vosk.Model(str(self.model_path))
        except Exception as exc:  # vosk raises a bare Exception("Failed to create a model")
            raise model_missing_error(self.model_path, [f"Vosk could not load it: {exc}"]) from exc
        if digit_words is None or yesno_words is None:
            default_digits, default_yesno = default_word_lists()
            digit_words = default_digits if digit_words is None else digit_words
            yesno_words = default_yesno if yesno_words is None else yesno_words
        self.grammars: dict[ListenMode, str | None] = {ListenMode.FREE: None}
        self.grammar_words: dict[ListenMode, tuple[str, ...]] = {ListenMode.FREE: ()}
        for mode, words in ((ListenMode.DIGITS, digit_words), (ListenMode.YESNO, yesno_words)):
            kept = self._grammar(mode, words)
            self.grammar_words[mode] = kept
            self.grammars[mode] = (
                json.dumps(list(kept), ensure_ascii=False) if self.layout.dynamic_graph else None
            )
        if not self.layout.dynamic_graph:
            log.warning(
                "the Vosk model in %s has a static graph (HCLG.fst): it cannot take grammars, "
                "so digit and yes/no turns are decoded without one",
                self.model_path,
            )
        self._closed = False
        self.load_info = LoadInfo(time.perf_counter() - started, _peak_rss_mb())

    def with_settings(
        self, *, sample_rate: int | None = None, max_alternatives: int | None = None
    ) -> VoskRecognizer:
        """The same loaded model (no second load, no extra memory) with another session rate
        (e.g. 8000 for the phone line beside 16000 for a microphone) or N-best size."""
        if self._closed:
            raise RecognizerError("the Vosk recogniser is closed", code="asr_decode_failed")
        other = copy.copy(self)
        if sample_rate is not None:
            other.sample_rate = _check_rate(sample_rate)
        if max_alternatives is not None:
            other.max_alternatives = max(1, max_alternatives)
        return other

    def knows(self, word: str) -> bool:
        """Whether the model's vocabulary has ``word`` (a single word)."""
        try:
            return int(self._model.vosk_model_find_word(word)) >= 0
        except Exception as exc:
            raise RecognizerError(
                f"Vosk could not look a word up: {type(exc).__name__}: {exc}",
                code="asr_load_failed",
            ) from exc

    def _grammar(self, mode: ListenMode, words: Iterable[str]) -> tuple[str, ...]:
        kept: list[str] = []
        missing: list[str] = []
        for entry in words:
            phrase = " ".join(unicodedata.normalize("NFC", entry).lower().split())
            if not phrase or phrase in kept or phrase in missing:
                continue
            (kept if all(self.knows(w) for w in phrase.split()) else missing).append(phrase)
        if missing:
            log.warning(
                "the Vosk model in %s does not know %d %s word(s), left out of the grammar: %s",
                self.model_path,
                len(missing),
                mode.value,
                ", ".join(missing),
            )
        if not kept:
            raise RecognizerError(
                f"none of the {mode.value} words is in the vocabulary of the Vosk model in "
                f"{self.model_path}: is it a model for this language?",
                code="asr_load_failed",
            )
        if self.knows(UNK):
            kept.append(UNK)
        return tuple(kept)

    def open_session(self) -> VoskSession:
        if self._closed:
            raise RecognizerError("the Vosk recogniser is closed", code="asr_decode_failed")
        return VoskSession(self)

    def close(self) -> None:
        """No new sessions or recognisers; the model is freed with the last of them."""
        self._closed = True

    def __repr__(self) -> str:
        return f"<VoskRecognizer {self.model_path.name} {self.sample_rate} Hz>"

    def new_kaldi(self, mode: ListenMode) -> Any:
        """A ``KaldiRecognizer`` for ``mode`` at :attr:`sample_rate` (for one session)."""
        if self._closed:
            raise RecognizerError("the Vosk recogniser is closed", code="asr_decode_failed")
        grammar = self.grammars[mode]
        try:
            if grammar is None:
                kaldi = vosk.KaldiRecognizer(self._model, float(self.sample_rate))
            else:
                kaldi = vosk.KaldiRecognizer(self._model, float(self.sample_rate), grammar)
            if self.max_alternatives > 1:
                kaldi.SetMaxAlternatives(self.max_alternatives)
            else:
                kaldi.SetWords(True)
        except Exception as exc:
            raise RecognizerError(
                f"Vosk could not create a {mode.value} recogniser: {type(exc).__name__}: {exc}",
                code="asr_load_failed",
            ) from exc
        return kaldi


class VoskSession(SessionGuard):
    """One call's recognisers (one per mode, reused): ``begin`` / ``feed`` / ``end``."""

    engine_label = "Vosk"

    def __init__(self, recognizer: VoskRecognizer) -> None:
        super().__init__()
        self._rec = recognizer
        self.sample_rate = recognizer.sample_rate
        self._kaldi: dict[ListenMode, Any] = {}
        self._pieces: list[Piece] = []
        self._partial = ""

    @property
    def pieces(self) -> int:
        """How many pieces Vosk finalised in the current (or last) utterance."""
        return len(self._pieces)

    def begin(self, spec: ListenSpec) -> None:
        """Start an utterance heard as ``spec.mode`` says; an unfinished one is dropped."""
        self._check_open()
        kaldi = self._kaldi.get(spec.mode)
        if kaldi is None:
            kaldi = self._kaldi[spec.mode] = self._rec.new_kaldi(spec.mode)
        self._call("reset", kaldi.Reset)
        self._pieces = []
        self._partial = ""
        self._spec = spec

    def feed(self, pcm: PCM) -> str:
        """Take audio at :attr:`sample_rate`; return everything heard so far (partial)."""
        kaldi = self._current()
        data = np.ascontiguousarray(self._samples(pcm, self.sample_rate)).tobytes()
        if data:
            if self._call("failed while decoding", kaldi.AcceptWaveform, data):
                piece = parse_result(self._call("failed while decoding", kaldi.Result))
                if piece is not None:
                    self._pieces.append(piece)
                self._partial = ""
            else:
                raw = self._call("failed while decoding", kaldi.PartialResult)
                self._partial = parse_partial(raw)
        return _join([*(p.text for p in self._pieces), self._partial])

    def end(self) -> Recognition:
        """Finish the utterance: every finalised piece plus the final one, joined."""
        kaldi = self._current()
        try:
            piece = parse_result(self._call("failed while finishing", kaldi.FinalResult))
            if piece is not None:
                self._pieces.append(piece)
            return combine(self._pieces, self._rec.max_alternatives)
        finally:
            self._spec = None
            self._partial = ""

    def close(self) -> None:
        """Free the session's recognisers. Idempotent."""
        self._mark_closed()
        self._kaldi = {}

    # -- internals -----------------------------------------------------------------------------

    def _current(self) -> Any:
        return self._kaldi[self._require_spec().mode]

    @staticmethod
    def _call(what: str, fn: Any, *args: Any) -> Any:
        try:
            return fn(*args)
        except RecognizerError:
            raise
        except Exception as exc:
            raise RecognizerError(
                f"Vosk {what}: {type(exc).__name__}: {str(exc)[:200]}", code="asr_decode_failed"
            ) from exc
