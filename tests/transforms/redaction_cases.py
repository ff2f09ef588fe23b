"""Hypothesis strategies and helpers shared by the redaction tests: generated bookings and clinical records."""
from __future__ import annotations

import string
from datetime import date, datetime, timedelta, timezone

from hypothesis import strategies as st

from transforms.model import (
    Charge,
    ClinicalRecord,
    Coding,
    Condition,
    ConsentRecord,
    ContactPoint,
    JailBooking,
    PersonIdentity,
    SourceRef,
)

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=timezone.utc)
_letters = st.text(alphabet=string.ascii_letters + "'-", min_size=1, max_size=16).filter(lambda s: s.strip("'-"))
_digits = st.text(alphabet=string.digits, min_size=4, max_size=12)
_days = st.dates(min_value=date(1930, 1, 1), max_value=date(2008, 12, 31))


@st.composite
def persons(draw) -> PersonIdentity:
    """A person as a jail or an EHR knows them."""
    return PersonIdentity(
        given_name=draw(_letters), surname=draw(_letters), birth_date=draw(st.none() | _days),
        middle_name=draw(st.just("") | _letters), name_suffix=draw(st.sampled_from(["", "JR", "III"])),
        sex=draw(st.sampled_from(["F", "M", "U", "X"])), race=draw(st.sampled_from(["", "W", "B", "A", "I", "P", "U"])),
        state_id=draw(st.just("") | _digits.map(lambda d: "FL" + d)),
    )


@st.composite
def bookings(draw) -> JailBooking:
    """A jail booking with 0-3 charges."""
    booked = NOW - timedelta(minutes=draw(st.integers(1, 500_000)))
    charges = tuple(
        Charge(sequence=i + 1, statute=draw(st.sampled_from(["790.01(1)", "810.08", "893.13(6)(a)"])),
               description=draw(_letters), felony=draw(st.booleans()), counts=draw(st.integers(1, 4)))
        for i in range(draw(st.integers(0, 3)))
    )
    number = draw(_digits)
    return JailBooking(
        ref=SourceRef("jail", f"bookings.csv#row={number}", number), booking_number=number,
        person=draw(persons()), booked_at=booked, facility=draw(_letters), booking_agency=draw(_letters),
        arresting_agency=draw(st.just("") | _letters), charges=charges, updated_at=booked,
    )


_bh_codes = st.sampled_from(["F10.20", "F11.20", "F32.9", "F20.9", "F43.10", "I10", "E11.9"])
_labels = st.frozensets(st.sampled_from(["R", "42CFRPart2", "ETH", "PSY", "OPIOIDUD"]), max_size=2)


@st.composite
def conditions(draw) -> Condition:
    """A coded condition, sometimes labelled (42CFRPart2, ETH, PSY ...)."""
    return Condition(Coding("http://hl7.org/fhir/sid/icd-10-cm", draw(_bh_codes)), active=draw(st.booleans()),
                     security_labels=draw(_labels))


@st.composite
def clinical_records(draw) -> ClinicalRecord:
    """What an EHR knows about a patient: conditions, plan, case manager; sometimes a Part 2 program's."""
    manager = draw(st.none() | st.builds(ContactPoint, name=_letters, organization=_letters,
                                         phone=st.just("555-0100"), role=st.just("case manager")))
    patient = draw(_digits)
    return ClinicalRecord(
        ref=SourceRef("ehr", f"Patient/{patient}", patient), patient_id=f"Patient/{patient}",
        person=draw(persons()), updated_at=NOW, conditions=tuple(draw(st.lists(conditions(), max_size=3))),
        crisis_plan=draw(st.booleans()), advance_directive=draw(st.booleans()), case_manager=manager,
        last_encounter_at=draw(st.none() | st.just(NOW - timedelta(days=3))),
        part2_program=draw(st.booleans()),
    )


def consent(**changes) -> ConsentRecord:
    """A consent valid today for recipient ``pd`` (class law-enforcement), Part 2 authorized; override by kw."""
    values = dict(
        ref=SourceRef("consent-csv", "consents.csv#row=2", "C-1"), consent_id="C-1", patient_id="Patient/1",
        discloser="Example County Behavioral Health", recipients=("class:law-enforcement",), purpose="PUBHLTH",
        information=("behavioral-health need flag", "case-manager contact"), status="active",
        signed_on=date(2026, 1, 1), expires_on=date(2027, 1, 1), updated_at=NOW, part2=True,
    )
    values.update(changes)
    return ConsentRecord(**values)
