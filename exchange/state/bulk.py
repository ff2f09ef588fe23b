"""Helpers that let the state stores write a batch in one transaction on SQLite and PostgreSQL alike.

A commit is the dominant cost of a small write (on SQLite in WAL mode each one syncs the log), so the
pipeline links, enqueues and settles many records per transaction. These are the few pieces that needs:
take SQLite's write lock up front, insert while skipping rows whose key is already there, and split long
``IN`` lists.
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from functools import lru_cache
from typing import TypeVar

from sqlalchemy import Connection, Table
from sqlalchemy.sql.dml import Insert

T = TypeVar("T")

IN_LIST = 500
"""Most values bound into one ``IN (...)`` list (SQLite allows 32,766 variables; this keeps plans small)."""


def begin_write(conn: Connection) -> None:
    """On SQLite, take the database's write lock now (``BEGIN IMMEDIATE``) unless a transaction is open.

    The sqlite3 driver opens a transaction only at the first write, so reads before it see one snapshot
    and the write may then find another process has written meanwhile (``SQLITE_BUSY_SNAPSHOT``, which the
    busy timeout cannot wait out). A batch that reads and then writes takes the lock first: its reads and
    writes see one consistent state, and a concurrent writer waits (busy timeout) instead of failing.
    PostgreSQL needs nothing: its transaction starts with the first statement.
    """
    if conn.dialect.name != "sqlite":
        return
    if not conn.connection.dbapi_connection.in_transaction:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


@lru_cache(maxsize=None)
def insert_new(table: Table, dialect: str) -> Insert:
    """An INSERT of ``table`` that skips rows whose primary or unique key is already present.

    ``INSERT ... ON CONFLICT DO NOTHING`` on SQLite (3.24+) and PostgreSQL: no SAVEPOINT per row, and a
    row another writer stored first stays as it is ("first writer wins"). The statement is built once per
    table and dialect, so SQLAlchemy compiles it once.
    """
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    elif dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    else:
        raise ValueError(f"no insert-or-skip statement for the {dialect} dialect")
    return insert(table).on_conflict_do_nothing()


def chunks(items: Sequence[T], size: int = IN_LIST) -> Iterator[Sequence[T]]:
    """``items`` in consecutive slices of at most ``size``."""
    for start in range(0, len(items), size):
        yield items[start:start + size]
