"""The accounting-of-disclosures ledger: append-only and hash-chained.

Each entry holds the hash of the entry before it, and its own hash covers every field plus that link, so
editing or deleting any entry breaks the chain from there on (:func:`verify_chain` says where). The
content follows 45 CFR 164.528: date, recipient, a description of what was disclosed (by category),
purpose or legal basis, and the message id and hash to tie the entry to the bytes sent.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, Engine, insert, select

from exchange.state.db import ledger

GENESIS = "0" * 64


@dataclass(frozen=True, slots=True)
class Disclosure:
    """One disclosure of one message about one person to one recipient."""

    at: datetime
    exchange: str
    recipient: str
    recipient_name: str
    shared_id: str
    message_id: str
    message_type: str
    message_sha256: str
    categories: tuple[str, ...]
    purpose: str
    legal_basis: str
    #: The 45 CFR 164.528(a)(1) exemption this disclosure falls under; empty: it belongs in an accounting.
    accounting_exempt: str = ""


def _entry_hash(prev_hash: str, d: Disclosure) -> str:
    body = {
        "at": d.at.isoformat(), "exchange": d.exchange, "recipient": d.recipient,
        "recipient_name": d.recipient_name, "shared_id": d.shared_id, "message_id": d.message_id,
        "message_type": d.message_type, "message_sha256": d.message_sha256,
        "categories": list(d.categories), "purpose": d.purpose, "legal_basis": d.legal_basis,
        "prev_hash": prev_hash,
    }
    if d.accounting_exempt:  # only when set, so entries written before the field existed still verify
        body["accounting_exempt"] = d.accounting_exempt
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def append(conn: Connection, d: Disclosure) -> str:
    """Append one entry inside the caller's transaction; returns its hash.

    On SQLite the caller's write transaction serialises appends; on PostgreSQL the unique entry_hash
    makes a racing append on the same head fail rather than fork the chain.
    """
    return append_many(conn, [d])[0]


def append_many(conn: Connection, disclosures: Sequence[Disclosure]) -> list[str]:
    """Append entries in order inside the caller's transaction; returns their hashes.

    The chain head is read once and each entry links to the one before it, so the result is the chain
    :func:`append` would build one call at a time, written with one statement (a delivery pass settles a
    chunk of messages this way). Concurrency as for :func:`append`.
    """
    if not disclosures:
        return []
    head = conn.execute(_HEAD).scalar()
    prev = head or GENESIS
    rows, hashes = [], []
    for d in disclosures:
        entry_hash = _entry_hash(prev, d)
        rows.append(dict(
            at=d.at.isoformat(), exchange=d.exchange, recipient=d.recipient, recipient_name=d.recipient_name,
            shared_id=d.shared_id, message_id=d.message_id, message_type=d.message_type,
            message_sha256=d.message_sha256, categories=json.dumps(list(d.categories)), purpose=d.purpose,
            legal_basis=d.legal_basis, accounting_exempt=d.accounting_exempt, prev_hash=prev,
            entry_hash=entry_hash,
        ))
        hashes.append(entry_hash)
        prev = entry_hash
    conn.execute(insert(ledger), rows)
    return hashes


_HEAD = select(ledger.c.entry_hash).order_by(ledger.c.seq.desc()).limit(1)


@dataclass(frozen=True, slots=True)
class ChainReport:
    """The result of checking the chain: entries read and the first broken sequence number, if any."""

    entries: int
    broken_at: int | None
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.broken_at is None


def verify_chain(engine: Engine) -> ChainReport:
    """Recompute every hash and link; report the first entry that was edited, inserted or follows a gap."""
    prev = GENESIS
    count = 0
    with engine.connect() as conn:
        for row in conn.execute(select(ledger).order_by(ledger.c.seq)):
            count += 1
            d = _disclosure(row)
            if row.prev_hash != prev:
                return ChainReport(count, row.seq, "does not link to the entry before it (deleted entry?)")
            if _entry_hash(prev, d) != row.entry_hash:
                return ChainReport(count, row.seq, "content does not match its hash (edited entry?)")
            prev = row.entry_hash
    return ChainReport(count, None)


def _disclosure(r) -> Disclosure:
    return Disclosure(
        datetime.fromisoformat(r.at), r.exchange, r.recipient, r.recipient_name, r.shared_id, r.message_id,
        r.message_type, r.message_sha256, tuple(json.loads(r.categories)), r.purpose, r.legal_basis,
        r.accounting_exempt or "",
    )


def entries_for(engine: Engine, shared_id: str) -> list[Disclosure]:
    """Every disclosure about one person, oldest first (the raw material of an accounting)."""
    with engine.connect() as conn:
        rows = conn.execute(select(ledger).where(ledger.c.shared_id == shared_id).order_by(ledger.c.seq)).all()
    return [_disclosure(r) for r in rows]


@dataclass(frozen=True, slots=True)
class Accounting:
    """An accounting of disclosures for one person (45 CFR 164.528): what must be listed, and what not."""

    shared_id: str
    since: datetime
    until: datetime
    listed: tuple[Disclosure, ...]  # disclosures the individual is entitled to see, oldest first
    exempt: tuple[Disclosure, ...]  # left out under 164.528(a)(1), each with its exemption
    chain: ChainReport  # the ledger was checked before it was read


def account(engine: Engine, shared_id: str, since: datetime, until: datetime) -> Accounting:
    """The accounting for ``shared_id`` between ``since`` and ``until`` (both inclusive).

    164.528(a): an individual may ask for disclosures in the six years before the request; the caller
    chooses the window. Disclosures whose profile cites a 164.528(a)(1) exemption (for example to a
    correctional institution under 164.512(k)(5)) are not listed but returned apart, so the privacy
    officer can see what was left out and why. The hash chain is verified first: an accounting read from
    an edited ledger says so.
    """
    chain = verify_chain(engine)
    listed: list[Disclosure] = []
    exempt: list[Disclosure] = []
    for d in entries_for(engine, shared_id):
        if not since <= d.at <= until:
            continue
        (exempt if d.accounting_exempt else listed).append(d)
    return Accounting(shared_id, since, until, tuple(listed), tuple(exempt), chain)
