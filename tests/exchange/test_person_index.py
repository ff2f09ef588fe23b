"""The person index links by strong identifiers first, mints opaque ids, and stores no PHI."""
from __future__ import annotations

from datetime import date, datetime, timezone

from exchange.state import person_index
from exchange.state.db import open_engine
from exchange.state.person_index import PersonIndex
from transforms.model import PersonIdentity

NOW = datetime(2026, 11, 24, tzinfo=timezone.utc)
SECRET = b"s" * 32


def _index(tmp_path, name="index.db"):
    return PersonIndex(open_engine(f"sqlite:///{tmp_path / name}"), SECRET)


def _link(index, record_id, person, system="jail"):
    return index.link(system, record_id, person, NOW)


def test_same_state_id_links_despite_a_different_spelling(tmp_path):
    index = _index(tmp_path)
    a = _link(index, "B1", PersonIdentity("Robert", "Smith", date(1980, 1, 2), state_id="FL100200"))
    b = _link(index, "B2", PersonIdentity("Bob", "Smyth", date(1980, 1, 2), state_id="fl-100200"))
    assert a.shared_id == b.shared_id and a.rule == "new" and b.rule == "sid"


def test_name_and_birth_date_link_when_no_strong_id(tmp_path):
    index = _index(tmp_path)
    a = _link(index, "B1", PersonIdentity("Ana", "O'Neil", date(1990, 5, 6)))
    b = _link(index, "B2", PersonIdentity("ANA", "ONeil", date(1990, 5, 6)))
    c = _link(index, "B3", PersonIdentity("Ana", "O'Neil", date(1975, 8, 20)))  # same name, another person
    assert a.shared_id == b.shared_id != c.shared_id
    assert b.rule == "name-dob" and c.rule in ("new", "review")


def test_placeholder_ssn_does_not_link_strangers(tmp_path):
    index = _index(tmp_path)
    a = _link(index, "B1", PersonIdentity("Ann", "Lee", date(1970, 1, 1), ssn="999999999"))
    b = _link(index, "B2", PersonIdentity("Tom", "Ray", date(1971, 2, 2), ssn="999999999"))
    assert a.shared_id != b.shared_id


def test_rereading_a_record_keeps_its_id(tmp_path):
    index = _index(tmp_path)
    person = PersonIdentity("Ann", "Lee", date(1970, 1, 1))
    assert _link(index, "B1", person).shared_id == _link(index, "B1", person).shared_id
    assert index.count_persons() == 1


def test_shared_ids_are_not_derived_from_person_data(tmp_path):
    person = PersonIdentity("Ann", "Lee", date(1970, 1, 1), ssn="229955642")
    first = _link(_index(tmp_path, "a.db"), "B1", person).shared_id
    second = _link(_index(tmp_path, "b.db"), "B1", person).shared_id
    assert first != second and first.startswith("NXP-")


def test_index_file_holds_no_identifier_or_name(tmp_path):
    index = _index(tmp_path)
    _link(index, "B1", PersonIdentity("Zebediah", "Quuxworth", date(1970, 1, 1), ssn="229955642",
                                      state_id="FL189951"))
    raw = (tmp_path / "index.db").read_bytes()
    wal = tmp_path / "index.db-wal"
    raw += wal.read_bytes() if wal.exists() else b""
    for value in (b"Zebediah", b"QUUXWORTH", b"229955642", b"FL189951", b"1970-01-01"):
        assert value not in raw


def test_a_block_grown_too_common_decides_nothing_yet_a_match_links_through_its_other_blocks(tmp_path, monkeypatch):
    """A birth date many records carry (a placeholder such as 1900-01-01) says nothing about who is who: once
    its block holds more than MAX_BLOCK records, a new record is not compared with them through it."""
    monkeypatch.setattr(person_index, "MAX_BLOCK", 3)
    index = _index(tmp_path)
    placeholder = date(1900, 1, 1)
    smith = _link(index, "B1", PersonIdentity("John", "Smith", placeholder, sex="M", postal_code="33602"))
    for n, (given, surname) in enumerate([("James", "Okafor"), ("Joseph", "Nguyen"), ("Jack", "Lindqvist")]):
        _link(index, f"B{n + 2}", PersonIdentity(given, surname, placeholder, sex="M"))
    # Shares only the placeholder and an initial with the four (block of four > 3): nobody to score.
    stranger = _link(index, "B9", PersonIdentity("Jerome", "Adeyemi", placeholder, sex="M"))
    assert (stranger.rule, stranger.probability) == ("new", None)
    # Smith with a typo shares small blocks with B1 (surname sound with the date, with the given name): found.
    typo = _link(index, "B10", PersonIdentity("John", "Smyth", placeholder, sex="M", postal_code="33602"))
    assert typo.probability is not None and typo.probability > 0.9
    assert typo.rule == "probabilistic" and typo.shared_id == smith.shared_id

    monkeypatch.setattr(person_index, "MAX_BLOCK", 200)  # a stranger alike, the block not yet too common
    again = _link(index, "B11", PersonIdentity("Jules", "Adewale", placeholder, sex="M"))
    assert again.probability is not None
