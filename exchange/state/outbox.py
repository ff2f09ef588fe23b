"""The outbox: every built message, its state and its receipt. The single guard against double delivery.

A message id is a UUID5 of (exchange, recipient, record key, record digest): the same version of the same
record for the same recipient always gets the same id, and the primary key refuses a second copy. Only
payloads already signed and encrypted to their recipient are stored.
"""
from __future__ import annotations

import json
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, insert, select, update
from sqlalchemy.exc import IntegrityError

from exchange.state.db import outbox
from transforms.model import Receipt

_NAMESPACE = uuid.UUID("5b0f3d56-8c1e-4a8e-9a57-6d3c2f0e9b11")


def message_id(exchange: str, recipient: str, record_key: str, digest: str) -> str:
    """The idempotent id of one version of one record for one recipient."""
    return str(uuid.uuid5(_NAMESPACE, f"{exchange}\x1f{recipient}\x1f{record_key}\x1f{digest}"))


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


class Outbox:
    """Enqueue, list and settle messages. Methods are short transactions; safe across processes."""

    def __init__(self, engine: Engine, exchange: str) -> None:
        self._engine = engine
        self._exchange = exchange

    def known(self, message_ids: Sequence[str]) -> set[str]:
        """Which of these ids are already in the outbox (in any state)."""
        if not message_ids:
            return set()
        with self._engine.connect() as conn:
            rows = conn.execute(select(outbox.c.message_id).where(outbox.c.message_id.in_(list(message_ids))))
            return {r.message_id for r in rows}

    def enqueue(self, message: QueuedMessage, record_key: str, now: datetime) -> bool:
        """Store a message as queued; False when that id is already there (never a second copy)."""
        try:
            with self._engine.begin() as conn:
                conn.execute(
                    insert(outbox).values(
                        message_id=message.message_id, exchange=self._exchange, recipient=message.recipient,
                        record_key=record_key, shared_id=message.shared_id, message_type=message.message_type,
                        state="queued", attempts=0, payload=message.payload, sha256=message.sha256,
                        categories=json.dumps(list(message.categories)), created_at=now,
                    )
                )
        except IntegrityError:
            return False
        return True

    def queued(self, recipient: str) -> Iterator[QueuedMessage]:
        """Messages for ``recipient`` still to deliver (queued or failed-but-retryable), oldest first."""
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(outbox)
                .where(outbox.c.exchange == self._exchange, outbox.c.recipient == recipient,
                       outbox.c.state.in_(("queued", "failed")))
                .order_by(outbox.c.created_at, outbox.c.message_id)
            ).all()
        for r in rows:
            yield QueuedMessage(r.message_id, r.recipient, r.shared_id, r.message_type, r.payload, r.sha256,
                                tuple(json.loads(r.categories)), r.attempts)

    def mark_delivered(self, conn, receipt: Receipt) -> None:
        """Record the receipt inside the caller's transaction (the ledger entry is written in the same one)."""
        conn.execute(
            update(outbox)
            .where(outbox.c.message_id == receipt.message_id)
            .values(state="delivered", delivered_at=receipt.delivered_at, location=receipt.location,
                    attempts=outbox.c.attempts + 1, last_error=None)
        )

    def mark_failed(self, message_id: str, reason: str, *, dead: bool) -> None:
        """Count a failed attempt; ``dead`` moves it to the dead-letter state (no more automatic retries)."""
        with self._engine.begin() as conn:
            conn.execute(
                update(outbox)
                .where(outbox.c.message_id == message_id)
                .values(state="dead" if dead else "failed", last_error=reason[:500],
                        attempts=outbox.c.attempts + 1)
            )

    def counts(self) -> dict[str, int]:
        """Messages per state for this exchange."""
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(outbox.c.state, outbox.c.message_id).where(outbox.c.exchange == self._exchange)
            ).all()
        result: dict[str, int] = {}
        for r in rows:
            result[r.state] = result.get(r.state, 0) + 1
        return result
