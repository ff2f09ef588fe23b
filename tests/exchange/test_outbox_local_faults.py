"""The local outbox settles a chunk only after flushing it; a process killed in between loses nothing and
sends nothing twice.

The pipeline runs as a separate process delivering to the local outbox (the embedded default). Its transport
is the real ``LocalOutbox`` with a ``flush`` that SIGKILLs the process on the second chunk: either before the
flush (the chunk's temporary files written, none in place) or right after it (every file of the chunk synced,
renamed into place and listed in the manifest) but before any receipt of the chunk is recorded. A second run
later (past the claim lease) must finish the job with every message exactly once at the receiver: one file
and one manifest line per message id, one ledger entry, all ``delivered``.
"""
from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, mint_demo_home
from tests.support.drops import local_outbox_exchange

RECIPIENT = "county-bh"

RUNNER = """
import os, signal, sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from adapters.delivery.local_outbox import LocalOutbox
from exchange import pipeline
from exchange.runtime import open_exchange

config, home, recipient = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
shift = timedelta(seconds=float(os.environ.get("CLOCK_SHIFT_SECONDS", "0")))  # "restarted later"
clock = lambda: datetime.now(timezone.utc) + shift


class KilledAtSecondFlush(LocalOutbox):
    flushes = 0

    def flush(self):
        KilledAtSecondFlush.flushes += 1
        if KilledAtSecondFlush.flushes == 2 and os.environ["KILL_AT_SECOND_FLUSH"] == "before":
            os.kill(os.getpid(), signal.SIGKILL)  # temporary files of the chunk written, none in place
        super().flush()
        if KilledAtSecondFlush.flushes == 2:
            os.kill(os.getpid(), signal.SIGKILL)  # files of the chunk in place and listed, none settled


transports = {}
if os.environ.get("KILL_AT_SECOND_FLUSH"):
    transports[recipient] = KilledAtSecondFlush(home / "var/outbox" / recipient, clock=clock)
ex = open_exchange(config, home, clock=clock, transports=transports)
summary = pipeline.run(ex)
print(f"delivered={summary.delivered} failed={summary.failed} dead={summary.dead}", flush=True)
"""


def _run(config: Path, home: Path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", RUNNER, str(config), str(home), RECIPIENT], cwd=REPO,
                          env={**os.environ, **env}, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("moment", ["before", "after"])
def test_killed_between_writing_files_and_settling_them_then_run_again(demo_config, tmp_path, moment):
    home = mint_demo_home(tmp_path)
    config = local_outbox_exchange(home, demo_config, RECIPIENT)
    inbox = home / "var/outbox" / RECIPIENT

    killed = _run(config, home, KILL_AT_SECOND_FLUSH=moment)
    assert killed.returncode == -9, killed.stderr[-3000:]
    db = sqlite3.connect(home / "var/state.db")
    states = dict(db.execute("SELECT message_id, state FROM outbox").fetchall())
    db.close()
    delivered_first = {mid for mid, state in states.items() if state == "delivered"}
    in_place = {p.name.removesuffix(".xml") for p in inbox.glob("*.xml")}
    written = {p.name.removeprefix(".").removesuffix(".xml.part") for p in inbox.glob(".*.part")}
    listed = {line.split("  ", 1)[1].removesuffix(".xml") for line in (inbox / "MANIFEST.sha256").read_text()
              .splitlines()}
    assert delivered_first and delivered_first <= in_place  # the first chunk was flushed and settled
    in_limbo = (written if moment == "before" else in_place) - delivered_first
    assert in_limbo, "the kill must land after files were written and before they were settled"
    assert all(states[mid] == "sending" for mid in in_limbo)
    if moment == "before":
        assert in_place == listed == delivered_first  # nothing of the killed chunk is visible
    else:
        assert in_limbo <= listed  # visible and listed, not yet recorded as delivered

    # Started again later than the claim lease, so the chunk caught between write and settle is taken over.
    again = _run(config, home, CLOCK_SHIFT_SECONDS="600")
    assert again.returncode == 0, again.stderr[-3000:]
    assert "failed=0 dead=0" in again.stdout

    db = sqlite3.connect(home / "var/state.db")
    ids = {r[0] for r in db.execute("SELECT message_id FROM outbox")}
    states = dict(db.execute("SELECT state, count(*) FROM outbox GROUP BY state").fetchall())
    ledger = [r[0] for r in db.execute("SELECT message_id FROM ledger")]
    db.close()
    files = {p.name.removesuffix(".xml") for p in inbox.glob("*.xml")}
    listed = [line.split("  ", 1)[1].removesuffix(".xml") for line in (inbox / "MANIFEST.sha256").read_text()
              .splitlines()]
    assert len(ids) > 200
    assert states == {"delivered": len(ids)}, states
    assert files == ids  # none lost, nothing extra
    assert sorted(listed) == sorted(ids)  # each listed exactly once, the limbo chunk included
    assert sorted(ledger) == sorted(ids)  # one disclosure per message
    assert not list(inbox.glob(".*.part"))
    check = subprocess.run(["sha256sum", "--quiet", "-c", "MANIFEST.sha256"], cwd=inbox, capture_output=True)
    assert check.returncode == 0
