"""transforms.model.jail: one booking row and its charges -> JailBooking, or a RecordError naming the field."""
from __future__ import annotations

import pickle
from datetime import date, datetime, timedelta, timezone

import pytest

from transforms.model import Charge, JailBooking, RecordError, SourceRef
from transforms.model.jail import booking_from_row

TODAY = date(2026, 11, 24)
REF = SourceRef("jail", "bookings.csv#row=7", "2026000123")
CDT = timezone(timedelta(hours=-5))


def good_row(**changes: str) -> dict[str, str]:
    row = {
        "internal_person_id": " 700123 ", "inmate_number": "EC0000123", "first_name": "  mary ",
        "middle_name": "k", "last_name": "de  la Cruz", "suffix": "jr.", "dob": "1984-06-30", "sex": "Female",
        "race": "black", "fingerprint_id": "fl 1234 5678", "ssn": "900-12-3456", "booking_number": " 2026000123 ",
        "jail_entry_date": "2026-10-03T02:14:00-05:00", "jail_exit_date": "2026-10-04T11:00:00-05:00",
        "facility": "Example County  Main Jail", "booking_agency": "Example County Sheriff's Office",
        "arresting_agency": "Exampleton Police Department", "updated_date": "2026-10-04T11:05:00-05:00",
    }
    row.update(changes)
    return row


def good_charges(*changes: dict[str, str]) -> list[dict[str, str]]:
    charges = [
        {"booking_number": "2026000123", "charge_sequence": "2", "statute": "843.02",
         "description": "Resisting an officer without violence", "severity": "M", "counts": "1"},
        {"booking_number": "2026000123", "charge_sequence": "1", "statute": "893.13(6)(a)",
         "description": " Possession of a controlled substance ", "severity": "felony", "counts": ""},
        {"booking_number": "2026000123", "charge_sequence": "3", "statute": "784.03(1)(a)",
         "description": "Battery", "severity": "m", "counts": "2"},
    ]
    for i, change in enumerate(changes):
        charges[i].update(change)
    return charges


def parse(row=None, charges=None, **options) -> JailBooking:
    return booking_from_row(good_row() if row is None else row, good_charges() if charges is None else charges,
                            REF, today=TODAY, **options)


def rejected(row=None, charges=None, **options) -> RecordError:
    with pytest.raises(RecordError) as caught:
        parse(row, charges, **options)
    assert caught.value.record == "jail:bookings.csv#row=7"
    return caught.value


def test_a_good_row_is_normalised():
    booking = parse()
    person = booking.person
    assert booking.ref == REF and booking.booking_number == "2026000123"
    assert (person.given_name, person.middle_name, person.surname, person.name_suffix) == ("MARY", "K", "DE LA CRUZ", "JR")
    assert person.birth_date == date(1984, 6, 30)
    assert (person.sex, person.race) == ("F", "B")
    assert (person.state_id, person.ssn, person.local_person_id) == ("FL12345678", "900123456", "700123")
    assert booking.booked_at == datetime(2026, 10, 3, 2, 14, tzinfo=CDT)
    assert booking.released_at == datetime(2026, 10, 4, 11, 0, tzinfo=CDT)
    assert booking.updated_at == datetime(2026, 10, 4, 11, 5, tzinfo=CDT)
    assert booking.facility == "Example County Main Jail"
    assert booking.charges == (
        Charge(1, "893.13(6)(a)", "Possession of a controlled substance", True, 1),
        Charge(2, "843.02", "Resisting an officer without violence", False, 1),
        Charge(3, "784.03(1)(a)", "Battery", False, 2),
    )


@pytest.mark.parametrize("value, code", [
    ("M", "M"), ("male", "M"), (" f ", "F"), ("FEMALE", "F"), ("", "U"), ("Unknown", "U"), ("R", "U"),
    ("X", "X"), ("MT", "X"), ("non-binary", "X"),
])
def test_sex_codes_and_words_map_to_f_m_u_x(value, code):
    assert parse(good_row(sex=value)).person.sex == code


@pytest.mark.parametrize("value, code", [
    ("W", "W"), ("white", "W"), ("Black or African American", "B"), ("P", "A"), ("asian", "A"),
    ("I", "I"), ("American Indian or Alaska Native", "I"), ("H", "U"), ("O", "U"), ("W, I", "U"), ("", ""),
])
def test_race_maps_to_ncic_letters(value, code):
    assert parse(good_row(race=value)).person.race == code


@pytest.mark.parametrize("value, expected", [
    ("2017-08-14T16:52:17-05", datetime(2017, 8, 14, 16, 52, 17, tzinfo=CDT)),
    ("2017-03-05T08:43:53-00", datetime(2017, 3, 5, 8, 43, 53, tzinfo=timezone.utc)),
    ("2026-10-03 02:14-0500", datetime(2026, 10, 3, 2, 14, tzinfo=CDT)),
    ("2026-10-03T07:14:00.250Z", datetime(2026, 10, 3, 7, 14, 0, 250000, tzinfo=timezone.utc)),
])
def test_iso_date_times_with_any_common_offset_spelling(value, expected):
    assert parse(good_row(jail_entry_date=value, jail_exit_date="", updated_date="")).booked_at == expected


def test_naive_date_times_are_refused_unless_a_default_zone_is_given():
    row = good_row(updated_date="2026-10-04 11:05:00.123")
    assert (rejected(row).field, rejected(row).reason) == (
        "updated_date", "has no UTC offset (expected YYYY-MM-DDTHH:MM:SS±HH:MM)")
    assert parse(row, default_tz=CDT).updated_at == datetime(2026, 10, 4, 11, 5, 0, 123000, tzinfo=CDT)


def test_without_updated_date_the_latest_event_is_the_last_change():
    assert parse(good_row(updated_date="")).updated_at == datetime(2026, 10, 4, 11, 0, tzinfo=CDT)
    assert parse(good_row(updated_date="", jail_exit_date="")).updated_at == datetime(2026, 10, 3, 2, 14, tzinfo=CDT)


def test_optional_fields_may_be_blank_or_absent():
    row = {k: good_row()[k] for k in ("booking_number", "first_name", "last_name", "dob", "jail_entry_date")}
    booking = parse(row)
    assert booking.released_at is None and booking.facility == "" and booking.person.ssn == ""
    assert parse(good_row(ssn="XXXXX3456")).person.ssn == ""  # masked by the source


def test_charges_may_be_optional():
    assert parse(charges=[], require_charges=False).charges == ()
    assert rejected(charges=[]).field == "charges"


# Each defect the demo generator injects, and more: (changes to the row, changes to charges, field, reason).
DEFECTS = [
    ({"dob": ""}, (), "dob", "is required"),
    ({"dob": "1987-13-45"}, (), "dob", "is not a valid date (expected YYYY-MM-DD)"),
    ({"dob": "06/30/1984"}, (), "dob", "is not a valid date (expected YYYY-MM-DD)"),
    ({"dob": "2098-05-17"}, (), "dob", "is in the future"),
    ({"dob": "1899-12-31"}, (), "dob", "is before 1900-01-01"),
    ({"dob": "2026-10-05"}, (), "dob", "is after jail_entry_date"),
    ({"sex": "Q"}, (), "sex", "is not a recognised sex code (expected F, M, U or X)"),
    ({"booking_number": "  "}, (), "booking_number", "is required"),
    ({"first_name": ""}, (), "first_name", "is required"),
    ({"last_name": "1234"}, (), "last_name", "contains no letters"),
    ({"middle_name": "Ann\x00e"}, (), "middle_name", "contains control characters"),
    ({"ssn": "12345"}, (), "ssn", "is not a 9-digit number"),
    ({"jail_entry_date": ""}, (), "jail_entry_date", "is required"),
    ({"jail_entry_date": "03/14/2026 2:15 PM"}, (), "jail_entry_date",
     "is not a valid date-time (expected YYYY-MM-DDTHH:MM:SS±HH:MM)"),
    ({"jail_entry_date": "2026-02-30T08:15:00-06:00"}, (), "jail_entry_date",
     "is not a valid date-time (expected YYYY-MM-DDTHH:MM:SS±HH:MM)"),
    ({"jail_entry_date": "2026-10-03"}, (), "jail_entry_date",
     "is not a valid date-time (expected YYYY-MM-DDTHH:MM:SS±HH:MM)"),
    ({"jail_entry_date": "2026-12-03T02:14:00-05:00", "jail_exit_date": "", "updated_date": ""}, (),
     "jail_entry_date", "is in the future"),
    ({"jail_exit_date": "2026-10-02T02:14:00-05:00"}, (), "jail_exit_date", "is before jail_entry_date"),
    # Beyond the year range once converted to UTC: these stopped the whole window's read (OverflowError).
    ({"jail_entry_date": "9999-12-31T23:59:59-14:00", "jail_exit_date": "", "updated_date": ""}, (),
     "jail_entry_date", "is in the future"),
    ({"jail_exit_date": "0001-01-01T00:00:00+01:00"}, (), "jail_exit_date", "is before jail_entry_date"),
    ({"updated_date": "yesterday"}, (), "updated_date",
     "is not a valid date-time (expected YYYY-MM-DDTHH:MM:SS±HH:MM)"),
    ({"facility": "x" * 201}, (), "facility", "is longer than 200 characters"),
    ({}, ({}, {}, {"statute": " "}), "charges[2].statute", "is required"),
    ({}, ({"counts": "two"},), "charges[0].counts", "is not a whole number"),
    ({}, ({}, {"counts": "0"}), "charges[1].counts", "must be at least 1"),
    ({}, ({"severity": "Violation"},), "charges[0].severity", "is not a recognised severity (expected F or M)"),
    ({}, ({}, {"severity": ""}), "charges[1].severity", "is required"),
    ({}, ({"charge_sequence": "first"},), "charges[0].charge_sequence", "is not a whole number"),
    ({}, ({}, {"charge_sequence": "2"}), "charges[1].charge_sequence", "repeats an earlier charge's sequence"),
]


@pytest.mark.parametrize("row_changes, charge_changes, field, reason", DEFECTS,
                         ids=[f"{d[2]}:{d[3][:24]}" for d in DEFECTS])
def test_each_defect_names_its_field_and_reason_never_the_value(row_changes, charge_changes, field, reason):
    row, charges = good_row(**row_changes), good_charges(*charge_changes)
    error = rejected(row, charges)
    assert (error.field, error.reason) == (field, reason)
    bad_values = [v for v in row_changes.values() if v.strip()] + [
        v for change in charge_changes for v in change.values() if v.strip()]
    for value in bad_values:
        assert value not in str(error)
    for value in ("MARY", "mary", "de  la Cruz", "1984-06-30", "900-12-3456", "2026000123"):
        assert value not in str(error)


def test_record_errors_carry_no_chained_exception_and_pickle():
    error = rejected(good_row(dob="1987-13-45"))
    assert error.__context__ is None and error.__cause__ is None
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.record, copy.field, copy.reason) == (error.record, error.field, error.reason)


def test_the_first_defect_in_field_order_is_reported():
    assert rejected(good_row(booking_number="", dob="")).field == "booking_number"
