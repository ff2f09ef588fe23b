"""Linking a batch in one transaction gives exactly what linking the same records one by one gives.

Both runs start from the same index state and link the same generated records (nicknames, typos, married
names, twins, fathers and sons, shared state ids, records read twice) in the same order; shared ids are
random, so they are compared by the partition they make: which records got the same id, in which order ids
first appeared. Rules, probabilities, review items and the stored keys, tokens and blocks must match too.
"""
from __future__ import annotations

import random
from datetime import datetime, timezone

import pytest
from sqlalchemy import select

from exchange.identity import synthetic
from exchange.state.db import crosswalk, open_engine, person_blocks, person_keys, person_record_tokens, person_reviews
from exchange.state.person_index import PersonIndex, Thresholds
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


def _index(path) -> PersonIndex:
    # A wide review band so the run produces review items as well as links and new persons.
    return PersonIndex(open_engine(f"sqlite:///{path}"), SECRET, exchange="county",
                       thresholds=Thresholds(link=0.99, review=0.05))


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
        blocks = sorted(tuple(r) for r in conn.execute(select(person_blocks)))
        reviews = [(r.id, r.system, r.record_id, name(r.shared_id), r.candidate_system, r.candidate_record_id,
                    name(r.candidate_shared_id), r.probability, r.agreement, r.reason, r.status)
                   for r in conn.execute(select(person_reviews).order_by(person_reviews.c.id))]
    return outcome, walk, keys, tokens, blocks, reviews


@pytest.mark.parametrize("chunk", [1, 7, 64, 1000])
def test_link_many_matches_linking_one_by_one(tmp_path, chunk):
    records = _records(420)
    seed_part, rest = records[:60], records[60:]  # both indexes start from the same linked people

    one = _index(tmp_path / "one.db")
    many = _index(tmp_path / "many.db")
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
