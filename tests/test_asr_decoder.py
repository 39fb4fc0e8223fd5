"""The CTC decoders on synthetic log-posterior matrices (no model needed)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from assistant.asr import decoder as decoder_module
from assistant.asr.decoder import (
    DIGIT_WORDS,
    HUNDRED,
    NEG_INF,
    SKIP_NONBLANK,
    TEN,
    TENS,
    UNKNOWN_WORD,
    DigitDecoder,
    FrameScores,
    LengthPrior,
    LoopGrammar,
    Search,
    SearchParams,
    WordClasses,
    YesNoDecoder,
    count_digits,
    digit_grammar,
    greedy_labels,
    restrict,
    viterbi,
    words_to_digits,
)

DIGITS = DigitDecoder()
WORDS = DIGITS.grammar.words
YESNO = YesNoDecoder()

# A frame is "-" (blank), "?" (other speech: a class outside the grammar), a word, or a
# (word, probability) pair whose rest is blank.
Frame = str | tuple[str, float]


def frames(spec: list[Frame], words: tuple[str, ...] = WORDS, other: float = 0.9) -> FrameScores:
    """Per-frame scores for a list of frames over ``words``."""
    n = len(spec)
    probs = np.full((n, len(words) + 2), 1e-6)  # columns: blank, words..., other
    for t, f in enumerate(spec):
        word, p = (f, 0.98) if isinstance(f, str) else f
        if word == "-":
            probs[t, 0] = 1.0
        elif word == "?":
            probs[t, -1], probs[t, 0] = other, 1.0 - other
        else:
            probs[t, 1 + words.index(word)] = p
            probs[t, 0] = 1.0 - p
    probs /= probs.sum(axis=1, keepdims=True)
    logp = np.log(probs).astype(np.float32)
    return FrameScores(logp[:, 0], logp[:, 1:-1], logp[:, -1], logp[:, -1])


def said(*words: str, gap: int = 2) -> list[Frame]:
    out: list[Frame] = ["-"] * gap
    for w in words:
        out += [w] + ["-"] * gap
    return out


def text(decoder_out: list) -> str:  # type: ignore[type-arg]
    return decoder_out[0].text if decoder_out else ""


TEN_DIGITS = ("không", "một", "hai", "ba", "bốn", "năm", "sáu", "bảy", "tám", "chín")


# -- the digit grammar and the length prior ----------------------------------------------------


def test_clear_code_is_read_whole() -> None:
    out = DIGITS.decode(frames(said(*TEN_DIGITS)), 10)
    assert text(out) == " ".join(TEN_DIGITS)
    assert out[0].confidence is not None and out[0].confidence > 0.9
    assert len(out[0].word_confidences) == 10
    assert min(out[0].word_confidences) > 0.9


def test_prior_drops_an_ambiguous_extra_digit_when_ten_are_expected() -> None:
    spec = [*said(*TEN_DIGITS[:5]), ("hai", 0.6), "-", "-", *said(*TEN_DIGITS[5:])]
    scores = frames(spec)
    free = DIGITS.decode(scores, None)
    assert len(words_to_digits(free[0].words)) == 11  # no prior: the extra "hai" is kept
    out = DIGITS.decode(scores, 10)
    assert text(out) == " ".join(TEN_DIGITS)
    assert any(len(words_to_digits(h.words)) == 11 for h in out[1:])  # still an alternative


def test_prior_keeps_a_weak_digit_that_completes_the_code() -> None:
    spec = [*said(*TEN_DIGITS[:4]), ("ba", 0.3), "-", "-", *said(*TEN_DIGITS[4:9])]
    scores = frames(spec)
    assert len(DIGITS.decode(scores, 9)[0].words) == 9  # nine expected: the weak one dropped
    out = DIGITS.decode(scores, 10)
    assert out[0].words == (*TEN_DIGITS[:4], "ba", *TEN_DIGITS[4:9])
    assert out[0].word_confidences[4] < 0.5  # and it is reported as a weak digit


def test_prior_is_soft_a_partial_reading_stays_partial() -> None:
    out = DIGITS.decode(frames(said("bốn", "năm", "sáu")), 10)
    assert text(out) == "bốn năm sáu"


def test_silence_gives_nothing_whatever_is_expected() -> None:
    assert DIGITS.decode(frames(["-"] * 40), 10) == []
    assert DIGITS.decode(FrameScores.empty(len(WORDS)), 10) == []


def test_length_prior_shape() -> None:
    prior = LengthPrior()
    assert prior(10, 10) == 0.0
    assert prior(9, 10) < 0.0 and prior(11, 10) < 0.0
    assert prior(9, 10) > prior(8, 10) >= prior(3, 10)  # more missing: no more likely...
    assert prior(3, 10) >= -prior.short_cap  # ...but capped: reading in parts stays possible
    assert prior(12, 10) < prior(11, 10)
    assert prior(5, None) == 0.0 and prior(0, None) < 0.0


def test_repeated_digit_needs_a_blank_between() -> None:
    assert text(DIGITS.decode(frames(["-", "hai", "hai", "-"]), None)) == "hai"
    assert text(DIGITS.decode(frames(["-", "hai", "-", "hai", "-"]), None)) == "hai hai"


def test_filler_absorbs_other_speech_instead_of_inventing_digits() -> None:
    spec = [*said(*TEN_DIGITS[:5]), "?", "?", "?", "-", *said(*TEN_DIGITS[5:])]
    # Give the other speech a little "hai" too, as a real model would.
    scores = frames(spec)
    words, blank = scores.words.copy(), scores.blank.copy()
    for t, f in enumerate(spec):
        if f == "?":
            words[t, WORDS.index("hai")] = math.log(0.08)
            blank[t] = math.log(0.02)
    scores = FrameScores(blank, words, scores.other, scores.other_best)
    assert text(DIGITS.decode(scores, 10)) == " ".join(TEN_DIGITS)
    without = DigitDecoder(params=SearchParams(use_filler=False))
    assert len(without.decode(scores, None)[0].words) == 11  # the filler is what saved it


def test_n_best_offers_the_runner_up_digit_with_its_posterior() -> None:
    spec = said(*TEN_DIGITS[:3])
    spec += [("ba", 0.5), "-", "-"]
    spec += said(*TEN_DIGITS[4:])
    scores = frames(spec)
    words = scores.words.copy()
    t = spec.index(("ba", 0.5))
    words[t, WORDS.index("tám")] = math.log(0.45)
    scores = FrameScores(scores.blank, words, scores.other, scores.other_best)
    out = DIGITS.decode(scores, 10)
    assert out[0].words[3] == "ba"
    rivals = [h for h in out[1:] if len(h.words) == 10]
    assert rivals and rivals[0].words[3] == "tám"
    assert 0.1 < rivals[0].confidence < out[0].confidence
    assert out[0].word_confidences[3] < 0.9


def test_variants_merge_into_one_reading() -> None:
    # The model splits one word between "năm" and "lăm": one digit 5, not two readings.
    scores = frames(said("bốn", "năm"))
    words = scores.words.copy()
    t = said("bốn", "năm").index("năm")
    words[t, WORDS.index("năm")] = math.log(0.5)
    words[t, WORDS.index("lăm")] = math.log(0.45)
    scores = FrameScores(scores.blank, words, scores.other, scores.other_best)
    out = DIGITS.decode(scores, 2)
    assert words_to_digits(out[0].words) == "45"
    assert out[0].word_confidences[1] > 0.9
    assert all(words_to_digits(h.words) != "45" for h in out[1:])


# -- grouped readings -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("words", "digits"),
    [
        ("mười hai", "12"),
        ("ba mươi tư", "34"),
        ("hai mươi mốt", "21"),
        ("năm mươi lăm", "55"),
        ("mười", "10"),
        ("bảy mươi", "70"),
        ("bảy mươi ba mươi tư", "7034"),  # a digit before mươi belongs to that mươi
        ("một trăm linh năm", "105"),
        ("hai trăm ba mươi tư", "234"),
        ("không năm", "05"),
    ],
)
def test_grouped_readings_decode_and_count_like_the_reader(words: str, digits: str) -> None:
    seq = words.split()
    out = DIGITS.decode(frames(said(*seq)), len(digits))
    assert out[0].words == tuple(seq)
    assert words_to_digits(out[0].words) == digits
    assert count_digits(seq) == len(digits)


def test_grouped_code_in_pairs_counts_ten() -> None:
    seq = ["mười", "hai", "ba", "mươi", "tư", "không", "năm", "sáu", "mươi", "bảy", "tám"]
    seq += ["mươi", "mốt"]
    out = DIGITS.decode(frames(said(*seq)), 10)
    assert words_to_digits(out[0].words) == "1234056781"


GRAMMAR_WORDS = [*DIGIT_WORDS, TEN, TENS, HUNDRED]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(GRAMMAR_WORDS), max_size=8))
def test_counts_follow_the_grammar_moves(seq: list[str]) -> None:
    assert count_digits(seq) == len(words_to_digits(seq))


def test_every_word_sequence_is_allowed() -> None:
    grammar = digit_grammar()
    for g in range(grammar.num_states):
        for w in range(len(grammar.words)):
            assert (g, w) in grammar.moves


# -- the number reader reads the decoder's words as the decoder counts them --------------------


def test_reader_agrees_with_the_decoder_on_grouped_readings() -> None:
    reader = pytest.importorskip("assistant.language.numbers").NumberReader.load()
    rng = np.random.default_rng(5)
    for _ in range(2000):
        seq = list(rng.choice(GRAMMAR_WORDS, size=int(rng.integers(1, 8))))
        assert reader.read_digits(" ".join(seq)).digits == words_to_digits(seq), seq


def test_decoder_words_are_reader_words() -> None:
    reader = pytest.importorskip("assistant.language.numbers").NumberReader.load()
    assert set(WORDS) <= reader.vocabulary_digits()
    assert set(YESNO.grammar.words) <= reader.vocabulary_yesno()


# -- yes / no -------------------------------------------------------------------------------

YN = YESNO.grammar.words


def test_yesno_reads_the_answer_words() -> None:
    assert text(YESNO.decode(frames(said("đúng", "rồi"), YN))) == "đúng rồi"
    assert text(YESNO.decode(frames(said("không"), YN))) == "không"
    assert text(YESNO.decode(frames(said("dạ", "không", "phải"), YN))) == "dạ không phải"


def test_yesno_silence_or_other_speech_is_no_answer() -> None:
    assert YESNO.decode(frames(["-"] * 30, YN)) == []
    assert YESNO.decode(frames(["-", "?", "?", "?", "-"], YN)) == []


def test_yesno_other_speech_next_to_politeness_is_marked_unknown() -> None:
    out = YESNO.decode(frames(["-", "dạ", "-", "?", "?", "-"], YN))
    assert out[0].words == ("dạ", UNKNOWN_WORD)
    assert len(out[0].word_confidences) == 2


def test_yesno_a_word_that_is_mostly_other_speech_is_unknown() -> None:
    spec: list[Frame] = ["-", "?", "-"]
    scores = frames(spec, YN, other=0.7)
    words = scores.words.copy()
    words[1, YN.index("có")] = math.log(0.25)  # some "có" inside other speech
    scores = FrameScores(scores.blank, words, scores.other, scores.other_best)
    assert YESNO.decode(scores) == []


def test_yesno_a_weak_but_unrivalled_answer_is_kept() -> None:
    out = YESNO.decode(frames(["-", "-", ("đúng", 0.5), "-", "-"], YN))
    assert text(out) == "đúng"


# -- helpers ---------------------------------------------------------------------------------


def test_restrict_sums_classes_and_keeps_the_rest_as_other() -> None:
    logp = np.log(np.array([[0.5, 0.2, 0.1, 0.15, 0.05]], dtype=np.float64)).astype(np.float32)
    classes = WordClasses((((1, 1.0), (2, 0.5)), ((3, 1.0),)))  # word 0: id 1 + ½ id 2
    scores = restrict(logp, 0, classes)
    assert math.isclose(math.exp(scores.blank[0]), 0.5, rel_tol=1e-5)
    assert math.isclose(math.exp(scores.words[0, 0]), 0.25, rel_tol=1e-5)
    assert math.isclose(math.exp(scores.words[0, 1]), 0.15, rel_tol=1e-5)
    assert math.isclose(math.exp(scores.other[0]), 0.05, rel_tol=1e-4)
    assert math.isclose(math.exp(scores.other_best[0]), 0.05, rel_tol=1e-4)
    # two classes outside the words: "other" is their total, "other_best" the larger one
    logp = np.log(np.array([[0.5, 0.2, 0.1, 0.1, 0.06, 0.04]])).astype(np.float32)
    scores = restrict(logp, 0, classes)
    assert math.isclose(math.exp(scores.other[0]), 0.10, rel_tol=1e-4)
    assert math.isclose(math.exp(scores.other_best[0]), 0.06, rel_tol=1e-4)


def test_greedy_labels_collapse_repeats_and_drop_filler() -> None:
    scores = frames(["-", "hai", "hai", "-", "?", "ba", "-"])
    assert [WORDS[i] for i in greedy_labels(scores)] == ["hai", "ba"]


def test_viterbi_paths_per_count() -> None:
    paths = viterbi(frames(said("hai", "ba")), DIGITS.grammar, SearchParams(), 4)
    assert paths[2].words == (WORDS.index("hai"), WORDS.index("ba"))
    assert paths[2].score > paths[1].score > paths[0].score
    assert all(s <= e for s, e in paths[2].spans)


# A small grammar for the exhaustive check: two words, three states, counts of 0, 1 and 2.
TINY = LoopGrammar(
    words=("a", "b"),
    num_states=3,
    moves={
        (0, 0): (1, 1),
        (0, 1): (2, 2),
        (1, 0): (0, 1),
        (1, 1): (1, 0),
        (2, 0): (1, 2),
        (2, 1): (2, 0),
    },
)


def best_by_brute_force(
    scores: FrameScores, grammar: LoopGrammar, params: SearchParams, max_count: int
) -> dict[int, float]:
    """The best score of every final count, over every labelling of every frame (blank, a word,
    the filler) that the grammar allows: CTC segments, the same word twice only with a blank
    between, sure-blank frames blank only (as the search passes them)."""
    n_words = len(grammar.words)
    filler = n_words
    blank = scores.blank.astype(np.float64)
    sure_blank = (1.0 - np.exp(blank)) < SKIP_NONBLANK
    labels = [-1, *range(n_words), *([filler] if params.use_filler else [])]
    best: dict[int, float] = {}
    for seq in itertools.product(labels, repeat=scores.num_frames):
        if any(x != -1 and sure_blank[t] for t, x in enumerate(seq)):
            continue
        score, state, count, current, after_blank = 0.0, 0, 0, None, False
        for t, x in enumerate(seq):
            if x == -1:
                score += float(blank[t])
                after_blank = True
                continue
            if x == filler:
                emit = float(scores.other[t]) - params.filler_frame_penalty
            else:
                emit = float(scores.words[t, x])
            if x == current and not after_blank:
                score += emit  # the same segment goes on
                continue
            if x == filler:
                entry = -params.filler_penalty
            else:
                if (state, x) not in grammar.moves:
                    break
                delta, state = grammar.moves[state, x]
                count += delta
                entry = -params.word_penalty
            score += emit + entry
            current, after_blank = x, False
        else:
            if count <= max_count:
                best[count] = max(best.get(count, NEG_INF), score)
    return best


@settings(max_examples=80, deadline=None)
@given(
    st.integers(0, 2**32 - 1),
    st.integers(1, 6),
    st.booleans(),
    st.sampled_from([1, 2, 4]),
)
def test_viterbi_finds_the_best_path_of_every_count(
    seed: int, n_frames: int, use_filler: bool, max_count: int
) -> None:
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(n_frames, 4)) * 2.5
    logits[:, 0] += rng.choice([0.0, 3.0, 12.0], size=n_frames)  # some frames sure blank
    logp = (logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))).astype(np.float32)
    scores = FrameScores(logp[:, 0], logp[:, 1:3], logp[:, 3], logp[:, 3])
    params = SearchParams(
        word_penalty=0.3, filler_penalty=1.0, filler_frame_penalty=0.2, use_filler=use_filler
    )
    paths = viterbi(scores, TINY, params, max_count)
    want = best_by_brute_force(scores, TINY, params, max_count)
    assert set(paths) == set(want)
    for k, path in paths.items():
        assert path.count == k
        assert math.isclose(path.score, want[k], rel_tol=1e-9, abs_tol=1e-9)
        assert len(path.words) == len(path.spans)


@settings(max_examples=60, deadline=None)
@given(
    st.integers(0, 2**32 - 1),
    st.integers(1, 60),
    st.lists(st.integers(0, 60), max_size=6),
    st.booleans(),
)
def test_the_search_fed_in_blocks_finds_the_paths_of_all_frames_at_once(
    seed: int, n_frames: int, cuts: list[int], use_filler: bool
) -> None:
    # The box feeds the digit search one model step at a time while the caller speaks; any
    # split of the frames must give the very paths of the whole search, runs of sure-blank
    # frames across a split included, and asking for the paths midway changes nothing.
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(n_frames, len(WORDS) + 2)) * 2.5
    logits[:, 0] += rng.choice([0.0, 4.0, 14.0, 14.0], size=n_frames)  # sure-blank runs
    logp = (logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))).astype(np.float32)
    scores = FrameScores(logp[:, 0], logp[:, 1:-1], logp[:, -1], logp[:, -1])
    params = SearchParams(use_filler=use_filler)
    whole = viterbi(scores, DIGITS.grammar, params, 12)
    search = Search(DIGITS.grammar, params, 12)
    start = 0
    for cut in [*sorted(c for c in cuts if c < n_frames), n_frames]:
        search.advance(scores.frames(start, cut))
        start = cut
        search.paths()
    assert search.frames == n_frames
    assert search.paths() == whole


def test_decode_takes_a_search_fed_with_the_same_frames_only() -> None:
    scores = frames(said(*TEN_DIGITS))
    search = DIGITS.search(10)
    for t in range(0, scores.num_frames, 10):
        search.advance(scores.frames(t, t + 10))
    assert DIGITS.decode(scores, 10, search) == DIGITS.decode(scores, 10)
    with pytest.raises(ValueError, match="frames"):
        DIGITS.decode(scores.frames(0, scores.num_frames - 1), 10, search)


def test_the_search_plan_is_built_once_per_grammar() -> None:
    grammar = digit_grammar()
    scores = frames(said("hai", "ba"))
    first = viterbi(scores, grammar, SearchParams(), 4)
    plan = decoder_module._plan(grammar, len(grammar.words), 5)
    assert viterbi(scores, grammar, SearchParams(), 4) == first
    assert decoder_module._plan(grammar, len(grammar.words), 5) is plan
    # an equal grammar object gets a plan of its own, and the cache stays bounded
    other = digit_grammar()
    assert decoder_module._plan(other, len(other.words), 5) is not plan
    for n in range(2 * decoder_module._PLANS_KEPT):
        decoder_module._plan(grammar, None, n + 1)
    assert len(decoder_module._PLANS) <= decoder_module._PLANS_KEPT


# -- a number closed where a group ends (GroupSplit) ----------------------------------------------

#: "bảy mươi | ba mười sáu | không không không không không": 70, 3, 16, 00000, ten digits; the
#: same words read as one number, "bảy mươi ba" (73), are nine.
GROUPS = ("bảy", "mươi", "ba", "mười", "sáu", *["không"] * 5)


def digits_of(out: list[decoder_module.Scored]) -> str:
    reader = pytest.importorskip("assistant.language.numbers").NumberReader.load()
    return str(reader.read_digits(out[0].text).digits) if out else ""


def test_a_number_is_closed_where_the_count_expected_says_a_group_ended() -> None:
    spec = said(*GROUPS[:2]) + ["-"] * 6 + said(*GROUPS[2:])[2:]  # the caller's pause
    scores = frames(spec)
    assert digits_of(DigitDecoder(split=None).decode(scores, 10)) == "731600000"  # one short
    out = DIGITS.decode(scores, 10)
    assert out[0].text.startswith("bảy mươi, ba") and digits_of(out) == "7031600000"
    # "bảy mươi ba mười, sáu" (73, 10, 6) is as many digits: right behind, so the dialog marks
    # the digits where the two differ unsure; the one-number reading further down
    assert words_to_digits(out[1].words) == "7310600000" and out[1].confidence > 0.3
    assert "731600000" in [words_to_digits(o.words) for o in out]
    # With nothing expected, or a reading already whole, the words are read as they are.
    assert digits_of(DIGITS.decode(scores, None)) == "731600000"
    assert digits_of(DIGITS.decode(scores, 9)) == "731600000"
    whole = frames(said("bảy", "mươi", "ba", *["một"] * 8))
    assert digits_of(DIGITS.decode(whole, 10)) == "7311111111"


def test_a_split_does_not_make_a_partial_reading_look_whole() -> None:
    # "bảy mươi ba một" and a stop: 731, or 7031 split; both far short, and the split costs.
    out = DIGITS.decode(frames(said("bảy", "mươi", "ba", "một")), 10)
    assert digits_of(out) == "731"


def test_a_pause_chooses_where_to_close_when_there_are_two_places() -> None:
    # "bảy mươi ba tám mươi tư một một một một", nine digits expected: 73 84 1111 is one short,
    # and closing after either "mươi" makes nine. The pause after the first decides; the other
    # split stays right behind it, so the dialog marks the digits where they differ unsure.
    words = ("bảy", "mươi", "ba", "tám", "mươi", "tư", *["một"] * 4)
    spec = said(*words[:2]) + ["-"] * 6 + said(*words[2:])[2:]
    out = DIGITS.decode(frames(spec), 9)
    assert digits_of(out) == "703841111"
    assert words_to_digits(out[1].words) == "738041111"
    assert out[1].confidence > 0.3
    from assistant.core.dialog import Heard
    from assistant.core.ports import Hypothesis, Recognition
    from assistant.language.numbers import NumberReader
    from dialogs.reset import ResetDialog

    rec = Recognition(tuple(Hypothesis(s.text, s.confidence, s.word_confidences) for s in out))
    reading = ResetDialog(NumberReader.load()).read(Heard(rec))
    assert reading.digits == "703841111" and reading.unsure == {1, 2, 3}


# -- a code read in one go is never silently shortened (FillRule) ------------------------------


def soft_ba(p: float) -> list[Frame]:
    """Ten digits, the "ba" soft: two frames where the model gives it only ``p``."""
    spec = said(*TEN_DIGITS[:3])
    spec += [("ba", p), ("ba", p), "-", "-"]
    return spec + said(*TEN_DIGITS[4:])[2:]


def test_a_soft_word_no_longer_shortens_the_code() -> None:
    scores = frames(soft_ba(0.04))
    old = DigitDecoder(fill=None).decode(scores, 10)
    assert text(old) == " ".join(w for w in TEN_DIGITS if w != "ba")  # the old, short reading
    out = DIGITS.decode(scores, 10)
    assert text(out) == " ".join(TEN_DIGITS)  # the whole reading first...
    wc = out[0].word_confidences
    assert wc[3] <= DIGITS.fill.filled_confidence if DIGITS.fill else False  # ...its fill unsure
    assert min(wc[:3] + wc[4:]) > 0.9
    assert text(out[1:]) == text(old)  # and the short reading kept as the runner-up


def test_a_caller_who_reads_four_digits_is_not_filled() -> None:
    out = DIGITS.decode(frames(said(*TEN_DIGITS[:4])), 10)
    assert text(out) == " ".join(TEN_DIGITS[:4])


def test_no_fill_when_nothing_is_expected_or_the_gap_is_large() -> None:
    scores = frames(soft_ba(0.04))
    assert text(DIGITS.decode(scores, None)) != " ".join(TEN_DIGITS)
    silent = frames(soft_ba(1e-5))  # no trace of the word at all: nothing to fill
    assert text(DIGITS.decode(silent, 10)) == " ".join(w for w in TEN_DIGITS if w != "ba")


def test_the_dialog_reads_back_unsure_then_asks_again_for_the_filled_group() -> None:
    from assistant.core.dialog import Heard, Listen, Say
    from assistant.core.ports import Hypothesis, Recognition
    from assistant.language.numbers import NumberReader
    from dialogs.reset import Phase, ResetDialog, ResetState

    out = DIGITS.decode(frames(soft_ba(0.04)), 10)
    rec = Recognition(tuple(Hypothesis(s.text, s.confidence, s.word_confidences) for s in out))
    dialog = ResetDialog(NumberReader.load())
    reading = dialog.read(Heard(rec))
    assert reading.digits == "0123456789" and 3 in reading.unsure
    state = ResetState(phase=Phase.COLLECT, caller="0912345678", attempts=1)
    state, actions = dialog.step(state, Heard(rec))
    assert [a.prompt for a in actions if isinstance(a, Say)] == ["read_back_unsure"]
    assert actions[-1] == Listen.yesno()
    _, actions = dialog.step(state, Heard.text("không"))  # the filled group is asked for
    assert actions == (
        Say("ask_group", {"ordinal": 1, "count": 4}),
        Say("read_slowly"),
        Listen.digits(4),
    )


# -- yes/no hears every clear answer ------------------------------------------------------------


def split_frames(
    parts: dict[str, float], before: int = 2, after: int = 2, fill: float = 1e-6
) -> FrameScores:
    """Blank frames around two frames whose non-blank mass is split between ``parts``."""
    n = before + 2 + after
    probs = np.full((n, len(YN) + 2), fill)
    probs[:, 0] = 1.0
    for t in (before, before + 1):
        probs[t, 0] = 1.0 - sum(parts.values())
        for w, p in parts.items():
            probs[t, 1 + YN.index(w)] = p
    probs /= probs.sum(axis=1, keepdims=True)
    logp = np.log(probs).astype(np.float32)
    return FrameScores(logp[:, 0], logp[:, 1:-1], logp[:, -1], logp[:, -1])


def test_yesno_an_answer_split_between_its_words_is_still_heard() -> None:
    from assistant.language.numbers import NumberReader

    reader = NumberReader.load()
    # A telephone "không" the model splits between "không", "hông" and "sai": none alone holds
    # half of the speech, all are a no.
    out = YESNO.decode(split_frames({"không": 0.3, "hông": 0.3, "sai": 0.3}))
    assert out and reader.read_yesno(out[0].text) is not None
    assert reader.read_yesno(out[0].text).value == "no"  # type: ignore[union-attr]
    # Split evenly between a yes and a no word, it stays unclear (never a guess)...
    mixed = YESNO.decode(split_frames({"có": 0.45, "không": 0.45}, fill=1e-30))
    assert not mixed or reader.read_yesno(mixed[0].text) is None
    # ...and the answer the model ranks first is the answer heard.
    tilted = YESNO.decode(split_frames({"có": 0.35, "không": 0.55}))
    assert tilted and str(reader.read_yesno(tilted[0].text)) == "no"


def _log32(a: npt.NDArray[np.float64]) -> npt.NDArray[np.float32]:
    return np.log(a).astype(np.float32)


def scattered(word: str, p: float, other: float, pieces: int, before: int = 2) -> FrameScores:
    """Blank frames around two frames where ``word`` holds ``p`` and ``other`` is spread
    evenly over ``pieces`` classes outside the grammar (their total and their best one)."""
    n = before + 4
    probs = np.full((n, len(YN)), 1e-6)
    blank = np.full(n, 1.0)
    rest, best = np.full(n, 1e-6), np.full(n, 1e-6)
    for t in (before, before + 1):
        probs[t, YN.index(word)] = p
        rest[t], best[t] = other, other / pieces
        blank[t] = 1.0 - p - other
    return FrameScores(_log32(blank), _log32(probs), _log32(rest), _log32(best))


def test_yesno_an_answer_that_is_the_best_class_is_heard_among_scattered_speech() -> None:
    # A telephone "không" at 0.35 while 0.45 of the frame is spread over six other tokens,
    # none of them above 0.08: the model's best class is "không" (free mode writes it), so
    # yes/no mode must hear it too; against all other speech together it held under half.
    assert text(YESNO.decode(scattered("không", 0.35, 0.45, pieces=6))) == "không"
    # One other token stronger than the word is a rival: unknown speech, no answer.
    assert YESNO.decode(scattered("không", 0.35, 0.45, pieces=1)) == []


def faint(peaks: dict[int, tuple[str, float]], n: int = 12) -> FrameScores:
    """Blank everywhere but the given frames, where a word ("?": a class outside the grammar)
    holds the given probability."""
    probs = np.full((n, len(YN)), 1e-6)
    blank, other = np.full(n, 1.0), np.full(n, 1e-6)
    for t, (word, p) in peaks.items():
        if word == "?":
            other[t] = p
        else:
            probs[t, YN.index(word)] = p
        blank[t] = 1.0 - p
    return FrameScores(_log32(blank), _log32(probs), _log32(other), _log32(other))


def test_yesno_a_faint_unrivalled_answer_is_heard() -> None:
    # On a noisy line the model gives blank nearly all the mass of an answer it still ranks
    # first: too weak for the search, heard because nothing in the turn rivals it.
    out = YESNO.decode(faint({5: ("đúng", 0.08), 6: ("đúng", 0.06)}))
    assert text(out) == "đúng" and out[0].word_confidences == pytest.approx((0.08,), rel=1e-3)
    assert text(YESNO.decode(faint({4: ("hông", 0.05), 5: ("không", 0.04)}))) == "hông"
    # The other answer anywhere in the turn within five times: unclear, never a guess.
    assert YESNO.decode(faint({5: ("đúng", 0.08), 9: ("không", 0.02)})) == []
    # Other speech in the turn within five times: unclear.
    assert YESNO.decode(faint({5: ("đúng", 0.08), 1: ("?", 0.02)})) == []
    # Below 0.05, or nothing at all: nothing heard.
    assert YESNO.decode(faint({5: ("đúng", 0.04)})) == []
    assert YESNO.decode(faint({})) == []


def levels_of(n: int, loud: dict[int, float], floor: float = -40.0) -> npt.NDArray[np.float32]:
    """The audio's level per output frame (dB): ``floor`` but for the given frames."""
    out = np.full(n, floor, dtype=np.float32)
    for t, db in loud.items():
        out[t] = db
    return out


def test_yesno_a_word_far_below_the_turns_loudest_speech_is_someone_elses() -> None:
    # The model writes a word about five frames after its loudest audio. A caller's "không"
    # the model missed (loud audio at 2-4, no word written) and a quieter "ok" from a voice
    # nearby (written at 14, its audio at 9-10, 12 dB below): no answer, rather than a wrong one.
    quiet_ok: list[Frame] = [*["-"] * 14, "ok", *["-"] * 3]
    scores = frames(quiet_ok, YN)
    caller_missed = levels_of(18, {2: 0.0, 3: 0.0, 4: 0.0, 9: -12.0, 10: -12.0})
    assert text(YESNO.decode(scores)) == "ok"  # without levels, every word is the caller's
    assert YESNO.decode(scores, caller_missed) == []
    # The same word as the loudest speech of the turn, or within the margin: heard.
    assert text(YESNO.decode(scores, levels_of(18, {8: 0.0, 9: 0.0, 10: 0.0}))) == "ok"
    assert text(YESNO.decode(scores, levels_of(18, {2: 0.0, 3: 0.0, 9: -8.0, 10: -8.0}))) == "ok"
    # The caller's answer beside a voice nearby: the caller's answer, the other as other speech.
    two: list[Frame] = [*["-"] * 6, "không", *["-"] * 7, "ok", *["-"] * 3]
    both = frames(two, YN)
    out = YESNO.decode(both, levels_of(18, {1: 0.0, 2: 0.0, 3: 0.0, 9: -14.0, 10: -14.0}))
    assert out[0].words == ("không", UNKNOWN_WORD)
    assert YesNoDecoder(background_db=None).decode(both, levels_of(18, {2: 0.0}))[0].words == (
        "không",
        "ok",
    )


def test_yesno_a_faint_answer_from_a_voice_nearby_is_not_heard() -> None:
    scores = faint({15: ("đúng", 0.08)}, n=20)
    assert text(YESNO.decode(scores, levels_of(20, {10: -15.0, 1: 0.0, 2: 0.0, 3: 0.0}))) == ""
    assert text(YESNO.decode(scores, levels_of(20, {10: 0.0, 11: 0.0, 12: 0.0}))) == "đúng"


def test_yesno_a_turn_without_levels_or_with_too_few_is_heard_as_before() -> None:
    scores = frames(said("đúng", "rồi"), YN)
    assert text(YESNO.decode(scores, np.zeros(0, dtype=np.float32))) == "đúng rồi"
    assert text(YESNO.decode(scores, levels_of(2, {0: 0.0}))) == "đúng rồi"


def test_yesno_counts_tone_neighbours_of_the_answer_words() -> None:
    classes = YESNO.word_classes({w: i for i, w in enumerate([*YN, "cò", "sái"])})
    members = dict(zip(YN, classes.members, strict=True))
    assert (len(YN), 0.5) in members["có"] and (len(YN) + 1, 0.5) in members["sai"]
