"""The outbox state machine on a real SQLite file: claims, backoff with jitter, dead-letter, retry, purge, CLI."""
from __future__ import annotations

import random
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from exchange.state.db import open_engine
from exchange.state.outbox import Outbox, QueuedMessage, RetryPolicy, State
from transforms.model import Receipt

T0 = datetime(2026, 11, 24, 12, 0, tzinfo=timezone.utc)


def _message(n: int, recipient: str = "state") -> QueuedMessage:
    return QueuedMessage(f"00000000-0000-0000-0000-{n:012d}", recipient, f"NXP-{n}", "BookingNotification",
                         b"<enc/>", "ab" * 32, ("booking",), 0)


@pytest.fixture(params=["sqlite", "postgresql"])
def box(request, tmp_path):
    """An outbox on SQLite (the default) and on PostgreSQL (the same code, by URL)."""
    from exchange.state.db import metadata

    url = (f"sqlite:///{tmp_path / 'state.db'}" if request.param == "sqlite"
           else request.getfixturevalue("postgres_state_url"))
    engine = open_engine(url)
    yield Outbox(engine, "ex", RetryPolicy(base=timedelta(seconds=10), cap=timedelta(seconds=100)),
                 rng=random.Random(7))
    if request.param == "postgresql":
        metadata.drop_all(engine)
    engine.dispose()


def _utc(moment: datetime) -> datetime:
    """SQLite hands back naive UTC, PostgreSQL aware datetimes."""
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


def test_backoff_doubles_up_to_the_cap_with_jitter_below_it():
    policy = RetryPolicy(base=timedelta(seconds=10), cap=timedelta(seconds=100), jitter=0.5)
    rng = random.Random(1)
    for failures, ceiling in ((1, 10), (2, 20), (3, 40), (4, 80), (5, 100), (9, 100)):
        delays = {policy.delay(failures, rng).total_seconds() for _ in range(50)}
        assert all(ceiling * 0.5 <= d <= ceiling for d in delays)
        assert len(delays) > 1  # jittered: messages that failed together do not retry together


def test_a_claimed_message_is_claimed_once(box):
    box.enqueue(_message(1), "jail:1", T0)
    assert box.due("state", T0) == [_message(1).message_id]
    first = box.claim(_message(1).message_id, T0)
    assert first is not None and first.payload == b"<enc/>"
    assert box.claim(_message(1).message_id, T0) is None
    assert box.due("state", T0) == []


def test_an_abandoned_send_is_taken_over_after_its_lease(box):
    box.enqueue(_message(1), "jail:1", T0)
    box.claim(_message(1).message_id, T0)  # then the process dies
    assert box.due("state", T0 + box.policy.lease - timedelta(seconds=1)) == []
    assert box.due("state", T0 + box.policy.lease) == [_message(1).message_id]


def test_failures_back_off_then_dead_letter(box):
    mid = _message(1).message_id
    box.enqueue(_message(1), "jail:1", T0)
    box.claim(mid, T0)
    assert box.mark_failed(mid, "send: connection reset (will retry)", dead=False, now=T0) == "failed"
    [entry] = box.entries()
    assert entry.state == "failed" and entry.attempts == 1 and entry.last_error.startswith("send: connection")
    assert T0 + timedelta(seconds=5) <= _utc(entry.next_attempt_at) <= T0 + timedelta(seconds=10)
    assert box.due("state", T0 + timedelta(seconds=4)) == []
    assert box.due("state", T0 + timedelta(seconds=10)) == [mid]
    box.claim(mid, T0 + timedelta(seconds=10))
    assert box.mark_failed(mid, "refused", dead=True, now=T0) == State.DEAD.value
    assert box.due("state", T0 + timedelta(days=30)) == []
    assert box.counts() == {"dead-letter": 1}


def test_retry_requeues_dead_letters_with_a_fresh_budget_and_never_touches_delivered(box):
    for n in (1, 2):
        box.enqueue(_message(n), f"jail:{n}", T0)
    box.claim(_message(1).message_id, T0)
    box.mark_failed(_message(1).message_id, "refused", dead=True, now=T0)
    box.claim(_message(2).message_id, T0)
    with box._engine.begin() as conn:
        box.mark_delivered(conn, Receipt(_message(2).message_id, "x", "ab" * 32, T0, "t"))
    assert box.retry(T0, states=["dead-letter", "delivered"]) == 1
    states = {e.message_id: (e.state, e.attempts) for e in box.entries()}
    assert states == {_message(1).message_id: ("queued", 0), _message(2).message_id: ("delivered", 1)}


def test_purge_drops_old_delivered_payloads_keeps_hashes_and_unfinished_messages(box):
    for n in (1, 2, 3):
        box.enqueue(_message(n), f"jail:{n}", T0)
    for n, at in ((1, T0), (2, T0 + timedelta(days=29))):
        box.claim(_message(n).message_id, T0)
        with box._engine.begin() as conn:
            box.mark_delivered(conn, Receipt(_message(n).message_id, "x", "ab" * 32, at, "t"))
    assert box.purge(T0 + timedelta(days=30), timedelta(days=30 - 1)) == 1  # only the older delivery
    entries = {e.message_id: e for e in box.entries()}
    assert not entries[_message(1).message_id].payload_kept
    assert entries[_message(1).message_id].sha256 == "ab" * 32
    assert entries[_message(2).message_id].payload_kept
    assert entries[_message(3).message_id].payload_kept and entries[_message(3).message_id].state == "queued"


_FIRST_OUTBOX = (
    "CREATE TABLE outbox (message_id VARCHAR(36) PRIMARY KEY, exchange VARCHAR(128) NOT NULL, recipient "
    "VARCHAR(128) NOT NULL, record_key VARCHAR(300) NOT NULL, shared_id VARCHAR(32) NOT NULL, message_type "
    "VARCHAR(64) NOT NULL, state VARCHAR(16) NOT NULL, attempts INTEGER NOT NULL, last_error VARCHAR(500), payload "
    "BLOB, sha256 VARCHAR(64) NOT NULL, categories TEXT NOT NULL, created_at DATETIME NOT NULL, delivered_at "
    "DATETIME, location VARCHAR(500))"
)
"""The outbox table as the first version created it: no backoff columns, payloads inside the rows."""


def test_an_outbox_table_from_before_backoff_gains_its_new_columns(tmp_path):
    import sqlite3

    db = tmp_path / "old.db"
    with sqlite3.connect(db) as conn:
        conn.execute(_FIRST_OUTBOX)
    box = Outbox(open_engine(f"sqlite:///{db}"), "ex")
    box.enqueue(_message(1), "jail:1", T0)
    assert box.due("state", T0) == [_message(1).message_id]


def test_payloads_kept_in_outbox_rows_by_an_earlier_version_move_to_their_own_table(tmp_path):
    """A queued message of an earlier version is still delivered with its payload; a purged one stays purged."""
    import sqlite3

    db = tmp_path / "old.db"
    with sqlite3.connect(db) as conn:
        conn.execute(_FIRST_OUTBOX)
        for n, state, payload in ((1, "queued", b"<enc>one</enc>"), (2, "delivered", None)):
            m = _message(n)
            conn.execute("INSERT INTO outbox VALUES (?, 'ex', 'state', ?, ?, ?, ?, 0, NULL, ?, ?, '[]', ?, NULL, "
                         "NULL)", (m.message_id, f"jail:{n}", m.shared_id, m.message_type, state, payload, m.sha256,
                                   "2026-11-24 12:00:00"))
    engine = open_engine(f"sqlite:///{db}")
    engine.dispose()
    box = Outbox(open_engine(f"sqlite:///{db}"), "ex")  # opened twice: the move happens once
    with sqlite3.connect(db) as conn:
        assert "payload" not in [c[1] for c in conn.execute("PRAGMA table_info(outbox)")]
    claimed = box.claim(_message(1).message_id, T0)
    assert claimed is not None and claimed.payload == b"<enc>one</enc>"
    kept = {e.message_id: e.payload_kept for e in box.entries()}
    assert kept == {_message(1).message_id: True, _message(2).message_id: False}


def test_outbox_cli_lists_retries_and_purges(demo_run, demo_config, tmp_path):
    """On the demo run's state: list shows delivered messages; retry and purge touch nothing delivered recently."""
    home, summary = demo_run
    cli = [str(Path(sys.executable).with_name("niem-exchange")), "outbox"]
    listed = subprocess.run([*cli, "list", "--home", str(home), "--state", "delivered", "--limit", "3"],
                            capture_output=True, text=True)
    assert listed.returncode == 0, listed.stderr
    assert f"delivered={summary.delivered}" in listed.stdout
    assert listed.stdout.count("delivered") >= 4  # three rows and the counts line
    retried = subprocess.run([*cli, "retry", "--home", str(home)], capture_output=True, text=True)
    assert retried.returncode == 0 and "requeued 0 message(s)" in retried.stdout
    bad = subprocess.run([*cli, "retry", "--home", str(home), "--state", "delivered"], capture_output=True, text=True)
    assert bad.returncode == 2 and "cannot be retried" in bad.stderr
    purged = subprocess.run([*cli, "purge", "--home", str(home), "--days", "1"], capture_output=True, text=True)
    assert purged.returncode == 0 and "purged 0 delivered payload(s)" in purged.stdout


def test_claim_many_takes_only_due_ids_once(box):
    for n in (1, 2, 3):
        box.enqueue(_message(n), f"jail:{n}", T0)
    box.claim(_message(2).message_id, T0)  # another pass holds this one
    ids = [_message(n).message_id for n in (1, 2, 3)]
    taken = box.claim_many(ids, T0)
    assert [m.message_id for m in taken] == [ids[0], ids[2]]
    assert box.claim_many(ids, T0) == []


def test_enqueue_many_stores_each_id_once_and_counts_only_new_ones(box):
    from exchange.state.outbox import NewMessage

    box.enqueue(_message(1), "jail:1", T0)
    batch = [NewMessage(_message(n), f"jail:{n}", T0 + timedelta(seconds=n), "w1") for n in (1, 2, 3, 2)]
    assert box.enqueue_many(batch) == 2  # 1 was already there, the second 2 is the same message again
    entries = {e.message_id: e for e in box.entries()}
    assert set(entries) == {_message(n).message_id for n in (1, 2, 3)}
    assert all(e.state == "queued" and e.attempts == 0 for e in entries.values())
    assert box.due("state", T0 + timedelta(seconds=3)) == [_message(n).message_id for n in (1, 2, 3)]
    assert box.enqueue_many(batch) == 0


def test_enqueue_many_in_the_callers_transaction_is_undone_with_it(box):
    from exchange.state.outbox import NewMessage

    batch = [NewMessage(_message(n), f"jail:{n}", T0) for n in range(1, 4)]
    with pytest.raises(RuntimeError):
        with box._engine.begin() as conn:
            assert box.enqueue_many(batch, conn=conn) == 3
            raise RuntimeError("completing the window failed")
    assert box.known([m.message.message_id for m in batch]) == set()  # nothing half-stored
    ids = [_message(n).message_id for n in range(1, 1201)]
    box.enqueue_many([NewMessage(_message(n), f"jail:{n}", T0) for n in range(1, 1201)])
    assert box.known(ids + ["00000000-0000-0000-0000-999999999999"]) == set(ids)  # more ids than one IN list
