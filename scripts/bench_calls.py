"""Load benchmark: N simultaneous SIP calls to the real box, measured from the caller's side.

    PYTHONPATH=. .venv/bin/python scripts/bench_calls.py --calls 1,4,8 [--budget-s 900]

The box (``python -m assistant sip``, the same process the end-to-end tests start, with the
tone prompt pack of ``tests/sip/tones.py``) answers on 127.0.0.1 only. For each N, N copies of
Debian's baresip (``tests/sip/softphone.py``) dial at once; each caller listens before it talks
(``tests/sip/caller.py``), reads a real recorded code (the corpus speaker's digit words), says
"đúng" at the read-back, waits for the password read twice and says "không". Per N it prints:

* calls that ended with the right password (the password heard as tones, checked with
  ``accounts check``);
* reply latency p50/p95 **from the caller's side**: a raw packet capture on the loopback
  interface (root only) times the RTP on the wire: the caller's last speech packet of a turn →
  the box's first audible packet after it, over all turns and split into "after the code"
  (each call's first turn) and "after a yes/no" (its later turns); and the same figures from
  the box's own summaries (``stages.reply_latency``);
* the box's CPU (cores busy during the run), peak RSS (``VmHWM``) and RSS once the level is
  over (``VmRSS``: repeat a level, ``--calls 4,4,4``, to see whether the box grows);
* the box's outgoing RTP: packets, missing (sequence gaps), late (more than 20 ms behind the
  packet schedule of its stream, fitted to its sequence numbers) and the worst lateness; and
  slips: a stream whose packets, sequence numbers unbroken, all come one packet time later
  from some packet on (the stack's transmit thread found its buffer empty at one tick and sent
  nothing then: every packet after it counts as late), with how many of them fell inside
  audible audio (a gap the caller can hear) rather than silence, and the worst lateness on
  the stretches between slips (the sender's own timing, slips aside);
* the box's backlog: how far behind the caller's end of speech the box's own clock put it
  (caller-side latency minus the box's figure); a CPU-starved box falls behind real time
  while its own sample-counted figures still look short.
* once, the box's start-up time (process start → ready to answer).

N grows through ``--calls`` and stops after the first N at which a call fails. Every wait is
bounded; the whole run stops by itself after ``--budget-s``.

The script is long because it carries its own loopback packet capture and RTP analysis: the
figures must come from the wire, not from the box's own clock.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import socket
import struct
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the end-to-end helpers (tests/sip)

from sip import audio as sig  # noqa: E402
from sip.box import AccountsCli, BoxProcess  # noqa: E402
from sip.caller import (  # noqa: E402
    ListeningCaller,
    corpus_words_dir,
    quiet_tail_s,
    spoken_code,
    spoken_words,
    utterance_wav,
)
from sip.softphone import SoftphoneCaller, baresip_available  # noqa: E402
from sip.tones import readouts_after_readback, write_prompt_pack  # noqa: E402

from assistant.audio.g711 import alaw_decode, ulaw_decode  # noqa: E402
from assistant.core.paths import data_file, shared_corpus_dir  # noqa: E402

SPEECH_RMS = 300.0  # a packet louder than this carries speech or prompt audio
TURN_GAP_S = 0.5  # caller packets this far apart belong to different turns
LATE_S = 0.02  # a packet later than this behind its stream's schedule is late
FloatArray = npt.NDArray[np.float64]
SLIP_S = 0.012  # a lasting step in a stream's schedule at least this long is a slip
SLIP_SPAN = 25  # packets on each side of a step whose median phase must differ by SLIP_S
ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4
SOL_PACKET = 263
PACKET_IGNORE_OUTGOING = 23
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)  # Linux: 35


# ------------------------------------------------------------------------------ capture


@dataclass
class Packet:
    at: float  # the kernel's receive time (wall clock, seconds)
    src: int
    dst: int
    seq: int
    pt: int
    rms: float


class LoopbackCapture:
    """UDP packets on ``lo`` to or from a port range, read with an AF_PACKET socket (root).

    Each packet carries the kernel's receive timestamp (``SO_TIMESTAMPNS``), so the figures do
    not depend on how quickly this process gets the CPU; packets are only stored while the calls
    run and parsed at :meth:`close`, so the capture takes little CPU from the box."""

    def __init__(self, ports: tuple[int, int]) -> None:
        self.lo, self.hi = ports
        self.packets: list[Packet] = []
        self._raw: list[tuple[bytes, float]] = []
        self._sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 << 20)
        self._sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        # loopback shows every packet twice, as sent and as received: have the kernel drop
        # the sent copy (Linux 4.20+) instead of waking this thread for it; older kernels
        # refuse the option and _run skips those copies itself
        with contextlib.suppress(OSError):
            self._sock.setsockopt(SOL_PACKET, PACKET_IGNORE_OUTGOING, 1)
        self._sock.bind(("lo", 0))
        self._sock.settimeout(0.2)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="capture", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                raw, ancillary, _flags, addr = self._sock.recvmsg(65535, 64)
            except TimeoutError:
                continue
            if addr[2] == PACKET_OUTGOING:  # loopback shows each packet twice: keep one
                continue
            at = time.time()
            for level, kind, data in ancillary:
                if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(data) >= 16:
                    sec, nsec = struct.unpack("qq", data[:16])
                    at = sec + nsec / 1e9
            self._raw.append((raw, at))

    def _parse(self, raw: bytes, at: float) -> None:
        if len(raw) < 14 + 20 + 8 + 12 or raw[12:14] != b"\x08\x00":
            return
        ip = raw[14:]
        ihl = (ip[0] & 0x0F) * 4
        if ip[9] != 17:  # UDP
            return
        udp = ip[ihl:]
        src, dst = struct.unpack("!HH", udp[:4])
        if not (self.lo <= src <= self.hi or self.lo <= dst <= self.hi):
            return
        rtp = udp[8:]
        if len(rtp) < 12 or rtp[0] >> 6 != 2:
            return
        pt = rtp[1] & 0x7F
        seq = struct.unpack("!H", rtp[2:4])[0]
        start = 12 + 4 * (rtp[0] & 0x0F)
        if rtp[0] & 0x10 and len(rtp) >= start + 4:
            start += 4 + 4 * struct.unpack("!H", rtp[start + 2 : start + 4])[0]
        payload = np.frombuffer(rtp[start:], dtype=np.uint8)
        rms = 0.0
        if pt in (0, 8) and len(payload):
            pcm = ulaw_decode(payload) if pt == 0 else alaw_decode(payload)
            rms = float(np.sqrt(np.mean(pcm.astype(np.float64) ** 2)))
        self.packets.append(Packet(at, src, dst, seq, pt, rms))

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self._sock.close()
        raw, self._raw = self._raw, []
        for packet, at in raw:
            self._parse(packet, at)


def caller_side_latencies(
    packets: list[Packet], box_ports: tuple[int, int]
) -> list[tuple[int, float]]:
    """Per call leg (caller port): end of each caller turn → the box's next audible packet,
    with the turn's index in its call (0: the code; then "đúng" and "không")."""
    lo, hi = box_ports
    legs: dict[int, tuple[list[Packet], list[Packet]]] = {}
    for p in packets:
        if p.pt not in (0, 8):
            continue
        if lo <= p.dst <= hi:
            legs.setdefault(p.src, ([], []))[0].append(p)
        elif lo <= p.src <= hi:
            legs.setdefault(p.dst, ([], []))[1].append(p)
    out: list[tuple[int, float]] = []
    for sent, heard in legs.values():
        ends: list[float] = []
        last: float | None = None
        for p in sent:
            if p.rms < SPEECH_RMS:
                continue
            if last is not None and p.at - last > TURN_GAP_S:
                ends.append(last)
            last = p.at
        if last is not None:
            ends.append(last)
        loud = [p.at for p in heard if p.rms >= SPEECH_RMS]
        for turn, end in enumerate(ends):
            later = [t for t in loud if t > end]
            if later:
                out.append((turn, later[0] - end))
    return out


def schedule_slips(slots: FloatArray, arrivals: FloatArray) -> list[int]:
    """Indexes of the packets where a stream's schedule stepped later and stayed there.

    ``slots`` are sequence numbers from the first packet, ``arrivals`` wire times, both in
    sequence order. A packet that is late and then caught up is not a slip; a step of at least
    :data:`SLIP_S` between the median phase of the :data:`SLIP_SPAN` packets before and after
    it is."""
    phase = arrivals - 0.02 * slots
    out: list[int] = []
    edge = 5  # at a stream's ends, this many packets on each side will do
    i = edge
    while i <= len(phase) - edge:
        jump = phase[i] - phase[i - 1]
        if jump >= SLIP_S:
            before = float(np.median(phase[max(0, i - SLIP_SPAN) : i]))
            after = float(np.median(phase[i : i + SLIP_SPAN]))
            if after - before >= SLIP_S:
                out.append(i)
                i += SLIP_SPAN
                continue
        i += 1
    return out


def rtp_timing(packets: list[Packet], box_ports: tuple[int, int]) -> dict[str, float]:
    """The box's outgoing streams: packets, sequence gaps, packets late on the 20 ms schedule,
    and slips (see :func:`schedule_slips`)."""
    lo, hi = box_ports
    streams: dict[tuple[int, int], list[Packet]] = {}
    for p in packets:
        if lo <= p.src <= hi and p.pt in (0, 8):
            streams.setdefault((p.src, p.dst), []).append(p)
    total = missing = late = very_late = slips = audible_slips = 0
    worst = worst_between = 0.0
    for stream in streams.values():
        total += len(stream)
        seqs = [p.seq for p in stream]
        unwrapped = np.unwrap(np.array(seqs, dtype=np.float64), period=65536)
        missing += int(unwrapped.max() - unwrapped.min() + 1 - len(set(unwrapped.tolist())))
        slots = unwrapped - unwrapped[0]
        arrivals = np.array([p.at for p in stream])
        # the sender's clock may run a little fast or slow: take the schedule's rate from the
        # stream itself (a line fitted through arrival time against sequence number)
        slope, _ = np.polyfit(slots, arrivals, 1) if len(stream) > 1 else (0.02, 0.0)
        offsets = arrivals - slope * slots
        behind = offsets - np.percentile(offsets, 1)
        late += int(np.sum(behind > LATE_S))
        very_late += int(np.sum(behind > 2 * LATE_S))
        worst = max(worst, float(behind.max()) if len(behind) else 0.0)
        order = np.argsort(unwrapped, kind="stable")
        steps = schedule_slips(slots[order], arrivals[order])
        slips += len(steps)
        loud = [stream[k].rms > SPEECH_RMS for k in order]
        audible_slips += sum(1 for i in steps if loud[i - 1] and loud[i])
        # lateness on each stretch between slips: the sender's own timing, slips aside (the
        # nominal 20 ms: the fitted rate leans on the steps, and sender and capture share a clock)
        in_order = arrivals[order] - 0.02 * slots[order]
        for part in np.split(in_order, steps):
            if len(part):
                worst_between = max(worst_between, float(part.max() - np.percentile(part, 1)))
    return {
        "streams": len(streams),
        "packets": total,
        "missing": missing,
        "late": late,
        "late_over_40ms": very_late,  # two packet times: the sender starved, not a slip
        "worst_late_ms": round(1000 * worst, 1),
        "slips": slips,
        "slips_in_audio": audible_slips,
        "worst_late_between_slips_ms": round(1000 * worst_between, 1),
    }


# ------------------------------------------------------------------------------ box stats


def proc_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def proc_rss_mb(pid: int, field: str = "VmHWM") -> float:
    """The process's peak RSS (``VmHWM``), or its RSS now (``field="VmRSS"``), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024.0
    return float("nan")


# ------------------------------------------------------------------------------ callers


@dataclass(frozen=True)
class Account:
    phone: str
    code: str


@dataclass
class CallOutcome:
    account: Account
    password: str | None = None
    right_password: bool = False
    summary: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


def box_is_listening(samples: np.ndarray) -> bool:
    heard_s = len(samples) / sig.RATE
    tail = quiet_tail_s(samples)
    return heard_s >= 1.5 and tail >= 0.6 and tail < heard_s - 0.2


def one_call(
    box: BoxProcess,
    workdir: Path,
    words: Path,
    account: Account,
    silence_wav: Path,
    start: threading.Barrier,
    deadline: float,
    delay_s: float = 0.0,
) -> CallOutcome:
    out = CallOutcome(account)
    workdir.mkdir(parents=True, exist_ok=True)
    code_wav = utterance_wav(workdir / "code.wav", spoken_code(words, account.code))
    yes_wav = utterance_wav(workdir / "yes.wav", spoken_words(words, ["dung"]))
    no_wav = utterance_wav(workdir / "no.wav", spoken_words(words, ["khong"]))

    def left() -> float:
        return max(1.0, deadline - time.monotonic())

    try:
        with SoftphoneCaller(
            workdir / "phone", account.phone, silence_wav, time_limit_s=int(left()) + 5
        ) as phone:
            start.wait(timeout=60)
            time.sleep(delay_s)  # its arrival time within --spread-s
            phone.dial(box.uri, timeout=min(20.0, left()))
            caller = ListeningCaller(phone)
            caller.wait(box_is_listening, min(60.0, left()), "the question")
            caller.say(code_wav)
            caller.wait_readouts(
                lambda r: any(len(x) == 10 for x in r), min(60.0, left()), "the code read back"
            )
            caller.say(yes_wav)
            seqs = caller.wait_readouts(
                lambda r: len(readouts_after_readback(r)) >= 2,
                min(60.0, left()),
                "the password read twice",
            )
            passwords = readouts_after_readback([s.digits for s in seqs])
            out.password = passwords[0] if passwords else None
            caller.say(no_wav)
            phone.wait_closed(min(30.0, left()))
    except (AssertionError, RuntimeError, OSError, TimeoutError) as exc:
        start.abort()  # the other callers of this level stop waiting for this one
        lines = str(exc).splitlines() or [""]
        out.error = f"{type(exc).__name__}: {lines[0][:160]}"
        if len(lines) > 1:  # a softphone's log: its last lines say why
            out.error += "".join(f"\n    | {line[:160]}" for line in lines[-6:])
    return out


def wait_summaries(
    box: BoxProcess, before: set[str], n: int, timeout: float
) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        new = {k: v for k, v in box.summaries().items() if k not in before}
        if len(new) >= n:
            return list(new.values())
        time.sleep(0.2)
    return [v for k, v in box.summaries().items() if k not in before]


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def ms(values: list[float]) -> str:
    if not values:
        return "n=0"
    p50, p95 = 1000 * pct(values, 50), 1000 * pct(values, 95)
    return f"p50 {p50:.0f} ms, p95 {p95:.0f} ms (n={len(values)})"


def run_level(
    n: int,
    box: BoxProcess,
    cli: AccountsCli,
    accounts: list[Account],
    words: Path,
    work: Path,
    silence_wav: Path,
    box_ports: tuple[int, int],
    deadline: float,
    spread_s: float = 0.0,
) -> bool:
    level = work / f"n{n}"
    repeat = 1
    while level.exists():  # the same N again (--calls 4,4,4: does the box grow?)
        repeat += 1
        level = work / f"n{n}-{repeat}"
    level.mkdir()
    before = box.summary_names()
    capture: LoopbackCapture | None = None
    try:
        capture = LoopbackCapture(box_ports)
    except PermissionError:
        print("  (no raw capture: not root; caller-side figures and RTP timing skipped)")
    barrier = threading.Barrier(n)
    cpu0, t0 = proc_cpu_s(box.proc.pid), time.monotonic()
    with ThreadPoolExecutor(n) as pool:
        outcomes = list(
            pool.map(
                lambda i: one_call(
                    box,
                    level / f"c{i}",
                    words,
                    accounts[i],
                    silence_wav,
                    barrier,
                    deadline,
                    spread_s * i / n,
                ),
                range(n),
            )
        )
    summaries = wait_summaries(box, before, n, 30.0)
    wall = time.monotonic() - t0
    cpu = proc_cpu_s(box.proc.pid) - cpu0
    if capture is not None:
        capture.close()
        rows = [(p.at, p.src, p.dst, p.seq, p.pt, p.rms) for p in capture.packets]
        np.save(level / "packets.npy", np.array(rows, dtype=np.float64).reshape(-1, 6))
    checks = [(o, o.password) for o in outcomes if o.password]
    for o, password in checks:
        assert password is not None
        # exit 3: the issued one-time password is valid and must be changed (issue 12)
        o.right_password = cli.check(o.account.code, password) == 3
    right = sum(o.right_password for o in outcomes)
    code_lat: list[float] = []
    yesno_lat: list[float] = []
    for s in summaries:
        lat = s.get("stages", {}).get("reply_latency", [])
        code_lat += lat[:1]
        yesno_lat += lat[1:]
    arrivals = f"arrivals spread over {spread_s:g} s" if spread_s else "all dialled at once"
    print(f"\nN={n} ({arrivals}): {right}/{n} calls ended with the right password, {wall:.1f} s")
    for o in outcomes:
        if o.error:
            print(f"  call failed: {o.error}")
    if capture is not None:
        turns = caller_side_latencies(capture.packets, box_ports)
        caller = [lat for _, lat in turns]
        print(f"  reply latency, caller's side (RTP on the wire): {ms(caller)}")
        print(f"    after the code: {ms([lat for turn, lat in turns if turn == 0])}")
        print(f"    after yes/no:   {ms([lat for turn, lat in turns if turn > 0])}")
        box_all = code_lat + yesno_lat
        if caller and box_all:
            behind = pct(caller, 50) - pct(box_all, 50)
            print(f"  backlog (caller's p50 - box's p50): {1000 * behind:.0f} ms")
    print(f"  reply latency, box summaries, after the code: {ms(code_lat)}")
    print(f"  reply latency, box summaries, after yes/no:   {ms(yesno_lat)}")
    waits = [w for s in summaries for w in s.get("stages", {}).get("endpoint_wait", [])]
    if waits:
        print(f"  endpoint wait (silence heard before the turn ended): {ms(waits)}")
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"  machine load average (1/5/15 min): {load} on {os.cpu_count()} cores")
    print(
        f"  box CPU {cpu:.1f} s in {wall:.1f} s = {cpu / wall:.2f} cores; "
        f"peak RSS {proc_rss_mb(box.proc.pid):.0f} MB, "
        f"RSS now {proc_rss_mb(box.proc.pid, 'VmRSS'):.0f} MB"
    )
    if capture is not None:
        print(f"  box RTP out: {json.dumps(rtp_timing(capture.packets, box_ports))}")
    return right == n


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", default="1,4,8", help="levels of N (default 1,4,8)")
    parser.add_argument("--budget-s", type=float, default=900.0, help="stop after (default 900)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument(
        "--callers-nice",
        type=int,
        default=10,
        help="niceness of this script and the baresip callers it starts after the box (default "
        "10: on a real line the callers are not on the box's CPU; 0 to share it evenly)",
    )
    parser.add_argument(
        "--spread-s",
        type=float,
        default=0.0,
        help="dial the N calls evenly over this many seconds instead of all at once (callers "
        "who ring independently; every call is still in progress with the others)",
    )
    parser.add_argument(
        "--box-arg",
        action="append",
        default=[],
        help="one more argument for the box's command line (repeat it: --box-arg=--asr-unfolded)",
    )
    args = parser.parse_args(argv)
    levels = [int(x) for x in args.calls.split(",") if x.strip()]
    if not levels or min(levels) < 1:
        parser.error("--calls takes positive integers, e.g. 1,4,8,16,24")
    words = corpus_words_dir(shared_corpus_dir())
    if words is None or not baresip_available():
        print(
            "needs ../shared/corpus (real digit recordings) and /usr/bin/baresip", file=sys.stderr
        )
        return 2
    deadline = time.monotonic() + args.budget_s
    rng = random.Random(11)
    accounts = [
        Account(
            f"09{rng.randrange(10**8):08d}", "".join(rng.choice("0123456789") for _ in range(10))
        )
        # every level has callers of its own: the limits across calls (issue 13) give each
        # number and account one password a day, so a caller from an earlier level would be
        # told so instead of getting a password
        for _ in range(sum(levels))
    ]
    work = Path(tempfile.mkdtemp(prefix="bench_calls_"))
    db = f"sqlite:///{work / 'accounts.sqlite3'}"
    cli = AccountsCli(db)
    cli.init_db()
    cli.import_accounts(work / "accounts.csv", [(a.code, a.phone) for a in accounts])
    pack = write_prompt_pack(work / "pack", data_file("prompts.toml"))
    silence_wav = sig.write_wav(work / "silence.wav", sig.silence(300))
    box = BoxProcess(
        work / "box",
        db,
        prompt_pack=pack,
        max_calls=max(levels),
        rtp_timeout_s=10,
        # every caller rings from 127.0.0.1: lift the per-address limit (issue 13) for the run
        extra=["--max-calls-per-source", str(max(levels)), *args.box_arg],
    )
    try:
        box.wait_ready(120)
        if args.callers_nice:
            os.nice(args.callers_nice)  # the box, already running, keeps its own priority
        lo, hi = (int(p) for p in box.cmd[box.cmd.index("--rtp-ports") + 1].split("-"))
        print(
            f"box ready {box.ready_after_s:.2f} s after start "
            f"(RSS {proc_rss_mb(box.proc.pid):.0f} MB peak so far); levels {levels}; "
            f"callers at niceness {args.callers_nice}"
        )
        used = 0
        for n in levels:
            if time.monotonic() > deadline - 60:
                print(f"\nbudget spent: stopping before N={n}")
                break
            callers = accounts[used : used + n]
            used += n
            ok = run_level(
                n, box, cli, callers, words, work, silence_wav, (lo, hi), deadline, args.spread_s
            )
            if not ok:
                print(f"\ncalls failed at N={n}: stopping here")
                break
    finally:
        rc = box.terminate()
        print(
            f"\nbox stopped (exit {rc}); work directory {work}" + ("" if args.keep else " removed")
        )
        if not args.keep:
            import shutil

            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
