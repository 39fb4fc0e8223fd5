"""``mic``: the sound-card media (over a fake ``sounddevice``), the scripted caller media and
tone recogniser (assistant.testing.media), and whole calls through ``run_mic_with``.

No audio device is used: the backend is injected through the constructor.
"""

from __future__ import annotations

import io
import signal
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from assistant.accounts.store import SqlAccountStore
from assistant.call.runtime import MASKED_SPEECH
from assistant.cli.mic import InterruptibleMedia, MicSettings, run_mic, run_mic_with
from assistant.core.errors import AudioError, ConfigError, RecognizerError, TransportError
from assistant.core.ports import (
    Audio,
    AudioFrame,
    CallerId,
    CallerSource,
    DtmfDigit,
    ListenMode,
    ListenSpec,
    RemoteHangup,
)
from assistant.language.phone import mask_code
from assistant.telephony.sounddevice import (
    SoundDeviceMedia,
    list_devices,
    load_sounddevice,
    parse_device,
)
from assistant.testing.audio import FakeSynthesizer, tone
from assistant.testing.media import (
    BoxDone,
    BoxSpeaks,
    Do,
    Hangup,
    ManualClock,
    NoMedia,
    Press,
    ScriptedMedia,
    ScriptExhausted,
    Silence,
    Speak,
    Step,
    ToneRecognizer,
    Until,
)

CODE = "0123456789"
PHONE = "0912345678"
CODE_WORDS = "không một hai ba bốn năm sáu bảy tám chín"
PHRASES = [CODE_WORDS, "đúng", "không"]

# -- a fake sounddevice ------------------------------------------------------------------------


class FakePortAudioError(Exception):
    pass


def device(name: str, index: int, inputs: int, outputs: int, rate: float) -> dict[str, Any]:
    return {
        "name": name,
        "index": index,
        "max_input_channels": inputs,
        "max_output_channels": outputs,
        "default_samplerate": rate,
    }


MIC = device("USB Mic", 0, 1, 0, 48000.0)
SPEAKER = device("Speakers", 1, 0, 2, 48000.0)
HEADSET = device("USB Headset", 2, 1, 2, 16000.0)


class FakeStream:
    def __init__(self, kind: str, latency: float, **kwargs: Any) -> None:
        self.kind = kind
        self.kwargs = kwargs
        self.latency = latency
        self.calls: list[str] = []

    def start(self) -> None:
        self.calls.append("start")

    def stop(self) -> None:
        self.calls.append("stop")
        self.kwargs["finished_callback"]()  # as PortAudio does once a stream is inactive

    def close(self) -> None:
        self.calls.append("close")


class FakeSoundDevice:
    """The slice of the ``sounddevice`` module that SoundDeviceMedia uses."""

    PortAudioError = FakePortAudioError

    def __init__(
        self,
        devices: list[dict[str, Any]] | None = None,
        *,
        latency: float = 0.0,
        fail: dict[str, Exception] | None = None,
    ) -> None:
        self.devices = [MIC, SPEAKER, HEADSET] if devices is None else devices
        self.latency = latency
        self.fail = fail or {}
        self.streams: list[FakeStream] = []

    def query_devices(self, device: int | str | None = None, kind: str | None = None) -> Any:
        if device is None and kind is None:
            return list(self.devices)
        key = f"max_{kind}_channels"
        usable = [d for d in self.devices if d[key] > 0]
        if device is None:
            if not usable:
                raise FakePortAudioError("Error querying device -1")
            return usable[0]
        if isinstance(device, int):
            if not 0 <= device < len(self.devices):
                raise FakePortAudioError(f"Error querying device {device}")
            if self.devices[device][key] == 0:
                raise ValueError(f"Not an {kind} device")
            return self.devices[device]
        found = [d for d in usable if device.lower() in d["name"].lower()]
        if len(found) != 1:
            raise ValueError(
                f"No {kind} device matching {device!r}"
                if not found
                else f"Multiple {kind} devices found for {device!r}"
            )
        return found[0]

    def _stream(self, kind: str, kwargs: dict[str, Any]) -> FakeStream:
        if kind in self.fail:
            raise self.fail[kind]
        stream = FakeStream(kind, self.latency, **kwargs)
        self.streams.append(stream)
        return stream

    def InputStream(self, **kwargs: Any) -> FakeStream:
        return self._stream("input", kwargs)

    def OutputStream(self, **kwargs: Any) -> FakeStream:
        return self._stream("output", kwargs)


def media_over(backend: FakeSoundDevice, **kwargs: Any) -> SoundDeviceMedia:
    return SoundDeviceMedia(caller=CallerId(PHONE, CallerSource.CLI), backend=backend, **kwargs)


def feed_input(backend: FakeSoundDevice, samples: np.ndarray[Any, Any]) -> None:
    cb = backend.streams[0].kwargs["callback"]
    cb(np.asarray(samples, dtype=np.int16).reshape(-1, 1), len(samples), None, None)


def pull_output(backend: FakeSoundDevice, frames: int) -> np.ndarray[Any, Any]:
    out = np.full((frames, 1), 999, dtype=np.int16)
    backend.streams[1].kwargs["callback"](out, frames, None, None)
    return out[:, 0].copy()


# -- SoundDeviceMedia --------------------------------------------------------------------------


def test_input_callback_becomes_20ms_frames() -> None:
    backend = FakeSoundDevice()
    with media_over(backend, sample_rate=16000, input_device="0") as media:
        kw = backend.streams[0].kwargs
        assert (kw["samplerate"], kw["blocksize"], kw["channels"], kw["dtype"], kw["device"]) == (
            16000,
            320,
            1,
            "int16",
            0,
        )
        assert media.receive(0) is None
        feed_input(backend, np.arange(500))
        first = media.receive(0.01)
        assert isinstance(first, AudioFrame)
        assert np.array_equal(first.samples, np.arange(320))
        assert media.receive(0) is None  # 180 samples wait for the rest of their frame
        feed_input(backend, np.arange(500, 700))
        second = media.receive(0)
        assert isinstance(second, AudioFrame)
        assert np.array_equal(second.samples, np.arange(320, 640))
        assert [s.calls for s in backend.streams] == [["start"], ["start"]]
    assert [s.calls for s in backend.streams] == [["start", "stop", "close"]] * 2
    assert media.receive(0) is None  # closing on purpose is not a hang-up


def test_full_input_queue_keeps_the_newest_audio() -> None:
    backend = FakeSoundDevice()
    with media_over(backend, sample_rate=8000, rx_queue_s=0.1) as media:  # 5 frames
        for i in range(8):
            feed_input(backend, np.full(160, i))
        got = [
            int(e.samples[0])
            for e in iter(lambda: media.receive(0), None)
            if isinstance(e, AudioFrame)
        ]
    assert got == [3, 4, 5, 6, 7]
    assert media.rx_dropped_frames == 3


def test_output_callback_plays_the_buffer_and_counts_device_latency() -> None:
    backend = FakeSoundDevice(latency=0.05)  # 800 samples at 16 kHz
    with media_over(backend, sample_rate=16000) as media:
        media.play(np.arange(1, 501, dtype=np.int16))
        media.play(np.arange(501, 701, dtype=np.int16))
        assert media.queued_seconds() == pytest.approx(700 / 16000)
        assert np.array_equal(pull_output(backend, 320), np.arange(1, 321))
        block = pull_output(backend, 320)
        assert np.array_equal(block, np.arange(321, 641))
        block = pull_output(backend, 320)
        assert np.array_equal(block[:60], np.arange(641, 701))
        assert not block[60:].any()
        # the buffer is empty; the last samples are still in the device for its latency
        assert media.queued_seconds() == pytest.approx(0.05)
        pull_output(backend, 320)
        assert media.queued_seconds() == pytest.approx(480 / 16000)
        pull_output(backend, 320)
        pull_output(backend, 320)
        assert media.queued_seconds() == 0.0
        assert not pull_output(backend, 320).any()


def test_flush_hangup_and_bad_audio() -> None:
    backend = FakeSoundDevice()
    with media_over(backend, sample_rate=8000) as media:
        media.play(np.ones(800, dtype=np.int16))
        media.flush()
        assert media.queued_seconds() == 0.0
        assert not pull_output(backend, 160).any()
        with pytest.raises(AudioError) as err:
            media.play(np.ones(10, dtype=np.float32))
        assert err.value.code == "audio_format"
        feed_input(backend, np.ones(160))
        media.hangup()
        media.play(np.ones(800, dtype=np.int16))
        assert media.queued_seconds() == 0.0
        assert isinstance(media.receive(0), AudioFrame)  # already received, then nothing
        assert media.receive(0) is None


def test_end_is_a_remote_hangup_and_a_dying_stream_ends_the_call() -> None:
    backend = FakeSoundDevice()
    with media_over(backend) as media:
        feed_input(backend, np.ones(320))
        media.end("interrupted")
        assert media.receive(0) == RemoteHangup("interrupted")
        assert media.receive(1.0) == RemoteHangup("interrupted")
        assert media.queued_seconds() == 0.0
    backend = FakeSoundDevice()
    with media_over(backend) as media:
        backend.streams[0].kwargs["finished_callback"]()  # the USB microphone was unplugged
        assert media.receive(0) == RemoteHangup("audio device stopped")


def test_devices_by_name_or_index() -> None:
    assert parse_device("3") == 3
    assert parse_device(" USB ") == "USB"
    assert parse_device("") is None
    assert parse_device(None) is None
    backend = FakeSoundDevice()
    media = media_over(backend, input_device="headset", output_device="2")
    assert media.input_info["name"] == "USB Headset"
    assert media.output_device == 2
    with media:
        assert backend.streams[0].kwargs["device"] == "headset"
        assert backend.streams[1].kwargs["device"] == 2
    devices = list_devices(backend)
    assert [(d["index"], d["name"], d["inputs"], d["outputs"]) for d in devices] == [
        (0, "USB Mic", 1, 0),
        (1, "Speakers", 0, 2),
        (2, "USB Headset", 1, 2),
    ]


@pytest.mark.parametrize(
    ("devices", "kwargs", "code", "words"),
    [
        ([], {}, "audio_device_missing", "no audio input device found"),
        ([SPEAKER], {}, "audio_device_missing", "no audio input device found"),
        ([MIC], {}, "audio_device_missing", "no audio output device found"),
        (None, {"input_device": "webcam"}, "audio_device_not_found", "matches 'webcam'"),
        (None, {"input_device": "1"}, "audio_device_not_found", "Not an input device"),
        (None, {"output_device": "9"}, "audio_device_not_found", "Error querying device 9"),
        (None, {"input_device": "usb"}, "audio_device_not_found", "Multiple"),
    ],
)
def test_device_problems_are_transport_errors(
    devices: list[dict[str, Any]] | None, kwargs: dict[str, Any], code: str, words: str
) -> None:
    with pytest.raises(TransportError) as err:
        media_over(FakeSoundDevice(devices), **kwargs)
    assert err.value.code == code
    assert words in err.value.message
    assert "--list-devices" in err.value.message


def test_opening_a_stream_that_fails_says_how_to_fix_it() -> None:
    backend = FakeSoundDevice(fail={"input": FakePortAudioError("Error querying device -1")})
    media = media_over(backend)
    with pytest.raises(TransportError) as err:
        media.open()
    assert err.value.code == "audio_device_missing"
    assert "cannot open the input device (default): Error querying device -1" in err.value.message
    assert "connect a microphone" in err.value.message

    backend = FakeSoundDevice(fail={"output": FakePortAudioError("Invalid sample rate")})
    media = media_over(backend, sample_rate=11025)
    with pytest.raises(TransportError) as err:
        media.open()
    assert err.value.code == "audio_rate_unsupported"
    assert "--rate 48000" in err.value.message
    assert backend.streams[0].calls == ["stop", "close"]  # the input stream was not left open
    assert not media.is_open

    with pytest.raises(TransportError) as err:
        media_over(FakeSoundDevice(), sample_rate=100)
    assert err.value.code == "audio_rate_unsupported"


def test_missing_portaudio_or_package() -> None:
    def no_portaudio(_name: str) -> Any:
        raise OSError("PortAudio library not found")

    def no_package(_name: str) -> Any:
        raise ModuleNotFoundError("No module named 'sounddevice'")

    with pytest.raises(TransportError) as err:
        load_sounddevice(no_portaudio)
    assert err.value.code == "audio_device_missing"
    assert "PortAudio library not found" in err.value.message
    assert "apt-get install libportaudio2" in err.value.message
    with pytest.raises(TransportError) as err:
        load_sounddevice(no_package)
    assert err.value.code == "audio_device_missing"
    assert "pip install" in err.value.message
    backend = FakeSoundDevice()
    assert load_sounddevice(lambda name: backend) is backend


def test_run_mic_on_a_machine_without_sound_card(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The real sounddevice: no device here fails before any model is loaded."""
    try:
        backend = load_sounddevice()
    except TransportError as exc:
        pytest.skip(f"PortAudio unavailable: {exc}")
    if len(list(backend.query_devices())) > 0:
        pytest.skip("this machine has audio devices")
    args = mic_args(f"sqlite:///{tmp_path / 'db.sqlite3'}", list_devices=True)
    assert run_mic(args) == {"devices": []}
    assert capsys.readouterr().out == ""  # the table goes to stderr; stdout stays JSON
    args = mic_args(
        f"sqlite:///{tmp_path / 'db.sqlite3'}", speech=_speech(asr="vosk", asr_model=tmp_path)
    )
    with pytest.raises(TransportError) as err:
        run_mic(args)  # the model is never loaded
    assert err.value.code == "audio_device_missing"


def _speech(**kwargs: Any) -> Any:
    from assistant.asr.factory import SpeechSettings

    return SpeechSettings(**kwargs)


# -- ScriptedMedia -----------------------------------------------------------------------------


def drain(media: ScriptedMedia, n: int) -> list[Any]:
    return [media.receive(0.1) for _ in range(n)]


def test_scripted_media_timeline_keys_and_hangup() -> None:
    clip = tone(440, 0.1, 8000)
    media = ScriptedMedia(
        [Until(0.1), Speak(clip, "hello"), Press("12", gap_s=0.04), Hangup("bye")], rate=8000
    )
    assert media.caller.number == PHONE
    events = drain(media, 17)
    frames = [e for e in events if isinstance(e, AudioFrame)]
    assert len(frames) == 14
    assert all(len(f.samples) == 160 for f in frames)
    keys = [(i, e.digit) for i, e in enumerate(events) if isinstance(e, DtmfDigit)]
    assert keys == [(10, "1"), (13, "2")]  # after 0.1 s silence + 0.1 s clip; 2 frames between
    assert events[-1] == RemoteHangup("bye")
    assert media.receive(0.1) == RemoteHangup("bye")  # sticky
    assert media.now_s == pytest.approx(0.28)
    assert media.clock() == pytest.approx(0.28)
    caller = media.caller_audio().samples
    assert not caller[:800].any()
    assert np.array_equal(caller[800:1600], clip)
    assert [(e.at_s, e.kind, e.detail) for e in media.log] == [
        (0.1, "speak_start", "hello"),
        (0.2, "speak_end", "hello"),
        (0.2, "key", "1"),
        (0.24, "key", "2"),
        (0.28, "hangup", "bye"),
    ]


def test_scripted_media_plays_the_box_in_real_time() -> None:
    media = ScriptedMedia([Silence(1.0)], rate=8000)
    box = tone(300, 0.1, 8000)
    media.play(box)
    assert media.queued_seconds() == pytest.approx(0.1)
    drain(media, 2)
    assert media.queued_seconds() == pytest.approx(0.06)
    drain(media, 3)
    assert media.queued_seconds() == 0.0
    media.play(box)
    drain(media, 1)
    media.flush()
    assert media.queued_seconds() == 0.0
    drain(media, 2)
    track = media.box_audio().samples
    assert np.array_equal(track[:800], box)
    assert np.array_equal(track[800:960], box[:160])
    assert not track[960:].any()
    assert media.flushes == [pytest.approx(0.12)]
    ((start, end),) = media.box_spans()
    assert start == 0.0
    assert end == pytest.approx(0.12)
    with pytest.raises(AudioError):
        media.play(np.zeros((2, 2), dtype=np.int16))


def test_scripted_caller_waits_for_the_box() -> None:
    clip = tone(500, 0.1, 8000)
    media = ScriptedMedia(
        [BoxDone(0.3), Speak(clip, "answer"), BoxSpeaks(0.1), Press("5")], rate=8000
    )
    drain(media, 10)  # 0.2 s: the box has said nothing yet, the caller waits
    media.play(tone(300, 0.5, 8000))  # the box speaks from 0.2 to 0.7 s
    events = drain(media, 60)
    start = next(e for e in media.log if e.kind == "speak_start")
    assert start.at_s == pytest.approx(1.0)  # 0.3 s after the box finished
    media.play(tone(300, 0.5, 8000))  # at 1.4 s
    events = drain(media, 10)
    key = next(e for e in media.log if e.kind == "key")
    assert key.at_s == pytest.approx(1.5)
    assert DtmfDigit("5") in events


def test_scripted_media_no_media_limit_and_end_of_script() -> None:
    clock = ManualClock()
    media = ScriptedMedia([NoMedia(0.25), Silence(0.04)], rate=8000, clock=clock, then="hangup")
    assert [media.receive(0.1) for _ in range(3)] == [None, None, None]
    assert clock() == pytest.approx(0.25)
    assert media.now_s == 0.0
    events = drain(media, 3)
    assert isinstance(events[0], AudioFrame) and isinstance(events[1], AudioFrame)
    assert events[2] == RemoteHangup("caller hung up")

    forever = ScriptedMedia([], rate=8000, limit_s=0.1)
    drain(forever, 5)
    with pytest.raises(ScriptExhausted):
        forever.receive(0.1)

    hung = ScriptedMedia([Silence(5)], rate=8000, limit_s=1.0)
    hung.hangup()
    hung.play(np.ones(10, dtype=np.int16))
    assert hung.queued_seconds() == 0.0
    assert hung.receive(0.1) is None
    assert hung.box_hung_up_at == 0.0
    with pytest.raises(ScriptExhausted):  # a loop that keeps reading a dead line ends too
        for _ in range(11):
            hung.receive(0.1)


def test_scripted_media_noise_and_resampled_clips() -> None:
    a = ScriptedMedia([Silence(0.1)], rate=8000, noise_dbfs=-60.0, seed=3)
    b = ScriptedMedia([Silence(0.1)], rate=8000, noise_dbfs=-60.0, seed=3)
    fa, fb = a.receive(0.1), b.receive(0.1)
    assert isinstance(fa, AudioFrame) and isinstance(fb, AudioFrame)
    assert fa.samples.any() and np.array_equal(fa.samples, fb.samples)
    clip16 = Audio(tone(440, 0.2, 16000), 16000)
    media = ScriptedMedia([Speak(clip16)], rate=8000)
    drain(media, 12)
    assert len(media.caller_audio().samples) == 12 * 160
    assert next(e for e in media.log if e.kind == "speak_end").at_s == pytest.approx(0.2)
    with pytest.raises(ValueError):
        Press("12a")


# -- ToneRecognizer ----------------------------------------------------------------------------


def test_tone_recognizer_hears_phrases_through_an_8k_line() -> None:
    rec = ToneRecognizer(PHRASES)
    session = rec.open_session()
    session.begin(ListenSpec(ListenMode.YESNO))
    from assistant.audio.resample import resample_audio

    line = rec.clip("đúng", 0.5, rate=8000)
    partial = session.feed(resample_audio(line, 16000).samples)
    assert partial == "đúng"
    session.feed(np.zeros(1600, dtype=np.int16))
    session.feed(rec.clip(CODE_WORDS, 0.3).samples)
    assert session.end().text == f"đúng {CODE_WORDS}"
    session.begin(ListenSpec(ListenMode.DIGITS, 10))
    session.feed(tone(3000, 0.5, 16000))  # not a phrase
    assert session.end().hypotheses == ()
    assert session.specs == [ListenSpec(ListenMode.YESNO), ListenSpec(ListenMode.DIGITS, 10)]
    assert session.heard == [f"đúng {CODE_WORDS}", ""]
    with pytest.raises(RecognizerError):
        session.end()
    with pytest.raises(ValueError):
        ToneRecognizer([str(i) for i in range(40)])


# -- whole calls through run_mic_with ----------------------------------------------------------


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'accounts.sqlite3'}"
    store = SqlAccountStore(url)
    store.create_schema()
    store.add_account(CODE, PHONE)
    store.close()
    return url


def mic_args(db: str, **kw: Any) -> MicSettings:
    # tones are not speech to Silero VAD: these scripted callers are heard by frame energy
    base: dict[str, Any] = {"db_url": db, "caller": PHONE, "vad": "energy"}
    return MicSettings(**(base | kw))


def call(
    media: ScriptedMedia, rec: ToneRecognizer, args: MicSettings
) -> tuple[dict[str, Any], str]:
    out = io.StringIO()
    result = run_mic_with(
        media, rec, FakeSynthesizer(media.sample_rate), args, out=out, clock=media.clock
    )
    return result, out.getvalue()


def polite_caller(rec: ToneRecognizer, *extra: Step) -> list[Step]:
    return [
        BoxDone(),
        Speak(rec.clip(CODE_WORDS, 1.2), "code"),
        BoxDone(),
        Speak(rec.clip("đúng", 0.5), "yes"),
        BoxDone(),
        Speak(rec.clip("không", 0.5), "no"),
        *extra,
    ]


@pytest.mark.parametrize("rate", [8000, 16000])
def test_spoken_call_issues_a_password(db_url: str, rate: int) -> None:
    rec = ToneRecognizer(PHRASES)
    media = ScriptedMedia(polite_caller(rec), rate=rate)
    result, console = call(media, rec, mic_args(db_url))
    assert result["outcome"] == "password_issued"
    assert "password" not in result
    assert "interrupted" not in result
    assert result["caller"] == "*******678"
    # the code is masked in the summary: what was heard while collecting it, and its digits
    assert [t.get("heard") for t in result["turns"][:3]] == [MASKED_SPEECH, "đúng", "không"]
    assert result["turns"][0]["digits"] == mask_code(CODE)
    # each turn complete for its grammar: answered after the short silence, as on the line
    # a complete code ends 200 ms after the caller stops, a yes or a no 250 ms (in 20 ms frames)
    assert result["stages"]["reply_latency"] == [pytest.approx(x) for x in (0.2, 0.26, 0.26)]
    assert media.box_hung_up_at is not None
    assert "Trợ lý: Xin chào quý khách." in console
    assert f"\r… {CODE_WORDS}" in console  # live partial on one line
    assert f"Quý khách: {CODE_WORDS}\n" in console
    assert "Trợ lý: Mật khẩu mới của quý khách là: ***." in console
    assert "(Trợ lý kết thúc cuộc gọi: password_issued)" in console
    assert len(rec.sessions) == 1 and rec.sessions[0].closed


def test_keypad_call(db_url: str) -> None:
    rec = ToneRecognizer(PHRASES)
    media = ScriptedMedia(
        [BoxDone(), Press(CODE + "#"), BoxDone(), Press("1"), BoxDone(), Press("2")], rate=8000
    )
    result, console = call(media, rec, mic_args(db_url))
    assert result["outcome"] == "password_issued"
    assert result["turns"][0]["keys"] == mask_code(CODE)  # keys are masked like the code
    assert "Quý khách: [phím] 1\n" in console


def test_barge_in_interrupts_the_greeting(db_url: str) -> None:
    rec = ToneRecognizer(PHRASES)
    script: list[Step] = [
        BoxSpeaks(0.5),
        Speak(rec.clip(CODE_WORDS, 1.2), "code"),
        BoxDone(),
        Speak(rec.clip("đúng", 0.5)),
        BoxDone(),
        Speak(rec.clip("không", 0.5)),
    ]
    media = ScriptedMedia(script, rate=8000)
    result, console = call(media, rec, mic_args(db_url, barge_in=True))
    assert result["outcome"] == "password_issued"
    assert len(media.flushes) == 1
    assert "(ngắt lời)" in console
    assert "vui lòng đọc mã số" not in result["turns"][0]["box"]  # ask_code was skipped
    assert result["turns"][0]["digits"] == mask_code(CODE)


def test_speech_does_not_interrupt_without_barge_in(db_url: str) -> None:
    rec = ToneRecognizer(PHRASES)
    media = ScriptedMedia([BoxSpeaks(0.5), Speak(rec.clip("đúng", 0.5)), Hangup()], rate=8000)
    result, _console = call(media, rec, mic_args(db_url))
    assert result["outcome"] == "hung_up"
    assert media.flushes == []


def test_withheld_caller(db_url: str) -> None:
    rec = ToneRecognizer(PHRASES)
    media = ScriptedMedia([], rate=8000, caller=None)
    result, console = call(media, rec, mic_args(db_url, caller=None))
    assert result["outcome"] == "no_caller_id"
    assert result["caller_source"] == "none"
    assert "không nhận được số điện thoại" in console


def test_a_dead_line_ends_the_call(db_url: str) -> None:
    """No media at all (not even silence) for LiveChannel's idle guard: the call is over."""
    rec = ToneRecognizer(PHRASES)
    media = ScriptedMedia([BoxDone(), NoMedia(40.0)], rate=8000)
    result, _console = call(media, rec, mic_args(db_url))
    assert result["outcome"] == "hung_up"
    assert 30.0 <= media.clock() - media.now_s < 31.0


def ctrl_c() -> None:
    signal.raise_signal(signal.SIGINT)


def test_ctrl_c_ends_the_call_as_a_hang_up(db_url: str) -> None:
    rec = ToneRecognizer(PHRASES)
    before = signal.getsignal(signal.SIGINT)
    media = ScriptedMedia([BoxDone(), Silence(0.5), Do(ctrl_c)], rate=8000)
    result, console = call(media, rec, mic_args(db_url))
    assert result["outcome"] == "hung_up"
    assert result["interrupted"] is True
    assert "Ctrl-C" in console
    assert signal.getsignal(signal.SIGINT) is before
    store = SqlAccountStore(db_url)
    try:
        assert [a.outcome for a in store.audit_rows()] == ["hung_up"]
    finally:
        store.close()


def test_second_ctrl_c_aborts(db_url: str) -> None:
    rec = ToneRecognizer(PHRASES)
    before = signal.getsignal(signal.SIGINT)

    def twice() -> None:
        ctrl_c()
        ctrl_c()

    media = ScriptedMedia([BoxDone(), Do(twice)], rate=8000)
    with pytest.raises(KeyboardInterrupt):
        call(media, rec, mic_args(db_url))
    assert signal.getsignal(signal.SIGINT) is before


def test_interruptible_media_passes_everything_through() -> None:
    inner = ScriptedMedia([Silence(1)], rate=8000)
    line = InterruptibleMedia(inner)
    assert (line.call_id, line.caller, line.sample_rate) == (inner.call_id, inner.caller, 8000)
    line.play(np.ones(160, dtype=np.int16))
    assert line.queued_seconds() == pytest.approx(0.02)
    assert isinstance(line.receive(1.0), AudioFrame)
    line.flush()
    line.interrupt()
    assert line.receive(1.0) == RemoteHangup("interrupted (Ctrl-C)")
    line.hangup()
    assert inner.box_hung_up_at is not None


def test_the_mic_checks_its_voice_activity_detector(db_url: str) -> None:
    with pytest.raises(ConfigError):
        mic_args(db_url, vad="loudness")
    rec = ToneRecognizer(PHRASES)
    media = ScriptedMedia(polite_caller(rec), rate=44100)
    with pytest.raises(ConfigError, match="Silero VAD runs at 8000 or 16000"):
        call(media, rec, mic_args(db_url, vad="silero", rate=44100))
