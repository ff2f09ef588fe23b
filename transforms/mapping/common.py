"""Building blocks shared by every message type: message and privacy metadata, identifications, dates, persons."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timezone

from lxml import etree

from niem_iepd import ns
from niem_iepd.ns import IEPD_VERSION
from transforms.mapping.tree import Node, build, j, nc, nx
from transforms.model import PersonIdentity

SHARED_ID_CATEGORY = "niem-exchange shared person identifier"


@dataclass(frozen=True, slots=True)
class MessageHeader:
    """What every message says about itself; see ``nx:MessageMetadata`` in the IEPD."""

    message_id: str
    sent_at: datetime
    sender: str
    recipient: str
    message_type: str


@dataclass(frozen=True, slots=True)
class Period:
    """A reporting period, first and last day included (``nx:ReportingPeriod``)."""

    start: date
    end: date


def reporting_period(period: Period) -> Node:
    """``nx:ReportingPeriod`` with its nc:StartDate and nc:EndDate."""
    return nx.ReportingPeriod(a_date(nc.StartDate, calendar_day(period.start)),
                              a_date(nc.EndDate, calendar_day(period.end)))


def calendar_day(value: date) -> date:
    """The calendar day of a date or datetime (a datetime would otherwise print its time in nc:Date)."""
    return value.date() if isinstance(value, datetime) else value


def identification(tag, value: str) -> Node:
    """``<tag><nc:IdentificationID>value</nc:IdentificationID></tag>``."""
    return tag(nc.IdentificationID(value))


def date_time(tag, value: datetime) -> Node:
    """An ``nc:DateType`` element holding an ``nc:DateTime``; naive datetimes are refused upstream."""
    return tag(nc.DateTime(value.isoformat()))


def a_date(tag, value: date) -> Node:
    """An ``nc:DateType`` element holding an ``nc:Date``."""
    return tag(nc.Date(value.isoformat()))


def organization(tag, name: str) -> Node:
    """An ``nc:OrganizationType`` element with just its name."""
    return tag(nc.OrganizationName(name))


def message_metadata(header: MessageHeader) -> Node:
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


#: Confidentiality codes nx:ConfidentialityCode accepts (HL7 v3 Confidentiality: U, L, M, N, R, V).
CONFIDENTIALITY_CODES = ("U", "L", "M", "N", "R", "V")


def privacy_metadata(confidentiality: str, part2: bool, notice: str, consent_id: str) -> etree._Element:
    """The ``nx:PrivacyMetadata`` block a recipient's profile asks for; it goes right after nx:MessageMetadata.

    ``confidentiality`` is an HL7 confidentiality code (``N`` normal, ``R`` restricted, ``V`` very
    restricted...); ``part2`` sets the 42 CFR Part 2 label; ``notice`` is the redisclosure notice text and
    ``consent_id`` the consent the disclosure rests on (each left out when empty). The IEPD's Schematron
    rejects a Part 2 label without a notice and a consent (rules NX-PRIV-1, NX-PRIV-2).
    """
    if confidentiality not in CONFIDENTIALITY_CODES:
        raise ValueError(f"confidentiality must be one of {', '.join(CONFIDENTIALITY_CODES)}")
    # A standalone element, inserted into a built message later: made with the registry's real-element
    # factories (ns.nx, ns.nc), not described as nodes like the messages themselves.
    element = ns.nx.PrivacyMetadata(
        ns.nx.ConfidentialityCode(confidentiality),
        ns.nx.Part2LabelIndicator("true" if part2 else "false"),
    )
    if notice:
        element.append(ns.nx.RedisclosureNoticeText(notice))
    if consent_id:
        element.append(ns.nx.ConsentIdentification(ns.nc.IdentificationID(consent_id)))
    return element


def insert_privacy_metadata(message: etree._Element, privacy: etree._Element) -> etree._Element:
    """Put ``privacy`` (from :func:`privacy_metadata`) into ``message`` right after nx:MessageMetadata.

    Replaces a privacy block already there, so a profile applied twice leaves one. Returns ``message``.
    """
    for old in message.findall(ns.clark("nx:PrivacyMetadata")):
        message.remove(old)
    metadata = message.find(ns.clark("nx:MessageMetadata"))
    if metadata is None:
        raise ValueError("message has no nx:MessageMetadata")
    metadata.addnext(privacy)
    return message


def message(message_type: str, prefixes: tuple[str, ...], header: MessageHeader, *body: Node) -> etree._Element:
    """The message ``message_type``: its root declaring ``prefixes``, its nx:MessageMetadata, then ``body``.

    The tree is built once, top-down (see :mod:`transforms.mapping.tree`); declarations of prefixes no
    element uses are then dropped, so a message declares exactly the namespaces it uses, all on its root.
    """
    root = build(ns.MESSAGE_ROOTS[message_type], {prefix: ns.PREFIXES[prefix] for prefix in prefixes},
                 message_metadata(header), *body)
    etree.cleanup_namespaces(root)
    return root


def basic_person(tag, person: PersonIdentity, shared_id: str, *, sex: bool = True) -> Node:
    """A ``nc:PersonType`` element: birth date, name, the shared identifier and (optionally) sex.

    The minimum that lets a recipient recognise the person; no address, SSN or race.
    """
    element = tag()
    if person.birth_date:
        element.append(a_date(nc.PersonBirthDate, person.birth_date))
    name = nc.PersonName(nc.PersonGivenName(person.given_name))
    if person.middle_name:
        name.append(nc.PersonMiddleName(person.middle_name))
    name.append(nc.PersonSurName(person.surname))
    if person.name_suffix:
        name.append(nc.PersonNameSuffixText(person.name_suffix))
    element.extend((name, shared_person_identification(shared_id)))
    if sex:
        element.append(j.PersonSexCode(person.sex))
    return element


def shared_person_identification(shared_id: str) -> Node:
    """The shared unique person identifier, carried as ``nc:PersonOtherIdentification``."""
    return nc.PersonOtherIdentification(
        nc.IdentificationID(shared_id),
        nc.IdentificationCategoryDescriptionText(SHARED_ID_CATEGORY),
    )


__all__ = ["CONFIDENTIALITY_CODES", "MessageHeader", "Period", "a_date", "basic_person", "calendar_day",
           "date_time", "reporting_period",
           "identification", "insert_privacy_metadata", "j", "message", "message_metadata", "nc", "nx",
           "organization", "privacy_metadata", "shared_person_identification"]
