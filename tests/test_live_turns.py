"""Answering like a person on a simulated line: turns that end as soon as they are complete,
barge-in within one frame, voice activity from an injected detector. Nothing sleeps: the media
clock is the only clock, so latencies are exact."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from assistant.accounts.store import SqlAccountStore
from assistant.audio.endpoint import EndpointSettings
from assistant.call.channels.live import GrammarJudge, LiveChannel, LiveSettings
from assistant.call.prompt_voice import PromptVoice
from assistant.call.runtime import CallRuntime, CallSummary
from assistant.core.dialog import Event, Heard, Listen, Outcome
from assistant.core.ports import PCM, ListenMode, ListenSpec, PartialReading, Recognition
from assistant.language.numbers import NumberReader
from assistant.language.prompts import Prompts
from assistant.testing.audio import FakeSynthesizer
from assistant.testing.media import (
    BoxDone,
    BoxSpeaks,
    Do,
    Hangup,
    ScriptedMedia,
    Silence,
    Speak,
    Step,
    ToneRecognizer,
    ToneSession,
)
from dialogs.reset import ResetDialog

CODE_WORDS = "không một hai ba bốn năm sáu bảy tám chín"
FIRST, REST = "không một hai ba", "bốn năm sáu bảy tám chín"
PHRASES = [CODE_WORDS, "đúng rồi", "không", FIRST, REST, "ờ"]
CALLER = "0912345678"


@pytest.fixture()
def store(tmp_path: Path) -> SqlAccountStore:
    s = SqlAccountStore(f"sqlite:///{tmp_path / 'db.sqlite3'}")
    s.create_schema()
    s.add_account("0123456789", CALLER)
    return s


@pytest.fixture(scope="module")
def prompts() -> Prompts:
    return Prompts.load()


@pytest.fixture(scope="module")
def reader() -> NumberReader:
    return NumberReader.load()


@pytest.fixture(scope="module")
def voice(prompts: Prompts) -> PromptVoice:
    return PromptVoice(prompts, FakeSynthesizer(8000, seconds_per_char=0.01), 8000)


@pytest.fixture()
def asr() -> ToneRecognizer:
    return ToneRecognizer(PHRASES)


def say(asr: ToneRecognizer, text: str) -> Speak:
    return Speak(asr.clip(text, 1.0, rate=8000))


@dataclass
class EnergyVad:
    """A stand-in detector (loud 20 ms frames are speech) that counts the streams made."""

    rate: int = 8000
    frame_samples: int = 160
    made: list[int] = field(default_factory=list)

    def __call__(self, rate: int) -> EnergyVad:
        self.made.append(rate)
        return EnergyVad(rate, max(1, rate // 50))

    def probability(self, frame: PCM) -> float:
        return 0.9 if float(np.sqrt(np.mean(frame.astype(np.float64) ** 2))) > 300 else 0.0

    def reset(self) -> None:
        return None


def run_call(
    media: ScriptedMedia,
    asr: ToneRecognizer,
    voice: PromptVoice,
    prompts: Prompts,
    store: SqlAccountStore,
    reader: NumberReader,
    *,
    judge: bool = True,
    vad: EnergyVad | None = None,
) -> CallSummary:
    session = asr.open_session()
    channel = LiveChannel(  # the runtime attaches its timing sink to the channel
        media,
        session,
        asr.sample_rate,
        voice,
        clock=media.clock,
        judge=GrammarJudge(reader) if judge else None,
        vad=vad,
    )
    runtime = CallRuntime(
        ResetDialog(reader),
        store,
        channel,
        prompts,
        caller=media.caller,
        call_id=media.call_id,
        clock=media.clock,
        reveal_password=True,
        reveal_codes=True,  # the tests look at the digits heard
    )
    return runtime.run()


def script(asr: ToneRecognizer) -> list[Step]:
    return [BoxDone(0.3), say(asr, CODE_WORDS), BoxDone(0.3), say(asr, "đúng rồi"), BoxDone(0.3)]


def test_a_complete_code_and_a_yes_are_answered_within_300_ms(  # type: ignore[no-untyped-def]
    asr, voice, prompts, store, reader
) -> None:
    media = ScriptedMedia([*script(asr), say(asr, "không")])
    summary = run_call(media, asr, voice, prompts, store, reader)
    assert summary.outcome == Outcome.PASSWORD_ISSUED.value
    latencies = summary.stages["reply_latency"]
    assert len(latencies) == 3  # after the code, the yes, the no
    assert all(0.2 <= x <= 0.3 for x in latencies), latencies
    code, yes, no = summary.stages["endpoint_wait"]
    assert code == pytest.approx(0.2, abs=0.021)  # EndpointSettings.digits()
    assert yes == pytest.approx(0.25, abs=0.021) and no == pytest.approx(0.25, abs=0.021)


def test_without_the_judge_the_same_call_waits_the_long_silences(  # type: ignore[no-untyped-def]
    asr, voice, prompts, store, reader
) -> None:
    media = ScriptedMedia([*script(asr), say(asr, "không")])
    summary = run_call(media, asr, voice, prompts, store, reader, judge=False)
    assert summary.outcome == Outcome.PASSWORD_ISSUED.value
    code, yes, no = summary.stages["reply_latency"]
    assert code >= 1.4 and yes >= 0.7 and no >= 0.7


def test_a_code_read_in_parts_waits_between_groups(  # type: ignore[no-untyped-def]
    asr, voice, prompts, store, reader
) -> None:
    media = ScriptedMedia(
        [
            BoxDone(0.3),
            say(asr, FIRST),
            Silence(0.6),  # a pause between groups: the code is not complete, the box waits
            say(asr, REST),
            BoxDone(0.3),
            say(asr, "đúng rồi"),
            BoxDone(0.3),
            Hangup(),
        ]
    )
    summary = run_call(media, asr, voice, prompts, store, reader)
    assert summary.outcome == Outcome.PASSWORD_ISSUED.value
    assert summary.turns[0].parsed == {"digits": "0123456789"}  # one turn, both groups
    assert summary.stages["endpoint_wait"][0] == pytest.approx(0.2, abs=0.021)


def test_an_unclear_answer_is_not_cut_short(asr, voice, prompts, store, reader) -> None:  # type: ignore[no-untyped-def]
    media = ScriptedMedia(
        [BoxDone(0.3), say(asr, CODE_WORDS), BoxDone(0.3), say(asr, "ờ"), Silence(2.0), Hangup()]
    )
    summary = run_call(media, asr, voice, prompts, store, reader)
    waits = summary.stages["endpoint_wait"]
    assert waits[0] < 0.3 and waits[1] >= 0.7  # "ờ" is neither yes nor no: the long silence


def test_barge_in_stops_the_prompt_in_the_frame_the_speech_is_confirmed(  # type: ignore[no-untyped-def]
    asr, voice, prompts, store, reader
) -> None:
    vad = EnergyVad()
    media = ScriptedMedia([BoxSpeaks(0.5), say(asr, CODE_WORDS), BoxDone(0.3), Hangup()])
    run_call(media, asr, voice, prompts, store, reader, vad=vad)
    caller = media.caller_audio().samples
    onset = int(np.flatnonzero(caller)[0]) // 160 * 160 / 8000  # the frame speech begins in
    assert media.flushes, "the greeting was not interrupted"
    # min_speech_s (0.12 s) of speech confirms a barge-in; the flush comes in that frame
    assert 0.12 - 1e-6 <= media.flushes[0] - onset <= 0.12 + 0.02 + 1e-6
    assert vad.made and set(vad.made) == {8000}  # barge-in and listening used the detector


def listen_once(
    media: ScriptedMedia, asr: ToneRecognizer, voice: PromptVoice, reader: NumberReader, **kw: Any
) -> tuple[Event, ToneSession]:
    session = asr.open_session()
    channel = LiveChannel(
        media,
        session,
        asr.sample_rate,
        voice,
        clock=media.clock,
        judge=GrammarJudge(reader),
        settings=LiveSettings(**kw),
    )
    return channel.listen(Listen.digits(10)), session


def test_the_silence_before_the_caller_speaks_costs_no_recognition(  # type: ignore[no-untyped-def]
    asr, voice, reader
) -> None:
    script: list[Step] = [Silence(3.0), say(asr, CODE_WORDS), Silence(2.0)]
    event, session = listen_once(ScriptedMedia(list(script)), asr, voice, reader)
    assert isinstance(event, Heard) and event.recognition.text == CODE_WORDS
    fed_s = session.fed[-1] / asr.sample_rate
    # 0.5 s of lead-in, 1 s of speech and the ~0.3 s until the turn ended: not the 3 s before
    assert 1.5 <= fed_s <= 2.0, fed_s
    event, session = listen_once(ScriptedMedia(list(script)), asr, voice, reader, lead_in_s=None)
    assert isinstance(event, Heard) and event.recognition.text == CODE_WORDS
    assert session.fed[-1] / asr.sample_rate >= 4.0  # without the lead-in: everything


class FlushingSession:
    """A session whose running reading lacks the last digit and the last 0.3 s until a
    flushed reading hears them (as the model's held-back step does); it keeps every sample
    it is fed."""

    def __init__(self) -> None:
        self.fed: list[PCM] = []

    def begin(self, spec: ListenSpec) -> None:
        self.fed = []

    def feed(self, pcm: PCM) -> str:
        self.fed.append(pcm.copy())
        return ""

    def reading(self, *, flush: bool = False, urgent: bool = True) -> PartialReading:
        words = CODE_WORDS if flush else CODE_WORDS.rsplit(" ", 1)[0]
        heard_s = sum(len(p) for p in self.fed) / 8000 - (0.0 if flush else 0.3)
        return PartialReading(words, (0.9,) * len(words.split()), heard_s, 0.12)

    def end(self) -> Recognition:
        return Recognition.of(CODE_WORDS)

    def close(self) -> None:
        return None


def test_speech_after_a_complete_reading_is_heard_with_the_silence_before_it(
    voice: PromptVoice, reader: NumberReader
) -> None:
    """A complete flushed reading keeps the silence after it from the recogniser (so that
    end() can reuse that model step); when the caller speaks again within it, the recogniser
    hears all of it at once, the pause and then the speech, so the turn still ends soon after
    the new speech."""
    loud = (3000 * np.sin(np.arange(8000) * 0.3)).astype(np.int16)
    # a pause the flushed reading is taken in (0.15 s of quiet) but shorter than the 0.2 s
    # after which a complete code ends
    script: list[Step] = [Silence(1.0), Speak(loud), Silence(0.18), Speak(loud[:2400])]
    media = ScriptedMedia([*script, Silence(3.0)])
    session = FlushingSession()
    stages: dict[str, float] = {}
    channel = LiveChannel(
        media,
        session,
        8000,
        voice,
        clock=media.clock,
        judge=GrammarJudge(reader),
        stage=stages.__setitem__,
    )
    event = channel.listen(Listen.digits(10))
    assert isinstance(event, Heard)
    assert stages["endpoint_wait"] < 0.3  # ended complete after the second stretch
    fed = np.concatenate(session.fed)
    # both stretches of speech whole, and the whole 0.18 s pause between them
    assert np.count_nonzero(fed) >= 8000 + 2400 - 10
    sounding = np.flatnonzero(fed)
    assert int(np.diff(sounding).max()) - 1 >= 1440 - 2


class OpenSession(FlushingSession):
    """A session whose running reading is a complete code ending on a tens word."""

    def reading(self, *, flush: bool = False, urgent: bool = True) -> PartialReading:
        heard_s = sum(len(p) for p in self.fed) / 8000
        return PartialReading(OPEN_CODE, (0.9,) * len(OPEN_CODE.split()), heard_s, 0.12)

    def end(self) -> Recognition:
        return Recognition.of(OPEN_CODE)


def test_after_an_open_reading_the_recogniser_keeps_hearing_the_line(
    voice: PromptVoice, reader: NumberReader
) -> None:
    """The silence after a complete reading is kept from the recogniser, but not after an
    open one: a unit too soft to start the detector's speech still reaches it."""
    loud = (3000 * np.sin(np.arange(8000) * 0.3)).astype(np.int16)
    soft = (30 * np.sin(np.arange(2400) * 0.3)).astype(np.int16)  # -60 dBFS: never speech
    media = ScriptedMedia([Silence(1.0), Speak(loud), Silence(0.3), Speak(soft), Silence(3.0)])
    session = OpenSession()
    channel = LiveChannel(
        media, session, 8000, voice, clock=media.clock, judge=GrammarJudge(reader)
    )
    event = channel.listen(Listen.digits(10))
    assert isinstance(event, Heard)
    fed = np.concatenate(session.fed)
    assert np.count_nonzero(fed) >= 8000 + 0.9 * np.count_nonzero(soft)


def test_the_lead_in_keeps_the_latency_and_the_endpoint(  # type: ignore[no-untyped-def]
    asr, voice, prompts, store, reader
) -> None:
    media = ScriptedMedia([BoxDone(2.0), say(asr, CODE_WORDS), BoxDone(1.5), say(asr, "đúng rồi")])
    summary = run_call(media, asr, voice, prompts, store, reader)
    assert summary.outcome == Outcome.PASSWORD_ISSUED.value
    assert all(0.2 <= x <= 0.3 for x in summary.stages["endpoint_wait"])


def test_speech_too_quiet_for_the_detector_is_still_heard(  # type: ignore[no-untyped-def]
    voice, reader
) -> None:
    quiet_ears = ToneRecognizer(PHRASES, min_dbfs=-75.0)
    # -60 dBFS: below the endpointer's -50 dBFS floor, so it never starts an utterance
    whisper = Speak(quiet_ears.clip(CODE_WORDS, 1.0, rate=8000, dbfs=-60.0))
    media = ScriptedMedia([Silence(1.0), whisper, Silence(8.0)])
    event, session = listen_once(media, quiet_ears, voice, reader)
    assert isinstance(event, Heard) and event.recognition.text == CODE_WORDS
    assert session.fed[-1] >= 6.0 * quiet_ears.sample_rate  # the held turn, heard after all


def test_the_judge_reads_like_the_dialog(reader: NumberReader) -> None:
    judge = GrammarJudge(reader)
    digits = ListenSpec(ListenMode.DIGITS, 4)
    assert judge.complete(digits, PartialReading("một hai ba bốn"))
    assert not judge.complete(digits, PartialReading("một hai ba"))
    assert not judge.complete(digits, PartialReading("một hai ba bốn năm"))
    assert not judge.complete(digits, PartialReading("một hai ba bốn", (0.9, 0.9, 0.3, 0.9)))
    assert not judge.complete(ListenSpec(ListenMode.DIGITS), PartialReading("một hai ba bốn"))
    yesno = ListenSpec(ListenMode.YESNO)
    assert judge.complete(yesno, PartialReading("đúng"))
    assert judge.complete(yesno, PartialReading("không"))
    assert not judge.complete(yesno, PartialReading("đúng không"))  # contradictory: unclear
    assert not judge.complete(yesno, PartialReading(""))
    assert not judge.complete(ListenSpec(ListenMode.FREE), PartialReading("đúng"))


def test_a_reading_that_ends_on_a_tens_word_is_still_open(reader: NumberReader) -> None:
    judge = GrammarJudge(reader)
    ten = ListenSpec(ListenMode.DIGITS, 10)
    assert judge.still_open(ten, PartialReading("một hai ba bốn năm sáu bảy tám bốn mươi"))
    assert judge.still_open(ten, PartialReading("một hai ba bốn năm sáu bảy tám chín mười"))
    assert not judge.still_open(ten, PartialReading("một hai ba bốn năm sáu bảy tám bốn mươi ba"))
    assert not judge.still_open(ten, PartialReading("một hai ba bốn năm sáu bảy tám chín không"))
    assert not judge.still_open(ten, PartialReading(""))
    assert not judge.still_open(ListenSpec(ListenMode.YESNO), PartialReading("mười"))


OPEN_CODE = "một hai ba bốn năm sáu bảy tám bốn mươi"  # 1234567840: ten digits already


def test_a_unit_said_after_a_tens_word_is_not_cut_off(voice, reader) -> None:  # type: ignore[no-untyped-def]
    """ "... bốn mươi" is ten digits (40), but a caller who pauses before the unit ("ba":
    43) longer than the short silence still has it heard."""
    ears = ToneRecognizer([OPEN_CODE, "ba"])
    media = ScriptedMedia(
        [Silence(0.5), say(ears, OPEN_CODE), Silence(0.4), say(ears, "ba"), Silence(3.0)]
    )
    event, _ = listen_once(media, ears, voice, reader)
    assert isinstance(event, Heard)
    assert reader.read_digits(event.recognition.text).digits == "1234567843"


def test_a_code_that_ends_on_a_tens_word_ends_after_the_open_silence(voice, reader) -> None:  # type: ignore[no-untyped-def]
    ears = ToneRecognizer([OPEN_CODE])
    media = ScriptedMedia([Silence(0.5), say(ears, OPEN_CODE), Silence(3.0)])
    event, _ = listen_once(media, ears, voice, reader)
    assert isinstance(event, Heard)
    assert reader.read_digits(event.recognition.text).digits == "1234567840"
    waited = media.clock() - 1.5  # the speech ended at 1.5 s
    settings = EndpointSettings.digits()
    assert settings.open_silence_s is not None
    assert settings.open_silence_s - 1e-9 <= waited <= settings.open_silence_s + 0.06


def test_a_flush_is_spent_only_when_the_reading_could_be_complete(reader: NumberReader) -> None:
    judge = GrammarJudge(reader)
    ten = ListenSpec(ListenMode.DIGITS, 10)
    assert not judge.worth_flushing(ten, PartialReading("một hai ba"))  # a pause between groups
    assert not judge.worth_flushing(ten, None)
    assert judge.worth_flushing(ten, PartialReading("một hai ba bốn năm sáu bảy tám"))
    assert judge.worth_flushing(ListenSpec(ListenMode.DIGITS, 2), None)
    assert judge.worth_flushing(ListenSpec(ListenMode.YESNO), PartialReading(""))
    assert not judge.worth_flushing(ListenSpec(ListenMode.FREE), PartialReading("một"))


def test_only_a_flush_that_lacks_one_digit_at_most_goes_before_other_calls(
    reader: NumberReader,
) -> None:
    judge = GrammarJudge(reader)
    ten = ListenSpec(ListenMode.DIGITS, 10)
    assert judge.flush_is_urgent(ten, PartialReading("một hai ba bốn năm sáu bảy tám chín"))
    assert judge.flush_is_urgent(ten, PartialReading("không một hai ba bốn năm sáu bảy tám chín"))
    # two digits short: still worth a flush, but it waits its turn
    assert judge.worth_flushing(ten, PartialReading("một hai ba bốn năm sáu bảy tám"))
    assert not judge.flush_is_urgent(ten, PartialReading("một hai ba bốn năm sáu bảy tám"))
    assert not judge.flush_is_urgent(ten, PartialReading("mười hai ba bốn năm sáu bảy tám"))
    assert judge.flush_is_urgent(ListenSpec(ListenMode.DIGITS, 1), None)
    assert not judge.flush_is_urgent(ListenSpec(ListenMode.DIGITS, 2), None)
    assert judge.flush_is_urgent(ListenSpec(ListenMode.YESNO), PartialReading(""))


class UrgencySession(FlushingSession):
    """A :class:`FlushingSession` whose running reading lacks ``short`` digits; it records
    the urgency of every flushed reading asked for."""

    def __init__(self, short: int) -> None:
        super().__init__()
        self.short = short
        self.flushes: list[bool] = []

    def reading(self, *, flush: bool = False, urgent: bool = True) -> PartialReading:
        if flush:
            self.flushes.append(urgent)
        words = CODE_WORDS if flush else " ".join(CODE_WORDS.split()[: -self.short])
        heard_s = sum(len(p) for p in self.fed) / 8000 - (0.0 if flush else 0.3)
        return PartialReading(words, (0.9,) * len(words.split()), heard_s, 0.12)


@pytest.mark.parametrize(("short", "urgent"), [(1, True), (2, False)])
def test_the_channel_asks_for_a_flush_as_urgent_as_the_judge_says(
    voice: PromptVoice, reader: NumberReader, short: int, urgent: bool
) -> None:
    loud = (3000 * np.sin(np.arange(8000) * 0.3)).astype(np.int16)
    media = ScriptedMedia([Silence(0.3), Speak(loud), Silence(2.0)])
    session = UrgencySession(short)
    channel = LiveChannel(
        media, session, 8000, voice, clock=media.clock, judge=GrammarJudge(reader)
    )
    event = channel.listen(Listen.digits(10))
    assert isinstance(event, Heard) and event.recognition.text == CODE_WORDS
    assert session.flushes == [urgent]


def test_a_box_behind_the_line_counts_its_backlog_in_the_reply_latency(  # type: ignore[no-untyped-def]
    asr, voice, prompts, store, reader
) -> None:
    """While the caller speaks, half a second of wall time passes that the box spends on no
    audio (a stalled box: its frames wait in the queue). The caller waits that long too, so
    the reply latency counts it, and ``rx_backlog`` says where it went."""
    holder: list[ScriptedMedia] = []
    stall = Do(lambda: holder[0].clock.advance(0.5))
    media = ScriptedMedia(
        [BoxDone(0.3), say(asr, FIRST), stall, say(asr, REST), BoxDone(0.3), Hangup()]
    )
    holder.append(media)
    summary = run_call(media, asr, voice, prompts, store, reader)
    backlog = summary.stages["rx_backlog"][0]
    assert backlog == pytest.approx(0.5, abs=0.021)
    assert summary.stages["reply_latency"][0] == pytest.approx(
        summary.stages["endpoint_wait"][0] + 0.5, abs=0.03
    )
