"""Record -> NIEM XML mapping, one module per message type; names come from ``niem_iepd.ns``.

``BUILDERS`` is the registry the pipeline uses: message type -> the record type it is built from, the
function that builds it, and the categories of information it discloses (for the ledger and redaction).
The two aggregate message types are not built from one record and are plain functions instead:
``familiar_faces_roster(entries, period, header)`` and ``program_metrics(report, header)``.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from lxml import etree

from transforms.mapping.behavioral_health import behavioral_health_alert
from transforms.mapping.booking import booking_notification
from transforms.mapping.common import MessageHeader, Period, privacy_metadata
from transforms.mapping.crisis import crisis_contact_report
from transforms.mapping.metrics import MetricsReport, program_metrics
from transforms.mapping.release import release_notification
from transforms.mapping.roster import RosterEntry, familiar_faces_roster
from transforms.model import ClinicalRecord, CrisisContact, JailBooking


@dataclass(frozen=True, slots=True)
class MessageBuilder:
    """How one message type is made from one record."""

    message_type: str
    record_type: type
    build: Callable[[object, str, MessageHeader], etree._Element]
    categories: tuple[str, ...]


BUILDERS: dict[str, MessageBuilder] = {
    "BookingNotification": MessageBuilder(
        "BookingNotification", JailBooking, booking_notification,
        ("identity", "demographics", "booking", "charges"),
    ),
    # Built from a JailBooking whose released_at is set (RecordError otherwise).
    "ReleaseNotification": MessageBuilder(
        "ReleaseNotification", JailBooking, release_notification,
        ("identity", "demographics", "booking", "release"),
    ),
    "CrisisContactReport": MessageBuilder(
        "CrisisContactReport", CrisisContact, crisis_contact_report,
        ("identity", "demographics", "crisis-contact"),
    ),
    # Never a diagnosis: the need flag, plan / directive on file, and a case manager to call.
    "BehavioralHealthAlert": MessageBuilder(
        "BehavioralHealthAlert", ClinicalRecord, behavioral_health_alert,
        ("identity", "behavioral-health-need", "point-of-contact"),
    ),
}

__all__ = ["BUILDERS", "MessageBuilder", "MessageHeader", "MetricsReport", "Period", "RosterEntry",
           "behavioral_health_alert", "booking_notification", "crisis_contact_report", "familiar_faces_roster",
           "privacy_metadata", "program_metrics", "release_notification"]
