"""Debian's baresip (1.0.0, ``baresip-core``) as a headless, scripted caller.

The caller's microphone is a WAV (``aufile``), what it hears is recorded by ``sndfile``
(``dump-*-dec.wav`` in the work directory), and ``ctrl_tcp`` drives it: dial, keypad
digits, hang up. No sound device, no ``stdio`` module (stdin is /dev/null in CI), and
``-t`` as a hard time limit. Every port is free-picked and bound to 127.0.0.1.

Note: baresip 1.0.0 hangs up by itself when the WAV ends ("end of file"), so the WAV's
length caps the call; pad it with silence when the box should be the one to hang up.
"""

from __future__ import annotations

import contextlib
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

from .audio import I16, GrowingWav
from .ctrl_tcp import CtrlTcp, CtrlTcpError
from .netports import HOST, free_port, free_port_range

BARESIP = "/usr/bin/baresip"
MODULE_PATH = "/usr/lib/baresip/modules"

CONFIG_TEMPLATE = """\
poll_method		epoll
sip_listen		{host}:{sip_port}
net_interface		{host}
call_local_timeout	120
call_max_calls		4
audio_player		aufile,/dev/null
audio_source		aufile,{wav}
audio_alert		aufile,/dev/null
ausrc_format		s16
auplay_format		s16
auenc_format		s16
audec_format		s16
audio_buffer		20-160
rtp_ports		{rtp_lo}-{rtp_hi}
rtcp_mux		no
jitter_buffer_delay	5-10
module_path		{module_path}
module			g711.so
module			aufile.so
module			sndfile.so
snd_path		{workdir}
module_tmp		account.so
module_app		menu.so
statmode_default	off
module_app		ctrl_tcp.so
ctrl_tcp_listen		{host}:{ctrl_port}
"""


def baresip_available() -> bool:
    return Path(BARESIP).is_file() and Path(MODULE_PATH, "ctrl_tcp.so").is_file()


class CallRefusedError(RuntimeError):
    """The call closed before it was established (e.g. ``486 Busy Here``)."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"call refused: {reason}")
        self.reason = reason


def account_line(caller_number: str | None, display_name: str | None, sip_port: int) -> str:
    """The accounts line; its display name and user become the From header (caller ID)."""
    if caller_number is None:
        aor = "<sip:anonymous@anonymous.invalid>"
        display = '"Anonymous" '
    else:
        aor = f"<sip:{caller_number}@{HOST}:{sip_port}>"
        display = f'"{display_name}" ' if display_name else ""
    return f"{display}{aor};regint=0;audio_codecs=pcmu,pcma;dtmfmode=rtpevent;answermode=manual\n"


class SoftphoneCaller:
    """One baresip process making calls. Use as a context manager (or call ``close``)."""

    def __init__(
        self,
        workdir: Path,
        caller_number: str | None,
        wav: Path,
        *,
        display_name: str | None = "Test Caller",
        time_limit_s: int = 40,
    ) -> None:
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.sip_port = free_port()
        self.ctrl_port = free_port()
        rtp_lo, rtp_hi = free_port_range(10)
        (self.workdir / "config").write_text(
            CONFIG_TEMPLATE.format(
                host=HOST,
                sip_port=self.sip_port,
                wav=Path(wav).resolve(),
                rtp_lo=rtp_lo,
                rtp_hi=rtp_hi,
                module_path=MODULE_PATH,
                workdir=self.workdir.resolve(),
                ctrl_port=self.ctrl_port,
            )
        )
        (self.workdir / "accounts").write_text(
            account_line(caller_number, display_name, self.sip_port)
        )
        self.log_lines: list[str] = []
        self._ready = threading.Event()
        self._proc = subprocess.Popen(
            [BARESIP, "-f", str(self.workdir), "-t", str(time_limit_s)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            cwd=self.workdir,
        )
        self._stdout_reader = threading.Thread(
            target=self._read_stdout, name=f"baresip-{self.sip_port}", daemon=True
        )
        self._stdout_reader.start()
        if not self._ready.wait(10):
            self.close()
            raise RuntimeError("baresip did not become ready:\n" + self.log_text())
        try:
            self.ctrl = CtrlTcp(self.ctrl_port)
        except OSError as exc:
            self.close()
            raise RuntimeError(f"baresip's ctrl_tcp refused ({exc}):\n" + self.log_text()) from exc
        self.dial_started: float | None = None
        self._dump: GrowingWav | None = None  # the latest call's recording, read as it grows
        self.established_at: float | None = None

    def _read_stdout(self) -> None:
        assert self._proc.stdout is not None
        for raw in self._proc.stdout:
            line = raw.decode("utf-8", "replace").rstrip()
            self.log_lines.append(line)
            if "baresip is ready" in line:
                self._ready.set()
        self._ready.set()  # exited: stop waiting

    def log_text(self) -> str:
        return "\n".join(self.log_lines[-60:])

    # ---------------------------------------------------------------- calls

    def dial(self, uri: str, *, timeout: float = 10.0) -> dict[str, Any]:
        """Dial and wait until the call is established; raise CallRefusedError otherwise."""
        self.dial_started = time.monotonic()
        self.ctrl.command("dial", uri)
        event = self.ctrl.wait_event("CALL_ESTABLISHED", "CALL_CLOSED", timeout=timeout)
        if event["type"] == "CALL_CLOSED":
            raise CallRefusedError(str(event.get("param", "")))
        self.established_at = time.monotonic()
        return event

    def send_digits(self, digits: str) -> None:
        """RFC 4733 telephone-events; baresip queues them (180 ms each, ~0.24 s apart)."""
        self.ctrl.command("sndcode", digits)

    def hangup(self) -> None:
        self.ctrl.command("hangup")

    def wait_closed(self, timeout: float) -> str:
        """Wait for the call to end; returns baresip's close reason."""
        event = self.ctrl.wait_event("CALL_CLOSED", timeout=timeout)
        return str(event.get("param", ""))

    def received_wav(self) -> I16:
        """What the caller heard (sndfile's decoder dump, 8 kHz s16) of its latest call."""
        dumps = sorted(self.workdir.glob("dump-*-dec.wav"), key=lambda p: p.stat().st_mtime)
        if not dumps:
            raise FileNotFoundError(f"no sndfile dump in {self.workdir}")
        if self._dump is None or self._dump.path != dumps[-1]:
            self._dump = GrowingWav(dumps[-1])
        samples = self._dump.read()
        if self._dump.rate != 8000:
            raise ValueError(f"unexpected dump rate {self._dump.rate}")
        return samples

    # ------------------------------------------------------------- lifetime

    def close(self) -> int | None:
        """Quit baresip (ctrl_tcp ``quit``, then terminate); returns its exit code."""
        ctrl = getattr(self, "ctrl", None)
        if ctrl is not None:
            with contextlib.suppress(CtrlTcpError, OSError):
                ctrl.command("quit", timeout=2.0)
            ctrl.close()
        try:
            return self._proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._proc.terminate()
            try:
                return self._proc.wait(timeout=3)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                return self._proc.wait()

    def __enter__(self) -> SoftphoneCaller:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
