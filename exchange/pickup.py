"""Pull recipients: the exchange's outbox and ledger behind PullMessages and AcknowledgeMessage.

:class:`OutboxMailbox` is the :class:`adapters.inbound.Mailbox` the inbound service is given (the service lives
in ``adapters/`` and never imports this floor). A pull recipient's messages wait in the outbox as ``queued``
(delivery passes leave them alone); PullMessages claims up to N of them with the outbox's own claim-and-lease
(``sending`` until the lease ends), so a message pulled but never acknowledged is due again once its lease
has run out, exactly like a send abandoned mid-way. AcknowledgeMessage marks the message ``delivered`` and
appends its ledger entry in one transaction, guarded by a conditional UPDATE: two acknowledgements of one
message (a retry, a race) produce one delivery and one ledger entry.
"""
from __future__ import annotations

import json
from datetime import datetime, timedelta

from sqlalchemy import select, update

from adapters.inbound import Acknowledgement, Pull, PulledMessage
from exchange import disclosure
from exchange.runtime import Exchange
from exchange.state import ledger
from exchange.state.db import outbox as outbox_table
from exchange.state.outbox import Outbox, RetryPolicy, State
from transforms.model import PermanentError, RetryableError

#: States a pulled message can be acknowledged from (``sending`` is the usual one: it was pulled).
_AWAITING = (State.SENDING.value, State.QUEUED.value, State.FAILED.value)


class OutboxMailbox:
    """PullMessages/AcknowledgeMessage over one exchange's outbox; one lease length per pull recipient."""

    def __init__(self, ex: Exchange) -> None:
        self._ex = ex
        self._recipients = {r.id: r for r in ex.config.recipients if r.transport.kind == "pull"}
        self._outboxes = {
            r.id: Outbox(ex.engine, ex.config.name, RetryPolicy(lease=timedelta(seconds=r.transport.lease)))
            for r in self._recipients.values()
        }

    def pull(self, recipient: str, limit: int, now: datetime, max_bytes: int | None = None) -> Pull:
        """Lease up to ``limit`` of ``recipient``'s due messages to it, oldest first, their payloads within
        ``max_bytes`` together (the oldest is leased whatever its size, so a large message never blocks)."""
        box = self._outboxes[recipient]
        wanted = box.due(recipient, now)[:limit]
        if max_bytes is not None and wanted:
            sizes, total, taken = box.payload_sizes(wanted), 0, []
            for message_id in wanted:
                total += sizes.get(message_id, 0)
                if taken and total > max_bytes:
                    break
                taken.append(message_id)
            wanted = taken
        claimed = box.claim_many(wanted, now)
        return Pull(tuple(PulledMessage(m.message_id, m.message_type, m.payload, m.sha256) for m in claimed),
                    now + box.policy.lease)

    def acknowledge(self, recipient: str, message_id: str, sha256: str, receipt_id: str | None,
                    now: datetime) -> Acknowledgement:
        """Settle one message: delivered + one ledger entry, once; a repeat answers with the first time.

        Refused (``PermanentError``, the same words for both so nobody can probe for other recipients'
        messages): an id that is unknown or addressed to someone else; a SHA-256 other than the message's.
        """
        operation = f"acknowledge {message_id}"
        config = self._recipients[recipient]
        t = outbox_table
        with self._ex.engine.begin() as conn:
            row = conn.execute(
                select(t.c.recipient, t.c.state, t.c.sha256, t.c.delivered_at, t.c.message_type, t.c.shared_id,
                       t.c.categories)
                .where(t.c.message_id == message_id, t.c.exchange == self._ex.config.name)
            ).first()
            if row is None or row.recipient != recipient:
                raise PermanentError(operation, "no message with this MessageID is addressed to you")
            if row.sha256 != sha256:
                raise PermanentError(operation, "PayloadSHA256 does not match the message")
            if row.state == State.DELIVERED.value:
                return Acknowledgement(message_id, row.delivered_at, duplicate=True)
            if row.state not in _AWAITING:
                raise PermanentError(operation, f"the message is {row.state}, not awaiting acknowledgement")
            location = f"pull:{recipient}" + (f"#receipt={receipt_id}" if receipt_id else "")
            settled = conn.execute(
                update(t).where(t.c.message_id == message_id, t.c.state == row.state)
                .values(state=State.DELIVERED.value, delivered_at=now, location=location,
                        attempts=t.c.attempts + 1, last_error=None, next_attempt_at=None)
            ).rowcount
            if settled != 1:  # another acknowledgement won the race; the caller's retry reads "duplicate"
                raise RetryableError(operation, "acknowledged concurrently")
            ledger.append(conn, ledger.Disclosure(
                at=now, exchange=self._ex.config.name, recipient=recipient, recipient_name=config.organization,
                shared_id=row.shared_id, message_id=message_id, message_type=row.message_type,
                message_sha256=row.sha256, categories=tuple(json.loads(row.categories)),
                **disclosure.ledger_terms(self._ex, config, row.message_type),
            ))
        return Acknowledgement(message_id, now, duplicate=False)
