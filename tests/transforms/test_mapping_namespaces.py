"""Every message type over inputs that switch each optional part on and off: one namespace declaration each,
all on the root, with the registry's prefixes in the builder's order, and children in the schema's order.

The golden files pin one input per message type; these cases reach the branches they do not (no middle
name, no charges, a partial case manager...), where a namespace declared on the wrong element or a
child appended out of order would otherwise go unnoticed until a recipient's validator refused it.
"""
from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import date, datetime

import pytest
from lxml import etree
from mapping_cases import BOOKING, CLINICAL, CRISIS, METRICS, PERIOD, PERSON, RELEASED, ROSTER, SHARED_ID, header

from niem_iepd import ns, validator
from transforms.mapping import (
    BUILDERS,
    MetricsReport,
    RosterEntry,
    familiar_faces_roster,
    program_metrics,
)
from transforms.model import Charge, ContactPoint

#: The root's declarations, in order: what the builders have always written (see the golden files).
ROOT_PREFIXES = {
    "BookingNotification": ["bn", "nx", "nc", "j"],
    "ReleaseNotification": ["rn", "nx", "nc", "j"],
    "CrisisContactReport": ["ccr", "nx", "nc", "j"],
    "BehavioralHealthAlert": ["bha", "nx", "nc"],
    "FamiliarFacesRoster": ["ffr", "nx", "nc"],
    "ProgramMetrics": ["pm", "nx", "nc"],
}


def _people():
    """The fixture person with each optional identity part on or off (race "Z" has no NIEM code)."""
    for middle, suffix, birth, race, sid in itertools.product(("J", ""), ("", "JR"), (PERSON.birth_date, None),
                                                              ("W", "Z"), ("FL189951", "")):
        yield replace(PERSON, middle_name=middle, name_suffix=suffix, birth_date=birth, race=race, state_id=sid)


CHARGES = ((), BOOKING.charges, (Charge(1, "810.09", "Trespass", False), Charge(2, "893.13", "Possession", True, 2)))


def _cases():
    for n, person in enumerate(_people()):
        charges = CHARGES[n % 3]
        arresting = "" if n % 4 == 0 else BOOKING.arresting_agency
        booking = replace(BOOKING, person=person, charges=charges, arresting_agency=arresting)
        yield "BookingNotification", booking
        yield "ReleaseNotification", replace(booking, released_at=RELEASED.released_at)
        yield "CrisisContactReport", replace(CRISIS, person=person, agency=arresting, reason="" if n % 2 else "x",
                                             referral_to="" if n % 5 else "Mobile Crisis", co_responder=n % 2 == 0)
    contacts = (None, ContactPoint("Dana Whitfield"), ContactPoint("", "Example County BH", "", "case manager"),
                ContactPoint("", "", "555-0142"))
    for contact, last, plan in itertools.product(contacts, (CLINICAL.last_encounter_at, None), (True, False)):
        yield "BehavioralHealthAlert", replace(CLINICAL, case_manager=contact, last_encounter_at=last,
                                               crisis_plan=plan, advance_directive=not plan)


def _aggregates():
    yield "FamiliarFacesRoster", familiar_faces_roster(ROSTER, PERIOD, header("FamiliarFacesRoster"))
    yield "FamiliarFacesRoster", familiar_faces_roster((), PERIOD, header("FamiliarFacesRoster"))
    one = RosterEntry("NXP-1", {"police": 1}, date(2026, 10, 3), datetime(2026, 10, 4, 8, 0))
    yield "FamiliarFacesRoster", familiar_faces_roster((one,), PERIOD, header("FamiliarFacesRoster"))
    yield "ProgramMetrics", program_metrics(METRICS, header("ProgramMetrics"))
    yield "ProgramMetrics", program_metrics(MetricsReport(PERIOD, 0, 0, 0, 0), header("ProgramMetrics"))


def _messages():
    for message_type, record in _cases():
        yield message_type, BUILDERS[message_type].build(record, SHARED_ID, header(message_type))
    yield from _aggregates()


MESSAGES = list(_messages())


def test_the_cases_reach_every_message_type():
    assert {message_type for message_type, _ in MESSAGES} == set(ROOT_PREFIXES)


@pytest.mark.parametrize(("message_type", "message"), MESSAGES)
def test_namespaces_are_declared_once_on_the_root_with_the_registry_prefixes(message_type, message):
    text = etree.tostring(message, encoding="unicode")
    start_tag = text[:text.index(">")]
    assert text.count("xmlns") == start_tag.count("xmlns"), "a namespace is declared below the root"
    assert list(message.nsmap) == ROOT_PREFIXES[message_type]
    for element in message.iter():
        assert ns.PREFIXES.get(element.prefix) == etree.QName(element).namespace, element.tag


@pytest.mark.parametrize(("message_type", "message"), MESSAGES)
def test_children_come_in_schema_order(message_type, message):
    assert validator.validate(message) == []


def test_release_goes_between_the_facility_and_the_subject():
    message = BUILDERS["ReleaseNotification"].build(RELEASED, SHARED_ID, header("ReleaseNotification"))
    booking = message.find(ns.clark("j:Booking"))
    assert [etree.QName(child).localname for child in booking][-3:] == [
        "BookingDetentionFacility", "BookingRelease", "BookingSubject"]
