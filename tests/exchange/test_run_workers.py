"""``niem-exchange run --workers 2``: the windows over two processes give what one process gives, once each."""
from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

from exchange.commands.common import demo_config
from tests.conftest import mint_demo_home

CLI = str(Path(sys.executable).parent / "niem-exchange")


def _run(home: Path, workers: int) -> subprocess.CompletedProcess:
    return subprocess.run([CLI, "run", str(demo_config()), "--home", str(home), "--workers", str(workers)],
                          capture_output=True, text=True, timeout=300)


def _delivered(home: Path) -> dict[str, set[str]]:
    return {d.name: {p.name for p in d.glob("*.xml")} for d in sorted((home / "var/outbox").iterdir())}


def _table(home: Path, query: str) -> list[tuple]:
    with sqlite3.connect(home / "var/state.db") as db:
        return db.execute(query).fetchall()


def test_two_workers_deliver_exactly_what_one_process_delivers(tmp_path):
    one = mint_demo_home(tmp_path / "one")
    two = tmp_path / "two"
    shutil.copytree(one / "certs", two / "certs")

    single, pooled = _run(one, 1), _run(two, 2)
    assert single.returncode == 0, single.stderr[-2000:]
    assert pooled.returncode == 0, pooled.stderr[-2000:]
    assert "messages delivered" in pooled.stdout

    delivered = _delivered(two)
    assert delivered == _delivered(one) and all(delivered.values())  # the same message ids, per recipient
    # every window done once, every message delivered once with one ledger entry
    assert _table(two, "SELECT count(*) FROM windows WHERE status != 'done'") == [(0,)]
    assert _table(two, "SELECT count(*) FROM ledger") == [(sum(len(v) for v in delivered.values()),)]
    assert _table(two, "SELECT count(*) FROM quarantine") == _table(one, "SELECT count(*) FROM quarantine")
    # the same people: as many shared ids, and the same records grouped under one id
    persons = "SELECT count(DISTINCT shared_id) FROM crosswalk"
    assert _table(two, persons) == _table(one, persons)

    again = _run(two, 2)  # a second pooled run finds nothing new
    assert again.returncode == 0, again.stderr[-2000:]
    assert _delivered(two) == delivered


def _children(pid: int) -> set[int]:
    """Processes whose parent is ``pid`` (from /proc)."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.add(int(stat.parent.name))
    return found


def _alive(pids: set[int]) -> set[int]:
    alive = set()
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            alive.add(pid)
    return alive


def test_workers_end_with_a_killed_run_and_the_next_run_finishes_once(tmp_path):
    import os
    import signal
    import time

    home = mint_demo_home(tmp_path / "home")
    run = subprocess.Popen([CLI, "run", str(demo_config()), "--home", str(home), "--workers", "2"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    workers: set[int] = set()
    while time.monotonic() < deadline and len(workers) < 2 and run.poll() is None:
        workers = {p for p in _children(run.pid) if "spawn_main" in Path(f"/proc/{p}/cmdline").read_text()} \
            if Path(f"/proc/{run.pid}").exists() else set()
        time.sleep(0.05)
    assert len(workers) >= 2, "the run finished before its workers were seen"
    os.kill(run.pid, signal.SIGKILL)
    run.wait()
    deadline = time.monotonic() + 20
    while _alive(workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(workers), "workers outlived the killed run"

    again = _run(home, 2)
    assert again.returncode == 0, again.stderr[-2000:]
    ids = {r[0] for r in _table(home, "SELECT message_id FROM outbox WHERE state = 'delivered'")}
    ledger = [r[0] for r in _table(home, "SELECT message_id FROM ledger")]
    assert ids and sorted(ledger) == sorted(ids)  # each delivered message once in the ledger
    assert set().union(*_delivered(home).values()) == {f"{i}.xml" for i in ids}


def test_with_workers_messages_leave_while_later_windows_are_still_built(tmp_path):
    """The calling process delivers what finished windows queued while the workers build the rest; every
    message still leaves once, with one ledger entry."""
    import yaml

    home = mint_demo_home(tmp_path / "home")
    raw = yaml.safe_load(demo_config().read_text())
    raw["batch_size"] = 20  # 16 windows: processing lasts long enough to overlap
    config = home / "small-windows.yaml"
    config.write_text(yaml.safe_dump(raw))
    result = subprocess.run([CLI, "run", str(config), "--home", str(home), "--workers", "2"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    (first_delivered, last_built), = _table(home, "SELECT MIN(delivered_at), MAX(created_at) FROM outbox")
    assert first_delivered < last_built  # the same ISO format in SQLite: ordered as text
    ids = [r[0] for r in _table(home, "SELECT message_id FROM outbox WHERE state = 'delivered'")]
    ledger = [r[0] for r in _table(home, "SELECT message_id FROM ledger")]
    assert ids and sorted(ledger) == sorted(ids)
    assert set().union(*_delivered(home).values()) == {f"{i}.xml" for i in ids}
