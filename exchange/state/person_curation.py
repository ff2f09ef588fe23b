"""Changing who is who, on purpose and with a trail: the clerical review queue, merges and splits.

The person index never changes a record's shared id by itself. A person does it here: accepting a review
item merges the record's provisional id into the candidate's person; :func:`merge` joins two ids that turn
out to be one person; :func:`split` moves records that were wrongly joined to a fresh id. Each moved record
gets a ``person_events`` row (when, what, from which id to which, who, why) and one more on its move count,
and every function returns the records whose id changed. In the same transaction,
:func:`exchange.state.reissue.schedule` supersedes their messages still waiting under the old id and
re-opens the source windows their messages came from, so the next run re-issues them under the new id.

What a reviewer sees is what a reviewer needs: both records' references (system and record id, to look
them up in the source systems they are entitled to use), the two shared ids, the match probability and,
per compared attribute, which level agreed ("nickname", "day and month transposed", "different"), never the
names, dates or numbers themselves.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, Engine, func, insert, select, update

from exchange.state.db import crosswalk, person_events, person_keys, person_record_tokens, person_reviews, persons
from exchange.state.person_index import new_shared_id
from exchange.state.reissue import schedule


@dataclass(frozen=True, slots=True)
class ReviewItem:
    """One open question for a clerical reviewer: is this record the same person as that one?"""

    id: int
    record: str  # "system:record_id"
    shared_id: str  # the provisional id the record carries meanwhile
    candidate: str  # "system:record_id" of the best-scoring known record
    candidate_shared_id: str
    probability: float
    agreement: dict[str, str]  # comparison -> level label
    reason: str
    status: str


@dataclass(frozen=True, slots=True)
class Moved:
    """A record whose shared id changed: re-issue what was sent under ``old`` with ``new``."""

    system: str
    record_id: str
    old: str
    new: str


@dataclass(frozen=True, slots=True)
class Event:
    """One entry of the identity trail."""

    seq: int
    at: datetime
    kind: str
    record: str
    from_shared_id: str
    to_shared_id: str
    actor: str
    reason: str


class UnknownReviewError(LookupError):
    """No open review item has that id."""


def reviews(engine: Engine, exchange: str | None = None, status: str = "open") -> list[ReviewItem]:
    """Review items with ``status`` (``open``, ``accepted``, ``rejected`` or ``all``), oldest first."""
    query = select(person_reviews).order_by(person_reviews.c.id)
    if status != "all":
        query = query.where(person_reviews.c.status == status)
    if exchange:
        query = query.where(person_reviews.c.exchange == exchange)
    with engine.connect() as conn:
        return [ReviewItem(r.id, f"{r.system}:{r.record_id}", r.shared_id,
                           f"{r.candidate_system}:{r.candidate_record_id}", r.candidate_shared_id,
                           float(r.probability), json.loads(r.agreement), r.reason, r.status)
                for r in conn.execute(query)]


def accept(engine: Engine, review_id: int, actor: str, now: datetime) -> list[Moved]:
    """Same person: merge the record's provisional id into the candidate's (current) id."""
    with engine.begin() as conn:
        row = _open_review(conn, review_id)
        target = _current(conn, row.candidate_shared_id)
        source = _current(conn, row.shared_id)
        moved = _merge(conn, source, target, actor, f"review {review_id} accepted", now, "accept") \
            if source != target else []
        schedule(conn, moved, now)
        conn.execute(update(person_reviews).where(person_reviews.c.id == review_id).values(
            status="accepted", decided_at=now, decided_by=actor))
    return moved


def reject(engine: Engine, review_id: int, actor: str, now: datetime) -> None:
    """Different people: keep both ids; the index will not ask about this pair again."""
    with engine.begin() as conn:
        row = _open_review(conn, review_id)
        conn.execute(update(person_reviews).where(person_reviews.c.id == review_id).values(
            status="rejected", decided_at=now, decided_by=actor))
        conn.execute(insert(person_events).values(
            at=now, kind="reject", system=row.system, record_id=row.record_id, from_shared_id=row.shared_id,
            to_shared_id=row.candidate_shared_id, actor=actor, reason=f"review {review_id} rejected"))


def merge(engine: Engine, keep: str, retire: str, actor: str, reason: str, now: datetime) -> list[Moved]:
    """Move every record of ``retire`` to ``keep``; ``retire`` is never issued again."""
    with engine.begin() as conn:
        keep, retire = _current(conn, keep), _current(conn, retire)
        if keep == retire:
            return []
        moved = _merge(conn, retire, keep, actor, reason, now, "merge")
        schedule(conn, moved, now)
        return moved


def split(engine: Engine, shared_id: str, records: list[tuple[str, str]], actor: str, reason: str,
          now: datetime) -> tuple[str, list[Moved]]:
    """Move ``records`` ((system, record id) pairs now under ``shared_id``) to a fresh id; return it.

    Strong keys seen only on the moved records follow them, so the next record with one of those keys
    links to the new person; keys also seen on records that stay keep pointing at ``shared_id``.
    """
    new = new_shared_id()
    with engine.begin() as conn:
        members = {(r.system, r.record_id) for r in conn.execute(
            select(crosswalk.c.system, crosswalk.c.record_id).where(crosswalk.c.shared_id == shared_id))}
        wanted = set(records)
        if not wanted or not wanted <= members or wanted == members:
            raise ValueError("split needs some, but not all, of the person's records")
        conn.execute(insert(persons).values(shared_id=new, created_at=now))
        key_owner: dict[str, set[bool]] = {}
        for system, record_id in members:
            for (key_hash,) in conn.execute(select(person_record_tokens.c.token_hash).where(
                    person_record_tokens.c.system == system, person_record_tokens.c.record_id == record_id,
                    person_record_tokens.c.token.like("key:%"))):
                key_owner.setdefault(key_hash, set()).add((system, record_id) in wanted)
        only_moved = [h for h, owners in key_owner.items() if owners == {True}]
        if only_moved:
            conn.execute(update(person_keys).where(person_keys.c.key_hash.in_(only_moved),
                                                   person_keys.c.shared_id == shared_id).values(shared_id=new))
        moved = []
        for system, record_id in sorted(wanted):
            _move(conn, system, record_id, shared_id, new, "split", actor, reason, now)
            moved.append(Moved(system, record_id, shared_id, new))
        schedule(conn, moved, now)
    return new, moved


def messages_to_reissue(engine: Engine, moved: list[Moved]) -> list[tuple[str, str, str]]:
    """Outbox messages built for moved records under their old id: (message id, recipient, state).

    The outbox keys a message's record as ``system:record_id``; each of these carried an id that is no
    longer the record's. The move itself scheduled their re-issue (:mod:`exchange.state.reissue`, whose
    :func:`~exchange.state.reissue.affected` says per message whether its window is re-opened).
    """
    from exchange.state.db import outbox

    out = []
    with engine.connect() as conn:
        for m in moved:
            out += [(r.message_id, r.recipient, r.state) for r in conn.execute(
                select(outbox.c.message_id, outbox.c.recipient, outbox.c.state).where(
                    outbox.c.record_key == f"{m.system}:{m.record_id}", outbox.c.shared_id == m.old)
                .order_by(outbox.c.created_at))]
    return out


def history(engine: Engine, shared_id: str) -> list[Event]:
    """Every trail entry that moved a record to or from ``shared_id``, oldest first."""
    with engine.connect() as conn:
        rows = conn.execute(select(person_events).where(
            (person_events.c.from_shared_id == shared_id) | (person_events.c.to_shared_id == shared_id)
        ).order_by(person_events.c.seq))
        return [Event(r.seq, r.at, r.kind, f"{r.system}:{r.record_id}", r.from_shared_id, r.to_shared_id,
                      r.actor, r.reason) for r in rows]


def current_id(engine: Engine, shared_id: str) -> str:
    """The id a (possibly retired by merge) shared id now resolves to."""
    with engine.connect() as conn:
        return _current(conn, shared_id)


def _current(conn: Connection, shared_id: str) -> str:
    """Follow merges: an id with no records left whose records went elsewhere resolves to where they went."""
    seen = {shared_id}
    while True:
        if conn.execute(select(crosswalk.c.record_id).where(crosswalk.c.shared_id == shared_id)).first():
            return shared_id
        target = conn.execute(select(person_events.c.to_shared_id).where(
            person_events.c.from_shared_id == shared_id, person_events.c.kind.in_(("merge", "accept"))
        ).order_by(person_events.c.seq.desc())).scalar()
        if target is None or target in seen:
            return shared_id
        seen.add(target)
        shared_id = target


def _open_review(conn: Connection, review_id: int):
    row = conn.execute(select(person_reviews).where(person_reviews.c.id == review_id,
                                                    person_reviews.c.status == "open")).first()
    if row is None:
        raise UnknownReviewError(f"no open review item {review_id}")
    return row


def _merge(conn: Connection, source: str, target: str, actor: str, reason: str, now: datetime,
           kind: str) -> list[Moved]:
    members = conn.execute(select(crosswalk.c.system, crosswalk.c.record_id).where(
        crosswalk.c.shared_id == source).order_by(crosswalk.c.system, crosswalk.c.record_id)).all()
    moved = []
    for system, record_id in members:
        _move(conn, system, record_id, source, target, kind, actor, reason, now)
        moved.append(Moved(system, record_id, source, target))
    conn.execute(update(person_keys).where(person_keys.c.shared_id == source).values(shared_id=target))
    return moved


def _move(conn: Connection, system: str, record_id: str, old: str, new: str, kind: str, actor: str,
          reason: str, now: datetime) -> None:
    conn.execute(update(crosswalk).where(crosswalk.c.system == system, crosswalk.c.record_id == record_id)
                 .values(shared_id=new, moves=func.coalesce(crosswalk.c.moves, 0) + 1))
    conn.execute(insert(person_events).values(at=now, kind=kind, system=system, record_id=record_id,
                                              from_shared_id=old, to_shared_id=new, actor=actor, reason=reason))
