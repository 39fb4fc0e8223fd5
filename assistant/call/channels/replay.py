"""Recorded turns: the dialog runtime's ears over WAV files.

* :func:`recognize_turn` — one recorded turn through the recogniser, exactly as the dialog
  hears it (used by ``replay``, ``hear`` and the batch runner);
* :class:`ReplayChannel` — a call replayed from WAV files, one file per listening turn.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import numpy as np

from assistant.audio.endpoint import Endpointer, EndpointSettings, SpeechStarted
from assistant.audio.vad import VoiceActivity
from assistant.call.channels.live import LiveSettings, worth_context
from assistant.call.channels.timing import StageSink, endpoint_settings, no_stage
from assistant.call.prompt_voice import PromptVoice
from assistant.call.runtime import SayResult
from assistant.core.dialog import Event, Heard, Listen, NoInput, Outcome, Say
from assistant.core.ports import PCM, Audio, ListenSpec, RecognizerSession, hear_context


def recognize_turn(
    session: RecognizerSession,
    audio: Audio,
    spec: ListenSpec,
    *,
    chunk_s: float = 0.1,
    settings: LiveSettings | None = None,
    vad: VoiceActivity | None = None,
    line: PCM | None = None,
) -> Heard | NoInput:
    """Recognise one whole recorded turn (already at the recogniser's rate).

    The audio is streamed in ``chunk_s`` pieces as a live call would be, and heard the way a
    live call hears its line (``settings``, the box's :class:`LiveSettings` by default): once
    the caller starts to speak, the recogniser hears the turn from ``lead_in_s`` before that,
    after the ``context_s`` of the recording before it as context (for a yes/no only when it
    is noisy enough: :meth:`LiveSettings.context_gate`);
    a turn in which no speech starts is heard whole. Speech is detected by ``vad`` (at the
    audio's rate; ``None``: frame energy); ``line``, the line's audio before the recording (as
    a live call has heard it during the prompt), is the line the caller's speech must be louder
    than (:meth:`Endpointer.hear_line`; without it, the recording's own audio before the
    speech). A turn with no speech (by the endpointer) and no words (by the recogniser) is
    silence: :class:`NoInput`.
    """
    live = settings or LiveSettings()
    samples = audio.samples
    ep = Endpointer(
        audio.rate,
        EndpointSettings(
            end_silence_s=endpoint_settings(spec).end_silence_s,
            no_input_s=max(audio.duration, 1.0) + 1.0,
            max_speech_s=max(audio.duration, 1.0) + 1.0,
        ),
        vad=vad,
    )
    if line is not None:
        ep.hear_line(line)
    session.begin(spec)
    keep = None if live.lead_in_s is None else round(live.lead_in_s * audio.rate)
    fed = 0 if keep is None else None  # samples the recogniser has heard up to, once it hears
    spoke = False
    step = max(1, int(audio.rate * chunk_s))
    for i in range(0, len(samples), step):
        end = min(i + step, len(samples))
        spoke = spoke or any(isinstance(e, SpeechStarted) for e in ep.feed(samples[i:end]))
        if fed is None and spoke:  # the lead-in is released: context, then the turn
            assert keep is not None
            fed = max(0, end - keep)
            before = samples[max(0, fed - round(live.context_s * audio.rate)) : fed]
            if worth_context(before, live.context_gate(spec.mode)):
                hear_context(session, before)
        if fed is not None:
            session.feed(samples[fed:end])
            fed = end
    if fed is None:  # no speech started: every sample is heard, quiet speech included
        for i in range(0, len(samples), step):
            session.feed(samples[i : i + step])
    recognition = session.end()
    if not spoke and not recognition.text.strip():
        return NoInput()
    return Heard(recognition)


class ReplayChannel:
    """A call replayed from recorded caller turns.

    Each turn (already read and converted to the recogniser's rate) answers the box's next
    listening turn; when they run out the caller is silent. What the box says is rendered with
    ``voice`` (when given) into :attr:`box_audio`, with silence where the caller spoke. Each
    turn is heard as a live call with ``settings`` would hear it (:func:`recognize_turn`), its
    speech detected by a fresh detector from ``vad`` (``None``: frame energy).
    """

    def __init__(
        self,
        turns: Sequence[Audio],
        session: RecognizerSession,
        voice: PromptVoice | None,
        *,
        stage: StageSink = no_stage,
        clock: Callable[[], float] = time.perf_counter,
        settings: LiveSettings | None = None,
        vad: Callable[[int], VoiceActivity] | None = None,
    ) -> None:
        self.turns = list(turns)
        self.settings = settings or LiveSettings()
        self.vad = vad
        self.session = session
        self.voice = voice
        self.stage = stage
        self.clock = clock
        self.box_audio: list[PCM] = []
        self.closed_with: Outcome | None = None

    def attach(self, stage: StageSink) -> None:
        self.stage = stage

    def say(self, say: Say, *, interruptible: bool) -> SayResult:
        if self.voice is not None:
            t0 = self.clock()
            audio = self.voice.render(say)
            self.stage("tts", self.clock() - t0)
            self.box_audio.append(audio.samples)
        return SayResult.DONE

    def listen(self, listen: Listen) -> Event:
        if not self.turns:
            return NoInput()
        audio = self.turns.pop(0)
        if self.voice is not None:  # the caller's turn, as a gap in the box's recording
            self.box_audio.append(np.zeros(int(audio.duration * self.voice.rate), np.int16))
        t0 = self.clock()
        event = recognize_turn(
            self.session,
            audio,
            listen.spec,
            settings=self.settings,
            vad=self.vad(audio.rate) if self.vad is not None else None,
        )
        elapsed = self.clock() - t0
        self.stage("asr", elapsed)
        if audio.duration > 0:
            self.stage("asr_rtf", elapsed / audio.duration)
        return event

    def close(self, outcome: Outcome) -> None:
        self.closed_with = outcome

    def recording(self) -> Audio | None:
        if self.voice is None:
            return None
        samples = np.concatenate(self.box_audio) if self.box_audio else np.zeros(0, np.int16)
        return Audio(samples.astype(np.int16), self.voice.rate)
