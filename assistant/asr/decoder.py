"""CTC decoders over the model's per-frame log-posteriors.

It is long because the digit and yes/no grammars, the Viterbi search and the N-best scoring are one
search and share its data types.

Every digit word and every yes/no word of interest is a single whole-word token of the model, so a
"word" here is one CTC class. The grammar decoders (digits, yes/no) keep only the columns they
need plus blank plus a *filler* class, the summed posterior of every other non-blank class (speech
that is not in the grammar: "dạ", "mã số của tôi là", a cough). They run a Viterbi search through
``blank* (word blank*)*`` whose states also count, so that one search yields the best reading of
each length; a length prior then picks among them, and the runners-up become the N-best.

Digits mode counts digits the way the number reader (:mod:`assistant.language.numbers`) will read
the words: a digit word adds 1, ``mười`` 2, a unit after ``mười``/``mươi`` 0 (it replaces the 0)
unless a ``mươi``/``trăm`` follows and takes it back, and so on (:func:`digit_grammar`). A word's
score is its own token's posterior plus a discounted share of its tone neighbours' ("nằm" for
"năm"); the length prior is soft, so a code read in parts still comes out in parts. Yes/no mode
writes other speech as ``<unk>`` so that the reader does not take "dạ, [something else]" for a
polite yes.
"""

from __future__ import annotations

import functools
import itertools
import math
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from assistant.language.numbers import NumberReader

FloatArray = npt.NDArray[np.float32]
NEG_INF = -1.0e30

# --------------------------------------------------------------------------------------------
# Scores kept per frame
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class FrameScores:
    """Per-frame log-posteriors restricted to a word list.

    ``blank`` [T], ``words`` [T, W] (column ``j`` is the token of word ``j``), ``other`` [T]: the
    log of the total posterior of every other non-blank class, ``other_best`` [T]: the log
    posterior of the most likely one of them (the rival a word must beat to be the class heard).
    """

    blank: FloatArray
    words: FloatArray
    other: FloatArray
    other_best: FloatArray

    @property
    def num_frames(self) -> int:
        return len(self.blank)

    @staticmethod
    def empty(num_words: int) -> FrameScores:
        none = np.zeros(0, np.float32)
        return FrameScores(none, np.zeros((0, num_words), np.float32), none, none)

    def frames(self, start: int, end: int) -> FrameScores:
        """Frames ``start`` to ``end`` (exclusive), as a recogniser step hands them over."""
        return FrameScores(
            self.blank[start:end],
            self.words[start:end],
            self.other[start:end],
            self.other_best[start:end],
        )

    @staticmethod
    def concat(parts: Sequence[FrameScores], num_words: int) -> FrameScores:
        if not parts:
            return FrameScores.empty(num_words)
        return FrameScores(
            np.concatenate([p.blank for p in parts]),
            np.concatenate([p.words for p in parts]),
            np.concatenate([p.other for p in parts]),
            np.concatenate([p.other_best for p in parts]),
        )


@dataclass(frozen=True, eq=False)
class WordClasses:
    """Which model classes make up each grammar word: ``members[j]`` are (class id, weight).

    A word's score is the weighted sum of its members' posteriors: the word's own token with
    weight 1, and spellings the number reader reads as the same word (tone neighbours such as
    "nằm" for "năm") with a smaller weight.
    """

    members: tuple[tuple[tuple[int, float], ...], ...]

    @staticmethod
    def single(ids: Sequence[int]) -> WordClasses:
        return WordClasses(tuple(((i, 1.0),) for i in ids))

    @property
    def num_words(self) -> int:
        return len(self.members)

    def columns(self) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
        """Distinct class ids used, and the [ids, words] weight matrix."""
        ids = sorted({i for word in self.members for i, _ in word})
        where = {i: n for n, i in enumerate(ids)}
        matrix = np.zeros((len(ids), len(self.members)))
        for j, word in enumerate(self.members):
            for i, weight in word:
                matrix[where[i], j] = weight
        return np.asarray(ids, dtype=np.int64), matrix


def restrict(
    logp: FloatArray,
    blank_id: int,
    classes: WordClasses,
    columns: tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]] | None = None,
) -> FrameScores:
    """Reduce full log-posteriors [T, C] (each row sums to 1 in probability) to word scores."""
    ids, matrix = columns if columns is not None else classes.columns()
    blank = logp[:, blank_id].astype(np.float32)
    probs = np.exp(logp[:, ids].astype(np.float64))
    words = np.log(np.clip(probs @ matrix, 1e-30, None)).astype(np.float32)
    inside = np.exp(blank.astype(np.float64)) + probs.sum(axis=1)
    other = np.log(np.clip(1.0 - inside, 1e-30, None)).astype(np.float32)
    rest = np.array(logp, dtype=np.float32)  # a copy: the caller's array stays as it was
    rest[:, ids] = NEG_INF
    rest[:, blank_id] = NEG_INF
    other_best = np.maximum(rest.max(axis=1, initial=NEG_INF), np.float32(-69.0))
    return FrameScores(blank, words, other, other_best.astype(np.float32))


# --------------------------------------------------------------------------------------------
# A counting word-loop grammar and its Viterbi search
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LoopGrammar:
    """Words, grammar states and the allowed moves ``(state, word) -> (count delta, state)``.

    State 0 is the start state. A move that is not listed is forbidden.
    """

    words: tuple[str, ...]
    num_states: int
    moves: Mapping[tuple[int, int], tuple[int, int]]


@dataclass(frozen=True)
class SearchParams:
    """Penalties (natural-log units) of the Viterbi search."""

    word_penalty: float = 0.0  # added to every word entry
    filler_penalty: float = 2.0  # added to every filler segment entry
    filler_frame_penalty: float = 0.0  # added to every frame spent in filler
    use_filler: bool = True


@dataclass(frozen=True)
class Path:
    """A best path: its count, score, word indices with their frame spans, filler spans."""

    count: int
    score: float
    words: tuple[int, ...]
    spans: tuple[tuple[int, int], ...]  # inclusive frame ranges, one per word
    fillers: tuple[tuple[int, int], ...] = ()  # frame ranges of the filler segments


class _Moves:
    """The grammar's moves as arrays, split into layers whose destinations are distinct."""

    def __init__(self, grammar: LoopGrammar, filler: int | None) -> None:
        moves = dict(grammar.moves)
        if filler is not None:
            for g in range(grammar.num_states):
                moves[g, filler] = (0, g)
        items = sorted(moves.items())
        self.source = np.asarray([g for (g, _), _ in items], dtype=np.int64)
        self.word = np.asarray([w for (_, w), _ in items], dtype=np.int64)
        self.delta = np.asarray([d for _, (d, _) in items], dtype=np.int64)
        self.target = np.asarray([t for _, (_, t) in items], dtype=np.int64)
        layers: list[list[int]] = []
        used: list[set[tuple[int, int, int]]] = []
        for p, ((_, w), (d, t)) in enumerate(items):
            for layer, seen in zip(layers, used, strict=True):
                if all((t, w, dd) not in seen for dd in range(-8, 9)) and (t, w, d) not in seen:
                    layer.append(p)
                    seen.add((t, w, d))
                    break
            else:
                layers.append([p])
                used.append({(t, w, d)})
        # Within a layer no two moves share (target state, word), whatever their deltas.
        self.layers = [np.asarray(layer, dtype=np.int64) for layer in layers]


class _Plan:
    """Everything the search needs from a grammar and a count range, computed once: the moves,
    the flat array indices each frame's update reads and writes, and the layers' scatter
    targets. Built per (grammar, filler, counts) and cached (:func:`_plan`)."""

    def __init__(self, grammar: LoopGrammar, filler: int | None, n_counts: int) -> None:
        moves = _Moves(grammar, filler)
        n_states = grammar.num_states
        n_labels = len(grammar.words) + 2
        self.shape = (n_counts, n_states, n_labels)
        self.src_g, self.word = moves.source, moves.word
        kk = np.arange(n_counts)[:, None]
        dest_k = kk + moves.delta[None, :]
        valid_k = dest_k < n_counts
        dest_k = np.minimum(dest_k, n_counts - 1)
        #: flat index of (count, source state, label 0) per (count, move); a source label is
        #: added to it
        self.src_base = (kk * n_states + self.src_g[None, :]) * n_labels
        #: flat index of (source state, word) within one count's [states, labels] plane
        self.src_word = self.src_g * n_labels + self.word
        #: flat index of each count's [states, labels] row start for the top-label masking
        self.row_base = np.arange(n_counts * n_states) * n_labels
        flat_dest = (dest_k * n_states + moves.target[None, :]) * n_labels + self.word[None, :]
        #: per layer: its moves, and for each (count, move) the flat destination and whether
        #: the count stays in range; no two destinations of a layer are the same cell
        self.layers = tuple(
            (layer, flat_dest[:, layer], valid_k[:, layer]) for layer in moves.layers
        )
        self.empty = np.full(self.shape, NEG_INF)
        self.empty.flags.writeable = False


_PLANS: OrderedDict[tuple[int, int | None, int], tuple[LoopGrammar, _Plan]] = OrderedDict()
_PLANS_LOCK = threading.Lock()
_PLANS_KEPT = 16


def _plan(grammar: LoopGrammar, filler: int | None, n_counts: int) -> _Plan:
    """The cached :class:`_Plan` of a grammar object (by identity: grammars hold a mapping and
    are not hashable; the cache keeps the grammar alive so its id stays its own)."""
    key = (id(grammar), filler, n_counts)
    with _PLANS_LOCK:
        found = _PLANS.get(key)
        if found is not None and found[0] is grammar:
            _PLANS.move_to_end(key)
            return found[1]
    plan = _Plan(grammar, filler, n_counts)
    with _PLANS_LOCK:
        _PLANS[key] = (grammar, plan)
        while len(_PLANS) > _PLANS_KEPT:
            _PLANS.popitem(last=False)
    return plan


#: Frames whose non-blank posterior is below this are taken as blank (no word can start or go
#: on there): a word there would cost more than log(1/SKIP) ≈ 6.9 nats, more than any prior.
SKIP_NONBLANK = 1e-3


def viterbi(
    scores: FrameScores,
    grammar: LoopGrammar,
    params: SearchParams,
    max_count: int,
) -> dict[int, Path]:
    """The best path for each final count ``0..max_count`` that is reachable (all the frames at
    once: :class:`Search` fed one block)."""
    search = Search(grammar, params, max_count)
    search.advance(scores)
    return search.paths()


class Search:
    """The counting Viterbi search over frames that arrive in blocks (a recogniser's steps).

    CTC topology: a word may last several frames, blanks may sit anywhere, and the same word
    twice needs a blank between. The filler is a class of its own (counted 0, state kept).
    Runs of frames that are blank beyond doubt are passed in one step; a run still open at the
    end of a block waits for the next one, so that any split of the frames into blocks takes
    the very same steps as all of them at once, and :meth:`paths` gives the same paths. The
    grammar's arrays come from a cached :class:`_Plan`, and each frame's update works on flat
    indices. Fed while the caller speaks, the search leaves only its last frames and the trace
    for the end of the turn, where the caller waits for it.
    """

    def __init__(self, grammar: LoopGrammar, params: SearchParams, max_count: int) -> None:
        num_words = len(grammar.words)
        self.num_words = num_words
        self.params = params
        self.filler = num_words
        self.plan = _plan(grammar, self.filler if params.use_filler else None, max_count + 1)
        self.entry = np.full(num_words + 2, NEG_INF, dtype=np.float64)
        self.entry[:num_words] = -params.word_penalty
        if params.use_filler:
            self.entry[self.filler] = -params.filler_penalty
        self.in_word: npt.NDArray[np.float64] = self.plan.empty
        self.in_blank = np.full(self.plan.shape, NEG_INF)
        self.in_blank[0, 0, num_words + 1] = 0.0  # the start label
        self.back_word: list[npt.NDArray[np.int32]] = []
        self.back_blank: list[npt.NDArray[np.bool_]] = []
        self.steps: list[tuple[int, int]] = []
        self.frames = 0  # frames fed so far
        self._held: list[npt.NDArray[np.float64]] = []  # blank log-probs of an open sure-blank run
        self._held_from = 0
        self._no_back = np.full(self.plan.shape, -1, dtype=np.int32)
        self._no_back.flags.writeable = False

    def advance(self, scores: FrameScores) -> None:
        """Take the next frames."""
        n = scores.num_frames
        if n == 0:
            return
        emit = np.full((n, self.num_words + 2), NEG_INF, dtype=np.float64)
        emit[:, : self.num_words] = scores.words
        if self.params.use_filler:
            emit[:, self.filler] = (
                scores.other.astype(np.float64) - self.params.filler_frame_penalty
            )
        blank = scores.blank.astype(np.float64)
        sure_blank = (1.0 - np.exp(blank)) < SKIP_NONBLANK
        t = 0
        while t < n:
            if sure_blank[t]:
                u = t + 1
                while u < n and sure_blank[u]:
                    u += 1
                if not self._held:
                    self._held_from = self.frames + t
                self._held.append(blank[t:u])
                t = u
                continue
            self._close_run()
            self._word_step(self.frames + t, emit[t], blank[t])
            t += 1
        self.frames += n

    def paths(self) -> dict[int, Path]:
        """The best path of every reachable count over the frames fed so far (the search can
        go on after)."""
        in_word, in_blank = self.in_word, self.in_blank
        back_blank, steps = self.back_blank, self.steps
        back_word = self.back_word
        if self._held:  # the open run of blank frames, on copies
            run = np.concatenate(self._held)
            best = np.maximum(in_word, in_blank)
            back_blank = [*back_blank, in_blank > in_word]
            back_word = [*back_word, self._no_back]
            steps = [*steps, (self._held_from, self._held_from + len(run))]
            in_word, in_blank = self.plan.empty, best + run.sum()
        paths: dict[int, Path] = {}
        for k in range(self.plan.shape[0]):
            a = in_word[k]
            b = in_blank[k]
            ia = np.unravel_index(int(a.argmax()), a.shape)
            ib = np.unravel_index(int(b.argmax()), b.shape)
            va, vb = float(a[ia]), float(b[ib])
            if max(va, vb) <= NEG_INF / 2:
                continue
            state_g, label, is_blank = (
                (int(ib[0]), int(ib[1]), True) if vb >= va else (int(ia[0]), int(ia[1]), False)
            )
            paths[k] = _trace(
                back_word, back_blank, steps, k, state_g, label, is_blank, max(va, vb), self.filler
            )
        return paths

    def _close_run(self) -> None:
        if not self._held:
            return
        run = np.concatenate(self._held)
        self._held = []
        best = np.maximum(self.in_word, self.in_blank)
        self.back_blank.append(self.in_blank > self.in_word)
        self.back_word.append(self._no_back)
        self.steps.append((self._held_from, self._held_from + len(run)))
        self.in_word, self.in_blank = self.plan.empty, best + run.sum()

    def _word_step(self, t: int, e: npt.NDArray[np.float64], blank: np.float64) -> None:
        plan = self.plan
        in_word, in_blank = self.in_word, self.in_blank
        n_counts = plan.shape[0]
        src_g, word = plan.src_g, plan.word
        src_base, src_word, row_base = plan.src_base, plan.src_word, plan.row_base
        best = np.maximum(in_word, in_blank)
        from_blank = in_blank > in_word
        self.back_blank.append(from_blank)
        new_blank = best + blank
        # The best and second-best label of every (count, state) cell.
        top1 = best.argmax(axis=2)
        v1 = best.max(axis=2)
        masked = best.copy()
        masked.reshape(-1)[row_base + top1.reshape(-1)] = NEG_INF
        top2 = masked.argmax(axis=2)
        v2 = masked.max(axis=2)

        # Best source of every move: any other label, or the same word after a blank.
        i1 = top1[:, src_g]
        same = i1 == word[None, :]
        c1v = np.where(same, v2[:, src_g], v1[:, src_g])
        c1l = np.where(same, top2[:, src_g], i1)
        c2v = in_blank.reshape(n_counts, -1)[:, src_word]
        use2 = c2v > c1v
        src_v = np.where(use2, c2v, c1v)
        src_l = np.where(use2, word[None, :], c1l)
        src_b = use2 | from_blank.reshape(-1)[src_base + src_l]
        cand = src_v + (e[word] + self.entry[word])[None, :]
        code = ((src_base + src_l) * 2 + src_b).astype(np.int32)

        new_word = in_word + e
        flat_word = new_word.reshape(-1)
        back = np.full(plan.shape, -1, dtype=np.int32)
        flat_back = back.reshape(-1)
        for layer, dest, valid in plan.layers:
            layer_cand = cand[:, layer]
            better = valid & (layer_cand > flat_word[dest])
            if better.any():
                where = dest[better]
                flat_word[where] = layer_cand[better]
                flat_back[where] = code[:, layer][better]
        self.back_word.append(back)
        self.steps.append((t, t + 1))
        self.in_word, self.in_blank = new_word, new_blank


def _trace(
    back_word: Sequence[npt.NDArray[np.int32]],
    back_blank: Sequence[npt.NDArray[np.bool_]],
    steps: Sequence[tuple[int, int]],
    k: int,
    g: int,
    label: int,
    is_blank: bool,
    score: float,
    filler: int,
) -> Path:
    n_states, n_labels = back_word[0].shape[1:] if back_word else (1, 1)
    words: list[int] = []
    spans: list[tuple[int, int]] = []
    fillers: list[tuple[int, int]] = []
    count = k
    end = -1
    for s in range(len(steps) - 1, -1, -1):
        if is_blank:
            is_blank = bool(back_blank[s][k, g, label])
            continue
        t = steps[s][0]
        if end < 0:
            end = t
        code = int(back_word[s][k, g, label])
        if code == -1:
            continue  # the same word goes on
        if label == filler:
            fillers.append((t, end))
        else:
            words.append(label)
            spans.append((t, end))
        end = -1
        is_blank = bool(code & 1)
        code >>= 1
        label = code % n_labels
        code //= n_labels
        g = code % n_states
        k = code // n_states
    words.reverse()
    spans.reverse()
    fillers.reverse()
    return Path(count, score, tuple(words), tuple(spans), tuple(fillers))


def greedy_labels(scores: FrameScores, use_filler: bool = True) -> list[int]:
    """Best class per frame, collapsed: word indices (the filler and blanks dropped)."""
    if scores.num_frames == 0:
        return []
    cols = [scores.blank[:, None], scores.words]
    if use_filler:
        cols.append(scores.other[:, None])
    best = np.concatenate(cols, axis=1).argmax(axis=1)
    out: list[int] = []
    prev = -1
    num_words = scores.words.shape[1]
    for label in best.tolist():
        if label != prev and 1 <= label <= num_words:
            out.append(label - 1)
        prev = label
    return out


# --------------------------------------------------------------------------------------------
# Words and their classes
# --------------------------------------------------------------------------------------------


@functools.cache
def number_reader() -> NumberReader:
    """The number reader over ``data/numbers.toml``: the grammars' words come from its tables
    and hypotheses are counted and merged by its grouping rules, so they cannot drift apart."""
    return NumberReader.load()


#: Digit words (every spelling of ``[digits]``, each a single token of the model) and their digit.
DIGIT_WORDS: dict[str, int] = {w: int(d) for w, d in number_reader().digit_values().items()}
TEN, TENS, HUNDRED = number_reader().number_words()  # "10" or 1x; x0 after a digit; x00
#: Tokens that stand for a grammar word with full weight: the model's own spelling of it.
MODEL_SPELLINGS: dict[str, tuple[str, ...]] = {"nhăm": ("nhằm",)}
#: Neighbours of the digit words: the same letters, another tone (weight
#: :data:`TONE_WEIGHT`) or another vowel mark as well (:data:`MARK_WEIGHT`). The number reader
#: reads every one of them as that digit word (its tone-noise rule); tone is the cue a phone
#: line and a regional accent blur most, and the model often writes a neighbour for a digit
#: ("nằm", "làm", "từ", "nhầm"). Words that differ in letters ("vậy" for "bảy") are left out,
#: and so are neighbours of mười/mươi/trăm ("trạm" is a word callers say).
TONE_NEIGHBOURS: dict[str, tuple[str, ...]] = {
    "không": ("khống", "khổng"),
    "lẻ": ("le", "lè", "lé", "lẹ", "lẽ"),
    "linh": ("lính", "lĩnh"),
    "hai": ("hài", "hái", "hãi", "hại", "hải"),
    "ba": ("bà", "bá", "bã", "bạ", "bả"),
    "bốn": ("bôn", "bồn", "bổn", "bộn"),
    "tư": ("tứ", "từ", "tử", "tự"),
    "năm": ("nắm", "nằm"),
    "lăm": ("lắm",),
    "nhăm": ("nhắm",),
    "sáu": ("sau",),
    "bảy": ("bay", "bày"),
    "bẩy": ("bấy", "bầy", "bẫy", "bậy"),
    "tám": ("tam", "tạm"),
}
MARK_NEIGHBOURS: dict[str, tuple[str, ...]] = {
    "lẻ": ("lê", "lề", "lể", "lễ", "lệ"),
    "bảy": ("bây",),
    "bốn": ("bon", "bón", "bọn"),
    "một": ("mọt",),
    "mốt": ("mót",),
    "tư": ("tu", "tù", "tú", "tụ", "tủ"),
    "năm": ("nam", "nám", "nấm"),
    "lăm": ("lam", "làm", "lâm", "lãm", "lạm", "lầm", "lẩm", "lẫm"),
    "nhăm": ("nham", "nhàm", "nhám", "nhâm", "nhảm", "nhầm"),
    "sáu": ("sâu", "sấu", "sầu"),
    "tám": ("tâm", "tăm", "tấm", "tầm", "tẩm", "tắm", "tằm"),
}
TONE_WEIGHT = 0.5
MARK_WEIGHT = 0.25


def word_classes(
    words: Sequence[str],
    token_ids: Mapping[str, int],
    aliases: Sequence[tuple[Mapping[str, Sequence[str]], float]] = (),
) -> WordClasses:
    """Each word's own token and the model's spellings of it (weight 1), and its aliases that
    are single tokens, from each (table, weight) of ``aliases``. KeyError: a word has no token."""
    members = []
    for word in words:
        own = {token_ids[word]: 1.0}
        for a in MODEL_SPELLINGS.get(word, ()):
            if a in token_ids:
                own[token_ids[a]] = 1.0
        for table, weight in aliases:
            for a in table.get(word, ()):
                if a in token_ids and weight > 0:
                    own.setdefault(token_ids[a], weight)
        members.append(tuple(own.items()))
    return WordClasses(tuple(members))


# Grammar states of the digit grammar: where the reader's grouping pass would be.
(
    FREE,  # start, or after a complete group
    DIGIT,  # after a plain digit word (it may yet take mươi or trăm)
    AFTER_TENS,  # after mười or "D mươi": a unit may follow
    TENS_UNIT,  # after that unit (which a following mươi/trăm would take back)
    AFTER_HUNDRED,  # after "D trăm"
    HUNDRED_DIGIT,  # after "D trăm E"
    HUNDRED_TWO,  # after "D trăm E F"
) = range(7)


def digit_grammar(words: Sequence[str] | None = None) -> LoopGrammar:
    """The digit grammar: digit words one by one, and grouped readings with mười/mươi/trăm.

    Its count deltas reproduce the number reader's grouping pass
    (:mod:`assistant.language.numbers`):
    a unit after mười or "D mươi" replaces the 0 unless a multiplier follows it ("bảy mươi ba
    mươi tư" is 70, 34); after "D trăm", one digit word is the colloquial tens and two are the
    last two digits. Every sequence of these words is allowed.
    """
    vocab = tuple(words) if words is not None else (*DIGIT_WORDS, TEN, TENS, HUNDRED)
    moves: dict[tuple[int, int], tuple[int, int]] = {}
    for w, word in enumerate(vocab):
        if word in DIGIT_WORDS:
            unit = DIGIT_WORDS[word] != 0
            for g in (FREE, DIGIT, TENS_UNIT, HUNDRED_TWO):
                moves[g, w] = (1, DIGIT)
            moves[AFTER_TENS, w] = (0, TENS_UNIT) if unit else (1, DIGIT)
            moves[AFTER_HUNDRED, w] = (0, HUNDRED_DIGIT)
            moves[HUNDRED_DIGIT, w] = (0, HUNDRED_TWO)
        elif word == TEN:
            for g in (FREE, DIGIT, AFTER_TENS, TENS_UNIT, HUNDRED_DIGIT, HUNDRED_TWO):
                moves[g, w] = (2, AFTER_TENS)
            moves[AFTER_HUNDRED, w] = (0, AFTER_TENS)
        elif word == TENS:
            moves[DIGIT, w] = (1, AFTER_TENS)
            moves[HUNDRED_DIGIT, w] = (0, AFTER_TENS)
            moves[AFTER_HUNDRED, w] = (0, AFTER_TENS)
            for g in (FREE, AFTER_TENS, TENS_UNIT, HUNDRED_TWO):
                moves[g, w] = (2, AFTER_TENS)  # a unit taken back, or "mươi" alone (10)
        elif word == HUNDRED:
            moves[DIGIT, w] = (2, AFTER_HUNDRED)
            for g in (FREE, AFTER_TENS, TENS_UNIT, AFTER_HUNDRED, HUNDRED_DIGIT, HUNDRED_TWO):
                moves[g, w] = (3, AFTER_HUNDRED)  # a digit taken back, or "trăm" alone (100)
        else:
            raise ValueError(f"not a digit-grammar word: {word!r}")
    return LoopGrammar(vocab, 7, moves)


#: Written after a multiplier word ("mươi,") where a reading closes the number there: the number
#: reader takes a comma as the end of a group (:class:`GroupSplit`).
GROUP_END = ","


def words_to_digits(words: Sequence[str]) -> str:
    """The digits of a sequence of digit-grammar words, read by the number reader itself (other
    words ignored; a word may end a group with :data:`GROUP_END`). Used to count digits and to
    merge hypotheses the dialog would read alike."""
    grammar = [
        w
        for w in words
        if (bare := w.removesuffix(GROUP_END)) in DIGIT_WORDS or bare in (TEN, TENS, HUNDRED)
    ]
    return number_reader().read_digits(" ".join(grammar)).digits if grammar else ""


def count_digits(words: Sequence[str]) -> int:
    """Digits the number reader makes of a sequence of digit-grammar words (others ignored)."""
    return len(words_to_digits(words))


# --------------------------------------------------------------------------------------------
# Hypotheses with scores
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scored:
    """A decoded reading: words, total log score, posterior among the N-best, word scores."""

    words: tuple[str, ...]
    score: float
    confidence: float = 0.0
    word_confidences: tuple[float, ...] = ()
    key: str = field(default="", repr=False)

    @property
    def text(self) -> str:
        return " ".join(self.words)


def _word_confidence(
    scores: FrameScores, path: Path, i: int, classes: Sequence[Sequence[int]]
) -> float:
    """Probability that the i-th word's class was spoken: at least one frame of its span (and
    of the blank frames next to it) emits a token of the same class."""
    start, end = path.spans[i]
    lo = path.spans[i - 1][1] + 1 if i > 0 else 0
    hi = path.spans[i + 1][0] - 1 if i + 1 < len(path.spans) else scores.num_frames - 1
    lo, hi = max(lo, start - 1), min(hi, end + 1)
    cols = list(classes[path.words[i]])
    mass = np.exp(scores.words[lo : hi + 1, cols].astype(np.float64)).sum(axis=1)
    return float(1.0 - np.prod(1.0 - np.clip(mass, 0.0, 1.0)))


def _share(
    scores: FrameScores, path: Path, i: int, classes: Sequence[Sequence[int]] | None = None
) -> float:
    """The i-th word's share at its peak frame against its strongest rival there: its
    posterior (summed over ``classes[word]``, the words that mean the same answer) over that
    and the most likely other class (the words of another answer summed in the same way, any
    other word of the grammar, or any other token of the model). Above 0.5, no other speech is
    as likely there as this answer: a word that is the best non-blank class of its frame, as
    free mode would write it, passes."""
    w = path.words[i]
    t = _peak(scores, path, i)
    row = np.exp(scores.words[t].astype(np.float64))
    groups = {tuple(classes[j]) if classes else (j,) for j in range(len(row))}
    own = tuple(classes[w]) if classes else (w,)
    rivals = [float(row[list(g)].sum()) for g in groups if w not in g]
    rival = max([*rivals, math.exp(float(scores.other_best[t]))])
    mine = float(row[list(own)].sum())
    return mine / max(mine + rival, 1e-12)


def _peak(scores: FrameScores, path: Path, i: int) -> int:
    """The frame of the i-th word's span where its own class is most likely."""
    start, end = path.spans[i]
    return start + int(scores.words[start : end + 1, path.words[i]].argmax())


def _softmax(values: Sequence[float]) -> list[float]:
    top = max(values)
    exps = [math.exp(v - top) for v in values]
    total = sum(exps)
    return [e / total for e in exps]


@dataclass(frozen=True)
class LengthPrior:
    """Log prior of reading ``k`` digits when ``expected`` are missing (a soft preference).

    One digit short costs ``short``; further missing digits cost ``short_step`` each up to
    ``short_cap`` in total (callers do read a code in parts); each extra digit costs ``extra``.
    """

    short: float = 3.0
    short_step: float = 1.0
    short_cap: float = 6.0
    extra: float = 4.0
    nothing: float = 4.0  # an empty reading, whatever is expected

    def __call__(self, k: int, expected: int | None) -> float:
        if expected is None or expected <= 0:
            return -self.nothing if k == 0 else 0.0
        if k == 0:
            return -max(self.nothing, self.short_cap)
        if k == expected:
            return 0.0
        if k > expected:
            return -self.extra * (k - expected)
        missing = expected - k
        return -min(self.short + self.short_step * (missing - 1), self.short_cap)


@dataclass(frozen=True)
class FillRule:
    """When a reading shorter than the digits expected gives way to the exactly-expected one.

    A caller who reads a whole code in one go and has a soft or clipped word (a "ba" whose onset
    the line ate, the last word cut by the endpointer, a quiet caller) gets a best path one to
    three digits short: the model put that word's mass on blank or on other speech, and the soft
    length prior (:class:`LengthPrior`) accepts the shorter reading. The path with exactly the
    expected count then still scores close to the best one: it had only to force a word or two
    onto frames that carry a trace of it. A caller who really stops after four digits leaves six
    words to invent over silence, which costs tens of nats. So when at most ``max_missing``
    digits are missing and the exactly-expected path scores within ``max_gap`` nats of the best
    reading (length prior included) and keeps every word of the short reading, that path becomes
    the first hypothesis and the words it had to add get a word score of at most
    ``filled_confidence``, so that the dialog asks again for their group or reads the code back
    saying it is not sure. The short reading stays second in the N-best.

    Chosen on the robustness panel's tuning conditions (``scripts/bench_robust.py``; babble
    noise held out): the true ten-digit readings that came out short were 0.2-10.3 nats from the
    exactly-ten path, the partial readings of three to five digits 20-58 nats.
    """

    max_missing: int = 3
    max_gap: float = 12.0
    filled_confidence: float = 0.2


@dataclass(frozen=True)
class GroupSplit:
    """When a multiplier and the digit after it belong to two groups, not to one number.

    A code read in groups of four, three and three ("bảy mươi | ba mười sáu": 70, 3, 16) holds
    the very words of another reading ("bảy mươi ba | mười sáu": 73, 16), and the number reader,
    which sees words only, takes the second: a digit short, and sure of it. Nothing in the words
    tells them apart; the count expected does, as it does for a person who knows a code has ten
    digits. So when a reading is short of the digits expected, the decoder also offers it with
    the number closed after a multiplier ("mươi", "mười", "trăm") that a digit follows (written
    "mươi," for the reader), at most ``max_splits`` of them, each costing ``penalty`` nats and
    gaining ``gap_weight`` per output frame between the two words (a pause there makes the
    split likelier; several places to split then rank by their pauses, and a close rival marks
    the digits where they differ unsure). Only the best reading is split: another path whose
    words the prior ruled out is not brought back by a split. The length prior then chooses.

    The penalty sits below the length prior's cost of one digit short (3 nats), so a split that
    makes a short reading whole wins, and one that would make a whole reading long never does.
    Checked on the robustness panel's tuning readings (``scripts/bench_robust.py``: grouped
    93.3 -> 100 %, every other condition the same; babble noise held out).
    """

    penalty: float = 1.0
    gap_weight: float = 0.02
    max_splits: int = 2


@dataclass(frozen=True)
class DigitDecoder:
    """Digits mode: best readings of each length, a length prior, substitutions, N-best, and
    the exactly-expected reading kept when the audio says a short one lost words
    (:class:`FillRule`)."""

    grammar: LoopGrammar = field(default_factory=digit_grammar)
    params: SearchParams = field(default_factory=SearchParams)
    prior: LengthPrior = field(default_factory=LengthPrior)
    nbest: int = 5
    max_extra: int = 6  # counts searched beyond max(expected, 10)
    aliases: tuple[tuple[Mapping[str, Sequence[str]], float], ...] = (
        (TONE_NEIGHBOURS, TONE_WEIGHT),
        (MARK_NEIGHBOURS, MARK_WEIGHT),
    )
    fill: FillRule | None = field(default_factory=FillRule)
    split: GroupSplit | None = field(default_factory=GroupSplit)

    def word_classes(self, token_ids: Mapping[str, int]) -> WordClasses:
        return word_classes(self.grammar.words, token_ids, self.aliases)

    def classes(self) -> list[list[int]]:
        """For each word, the words that read as the same thing (digit variants)."""
        words = self.grammar.words
        out: list[list[int]] = []
        for word in words:
            if word in DIGIT_WORDS:
                out.append(
                    [j for j, w in enumerate(words) if DIGIT_WORDS.get(w) == DIGIT_WORDS[word]]
                )
            else:
                out.append([words.index(word)])
        return out

    def search(self, expected: int | None) -> Search:
        """A search to feed while the caller speaks and hand to :meth:`decode` at the end."""
        return Search(self.grammar, self.params, max(expected or 0, 10) + self.max_extra)

    def decode(
        self, scores: FrameScores, expected: int | None, search: Search | None = None
    ) -> list[Scored]:
        """N-best readings, best first (an empty reading is dropped from the list but still
        competes for the posterior). ``search``: the same frames already fed to
        :meth:`search`'s search for ``expected``, whose paths are then taken as they are."""
        if scores.num_frames == 0:
            return []
        if search is None:
            search = self.search(expected)
            search.advance(scores)
        elif search.frames != scores.num_frames:
            raise ValueError(
                f"the search was fed {search.frames} frames, the scores hold {scores.num_frames}"
            )
        paths = search.paths()
        if not paths:
            return []
        classes = self.classes()
        cands: list[tuple[tuple[str, ...], float, Path | None]] = [
            (self._words(p), p.score + self.prior(k, expected), p) for k, p in paths.items()
        ]
        if expected is not None and self.split is not None:
            cands += self._split_readings(cands, expected, self.split)
        best = max(cands, key=lambda c: c[1])
        if best[2] is not None:
            for words, gain in self._substitutions(scores, best[2], best[0], classes):
                prior = self.prior(count_digits(words), expected)
                cands.append((words, best[2].score + gain + prior, None))
        ranked = self._rank(scores, cands, classes)
        if best[2] is not None and expected is not None:
            return self._keep_whole(
                scores, paths, best[2], best[0], best[1], expected, ranked, classes
            )
        return ranked

    def _split_readings(
        self,
        cands: Sequence[tuple[tuple[str, ...], float, Path | None]],
        expected: int,
        rule: GroupSplit,
    ) -> list[tuple[tuple[str, ...], float, Path | None]]:
        """The best reading, when it is short, with its numbers closed after multipliers
        (:class:`GroupSplit`), each with its score and length prior."""
        words, _, path = max(cands, key=lambda c: c[1])
        if path is None or path.count >= expected:
            return []
        have = count_digits(words)
        points = [
            i
            for i in range(len(words) - 1)
            if words[i] in (TEN, TENS, HUNDRED)
            and self.grammar.words[path.words[i + 1]] in DIGIT_WORDS
        ]
        out: list[tuple[tuple[str, ...], float, Path | None]] = []
        for n in range(1, min(rule.max_splits, len(points)) + 1):
            for chosen in itertools.combinations(points, n):
                new = list(words)
                gap = 0
                for i in chosen:
                    new[i] += GROUP_END
                    gap += path.spans[i + 1][0] - path.spans[i][1] - 1
                digits = count_digits(new)
                if digits <= have:
                    continue  # closing the number there changes nothing ("mươi linh")
                score = path.score - rule.penalty * n + rule.gap_weight * gap
                out.append((tuple(new), score + self.prior(digits, expected), path))
        return out

    def _keep_whole(
        self,
        scores: FrameScores,
        paths: Mapping[int, Path],
        best: Path,
        best_words: tuple[str, ...],
        best_total: float,
        expected: int,
        ranked: list[Scored],
        classes: Sequence[Sequence[int]],
    ) -> list[Scored]:
        """The N-best with the exactly-expected reading first when :class:`FillRule` says the
        short best reading lost words; its added words marked unsure."""
        rule = self.fill
        whole = paths.get(expected)
        missing = expected - count_digits(best_words)
        if rule is None or whole is None or not 0 < missing <= rule.max_missing:
            return ranked
        if best_total - (whole.score + self.prior(expected, expected)) > rule.max_gap:
            return ranked
        words = self._words(whole)
        key = words_to_digits(words)
        if len(key) != expected:
            return ranked
        filled = filled_words(whole, best, classes)
        if not filled:
            return ranked
        wc = tuple(
            min(_word_confidence(scores, whole, j, classes), rule.filled_confidence)
            if j in filled
            else _word_confidence(scores, whole, j, classes)
            for j in range(len(words))
        )
        rival = next((s for s in ranked if s.key == key), None)
        confidence = rival.confidence if rival is not None else 0.0
        score = rival.score if rival is not None else whole.score
        first = Scored(words, score, confidence, wc, key)
        rest = [s for s in ranked if s.key != key]
        return [first, *rest][: self.nbest]

    def _words(self, path: Path) -> tuple[str, ...]:
        return tuple(self.grammar.words[w] for w in path.words)

    def _substitutions(
        self,
        scores: FrameScores,
        path: Path,
        spoken: tuple[str, ...],
        classes: Sequence[Sequence[int]],
    ) -> list[tuple[tuple[str, ...], float]]:
        """Readings with one word of ``spoken`` (the path's words as read, group ends
        included) swapped for the best word of another class over its span, with the change
        of path score."""
        words = self.grammar.words
        out: list[tuple[tuple[str, ...], float]] = []
        for i, w in enumerate(path.words):
            start, end = path.spans[i]
            seg = scores.words[start : end + 1].astype(np.float64).sum(axis=0)
            gains = seg - seg[w]
            gains[list(classes[w])] = NEG_INF
            j = int(gains.argmax())
            if gains[j] <= NEG_INF / 2:
                continue
            new = list(spoken)
            new[i] = words[j]
            out.append((tuple(new), float(gains[j])))
        return out

    def _rank(
        self,
        scores: FrameScores,
        cands: list[tuple[tuple[str, ...], float, Path | None]],
        classes: Sequence[Sequence[int]],
    ) -> list[Scored]:
        # Merge readings the reader reads alike (variants), keeping the best spelling.
        merged: dict[str, tuple[tuple[str, ...], float, Path | None]] = {}
        mass: dict[str, list[float]] = {}
        for words, score, path in cands:
            key = words_to_digits(words)
            mass.setdefault(key, []).append(score)
            if key not in merged or score > merged[key][1]:
                merged[key] = (words, score, path)
        keys = list(merged)
        totals = [_logsumexp(mass[k]) for k in keys]
        post = _softmax(totals)
        order = sorted(range(len(keys)), key=lambda i: -totals[i])
        out: list[Scored] = []
        for i in order:
            words, score, path = merged[keys[i]]
            if not words:
                if not out:
                    return []  # nothing heard is the best reading
                continue
            wc: tuple[float, ...] = ()
            if path is not None:
                wc = tuple(_word_confidence(scores, path, j, classes) for j in range(len(words)))
            out.append(Scored(words, totals[i], post[i], wc, keys[i]))
            if len(out) >= self.nbest:
                break
        return out


def filled_words(whole: Path, short: Path, classes: Sequence[Sequence[int]]) -> set[int] | None:
    """Indices of the words of ``whole`` that ``short`` does not have, or None when ``whole``
    also changes or drops a word of ``short`` (then it is another reading, not a filled one).
    Matched in time order, one to one: a word of ``whole`` is kept when its frames overlap a
    word of the same digit (variants alike) in ``short``."""
    kept: set[int] = set()
    j = 0
    for i, (start, end) in enumerate(whole.spans):
        for jj in range(j, len(short.spans)):
            s_start, s_end = short.spans[jj]
            if s_start > end:
                break
            if s_end >= start and short.words[jj] in classes[whole.words[i]]:
                kept.add(i)
                j = jj + 1
                break
    if len(kept) < len(short.words):
        return None
    return set(range(len(whole.words))) - kept


def _logsumexp(values: Sequence[float]) -> float:
    top = max(values)
    return top + math.log(sum(math.exp(v - top) for v in values))


# --------------------------------------------------------------------------------------------
# Yes / no
# --------------------------------------------------------------------------------------------

#: The words of the number reader's yes/no tables (yes, no, politeness and the neutral phrases
#: such as "không biết", so that those are heard whole instead of as a bare "không"); the
#: recogniser keeps those that are single tokens of its model. Everything else is the filler.
YESNO_WORDS: tuple[str, ...] = number_reader().answer_words()


def yesno_grammar(words: Sequence[str] = YESNO_WORDS, max_words: int = 4) -> LoopGrammar:
    """Any sequence of the yes/no words (counted, to get readings of each length)."""
    vocab = tuple(words)
    moves = {(0, w): (1, 0) for w in range(len(vocab))}
    del max_words
    return LoopGrammar(vocab, 1, moves)


#: Tone neighbours of the answer words that the model writes for them on a phone line ("cò" for
#: "có", "sái" for "sai"); like :data:`TONE_NEIGHBOURS`, counted with :data:`TONE_WEIGHT`.
YESNO_NEIGHBOURS: dict[str, tuple[str, ...]] = {
    "có": ("cò", "cỏ", "cọ"),
    "không": ("khống", "khổng"),
    "sai": ("sài", "sái", "sải", "sại"),
    "đúng": ("đùng", "đủng", "đụng"),
    "chưa": ("chừa", "chứa", "chửa"),
    "vâng": ("vầng", "vấng"),
    "dạ": ("dà", "dá"),
}

#: How a stretch of other speech (the filler) is written in yes/no hypotheses: an unknown word
#: to the number reader, so that "dạ <unk>" ("yes, but...") is unclear, not a polite yes.
UNKNOWN_WORD = "<unk>"


@dataclass(frozen=True)
class YesNoDecoder:
    """Yes/no mode: a loop over the yes/no words with a filler; nothing heard is a reading.

    Other speech on the best path is written as :data:`UNKNOWN_WORD` (with its own score). A
    word is heard when the words of its answer (the yes words, the no words: "không" with
    "hông", "sai", "chưa"...) together hold the share and presence below: the model splitting a
    telephone "không" between "không" and "hông" still heard a no.
    """

    grammar: LoopGrammar = field(default_factory=yesno_grammar)
    params: SearchParams = field(
        default_factory=lambda: SearchParams(word_penalty=0.0, filler_penalty=1.0)
    )
    empty_penalty: float = 2.0  # log prior against "nothing was said" when there is speech
    #: A word is written as unknown speech unless, at its peak frame, it holds more than this
    #: share against its strongest rival (:func:`_share`; 0.5: it is more likely this answer
    #: than any other word or token of the model, and a tie is no answer)...
    min_share: float = 0.5
    #: ... and the probability that it was emitted at all reaches this.
    min_presence: float = 0.15
    #: An answer too faint for the search (on a noisy line the model may give blank nearly all
    #: the mass of a word it still ranks first) is heard when it is unrivalled: the words of one
    #: answer reach ``weak_presence`` at a frame, ``weak_ratio`` times the peak of anything else
    #: the turn holds (:meth:`_faint_answer`). Chosen on the panel's recorded, GSM and pink-noise
    #: answers and the corpus's non-answers, babble held out (README, "Yes/no hears every clear
    #: answer").
    weak_presence: float = 0.05
    weak_ratio: float = 5.0
    #: A word whose audio is more than this many dB below the turn's loudest speech is someone
    #: else's (people talking near the caller): written as unknown speech (``None``: never).
    #: The caller's own answer is the loudest speech of a yes/no turn; a voice nearby, heard
    #: over the caller's phone, is quieter. Chosen on the panel's recorded, GSM and pink-noise
    #: answers, babble held out: every word of a right answer there is within 2 dB of the
    #: turn's loudest 120 ms; 10 dB is the lowest signal-to-noise ratio the panel's noisy lines
    #: have, and leaves a caller's softer second word room (README, "Someone else's yes").
    background_db: float | None = 10.0
    #: The frames, before and after a word's peak frame, whose audio is its level: the model
    #: writes a word about 200 ms (five output frames) after the loudest part of its audio.
    level_window: tuple[int, int] = (8, 1)
    max_words: int = 4
    nbest: int = 3
    aliases: tuple[tuple[Mapping[str, Sequence[str]], float], ...] = (
        (YESNO_NEIGHBOURS, TONE_WEIGHT),
    )

    def word_classes(self, token_ids: Mapping[str, int]) -> WordClasses:
        return word_classes(self.grammar.words, token_ids, self.aliases)

    def answer_classes(self) -> list[list[int]]:
        """For each word, the words that give the same answer on their own (the number
        reader's yes/no tables); a word that is no answer alone is its own class."""
        words = self.grammar.words
        reader = number_reader()
        meaning = [reader.read_yesno(w) for w in words]
        return [
            [j for j, m in enumerate(meaning) if m is not None and m == meaning[i]] or [i]
            for i in range(len(words))
        ]

    def decode(self, scores: FrameScores, levels: FloatArray | None = None) -> list[Scored]:
        """N-best readings, best first. ``levels``: the audio's level per output frame (dB,
        any reference), to tell the caller's words from quieter voices nearby
        (:attr:`background_db`); ``None``: every word is the caller's."""
        if scores.num_frames == 0:
            return []
        quiet = self.quiet_frames(scores.num_frames, levels)
        return self._search(scores, quiet) or self._faint_answer(scores, quiet)

    def quiet_frames(self, num_frames: int, levels: FloatArray | None) -> npt.NDArray[np.bool_]:
        """Frames at which a word would be someone else's: the loudest audio of the frames
        before and after it (:attr:`level_window`) more than :attr:`background_db` below the
        turn's loudest three frames (120 ms)."""
        quiet = np.zeros(num_frames, dtype=np.bool_)
        if self.background_db is None or levels is None or len(levels) == 0:
            return quiet
        db = np.full(num_frames, -np.inf)
        n = min(num_frames, len(levels))
        db[:n] = levels[:n]
        power = np.power(10.0, db / 10.0)
        span = min(3, num_frames)
        loudest = 10.0 * math.log10(
            max(np.convolve(power, np.ones(span) / span, "valid").max(), 1e-30)
        )
        before, after = self.level_window
        padded = np.concatenate([np.full(before, -np.inf), db, np.full(after, -np.inf)])
        windows = np.lib.stride_tricks.sliding_window_view(padded, before + after + 1)
        return np.asarray(windows.max(axis=1) < loudest - self.background_db)

    def _search(self, scores: FrameScores, quiet: npt.NDArray[np.bool_]) -> list[Scored]:
        paths = viterbi(scores, self.grammar, self.params, self.max_words)
        if not paths:
            return []
        classes = self.answer_classes()
        cands: list[tuple[tuple[str, ...], float, tuple[float, ...]]] = []
        for k, path in paths.items():
            score = path.score - (self.empty_penalty if k == 0 else 0.0)
            text, confidences = self._reading(scores, path, classes, quiet)
            cands.append((text, score, confidences))
        best = max(range(len(cands)), key=lambda i: cands[i][1])
        best_path = paths[list(paths)[best]]
        for i, w in enumerate(best_path.words):
            start, end = best_path.spans[i]
            seg = scores.words[start : end + 1].astype(np.float64).sum(axis=0)
            gains = seg - seg[w]
            gains[w] = NEG_INF
            j = int(gains.argmax())
            swapped = Path(
                best_path.count,
                best_path.score,
                tuple(j if n == i else x for n, x in enumerate(best_path.words)),
                best_path.spans,
                best_path.fillers,
            )
            text, _ = self._reading(scores, swapped, classes, quiet)
            cands.append((text, cands[best][1] + float(gains[j]), ()))
        merged: dict[tuple[str, ...], tuple[float, tuple[float, ...]]] = {}
        for ws, score, wc in cands:
            if ws not in merged or score > merged[ws][0]:
                merged[ws] = (score, wc)
        keys = sorted(merged, key=lambda k: -merged[k][0])
        post = _softmax([merged[k][0] for k in keys])
        out: list[Scored] = []
        for i, ws in enumerate(keys):
            score, wc = merged[ws]
            if all(w == UNKNOWN_WORD for w in ws):
                if not out:
                    return []  # nothing, or nothing but other speech: no answer heard
                continue
            out.append(Scored(ws, score, post[i], wc))
            if len(out) >= self.nbest:
                break
        return out

    def _faint_answer(self, scores: FrameScores, quiet: npt.NDArray[np.bool_]) -> list[Scored]:
        """When the search hears nothing: the one answer (yes or no) whose words hold at least
        ``weak_presence`` at some frame while nothing in the whole turn rivals it (the other
        answer's words, any other word or token, each ``weak_ratio`` times weaker at their
        peaks), as its most likely word at its peak, scored by that posterior; else nothing.
        Not at a frame where a word would be someone else's (``quiet``)."""
        reader = number_reader()
        meaning = [reader.read_yesno(w) for w in self.grammar.words]
        probs = np.exp(scores.words.astype(np.float64))
        found: list[tuple[float, list[int]]] = []
        for answer in sorted({m.value for m in meaning if m is not None}):
            own = [j for j, m in enumerate(meaning) if m is not None and m.value == answer]
            found.append((float(probs[:, own].sum(axis=1).max()), own))
        if not found:
            return []  # a grammar without answer words
        found.sort(key=lambda f: f[0])
        peak, own = found[-1]
        rival = max(
            [f[0] for f in found[:-1]]
            + [
                float(np.delete(probs, own, axis=1).max(initial=0.0)),
                float(np.exp(scores.other_best.astype(np.float64)).max(initial=0.0)),
            ]
        )
        if peak < self.weak_presence or peak < self.weak_ratio * rival:
            return []
        t = int(probs[:, own].sum(axis=1).argmax())
        if quiet[t]:
            return []
        word = own[int(probs[t, own].argmax())]
        return [Scored((self.grammar.words[word],), math.log(peak), 1.0, (peak,))]

    def _reading(
        self,
        scores: FrameScores,
        path: Path,
        classes: Sequence[Sequence[int]],
        quiet: npt.NDArray[np.bool_],
    ) -> tuple[tuple[str, ...], tuple[float, ...]]:
        """The path's words in time order, other speech (and a word someone else said:
        ``quiet`` at its peak frame) as :data:`UNKNOWN_WORD`, with scores."""
        items = [
            (path.spans[i][0], self.grammar.words[w], _word_confidence(scores, path, i, classes))
            for i, w in enumerate(path.words)
        ]
        for start, end in path.fillers:
            peak = float(np.exp(scores.other[start : end + 1].astype(np.float64)).max())
            items.append((start, UNKNOWN_WORD, peak))
        items.sort(key=lambda x: x[0])
        keep = {
            path.spans[i][0]
            for i in range(len(path.words))
            if _share(scores, path, i, classes) > self.min_share
            and not quiet[_peak(scores, path, i)]
        }
        items = [
            (t, w if (t in keep and c >= self.min_presence) else UNKNOWN_WORD, c)
            for t, w, c in items
        ]
        return tuple(w for _, w, _ in items), tuple(c for _, _, c in items)
