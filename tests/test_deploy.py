"""The files in deploy/ are valid for the tools that read them (Kamailio, systemd)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
KAMAILIO = shutil.which("kamailio") or "/usr/sbin/kamailio"


@pytest.mark.skipif(
    not Path(KAMAILIO).is_file(), reason="kamailio missing: apt-get install kamailio"
)
def test_kamailio_config_parses_with_its_defaults_and_overrides(tmp_path: Path) -> None:
    config = DEPLOY / "kamailio" / "kamailio.cfg"
    for extra in ([], ["-A", "LISTEN=udp:127.0.0.1:15060", "-A", 'TRUNK_IP="127.0.0.9"']):
        proc = subprocess.run(
            [KAMAILIO, "-f", str(config), "-c", *extra],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            cwd=tmp_path,
        )
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]


def test_dispatcher_list_names_probed_boxes() -> None:
    lines = [
        line.split()
        for line in (DEPLOY / "kamailio" / "dispatcher.list").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines and all(p[0] == "1" and p[1].startswith("sip:") and p[2] == "8" for p in lines)


def test_env_example_sets_what_the_unit_uses() -> None:
    unit = (DEPLOY / "systemd" / "vssid-box.service").read_text()
    env = (DEPLOY / "box.env.example").read_text()
    names = {line.split("=", 1)[0] for line in env.splitlines() if "=" in line and line[0] != "#"}
    used = {word.strip("${}") for word in unit.split() if word.startswith(("${VSSID", "$VSSID"))}
    assert used and used <= names, used - names


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze missing")
def test_systemd_unit_verifies(tmp_path: Path) -> None:
    """``systemd-analyze verify`` on the unit, its /opt/vssid paths pointed at this checkout."""
    venv_python = tmp_path / "opt" / ".venv" / "bin" / "python"
    venv_python.parent.mkdir(parents=True)
    venv_python.symlink_to(sys.executable)
    unit = (DEPLOY / "systemd" / "vssid-box.service").read_text()
    unit = unit.replace("/opt/vssid", str(tmp_path / "opt"))
    path = tmp_path / "vssid-box.service"
    path.write_text(unit)
    proc = subprocess.run(
        ["systemd-analyze", "verify", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    problems = [
        line
        for line in (proc.stdout + proc.stderr).splitlines()
        if "vssid-box.service" in line and "Failed to" not in line  # no systemd running here
    ]
    assert problems == [], problems


def test_unit_allows_the_media_threads_priority() -> None:
    """``LimitRTPRIO`` lets the unprivileged box put its transmit threads in SCHED_FIFO."""
    from assistant.telephony.sip.rtprio import DEFAULT_PRIORITY

    unit = (DEPLOY / "systemd" / "vssid-box.service").read_text()
    limits = [
        line.split("=", 1)[1] for line in unit.splitlines() if line.startswith("LimitRTPRIO=")
    ]
    assert limits == [str(DEFAULT_PRIORITY)]
