"""Source windows and the per-exchange cursor.

Planning stores each window a source proposes (idempotently, by key) in plan order. When a window is done,
the cursor advances through the longest run of done windows from the start of the plan, so a window that
failed in the middle is read again on the next run and nothing after it is skipped.

Every planned window is also kept in ``window_archive`` (key, spec, no record values), so a window the
cursor has long passed can be re-opened: a merge or split re-reads the windows whose messages carried a
moved record's old shared id, to re-issue them (:mod:`exchange.state.reissue`).
"""
from __future__ import annotations

import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, Engine, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from exchange.state.db import cursors, window_archive, windows
from transforms.model import Window


@dataclass(frozen=True, slots=True)
class WindowCounts:
    """What processing one window produced: ``records`` counts every row read, quarantined ones included."""

    records: int = 0
    quarantined: int = 0
    enqueued: int = 0
    already_sent: int = 0


class WindowStore:
    """Plans, looks up and completes windows for one exchange."""

    def __init__(self, engine: Engine, exchange: str) -> None:
        self._engine = engine
        self._exchange = exchange

    def cursor(self) -> str | None:
        """The source cursor after the last fully processed window, or None before the first run."""
        with self._engine.connect() as conn:
            return conn.execute(
                select(cursors.c.cursor).where(cursors.c.exchange == self._exchange)
            ).scalar_one_or_none()

    def add(self, planned: Sequence[Window]) -> None:
        """Remember newly planned windows after any already pending, keeping their order."""
        with self._engine.begin() as conn:
            seq = conn.execute(
                select(func.coalesce(func.max(windows.c.seq), 0)).where(windows.c.exchange == self._exchange)
            ).scalar_one()
            for w in planned:
                seq += 1
                try:
                    with conn.begin_nested():
                        conn.execute(
                            insert(windows).values(
                                exchange=self._exchange, window_key=w.key, seq=seq, spec=json.dumps(w.spec),
                                cursor_after=w.cursor_after, status="planned",
                                records=0, quarantined=0, enqueued=0,
                            )
                        )
                except IntegrityError:
                    pass  # planned before and still pending: keep its original place
                try:
                    with conn.begin_nested():
                        conn.execute(insert(window_archive).values(
                            exchange=self._exchange, window_key=w.key, spec=json.dumps(w.spec),
                            cursor_after=w.cursor_after))
                except IntegrityError:
                    pass  # archived when first planned

    def pending(self) -> list[str]:
        """Keys of windows not yet done, in plan order."""
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(windows.c.window_key)
                .where(windows.c.exchange == self._exchange, windows.c.status == "planned")
                .order_by(windows.c.seq)
            ).all()
        return [r.window_key for r in rows]

    def get(self, key: str) -> Window:
        """The window stored under ``key``; KeyError if this exchange never planned it."""
        with self._engine.connect() as conn:
            row = conn.execute(
                select(windows).where(windows.c.exchange == self._exchange, windows.c.window_key == key)
            ).one_or_none()
        if row is None:
            raise KeyError(key)
        return Window(row.window_key, row.cursor_after, json.loads(row.spec))

    def complete(self, key: str, counts: WindowCounts, now: datetime, *, conn: Connection | None = None) -> None:
        """Mark a window done, then advance the cursor over the done prefix and forget those windows.

        With ``conn`` this joins the caller's transaction (the pipeline commits it with the window's last
        messages); without, it commits on its own.
        """
        if conn is None:
            with self._engine.begin() as own:
                self.complete(key, counts, now, conn=own)
            return
        conn.execute(
            update(windows)
            .where(windows.c.exchange == self._exchange, windows.c.window_key == key)
            .values(status="done", records=counts.records, quarantined=counts.quarantined,
                    enqueued=counts.enqueued)
        )
        # The done prefix: the done windows before the first pending one. Both look-ups run on the index on
        # (exchange, status, seq), so completing a window reads the prefix only, not every window of the
        # plan (a million-booking backfill plans ten thousand).
        first_pending = conn.execute(
            select(func.min(windows.c.seq))
            .where(windows.c.exchange == self._exchange, windows.c.status == "planned")
        ).scalar_one()
        done = select(windows.c.window_key, windows.c.cursor_after).where(
            windows.c.exchange == self._exchange, windows.c.status == "done")
        if first_pending is not None:
            done = done.where(windows.c.seq < first_pending)
        prefix = conn.execute(done.order_by(windows.c.seq)).all()
        if not prefix:
            return
        new_cursor = prefix[-1].cursor_after
        updated = conn.execute(
            update(cursors).where(cursors.c.exchange == self._exchange)
            .values(cursor=new_cursor, updated_at=now)
        )
        if updated.rowcount == 0:
            conn.execute(insert(cursors).values(exchange=self._exchange, cursor=new_cursor, updated_at=now))
        conn.execute(
            delete(windows).where(
                windows.c.exchange == self._exchange,
                windows.c.window_key.in_([r.window_key for r in prefix]),
            )
        )

    def reopen(self, keys: Sequence[str]) -> list[str]:
        """Plan these already processed windows again (see :func:`reopen`); return the keys re-opened."""
        with self._engine.begin() as conn:
            return reopen(conn, self._exchange, keys)


REREAD = "#reissue-"
"""Joins a window's key and a random suffix: the key of a second reading of a window still in the plan."""


def reopen(conn: Connection, exchange: str, keys: Sequence[str]) -> list[str]:
    """Make archived windows of ``exchange`` pending again, inside the caller's transaction.

    A window done but still in the plan goes back to ``planned`` in its place. A window still ``planned``
    may be being read right now, and its completion would swallow the re-open, so a second reading of it
    is appended under ``<key>#reissue-<random>`` (archived too). A window the cursor has passed is appended
    under its own key. Appended windows carry the ``cursor_after`` of the plan's last window (or the current
    cursor), so completing them never moves the cursor back. Keys never archived (planned before the
    archive existed) are skipped. Returns the keys that are now pending for this re-open.
    """
    reopened = []
    for key in dict.fromkeys(keys):
        archived = conn.execute(select(window_archive.c.spec, window_archive.c.cursor_after).where(
            window_archive.c.exchange == exchange, window_archive.c.window_key == key)).first()
        if archived is None:
            continue
        status = conn.execute(select(windows.c.status).where(
            windows.c.exchange == exchange, windows.c.window_key == key)).scalar_one_or_none()
        if status == "done":
            conn.execute(update(windows).where(windows.c.exchange == exchange, windows.c.window_key == key)
                         .values(status="planned"))
            reopened.append(key)
            continue
        if status is not None:  # planned: perhaps in progress; read it once more after it
            key = f"{key.split(REREAD)[0]}{REREAD}{secrets.token_hex(4)}"
            conn.execute(insert(window_archive).values(exchange=exchange, window_key=key, spec=archived.spec,
                                                       cursor_after=archived.cursor_after))
        last = conn.execute(select(windows.c.seq, windows.c.cursor_after).where(windows.c.exchange == exchange)
                            .order_by(windows.c.seq.desc()).limit(1)).first()
        cursor = last.cursor_after if last else conn.execute(
            select(cursors.c.cursor).where(cursors.c.exchange == exchange)).scalar_one_or_none()
        conn.execute(insert(windows).values(
            exchange=exchange, window_key=key, seq=(last.seq if last else 0) + 1, spec=archived.spec,
            cursor_after=cursor if cursor is not None else archived.cursor_after, status="planned",
            records=0, quarantined=0, enqueued=0))
        reopened.append(key)
    return reopened
