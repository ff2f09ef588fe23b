"""Fixed, fictional input records for the mapping tests: one case per message type, built the same each run."""
from __future__ import annotations

import os
from dataclasses import replace
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

from lxml import etree

from niem_iepd import validator

from transforms.mapping import MessageHeader, MetricsReport, Period, RosterEntry
from transforms.model import (
    Charge,
    ClinicalRecord,
    Coding,
    Condition,
    ContactPoint,
    CrisisContact,
    JailBooking,
    PersonIdentity,
    SourceRef,
)

EST = timezone(timedelta(hours=-5))
SENT = datetime(2026, 11, 24, 21, 0, tzinfo=timezone.utc)
SHARED_ID = "NXP-7QF3K2M9TB"

PERSON = PersonIdentity(
    given_name="Randall", surname="Richardson", birth_date=date(1987, 10, 2), middle_name="J", sex="M",
    race="W", state_id="FL189951",
)

BOOKING = JailBooking(
    ref=SourceRef("jms", "bookings.csv:12", "B2026-004211"),
    booking_number="B2026-004211",
    person=PERSON,
    booked_at=datetime(2026, 11, 23, 2, 14, tzinfo=EST),
    facility="Example County Detention Center",
    booking_agency="Example County Sheriff's Office",
    arresting_agency="Example City Police Department",
    charges=(Charge(1, "810.09", "Trespass on property other than structure", False),),
    updated_at=datetime(2026, 11, 23, 3, 0, tzinfo=EST),
)

RELEASED = replace(BOOKING, released_at=datetime(2026, 11, 24, 9, 30, tzinfo=EST))

CRISIS = CrisisContact(
    ref=SourceRef("rms", "incidents:2026-118822", "2026-118822"),
    incident_number="2026-118822",
    person=PERSON,
    contact_at=datetime(2026, 11, 20, 23, 5, tzinfo=EST),
    agency="Example City Police Department",
    initiated_by="911_CALL",
    reason="welfare check",
    disposition="LEFT_ON_SCENE_WITH_REFERRAL",
    updated_at=datetime(2026, 11, 21, 1, 0, tzinfo=EST),
    co_responder=True,
    referral_to="Example County Mobile Crisis Team",
)

CLINICAL = ClinicalRecord(
    ref=SourceRef("ehr", "Patient/8841", "8841"),
    patient_id="8841",
    person=PERSON,
    updated_at=datetime(2026, 11, 22, 12, 0, tzinfo=EST),
    # A diagnosis the alert must never carry: its code and display are canaries for the tests.
    conditions=(Condition(Coding("http://hl7.org/fhir/sid/icd-10-cm", "F20.9", "CANARY-DIAGNOSIS"),
                          security_labels=frozenset({"R", "PSY"})),),
    crisis_plan=True,
    advance_directive=False,
    case_manager=ContactPoint("Dana Whitfield", "Example County Behavioral Health", "555-0142", "case manager"),
    last_encounter_at=datetime(2026, 11, 18, 10, 0, tzinfo=EST),
)

PERIOD = Period(date(2026, 10, 1), date(2026, 10, 31))

ROSTER = (
    RosterEntry("NXP-7QF3K2M9TB", {"jail": 2, "police": 4, "crisis": 3}, date(2026, 10, 2), date(2026, 10, 29)),
    RosterEntry("NXP-2MZ8C4D1QA", {"police": 3, "crisis": 3}, date(2026, 10, 5), date(2026, 10, 21)),
)

METRICS = MetricsReport(
    period=PERIOD, contacts=148, people=121, diversions=37, repeat_encounters=19,
    dispositions={"EMERGENCY_ROOM": 22, "CRISIS_CENTER": 31, "ARREST": 9, "REFERRAL": 40,
                  "LEFT_ON_SCENE_WITH_REFERRAL": 30, "LEFT_ON_SCENE": 12, "OTHER": 4},
)


def header(message_type: str, recipient: str = "Example County Behavioral Health",
           sender: str = "Example County Sheriff's Office") -> MessageHeader:
    """A fixed header for ``message_type`` (deterministic message id)."""
    return MessageHeader(f"msg-{message_type}-0001", SENT, sender, recipient, message_type)


GOLDEN = Path(__file__).parent / "golden"


def serialize(message: etree._Element) -> bytes:
    """The bytes a golden file holds: indented, UTF-8, with an XML declaration."""
    tree = etree.ElementTree(etree.fromstring(etree.tostring(message)))
    etree.indent(tree, space="  ")
    return etree.tostring(tree, xml_declaration=True, encoding="UTF-8") + b"\n"


def check_golden(message: etree._Element, name: str) -> None:
    """Assert ``message`` is valid and equal to ``golden/<name>.xml``; ``UPDATE_GOLDEN=1`` rewrites the file."""
    assert validator.validate(message) == []
    path = GOLDEN / f"{name}.xml"
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.write_bytes(serialize(message))
    assert path.is_file(), f"no golden file {path.name}: run with UPDATE_GOLDEN=1 once and review it"
    assert serialize(message).decode() == path.read_text(), f"{path.name} changed: review, then UPDATE_GOLDEN=1"
