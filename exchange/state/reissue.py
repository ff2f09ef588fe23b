"""Re-issuing what was sent under a shared id that a merge or split has since changed.

We keep no plaintext records, so a corrected message can only be rebuilt from the source. Every outbox row
names the source window it was built from (``outbox.window_key``) and every planned window is archived
(``window_archive``). When :mod:`exchange.state.person_curation` moves records to another shared id, it calls
:func:`schedule` inside the same transaction as the move, which

1. supersedes each message of a moved record still waiting under the old id (``queued``, ``failed`` or
   ``dead-letter``): it is never sent, its encrypted payload is dropped, its row and hash stay;
2. re-opens, in each exchange concerned, the windows those messages came from (delivered ones included).

The next run reads those windows again. A moved record now has a move count, and its message ids cover its
new shared id and that count (:func:`exchange.state.outbox.message_id`), so its messages are new ids that
go through the whole pipeline (build, validate, redact, sign, encrypt, outbox, deliver, ledger) once each;
every other record of the window keeps its ids, which the outbox already knows, so nothing else is sent
again. Because the move and the re-open commit together, a crash cannot lose a re-issue.

A move can also land while a run is building a record's messages. :func:`supersede_moved`, called by the
pipeline in the transaction that enqueues them, re-reads the records' shared ids under a row lock: a move
committed meanwhile is caught there (the messages are superseded and the window gets a second reading), a
later one waits for that commit and then finds the rows in :func:`schedule`. A window still in the plan is
re-opened as a second reading (:func:`exchange.state.windows.reopen`), so a task reading it cannot swallow
the re-open when it completes.

A message in flight (``sending``) is left to finish: the recipient then has the old message and the
re-issue. Messages from before windows were recorded (no ``window_key``) cannot be rebuilt automatically;
:func:`schedule` reports them so an operator can act.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, select, update

from exchange.state.bulk import chunks
from exchange.state.db import crosswalk, outbox, window_archive, windows
from exchange.state.outbox import NewMessage, State, drop_payloads
from exchange.state.windows import REREAD, reopen

if TYPE_CHECKING:
    from exchange.state.person_curation import Moved

WAITING = (State.QUEUED.value, State.FAILED.value, State.DEAD.value)
"""States of a message not yet delivered and not in flight: superseded when its record moves."""


@dataclass(frozen=True, slots=True)
class Affected:
    """One message sent (or waiting) under a moved record's old id, and what re-issuing does with it."""

    message_id: str
    exchange: str
    recipient: str
    record: str  # "system:record_id"
    old_shared_id: str
    state: str  # after scheduling: delivered, sending or superseded (or waiting, when it cannot be rebuilt)
    window_key: str | None  # None: its window cannot be read again (built before windows were kept)
    reopened: bool  # its window is pending, so the next run re-issues it


def schedule(conn: Connection, moved: Sequence[Moved], now: datetime) -> list[Affected]:
    """Supersede waiting messages of ``moved`` records and re-open their windows (caller's transaction)."""
    rows = _rows(conn, moved)
    readable = {(a.exchange, a.window_key) for a in _affected(conn, moved) if a.window_key}
    stale = [r.message_id for r in rows if (r.exchange, r.window_key) in readable and r.state in WAITING]
    if stale:
        for part in chunks(stale):
            _supersede(conn, part, now, "superseded: a merge or split changed the record's shared id")
    by_exchange: dict[str, list[str]] = {}
    for r in rows:
        if r.window_key:
            by_exchange.setdefault(r.exchange, []).append(r.window_key)
    for exchange, keys in by_exchange.items():
        reopen(conn, exchange, keys)
    return _affected(conn, moved)


def affected(engine: Engine, moved: Sequence[Moved]) -> list[Affected]:
    """The messages of ``moved`` records under their old ids, as they stand now (read only)."""
    with engine.connect() as conn:
        return _affected(conn, moved)


def _rows(conn: Connection, moved: Sequence[Moved]) -> list:
    rows = []
    for m in moved:
        rows += conn.execute(
            select(outbox.c.message_id, outbox.c.exchange, outbox.c.recipient, outbox.c.record_key,
                   outbox.c.shared_id, outbox.c.state, outbox.c.window_key)
            .where(outbox.c.record_key == f"{m.system}:{m.record_id}", outbox.c.shared_id == m.old)
            .order_by(outbox.c.created_at, outbox.c.message_id)).all()
    return rows


def _affected(conn: Connection, moved: Sequence[Moved]) -> list[Affected]:
    rows = _rows(conn, moved)
    keys = {r.window_key for r in rows if r.window_key}
    pending = {(r.exchange, r.window_key.split(REREAD)[0]) for r in conn.execute(  # a second reading counts
        select(windows.c.exchange, windows.c.window_key).where(
            windows.c.exchange.in_({r.exchange for r in rows}), windows.c.status == "planned"))}
    archived = {(r.exchange, r.window_key) for r in conn.execute(
        select(window_archive.c.exchange, window_archive.c.window_key).where(window_archive.c.window_key.in_(keys)))}
    return [Affected(r.message_id, r.exchange, r.recipient, r.record_key, r.shared_id, r.state,
                     r.window_key if (r.exchange, r.window_key) in archived else None,
                     (r.exchange, (r.window_key or "").split(REREAD)[0]) in pending) for r in rows]


def identity_of(engine: Engine, system: str, record_id: str) -> tuple[str, str | None]:
    """What a record's message ids cover of its identity: ``("", id)`` never moved, else ``("<id>#<n>", id)``.

    The second item is the record's current shared id (None for a record the index has not seen). A record
    never moved by a merge or split keeps the message ids it always had (``""``, see
    :func:`exchange.state.outbox.message_id`).
    """
    with engine.connect() as conn:
        row = conn.execute(select(crosswalk.c.shared_id, crosswalk.c.moves).where(
            crosswalk.c.system == system, crosswalk.c.record_id == record_id)).first()
    if row is None:
        return "", None
    return (f"{row.shared_id}#{row.moves}" if row.moves else ""), row.shared_id


def identities_of(engine: Engine, system: str, record_ids: Sequence[str]) -> dict[str, tuple[str, str | None]]:
    """:func:`identity_of` for many records of one system, one query per 500 ids (the pipeline, per chunk)."""
    found: dict[str, tuple[str, str | None]] = {record_id: ("", None) for record_id in record_ids}
    with engine.connect() as conn:
        for part in chunks(list(found)):
            for row in conn.execute(select(crosswalk.c.record_id, crosswalk.c.shared_id, crosswalk.c.moves).where(
                    crosswalk.c.system == system, crosswalk.c.record_id.in_(list(part)))):
                found[row.record_id] = (f"{row.shared_id}#{row.moves}" if row.moves else ""), row.shared_id
    return found


def supersede_moved(conn: Connection, exchange: str, window_key: str, system: str, entries: Sequence[NewMessage],
                    now: datetime) -> int:
    """Catch a merge or split that landed between linking records and queueing their messages.

    Call in the transaction that enqueued ``entries`` (from ``window_key`` of ``system``), after the insert.
    Each record's crosswalk row is read with a row lock (``FOR UPDATE`` on PostgreSQL; SQLite's write lock is
    already held), so a concurrent move either committed before this read, and is caught here, or waits for
    this commit, and then its :func:`schedule` sees these rows. Messages built under an id the record no
    longer has are superseded and the window gets a second reading, which re-issues them under the new id.
    Returns how many were superseded.
    """
    built = {(e.record_key[len(system) + 1:], e.message.shared_id, e.message.message_id) for e in entries}
    if not built:
        return 0
    record_ids = sorted({record_id for record_id, _, _ in built})  # one lock order against deadlocks
    current: dict[str, str] = {}
    for part in chunks(record_ids):
        current.update(conn.execute(select(crosswalk.c.record_id, crosswalk.c.shared_id).where(
            crosswalk.c.system == system, crosswalk.c.record_id.in_(list(part))).with_for_update()).all())
    stale = [message_id for record_id, shared, message_id in built if current.get(record_id, shared) != shared]
    if not stale:
        return 0
    superseded = sum(_supersede(conn, part, now, "superseded: a merge or split changed the record's shared id "
                                                  "while it was built") for part in chunks(stale))
    reopen(conn, exchange, [window_key])
    return superseded


def _supersede(conn: Connection, message_ids: Sequence[str], now: datetime, reason: str) -> int:
    """Mark those of ``message_ids`` still waiting as superseded and drop their payloads; how many."""
    # One conditional UPDATE: a message a delivery pass claims meanwhile is either taken here or left sending.
    # The state is tested as ``state || ''`` (no index covers it) so the rows are reached by primary key, as in
    # Outbox._claimable: SQLite without statistics walked every waiting row through the state index instead
    # (48 ms -> 3.6 ms per 100 ids on a 20,000-message outbox).
    waiting = conn.execute(
        update(outbox).where(outbox.c.message_id.in_(list(message_ids)), outbox.c.state.concat("").in_(WAITING))
        .values(state=State.SUPERSEDED.value, next_attempt_at=None, last_error=reason)
        .returning(outbox.c.message_id)).scalars().all()
    drop_payloads(conn, waiting, now)
    return len(waiting)
