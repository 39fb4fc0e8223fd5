"""Scale-out, end to end: Kamailio (``deploy/kamailio/kamailio.cfg``, unchanged) in front of
two boxes that share one PostgreSQL, called by Debian's baresip and sipp.

Everything runs on 127.0.0.1 (the untrusted sipp caller on 127.0.0.2): a throwaway PostgreSQL
(``tests/pg_server.py``), ``init-db`` and ``accounts import`` on it, two ``python -m assistant
sip`` boxes with ``--metrics``, and ``kamailio -DD -E`` with the box pair as its dispatcher set,
probed with OPTIONS every second. The test checks that calls through the proxy reach both boxes;
that a box sent SIGTERM mid-call answers the keep-alives 503, drops out of the rotation and still
finishes its call, while new calls succeed on the other box; that every call left its audit row
in the shared database; and that P-Asserted-Identity reaches a box only from the trusted trunk.
"""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import signal
import subprocess
import threading
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pg_server import PgServer
from sip import audio as sig
from sip.box import PROJECT_ROOT, AccountsCli, BoxProcess, wait_for
from sip.caller import ListeningCaller, quiet_tail_s
from sip.netports import HOST, free_port
from sip.options import options_status
from sip.sipp import run_sipp_call, sipp_available
from sip.softphone import SoftphoneCaller, baresip_available
from sip.tones import readouts_after_readback, write_prompt_pack

from assistant.core.paths import data_file
from assistant.language.phone import mask_phone

KAMAILIO = shutil.which("kamailio") or "/usr/sbin/kamailio"
KAMCMD = shutil.which("kamcmd") or "/usr/sbin/kamcmd"
CONFIG = PROJECT_ROOT / "deploy" / "kamailio" / "kamailio.cfg"
HAVE_KAMAILIO = Path(KAMAILIO).is_file() and Path(KAMCMD).is_file()
UNTRUSTED_IP = "127.0.0.2"  # another loopback address: a caller that is not the trunk

pytestmark = [
    pytest.mark.sip,
    pytest.mark.slow,
    pytest.mark.skipif(
        not HAVE_KAMAILIO, reason="Debian's kamailio missing: apt-get install kamailio"
    ),
    pytest.mark.skipif(
        importlib.util.find_spec("baresip") is None,
        reason="baresip-python missing: pip install baresip-python==0.5.2a3",
    ),
    pytest.mark.skipif(
        not baresip_available(),
        reason="/usr/bin/baresip with ctrl_tcp missing: apt-get install baresip-core",
    ),
    pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng missing"),
]


@dataclass(frozen=True)
class Account:
    phone: str
    code: str


ACCOUNTS = [
    Account("0912345001", "4801357001"),
    Account("0912345002", "4801357002"),
    Account("0912345003", "4801357003"),
    Account("0912345004", "4801357004"),
    Account("0912345005", "4801357005"),
]
PAI_ACCOUNT = Account("0976543210", "2950816473")


class Kamailio:
    """``kamailio -DD -E`` on a free 127.0.0.1 port with a dispatcher set of ``targets``."""

    def __init__(self, workdir: Path, targets: list[str]) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.ctl = workdir / "kamailio.ctl"
        dispatcher = workdir / "dispatcher.list"
        dispatcher.write_text(
            "".join(f"1 sip:{t} 8 0 duid=box{i}\n" for i, t in enumerate(targets)),
            encoding="utf-8",
        )
        self.log_path = workdir / "kamailio.log"
        cmd = [
            KAMAILIO,
            "-f",
            str(CONFIG),
            "-DD",
            "-E",
            "-A",
            f"LISTEN=udp:{HOST}:{self.port}",
            "-A",
            f'DISPATCHER_LIST="{dispatcher}"',
            "-A",
            f'CTL_SOCKET="unix:{self.ctl}"',
            "-A",
            f'TRUNK_IP="{HOST}"',
        ]
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log, cwd=workdir
            )

    @property
    def target(self) -> str:
        return f"{HOST}:{self.port}"

    @property
    def uri(self) -> str:
        return f"sip:assistant@{self.target}"

    def states(self) -> dict[str, str]:
        """Dispatcher destination -> flags (``AP`` active, ``IP`` inactive, both probing)."""
        if self.proc.poll() is not None:
            raise AssertionError("kamailio exited:\n" + self.log_tail())
        proc = subprocess.run(
            [KAMCMD, "-s", f"unix:{self.ctl}", "dispatcher.list"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
        if proc.returncode != 0:
            return {}
        uris = re.findall(r"URI: sip:(\S+)", proc.stdout)
        flags = re.findall(r"FLAGS: (\S+)", proc.stdout)
        return dict(zip(uris, flags, strict=False))

    def wait_state(self, target: str, flags: str, timeout: float = 20.0) -> None:
        wait_for(lambda: self.states().get(target) == flags, timeout, f"{target} {flags}")

    def log_tail(self, lines: int = 60) -> str:
        text = self.log_path.read_text(encoding="utf-8", errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@dataclass
class Cluster:
    boxes: list[BoxProcess]
    metrics: list[int]
    proxy: Kamailio
    cli: AccountsCli
    workdir: Path
    silence: Path


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, pg_server: PgServer) -> Iterator[Cluster]:
    workdir = tmp_path_factory.mktemp("scale")
    db_url = pg_server.create_database("scale")
    cli = AccountsCli(db_url)
    cli.init_db()
    cli.import_accounts(workdir / "accounts.csv", [(a.code, a.phone) for a in ACCOUNTS])
    cli.import_accounts(workdir / "pai.csv", [(PAI_ACCOUNT.code, PAI_ACCOUNT.phone)])
    pack = write_prompt_pack(workdir / "pack", data_file("prompts.toml"))
    boxes: list[BoxProcess] = []
    metrics: list[int] = []
    proxy: Kamailio | None = None
    try:
        for n in range(2):
            port = free_port()
            metrics.append(port)
            boxes.append(
                BoxProcess(
                    workdir / f"box{n}",
                    db_url,
                    prompt_pack=pack,
                    trusted_peers=(HOST,),  # the proxy: PAI is believed from it only
                    extra=["--metrics", f"{HOST}:{port}"],
                )
            )
        for box in boxes:
            box.wait_ready()
        proxy = Kamailio(workdir / "kamailio", [b.target for b in boxes])
        for box in boxes:
            proxy.wait_state(box.target, "AP")
        silence = sig.write_wav(workdir / "silence.wav", sig.silence(120))
        yield Cluster(boxes, metrics, proxy, cli, workdir, silence)
    finally:
        if proxy is not None:
            proxy.stop()
        for box in boxes:
            box.kill()
        pg_server.drop_database(db_url)


def box_is_listening(samples: np.ndarray[Any, Any]) -> bool:
    heard_s = len(samples) / sig.RATE
    tail = quiet_tail_s(samples)
    return heard_s >= 1.5 and tail >= 0.6 and tail < heard_s - 0.2


def answered(box: BoxProcess) -> int:
    return box.stderr_path.read_text(encoding="utf-8", errors="replace").count("answered from")


class KeypadCall:
    """One password reset through the proxy: key the code in, confirm, hear the password
    twice, decline a third time, wait for the box to hang up. ``greeted`` is set once the
    box has spoken (the call is up on some box)."""

    def __init__(self, cluster: Cluster, account: Account, name: str) -> None:
        self.cluster = cluster
        self.account = account
        self.workdir = cluster.workdir / name
        self.greeted = threading.Event()
        self.go_on = threading.Event()
        self.go_on.set()
        self.error: BaseException | None = None
        self.passwords: list[str] = []

    def run(self) -> None:
        try:
            self._run()
        except BaseException as exc:  # reported by the test
            self.error = exc
            self.greeted.set()

    def _run(self) -> None:
        with SoftphoneCaller(
            self.workdir, self.account.phone, self.cluster.silence, time_limit_s=150
        ) as phone:
            phone.dial(self.cluster.proxy.uri)
            caller = ListeningCaller(phone)
            caller.wait(box_is_listening, 40, "the greeting and the question")
            self.greeted.set()
            assert self.go_on.wait(60)
            phone.send_digits(self.account.code + "#")
            caller.wait_readouts(lambda r: any(len(x) == 10 for x in r), 60, "the code read back")
            phone.send_digits("1")
            seqs = caller.wait_readouts(
                lambda r: len(readouts_after_readback(r)) >= 2, 60, "the password read twice"
            )
            self.passwords = readouts_after_readback([s.digits for s in seqs])
            phone.send_digits("2")
            phone.wait_closed(60)


def run_call(cluster: Cluster, account: Account, name: str) -> KeypadCall:
    call = KeypadCall(cluster, account, name)
    call.run()
    if call.error is not None:
        raise call.error
    return call


def summaries_by_caller(box: BoxProcess) -> dict[str, dict[str, Any]]:
    return {s.get("caller", ""): s for s in box.summaries().values()}


def metric_total(port: int, name: str) -> float:
    with urllib.request.urlopen(f"http://{HOST}:{port}/metrics", timeout=10) as reply:
        text = reply.read().decode()
    return sum(
        float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name + "{")
    )


def test_calls_spread_over_both_boxes_and_survive_one_draining(cluster: Cluster) -> None:
    box0, box1 = cluster.boxes
    proxy = cluster.proxy

    # two calls in a row: the dispatcher's round robin gives one to each box
    first = run_call(cluster, ACCOUNTS[0], "call0")
    second = run_call(cluster, ACCOUNTS[1], "call1")
    assert len(first.passwords) >= 2 and len(second.passwords) >= 2
    wait_for(lambda: len(box0.summary_paths()) + len(box1.summary_paths()) == 2, 30, "2 calls")
    assert len(box0.summary_paths()) == 1 and len(box1.summary_paths()) == 1

    # a third call is up on some box when that box is told to stop (SIGTERM: drain)
    before = [answered(b) for b in cluster.boxes]
    third = KeypadCall(cluster, ACCOUNTS[2], "call2")
    third.go_on.clear()
    worker = threading.Thread(target=third.run, name="call2")
    worker.start()
    assert third.greeted.wait(60) and third.error is None, third.error
    took = [answered(b) - n for b, n in zip(cluster.boxes, before, strict=True)]
    assert sorted(took) == [0, 1], took
    draining = cluster.boxes[took.index(1)]
    other = cluster.boxes[took.index(0)]
    draining.proc.send_signal(signal.SIGTERM)
    wait_for(lambda: options_status(draining.target, timeout=1.0) == 503, 10, "OPTIONS 503")
    proxy.wait_state(draining.target, "IP")  # out of the rotation
    assert proxy.states()[other.target] == "AP"
    third.go_on.set()

    # new calls while it drains: both reach the other box, and work
    later = [
        KeypadCall(cluster, ACCOUNTS[3], "call3"),
        KeypadCall(cluster, ACCOUNTS[4], "call4"),
    ]
    threads = [threading.Thread(target=c.run, name=c.workdir.name) for c in later]
    for t in threads:
        t.start()
    for t in [*threads, worker]:
        t.join(240)
        assert not t.is_alive()
    for call in [third, *later]:
        assert call.error is None, call.error
        assert len(call.passwords) >= 2

    # the drained box finished its call and exited cleanly; the other took the new ones
    assert draining.terminate() == 0, draining.stderr_tail()
    assert json.loads(draining.stdout().strip().splitlines()[-1]) == {"calls": 2}
    wait_for(lambda: len(other.summary_paths()) == 3, 30, "the other box's 3 summaries")
    got = summaries_by_caller(other)
    for account in (ACCOUNTS[3], ACCOUNTS[4]):
        assert got[mask_phone(account.phone)]["outcome"] == "password_issued"
    assert summaries_by_caller(draining)[mask_phone(ACCOUNTS[2].phone)]["outcome"] == (
        "password_issued"
    )

    # every call left its audit row in the one shared database, from the box that took it
    call_ids = {
        s["call_id"] for b in cluster.boxes for s in b.summaries().values() if "call_id" in s
    }
    assert len(call_ids) == 5
    rows = cluster.cli.audit()
    assert {r.call_id for r in rows} >= call_ids
    assert sum(r.outcome == "password_issued" for r in rows if r.call_id in call_ids) == 5
    # the caller id came from P-Asserted-Identity, which the proxy added for the trunk
    assert {r.caller_source for r in rows if r.call_id in call_ids} == {"p-asserted-identity"}
    # each issued password works (the last one read to each caller)
    for call in [first, second, third, *later]:
        # 3: valid, a change is due (an issued password is a one-time, must-change credential)
        assert cluster.cli.check(call.account.code, call.passwords[-1]) == 3
    # the surviving box's metrics count its calls (three finished, none in progress)
    assert metric_total(cluster.metrics[cluster.boxes.index(other)], "vssid_calls_total") == 3


@pytest.mark.skipif(
    not sipp_available(), reason="/usr/bin/sipp missing: apt-get install sip-tester"
)
def test_pai_reaches_a_box_only_from_the_trusted_trunk(cluster: Cluster) -> None:
    live = [b for b in cluster.boxes if b.alive()]
    assert live
    wav = sig.write_wav(cluster.workdir / "short.wav", sig.silence(2))
    pai = f"<sip:+84{PAI_ACCOUNT.phone[1:]}@carrier.invalid;user=phone>"
    seen: dict[str, str] = {}
    for name, ip in (("trunk", HOST), ("stranger", UNTRUSTED_IP)):
        before = {n for b in live for n in b.summary_names()}
        result = run_sipp_call(
            cluster.workdir / f"sipp-{name}",
            cluster.proxy.target,
            from_user="+84900000009",
            pai=pai,
            wav=wav,
            timeout_s=40,
            local_ip=ip,
        )
        assert result.returncode == 0, result.output[-2000:] + result.error_log()

        def new_summary(before: set[str] = before) -> dict[str, Any] | None:
            for box in live:
                for n, data in box.summaries().items():
                    if n not in before:
                        return data
            return None

        summary = wait_for(new_summary, 30, f"the {name} call's summary")
        seen[name] = f"{summary['caller']} {summary['caller_source']}"
    assert seen["trunk"] == f"{mask_phone(PAI_ACCOUNT.phone)} p-asserted-identity"
    assert seen["stranger"] == f"{mask_phone('0900000009')} from-header"
