"""The scripted recogniser used to test the runtime without speech models."""

from __future__ import annotations

import numpy as np
import pytest

from assistant.core.errors import RecognizerError
from assistant.core.ports import (
    Audio,
    Hypothesis,
    ListenMode,
    ListenSpec,
    Recognition,
    Recognizer,
    RecognizerSession,
)
from assistant.testing.recognizer import FakeRecognizer, FakeScriptExhausted

DIGITS = ListenSpec(ListenMode.DIGITS, 10)
YESNO = ListenSpec(ListenMode.YESNO)


def _pcm(n: int, value: int = 100) -> np.ndarray:
    return np.full(n, value, dtype=np.int16)


def _utter(session: RecognizerSession, spec: ListenSpec, *chunks: np.ndarray) -> Recognition:
    session.begin(spec)
    for chunk in chunks:
        session.feed(chunk)
    return session.end()


def test_satisfies_the_ports() -> None:
    recognizer: Recognizer = FakeRecognizer(["có"])
    session: RecognizerSession = recognizer.open_session()
    assert recognizer.sample_rate == 16000
    assert _utter(session, YESNO, _pcm(160)).text == "có"


def test_answers_in_script_order_across_sessions_and_records_specs() -> None:
    alternatives = Recognition((Hypothesis("một hai", 0.7), Hypothesis("một bảy", 0.2)))
    fake = FakeRecognizer(["không một hai", alternatives, ""])
    first, second = fake.open_session(), fake.open_session()
    assert _utter(first, DIGITS, _pcm(320)).text == "không một hai"
    assert _utter(second, DIGITS, _pcm(160)) is alternatives
    assert _utter(first, YESNO) == Recognition()  # "" means nothing heard
    assert fake.specs == [DIGITS, DIGITS, YESNO]
    assert first.specs == [DIGITS, YESNO]
    assert second.specs == [DIGITS]
    assert fake.remaining == 0


def test_keeps_the_audio_of_each_utterance() -> None:
    fake = FakeRecognizer(["a"], sample_rate=8000)
    session = fake.open_session()
    _utter(session, DIGITS, _pcm(80, 1), _pcm(40, 2))
    (utterance,) = fake.utterances
    assert utterance.spec == DIGITS
    assert utterance.feeds == 2
    assert utterance.audio == Audio(np.array([1] * 80 + [2] * 40, dtype=np.int16), 8000)


def test_callable_script_sees_the_audio() -> None:
    def by_length(audio: Audio) -> str:
        return "dài" if audio.duration >= 1.0 else "ngắn"

    fake = FakeRecognizer(by_length)
    session = fake.open_session()
    assert _utter(session, YESNO, _pcm(16000)).text == "dài"
    assert _utter(session, YESNO, _pcm(800)).text == "ngắn"
    assert fake.remaining == 0


def test_scripted_errors_are_raised_at_end() -> None:
    fake = FakeRecognizer([RecognizerError("boom", code="asr_decode_failed"), "có"])
    session = fake.open_session()
    session.begin(YESNO)
    with pytest.raises(RecognizerError) as err:
        session.end()
    assert err.value.code == "asr_decode_failed"
    assert _utter(session, YESNO).text == "có"  # the session goes on


def test_running_out_of_script_is_a_test_failure_not_an_engine_error() -> None:
    fake = FakeRecognizer(["có"])
    session = fake.open_session()
    _utter(session, YESNO)
    session.begin(YESNO)
    with pytest.raises(FakeScriptExhausted):
        session.end()
    assert not issubclass(FakeScriptExhausted, RecognizerError)


def test_partials_on_request() -> None:
    quiet = FakeRecognizer(["một hai"]).open_session()
    quiet.begin(DIGITS)
    assert quiet.feed(_pcm(160)) == ""
    chatty = FakeRecognizer(["một hai"], partials=True).open_session()
    chatty.begin(DIGITS)
    assert chatty.feed(_pcm(0)) == ""
    assert chatty.feed(_pcm(160)) == "một hai"


def test_misuse_raises_like_the_real_adapters() -> None:
    fake = FakeRecognizer(["x", "y"])
    session = fake.open_session()
    with pytest.raises(RecognizerError):
        session.feed(_pcm(10))
    with pytest.raises(RecognizerError):
        session.end()
    session.begin(DIGITS)
    with pytest.raises(RecognizerError):
        session.feed(np.zeros(10, dtype=np.float32))
    session.close()
    with pytest.raises(RecognizerError):
        session.begin(DIGITS)
    fake.close()
    with pytest.raises(RecognizerError):
        fake.open_session()


def test_begin_again_drops_the_unfinished_utterance() -> None:
    fake = FakeRecognizer(["x"])
    session = fake.open_session()
    session.begin(DIGITS)
    session.feed(_pcm(100))
    session.begin(YESNO)
    session.feed(_pcm(10))
    assert session.end().text == "x"
    assert fake.utterances[0].spec == YESNO
    assert len(fake.utterances[0].audio.samples) == 10
