"""CrisisContact -> ``ccr:CrisisContactReport`` (NIEM 6.0).

The mapping table lives in ``niem_iepd/docs/crisis-contact-report.md``. The contact is an
``nc:PersonEncounter``: the incident number, time, reason and disposition are NIEM Core; who initiated
the contact, the person, the agency, whether a clinician co-responded and where the person was referred
travel in ``nx:PersonEncounterAugmentation`` because NIEM 6.0 has no components for them on an encounter.
"""
from __future__ import annotations

from lxml import etree

from transforms.mapping.common import (
    MessageHeader,
    basic_person,
    date_time,
    identification,
    message,
    organization,
)
from transforms.mapping.tree import nc, nx
from transforms.model import CrisisContact

_PREFIXES = ("ccr", "nx", "nc", "j", "structures")


def crisis_contact_report(contact: CrisisContact, shared_id: str, header: MessageHeader) -> etree._Element:
    """Build the CrisisContactReport for one police contact with the person known by ``shared_id``."""
    augmentation = nx.PersonEncounterAugmentation(basic_person(nx.EncounterSubject, contact.person, shared_id))
    if contact.agency:
        augmentation.append(organization(nx.EncounterAgency, contact.agency))
    augmentation.append(nx.ContactInitiatorCode(contact.initiated_by))
    augmentation.append(nx.CoResponderIndicator("true" if contact.co_responder else "false"))
    if contact.referral_to:
        augmentation.append(organization(nx.ReferralOrganization, contact.referral_to))
    encounter = nc.PersonEncounter(
        identification(nc.ActivityIdentification, contact.incident_number),
        date_time(nc.ActivityDate, contact.contact_at),
        nc.ActivityDisposition(nx.CrisisDispositionCode(contact.disposition)),
    )
    if contact.reason:
        encounter.append(nc.ActivityReasonText(contact.reason))
    encounter.append(augmentation)
    return message("CrisisContactReport", _PREFIXES, header, encounter)
