"""The person index: match keys (as keyed hashes) -> opaque shared person identifiers, plus a crosswalk.

Shared ids are random (``NXP-`` + 12 base32 characters), never derived from PHI, so a leaked id says
nothing about the person. Match keys are stored as HMAC-SHA256 under an installation secret, so the index
can answer "have we seen this SID before?" without holding SIDs, SSNs, names or birth dates.

Linking runs in two tiers. Deterministic: a strong identifier (SID, FBI number, SSN, the source's own
person id) or exact name + birth date already known links at once. Probabilistic: otherwise the record's
comparison tokens (:mod:`transforms.identity_normalise`), also stored only as HMACs, are scored against
candidate records that share a blocking value, with Fellegi-Sunter parameters estimated by Splink
(:mod:`exchange.identity.model`). Per exchange, :class:`Thresholds` decide: at or above ``link`` the record
joins the best candidate's person; from ``review`` up (or above ``link`` with a hard conflict such as twins'
different given names) it gets a new id *and* a clerical review item; below, a new person.

An id, once a record has it, changes only through :mod:`exchange.state.person_curation` (accept a review,
merge, split), which writes the trail.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, Engine, insert, select
from sqlalchemy.exc import IntegrityError

from exchange.state.db import (
    crosswalk,
    person_blocks,
    person_keys,
    person_record_tokens,
    person_reviews,
    persons,
)
from transforms.identity import MatchKey, match_keys
from transforms.identity_comparisons import Parameters, Score, blocking_values, hard_conflict, score
from transforms.identity_normalise import person_tokens
from transforms.identity_tokens import keyed_tokens
from transforms.model import PersonIdentity

MAX_CANDIDATES = 200
"""Most candidate records scored per incoming record (a block larger than this is a data problem)."""

@dataclass(frozen=True, slots=True)
class Link:
    """The outcome of linking one record: its shared id and the rule that decided it."""

    shared_id: str
    rule: str  # a match-key kind, "crosswalk", "probabilistic", "review" (new id, queued) or "new"
    probability: float | None = None  # the best candidate's match probability, when the probabilistic tier ran


@dataclass(frozen=True, slots=True)
class Thresholds:
    """Per-exchange decision thresholds on the match probability of the best candidate."""

    link: float = 0.99
    review: float = 0.30

    def __post_init__(self) -> None:
        if not 0.0 < self.review <= self.link < 1.0:
            raise ValueError("thresholds must satisfy 0 < review <= link < 1")


def new_shared_id() -> str:
    """A fresh opaque identifier: 60 random bits, Crockford-free base32, prefixed for recognisability."""
    return "NXP-" + base64.b32encode(secrets.token_bytes(10)).decode()[:12]


class PersonIndex:
    """Two-tier linking against the index; one instance per process, safe to reuse across batches.

    ``exchange`` names the exchange whose review queue gets the items; ``parameters`` default to the
    Splink model shipped in ``exchange/identity``.
    """

    def __init__(
        self,
        engine: Engine,
        secret: bytes,
        *,
        thresholds: Thresholds | None = None,
        parameters: Parameters | None = None,
        exchange: str = "",
    ) -> None:
        if len(secret) < 32:
            raise ValueError("the person-index secret must be at least 32 bytes")
        self._engine = engine
        self._secret = secret
        self.thresholds = thresholds or Thresholds()
        self.exchange = exchange
        if parameters is None:
            from exchange.identity.model import default_parameters

            parameters = default_parameters()
        self._parameters = parameters

    def _mac(self, text: str) -> str:
        return hmac.new(self._secret, text.encode(), hashlib.sha256).hexdigest()

    def _hash(self, key: MatchKey) -> str:
        return self._mac(key.text)

    def hashed_tokens(self, person: PersonIdentity) -> dict[str, str]:
        """The record's comparison tokens as keyed hashes (empty tokens stay empty: "unknown")."""
        return keyed_tokens(person_tokens(person), self._secret)

    def link(self, system: str, record_id: str, person: PersonIdentity, now: datetime) -> Link:
        """Find or create the person for a record, and remember its keys, tokens and crosswalk entry.

        A record seen before keeps its shared id (the crosswalk is consulted first), so re-reading a
        source never mints a second id for the same record. Then the strongest known deterministic key
        wins; then the probabilistic tier decides (see the module docstring).
        """
        hashed = [(self._hash(k), k) for k in match_keys(person, system)]
        with self._engine.begin() as conn:
            known = conn.execute(
                select(crosswalk.c.shared_id).where(
                    crosswalk.c.system == system, crosswalk.c.record_id == record_id
                )
            ).scalar_one_or_none()
            if known:
                return Link(known, "crosswalk")
            rows = conn.execute(
                select(person_keys.c.key_hash, person_keys.c.shared_id).where(
                    person_keys.c.key_hash.in_([h for h, _ in hashed])
                )
            ).all()
            found = {r.key_hash: r.shared_id for r in rows}
            tokens = self.hashed_tokens(person)
            blocks = [self._mac(f"block:{value}") for value in blocking_values(person_tokens(person))]
            link = next((Link(found[h], k.kind) for h, k in hashed if h in found), None)  # strongest first
            review = None
            if link is None:
                link, review = self._probabilistic(conn, system, record_id, tokens, blocks)
            if link.rule in ("new", "review"):
                conn.execute(insert(persons).values(shared_id=link.shared_id, created_at=now))
            conn.execute(insert(crosswalk).values(
                system=system, record_id=record_id, shared_id=link.shared_id, linked_at=now, rule=link.rule))
            if review is not None:
                self._enqueue_review(conn, system, record_id, link.shared_id, review, now)
            self._remember(conn, system, record_id, link.shared_id, hashed, found, tokens, blocks)
        return link

    def _probabilistic(
        self, conn: Connection, system: str, record_id: str, tokens: dict[str, str], blocks: list[str]
    ) -> tuple[Link, tuple[str, str, str, Score, str] | None]:
        """Score candidates sharing a block; return the decision and, for review, the best candidate."""
        best = self.best_candidate(conn, tokens, blocks)
        if best is None:
            return Link(new_shared_id(), "new"), None
        cand_system, cand_record, cand_shared, result = best
        probability = result.probability
        conflict = hard_conflict(result.gammas)
        if probability >= self.thresholds.link and not conflict:
            return Link(cand_shared, "probabilistic", probability), None
        if probability >= self.thresholds.review or (probability >= self.thresholds.link and conflict):
            if self._rejected(conn, system, record_id, cand_shared):
                return Link(new_shared_id(), "new", probability), None
            reason = conflict or "score between the review and link thresholds"
            return Link(new_shared_id(), "review", probability), (cand_system, cand_record, cand_shared,
                                                                  result, reason)
        return Link(new_shared_id(), "new", probability), None

    def best_candidate(
        self, conn: Connection, tokens: dict[str, str], blocks: list[str]
    ) -> tuple[str, str, str, Score] | None:
        """The highest-scoring known record sharing a blocking value: (system, record id, shared id, score)."""
        if not blocks:
            return None
        candidates = conn.execute(
            select(person_blocks.c.system, person_blocks.c.record_id).where(
                person_blocks.c.block_hash.in_(blocks)).distinct().limit(MAX_CANDIDATES)
        ).all()
        if not candidates:
            return None
        by_record: dict[tuple[str, str], dict[str, str]] = defaultdict(dict)
        shared: dict[tuple[str, str], str] = {}
        for system_name in {c.system for c in candidates}:
            ids = [c.record_id for c in candidates if c.system == system_name]
            for row in conn.execute(
                select(person_record_tokens.c.record_id, person_record_tokens.c.token,
                       person_record_tokens.c.token_hash).where(
                    person_record_tokens.c.system == system_name, person_record_tokens.c.record_id.in_(ids))
            ):
                by_record[(system_name, row.record_id)][row.token] = row.token_hash
            for row in conn.execute(
                select(crosswalk.c.record_id, crosswalk.c.shared_id).where(
                    crosswalk.c.system == system_name, crosswalk.c.record_id.in_(ids))
            ):
                shared[(system_name, row.record_id)] = row.shared_id
        best = None
        for key, other in by_record.items():
            if key not in shared:
                continue
            result = score(tokens, other, self._parameters)
            if best is None or result.weight > best[3].weight:
                best = (key[0], key[1], shared[key], result)
        return best

    def _rejected(self, conn: Connection, system: str, record_id: str, candidate_shared: str) -> bool:
        return conn.execute(select(person_reviews.c.id).where(
            person_reviews.c.system == system, person_reviews.c.record_id == record_id,
            person_reviews.c.candidate_shared_id == candidate_shared, person_reviews.c.status == "rejected",
        )).first() is not None

    def _enqueue_review(self, conn: Connection, system: str, record_id: str, shared_id: str,
                        review: tuple[str, str, str, Score, str], now: datetime) -> None:
        cand_system, cand_record, cand_shared, result, reason = review
        conn.execute(insert(person_reviews).values(
            exchange=self.exchange, system=system, record_id=record_id, shared_id=shared_id,
            candidate_system=cand_system, candidate_record_id=cand_record, candidate_shared_id=cand_shared,
            probability=f"{result.probability:.4f}", agreement=json.dumps(result.agreement(), sort_keys=True),
            reason=reason, status="open", created_at=now,
        ))

    def _remember(self, conn: Connection, system: str, record_id: str, shared_id: str,
                  hashed: list[tuple[str, MatchKey]], found: dict[str, str], tokens: dict[str, str],
                  blocks: list[str]) -> None:
        """Store the record's keys (first writer wins per key), tokens and blocking values."""
        for key_hash, key in hashed:
            if key_hash not in found:
                try:
                    with conn.begin_nested():
                        conn.execute(insert(person_keys).values(
                            key_hash=key_hash, kind=key.kind, strength=key.strength, shared_id=shared_id))
                except IntegrityError:  # another task stored the same key meanwhile: first writer wins
                    pass
        rows = [{"system": system, "record_id": record_id, "token": name, "token_hash": value}
                for name, value in tokens.items() if value]
        rows += [{"system": system, "record_id": record_id, "token": f"key:{key.kind}", "token_hash": key_hash}
                 for key_hash, key in hashed]
        if rows:
            conn.execute(insert(person_record_tokens), rows)
        if blocks:
            conn.execute(insert(person_blocks), [
                {"block_hash": b, "system": system, "record_id": record_id} for b in dict.fromkeys(blocks)])

    def count_persons(self) -> int:
        """How many distinct shared ids the index holds (retired ids included)."""
        with self._engine.connect() as conn:
            return len(conn.execute(select(persons.c.shared_id)).all())

    def shared_id_of(self, system: str, record_id: str) -> str | None:
        """The record's current shared id, or None if the index has never seen it."""
        with self._engine.connect() as conn:
            return conn.execute(select(crosswalk.c.shared_id).where(
                crosswalk.c.system == system, crosswalk.c.record_id == record_id)).scalar_one_or_none()
