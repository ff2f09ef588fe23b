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
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

from sqlalchemy import Connection, Dialect, Engine, Table, select

from exchange.state.bulk import IN_LIST, begin_write, chunks
from exchange.state.db import (
    crosswalk,
    person_blocks,
    person_events,
    person_keys,
    person_record_tokens,
    person_reviews,
    persons,
)
from transforms.identity import MatchKey, match_keys
from transforms.identity_comparisons import Parameters, Score, Scorer, blocking_values, hard_conflict
from transforms.identity_normalise import person_tokens
from transforms.identity_tokens import TokenKeyer
from transforms.model import PersonIdentity

MAX_BLOCK = 25
"""A block (the records sharing one blocking value) holding more records than this yields no candidates.

Such a value says too little to single anyone out (a placeholder birth date such as 1900-01-01; "Smith born
1980" in a county's ten-year index): its records would be scored against every new record that has it, so a
search would grow with the index. The record is compared through its other, smaller blocks instead (block
purging), so a search scores at most ``MAX_BLOCK`` records a block. Chosen by measurement
(``python -m bench.identity --index-accuracy 400000 --max-block 25,1000000``, numbers in the identity README):
on generated records the index's precision and recall did not change; on the demo drop, whose ~140 given
names and ~1,100 surname sounds make blocks fill, the searches got cheaper."""

CONTENDED = 0.001
"""Seconds waited for SQLite's write lock from which a batch counts as contended (another process held it)."""

PACKED_TOKENS = "packed"
"""The ``person_record_tokens`` row in which earlier versions kept a record's comparison tokens, packed as the
crosswalk's ``tokens`` column now holds them (``name,hash,name,hash,...``).

Records linked before that row existed have one row per comparison token instead; the candidate search reads
all three forms. Match keys keep one row each (``key:<kind>``)."""


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
    Splink model shipped in ``exchange/identity``; ``presearch`` says whether batches search before the write
    lock (None: while other processes contend for it, see :meth:`link_many`).
    """

    def __init__(
        self,
        engine: Engine,
        secret: bytes,
        *,
        thresholds: Thresholds | None = None,
        parameters: Parameters | None = None,
        exchange: str = "",
        presearch: bool | None = None,
    ) -> None:
        if len(secret) < 32:
            raise ValueError("the person-index secret must be at least 32 bytes")
        self._engine = engine
        self._secret = secret
        self._keyed = hmac.new(secret, digestmod=hashlib.sha256)  # copied per hash: the secret is keyed in once
        self._keyer = TokenKeyer(secret)
        self.thresholds = thresholds or Thresholds()
        self.exchange = exchange
        if parameters is None:
            from exchange.identity.model import default_parameters

            parameters = default_parameters()
        self._parameters = parameters
        # Search before the write lock (see link_many): always, never, or (None) while other processes are
        # making this one wait for the lock.
        self._presearch = presearch
        self._contended = False

    def _mac(self, text: str) -> str:
        mac = self._keyed.copy()
        mac.update(text.encode())
        return mac.hexdigest()

    def _hash(self, key: MatchKey) -> str:
        return self._mac(key.text)

    def hashed_tokens(self, person: PersonIdentity) -> dict[str, str]:
        """The record's comparison tokens as keyed hashes (empty tokens stay empty: "unknown")."""
        return self._keyer(person_tokens(person))

    def link(self, system: str, record_id: str, person: PersonIdentity, now: datetime, *,
             conn: Connection | None = None) -> Link:
        """Find or create the person for a record, and remember its keys, tokens and crosswalk entry.

        A record seen before keeps its shared id (the crosswalk is consulted first), so re-reading a
        source never mints a second id for the same record. Then the strongest known deterministic key
        wins; then the probabilistic tier decides (see the module docstring). With ``conn`` the work joins
        the caller's transaction (the caller commits); without, it commits on its own. For many records at
        once, :meth:`link_many` does the same work for a fraction of the cost.
        """
        return self.link_many([(system, record_id, person)], now, conn=conn)[0]

    def link_many(self, records: Sequence[tuple[str, str, PersonIdentity]], now: datetime, *,
                  conn: Connection | None = None) -> list[Link]:
        """Link ``(system, record id, person)`` records in order, in one transaction; one Link per record.

        The outcome is exactly that of calling :meth:`link` on each record in turn: each record sees the
        persons, keys and candidates the records before it created. What changes is the cost: one commit
        for the whole batch (``conn``: the caller's transaction, which the caller commits), one query for
        the crosswalk and one for the match keys of every record, and the new rows written with one
        statement per table. Rows not yet written are written before any candidate search that could find
        them (a record sharing a blocking value with an earlier one of the batch), so no search misses one.

        The records' hashes and tokens, which need no database, are computed before the write lock is taken.
        So, on SQLite, is the candidate search of each record that will probably need one (read while other
        processes write; under the lock only what changed since is read again, see :meth:`_Batch.presearch`),
        while other processes contend for the lock: the last batch waited for it (``presearch=None``, the
        default; ``True`` or ``False`` decide once for all). Alone, a batch holds the lock no shorter for it
        and the search's membership part would be read twice.
        """
        if not records:
            return []
        batch = _Batch(self, now)
        batch.prepare(records)
        presearch = self._contended if self._presearch is None else self._presearch
        if conn is None:
            with self._engine.begin() as own:
                if presearch:
                    batch.presearch(own, records)
                links = batch.run(own, records)
        else:
            if presearch:
                batch.presearch(conn, records)
            links = batch.run(conn, records)
        self._contended = batch.waited > CONTENDED
        return links

    def _probabilistic(
        self, conn: Connection, system: str, record_id: str, tokens: dict[str, str], blocks: list[str],
        rejected: set[tuple[str, str, str]], seen: _Scored | None = None,
    ) -> tuple[Link, tuple[str, str, str, Score, str] | None]:
        """Score candidates sharing a block; return the decision and, for review, the best candidate.

        ``rejected`` holds the (system, record id, candidate shared id) pairs a reviewer already rejected;
        ``seen``, candidates already scored (see :meth:`best_candidate`).
        """
        best = self.best_candidate(conn, tokens, blocks, seen)
        if best is None:
            return Link(new_shared_id(), "new"), None
        cand_system, cand_record, cand_shared, result = best
        probability = result.probability
        conflict = hard_conflict(result.gammas)
        if probability >= self.thresholds.link and not conflict:
            return Link(cand_shared, "probabilistic", probability), None
        if probability >= self.thresholds.review or (probability >= self.thresholds.link and conflict):
            if (system, record_id, cand_shared) in rejected:
                return Link(new_shared_id(), "new", probability), None
            reason = conflict or "score between the review and link thresholds"
            return Link(new_shared_id(), "review", probability), (cand_system, cand_record, cand_shared,
                                                                  result, reason)
        return Link(new_shared_id(), "new", probability), None

    def best_candidate(
        self, conn: Connection, tokens: dict[str, str], blocks: list[str], seen: _Scored | None = None,
    ) -> tuple[str, str, str, Score] | None:
        """The highest-scoring known record sharing a blocking value: (system, record id, shared id, score).

        Only blocks of at most :data:`MAX_BLOCK` records are searched (see there). Of candidates with the same
        weight, the first by (system, record id) wins, so the choice does not depend on the order the
        database returns rows in.

        ``seen``: this record's candidates as an earlier search found and scored them, when no record has
        changed shared id since (:meth:`_Batch.presearch`). Then only which records the blocks hold now is
        read (index entries alone), and only candidates new since are read and scored; the result is the
        same as searching afresh, because a record's tokens never change and its shared id changes only by
        a curation, which leaves an event.
        """
        if not blocks:
            return None
        unique = tuple(dict.fromkeys(blocks))
        if seen is None:
            scored = self.scored_candidates(conn, tokens, unique)
        else:
            # Which records the blocks hold now; those not scored before are read and scored now.
            members = _fetch(conn, _members_sql(conn.dialect.paramstyle, len(unique), MAX_BLOCK), unique)
            new = [value for member in members if member not in seen for value in member]
            scored = {member: seen[member] for member in members if member in seen}
            if new:
                scored.update(self._score(_fetch(conn, _rows_sql(conn.dialect.name, conn.dialect.paramstyle,
                                                                 len(new) // 2), new), tokens))
        best = None
        for (system, record_id), (shared_id, result) in sorted(scored.items()):
            if best is None or result.weight > best[3].weight:
                best = (system, record_id, shared_id, result)
        return best

    def scored_candidates(self, conn: Connection, tokens: dict[str, str], blocks: Sequence[str]) -> _Scored:
        """Every candidate of a record with distinct ``blocks``: (system, record id) -> (shared id, score)."""
        # One round trip, one row per candidate (at most MAX_BLOCK records a block): its shared id and its
        # comparison tokens packed into one string. The hot query of linking (once per record that reaches
        # this tier), so it goes straight to the driver's cursor: no statement compiled per call, no result
        # wrapper, and a row per candidate instead of one per token.
        rows = _fetch(conn, _candidates_sql(conn.dialect.name, conn.dialect.paramstyle, len(blocks), MAX_BLOCK),
                      blocks)
        return self._score(rows, tokens)

    def _score(self, rows: list[tuple], tokens: dict[str, str]) -> _Scored:
        """Score ``(system, record id, shared id, packed tokens)`` rows against ``tokens``; rows without tokens
        are no candidates (nothing to score)."""
        scorer = Scorer(tokens, self._parameters)
        out: _Scored = {}
        for system, record_id, shared_id, packed in rows:
            if packed:
                parts = packed.split(_SEPARATOR)  # name, hash, name, hash, ...
                out[(system, record_id)] = (shared_id, scorer(dict(zip(parts[::2], parts[1::2]))))
        return out

    def count_persons(self) -> int:
        """How many distinct shared ids the index holds (retired ids included)."""
        with self._engine.connect() as conn:
            return len(conn.execute(select(persons.c.shared_id)).all())

    def shared_id_of(self, system: str, record_id: str) -> str | None:
        """The record's current shared id, or None if the index has never seen it."""
        with self._engine.connect() as conn:
            return conn.execute(select(crosswalk.c.shared_id).where(
                crosswalk.c.system == system, crosswalk.c.record_id == record_id)).scalar_one_or_none()


_SEPARATOR = ","
"""Between the names and hashes of packed tokens: names are identifiers, hashes hex digits and spaces."""


_Scored = dict[tuple[str, str], tuple[str, Score]]
"""A record's scored candidates: (system, record id) -> (shared id, score)."""


def _fetch(conn: Connection, sql: str, values: Sequence[str]) -> list[tuple]:
    """The rows of ``sql`` with ``values``, on the driver's cursor in the connection's open transaction."""
    cursor = conn.connection.cursor()
    try:
        cursor.execute(sql, values)
        return cursor.fetchall()
    finally:
        cursor.close()


def _mark(paramstyle: str) -> str:
    return "?" if paramstyle == "qmark" else "%s"


def _sized_blocks(paramstyle: str, count: int, limit: int) -> str:
    """A FROM item: (system, record id) of each record in ``count`` blocks, but of no block over ``limit``.

    Each block is read up to ``limit + 1`` rows from the index on ``block_hash`` (so a purged block costs that
    much however large it grows), and a block that filled them is left out; records in two blocks come twice.
    """
    mark, blocks = _mark(paramstyle), person_blocks.name
    each = " UNION ALL ".join(
        f"SELECT * FROM (SELECT block_hash, system, record_id FROM {blocks} WHERE block_hash = {mark} "
        f"LIMIT {limit + 1}) AS b{n}" for n in range(count))
    return (f"(SELECT system, record_id FROM (SELECT system, record_id, count(*) OVER (PARTITION BY block_hash) "
            f"AS size FROM ({each}) AS b) AS sized WHERE size <= {limit}) AS s")


def _tokens_of(dialect: str) -> str:
    """The packed comparison tokens of crosswalk row ``x`` (record ``c``), stored any way a version stored them.

    The crosswalk's ``tokens``; for a record linked before the crosswalk held tokens (``tokens`` NULL), its
    :data:`PACKED_TOKENS` row, or for one linked before that row existed its token rows packed alike by the
    database (``key:`` tokens, which no comparison reads, left out). The fallbacks run only where needed
    (``COALESCE`` evaluates its arguments in order, as far as needed, on SQLite and PostgreSQL).
    """
    pair = f"t.token || '{_SEPARATOR}' || t.token_hash"
    pack = f"string_agg({pair}, '{_SEPARATOR}')" if dialect == "postgresql" else f"group_concat({pair}, '{_SEPARATOR}')"
    tokens = person_record_tokens.name
    return (f"COALESCE(x.tokens, "
            f"(SELECT p.token_hash FROM {tokens} AS p WHERE p.system = c.system AND p.record_id = c.record_id "
            f"AND p.token = '{PACKED_TOKENS}'), "
            f"(SELECT {pack} FROM {tokens} AS t WHERE t.system = c.system AND t.record_id = c.record_id "
            f"AND substr(t.token, 1, 4) <> 'key:'))")


@lru_cache(maxsize=None)
def _candidates_sql(dialect: str, paramstyle: str, count: int, limit: int) -> str:
    """The candidate query for ``count`` blocking values: (system, record id, shared id, packed tokens).

    Candidates are the records sharing a blocking value whose block holds at most ``limit`` records
    (:func:`_sized_blocks`), with their shared id and comparison tokens (:func:`_tokens_of`), both from the
    crosswalk row. Records lacking a crosswalk entry or tokens are no candidates (NULL or empty tokens: the
    caller skips them): they could not be joined or scored.
    """
    return (f"SELECT c.system, c.record_id, x.shared_id, {_tokens_of(dialect)} "
            f"FROM (SELECT DISTINCT system, record_id FROM {_sized_blocks(paramstyle, count, limit)}) AS c "
            f"JOIN {crosswalk.name} AS x ON x.system = c.system AND x.record_id = c.record_id")


@lru_cache(maxsize=None)
def _members_sql(paramstyle: str, count: int, limit: int) -> str:
    """Which records ``count`` blocks of at most ``limit`` records hold: (system, record id), index entries only."""
    return f"SELECT DISTINCT system, record_id FROM {_sized_blocks(paramstyle, count, limit)}"


@lru_cache(maxsize=None)
def _rows_sql(dialect: str, paramstyle: str, count: int) -> str:
    """The candidate rows (as :func:`_candidates_sql` gives them) of ``count`` records, given as system, record
    id, system, record id, ..."""
    mark = _mark(paramstyle)
    wanted = ", ".join([f"({mark}, {mark})"] * count)
    return (f"WITH c (system, record_id) AS (VALUES {wanted}) "
            f"SELECT c.system, c.record_id, x.shared_id, {_tokens_of(dialect)} "
            f"FROM c JOIN {crosswalk.name} AS x ON x.system = c.system AND x.record_id = c.record_id")


_LAST_EVENT = f"SELECT max(seq) FROM {person_events.name}"
"""The number of the last merge, split or review decision (NULL: none yet); see :meth:`_Batch.presearch`."""

_PREFETCH = {
    "crosswalk": f"SELECT record_id, shared_id FROM {crosswalk.name} WHERE system = {{mark}} AND record_id IN ({{marks}})",
    "rejected": f"SELECT record_id, candidate_shared_id FROM {person_reviews.name} WHERE system = {{mark}} "
                f"AND record_id IN ({{marks}}) AND status = 'rejected'",
    "keys": f"SELECT key_hash, shared_id FROM {person_keys.name} WHERE key_hash IN ({{marks}})",
    "blocks": f"SELECT DISTINCT block_hash FROM {person_blocks.name} WHERE block_hash IN ({{marks}})",
}
"""The prefetch's look-ups (``{mark}`` the driver's parameter mark, ``{marks}`` as many as the ``IN`` list has)."""


@lru_cache(maxsize=None)
def _prefetch_sql(query: str, paramstyle: str, count: int) -> str:
    """The :data:`_PREFETCH` query ``query`` for an ``IN`` list of ``count`` values, in the driver's mark."""
    mark = _mark(paramstyle)
    return _PREFETCH[query].format(mark=mark, marks=", ".join([mark] * count))


class _Selector:
    """The prefetch's look-ups, run on the driver's cursor in the connection's open transaction.

    A batch runs four of them, with ``IN`` lists of up to :data:`IN_LIST` values: as SQLAlchemy statements
    with expanding parameters, each execution rendered its ``IN`` list into the SQL text anew and built an
    execution context, which cost more than the query. Here the text is built once per query, driver and
    list length; the values are plain strings, which the SQLite and PostgreSQL drivers take as they are.
    """

    def __init__(self, conn: Connection) -> None:
        self._paramstyle = conn.dialect.paramstyle
        self._cursor = conn.connection.cursor()

    def __call__(self, query: str, values: Sequence[str], *head: str) -> list[tuple]:
        """The rows of ``query`` for ``values`` (any number; split into lists of at most IN_LIST)."""
        rows: list[tuple] = []
        for part in chunks(values, IN_LIST):
            self._cursor.execute(_prefetch_sql(query, self._paramstyle, len(part)), (*head, *part))
            rows += self._cursor.fetchall()
        return rows

    def close(self) -> None:
        self._cursor.close()


_WRITE_ORDER = (persons, crosswalk, person_keys, person_record_tokens, person_blocks, person_reviews)


class _Batch:
    """One :meth:`PersonIndex.link_many` call: the index as the database held it, plus what the batch added.

    Crosswalk entries and match keys of the whole batch are read up front and kept in dicts that the batch
    updates as it links, so a later record finds what an earlier one stored exactly as it would in the
    database. New rows wait in ``_rows`` until :meth:`write`; the only query that could find them, the
    candidate search, runs after a write whenever the record shares a blocking value with a waiting row.
    The blocking values already stored are read up front too, so a record sharing none with any stored or
    batch record (no candidate can exist) skips the search.
    """

    def __init__(self, index: PersonIndex, now: datetime) -> None:
        self._index = index
        self._conn: Connection | None = None  # set by run()
        self._now = now
        self._crosswalk: dict[tuple[str, str], str] = {}
        self._keys: dict[str, str] = {}  # key hash -> shared id: first writer wins
        self._hashed: dict[tuple[str, str], list[tuple[str, MatchKey]]] = {}
        self._rows: dict[Table, list[dict]] = {table: [] for table in _WRITE_ORDER}
        self._waiting_blocks: set[str] = set()
        self._blocks: dict[tuple[str, str], tuple[dict[str, str], list[str]]] = {}  # hashed tokens, block hashes
        self._stored_blocks: set[str] = set()  # blocking values in the index: stored before, or by this batch
        self._rejected: set[tuple[str, str, str]] = set()  # (system, record id, candidate shared id)
        self._seen: dict[tuple[str, str], _Scored] = {}  # per record, candidates scored before the lock
        self._events: int | None = None  # the last person_events seq when they were read
        self.waited = 0.0  # seconds run() waited for the write lock

    def prepare(self, records: Sequence[tuple[str, str, PersonIdentity]]) -> None:
        """Hash each record's match keys, comparison tokens and blocking values (a record given twice: the first).

        No database is read, so this runs before the write lock. Tokens and blocks of a record the crosswalk
        already holds go unused (it keeps its id): a batch of records seen before is rare, as the pipeline
        links only records with messages still to send.
        """
        index = self._index
        for system, record_id, person in records:
            if (system, record_id) not in self._hashed:
                self._hashed[(system, record_id)] = [(index._hash(k), k) for k in match_keys(person, system)]
                plain = person_tokens(person)
                self._blocks[(system, record_id)] = (
                    index._keyer(plain), [index._keyer.token("block", value) for value in blocking_values(plain)])

    def presearch(self, conn: Connection, records: Sequence[tuple[str, str, PersonIdentity]]) -> None:
        """Before the write lock (SQLite, no transaction open yet): search and score the candidates of each record
        that will probably need it, reading while other processes write.

        Each statement runs on its own, seeing what was committed when it ran. Under the lock :meth:`link`
        searches again but reads only which records the record's blocks hold now (index entries) and scores
        only those not scored here (records linked since, by another process or earlier in the batch). A
        candidate scored here keeps its score (a record's tokens never change) and its shared id unless a
        merge or split moved it, which writes a ``person_events`` row: so the last event's number is read
        first, and if it has changed by the time the lock is held, nothing found here is used.
        """
        if conn.dialect.name != "sqlite" or conn.connection.dbapi_connection.in_transaction:
            # PostgreSQL has no write lock to shorten; in an open transaction a search sees what it would see
            # under the lock (one snapshot), so nothing would move out of it.
            return
        self._conn = conn
        self._events = _fetch(conn, _LAST_EVENT, ())[0][0]
        self.prefetch(records)
        index = self._index
        for system, record_id, _ in records:
            record = (system, record_id)
            if record in self._crosswalk or record in self._seen:
                continue
            tokens, blocks = self._blocks[record]
            if any(h in self._keys for h, _ in self._hashed[record]) or self._stored_blocks.isdisjoint(blocks):
                continue  # linked by a key, or no candidate can exist: unless the index changes, no search
            self._seen[record] = index.scored_candidates(conn, tokens, tuple(dict.fromkeys(blocks)))
        # What the prefetch read is read again under the lock.
        self._crosswalk, self._keys, self._rejected, self._stored_blocks = {}, {}, set(), set()

    def run(self, conn: Connection, records: Sequence[tuple[str, str, PersonIdentity]]) -> list[Link]:
        """Take the write lock, read what the batch needs, link each record in order, write the new rows."""
        asked = time.perf_counter()
        begin_write(conn)
        self.waited = time.perf_counter() - asked
        self._conn = conn
        if self._seen and _fetch(conn, _LAST_EVENT, ())[0][0] != self._events:
            self._seen.clear()  # a merge or split moved records since the presearch: search afresh
        self.prefetch(records)
        links = [self.link(system, record_id, person) for system, record_id, person in records]
        self.write()
        return links

    def prefetch(self, records: Sequence[tuple[str, str, PersonIdentity]]) -> None:
        """Read the crosswalk entries, match keys, stored blocks and rejected pairs of the records, in a few queries.

        Rejected review pairs are read for the records missing from the crosswalk (only those can reach the
        probabilistic tier). A review, hence a rejection, exists only for a record already in the crosswalk,
        so none can appear during the batch for one of them: reading them up front decides as asking per
        record did.
        """
        by_system: dict[str, list[str]] = defaultdict(list)
        for system, record_id, _ in records:
            by_system[system].append(record_id)
        select_ = _Selector(self._conn)
        try:
            for system, record_ids in by_system.items():
                for record_id, shared_id in select_("crosswalk", list(dict.fromkeys(record_ids)), system):
                    self._crosswalk[(system, record_id)] = shared_id
            for system, record_ids in by_system.items():
                unlinked = [r for r in dict.fromkeys(record_ids) if (system, r) not in self._crosswalk]
                for record_id, candidate_shared_id in select_("rejected", unlinked, system):
                    self._rejected.add((system, record_id, candidate_shared_id))
            hashes = list(dict.fromkeys(h for hashed in self._hashed.values() for h, _ in hashed))
            for key_hash, shared_id in select_("keys", hashes):
                self._keys[key_hash] = shared_id
            wanted = list(dict.fromkeys(b for record, (_, blocks) in self._blocks.items()
                                        if record not in self._crosswalk for b in blocks))
            self._stored_blocks.update(block for block, in select_("blocks", wanted))
        finally:
            select_.close()

    def link(self, system: str, record_id: str, person: PersonIdentity) -> Link:
        """Link one record of the batch (prefetched); see :meth:`PersonIndex.link`."""
        known = self._crosswalk.get((system, record_id))
        if known:
            return Link(known, "crosswalk")
        index, now = self._index, self._now
        hashed = self._hashed[(system, record_id)]
        found = {h: self._keys[h] for h, _ in hashed if h in self._keys}
        tokens, blocks = self._blocks[(system, record_id)]
        link = next((Link(found[h], k.kind) for h, k in hashed if h in found), None)  # strongest first
        review = None
        if link is None:
            if self._stored_blocks.isdisjoint(blocks):
                link = Link(new_shared_id(), "new")  # no record shares a blocking value: no candidate
            else:
                if not self._waiting_blocks.isdisjoint(blocks):
                    self.write()  # the search must see the earlier records it could match
                link, review = index._probabilistic(self._conn, system, record_id, tokens, blocks, self._rejected,
                                                    self._seen.get((system, record_id)))
        rows = self._rows
        if link.rule in ("new", "review"):
            rows[persons].append({"shared_id": link.shared_id, "created_at": now})
        # The comparison tokens in the crosswalk row, packed (the candidate search reads a candidate's shared id
        # and tokens in one row, not one per token, nor from a second table).
        packed = _SEPARATOR.join(f"{name}{_SEPARATOR}{value}" for name, value in tokens.items() if value)
        rows[crosswalk].append({"system": system, "record_id": record_id, "shared_id": link.shared_id,
                                "linked_at": now, "rule": link.rule, "tokens": packed})
        self._crosswalk[(system, record_id)] = link.shared_id
        if review is not None:
            cand_system, cand_record, cand_shared, result, reason = review
            rows[person_reviews].append({
                "exchange": index.exchange, "system": system, "record_id": record_id, "shared_id": link.shared_id,
                "candidate_system": cand_system, "candidate_record_id": cand_record,
                "candidate_shared_id": cand_shared, "probability": f"{result.probability:.4f}",
                "agreement": json.dumps(result.agreement(), sort_keys=True), "reason": reason, "status": "open",
                "created_at": now, "decided_at": None, "decided_by": None,
            })
        # Keys: first writer wins (a key already stored, by us or anyone, keeps its shared id).
        for key_hash, key in hashed:
            if key_hash not in self._keys:
                self._keys[key_hash] = link.shared_id
                rows[person_keys].append({"key_hash": key_hash, "kind": key.kind, "strength": key.strength,
                                          "shared_id": link.shared_id})
        # The match keys one row each, as merges and splits read them.
        rows[person_record_tokens] += [{"system": system, "record_id": record_id, "token": f"key:{key.kind}",
                                        "token_hash": key_hash} for key_hash, key in hashed]
        unique_blocks = list(dict.fromkeys(blocks))
        rows[person_blocks] += [{"block_hash": b, "system": system, "record_id": record_id} for b in unique_blocks]
        self._waiting_blocks.update(unique_blocks)
        self._stored_blocks.update(unique_blocks)
        return link

    def write(self) -> None:
        """Insert the waiting rows, one executemany per table.

        A batch of 100 records writes some 3,000 rows, so they go to the driver's ``executemany`` as they
        are, with the column types' own conversions applied (SQLite stores date-times as SQLAlchemy formats
        them): the same rows the SQLAlchemy statements wrote, without building each row's parameters anew.
        """
        conn = self._conn
        cursor = conn.connection.cursor()
        try:
            for table in _WRITE_ORDER:
                rows = self._rows[table]
                if rows:
                    sql, conversions = _insert_of(table, tuple(rows[0]), conn.dialect)
                    for column, convert in conversions:
                        for row in rows:
                            row[column] = convert(row[column])
                    cursor.executemany(sql, rows)
                    self._rows[table] = []
        finally:
            cursor.close()
        self._waiting_blocks.clear()


_INSERTS: dict[tuple[Table, tuple[str, ...], str, str], tuple[str, tuple[tuple[str, Callable], ...]]] = {}


def _insert_of(table: Table, columns: tuple[str, ...], dialect: Dialect) -> tuple[str, tuple[tuple[str, Callable], ...]]:
    """The driver-level INSERT of ``columns`` into ``table`` (named parameters) and the conversions to apply.

    ``person_keys`` rows a concurrent writer stored first are skipped (``ON CONFLICT DO NOTHING``, on SQLite
    and PostgreSQL alike): first writer wins. Built once per table, columns and dialect.
    """
    key = (table, columns, dialect.name, dialect.paramstyle)
    if key not in _INSERTS:
        if dialect.name not in ("sqlite", "postgresql"):
            raise ValueError(f"the person index does not write to {dialect.name} databases")
        mark = ":{}" if dialect.paramstyle in ("qmark", "named") else "%({})s"
        sql = (f"INSERT INTO {table.name} ({', '.join(columns)}) "
               f"VALUES ({', '.join(mark.format(c) for c in columns)})")
        if table is person_keys:
            sql += " ON CONFLICT DO NOTHING"
        conversions = []
        for column in columns:
            convert = table.c[column].type.dialect_impl(dialect).bind_processor(dialect)
            if convert is not None:
                conversions.append((column, convert))
        _INSERTS[key] = (sql, tuple(conversions))
    return _INSERTS[key]
