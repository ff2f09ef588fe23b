"""JailBooking -> ``bn:BookingNotification`` (NIEM 6.0).

The mapping table (source field -> NIEM path) lives in ``niem_iepd/docs/booking-notification.md``; this
module is its executable form. Order of children follows the sequences of the NIEM types.
"""
from __future__ import annotations

from lxml import etree

from transforms.mapping.common import (
    MessageHeader,
    a_date,
    date_time,
    identification,
    message,
    organization,
    shared_person_identification,
)
from transforms.mapping.tree import Node, j, nc
from transforms.model import Charge, JailBooking, PersonIdentity

#: NCIC race letters (as jail systems export them) -> the values of j:PersonRaceCodeSimpleType.
RACE_CODES = {
    "W": "WHITE",
    "B": "BLACK",
    "A": "ASIAN",
    "I": "NATIVE_AMERICAN",
    "P": "NATIVE_HAWAIIAN-OTHER_PACIFIC_ISLANDER",
    "U": "UNKNOWN",
}

_PREFIXES = ("bn", "nx", "nc", "j", "structures")


def booking_notification(booking: JailBooking, shared_id: str, header: MessageHeader) -> etree._Element:
    """Build the BookingNotification for one booking of the person known by ``shared_id``."""
    return message("BookingNotification", _PREFIXES, header, booking_element(booking, shared_id))


def booking_element(booking: JailBooking, shared_id: str, *, with_charges: bool = True,
                    release: Node | None = None) -> Node:
    """The ``j:Booking`` of one booking (shared with ReleaseNotification, which leaves the charges out).

    ``release``, a ``j:BookingRelease``, goes right before the subject, where the j:BookingType sequence has it.
    """
    element = j.Booking(
        identification(nc.ActivityIdentification, booking.booking_number),
        date_time(nc.ActivityDate, booking.booked_at),
        organization(j.BookingAgency, booking.booking_agency),
        identification(j.BookingAgencyRecordIdentification, booking.booking_number),
        j.BookingDetentionFacility(nc.FacilityName(booking.facility)),
    )
    if release is not None:
        element.append(release)
    element.append(j.BookingSubject(_person(booking.person, shared_id)))
    if with_charges and (booking.charges or booking.arresting_agency):
        arrest = j.Arrest()
        if booking.arresting_agency:
            arrest.append(organization(j.ArrestAgency, booking.arresting_agency))
        arrest.extend(_charge(charge) for charge in booking.charges)
        element.append(arrest)
    return element


def _person(person: PersonIdentity, shared_id: str) -> Node:
    name = nc.PersonName(nc.PersonGivenName(person.given_name))
    if person.middle_name:
        name.append(nc.PersonMiddleName(person.middle_name))
    name.append(nc.PersonSurName(person.surname))
    if person.name_suffix:
        name.append(nc.PersonNameSuffixText(person.name_suffix))
    element = nc.EntityPerson()
    if person.birth_date:
        element.append(a_date(nc.PersonBirthDate, person.birth_date))
    element.extend((name, shared_person_identification(shared_id)))
    if race := RACE_CODES.get(person.race):
        element.append(j.PersonRaceCode(race))
    element.append(j.PersonSexCode(person.sex))
    if person.state_id:
        element.append(
            j.PersonAugmentation(identification(j.PersonStateFingerprintIdentification, person.state_id))
        )
    return element


def _charge(charge: Charge) -> Node:
    return j.ArrestCharge(
        j.ChargeCountQuantity(str(charge.counts)),
        j.ChargeDescriptionText(charge.description),
        j.ChargeFelonyIndicator("true" if charge.felony else "false"),
        j.ChargeSequenceID(str(charge.sequence)),
        j.ChargeStatute(identification(j.StatuteCodeIdentification, charge.statute)),
    )
