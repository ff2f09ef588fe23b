"""A run killed in the middle of a window, after some of its chunks were queued, resumes without losing or
doubling a message.

A window is processed in chunks (linked in one transaction, queued in one); only the last chunk commits with
the window's completion. The runner process is SIGKILLed when it starts linking the second chunk of the first
window: the first chunk's messages are committed, the window is not done. Run again, the exchange must end with
exactly the messages an uninterrupted run produces (message ids derive from the records, so the two sets can be
compared), each delivered once, with one ledger entry each.
"""
from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import yaml

from tests.conftest import REPO, mint_demo_home
from tests.support.drops import small_demo_drop

RUNNER = """
import os, signal, sys
from pathlib import Path
from exchange import pipeline
from exchange.runtime import open_exchange
from exchange.state.person_index import PersonIndex

if os.environ.get("KILL_AT_SECOND_LINK"):
    calls = []
    link_many = PersonIndex.link_many

    def killing(self, records, now, *, conn=None):
        calls.append(1)
        if len(calls) == 2:
            os.kill(os.getpid(), signal.SIGKILL)
        return link_many(self, records, now, conn=conn)

    PersonIndex.link_many = killing
ex = open_exchange(Path(sys.argv[1]), Path(sys.argv[2]))
summary = pipeline.run(ex)
print(f"windows={summary.windows} enqueued={summary.enqueued} already={summary.already_sent} "
      f"delivered={summary.delivered}", flush=True)
"""


def _exchange(home: Path, demo_config: Path) -> Path:
    """The demo exchange (first recipient, local outbox) over 150 bookings in one window of two chunks."""
    raw = yaml.safe_load(demo_config.read_text())
    raw["recipients"] = raw["recipients"][:1]
    raw["source"]["path"] = str(small_demo_drop(home / "drop", 150))
    raw["batch_size"] = 150
    path = home / "resume-exchange.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def _run(config: Path, home: Path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", RUNNER, str(config), str(home)], cwd=REPO,
                          env={**os.environ, **env}, capture_output=True, text=True, timeout=600)


def _state(home: Path) -> tuple[dict[str, str], list[str]]:
    db = sqlite3.connect(home / "var/state.db")
    try:
        states = dict(db.execute("SELECT message_id, state FROM outbox").fetchall())
        ledger = [r[0] for r in db.execute("SELECT message_id FROM ledger")]
    finally:
        db.close()
    return states, ledger


def test_killed_between_chunks_of_a_window_resumes_to_exactly_the_uninterrupted_result(demo_config, tmp_path):
    clean_home = mint_demo_home(tmp_path / "clean")
    clean = _run(_exchange(clean_home, demo_config), clean_home)
    assert clean.returncode == 0, clean.stderr[-3000:]
    expected, _ = _state(clean_home)
    assert len(expected) > 120

    home = mint_demo_home(tmp_path / "killed")
    config = _exchange(home, demo_config)
    killed = _run(config, home, KILL_AT_SECOND_LINK="1")
    assert killed.returncode == -9, killed.stderr[-3000:]
    partial, _ = _state(home)
    assert 0 < len(partial) < len(expected)  # the first chunk was queued, the window was not finished
    assert set(partial.values()) == {"queued"}

    again = _run(config, home)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "already=0" not in again.stdout  # the first chunk's records were recognised, not queued again
    states, ledger = _state(home)
    assert set(states) == set(expected)  # the same messages as the uninterrupted run: none lost, none extra
    assert set(states.values()) == {"delivered"}
    assert sorted(ledger) == sorted(states)  # one disclosure per message
    inbox = home / "var/outbox/county-bh"
    files = {p.name.removesuffix(".xml") for p in inbox.glob("*.xml")}
    listed = [line.split("  ", 1)[1].removesuffix(".xml") for line in (inbox / "MANIFEST.sha256").read_text()
              .splitlines()]
    assert files == set(states) and sorted(listed) == sorted(files)  # each at the receiver exactly once
