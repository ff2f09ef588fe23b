"""The person index: match keys (as keyed hashes) -> opaque shared person identifiers, plus a crosswalk.

Shared ids are random (``NXP-`` + 12 base32 characters), never derived from PHI, so a leaked id says
nothing about the person. Match keys are stored as HMAC-SHA256 under an installation secret, so the index
can answer "have we seen this SID before?" without holding SIDs, SSNs, names or birth dates.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, insert, select
from sqlalchemy.exc import IntegrityError

from exchange.state.db import crosswalk, person_keys, persons
from transforms.identity import MatchKey, match_keys
from transforms.model import PersonIdentity


@dataclass(frozen=True, slots=True)
class Link:
    """The outcome of linking one record: its shared id and the rule that decided it."""

    shared_id: str
    rule: str  # the match-key kind that found an existing person, or "new"


def new_shared_id() -> str:
    """A fresh opaque identifier: 60 random bits, Crockford-free base32, prefixed for recognisability."""
    return "NXP-" + base64.b32encode(secrets.token_bytes(10)).decode()[:12]


class PersonIndex:
    """Deterministic linking against the index; one instance per process, safe to reuse across batches."""

    def __init__(self, engine: Engine, secret: bytes) -> None:
        if len(secret) < 32:
            raise ValueError("the person-index secret must be at least 32 bytes")
        self._engine = engine
        self._secret = secret

    def _hash(self, key: MatchKey) -> str:
        return hmac.new(self._secret, key.text.encode(), hashlib.sha256).hexdigest()

    def link(self, system: str, record_id: str, person: PersonIdentity, now: datetime) -> Link:
        """Find or create the person for a record, and remember every key and the crosswalk entry.

        Strongest existing key wins. A record seen before keeps its shared id (the crosswalk is consulted
        first), so re-reading a source never mints a second id for the same record.
        """
        hashed = [(self._hash(k), k) for k in match_keys(person, system)]
        with self._engine.begin() as conn:
            known = conn.execute(
                select(crosswalk.c.shared_id).where(
                    crosswalk.c.system == system, crosswalk.c.record_id == record_id
                )
            ).scalar_one_or_none()
            rows = conn.execute(
                select(person_keys.c.key_hash, person_keys.c.shared_id, person_keys.c.strength).where(
                    person_keys.c.key_hash.in_([h for h, _ in hashed])
                )
            ).all()
            found = {r.key_hash: r.shared_id for r in rows}
            if known:
                link = Link(known, "crosswalk")
            else:
                link = next(
                    (Link(found[h], k.kind) for h, k in hashed if h in found),  # keys come strongest first
                    None,
                ) or Link(new_shared_id(), "new")
                if link.rule == "new":
                    conn.execute(insert(persons).values(shared_id=link.shared_id, created_at=now))
                conn.execute(
                    insert(crosswalk).values(
                        system=system, record_id=record_id, shared_id=link.shared_id, linked_at=now,
                        rule=link.rule,
                    )
                )
            for key_hash, key in hashed:
                if key_hash not in found:
                    try:
                        with conn.begin_nested():
                            conn.execute(
                                insert(person_keys).values(
                                    key_hash=key_hash, kind=key.kind, strength=key.strength,
                                    shared_id=link.shared_id,
                                )
                            )
                    except IntegrityError:  # another task stored the same key meanwhile: first writer wins
                        pass
        return link

    def count_persons(self) -> int:
        """How many distinct shared ids the index holds."""
        with self._engine.connect() as conn:
            return len(conn.execute(select(persons.c.shared_id)).all())
