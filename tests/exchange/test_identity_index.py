"""The two-tier person index on real SQLite: the hard cases, thresholds, the review queue and the trail."""
from __future__ import annotations

import logging
from datetime import date, datetime, timezone

import pytest

from exchange.state import person_curation as curation
from exchange.state.db import open_engine
from exchange.state.person_index import PersonIndex, Thresholds
from transforms.model import PersonIdentity

NOW = datetime(2026, 11, 24, 12, tzinfo=timezone.utc)
SECRET = b"k" * 32


@pytest.fixture()
def engine(tmp_path):
    """A fresh SQLite state database per test."""
    return open_engine(f"sqlite:///{tmp_path / 'state.db'}")


def _index(engine, **kwargs) -> PersonIndex:
    return PersonIndex(engine, SECRET, exchange="county", **kwargs)


def test_same_person_from_jail_and_ehr_gets_one_id(engine):
    index = _index(engine)
    jail = index.link("jail", "BK-1", PersonIdentity(
        "Robert", "Whitfield", date(1984, 3, 9), middle_name="Lee", sex="M",
        street_address="12 North Main Street Apt 4", postal_code="32801", phone="(407) 555-0142"), NOW)
    ehr = index.link("ehr", "MRN-77", PersonIdentity(
        "Bob", "Whitfield", date(1984, 3, 9), sex="M", street_address="12 N Main St",
        postal_code="32801-1234", phone="+1 407 555 0142"), NOW)
    assert jail.rule == "new" and ehr.rule == "probabilistic"
    assert ehr.shared_id == jail.shared_id and ehr.probability > 0.99


def test_twins_with_same_surname_and_birth_date_stay_two_people(engine):
    index = _index(engine)
    home = {"street_address": "40 Oak Avenue", "postal_code": "32801", "phone": "4075550100", "sex": "F"}
    first = index.link("jail", "BK-1", PersonIdentity("Grace", "Okafor", date(1999, 7, 1), **home), NOW)
    twin = index.link("ehr", "MRN-1", PersonIdentity("Hope", "Okafor", date(1999, 7, 1), **home), NOW)
    assert twin.shared_id != first.shared_id
    queued = curation.reviews(engine, "county")
    # a person decides: the pair is queued with the reason, never auto-linked
    assert [(q.record, q.candidate, q.reason) for q in queued] == [
        ("ehr:MRN-1", "jail:BK-1", "same birth date, different given names")]


def test_father_and_son_sharing_a_name_stay_two_people(engine):
    index = _index(engine)
    home = {"street_address": "9 Pine Rd", "postal_code": "60601", "phone": "3125550199", "sex": "M"}
    father = index.link("jail", "BK-1", PersonIdentity("James", "Carter", date(1961, 2, 14), **home), NOW)
    son = index.link("rms", "P-9", PersonIdentity("James", "Carter", date(1988, 10, 30), name_suffix="Jr",
                                                  **home), NOW)
    son_again = index.link("ehr", "MRN-5", PersonIdentity("Jim", "Carter", date(1988, 10, 30), name_suffix="JR",
                                                          **home), NOW)
    assert son.shared_id != father.shared_id
    assert son_again.shared_id == son.shared_id  # nickname + same birth date + suffix: the son, not the father


def test_typo_in_birth_date_still_links(engine):
    index = _index(engine)
    a = index.link("jail", "BK-1", PersonIdentity("Maria", "Gonzalez", date(1979, 4, 11), sex="F",
                                                  postal_code="78701"), NOW)
    swapped = index.link("ehr", "MRN-1", PersonIdentity("Maria", "Gonzalez", date(1979, 11, 4), sex="F"), NOW)
    one_digit = index.link("rms", "P-1", PersonIdentity("Maria", "Gonzalez", date(1979, 4, 17), sex="F",
                                                        postal_code="78701"), NOW)
    assert swapped.shared_id == a.shared_id == one_digit.shared_id
    assert {swapped.rule, one_digit.rule} == {"probabilistic"}


def test_married_name_change_links_on_birth_date_and_phone(engine):
    index = _index(engine)
    before = index.link("jail", "BK-1", PersonIdentity("Tanisha", "Brooks", date(1990, 12, 2), sex="F",
                                                       phone="2025550123"), NOW)
    after = index.link("ehr", "MRN-1", PersonIdentity("Tanisha", "Brooks-Reed", date(1990, 12, 2), sex="F"), NOW)
    renamed = index.link("rms", "P-1", PersonIdentity("Tanisha", "Reed", date(1990, 12, 2), sex="F",
                                                      phone="202-555-0123"), NOW)
    assert after.shared_id == before.shared_id == renamed.shared_id


def test_married_name_with_nothing_else_goes_to_review(engine):
    index = _index(engine)
    before = index.link("jail", "BK-1", PersonIdentity("Tanisha", "Brooks", date(1990, 12, 2)), NOW)
    after = index.link("ehr", "MRN-1", PersonIdentity("Tanisha", "Reed", date(1990, 12, 2)), NOW)
    assert after.rule == "review" and after.shared_id != before.shared_id
    [item] = curation.reviews(engine)
    assert item.agreement["surname"] == "different" and item.agreement["birth_date"] == "exact"


def test_thresholds_are_per_exchange(engine):
    person = PersonIdentity("Tanisha", "Brooks", date(1990, 12, 2))
    strict = _index(engine, thresholds=Thresholds(link=0.999999, review=0.99))
    lenient = _index(engine, thresholds=Thresholds(link=0.4, review=0.3))
    first = strict.link("jail", "BK-1", person, NOW)
    assert lenient.link("ehr", "MRN-1", PersonIdentity("Tanisha", "Reed", date(1990, 12, 2)), NOW).shared_id \
        == first.shared_id
    assert strict.link("rms", "P-1", PersonIdentity("Tanisha", "Moore", date(1990, 12, 2)), NOW).rule == "new"
    with pytest.raises(ValueError):
        Thresholds(link=0.5, review=0.9)


def test_id_never_changes_without_merge_or_split_and_changes_leave_a_trail(engine):
    index = _index(engine)
    a = index.link("jail", "BK-1", PersonIdentity("Tanisha", "Brooks", date(1990, 12, 2)), NOW)
    b = index.link("ehr", "MRN-1", PersonIdentity("Tanisha", "Reed", date(1990, 12, 2)), NOW)
    assert b.rule == "review"
    # more records and re-reads do not move anyone
    for _ in range(2):
        assert index.link("ehr", "MRN-1", PersonIdentity("Tanisha", "Reed", date(1990, 12, 2)), NOW).shared_id \
            == b.shared_id
    index.link("jail", "BK-2", PersonIdentity("Tanisha", "Brooks", date(1990, 12, 2)), NOW)
    assert index.shared_id_of("jail", "BK-1") == a.shared_id and curation.history(engine, a.shared_id) == []

    [item] = curation.reviews(engine)
    moved = curation.accept(engine, item.id, "reviewer@county", NOW)
    assert [(m.system, m.record_id, m.old, m.new) for m in moved] == [("ehr", "MRN-1", b.shared_id, a.shared_id)]
    assert index.shared_id_of("ehr", "MRN-1") == a.shared_id
    assert curation.current_id(engine, b.shared_id) == a.shared_id
    [event] = curation.history(engine, b.shared_id)
    assert (event.kind, event.record, event.actor) == ("accept", "ehr:MRN-1", "reviewer@county")
    assert curation.reviews(engine) == []

    # a split moves the chosen records to a new id and says so
    new_id, moved = curation.split(engine, a.shared_id, [("ehr", "MRN-1")], "reviewer@county",
                                   "two people after all", NOW)
    assert index.shared_id_of("ehr", "MRN-1") == new_id != a.shared_id
    assert [m.new for m in moved] == [new_id]
    assert [e.kind for e in curation.history(engine, a.shared_id)] == ["accept", "split"]
    with pytest.raises(ValueError):
        curation.split(engine, a.shared_id, [("jail", "BK-1"), ("jail", "BK-2")], "x", "all of them", NOW)


def test_rejected_pair_is_not_asked_again_and_merge_is_explicit(engine):
    index = _index(engine)
    a = index.link("jail", "BK-1", PersonIdentity("Grace", "Okafor", date(1999, 7, 1)), NOW)
    b = index.link("ehr", "MRN-1", PersonIdentity("Hope", "Okafor", date(1999, 7, 1)), NOW)
    [item] = curation.reviews(engine)
    curation.reject(engine, item.id, "reviewer", NOW)
    with pytest.raises(curation.UnknownReviewError):
        curation.accept(engine, item.id, "reviewer", NOW)
    assert curation.reviews(engine) == [] and [r.status for r in curation.reviews(engine, status="all")] == [
        "rejected"]
    moved = curation.merge(engine, a.shared_id, b.shared_id, "supervisor", "birth certificate checked", NOW)
    assert [m.record_id for m in moved] == ["MRN-1"] and index.shared_id_of("ehr", "MRN-1") == a.shared_id
    # the retired id's strong keys now find the kept person
    assert index.link("ehr", "MRN-1", PersonIdentity("Hope", "Okafor", date(1999, 7, 1)), NOW).shared_id \
        == a.shared_id


def test_no_phi_in_logs_review_queue_or_database(engine, tmp_path, caplog):
    canaries = ("Zebulon", "Quillfeather", "19770305", "1977-03-05", "4075559876", "229955642", "Wobblestone")
    caplog.set_level(logging.DEBUG)
    index = _index(engine)
    index.link("jail", "BK-1", PersonIdentity("Zebulon", "Quillfeather", date(1977, 3, 5), ssn="229-95-5642",
                                              phone="407 555 9876", street_address="1 Wobblestone Way"), NOW)
    index.link("ehr", "MRN-1", PersonIdentity("Zebulon", "Quillfeatherly", date(1977, 3, 5)), NOW)
    queue = repr(curation.reviews(engine, status="all"))
    raw = (tmp_path / "state.db").read_bytes()
    wal = tmp_path / "state.db-wal"
    raw += wal.read_bytes() if wal.exists() else b""
    for value in canaries:
        assert value.lower() not in caplog.text.lower()
        assert value.lower() not in queue.lower()
        assert value.upper().encode() not in raw and value.encode() not in raw


def test_review_item_holds_references_probability_and_levels_only(engine):
    index = _index(engine)
    index.link("jail", "BK-1", PersonIdentity("Grace", "Okafor", date(1999, 7, 1), sex="F"), NOW)
    index.link("ehr", "MRN-1", PersonIdentity("Hope", "Okafor", date(1999, 7, 1), sex="F"), NOW)
    [item] = curation.reviews(engine)
    assert item.record == "ehr:MRN-1" and item.candidate == "jail:BK-1" and 0 < item.probability <= 1
    assert item.agreement == {"given_name": "different", "surname": "exact", "birth_date": "exact",
                              "sex": "exact", "suffix": "unknown", "street": "unknown", "postcode": "unknown",
                              "city": "unknown", "phone": "unknown", "ssn": "unknown"}
