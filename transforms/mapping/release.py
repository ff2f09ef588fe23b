"""JailBooking with ``released_at`` -> ``rn:ReleaseNotification`` (NIEM 6.0).

The mapping table lives in ``niem_iepd/docs/release-notification.md``. The release is a
``j:BookingRelease`` (``nc:ReleaseType``) inside the booking it ends, so the recipient can match it to
the BookingNotification it received; the charges are left out (the release is what is new).
"""
from __future__ import annotations

from lxml import etree

from transforms.mapping.booking import booking_element
from transforms.mapping.common import MessageHeader, date_time, message
from transforms.mapping.tree import j, nc
from transforms.model import JailBooking, RecordError

_PREFIXES = ("rn", "nx", "nc", "j", "structures")


def release_notification(booking: JailBooking, shared_id: str, header: MessageHeader) -> etree._Element:
    """Build the ReleaseNotification for a booking that has ended; RecordError if it has no release time."""
    if booking.released_at is None:
        raise RecordError(str(booking.ref), "released_at", "booking has no release date and time")
    if booking.released_at < booking.booked_at:
        raise RecordError(str(booking.ref), "released_at", "release is earlier than the booking")
    release = j.BookingRelease(date_time(nc.ActivityDate, booking.released_at))
    return message("ReleaseNotification", _PREFIXES, header,
                   booking_element(booking, shared_id, with_charges=False, release=release))
