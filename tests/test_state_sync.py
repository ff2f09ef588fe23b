"""Which commits wait for the disk, and that nothing leaves the machine before what it depends on is on disk.

The pipeline's own transactions (links, queued messages, a delivery's claims and receipts) commit without
waiting for the disk; a delivery syncs the log, outside the write lock, before it sends a chunk and when its
pass ends (``exchange.state.db.commit_unsynced``, ``sync_log``). Everything else still commits synced. These
tests watch every statement SQLite runs, every sync of the log and every send, in a real pipeline run.
"""
from __future__ import annotations

import os
import re
import threading
from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy import event

from exchange import pipeline
from exchange.runtime import open_exchange
from exchange.state.db import begin_unsynced, commit_unsynced, open_engine, sync_log
from tests.conftest import mint_demo_home
from tests.support.drops import local_outbox_exchange

RECIPIENT = "county-bh"
_WRITE = re.compile(r'^\s*(INSERT(?: OR \w+)? INTO|UPDATE|DELETE FROM)\s+"?(\w+)', re.IGNORECASE)
_LEVELS = {1: "NORMAL", 2: "FULL"}


def watch_syncs(monkeypatch, synced) -> None:
    """Call ``synced(path)`` after each fdatasync the process makes (the real one runs first)."""
    real = os.fdatasync

    def fdatasync(fd: int) -> None:
        real(fd)
        synced(Path(os.readlink(f"/proc/self/fd/{fd}")))

    monkeypatch.setattr(os, "fdatasync", fdatasync)


class Timeline:
    """In order: each commit that wrote (its synchronous setting, the tables it wrote and how), each sync of the
    database's log file, each message handed to the transport.

    SQLite's statement trace sees every write, including the person index's, which go straight to the driver;
    SQLAlchemy's commit event reads the connection's setting just before the commit.
    """

    def __init__(self, engine, monkeypatch) -> None:
        self.events: list[tuple] = []
        self._writes: dict[int, set[tuple[str, str]]] = {}
        self._lock = threading.Lock()
        self._log = Path(f"{engine.url.database}-wal").resolve()
        event.listen(engine, "checkout", self._watch)
        event.listen(engine, "commit", self._commit)
        event.listen(engine, "rollback", self._rollback)
        watch_syncs(monkeypatch, self._synced)

    def commits(self) -> list[tuple[str, frozenset]]:
        return [(e[1], e[2]) for e in self.events if e[0] == "commit"]

    def _synced(self, path: Path) -> None:
        if path == self._log:
            self.events.append(("sync",))

    def _watch(self, dbapi_connection, _record, _proxy) -> None:
        key = id(dbapi_connection)

        def trace(statement: str) -> None:
            if write := _WRITE.match(statement):
                with self._lock:
                    self._writes.setdefault(key, set()).add((write.group(1).split()[0].upper(), write.group(2)))

        dbapi_connection.set_trace_callback(trace)

    def _commit(self, conn) -> None:
        dbapi_connection = conn.connection.dbapi_connection
        level = dbapi_connection.execute("PRAGMA synchronous").fetchone()[0]
        with self._lock:
            writes = self._writes.pop(id(dbapi_connection), set())
            if writes:
                self.events.append(("commit", _LEVELS.get(level, str(level)), frozenset(writes)))

    def _rollback(self, conn) -> None:
        with self._lock:
            self._writes.pop(id(conn.connection.dbapi_connection), None)


class Sends:
    """The recipient's real transport, noting each message handed to it on the timeline."""

    def __init__(self, transport, timeline: Timeline) -> None:
        self._transport = transport
        self._timeline = timeline

    def deliver(self, message_id, payload, sha256):
        self._timeline.events.append(("send", message_id))
        return self._transport.deliver(message_id, payload, sha256)

    def __getattr__(self, name):  # flush, close
        return getattr(self._transport, name)


def _unsynced_at_each_send(events: list[tuple]) -> list[str]:
    """Messages handed to the transport while a commit made before was not yet on disk."""
    pending, early = False, []
    for kind, *rest in events:
        if kind == "commit":
            pending = rest[0] == "NORMAL"  # a synced commit puts every earlier one on disk with it
        elif kind == "sync":
            pending = False
        elif pending:
            early.append(rest[0])
    return early


def test_a_delivery_sends_nothing_before_every_commit_it_depends_on_is_on_disk(demo_config, tmp_path, monkeypatch):
    home = mint_demo_home(tmp_path)
    config = local_outbox_exchange(home, demo_config, RECIPIENT)
    ex = open_exchange(config, home, clock=lambda: datetime.now(timezone.utc))
    timeline = Timeline(ex.engine, monkeypatch)
    ex.transports[RECIPIENT] = Sends(ex.transport(RECIPIENT), timeline)
    for key in pipeline.plan(ex):
        pipeline.process_window(ex, key)
    sent = pipeline.deliver(ex, RECIPIENT)
    ex.close()
    assert sent.delivered > 200

    sends = [e for e in timeline.events if e[0] == "send"]
    assert len(sends) == sent.delivered
    # Each message leaves only once its link, its queueing and its claim are on disk: a power cut can never
    # undo the record of a message that is already at the recipient.
    assert _unsynced_at_each_send(timeline.events) == []
    # When the pass returns, its receipts and ledger entries are on disk: the last event is a sync after them.
    last_commit = max(i for i, e in enumerate(timeline.events) if e[0] == "commit")
    assert ("sync",) in timeline.events[last_commit:]


def test_only_the_pipelines_own_commits_skip_the_wait(demo_config, tmp_path, monkeypatch):
    home = mint_demo_home(tmp_path)
    config = local_outbox_exchange(home, demo_config, RECIPIENT)
    ex = open_exchange(config, home, clock=lambda: datetime.now(timezone.utc))
    timeline = Timeline(ex.engine, monkeypatch)
    summary = pipeline.run(ex)
    ex.close()
    assert summary.delivered > 200

    commits = timeline.commits()
    unsynced = [writes for sync, writes in commits if sync == "NORMAL"]
    # Linking, queueing, claiming and settling hold the write lock without an fsync under it.
    for write in (("INSERT", "crosswalk"), ("INSERT", "outbox"), ("INSERT", "ledger")):
        assert any(write in writes for writes in unsynced), write
    assert all(sync == "NORMAL" for sync, writes in commits if ("INSERT", "ledger") in writes)
    # Nothing else is left unsynced: quarantine entries, failures, consents, curation ... wait for the disk.
    pipeline_writes = {("INSERT", table) for table in ("crosswalk", "persons", "person_keys", "person_record_tokens",
                                                       "person_blocks", "person_reviews", "outbox", "outbox_payload",
                                                       "cursors", "ledger")}
    pipeline_writes |= {("UPDATE", "windows"), ("DELETE", "windows"), ("UPDATE", "cursors"), ("UPDATE", "outbox")}
    assert {write for writes in unsynced for write in writes} - pipeline_writes == set()
    quarantined = [sync for sync, writes in commits if ("INSERT", "quarantine") in writes]
    assert quarantined and set(quarantined) == {"FULL"}
    # When the run returns, everything it did is on disk.
    last_commit = max(i for i, e in enumerate(timeline.events) if e[0] == "commit")
    assert ("sync",) in timeline.events[last_commit:]


def test_a_connection_relaxed_for_one_transaction_comes_out_of_the_pool_synced_again(tmp_path):
    engine = open_engine(f"sqlite:///{tmp_path}/state.db")
    with engine.connect() as conn:
        commit_unsynced(conn)
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
        relaxed = conn.connection.dbapi_connection
    with engine.connect() as conn:
        assert conn.connection.dbapi_connection is relaxed  # the same connection, back from the pool
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
    engine.dispose()


def test_the_log_synced_is_the_databases_wherever_the_process_has_moved(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    engine = open_engine("sqlite:///var/state.db")  # relative, as a config may give it
    synced: list[Path] = []
    watch_syncs(monkeypatch, synced.append)
    with begin_unsynced(engine) as conn:
        conn.exec_driver_sql("INSERT INTO persons VALUES ('p1', '2026-01-01 00:00:00')")
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    sync_log(engine)
    assert synced == [tmp_path / "var" / "state.db-wal"]
    engine.dispose()  # the last connection checkpoints the log into the database and removes it
    assert not (tmp_path / "var" / "state.db-wal").exists()
    sync_log(engine)  # nothing left to sync: no error
    assert len(synced) == 1
