"""The exchange's own state: one SQLAlchemy schema, SQLite by default, PostgreSQL by URL.

Tables are SQLAlchemy Core (no ORM): the pipeline moves plain values, and Core keeps the per-row cost low.
Everything PHI-adjacent is minimised here: the person index keeps keyed hashes, the outbox keeps only
payloads already encrypted to their recipient, errors keep a field path and a reason.
"""
from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import (
    Column,
    Connection,
    DateTime,
    Engine,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    create_engine,
    event,
    inspect,
    text,
)

metadata = MetaData()

persons = Table(
    "persons",
    metadata,
    Column("shared_id", String(32), primary_key=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

person_keys = Table(
    "person_keys",
    metadata,
    Column("key_hash", String(64), primary_key=True, doc="HMAC-SHA256 of a match key; never the key itself"),
    Column("kind", String(32), nullable=False),
    Column("strength", Integer, nullable=False),
    Column("shared_id", String(32), nullable=False, index=True),
)

crosswalk = Table(
    "crosswalk",
    metadata,
    Column("system", String(64), primary_key=True),
    Column("record_id", String(128), primary_key=True),
    Column("shared_id", String(32), nullable=False, index=True),
    Column("linked_at", DateTime(timezone=True), nullable=False),
    Column("rule", String(32), nullable=False, doc="which match key linked it, or 'new'"),
    Column("moves", Integer, doc="how many merges/splits moved the record (NULL: none); part of its message ids"),
    # In the crosswalk row, not a row of its own: the candidate search reads a candidate's shared id and tokens
    # with one look-up instead of two (each an index search plus a table search on SQLite).
    Column("tokens", Text, doc="the record's comparison tokens as keyed hashes, packed: name,hash,name,hash,... "
                               "('' none); NULL for records linked before this column (person_record_tokens)"),
)

windows = Table(
    "windows",
    metadata,
    Column("exchange", String(128), primary_key=True),
    Column("window_key", String(200), primary_key=True),
    Column("seq", Integer, nullable=False),
    Column("spec", Text, nullable=False),
    Column("cursor_after", Text, nullable=False),
    Column("status", String(16), nullable=False, doc="planned | done"),
    Column("records", Integer, nullable=False, default=0),
    Column("quarantined", Integer, nullable=False, default=0),
    Column("enqueued", Integer, nullable=False, default=0),
    Index("ix_windows_exchange_status_seq", "exchange", "status", "seq"),
)

cursors = Table(
    "cursors",
    metadata,
    Column("exchange", String(128), primary_key=True),
    Column("cursor", Text, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

quarantine = Table(
    "quarantine",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("exchange", String(128), nullable=False),
    Column("record", String(300), nullable=False),
    Column("field", String(200), nullable=False),
    Column("reason", String(500), nullable=False),
    Column("kind", String(64), nullable=False),
    Column("first_seen", DateTime(timezone=True), nullable=False),
    Column("last_seen", DateTime(timezone=True), nullable=False),
    Column("times_seen", Integer, nullable=False, default=1),
    UniqueConstraint("exchange", "record", "field", "reason", name="uq_quarantine_entry"),
)

outbox = Table(
    "outbox",
    metadata,
    Column("message_id", String(36), primary_key=True),
    Column("exchange", String(128), nullable=False),
    Column("recipient", String(128), nullable=False),
    Column("record_key", String(300), nullable=False),
    Column("shared_id", String(32), nullable=False),
    Column("message_type", String(64), nullable=False),
    Column("state", String(16), nullable=False, index=True,
           doc="built | signed | queued | sending | delivered | failed | dead-letter"),
    Column("attempts", Integer, nullable=False, default=0),
    Column("last_error", String(500)),
    Column("sha256", String(64), nullable=False, doc="of the payload; kept after the payload is dropped"),
    Column("categories", Text, nullable=False, doc="JSON list of the data categories disclosed"),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("delivered_at", DateTime(timezone=True)),
    Column("location", String(500)),
    Column("next_attempt_at", DateTime(timezone=True), doc="backoff: not before; while sending: lease end"),
    Column("purged_at", DateTime(timezone=True), doc="when retention dropped the payload (hash kept)"),
    Column("claim_token", String(36), doc="random token of the delivery pass that last claimed it"),
    Column("window_key", String(200), doc="the source window it was built from (re-read to re-issue it)"),
    # A delivery pass asks for one recipient's waiting messages: this index reaches them without visiting the
    # (many more) delivered ones.
    Index("ix_outbox_recipient_state", "recipient", "state"),
)

outbox_payloads = Table(
    "outbox_payload",
    metadata,
    Column("message_id", String(36), ForeignKey("outbox.message_id"), primary_key=True),
    Column("payload", LargeBinary, nullable=False,
           doc="signed and encrypted to the recipient; plaintext never stored; deleted by retention"),
)
"""Each queued message's payload, apart from its outbox row: the row changes state several times (claimed,
delivered, retried), the ~10-15 KB payload is written once and read once. Kept apart, the outbox row stays a
few hundred bytes, so state changes and scans of the outbox never read or rewrite the payload's pages."""

ledger = Table(
    "ledger",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("at", String(40), nullable=False, doc="ISO 8601 with offset, exactly as hashed"),
    Column("exchange", String(128), nullable=False),
    Column("recipient", String(128), nullable=False),
    Column("recipient_name", String(300), nullable=False),
    Column("shared_id", String(32), nullable=False, index=True),
    Column("message_id", String(36), nullable=False),
    Column("message_type", String(64), nullable=False),
    Column("message_sha256", String(64), nullable=False),
    Column("categories", Text, nullable=False),
    Column("purpose", String(300), nullable=False),
    Column("legal_basis", String(300), nullable=False),
    Column("accounting_exempt", String(300), nullable=False, server_default="",
           doc="45 CFR 164.528(a)(1) exemption from the accounting; empty: accountable"),
    Column("prev_hash", String(64), nullable=False),
    Column("entry_hash", String(64), nullable=False, unique=True),
)

received = Table(
    "received",
    metadata,
    Column("message_id", String(128), primary_key=True, doc="the primary key is the replay protection"),
    Column("message_type", String(64), nullable=False),
    Column("sender_fingerprint", String(64), nullable=False, doc="SHA-256 of the pinned certificate used"),
    Column("received_sha256", String(64), nullable=False, doc="of the bytes as received (encrypted)"),
    Column("plaintext_sha256", String(64), nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("plaintext_file", String(500), nullable=False),
)

person_record_tokens = Table(
    "person_record_tokens",
    metadata,
    Column("system", String(64), primary_key=True),
    Column("record_id", String(128), primary_key=True),
    Column("token", String(40), primary_key=True,
           doc="'key:<kind>' (a match key's hash, read by merges and splits); rows of earlier versions: 'packed' "
               "(the comparison tokens in one row, now in crosswalk.tokens) or one comparison token"),
    Column("token_hash", Text, nullable=False, doc="HMAC-SHA256 of the token (set tokens: of each variant)"),
)

person_blocks = Table(
    "person_blocks",
    metadata,
    Column("block_hash", String(64), primary_key=True, doc="HMAC-SHA256 of a blocking value"),
    Column("system", String(64), primary_key=True),
    Column("record_id", String(128), primary_key=True),
    # The table is nothing but its key (searched by block_hash): without a rowid, SQLite keeps one B-tree
    # instead of a table plus an index of the same rows (half the bytes, one insert per row instead of two).
    # Databases created before keep their rowid table and work as they did.
    sqlite_with_rowid=False,
)

person_reviews = Table(
    "person_reviews",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("exchange", String(128), nullable=False, index=True),
    Column("system", String(64), nullable=False),
    Column("record_id", String(128), nullable=False),
    Column("shared_id", String(32), nullable=False, doc="the id the record got while under review"),
    Column("candidate_system", String(64), nullable=False),
    Column("candidate_record_id", String(128), nullable=False),
    Column("candidate_shared_id", String(32), nullable=False),
    Column("probability", String(20), nullable=False),
    Column("agreement", Text, nullable=False, doc="JSON: comparison -> level label; never values"),
    Column("reason", String(200), nullable=False),
    Column("status", String(16), nullable=False, index=True, doc="open | accepted | rejected"),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("decided_at", DateTime(timezone=True)),
    Column("decided_by", String(128)),
    UniqueConstraint("system", "record_id", "candidate_shared_id", name="uq_person_review_pair"),
)

person_events = Table(
    "person_events",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("kind", String(16), nullable=False, doc="merge | split | accept | reject"),
    Column("system", String(64), nullable=False),
    Column("record_id", String(128), nullable=False),
    Column("from_shared_id", String(32), nullable=False, index=True),
    Column("to_shared_id", String(32), nullable=False, index=True),
    Column("actor", String(128), nullable=False),
    Column("reason", String(300), nullable=False),
)

consents = Table(
    "consents",
    metadata,
    Column("consent_id", String(200), primary_key=True),
    Column("source", String(500), nullable=False, index=True, doc="file it was loaded from; a reload replaces"),
    Column("patient_key", String(64), nullable=False, index=True,
           doc="HMAC-SHA256 of the EHR's patient reference under the index secret; never the reference"),
    Column("shared_id", String(32), index=True, doc="the patient's shared person id, once the index linked it"),
    Column("discloser", String(300), nullable=False),
    Column("recipients", Text, nullable=False, doc="JSON list: recipient ids or class:<name>"),
    Column("purpose", String(200), nullable=False),
    Column("information", Text, nullable=False, doc="JSON list of information categories"),
    Column("status", String(32), nullable=False),
    Column("signed_on", String(10)),
    Column("expires_on", String(10)),
    Column("revoked_on", String(10)),
    Column("part2", Integer, nullable=False, default=0),
    Column("expiry_event", String(300), nullable=False, default=""),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

# Every window ever planned, kept after the cursor passed it: a merge or split re-opens windows to re-issue.
window_archive = Table(
    "window_archive",
    metadata,
    Column("exchange", String(128), primary_key=True),
    Column("window_key", String(200), primary_key=True),
    Column("spec", Text, nullable=False, doc="the source's window spec, to read the window again"),
    Column("cursor_after", Text, nullable=False),
)


def open_engine(url: str) -> Engine:
    """Create the engine and the tables. SQLite gets WAL and a busy timeout so parallel tasks can share it.

    Any number of processes may open the same new database at once (Airflow's mapped tasks, ``run
    --workers``): creating and upgrading the tables happens in one transaction that holds the database's
    write lock on SQLite, an advisory lock on PostgreSQL, so one process creates them and the others find
    them made (without it, two processes each saw a table missing and the second CREATE TABLE failed).
    """
    if url.startswith("sqlite:///") and not url.startswith("sqlite:///:memory:"):
        path = Path(url.removeprefix("sqlite:///")).absolute()  # a later chdir cannot move it (nor sync_log)
        path.parent.mkdir(parents=True, exist_ok=True)
        url = f"sqlite:///{path}"
    engine = create_engine(url, future=True)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "checkout", _sync_again)
    with engine.begin() as conn:
        _lock_schema(conn)
        metadata.create_all(conn)
        _add_new_columns(conn)
        _add_new_indexes(conn)
        _move_outbox_payloads(conn)
    return engine


_SCHEMA_LOCK = 0x6E69656D  # "niem": the PostgreSQL advisory lock held while tables are created or upgraded


def _lock_schema(conn: Connection) -> None:
    """Serialize schema work between processes, until the transaction ends."""
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql("BEGIN IMMEDIATE")  # the write lock now; a second opener waits (busy timeout)
    elif conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _SCHEMA_LOCK})


def _move_outbox_payloads(conn: Connection) -> None:
    """Move payloads that an earlier version kept in ``outbox.payload`` to ``outbox_payload``, then drop it.

    In the schema transaction: either every payload has moved and the column is gone, or nothing changed.
    """
    if "payload" not in {c["name"] for c in inspect(conn).get_columns("outbox")}:
        return
    conn.execute(text("INSERT INTO outbox_payload (message_id, payload) SELECT message_id, payload FROM outbox "
                      "WHERE payload IS NOT NULL ON CONFLICT (message_id) DO NOTHING"))
    conn.execute(text("ALTER TABLE outbox DROP COLUMN payload"))


def _add_new_indexes(conn: Connection) -> None:
    """Create indexes introduced since the database was created (create_all makes none on an existing table).

    An index over a column the table does not have yet is left to the migration that adds the column (the
    consents registry's ``patient_key``, for one).
    """
    inspector = inspect(conn)
    for table in metadata.sorted_tables:
        present = {c["name"] for c in inspector.get_columns(table.name)}
        for index in table.indexes:
            if all(column.name in present for column in index.columns):
                index.create(conn, checkfirst=True)


def _add_new_columns(conn: Connection) -> None:
    """Add columns introduced since the database was created (create_all only makes missing tables).

    Only columns that can be added in place are: nullable ones and those with a server default (e.g. the
    ledger's ``accounting_exempt``); a state database from an earlier version keeps working.
    """
    from sqlalchemy.schema import CreateColumn

    inspector = inspect(conn)
    for table in metadata.sorted_tables:
        if not inspector.has_table(table.name):
            continue
        present = {c["name"] for c in inspector.get_columns(table.name)}
        for column in table.columns:
            if column.name in present or (not column.nullable and column.server_default is None):
                continue
            ddl = CreateColumn(column).compile(dialect=conn.dialect)
            conn.execute(text(f"ALTER TABLE {table.name} ADD COLUMN {ddl}"))


WAL_AUTOCHECKPOINT = 8000
"""Pages (of 4 KiB) the write-ahead log may hold before a commit copies them into the database file.

SQLite's default, 1,000, is less than what one 100-record commit of the person index writes once the index
outgrows memory (~1,150 pages at 20,000 records: every new record dirties some 12 random B-tree pages), so
every such commit also ran a checkpoint: three syncs a commit instead of one, and a page changed by several
commits copied into the file at each. At 8,000 (~32 MiB of log) a checkpoint comes every few commits
(``bench.index_io`` at 50,000 demo bookings: 1,872 -> 708 fdatasync calls over the run, 10.6 -> 8.7 MiB
written a commit). Durability is the WAL's alone (synced at every commit, or by :func:`sync_log` for the
commits that skip it): when the log is copied back does not change what a power cut can lose."""


_RELAXED = "niem_exchange_sync_relaxed"
"""Key in a pooled connection's ``info``: :func:`commit_unsynced` relaxed it; checkout makes it FULL again."""


def commit_unsynced(conn: Connection) -> None:
    """Let the transaction ``conn`` is about to begin commit without waiting for the disk (SQLite only).

    Every other commit waits until the write-ahead log is on disk (``synchronous=FULL``), and waits holding the
    database's one write lock, so each is an fsync every other process queues behind. With ``synchronous=NORMAL``
    a commit is durable against a crash of the process but not yet against a power cut: a power cut may lose
    it, and, the log being written and recovered in order, every commit after it, up to the next one on disk
    (SQLite documents WAL with NORMAL as always consistent, losing only the latest transactions). The database
    comes back as it was at some earlier moment, never half-way. So only a transaction whose loss loses nothing
    may use it: one after which nothing leaves the machine until :func:`sync_log` or a synced commit has put
    it on disk. The pipeline's links, queued messages, claims and settled deliveries are such: a delivery syncs
    the log before it sends a chunk and when its pass ends; a window whose links or messages were lost is read
    again (the same records, the same message ids), a settled chunk that was lost is still claimed, and the next
    pass sends it again to a transport idempotent per message id, which records it once.

    Call before the transaction begins (SQLite refuses to change it inside one). The connection stays so until
    it goes back to the pool; it comes out again synced (:func:`_sync_again`).
    """
    if conn.dialect.name != "sqlite":
        return
    record = conn.connection
    record.dbapi_connection.execute("PRAGMA synchronous=NORMAL")
    record.info[_RELAXED] = True


@contextmanager
def begin_unsynced(engine: Engine) -> Iterator[Connection]:
    """``engine.begin()`` for a transaction that commits without waiting for the disk (:func:`commit_unsynced`)."""
    with engine.connect() as conn:
        commit_unsynced(conn)
        with conn.begin():
            yield conn


def _sync_again(dbapi_connection, record, _proxy) -> None:
    """Pool checkout: a connection :func:`commit_unsynced` relaxed waits for the disk again at every commit."""
    if record.info.pop(_RELAXED, False):
        dbapi_connection.execute("PRAGMA synchronous=FULL")


def sync_log(engine: Engine) -> None:
    """Put every commit made so far, by any process, on disk, holding no lock (SQLite; elsewhere a no-op).

    What a synced commit does after writing its pages, without the write lock: a commit's pages are in the
    write-ahead log (``<database>-wal``) when the commit returns, in the order of the commits, so syncing that
    file makes every commit up to now durable. A commit whose pages a checkpoint has meanwhile copied into the
    database file is durable already (with WAL, SQLite syncs the log before a checkpoint and the database file
    after it, and only then starts the log over). No log file: every connection has closed, and the last one
    checkpointed it into the database file and synced it. SQLite keeps no locks on the log file (its locks
    are on the database and ``-shm`` files), so opening and closing it here cannot drop one.
    PostgreSQL's commits are durable when they return.
    """
    if engine.dialect.name != "sqlite" or not engine.url.database or engine.url.database == ":memory:":
        return
    try:
        fd = os.open(f"{engine.url.database}-wal", os.O_RDONLY)
    except FileNotFoundError:
        return
    try:
        if hasattr(os, "fdatasync"):  # the data and the size; what SQLite's own sync of the log uses on Linux
            os.fdatasync(fd)
        else:
            os.fsync(fd)
    finally:
        os.close(fd)


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA wal_autocheckpoint={WAL_AUTOCHECKPOINT}")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()
