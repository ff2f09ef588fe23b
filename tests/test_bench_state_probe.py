"""bench.state_probe, run as its own process beside a live SQLite database, reads who holds the write lock and
where the log stands.

Always in a process of its own: closing any descriptor of the ``-shm`` file drops every POSIX lock its process
holds on it, so a probe inside a process with a connection to the database would break that connection's locks.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from exchange.state.db import open_engine

pytestmark = pytest.mark.skipif(not Path("/proc/locks").exists(), reason="reads Linux's /proc/locks")

ROOT = Path(__file__).resolve().parents[1]


def _engine(tmp_path):
    engine = open_engine(f"sqlite:///{tmp_path}/state.db")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (n INTEGER)"))
    return engine


def _probe(database: Path, seconds: float) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "bench.state_probe", str(database), "--seconds", str(seconds)],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _report(probe: subprocess.Popen) -> str:
    out, err = probe.communicate(timeout=60)
    assert probe.returncode == 0, err
    return out


def test_a_held_write_transaction_shows_as_its_process_holding_the_write_lock(tmp_path):
    engine = _engine(tmp_path)
    with engine.connect() as conn:
        conn.exec_driver_sql("BEGIN IMMEDIATE")
        conn.exec_driver_sql("INSERT INTO t VALUES (1)")
        report = _report(_probe(tmp_path / "state.db", 0.3))
        conn.commit()
    assert f"write lock held 100.0% (pid {os.getpid()} 100.0%)" in report
    assert "checkpoint lock held 0.0% ()" in report
    idle = _report(_probe(tmp_path / "state.db", 0.2))
    assert "write lock held 0.0% ()" in idle
    assert int(re.search(r"log median (\d+) frames", idle).group(1)) > 0  # the committed insert is in the log


def test_the_log_starting_over_is_counted(tmp_path):
    engine = _engine(tmp_path)
    probe = _probe(tmp_path / "state.db", 1.0)
    while probe.poll() is None:  # for as long as it samples, however long its interpreter takes to start
        with engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(RESTART)")  # the next write starts the log over
        with engine.begin() as conn:
            conn.exec_driver_sql("INSERT INTO t VALUES (1)")
        time.sleep(0.1)
    restarts = int(re.search(r"started over (\d+) times", _report(probe)).group(1))
    assert restarts >= 2


def test_the_command_refuses_a_database_not_in_wal_mode(tmp_path):
    (tmp_path / "plain.db").write_bytes(b"")
    probe = _probe(tmp_path / "plain.db", 0.1)
    _, err = probe.communicate(timeout=60)
    assert probe.returncode == 2 and "-shm does not exist" in err
