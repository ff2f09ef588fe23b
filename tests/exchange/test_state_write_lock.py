"""``begin_write``: a batch takes SQLite's write lock up front; a second writer waits for it (trying every
LOCK_POLL, not in SQLite's growing sleeps), gets it once it is free, and gives up after the busy timeout."""
from __future__ import annotations

import sqlite3
import threading
import time

import pytest

from exchange.state.bulk import begin_write
from exchange.state.db import open_engine


def _holding(engine):
    """A connection holding the write lock."""
    holder = engine.connect()
    holder.begin()
    begin_write(holder)
    assert holder.connection.dbapi_connection.in_transaction
    return holder


def _busy_timeout(conn) -> int:
    return conn.connection.dbapi_connection.execute("PRAGMA busy_timeout").fetchone()[0]


def test_a_second_writer_waits_for_the_lock_then_takes_it(tmp_path):
    engine = open_engine(f"sqlite:///{tmp_path / 'state.db'}")
    holder = _holding(engine)
    released = threading.Event()

    def release_later() -> None:
        time.sleep(0.3)
        released.set()
        holder.commit()  # the pipeline commits its links from a thread too

    waiter = engine.connect()
    waiter.begin()
    thread = threading.Thread(target=release_later)
    thread.start()
    begin_write(waiter)  # waits: the holder has the lock for another 0.3 s
    thread.join()
    assert released.is_set() and waiter.connection.dbapi_connection.in_transaction
    assert _busy_timeout(waiter) == 30000  # the connection's own timeout is back for its other statements
    waiter.rollback()
    holder.close()
    waiter.close()


def test_a_writer_gives_up_after_the_busy_timeout_with_sqlites_error(tmp_path):
    engine = open_engine(f"sqlite:///{tmp_path / 'state.db'}")
    holder = _holding(engine)
    waiter = engine.connect()
    waiter.connection.dbapi_connection.execute("PRAGMA busy_timeout=200")
    waiter.begin()
    started = time.monotonic()
    with pytest.raises(sqlite3.OperationalError, match="database is locked"):
        begin_write(waiter)
    assert time.monotonic() - started >= 0.2  # it did wait as long as the timeout
    assert _busy_timeout(waiter) == 200
    holder.commit()
    begin_write(waiter)  # free now: taken at once
    assert waiter.connection.dbapi_connection.in_transaction
    waiter.rollback()
    holder.close()
    waiter.close()
