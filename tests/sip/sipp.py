"""sipp (Debian ``sip-tester`` 3.6.1) as a UAC that sends P-Asserted-Identity.

baresip 1.0.0's CLI cannot add custom headers, so the trusted-peer tests use sipp with
``uac_pai.xml``: INVITE with PAI, a mu-law WAV as RTP, accepting the box's re-INVITE,
answering its BYE. Bound to 127.0.0.1; ports picked free per run.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from .netports import HOST, free_port, free_port_range

SIPP = "/usr/bin/sipp"
SCENARIO = Path(__file__).with_name("uac_pai.xml")


def sipp_available() -> bool:
    return Path(SIPP).is_file() or shutil.which("sipp") is not None


@dataclass(frozen=True)
class SippResult:
    returncode: int
    output: str
    workdir: Path

    def error_log(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in self.workdir.glob("*_errors.log"))


def write_scenario(workdir: Path, *, from_user: str, pai: str | None, wav: Path) -> Path:
    """Fill the template: ``pai`` is the P-Asserted-Identity value, or None for none."""
    text = SCENARIO.read_text()
    pai_line = f"      P-Asserted-Identity: {pai}" if pai else ""
    text = text.replace("@PAI@\n", pai_line + "\n" if pai else "")
    text = text.replace("@FROM_USER@", from_user).replace("@WAV@", str(Path(wav).resolve()))
    path = workdir / "uac_pai.xml"
    path.write_text(text)
    return path


def run_sipp_call(
    workdir: Path,
    target: str,
    *,
    from_user: str,
    pai: str | None,
    wav: Path,
    service: str = "assistant",
    timeout_s: int = 20,
    local_ip: str = HOST,
) -> SippResult:
    """Make one call to ``target`` ("127.0.0.1:PORT") from ``local_ip`` (any 127.x address)
    and wait for it to end."""
    workdir.mkdir(parents=True, exist_ok=True)
    scenario = write_scenario(workdir, from_user=from_user, pai=pai, wav=wav)
    media_lo, _ = free_port_range(4)
    cmd = [
        SIPP,
        target,
        "-sf",
        str(scenario),
        "-s",
        service,
        "-m",
        "1",
        "-i",
        local_ip,
        "-p",
        str(free_port()),
        "-mi",
        local_ip,
        "-mp",
        str(media_lo),
        "-nostdin",
        "-timeout",
        f"{timeout_s}s",
        "-timeout_error",
        "-trace_err",
        "-trace_msg",
    ]
    proc = subprocess.run(
        cmd,
        cwd=workdir,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=timeout_s + 10,
        check=False,
    )
    output = (proc.stdout + proc.stderr).decode("utf-8", "replace")
    return SippResult(proc.returncode, output, workdir)
