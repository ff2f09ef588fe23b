"""Building blocks shared by every message type: message metadata, identifications, dates, persons."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timezone

from lxml import etree

from niem_iepd.ns import IEPD_VERSION, nc, nx, j

SHARED_ID_CATEGORY = "niem-exchange shared person identifier"


@dataclass(frozen=True, slots=True)
class MessageHeader:
    """What every message says about itself; see ``nx:MessageMetadata`` in the IEPD."""

    message_id: str
    sent_at: datetime
    sender: str
    recipient: str
    message_type: str


def identification(tag, value: str) -> etree._Element:
    """``<tag><nc:IdentificationID>value</nc:IdentificationID></tag>``."""
    return tag(nc.IdentificationID(value))


def date_time(tag, value: datetime) -> etree._Element:
    """An ``nc:DateType`` element holding an ``nc:DateTime``; naive datetimes are refused upstream."""
    return tag(nc.DateTime(value.isoformat()))


def a_date(tag, value: date) -> etree._Element:
    """An ``nc:DateType`` element holding an ``nc:Date``."""
    return tag(nc.Date(value.isoformat()))


def organization(tag, name: str) -> etree._Element:
    """An ``nc:OrganizationType`` element with just its name."""
    return tag(nc.OrganizationName(name))


def message_metadata(header: MessageHeader) -> etree._Element:
    """The ``nx:MessageMetadata`` block that opens every message."""
    sent = header.sent_at.astimezone(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    return nx.MessageMetadata(
        identification(nx.MessageIdentification, header.message_id),
        nx.MessageSentDateTime(nc.DateTime(sent)),
        organization(nx.MessageSenderOrganization, header.sender),
        organization(nx.MessageRecipientOrganization, header.recipient),
        nx.MessageCategoryText(header.message_type),
        nx.IEPDVersionText(IEPD_VERSION),
    )


def shared_person_identification(shared_id: str) -> etree._Element:
    """The shared unique person identifier, carried as ``nc:PersonOtherIdentification``."""
    return nc.PersonOtherIdentification(
        nc.IdentificationID(shared_id),
        nc.IdentificationCategoryDescriptionText(SHARED_ID_CATEGORY),
    )


__all__ = ["MessageHeader", "a_date", "date_time", "identification", "j", "message_metadata", "nc", "nx",
           "organization", "shared_person_identification"]
