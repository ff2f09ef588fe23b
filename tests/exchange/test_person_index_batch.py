"""Linking a batch in one transaction gives exactly what linking the same records one by one gives.

Both runs start from the same index state and link the same generated records (nicknames, typos, married
names, twins, fathers and sons, shared state ids, records read twice) in the same order; shared ids are
random, so they are compared by the partition they make: which records got the same id, in which order ids
first appeared. Rules, probabilities, review items and the stored keys, tokens and blocks must match too.
"""
from __future__ import annotations

import random
import threading
from collections import Counter
from datetime import datetime, timezone

import pytest
from sqlalchemy import delete, select, update

from exchange.identity import synthetic
from exchange.state.db import (
    crosswalk,
    open_engine,
    person_blocks,
    person_events,
    person_keys,
    person_record_tokens,
    person_reviews,
    persons,
)
from exchange.state import person_index
from exchange.state.person_index import PACKED_TOKENS, PersonIndex, Thresholds
from transforms.identity_comparisons import blocking_values, score
from transforms.identity_normalise import person_tokens
from transforms.model import PersonIdentity

NOW = datetime(2026, 11, 24, 12, tzinfo=timezone.utc)
SECRET = b"b" * 32


def _records(count: int) -> list[tuple[str, str, PersonIdentity]]:
    """Generated records from two systems; a third of people carry a state id, some records come twice."""
    rng = random.Random(11)
    out = []
    for n, p in enumerate(synthetic.records(count, seed=5)):
        system = "jail" if n % 3 else "ehr"
        state_id = f"FL{p.person_id:07d}" if p.person_id % 3 == 0 and system == "jail" else ""
        person = PersonIdentity(p.given_name, p.surname, p.birth_date, middle_name=p.middle_name,
                                name_suffix=p.name_suffix, sex=p.sex or "U", ssn=p.ssn, state_id=state_id,
                                street_address=p.street_address, postal_code=p.postal_code, phone=p.phone)
        out.append((system, f"R{n}", person))
        if rng.random() < 0.05:  # read again (a re-run, a re-sent row): the crosswalk answers
            out.append((system, f"R{n}", person))
    return out


def _index(path, presearch: bool | None = None) -> PersonIndex:
    # A wide review band so the run produces review items as well as links and new persons.
    return PersonIndex(open_engine(f"sqlite:///{path}"), SECRET, exchange="county",
                       thresholds=Thresholds(link=0.99, review=0.05), presearch=presearch)


def _canonical(links, records, index: PersonIndex):
    """Links and the index's tables with every shared id replaced by its order of first appearance."""
    label: dict[str, str] = {}

    def name(shared_id: str) -> str:
        return label.setdefault(shared_id, f"P{len(label)}")

    outcome = [(system, record_id, name(link.shared_id), link.rule,
                None if link.probability is None else round(link.probability, 9))
               for (system, record_id, _), link in zip(records, links)]
    with index._engine.connect() as conn:
        walk = sorted((r.system, r.record_id, name(r.shared_id), r.rule) for r in conn.execute(select(crosswalk)))
        keys = sorted((r.key_hash, r.kind, name(r.shared_id)) for r in conn.execute(select(person_keys)))
        tokens = sorted(tuple(r) for r in conn.execute(select(person_record_tokens)))
        tokens += sorted(tuple(r) for r in conn.execute(select(crosswalk.c.system, crosswalk.c.record_id,
                                                                  crosswalk.c.tokens)))
        blocks = sorted(tuple(r) for r in conn.execute(select(person_blocks)))
        reviews = [(r.id, r.system, r.record_id, name(r.shared_id), r.candidate_system, r.candidate_record_id,
                    name(r.candidate_shared_id), r.probability, r.agreement, r.reason, r.status)
                   for r in conn.execute(select(person_reviews).order_by(person_reviews.c.id))]
    return outcome, walk, keys, tokens, blocks, reviews


@pytest.mark.parametrize(("chunk", "presearch"), [(1, False), (7, False), (64, False), (1000, False),
                                                   (1, True), (7, True), (64, True), (1000, True)])
def test_link_many_matches_linking_one_by_one(tmp_path, chunk, presearch):
    """Also when each batch searches before taking the lock (as it does while other processes contend)."""
    records = _records(420)
    seed_part, rest = records[:60], records[60:]  # both indexes start from the same linked people

    one = _index(tmp_path / "one.db", presearch=False)
    many = _index(tmp_path / "many.db", presearch=presearch)
    for index in (one, many):
        for system, record_id, person in seed_part:
            index.link(system, record_id, person, NOW)

    singles = [one.link(system, record_id, person, NOW) for system, record_id, person in rest]
    batched = []
    for start in range(0, len(rest), chunk):
        batched += many.link_many(rest[start:start + chunk], NOW)

    expected = _canonical(singles, rest, one)
    got = _canonical(batched, rest, many)
    assert got == expected
    rules = {link.rule for link in singles}
    assert {"new", "probabilistic", "review", "crosswalk", "sid"} <= rules, rules  # every path was exercised


def test_link_many_joins_the_callers_transaction(tmp_path):
    """With ``conn`` nothing is stored until the caller commits; a rollback leaves the index untouched."""
    index = _index(tmp_path / "index.db")
    records = _records(30)
    with pytest.raises(RuntimeError):
        with index._engine.begin() as conn:
            index.link_many(records, NOW, conn=conn)
            raise RuntimeError("the caller's later step failed")
    assert index.count_persons() == 0
    with index._engine.begin() as conn:
        links = index.link_many(records, NOW, conn=conn)
    assert index.count_persons() == len({link.shared_id for link in links})
    again = index.link_many(records, NOW)
    assert [link.shared_id for link in again] == [link.shared_id for link in links]
    assert {link.rule for link in again} == {"crosswalk"}


def test_link_many_on_postgresql_matches_one_by_one_on_sqlite(tmp_path):
    """The same code on PostgreSQL (ON CONFLICT, the joined candidate query): the same people, rules, reviews."""
    from tests.support.postgres import available, running_postgres

    if not available():
        pytest.skip("PostgreSQL server binaries not installed")
    records = _records(300)
    one = _index(tmp_path / "one.db")
    singles = [one.link(system, record_id, person, NOW) for system, record_id, person in records]
    with running_postgres() as url:
        many = PersonIndex(open_engine(url), SECRET, exchange="county", thresholds=one.thresholds)
        batched = []
        for start in range(0, len(records), 50):
            batched += many.link_many(records[start:start + 50], NOW)
        got = _canonical(batched, records, many)
        many._engine.dispose()
    assert got == _canonical(singles, records, one)


def _whole_index(conn):
    """Every record's blocking values, shared id and tokens, read the plain way (tokens stored any of the ways
    this and earlier versions stored them)."""
    blocks: dict[tuple[str, str], set[str]] = {}
    for r in conn.execute(select(person_blocks)):
        blocks.setdefault((r.system, r.record_id), set()).add(r.block_hash)
    shared = {(r.system, r.record_id): r.shared_id for r in conn.execute(select(crosswalk))}
    stored: dict[tuple[str, str], dict[str, str]] = {}
    for r in conn.execute(select(crosswalk)):
        if r.tokens:  # name,hash,name,hash,...
            parts = r.tokens.split(",")
            stored[(r.system, r.record_id)] = dict(zip(parts[::2], parts[1::2]))
    for r in conn.execute(select(person_record_tokens)):
        tokens_of = stored.setdefault((r.system, r.record_id), {})
        if r.token == PACKED_TOKENS:  # name,hash,name,hash,... (records linked by the previous version)
            parts = r.token_hash.split(",")
            tokens_of.update(zip(parts[::2], parts[1::2]))
        elif not r.token.startswith("key:"):  # a comparison token a row (records linked by earlier versions)
            tokens_of[r.token] = r.token_hash
    return blocks, shared, {k: v for k, v in stored.items() if v}


def _reference_best(index: PersonIndex, whole, tokens, blocks, max_block: int):
    """The best candidate found the slow, obvious way: score every record of the index sharing a block of at
    most ``max_block`` records."""
    blocks_of, shared, stored = whole
    sizes = Counter(b for record_blocks in blocks_of.values() for b in record_blocks)
    searched = {b for b in blocks if sizes[b] <= max_block}
    best = None
    for key in sorted(k for k, b in blocks_of.items() if not b.isdisjoint(searched)):
        if key in shared and key in stored:
            result = score(tokens, stored[key], index._parameters)
            if best is None or result.weight > best[3].weight:
                best = (*key, shared[key], result)
    return best


def _check_candidate_search(index: PersonIndex, probes) -> None:
    """``best_candidate`` (one packed row per candidate, Scorer) equals the reference on every probe."""
    several, purged = 0, 0
    max_block = person_index.MAX_BLOCK
    with index._engine.connect() as conn:
        whole = _whole_index(conn)
        for _, _, person in probes:
            tokens = index.hashed_tokens(person)
            blocks = [index._mac(f"block:{value}") for value in blocking_values(person_tokens(person))]
            got = index.best_candidate(conn, tokens, blocks)
            expected = _reference_best(index, whole, tokens, blocks, max_block)
            assert (got is None) == (expected is None)
            if got is not None:
                assert got[:3] == expected[:3]
                assert (got[3].weight, dict(got[3].gammas)) == (expected[3].weight, dict(expected[3].gammas))
            several += sum(not b.isdisjoint(blocks) for b in whole[0].values()) >= 2
            purged += expected != _reference_best(index, whole, tokens, blocks, len(whole[0]))
    assert several >= len(probes) // 4, several  # the searches had candidates to choose between
    if max_block < 5:  # the small limit left out blocks that decided a search
        assert purged >= len(probes) // 10, purged


@pytest.mark.parametrize("max_block", [person_index.MAX_BLOCK, 1])
def test_candidate_search_equals_scoring_the_whole_index(tmp_path, monkeypatch, max_block):
    """Also when blocks are left out for their size: with a limit of one record, every shared block is."""
    monkeypatch.setattr(person_index, "MAX_BLOCK", max_block)
    records = _records(400)
    index = _index(tmp_path / "index.db")
    index.link_many(records[:320], NOW)
    _check_candidate_search(index, records[320:])


def _store_as_earlier_versions(engine) -> int:
    """Move the comparison tokens of two records in three out of the crosswalk, as earlier versions stored them:
    one ``packed`` row of person_record_tokens (the version before), or one row per token (the one before that).

    Records linked without tokens get NULL too: those versions stored nothing for them."""
    with engine.begin() as conn:
        walk = conn.execute(select(crosswalk.c.system, crosswalk.c.record_id, crosswalk.c.tokens)
                            .order_by(crosswalk.c.system, crosswalk.c.record_id)).all()
        moved = 0
        for n, r in enumerate(walk):
            if n % 3 == 2:
                continue
            conn.execute(update(crosswalk).where(crosswalk.c.system == r.system, crosswalk.c.record_id == r.record_id)
                         .values(tokens=None))
            moved += 1
            if not r.tokens:
                continue
            if n % 3 == 0:
                conn.execute(person_record_tokens.insert(), [
                    {"system": r.system, "record_id": r.record_id, "token": PACKED_TOKENS, "token_hash": r.tokens}])
            else:
                parts = r.tokens.split(",")
                conn.execute(person_record_tokens.insert(), [
                    {"system": r.system, "record_id": r.record_id, "token": name, "token_hash": value}
                    for name, value in zip(parts[::2], parts[1::2])])
    return moved


_CROSSWALK_BEFORE_TOKENS = (
    "CREATE TABLE crosswalk (system VARCHAR(64) NOT NULL, record_id VARCHAR(128) NOT NULL, "
    "shared_id VARCHAR(32) NOT NULL, linked_at DATETIME NOT NULL, rule VARCHAR(32) NOT NULL, moves INTEGER, "
    "PRIMARY KEY (system, record_id))")
"""The crosswalk as versions before its ``tokens`` column created it (SQLite)."""


def test_an_index_written_by_an_earlier_version_links_as_before(tmp_path):
    """A database whose crosswalk was created without the tokens column, holding records whose tokens are
    stored as earlier versions did (a packed row; one row per token) gets the column on opening; those
    records are found and scored the same: the search equals the reference, and linking on such an index
    equals linking on one written by this version."""
    import sqlite3

    records = _records(420)
    with sqlite3.connect(tmp_path / "mixed.db") as old:
        old.execute(_CROSSWALK_BEFORE_TOKENS)
    old.close()
    packed, mixed = _index(tmp_path / "packed.db"), _index(tmp_path / "mixed.db")
    with mixed._engine.connect() as conn:
        assert "tokens" in {c for c, in conn.exec_driver_sql("SELECT name FROM pragma_table_info('crosswalk')")}
    for index in (packed, mixed):
        for system, record_id, person in records[:330]:
            index.link(system, record_id, person, NOW)
    assert _store_as_earlier_versions(mixed._engine) >= 200
    _check_candidate_search(mixed, records[330:])
    singles = [packed.link(system, record_id, person, NOW) for system, record_id, person in records[330:]]
    batched = mixed.link_many(records[330:], NOW)
    got, expected = _canonical(batched, records[330:], mixed), _canonical(singles, records[330:], packed)
    assert got[:3] + got[4:] == expected[:3] + expected[4:]  # all but the token rows, stored two ways here


@pytest.fixture
def pg_index(postgres_state_url):
    """A person index on this module's PostgreSQL server, its person tables emptied first."""
    engine = open_engine(postgres_state_url)
    with engine.begin() as conn:  # review ids restart too: the comparisons include them
        conn.exec_driver_sql("TRUNCATE " + ", ".join(t.name for t in (
            person_reviews, person_events, person_blocks, person_record_tokens, person_keys, crosswalk, persons))
            + " RESTART IDENTITY")
    yield PersonIndex(engine, SECRET, exchange="county", thresholds=Thresholds(link=0.99, review=0.05))
    engine.dispose()


def test_candidate_search_on_postgresql_equals_scoring_the_whole_index(pg_index):
    records = _records(400)
    pg_index.link_many(records[:320], NOW)
    _check_candidate_search(pg_index, records[320:])
    assert _store_as_earlier_versions(pg_index._engine) >= 200  # and with tokens stored the earlier ways
    _check_candidate_search(pg_index, records[320:])


def test_one_batch_on_postgresql_whose_records_match_each_other(tmp_path, pg_index):
    """One transaction holding nicknames, typos, twins and repeats of the same people: each record's search
    must see the rows the batch wrote before it, as linking one by one on SQLite does."""
    records = _records(240)
    one = _index(tmp_path / "one.db")
    singles = [one.link(system, record_id, person, NOW) for system, record_id, person in records]
    batched = pg_index.link_many(records, NOW)
    assert _canonical(batched, records, pg_index) == _canonical(singles, records, one)
    assert {"probabilistic", "review"} <= {link.rule for link in batched}


def _relink_rejected(index: PersonIndex, batch: bool) -> list[tuple[str, float | None]]:
    """Link 200 records, reject every review and purge its record from the index (its crosswalk entry,
    match keys, tokens and blocks), link those records again; their (rule, probability)."""
    records = _records(200)
    index.link_many(records, NOW)
    with index._engine.begin() as conn:
        reviewed = [(r.id, r.system, r.record_id) for r in conn.execute(select(person_reviews))]
        assert len(reviewed) >= 3
        for review_id, system, record_id in reviewed:
            conn.execute(update(person_reviews).where(person_reviews.c.id == review_id).values(status="rejected"))
            conn.execute(delete(person_keys).where(person_keys.c.key_hash.in_(
                select(person_record_tokens.c.token_hash).where(
                    person_record_tokens.c.system == system, person_record_tokens.c.record_id == record_id,
                    person_record_tokens.c.token.like("key:%")))))
            for table in (crosswalk, person_record_tokens, person_blocks):
                conn.execute(delete(table).where(table.c.system == system, table.c.record_id == record_id))
    again = [r for r in records if any(r[:2] == (s, i) for _, s, i in reviewed)]
    links = index.link_many(again, NOW) if batch else [index.link(*r, NOW) for r in again]
    # Scored into the review band, but the pair was rejected: a new person, no second item (which the
    # unique (record, candidate) constraint would refuse anyway).
    assert sum(link.rule == "new" and link.probability >= index.thresholds.review for link in links) >= 3
    with index._engine.connect() as conn:
        assert len(conn.execute(select(person_reviews)).all()) == len(reviewed)
    return [(link.rule, link.probability) for link in links]


def test_a_rejected_pair_is_not_queued_again_by_link_many(tmp_path):
    """A record whose review was rejected, linked again after an operator purged it from the index, is not
    queued against the same person again: batched as one by one."""
    assert _relink_rejected(_index(tmp_path / "many.db"), True) == _relink_rejected(_index(tmp_path / "one.db"), False)


def test_a_rejected_pair_is_not_queued_again_on_postgresql(tmp_path, pg_index):
    """The same on PostgreSQL (the batch reads rejected pairs and crosswalk entries with its own SQL)."""
    assert _relink_rejected(pg_index, True) == _relink_rejected(_index(tmp_path / "one.db"), False)


def _while_presearched(monkeypatch, batch_records, meanwhile):
    """Run ``meanwhile()`` once, right after the presearch of the batch ``batch_records`` (before its lock)."""
    presearch = person_index._Batch.presearch

    def then_meanwhile(self, conn, records):
        presearch(self, conn, records)
        if records is batch_records:
            assert self._seen, "the presearch scored candidates"
            meanwhile()

    monkeypatch.setattr(person_index._Batch, "presearch", then_meanwhile)


def test_records_another_process_links_after_the_presearch_are_candidates(tmp_path, monkeypatch):
    """A batch searches before taking the write lock; records linked between that search and the lock (by a
    second process) must be found as if the batch had searched after them."""
    records = _records(600)
    first, middle, last = records[:300], records[300:420], records[420:]
    expected = _index(tmp_path / "expected.db", presearch=False)
    expected.link_many(first, NOW)
    expected_links = expected.link_many(middle, NOW) + expected.link_many(last, NOW)

    index = _index(tmp_path / "index.db", presearch=True)
    first_links = index.link_many(first, NOW)
    other = PersonIndex(open_engine(f"sqlite:///{tmp_path / 'index.db'}"), SECRET, exchange="county",
                        thresholds=index.thresholds)
    middle_links: list = []
    _while_presearched(monkeypatch, last, lambda: middle_links.extend(other.link_many(middle, NOW)))
    last_links = index.link_many(last, NOW)

    assert _canonical(middle_links + last_links, middle + last, index) == \
        _canonical(expected_links, middle + last, expected)
    linked_meanwhile = {link.shared_id for link in middle_links} - {link.shared_id for link in first_links}
    assert any(link.shared_id in linked_meanwhile and link.rule in ("probabilistic", "review")
               for link in last_links)  # some of the batch were decided by records the presearch did not see


def test_a_merge_after_the_presearch_is_seen_by_the_batch(tmp_path, monkeypatch):
    """A merge between a batch's presearch and its lock moves candidates to another shared id: the batch must
    link to the id they have now, not the one the presearch read."""
    from exchange.state.person_curation import merge

    records = _records(500)
    first, last = records[:350], records[350:]
    probe = _index(tmp_path / "probe.db")
    probe_first = probe.link_many(first, NOW)
    probe_last = probe.link_many(last, NOW)
    # A record of the batch that links probabilistically to a person of `first`; that person's record, and
    # another person's record to merge it into.
    found = next(n for n, link in enumerate(probe_last) if link.rule == "probabilistic"
                 and link.shared_id in {f.shared_id for f in probe_first})
    retired = next(n for n, f in enumerate(probe_first) if f.shared_id == probe_last[found].shared_id)
    kept = next(n for n, f in enumerate(probe_first) if f.shared_id != probe_last[found].shared_id)

    def merge_in(index, links):
        merge(index._engine, links[kept].shared_id, links[retired].shared_id, "tester", "test", NOW)

    expected = _index(tmp_path / "expected.db", presearch=False)
    expected_first = expected.link_many(first, NOW)
    merge_in(expected, expected_first)
    expected_last = expected.link_many(last, NOW)

    index = _index(tmp_path / "index.db", presearch=True)
    index_first = index.link_many(first, NOW)
    _while_presearched(monkeypatch, last, lambda: merge_in(index, index_first))
    index_last = index.link_many(last, NOW)

    assert index_last[found].shared_id == index_first[kept].shared_id != index_first[retired].shared_id
    assert _canonical(index_first + index_last, first + last, index) == \
        _canonical(expected_first + expected_last, first + last, expected)


def test_a_batch_searches_before_the_lock_only_while_others_make_it_wait(tmp_path, monkeypatch):
    """By default the presearch runs after a batch had to wait for the write lock, and stops after one that
    did not: alone, it would cost a second read of each search and shorten no one's wait."""
    # Waits of 0.1 s and more count here (the holder below keeps the lock 0.2 s), so a batch that a busy machine
    # merely descheduled for a millisecond during BEGIN does not count as waiting for another process.
    monkeypatch.setattr(person_index, "CONTENDED", 0.1)
    presearched = []
    presearch = person_index._Batch.presearch
    monkeypatch.setattr(person_index._Batch, "presearch",
                        lambda self, conn, records: presearched.append(len(records)) or presearch(self, conn, records))
    records = _records(300)
    index = _index(tmp_path / "index.db")
    index.link_many(records[:100], NOW)
    index.link_many(records[100:150], NOW)
    assert presearched == []  # nobody else writing

    holder = index._engine.connect()
    holder.exec_driver_sql("BEGIN IMMEDIATE")  # another process holds the lock for a while
    threading.Timer(0.2, holder.commit).start()
    index.link_many(records[150:200], NOW)  # waits ~0.2 s for the lock
    index.link_many(records[200:250], NOW)  # so this one searches first
    index.link_many(records[250:], NOW)  # the previous one took the lock at once: not this one
    holder.close()
    assert presearched == [50]
