"""The whole pipeline delivering over SFTP to a real sshd, run as a separate process, through faults:
sshd stopped in the middle of a batch, and our own process SIGKILLed in the middle of a batch. Each test ends
with every message exactly once at the receiver (counted there by message id), none lost, one ledger entry
per message."""
from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO, mint_demo_home
from tests.support.drops import small_demo_drop
from tests.support.sshd import SshServer

RUNNER = """
import os, sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from exchange import pipeline
from exchange.runtime import open_exchange

shift = timedelta(seconds=float(os.environ.get("CLOCK_SHIFT_SECONDS", "0")))  # "restarted later"
ex = open_exchange(Path(sys.argv[1]), Path(sys.argv[2]), clock=lambda: datetime.now(timezone.utc) + shift)
summary = pipeline.run(ex)
print(f"delivered={summary.delivered} failed={summary.failed} dead={summary.dead}", flush=True)
"""


def _exchange(home: Path, server: SshServer, demo_config: Path) -> Path:
    """The demo exchange with its first recipient delivering over SFTP to ``server`` (the others dropped)."""
    raw = yaml.safe_load(demo_config.read_text())
    recipient = raw["recipients"][0]
    recipient["transport"] = {"kind": "sftp", "host": server.host, "port": server.port, "username": server.user,
                              "private_key": str(server.client_key), "known_hosts": str(server.known_hosts),
                              "remote_dir": str(server.root / "inbox"), "timeout": 10}
    raw["recipients"] = [recipient]
    raw["source"]["path"] = str(small_demo_drop(home / "drop", 120))  # enough to cut a batch in the middle
    path = home / "sftp-exchange.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def _start(config: Path, home: Path, shift: float = 0) -> subprocess.Popen:
    env = {**os.environ, "CLOCK_SHIFT_SECONDS": str(shift)}
    return subprocess.Popen([sys.executable, "-c", RUNNER, str(config), str(home)], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for_files(server: SshServer, count: int, process: subprocess.Popen) -> None:
    inbox = server.root / "inbox"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if inbox.exists() and sum(1 for _ in inbox.glob("*.xml")) >= count:
            return
        if process.poll() is not None:
            pytest.fail(f"runner ended before {count} deliveries: {process.stderr.read()[-2000:]}")
        time.sleep(0.003)
    pytest.fail("no deliveries within 120 s")


def _finish(process: subprocess.Popen) -> str:
    out, err = process.communicate(timeout=300)
    assert process.returncode == 0, err[-3000:]
    return out


def _assert_exactly_once(home: Path, server: SshServer) -> int:
    inbox = server.root / "inbox"
    files = {p.name.removesuffix(".xml") for p in inbox.glob("*.xml")}
    listed = [line.split("  ", 1)[1].removesuffix(".xml") for line in (inbox / "MANIFEST.sha256").read_text()
              .splitlines()]
    db = sqlite3.connect(home / "var/state.db")
    states = dict(db.execute("SELECT state, count(*) FROM outbox GROUP BY state").fetchall())
    ids = {r[0] for r in db.execute("SELECT message_id FROM outbox")}
    ledger = [r[0] for r in db.execute("SELECT message_id FROM ledger")]
    assert states == {"delivered": len(ids)}, states
    assert files == ids  # none lost, nothing extra
    assert sorted(listed) == sorted(ids)  # each listed exactly once
    assert sorted(ledger) == sorted(ids)  # one disclosure per message
    assert not list(inbox.glob(".*.part"))
    check = subprocess.run(["sha256sum", "--quiet", "-c", "MANIFEST.sha256"], cwd=inbox, capture_output=True)
    assert check.returncode == 0
    return len(ids)


def test_sshd_stopped_mid_batch_then_restarted(sshd_factory, demo_config, tmp_path):
    server = sshd_factory()
    home = mint_demo_home(tmp_path)
    config = _exchange(home, server, demo_config)
    runner = _start(config, home)
    _wait_for_files(server, 25, runner)
    runner.send_signal(signal.SIGSTOP)  # freeze the sender so the cut lands mid-batch however loaded the box is
    server.stop()
    runner.send_signal(signal.SIGCONT)
    out = _finish(runner)
    failed = int(out.split("failed=")[1].split()[0])
    assert failed > 0, out  # the rest were kept for a later pass, not dropped, not dead-lettered
    server.start()
    again = _finish(_start(config, home, shift=2 * 3600))  # later: past every backoff
    assert f"failed=0 dead=0" in again
    assert _assert_exactly_once(home, server) > 100


def test_our_process_killed_mid_batch_then_started_again(sshd_factory, demo_config, tmp_path):
    server = sshd_factory()
    home = mint_demo_home(tmp_path)
    config = _exchange(home, server, demo_config)
    runner = _start(config, home)
    _wait_for_files(server, 40, runner)
    runner.send_signal(signal.SIGKILL)
    runner.wait()
    delivered_before = sum(1 for _ in (server.root / "inbox").glob("*.xml"))
    # Started again later than the claim lease, so a message caught mid-send is taken over.
    out = _finish(_start(config, home, shift=600))
    assert "failed=0 dead=0" in out
    total = _assert_exactly_once(home, server)
    assert delivered_before < total


def test_a_changed_host_key_stops_the_pass_with_nothing_sent_and_nothing_dead_lettered(sshd_factory, demo_config,
                                                                                          tmp_path):
    from exchange import pipeline
    from exchange.runtime import open_exchange
    from transforms.model import SecurityError

    server = sshd_factory()
    home = mint_demo_home(tmp_path)
    config = _exchange(home, server, demo_config)
    raw = yaml.safe_load(config.read_text())
    raw["source"]["path"] = str(small_demo_drop(home / "drop20", 20))
    config.write_text(yaml.safe_dump(raw))
    server.rotate_host_key()  # the server now presents a key other than the pinned one
    ex = open_exchange(config, home)
    try:
        with pytest.raises(SecurityError, match="host key CHANGED") as info:
            pipeline.run(ex)
        assert "nothing sent" in str(info.value)
        counts = ex.outbox.counts()
        assert set(counts) == {"queued"} and counts["queued"] > 10  # all waiting, none failed or dead
        assert all(e.attempts == 0 for e in ex.outbox.entries())
    finally:
        ex.close()
    assert not (server.root / "inbox").exists()
    server.known_hosts.write_text(server.known_hosts_line() + "\n")  # the recipient confirmed the new key
    ex = open_exchange(config, home)
    try:
        assert pipeline.run(ex).delivered == counts["queued"]
    finally:
        ex.close()
    assert _assert_exactly_once(home, server) == counts["queued"]


def test_with_workers_a_recipient_that_is_down_gets_one_attempt_per_message_and_run(sshd_factory, demo_config,
                                                                                   tmp_path):
    """`run --workers 2` delivers while windows are still built; a recipient that is down must not be tried
    more often for it: each message gets one attempt, then waits for its backoff (a later run)."""
    server = sshd_factory()
    server.stop()  # the recipient's server is down for the whole run: connections are refused
    home = mint_demo_home(tmp_path / "home")
    config = _exchange(home, server, demo_config)
    raw = yaml.safe_load(config.read_text())
    raw["batch_size"] = 20  # six windows: early delivery meets the refusals while the rest is built
    config.write_text(yaml.safe_dump(raw))
    cli = Path(sys.executable).with_name("niem-exchange")
    result = subprocess.run([str(cli), "run", str(config), "--home", str(home), "--workers", "2"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    db = sqlite3.connect(home / "var/state.db")
    rows = db.execute("SELECT state, attempts, count(*) FROM outbox GROUP BY state, attempts").fetchall()
    ledger = db.execute("SELECT count(*) FROM ledger").fetchone()[0]
    db.close()
    assert rows and all(state == "failed" and attempts == 1 for state, attempts, _ in rows), rows
    assert ledger == 0
