"""ReleaseNotification from a released JailBooking: golden file, release inside the booking, bad input refused."""
from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from mapping_cases import BOOKING, RELEASED, SHARED_ID, check_golden, header

from niem_iepd import ns, validator
from transforms.mapping import BUILDERS, release_notification
from transforms.model import RecordError


def test_release_matches_golden_and_validates():
    check_golden(release_notification(RELEASED, SHARED_ID, header("ReleaseNotification")), "release-notification")


def test_release_date_and_booking_id_are_where_a_recipient_looks():
    message = BUILDERS["ReleaseNotification"].build(RELEASED, SHARED_ID, header("ReleaseNotification"))
    released = message.findtext(ns.clark("j:Booking/j:BookingRelease/nc:ActivityDate/nc:DateTime"))
    assert released == "2026-11-24T09:30:00-05:00"
    assert message.findtext(ns.clark("j:Booking/nc:ActivityIdentification/nc:IdentificationID")) == "B2026-004211"
    assert message.find(ns.clark("j:Booking/j:Arrest")) is None  # charges stay with the booking notice
    person_id = "j:Booking/j:BookingSubject/nc:EntityPerson/nc:PersonOtherIdentification/nc:IdentificationID"
    assert message.findtext(ns.clark(person_id)) == SHARED_ID


def test_booking_without_release_is_a_record_error_naming_the_field():
    with pytest.raises(RecordError) as caught:
        release_notification(BOOKING, SHARED_ID, header("ReleaseNotification"))
    assert caught.value.field == "released_at"


def test_release_before_booking_is_refused_by_mapping_and_by_the_rules():
    early = replace(RELEASED, released_at=RELEASED.booked_at - timedelta(hours=1))
    with pytest.raises(RecordError):
        release_notification(early, SHARED_ID, header("ReleaseNotification"))
    message = release_notification(RELEASED, SHARED_ID, header("ReleaseNotification"))
    message.find(ns.clark("j:Booking/j:BookingRelease/nc:ActivityDate/nc:DateTime")).text = "2026-11-22T00:00:00Z"
    assert [issue.rule for issue in validator.validate(message)] == ["NX-REL-1"]
