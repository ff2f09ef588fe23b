"""Errors carry where and why, never the record's values; and they survive pickling between processes."""
from __future__ import annotations

import pickle

import pytest

from transforms.model import (
    ConfigError,
    MessageInvalidError,
    PermanentError,
    RecordError,
    RetryableError,
    SecurityError,
)

CANARY = "Zebediah-1987-10-02"


@pytest.mark.parametrize(
    "error",
    [
        RecordError("bookings.csv#row=17", "dob", "is not a valid date (expected YYYY-MM-DD)"),
        MessageInvalidError("jail:bookings.csv#row=3", "/bn:BookingNotification/j:Booking", "[value] invalid"),
        RetryableError("deliver 1234", "ConnectionResetError"),
        PermanentError("deliver 1234", "recipient refused the message"),
        ConfigError("exchange.yaml", "recipients.0.certificate", "file not found", "fix the path"),
        SecurityError("message 1234", "signature does not verify"),
    ],
)
def test_error_text_names_place_not_value_and_pickles(error):
    assert CANARY not in str(error)
    clone = pickle.loads(pickle.dumps(error))
    assert type(clone) is type(error) and str(clone) == str(error)


def test_record_error_says_record_field_and_reason():
    text = str(RecordError("bookings.csv#row=17", "charges[2].statute", "is empty"))
    assert text == "bookings.csv#row=17: field 'charges[2].statute': is empty"


def test_person_identity_repr_hides_phi():
    from datetime import date

    from transforms.model import PersonIdentity

    person = PersonIdentity("Zebediah", "Quux", date(1987, 10, 2), ssn="229955642", state_id="FL189951")
    text = repr(person)
    for value in ("Zebediah", "Quux", "1987", "229955642", "FL189951"):
        assert value not in text
