"""The phone line: inbound SIP calls through baresip-python (pinned ``==0.5.2a3``, alpha).

It is long because the SIP stack's event loop, the call slots and the per-call pumps share one
asyncio loop and its locks.

:class:`BaresipTransport` owns the SIP stack and an asyncio loop in the thread that calls
:meth:`~BaresipTransport.serve`. Each answered call gets a
:class:`~assistant.telephony.sip.media.BaresipCallMedia` (a ``ports.CallMedia``) and its own
worker thread running the handler (the blocking voice loop). One pump task per call moves
audio between the stack's PCM ring buffers and the media object every 20 ms, keeping
``tx_ahead_s`` of prompt audio written ahead of the transmit clock.

Facts worth knowing (see ``../shared/notes/telephony.md``):

* baresip-python allows **one Runtime per process**: one transport serving at a time.
* The stack does not report the address an INVITE came from; it is read from the stack's
  SIP trace (:mod:`assistant.telephony.sip.trace`). When the trace has no single clear
  answer for a call, the caller is treated as untrusted (P-Asserted-Identity ignored).
* Only G.711 (PCMU, PCMA) is offered, so media is always 8 kHz mono.
* Call slots are defended (issue 12): an INVITE the screen refuses
  (:mod:`assistant.telephony.sip.screen`) or one from an untrusted address that already has
  ``max_calls_per_source`` calls up is refused before it is answered; an answered call
  whose ACK does not come within ``answer_timeout_s`` (3 s), or that brings no RTP within
  ``first_rtp_timeout_s`` (3 s) of the answer, is hung up and frees its slot. The box counts
  its ``max_calls`` slots itself; the stack's own cap is higher, because 0.5.2a3 leaks the
  call of an INVITE whose From has no tag (it answers 500 itself and never reports the call).
* The caller number follows ``caller_trust`` (:class:`~assistant.telephony.sip.callerid.
  CallerTrust`); the reason for each decision is logged, never the number.
* ``drain()`` makes the stack answer new INVITEs with 486 and lets current calls finish;
  ``stop()`` ends current calls (their voice loops see ``RemoteHangup("shutdown")``). Both
  are thread- and signal-safe: ``signal.signal(SIGTERM, lambda *_: transport.drain())``
  with ``serve()`` in the main thread is the intended wiring.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import os
import secrets
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from baresip import (
    Account,
    AudioNotActive,
    AudioRestarted,
    BaresipError,
    Call,
    CallFailed,
    CallState,
    CallTimeout,
    Config,
    DigitEvent,
    Event,
    Runtime,
    StackEvent,
    StaleHandleError,
    UserAgent,
)

from assistant.core.errors import ConfigError, TransportError
from assistant.core.ports import CallMedia
from assistant.telephony.sip.callerid import CallerTrust, TrustedPeers, decide_caller, header
from assistant.telephony.sip.media import SAMPLE_RATE, BaresipCallMedia, wall_now
from assistant.telephony.sip.options import OptionsResponder
from assistant.telephony.sip.rtprio import DEFAULT_PRIORITY, MediaThreads
from assistant.telephony.sip.screen import screen_invite
from assistant.telephony.sip.trace import PeerFacts, SipTraceIndex, header_tag, split_hostport

__all__ = ["BaresipCallMedia", "BaresipTransport", "CallHandler"]

logger = logging.getLogger("assistant.sip")

CallHandler = Callable[[CallMedia], None]

_TRACE_LOGGER = "baresip.native.sip"
_TICK_S = 0.02
#: The receive jitter buffer: none. The box is a recogniser, not a listener, so playout smoothing
#: buys nothing, and every millisecond the stack holds the caller's audio back is a millisecond
#: of reply latency. Baresip's default held it 100 ms; a fixed buffer of one packet still held
#: it 47-75 ms from the wire to the box (p50 per turn, 16 calls), and none holds it 9-17 ms
#: (issue 11, measured with ``scripts/bench_calls.py``). Packets are decoded as they arrive, in
#: the order they arrive; the call summary's ``jbuf_delay_ms`` is then empty.
_JBUF_TYPE = "off"
_JBUF_MS = "20-160"  # its bounds, were it on
_RX_READ_MAX = 32768
_BYTES_PER_SECOND = SAMPLE_RATE * 2
#: After flush_tx the stack drains its ring on the transmit thread's next 20 ms tick,
#: taking whatever is in it then, so nothing new is written until this has passed.
_FLUSH_HOLD_S = 0.06
#: How long a new call waits for the trace record of its INVITE (normally < 5 ms).
_TRACE_WAIT_S = 1.0
_EXPOSED_HEADERS = ("From", "P-Asserted-Identity")
#: The pacing threads are looked for when a call's audio is up and this many ticks later.
_PROMOTE_AGAIN_TICKS = 10
#: Stack call slots beyond ``max_calls`` (calls the stack leaks without telling us).
_STACK_HEADROOM = 32


@dataclass
class _LiveCall:
    call: Call
    media: BaresipCallMedia
    closed: asyncio.Event = field(default_factory=asyncio.Event)
    worker: threading.Thread | None = None
    worker_done: asyncio.Event = field(default_factory=asyncio.Event)
    shutdown: bool = False
    waiter: asyncio.Future[None] | None = None
    last_audio: float = 0.0  # loop time when the stack last held prompt audio
    source_ip: str | None = None  # the INVITE's source address (None: not known)
    rx_bytes: int = 0  # caller audio received so far (0: no RTP yet)
    no_rtp: bool = False  # hung up by the box because no RTP came


def _parse_listen(listen: str) -> tuple[str, int]:
    host, port = split_hostport(listen)
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise ConfigError(
            f"SIP listen address {listen!r} must be IP:PORT (an address, not a host name)",
            code="sip_listen_invalid",
        ) from None
    if port is None or not 0 < port < 65536:
        raise ConfigError(
            f"SIP listen address {listen!r} has no valid port", code="sip_listen_invalid"
        )
    return host, port


@contextlib.contextmanager
def _signals_wake_loop(loop: asyncio.AbstractEventLoop) -> Iterator[None]:
    """Let a signal (SIGTERM → ``drain()``) reach its Python handler at once.

    Python runs signal handlers in the main thread, between bytecodes. The stack's native
    threads do not block signals, so the kernel often delivers SIGTERM to one of them while
    the main thread sleeps in the event loop's ``epoll_wait`` (up to 10 s, the runtime's
    watchdog period): measured, ``drain()`` then ran 10 s late. A wakeup fd that the loop
    watches ends that sleep whichever thread took the signal.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    rsock, wsock = socket.socketpair()
    rsock.setblocking(False)
    wsock.setblocking(False)

    def drain_wakeups() -> None:
        with contextlib.suppress(OSError):
            while rsock.recv(256):
                pass

    try:
        previous = signal.set_wakeup_fd(wsock.fileno(), warn_on_full_buffer=False)
    except ValueError:  # not the main interpreter
        rsock.close()
        wsock.close()
        yield
        return
    if previous != -1:  # someone else watches signals already: leave theirs in place
        signal.set_wakeup_fd(previous)
        rsock.close()
        wsock.close()
        yield
        return
    loop.add_reader(rsock.fileno(), drain_wakeups)
    try:
        yield
    finally:
        signal.set_wakeup_fd(-1)
        loop.remove_reader(rsock.fileno())
        rsock.close()
        wsock.close()


def _resolve(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


#: Niceness added to each call's voice-loop thread. Recognition is bulk work; the stack's audio
#: threads and the media pump, which keep the RTP on time, stay at the process's own priority
#: and so win the CPU from it when the box is busy.
WORKER_NICENESS = 5


def _lower_priority(call_id: str) -> None:
    """Lower this thread's priority by :data:`WORKER_NICENESS` (Linux: niceness is per thread;
    raising it needs no privilege)."""
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, os.getpriority(os.PRIO_PROCESS, tid) + WORKER_NICENESS)
    except (AttributeError, OSError) as exc:  # not Linux: run at the process's priority
        logger.debug("%s: voice loop priority unchanged (%s)", call_id, type(exc).__name__)


class BaresipTransport:
    """Answers SIP calls and runs ``handler(media)`` for each in a worker thread.

    ``listen`` is ``"IP:PORT"`` (an address, not a name; ``0.0.0.0`` lets the stack pick
    the interface for SDP). ``max_calls`` callers are served at once;
    the next one hears busy (486), and so does a caller whose (untrusted) source address
    already has ``max_calls_per_source`` calls up. ``trusted_peers`` are IPs or CIDR
    networks whose P-Asserted-Identity is believed (and whose calls are not limited per
    source: a trunk carries every caller); ``caller_trust`` is the caller id policy.
    ``answer_timeout_s``: an answered call not acknowledged by then is hung up;
    ``first_rtp_timeout_s``: an established call with no RTP by then is hung up (0
    disables). ``rtp_ports`` is the inclusive RTP port range.
    ``rtp_timeout_s`` ends a call whose RTP stopped for that long (0 disables).
    ``tx_ahead_s`` is how much prompt audio is kept written ahead of the transmit clock
    (0.2–0.5 s: less lets ordinary Python pauses punch gaps into prompts).
    ``media_priority``: the stack's pacing threads (``aumem_src``) run in ``SCHED_FIFO`` at
    this real-time priority when the box may do that (0: normal priority; see
    :mod:`assistant.telephony.sip.rtprio`).
    ``hangup_tail_s``: the box's BYE goes out at least this long after the last prompt
    audio left our buffers, because the stack still holds about 0.1 s of it internally
    (measured: without the delay the caller lost the last ~120 ms of the final prompt)
    and the far end's jitter buffer needs a moment too.
    """

    def __init__(
        self,
        listen: str,
        *,
        max_calls: int,
        trusted_peers: Sequence[str],
        rtp_ports: tuple[int, int],
        rtp_timeout_s: int,
        user: str = "assistant",
        tx_ahead_s: float = 0.3,
        caller_trust: CallerTrust = CallerTrust.TRUNK,
        max_calls_per_source: int = 2,
        answer_timeout_s: float = 3.0,
        first_rtp_timeout_s: float = 3.0,
        stop_grace_s: float = 5.0,
        hangup_tail_s: float = 0.3,
        media_priority: int = DEFAULT_PRIORITY,
    ) -> None:
        self._host, self._port = _parse_listen(listen)
        if max_calls < 1:
            raise ConfigError("max_calls must be at least 1", code="sip_config_invalid")
        lo, hi = rtp_ports
        if not 1024 <= lo < hi < 65536:
            raise ConfigError(
                f"rtp_ports {rtp_ports!r} must be an increasing pair within 1024-65535",
                code="sip_config_invalid",
            )
        if rtp_timeout_s < 0:
            raise ConfigError("rtp_timeout_s must be >= 0", code="sip_config_invalid")
        if not 0.06 <= tx_ahead_s <= 1.5:
            raise ConfigError("tx_ahead_s must be within 0.06-1.5 s", code="sip_config_invalid")
        if max_calls_per_source < 1:
            raise ConfigError("max_calls_per_source must be at least 1", code="sip_config_invalid")
        if not 0.5 <= answer_timeout_s <= 60 or not 0 <= first_rtp_timeout_s <= 60:
            raise ConfigError(
                "answer_timeout_s must be within 0.5-60 s and first_rtp_timeout_s within 0-60 s",
                code="sip_config_invalid",
            )
        self.caller_trust = CallerTrust(caller_trust)
        self.max_calls_per_source = max_calls_per_source
        self.first_rtp_timeout_s = first_rtp_timeout_s
        self.listen = listen
        self.max_calls = max_calls
        self.trusted = TrustedPeers(trusted_peers)
        self.rtp_ports = (lo, hi)
        self.rtp_timeout_s = rtp_timeout_s
        self.user = user
        self.tx_ahead_s = tx_ahead_s
        self.answer_timeout_s = answer_timeout_s
        self.stop_grace_s = stop_grace_s
        self.hangup_tail_s = hangup_tail_s
        self.media_threads = MediaThreads(media_priority)
        self._account = Account(
            user=user,
            domain=listen,
            password="",
            reg_interval=0,
            audio_codecs=("pcmu", "pcma"),
            dtmf_mode="rtpevent",
            # Trunks address the box by the dialled number, not by our user name.
            extra_params=("catchall=yes",),
        )
        self._ready = threading.Event()
        # Re-entrant: drain() and stop() may run in a signal handler on the loop's thread.
        self._guard = threading.RLock()
        self._serving = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runtime: Runtime | None = None
        self._stop_event: asyncio.Event | None = None
        self._stop_requested = False
        self._drain_requested = False
        self._draining = False
        self._stopping = False
        self._dead = False
        self._calls: dict[str, _LiveCall] = {}
        self._no_calls = asyncio.Event()  # set whenever no call is in progress (for draining)
        self._no_calls.set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._handler: CallHandler | None = None
        self._on_call_end: Callable[[Mapping[str, Any]], None] | None = None
        self._trace = SipTraceIndex(screen=screen_invite)
        # OPTIONS keep-alives from a proxy: 200 while we take calls, 503 once we drain/stop
        self._options = OptionsResponder()
        self.calls_answered = 0

    def __repr__(self) -> str:
        return (
            f"BaresipTransport(listen={self.listen!r}, max_calls={self.max_calls}, "
            f"trusted={self.trusted!r}, rtp_ports={self.rtp_ports!r})"
        )

    # ------------------------------------------------------------------ control

    def wait_ready(self, timeout: float) -> bool:
        """True once the stack listens and calls can be made (False on timeout)."""
        return self._ready.wait(timeout)

    @property
    def active_calls(self) -> int:
        with self._guard:
            return len(self._calls)

    def drain(self) -> None:
        """No new calls (486); ``serve`` returns once every current call has finished.

        Thread-safe and safe to call from a signal handler.
        """
        with self._guard:
            self._drain_requested = True
            loop = self._loop
        if loop is not None:
            # Keep-alives are answered on the SIP stack's own thread: say 503 from the moment
            # drain() returns, not only once the event loop gets to _start_drain.
            self._options.draining = True
            with contextlib.suppress(RuntimeError):  # loop already closed: nothing to drain
                loop.call_soon_threadsafe(self._start_drain)

    def stop(self) -> None:
        """End current calls (voice loops see ``RemoteHangup("shutdown")``) and return from
        ``serve`` within ``stop_grace_s``. Thread-safe and safe to call from a signal handler.
        """
        with self._guard:
            self._stop_requested = True
            loop = self._loop
        if loop is not None:
            self._options.draining = True  # as in drain(): keep-alives say 503 from now on
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self._request_stop)

    def serve(
        self,
        handler: CallHandler,
        *,
        on_call_end: Callable[[Mapping[str, Any]], None] | None = None,
    ) -> None:
        """Run the phone line in this thread until :meth:`stop` or a finished :meth:`drain`.

        ``handler(media)`` runs in a worker thread per call. ``on_call_end(info)``, if given,
        receives each call's final facts (``media.info``) once both the handler has returned
        and the SIP call is over; it runs on the transport's event loop, so keep it short.

        Raises :class:`TransportError` when the stack cannot start (port in use, another
        transport already running in this process) or dies.
        """
        with self._guard:
            if self._serving:
                raise TransportError("this transport is already serving", code="sip_busy")
            self._serving = True
        self._handler = handler
        self._on_call_end = on_call_end
        try:
            asyncio.run(self._main_with_signals())
        finally:
            with self._guard:
                self._serving = False
                self._loop = None
                self._stop_requested = self._drain_requested = False
                self._draining = self._stopping = self._dead = False
            self._ready.clear()

    # ------------------------------------------------------------- event loop

    def _config(self) -> Config:
        host_is_any = ipaddress.ip_address(self._host).is_unspecified
        listen = f"[{self._host}]:{self._port}" if ":" in self._host else self.listen
        return Config(
            net_interface=None if host_is_any else self._host,
            audio_driver="aumem",
            expose_headers=_EXPOSED_HEADERS,
            native_log_level="warning",
            sip_trace=True,
            # The box counts its own slots (``_refusal``); the stack's cap is set above them so
            # that calls the stack leaks (see ``_drain``) eat this headroom, not real slots.
            max_concurrent_calls=self.max_calls + _STACK_HEADROOM,
            rtp_timeout=self.rtp_timeout_s,
            extra_config_text=(
                f"sip_listen {listen}\nrtp_ports {self.rtp_ports[0]}-{self.rtp_ports[1]}\n"
                f"audio_jitter_buffer_type {_JBUF_TYPE}\naudio_jitter_buffer_ms {_JBUF_MS}\n"
            ),
        )

    async def _main_with_signals(self) -> None:
        with _signals_wake_loop(asyncio.get_running_loop()):
            await self._main()

    async def _main(self) -> None:
        loop = asyncio.get_running_loop()
        self._stop_event = asyncio.Event()
        trace_logger = logging.getLogger(_TRACE_LOGGER)
        saved = (trace_logger.level, trace_logger.propagate)
        # Trace records carry whole SIP messages (caller numbers included): they feed the
        # index only and are not passed on to the application's handlers.
        trace_logger.setLevel(logging.DEBUG)
        trace_logger.propagate = False
        trace_logger.addHandler(self._trace)
        runtime = Runtime(native_log_level="warning")
        try:
            try:
                await runtime.start(self._config())
            except BaresipError as exc:
                code = "sip_start_failed"
                if "another Runtime" in str(exc):
                    code = "sip_runtime_in_use"  # one baresip Runtime per process
                raise TransportError(
                    f"SIP stack failed to start on {self.listen}: {exc}", code=code
                ) from exc
            self._runtime = runtime
            runtime.on_dead = self._on_runtime_dead
            try:
                try:
                    ua = await UserAgent.create(runtime, self._account)
                except BaresipError as exc:
                    raise TransportError(
                        f"SIP account for {self.listen} rejected: {exc}", code="sip_start_failed"
                    ) from exc
                ua.on_incoming(self._on_incoming)
                self._options.draining = False
                self._options.install()
                with self._guard:
                    self._loop = loop
                    stop_requested = self._stop_requested
                    drain_requested = self._drain_requested
                logger.info(
                    "SIP line listening on %s (max %d calls, RTP %d-%d, %d trusted peer net(s))",
                    self.listen,
                    self.max_calls,
                    self.rtp_ports[0],
                    self.rtp_ports[1],
                    len(self.trusted),
                )
                self._warn_about_trust()
                self._ready.set()
                if stop_requested:
                    self._request_stop()
                elif drain_requested:
                    self._start_drain()
                await self._stop_event.wait()
            finally:
                self._ready.clear()
                self._options.draining = True
                await self._shutdown_calls()
                if not self._dead:
                    self._options.uninstall()
                with contextlib.suppress(BaresipError):
                    await runtime.close()
                self._runtime = None
            if self._dead:
                raise TransportError("the SIP stack's thread died", code="sip_runtime_dead")
        finally:
            trace_logger.removeHandler(self._trace)
            trace_logger.setLevel(saved[0])
            trace_logger.propagate = saved[1]

    def _warn_about_trust(self) -> None:
        if self.caller_trust is CallerTrust.OPEN:
            logger.warning(
                "caller-trust open: P-Asserted-Identity is believed from ANY address and From "
                "otherwise; anyone can claim any number. For a lab softphone only."
            )
        elif self.caller_trust is CallerTrust.STRICT and not len(self.trusted):
            logger.warning(
                "caller-trust strict without --trusted-peer: every caller is treated as a "
                "withheld number"
            )
        else:
            logger.info("caller-trust %s", self.caller_trust.value)

    def _refusal(self, facts: PeerFacts | None, source_ip: str | None, trusted: bool) -> str | None:
        """Why a new call is refused before it is answered (None: it may have a slot)."""
        if facts is not None and facts.problem is not None:
            return f"malformed_invite:{facts.problem}"
        if len(self._calls) >= self.max_calls:
            return "busy"
        if trusted:
            return None
        same = sum(1 for live in self._calls.values() if live.source_ip == source_ip)
        if same >= self.max_calls_per_source:
            return "source_busy"
        return None

    def _request_stop(self) -> None:
        self._stopping = True
        self._options.draining = True
        if self._stop_event is not None:
            self._stop_event.set()

    def _start_drain(self) -> None:
        if self._draining or self._stopping or self._runtime is None:
            return
        self._draining = True
        self._options.draining = True  # the proxy's keep-alives get 503 from now on
        self._spawn(self._drain())

    async def _drain(self) -> None:
        if self._runtime is None:
            return
        logger.info("draining: new calls get busy; %d call(s) in progress", self.active_calls)
        stack_drain = asyncio.get_running_loop().create_task(self._runtime.drain())
        await self._no_calls.wait()
        # Our calls are over. The stack can still count a call nobody owns: baresip-python
        # 0.5.2a3 leaks one for an INVITE whose From has no tag (it answers 500 and never
        # frees the call), and its drain would wait for it forever.
        try:
            await asyncio.wait_for(stack_drain, timeout=self.stop_grace_s)
        except TimeoutError:
            logger.warning("the SIP stack still counts calls no handler owns; stopping anyway")
        except BaresipError as exc:
            logger.error("drain failed (%s); stopping", exc)
        logger.info("drained")
        if self._stop_event is not None:
            self._stop_event.set()

    def _on_runtime_dead(self) -> None:
        logger.critical("SIP stack thread died; ending all calls")
        self._dead = True
        for live in list(self._calls.values()):
            live.media.end("transport_failed")
        self._request_stop()

    async def _shutdown_calls(self) -> None:
        """Stop path: end every call and give the voice loops ``stop_grace_s`` to return."""
        for item in list(self._calls.values()):
            item.shutdown = True
            item.media.end("shutdown")
            if item.call.state is not CallState.CLOSED and not self._dead:
                with contextlib.suppress(BaresipError):
                    await item.call.hangup()
        if not self._tasks:
            return
        _, pending = await asyncio.wait(list(self._tasks), timeout=self.stop_grace_s)
        if pending:
            logger.warning(
                "%d call task(s) still running %.0f s after shutdown (a voice loop that does "
                "not return?); abandoning them",
                len(pending),
                self.stop_grace_s,
            )
            for task in pending:
                task.cancel()
            await asyncio.wait(pending, timeout=1.0)

    def _spawn(self, coro: Any) -> None:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("SIP call task failed", exc_info=task.exception())

    # ------------------------------------------------------------------ calls

    def _on_incoming(self, call: Call) -> None:
        if self._draining or self._stopping:
            self._spawn(self._refuse(call))
            return
        self._spawn(self._run_call(call, time.monotonic(), wall_now()))

    async def _refuse(self, call: Call) -> None:
        with contextlib.suppress(BaresipError):
            await call.reject()

    async def _peer_facts(self, sip_call_id: str | None) -> PeerFacts | None:
        if not sip_call_id:
            return None
        deadline = time.monotonic() + _TRACE_WAIT_S
        while True:
            facts = self._trace.lookup(sip_call_id)
            if facts is not None or time.monotonic() >= deadline:
                return facts
            await asyncio.sleep(0.002)

    def _source_of(self, call: Call, facts: PeerFacts | None) -> tuple[str | None, str | None]:
        """(source IP for the trust check, "ip:port" for the summary) of the INVITE."""
        if facts is None:
            logger.warning("no SIP trace for an incoming call; treating it as untrusted")
            return None, None
        address = facts.source
        if address is None:
            logger.warning("INVITEs with one Call-ID from several addresses; untrusted")
            return None, None
        from_tag = header_tag(header(call.headers, "From") or "").lower()
        tags = {t.lower() for t in facts.from_tags}
        if len(tags) != 1 or (from_tag and from_tag not in tags):
            logger.warning("SIP trace and INVITE disagree about the From tag; untrusted")
            return None, address
        return split_hostport(address)[0], address

    async def _run_call(self, call: Call, start_mono: float, start_wall: str) -> None:
        loop = asyncio.get_running_loop()
        local_id = "sip-" + secrets.token_hex(5)
        facts = await self._peer_facts(call.call_id)
        source_ip, remote = self._source_of(call, facts)
        trusted = self.trusted.contains(source_ip)
        decision = decide_caller(
            call.headers,
            peer_uri=call.peer,
            source_ip=source_ip,
            trusted=self.trusted,
            policy=self.caller_trust,
        )
        caller = decision.caller

        def on_hangup() -> None:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self._hangup_soon, local_id)

        def on_wake() -> None:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self._wake, local_id)

        media = BaresipCallMedia(local_id, caller, on_hangup=on_hangup, on_wake=on_wake)
        media.set_info(
            sip_call_id=call.call_id,
            remote_addr=remote,
            transport=facts.transport if facts else None,
            rtp_remote=facts.rtp_remote if facts else None,
            trusted_peer=trusted,
            caller_source=caller.source.value,
            peer_class=caller.peer.value,
            started_mono=start_mono,
            started_at=start_wall,
        )
        live = _LiveCall(call=call, media=media, source_ip=source_ip)
        # No await between the check and the registration: the per-source count is exact.
        refusal = self._refusal(facts, source_ip, trusted)
        if refusal is None:
            with self._guard:
                self._calls[local_id] = live
                self._no_calls.clear()
        try:
            if refusal is not None:
                logger.warning(
                    "%s: refused before answering (%s) from %s",
                    local_id,
                    refusal,
                    remote or "unknown address",
                )
                with contextlib.suppress(BaresipError):
                    await call.reject()
                media.end(refusal)
                media.mark("ended")
                media.set_info(ended_by="box", end_reason=refusal.split(":", 1)[0])
                if ":" in refusal:
                    media.set_info(refusal_detail=refusal.split(":", 1)[1])
                return
            logger.info("%s: caller id %s", local_id, decision.reason)
            call.on(lambda event: self._on_call_event(live, event))
            call.on_dtmf(lambda digit: self._on_digit(media, digit))
            try:
                await call.answer()
                await call.wait_established(self.answer_timeout_s)
            except CallTimeout:
                # The stack hung the call up already (wait_established does on its timeout).
                logger.warning(
                    "%s: not acknowledged within %.1f s; hung up", local_id, self.answer_timeout_s
                )
                media.end("not_acknowledged")
                media.mark("ended")
                media.set_info(ended_by="box", end_reason="not_acknowledged")
                return
            except (CallFailed, BaresipError) as exc:
                logger.info("%s: not established (%s)", local_id, exc)
                media.end("not_established")
                media.mark("ended")
                media.set_info(ended_by="caller", end_reason="not_established")
                if call.state is not CallState.CLOSED:
                    with contextlib.suppress(BaresipError):
                        await call.hangup()
                return
            media.mark("answered")
            self.calls_answered += 1
            media.set_info(setup_s=round(time.monotonic() - start_mono, 3))
            logger.info(
                "%s: answered from %s (caller id: %s%s)",
                local_id,
                remote or "unknown address",
                caller.source.value,
                ", trusted peer" if trusted else "",
            )
            pump = loop.create_task(self._pump(live))
            if self.first_rtp_timeout_s > 0:
                self._spawn(self._watch_first_rtp(live))
            live.worker = threading.Thread(
                target=self._work, args=(live, loop), name=f"call-{local_id}", daemon=True
            )
            live.worker.start()
            await live.worker_done.wait()
            if not media.ended:
                media.hangup()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(live.closed.wait(), timeout=10.0)
            media.end("closed")
            await pump
        finally:
            if call.call_id:
                if "answered_mono" in media.info:
                    # the codec of the 200 OK's answer, read at the end: the stack logs that
                    # trace record from its own thread, under load after the call is set up
                    facts = self._trace.lookup(call.call_id)
                    media.set_info(codec=facts.codec if facts is not None else None)
                self._trace.forget(call.call_id)
            with self._guard:
                self._calls.pop(local_id, None)
                if not self._calls:
                    self._no_calls.set()
            self._log_summary(media)
            if self._on_call_end is not None:
                try:
                    self._on_call_end(media.info)
                except Exception:
                    logger.exception("%s: on_call_end failed", local_id)

    async def _watch_first_rtp(self, live: _LiveCall) -> None:
        """Hang up an established call that has brought no RTP ``first_rtp_timeout_s`` after
        the answer (the stack's own RTP timeout only starts with the first packet)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(live.closed.wait(), self.first_rtp_timeout_s)
        if live.rx_bytes or live.media.ended or live.closed.is_set():
            return
        logger.warning(
            "%s: no RTP %.1f s after the answer; hanging up",
            live.media.call_id,
            self.first_rtp_timeout_s,
        )
        live.no_rtp = True
        live.media.end("no_rtp")
        self._hangup_soon(live.media.call_id)

    def _work(self, live: _LiveCall, loop: asyncio.AbstractEventLoop) -> None:
        """WORKER THREAD: the voice loop for one call."""
        media = live.media
        _lower_priority(media.call_id)
        try:
            if self._handler is not None:
                self._handler(media)
        except Exception:
            logger.exception("%s: the call handler failed; hanging up", media.call_id)
        finally:
            if not media.ended:
                media.hangup()
            media.mark("handler_done")
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(live.worker_done.set)

    def _on_digit(self, media: BaresipCallMedia, event: DigitEvent) -> None:
        media.push_digit(event.digit)

    def _on_call_event(self, live: _LiveCall, event: StackEvent) -> None:
        if event.event is not Event.CALL_CLOSED:
            return
        media = live.media
        text = event.text or ""
        if live.no_rtp:
            by, reason = "box", "no_rtp"
        elif media.hung_up_locally:
            by, reason = "box", "box_hangup"
        elif live.shutdown:
            by, reason = "box", "shutdown"
        elif "rtp" in text.lower():
            by, reason = "network", "rtp_timeout"
        elif "reset by peer" in text.lower() or not text:
            by, reason = "caller", "caller_hangup"
        else:
            by, reason = "caller", f"closed: {text}"
        media.mark("ended")
        media.set_info(ended_by=by, end_reason=reason, stack_close_text=text)
        stats = live.call.final_stats
        if stats is not None:
            media.set_info(
                rx_packets=stats.rx_packets,
                tx_packets=stats.tx_packets,
                rx_lost=stats.rx_lost,
                rx_jitter_ms=stats.rx_jitter_ms,
                mos_estimate=stats.mos_estimate,
                jbuf_delay_ms=stats.jbuf_delay_ms,  # what the receive side waits before us
                jbuf_late=stats.jbuf_late,
            )
        media.end(reason)
        live.closed.set()
        self._wake(media.call_id)

    def _hangup_soon(self, local_id: str) -> None:
        live = self._calls.get(local_id)
        if live is not None and live.call.state is not CallState.CLOSED:
            self._spawn(self._hangup(live))

    async def _hangup(self, live: _LiveCall) -> None:
        call = live.call
        tail = live.last_audio + self.hangup_tail_s - asyncio.get_running_loop().time()
        if live.last_audio and tail > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(live.closed.wait(), tail)  # unless the caller goes first
        if call.state is CallState.CLOSED:
            return
        try:
            await call.hangup()
        except StaleHandleError:
            pass  # the caller hung up at the same moment
        except BaresipError as exc:
            logger.warning("hangup failed: %s", exc)

    # ------------------------------------------------------------------ media pump

    def _wake(self, local_id: str) -> None:
        live = self._calls.get(local_id)
        if live is not None and live.waiter is not None:
            _resolve(live.waiter)

    async def _pump(self, live: _LiveCall) -> None:
        """Every 20 ms: received PCM → media; media's queued prompt → the stack."""
        try:
            await self._pump_loop(live)
        except Exception:
            # Without its pump a call is deaf and mute: end it rather than leave it up.
            logger.exception("%s: media pump failed; ending the call", live.media.call_id)
            live.media.end("transport_failed")
            self._hangup_soon(live.media.call_id)

    async def _pump_loop(self, live: _LiveCall) -> None:
        loop = asyncio.get_running_loop()
        audio = live.call.audio
        media = live.media
        target = int(self.tx_ahead_s * _BYTES_PER_SECOND) & ~1
        hold_until = 0.0
        next_tick = loop.time()
        started = False
        ticks_to_promote = 0  # ticks until the pacing threads are looked for once more
        while not media.ended:
            try:
                info = audio.info()
                if ticks_to_promote > 0:
                    ticks_to_promote -= 1
                    if ticks_to_promote == 0:  # the stack may start them just after tx_ready
                        self.media_threads.promote()
                if not started and info.tx_ready and info.rx_ready:
                    started = True
                    self.media_threads.promote()
                    ticks_to_promote = _PROMOTE_AGAIN_TICKS
                    media.set_info(
                        rx_sample_rate=info.rx_sample_rate,
                        tx_sample_rate=info.tx_sample_rate,
                        tx_realtime=self.media_threads.active,
                    )
                    if SAMPLE_RATE not in (info.rx_sample_rate, info.tx_sample_rate):
                        logger.error("%s: media is not 8 kHz (%s)", media.call_id, info)
                data = audio.read(_RX_READ_MAX)
                if data:
                    live.rx_bytes += len(data)
                    media.push_rx(data)
                now = loop.time()
                if now >= hold_until:
                    buffered = info.tx_buffered
                    need_flush, chunk, generation = media.take_tx(max(0, target - buffered))
                    if need_flush and buffered > 0:
                        audio.flush_tx()
                        hold_until = now + _FLUSH_HOLD_S
                        media.give_back(chunk, generation)
                        media.set_stack_buffered(0, generation)
                    else:
                        written = audio.write(chunk) if chunk else 0
                        if written < len(chunk):
                            media.give_back(chunk[written:], generation)
                        media.set_stack_buffered(buffered + written, generation)
                        if buffered + written > 0:
                            live.last_audio = now
            except AudioRestarted:
                logger.debug("%s: audio renegotiated; rebinding", media.call_id)
                ticks_to_promote = _PROMOTE_AGAIN_TICKS  # new streams, new pacing threads
            except AudioNotActive:
                if live.call.state is CallState.CLOSED:
                    break
            next_tick += _TICK_S
            now = loop.time()
            if next_tick < now - 0.2:  # the loop was stalled: do not burst to catch up
                next_tick = now
            await self._sleep_or_wake(live, next_tick - now)

    async def _sleep_or_wake(self, live: _LiveCall, delay: float) -> None:
        if delay <= 0:
            await asyncio.sleep(0)
            return
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        live.waiter = waiter
        handle = loop.call_later(delay, _resolve, waiter)
        try:
            await waiter
        finally:
            handle.cancel()
            live.waiter = None

    # ------------------------------------------------------------------ summary

    def _log_summary(self, media: BaresipCallMedia) -> None:
        info = media.info
        answered = info.get("answered_mono")
        ended = info.get("ended_mono")
        duration = round(ended - answered, 2) if answered and ended else None
        logger.info(
            "%s: call over (%s, %s) from %s codec=%s duration=%ss caller_id=%s",
            media.call_id,
            info.get("ended_by", "?"),
            info.get("end_reason", "?"),
            info.get("remote_addr") or "unknown address",
            info.get("codec"),
            duration,
            info.get("caller_source"),
        )
