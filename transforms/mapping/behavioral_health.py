"""ClinicalRecord -> ``bha:BehavioralHealthAlert`` (NIEM 6.0), the minimum-necessary need flag.

The mapping table lives in ``niem_iepd/docs/behavioral-health-alert.md``. What leaves: who the person is
(name, birth date, shared ID), that a behavioral-health need exists, whether a crisis plan and a
psychiatric advance directive are on file, and a case manager to call. What never leaves through this
module: ``conditions`` (diagnoses, codes, their labels) and anything else clinical; the IEPD's Schematron
rule NX-BHA-1 refuses a BehavioralHealthAlert carrying a diagnosis element.
"""
from __future__ import annotations

from lxml import etree

from transforms.mapping.common import (
    MessageHeader,
    a_date,
    basic_person,
    message,
    organization,
)
from transforms.mapping.tree import Node, nc, nx
from transforms.model import ClinicalRecord, ContactPoint
from transforms.redaction import derive_need_flag

_PREFIXES = ("bha", "nx", "nc", "j", "structures")


def behavioral_health_alert(record: ClinicalRecord, shared_id: str, header: MessageHeader) -> etree._Element:
    """Build the BehavioralHealthAlert for the patient of ``record`` known by ``shared_id``.

    The need flag comes from :func:`transforms.redaction.derive_need_flag` without Part 2 consent (an
    active behavioral condition that is not substance use, or a crisis plan; nothing from a Part 2
    program): the safe default. The disclosure step sets it again when a Part 2 consent is on file.
    """
    need = derive_need_flag(record, part2_consent=False).need
    element = nx.BehavioralHealthNeed(
        basic_person(nx.AlertSubject, record.person, shared_id, sex=False),
        nx.BehavioralHealthNeedIndicator(_boolean(need)),
        nx.CrisisPlanOnFileIndicator(_boolean(record.crisis_plan)),
        nx.AdvanceDirectiveOnFileIndicator(_boolean(record.advance_directive)),
    )
    if record.case_manager is not None:
        element.append(_point_of_contact(record.case_manager))
    if record.last_encounter_at is not None:
        element.append(a_date(nx.LastEncounterDate, record.last_encounter_at.date()))
    return message("BehavioralHealthAlert", _PREFIXES, header, element)


def _boolean(value: bool) -> str:
    return "true" if value else "false"


def _point_of_contact(contact: ContactPoint) -> Node:
    element = nx.CaseManagerContact()
    if contact.name:
        element.append(nc.PersonName(nc.PersonFullName(contact.name)))
    if contact.organization:
        element.append(organization(nx.ContactOrganization, contact.organization))
    if contact.phone:
        element.append(nc.TelephoneNumberFullID(contact.phone))
    if contact.role:
        element.append(nx.ContactRoleText(contact.role))
    return element
