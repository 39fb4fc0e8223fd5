"""Call summaries are written whole (assistant.telephony.sip.box.write_summary).

A reader listing the log folder while a call ends (an operator's log shipper, the cluster tests
that count summaries) must see no file or the whole one.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

from assistant.telephony.sip.box import write_summary


def test_a_summary_is_written_whole_and_leaves_nothing_else(tmp_path: Path) -> None:
    folder = tmp_path / "calls"
    summary = {"call_id": "c1", "outcome": "password_issued", "latency": {"x": [1, 2]}}
    write_summary(folder / "c1.json", summary)
    assert [p.name for p in folder.iterdir()] == ["c1.json"]
    assert json.loads((folder / "c1.json").read_text(encoding="utf-8")) == summary


def test_a_reader_never_sees_half_a_summary(tmp_path: Path) -> None:
    big = {"call_id": "c2", "outcome": None, "sip": {"note": "x" * 2_000_000}}
    done = threading.Event()
    seen: list[str] = []

    def read() -> None:
        while not done.is_set():
            for path in tmp_path.glob("*.json"):
                try:
                    json.loads(path.read_text(encoding="utf-8"))
                except json.JSONDecodeError:
                    seen.append(path.name)

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for i in range(20):
            write_summary(tmp_path / f"c{i}.json", big)
    finally:
        done.set()
        reader.join()
    assert seen == []
    assert len(list(tmp_path.glob("*.json"))) == 20
