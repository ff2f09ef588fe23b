"""The outbox: every built message, its state, its attempts and its receipt. The guard against double delivery.

A message id is a UUID5 of (exchange, recipient, record key, record digest): the same version of the same
record for the same recipient always gets the same id, and the primary key refuses a second copy. Once a
merge or split has moved the record to another shared id, the id also covers that shared id and the move
count (see :func:`message_id`), so the re-issue under the new id is a new message, sent once. Only
payloads already signed and encrypted to their recipient are stored, in their own table (``outbox_payload``):
the row, whose state changes, stays small, and the payload is written once and deleted by retention.

States (:class:`State`)::

    queued --claim--> sending --receipt--> delivered      (payload purged after the retention period,
       ^                 |                                  its SHA-256 kept for the ledger)
       |                 +--RetryableError--> failed --(next_attempt_at reached)--> sending ...
       |                 +--PermanentError or max_attempts--> dead-letter
       +-------- `niem-exchange outbox retry` ----------------+
    queued, failed, dead-letter --merge or split moves the record--> superseded (never sent; re-issued)

``built`` and ``signed`` name the steps before ``queued``; the pipeline builds, signs and encrypts a message in
one step and inserts it as ``queued``, so today no row rests in them. A claim is an atomic
``UPDATE ... WHERE state IN (queued, failed)`` that also sets a lease in ``next_attempt_at``: a process that
dies while ``sending`` leaves a row that any later run takes over once the lease has run out. The transport
is idempotent per message id, so that takeover never produces a second copy at the receiver.
"""
from __future__ import annotations

import enum
import json
import random
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, Engine, and_, bindparam, delete, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from exchange.state.bulk import chunks, insert_new
from exchange.state.db import outbox, outbox_payloads
from transforms.model import Receipt

_NAMESPACE = uuid.UUID("5b0f3d56-8c1e-4a8e-9a57-6d3c2f0e9b11")


class State(str, enum.Enum):
    """Where a message is in its life; the value is what the ``state`` column holds."""

    BUILT = "built"
    SIGNED = "signed"
    QUEUED = "queued"
    SENDING = "sending"
    DELIVERED = "delivered"
    FAILED = "failed"
    DEAD = "dead-letter"
    SUPERSEDED = "superseded"  # never sent: a merge or split changed the record's shared id before delivery


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff with jitter between attempts, and how long a claim may stay ``sending``.

    The n-th failure waits ``min(cap, base * 2**(n-1))`` scaled by a random factor in ``[1 - jitter, 1]``
    ("equal jitter" keeps a floor so a flapping endpoint is not hammered, the randomness spreads retries of
    many messages that failed together).
    """

    base: timedelta = timedelta(seconds=30)
    cap: timedelta = timedelta(hours=1)
    jitter: float = 0.5
    lease: timedelta = timedelta(minutes=5)

    def delay(self, failures: int, rng: random.Random | None = None) -> timedelta:
        """The wait after the ``failures``-th consecutive failure (1-based)."""
        raw = min(self.cap.total_seconds(), self.base.total_seconds() * 2 ** max(0, failures - 1))
        factor = 1.0 - self.jitter * (rng or random).random()
        return timedelta(seconds=raw * factor)


def message_id(exchange: str, recipient: str, record_key: str, digest: str, identity: str = "") -> str:
    """The idempotent id of one version of one record for one recipient, under one identity.

    ``identity`` is empty while the record has never been moved by a merge or split, so ids of unmoved
    records are exactly those of earlier versions (an existing outbox is not sent again); after the n-th
    move it is ``"<shared id>#<n>"``, which makes the re-issue under the new id a new message.
    """
    name = f"{exchange}\x1f{recipient}\x1f{record_key}\x1f{digest}"
    return str(uuid.uuid5(_NAMESPACE, f"{name}\x1f{identity}" if identity else name))


@dataclass(frozen=True, slots=True)
class QueuedMessage:
    """A message waiting for its transport."""

    message_id: str
    recipient: str
    shared_id: str
    message_type: str
    payload: bytes
    sha256: str
    categories: tuple[str, ...]
    attempts: int


@dataclass(frozen=True, slots=True)
class NewMessage:
    """A message for :meth:`Outbox.enqueue_many`: what :meth:`Outbox.enqueue` takes, as one value."""

    message: QueuedMessage
    record_key: str
    created_at: datetime
    window_key: str | None = None  # the source window it was built from (to re-issue it after a merge/split)


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    """One outbox row as ``outbox list`` shows it: no payload, no PHI."""

    message_id: str
    recipient: str
    state: str
    attempts: int
    next_attempt_at: datetime | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None
    location: str | None
    sha256: str
    payload_kept: bool


class Outbox:
    """Enqueue, claim and settle messages. Methods are short transactions; safe across processes."""

    def __init__(self, engine: Engine, exchange: str, policy: RetryPolicy | None = None,
                 rng: random.Random | None = None) -> None:
        self._engine = engine
        self._exchange = exchange
        self.policy = policy or RetryPolicy()
        self._rng = rng or random.Random()
        # claim_many's UPDATE, built once (it names this exchange): the ids and times are bound per call
        self._claim = (
            update(outbox).where(outbox.c.message_id.in_(bindparam("ids", expanding=True)),
                                 self._claimable(bindparam("now", type_=outbox.c.next_attempt_at.type)))
            .values(state=State.SENDING.value, next_attempt_at=bindparam("lease_end"), claim_token=bindparam("token"))
        )

    def known(self, message_ids: Sequence[str]) -> set[str]:
        """Which of these ids are already in the outbox (in any state); one query per 500 ids."""
        if not message_ids:
            return set()
        found: set[str] = set()
        with self._engine.connect() as conn:
            for part in chunks(list(dict.fromkeys(message_ids))):
                found.update(conn.execute(_KNOWN, {"ids": list(part)}).scalars())
        return found

    def payload_sizes(self, message_ids: Sequence[str]) -> dict[str, int]:
        """Bytes of each of these messages' payloads (ids without a payload are left out)."""
        found: dict[str, int] = {}
        with self._engine.connect() as conn:
            for part in chunks(list(dict.fromkeys(message_ids))):
                found.update(conn.execute(_SIZES, {"ids": list(part)}).all())
        return found

    def enqueue(self, message: QueuedMessage, record_key: str, now: datetime, window_key: str | None = None) -> bool:
        """Store a message as queued; False when that id is already there (never a second copy).

        ``window_key`` names the source window the message was built from, so a merge or split can have
        that window read again to re-issue the message under the record's new shared id.
        """
        try:
            with self._engine.begin() as conn:
                conn.execute(
                    insert(outbox).values(
                        message_id=message.message_id, exchange=self._exchange, recipient=message.recipient,
                        record_key=record_key, shared_id=message.shared_id, message_type=message.message_type,
                        state=State.QUEUED.value, attempts=0, sha256=message.sha256,
                        categories=json.dumps(list(message.categories)), created_at=now, next_attempt_at=now,
                        window_key=window_key,
                    )
                )
                conn.execute(insert(outbox_payloads).values(message_id=message.message_id, payload=message.payload))
        except IntegrityError:
            return False
        return True

    def enqueue_many(self, entries: Sequence[NewMessage], *, conn: Connection | None = None) -> int:
        """Store messages as queued, all in one transaction; returns how many were new.

        An id already in the outbox is skipped (never a second copy), as :meth:`enqueue` refuses it. With
        ``conn`` the rows join the caller's transaction (the pipeline commits a window's last messages
        together with the window's completion); without, one commit covers them all.
        """
        if not entries:
            return 0
        if conn is None:
            with self._engine.begin() as own:
                return self.enqueue_many(entries, conn=own)
        rows = [{
            "message_id": e.message.message_id, "exchange": self._exchange, "recipient": e.message.recipient,
            "record_key": e.record_key, "shared_id": e.message.shared_id, "message_type": e.message.message_type,
            "state": State.QUEUED.value, "attempts": 0, "sha256": e.message.sha256,
            "categories": json.dumps(list(e.message.categories)), "created_at": e.created_at,
            "next_attempt_at": e.created_at, "window_key": e.window_key,
        } for e in entries]
        # Multi-row INSERT ... ON CONFLICT DO NOTHING RETURNING: the ids returned are the rows that were new,
        # and only their payloads are stored (a message already there keeps the payload it was queued with).
        statement = insert_new(outbox, conn.dialect.name).returning(outbox.c.message_id)
        new = {row.message_id for row in conn.execute(statement, rows)}
        first = {e.message.message_id: e.message.payload for e in reversed(entries)}  # the first of repeats wins
        payloads = [{"message_id": mid, "payload": first[mid]} for mid in first if mid in new]
        if payloads:
            conn.execute(_STORE_PAYLOAD, payloads)
        return len(new)

    def _due(self, recipient: str, now: datetime):
        """Rows of ``recipient`` a delivery pass may take now: waiting and due, or abandoned mid-send."""
        return and_(
            outbox.c.exchange == self._exchange, outbox.c.recipient == recipient,
            or_(
                and_(outbox.c.state.in_((State.QUEUED.value, State.FAILED.value)),
                     or_(outbox.c.next_attempt_at.is_(None), outbox.c.next_attempt_at <= now)),
                and_(outbox.c.state == State.SENDING.value, outbox.c.next_attempt_at <= now),
            ),
        )

    def _claimable(self, now: datetime):
        """Due rows, for a statement that names its rows by id (any recipient's).

        The state is tested as ``state || ''``, which no index covers, so the primary key is the planner's only
        way in. SQLite without statistics (a new state file, never analyzed) otherwise guessed that ``state IN
        (...)`` or ``recipient = ?`` narrows the outbox more than 100 ids do and walked every waiting row per
        claim: 24 ms a claim at 20,000 messages instead of 0.2, and delivery time grew with the outbox's square.
        """
        state = outbox.c.state.concat("")
        return and_(
            outbox.c.exchange == self._exchange,
            or_(
                and_(state.in_((State.QUEUED.value, State.FAILED.value)),
                     or_(outbox.c.next_attempt_at.is_(None), outbox.c.next_attempt_at <= now)),
                and_(state == State.SENDING.value, outbox.c.next_attempt_at <= now),
            ),
        )

    def due(self, recipient: str, now: datetime, *, untried_only: bool = False) -> list[str]:
        """Ids of ``recipient``'s messages to try now, oldest first (ids only: payloads are read per claim).

        ``untried_only``: only queued messages no attempt has been made for (not retries, not abandoned sends).
        """
        condition = self._due(recipient, now)
        if untried_only:
            condition = and_(condition, outbox.c.state == State.QUEUED.value, outbox.c.attempts == 0)
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(outbox.c.message_id).where(condition).order_by(outbox.c.created_at, outbox.c.message_id)
            ).all()
        return [r.message_id for r in rows]

    def queued(self, recipient: str, now: datetime | None = None) -> Iterator[QueuedMessage]:
        """Messages for ``recipient`` still to deliver and due at ``now`` (None: regardless of backoff)."""
        condition = (
            self._due(recipient, now) if now is not None else and_(
                outbox.c.exchange == self._exchange, outbox.c.recipient == recipient,
                outbox.c.state.in_((State.QUEUED.value, State.FAILED.value, State.SENDING.value)))
        )
        with self._engine.connect() as conn:
            rows = conn.execute(_WITH_PAYLOAD.where(condition)
                                .order_by(outbox.c.created_at, outbox.c.message_id)).all()
        for r in rows:
            yield _queued(r)

    def claim(self, message_id: str, now: datetime) -> QueuedMessage | None:
        """Take one due message for sending (state ``sending``, lease until now + lease); None if not ours."""
        claimed = self.claim_many([message_id], now)
        return claimed[0] if claimed else None

    def claim_many(self, message_ids: Sequence[str], now: datetime, *,
                   conn: Connection | None = None) -> list[QueuedMessage]:
        """Take those of ``message_ids`` that are still due, in one transaction; return them oldest first.

        The conditional UPDATE is the lock: of two processes claiming the same row, exactly one matches; a
        random token per call tells our claims apart from anyone else's. With ``conn`` the claim joins the
        caller's transaction (a delivery pass claims its next chunk in the commit that settles the last one)
        and holds only once that commits.
        """
        if not message_ids:
            return []
        if conn is None:
            with self._engine.begin() as own:
                return self.claim_many(message_ids, now, conn=own)
        token = str(uuid.uuid4())
        ids = list(dict.fromkeys(message_ids))
        conn.execute(self._claim, {"ids": ids, "now": now, "lease_end": now + self.policy.lease, "token": token})
        rows = conn.execute(_CLAIMED, {"ids": ids, "token": token}).all()  # ours: the token is this call's
        return [_queued(r) for r in rows]

    def release(self, message_id: str, reason: str, now: datetime) -> None:
        """Give a claimed message back untouched (no attempt counted): the pass stopped before trying it."""
        with self._engine.begin() as conn:
            conn.execute(
                update(outbox)
                .where(outbox.c.message_id == message_id, outbox.c.state == State.SENDING.value)
                .values(state=State.QUEUED.value, next_attempt_at=now, last_error=reason[:500])
            )

    def mark_delivered(self, conn, receipt: Receipt) -> None:
        """Record the receipt inside the caller's transaction (the ledger entry is written in the same one)."""
        self.mark_delivered_many(conn, [receipt])

    def mark_delivered_many(self, conn: Connection, receipts: Sequence[Receipt]) -> None:
        """Record receipts inside the caller's transaction, with one statement (a delivery pass's chunk)."""
        if receipts:
            conn.execute(_DELIVERED, [{"id": r.message_id, "at": r.delivered_at, "location": r.location}
                                      for r in receipts])

    def mark_failed(self, message_id: str, reason: str, *, dead: bool, now: datetime | None = None) -> str:
        """Count a failed attempt: ``failed`` with the next attempt after a backoff, or ``dead-letter``.

        Returns the new state. ``reason`` must already be free of PHI (errors carry paths, never values).
        """
        with self._engine.begin() as conn:
            attempts = conn.execute(select(outbox.c.attempts).where(outbox.c.message_id == message_id)).scalar_one()
            state = State.DEAD if dead else State.FAILED
            next_at = None if dead or now is None else now + self.policy.delay(attempts + 1, self._rng)
            conn.execute(
                update(outbox)
                .where(outbox.c.message_id == message_id)
                .values(state=state.value, last_error=reason[:500], attempts=attempts + 1,
                        next_attempt_at=next_at)
            )
        return state.value

    def retry(self, now: datetime, *, message_ids: Sequence[str] = (), states: Sequence[str] = (),
              recipient: str | None = None) -> int:
        """Put messages back in the queue now with a fresh attempt budget; delivered ones are never touched.

        Selects by ids, or by states (``failed``, ``dead-letter``, ``sending``), optionally for one recipient.
        """
        allowed = {State.FAILED.value, State.DEAD.value, State.SENDING.value, State.QUEUED.value}
        conditions = [outbox.c.exchange == self._exchange, outbox.c.state.in_(list(allowed & set(states or allowed)))]
        if message_ids:
            conditions.append(outbox.c.message_id.in_(list(message_ids)))
        if recipient:
            conditions.append(outbox.c.recipient == recipient)
        with self._engine.begin() as conn:
            return conn.execute(
                update(outbox).where(*conditions)
                .values(state=State.QUEUED.value, attempts=0, next_attempt_at=now)
            ).rowcount

    def purge(self, now: datetime, older_than: timedelta) -> int:
        """Drop the payloads of messages delivered before ``now - older_than``; keep every row and its hash.

        Queued, failed, sending and dead-letter messages keep their payloads: they are not done yet.
        """
        old = select(outbox_payloads.c.message_id).join(
            outbox, outbox.c.message_id == outbox_payloads.c.message_id).where(
            outbox.c.exchange == self._exchange, outbox.c.state == State.DELIVERED.value,
            outbox.c.delivered_at < now - older_than)
        with self._engine.begin() as conn:
            ids = conn.execute(old).scalars().all()
            for part in chunks(ids):
                drop_payloads(conn, part, now)
        return len(ids)

    def entries(self, *, state: str | None = None, recipient: str | None = None,
                limit: int = 1000) -> list[OutboxEntry]:
        """Rows for ``outbox list``, oldest first: ids, states, attempts, errors, never payloads."""
        conditions = [outbox.c.exchange == self._exchange]
        if state:
            conditions.append(outbox.c.state == state)
        if recipient:
            conditions.append(outbox.c.recipient == recipient)
        columns = [outbox.c.message_id, outbox.c.recipient, outbox.c.state, outbox.c.attempts,
                   outbox.c.next_attempt_at, outbox.c.last_error, outbox.c.created_at, outbox.c.delivered_at,
                   outbox.c.location, outbox.c.sha256, outbox_payloads.c.message_id.is_not(None).label("kept")]
        with self._engine.connect() as conn:
            rows = conn.execute(select(*columns).select_from(_OUTBOX_AND_PAYLOAD).where(*conditions)
                                .order_by(outbox.c.created_at, outbox.c.message_id).limit(limit)).all()
        return [OutboxEntry(r.message_id, r.recipient, r.state, r.attempts, r.next_attempt_at, r.last_error,
                            r.created_at, r.delivered_at, r.location, r.sha256, bool(r.kept)) for r in rows]

    def counts(self) -> dict[str, int]:
        """Messages per state for this exchange."""
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(outbox.c.state, func.count()).where(outbox.c.exchange == self._exchange)
                .group_by(outbox.c.state)
            ).all()
        return {state: count for state, count in rows}


def drop_payloads(conn: Connection, message_ids: Sequence[str], now: datetime) -> None:
    """Delete these messages' payloads and stamp ``purged_at`` (caller's transaction); rows and hashes stay."""
    if message_ids:
        conn.execute(delete(outbox_payloads).where(outbox_payloads.c.message_id.in_(list(message_ids))))
        conn.execute(update(outbox).where(outbox.c.message_id.in_(list(message_ids))).values(purged_at=now))


_OUTBOX_AND_PAYLOAD = outbox.outerjoin(outbox_payloads, outbox_payloads.c.message_id == outbox.c.message_id)
_WITH_PAYLOAD = select(outbox, outbox_payloads.c.payload).select_from(_OUTBOX_AND_PAYLOAD)
"""Outbox rows with their payloads (None once dropped)."""
_STORE_PAYLOAD = insert(outbox_payloads)
_CLAIMED = (  # only what a QueuedMessage holds: no timestamps to parse (no index on the token: the ids lead)
    select(outbox.c.message_id, outbox.c.recipient, outbox.c.shared_id, outbox.c.message_type,
           outbox_payloads.c.payload, outbox.c.sha256, outbox.c.categories, outbox.c.attempts)
    .select_from(_OUTBOX_AND_PAYLOAD)
    .where(outbox.c.message_id.in_(bindparam("ids", expanding=True)), outbox.c.claim_token == bindparam("token"))
    .order_by(outbox.c.created_at, outbox.c.message_id)
)
_SIZES = select(outbox_payloads.c.message_id, func.length(outbox_payloads.c.payload)).where(
    outbox_payloads.c.message_id.in_(bindparam("ids", expanding=True)))
_KNOWN = select(outbox.c.message_id).where(outbox.c.message_id.in_(bindparam("ids", expanding=True)))
_DELIVERED = (
    update(outbox).where(outbox.c.message_id == bindparam("id"))
    .values(state=State.DELIVERED.value, delivered_at=bindparam("at"), location=bindparam("location"),
            attempts=outbox.c.attempts + 1, last_error=None, next_attempt_at=None)
)


def _queued(r) -> QueuedMessage:
    return QueuedMessage(r.message_id, r.recipient, r.shared_id, r.message_type, r.payload, r.sha256,
                         tuple(json.loads(r.categories)), r.attempts)
