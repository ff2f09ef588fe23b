"""The jail CSV source on DSSG's matching-tool upload samples, read in place (their license forbids copies).

``uploader_input/jail_bookings/*.csv`` are the same eight made-up people with different defects, in the DSSG
jail-bookings layout: our canonical column names for everything we read, plus columns we ignore (hair colour,
addresses, flags). That layout has no charges file and no facility or booking-agency column, so:

* ``pattern="*.csv"``: their file names do not contain "bookings";
* ``require_charges=False``: without it every otherwise good booking is rejected on ``charges``, which is
  the right default for a JMS that should send charges, and what the last test shows;
* ``columns``: ``facility`` <- ``building`` and ``booking_agency`` <- ``source_name`` (both blank in these
  samples); every other column keeps its name;
* ``default_tz``: their ``updated_date`` has no UTC offset (``2017-11-15T21:31:04``) while the event times
  say ``-05``; without a zone those rows are rejected on ``updated_date``.
"""
from __future__ import annotations

from collections import Counter, defaultdict
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest

from adapters.sources.jail_csv import JailCsvSource
from transforms.model import JailBooking, Rejected

DSSG = Path(__file__).resolve().parents[2].parent / "shared/data/dssg-matching-tool/uploader_input/jail_bookings"
if not DSSG.is_dir():
    pytest.skip("the DSSG matching-tool samples are not in ../shared", allow_module_level=True)

pytestmark = pytest.mark.shared

TODAY = date(2026, 11, 24)
EASTERN = timezone(timedelta(hours=-5))
LAYOUT = {"facility": "building", "booking_agency": "source_name"}
NO_OFFSET = ("updated_date", "has no UTC offset (expected YYYY-MM-DDTHH:MM:SS±HH:MM)")
GOOD = ("record",)


def run(**options) -> tuple[dict[str, Counter], list[JailBooking]]:
    """Per file: Counter of ("record",) or (field, reason); and every record."""
    source = JailCsvSource(DSSG, pattern="*.csv", columns=LAYOUT, today=TODAY, **options)
    per_file: dict[str, Counter] = defaultdict(Counter)
    records = []
    for window in source.plan(None, 500):
        for item in source.read(window):
            if isinstance(item, Rejected):
                assert item.error.record.startswith(f"jail:{window.spec['file']}#row=")
                per_file[window.spec["file"]][(item.error.field, item.error.reason)] += 1
            else:
                per_file[window.spec["file"]][GOOD] += 1
                records.append(item)
    return dict(per_file), records


def test_each_dssg_file_yields_what_its_defect_calls_for():
    per_file, records = run(require_charges=False, default_tz=EASTERN)
    assert per_file == {
        "bad-hair-color.csv": {GOOD: 8},  # hair colour is not a field we read
        "hashed-ssn.csv": {GOOD: 8},  # no ssn column: ssn is optional
        "no-event-id.csv": {GOOD: 8},  # internal_event_id is not a field we read
        "no-person-id.csv": {GOOD: 8},  # inmate_number is blank: optional
        "only-nums.csv": {GOOD: 8},
        # ssn.csv is byte-identical to only-nums.csv: a re-sent file, planned once.
        "missing-fields.csv": {("booking_number", "is required"): 10},
        "no-ids.csv": {("booking_number", "is required"): 8},  # a single space is blank
        # Pipe-delimited (sniffed); the header has one more field than every row.
        "multi-race.csv": {("row", "has 54 fields; the header has 55"): 8},
    }
    assert len(records) == 40


def test_dssg_records_are_normalised():
    _, records = run(require_charges=False, default_tz=EASTERN)
    first = next(r for r in records if r.ref.locator == "bad-hair-color.csv#row=1")
    person = first.person
    assert (person.given_name, person.surname, person.birth_date) == ("RANDALL", "RICHARDSON", date(1987, 10, 2))
    assert (person.sex, person.race, person.state_id, person.ssn) == ("F", "W", "189951", "229955642")
    assert first.booking_number == "60519358" and first.charges == ()
    assert first.booked_at == datetime(2017, 8, 14, 16, 52, 17, tzinfo=EASTERN)
    assert first.released_at == datetime(2017, 8, 23, 4, 21, 29, tzinfo=EASTERN)
    assert first.updated_at == datetime(2017, 11, 15, 21, 31, 4, tzinfo=EASTERN)
    assert first.facility == first.booking_agency == first.arresting_agency == ""
    # Each file: W, A, I, B, B, W, O, I; O (other) is not an NCIC race and becomes U.
    assert Counter(r.person.race for r in records) == {"I": 10, "B": 10, "W": 10, "A": 5, "U": 5}
    assert {r.person.ssn for r in records if r.ref.locator.startswith("hashed-ssn.csv")} == {""}


def test_without_a_zone_for_naive_times_the_good_rows_are_rejected_on_updated_date():
    per_file, records = run(require_charges=False)
    assert records == []
    for name in ("bad-hair-color.csv", "hashed-ssn.csv", "no-event-id.csv", "no-person-id.csv", "only-nums.csv"):
        assert per_file[name] == {NO_OFFSET: 8}
    assert per_file["missing-fields.csv"] == {("booking_number", "is required"): 10}


def test_with_charges_required_every_booking_without_charges_is_rejected():
    per_file, records = run(default_tz=EASTERN)
    assert records == []
    reason = ("charges", "at least one charge is required, and this drop has no charges file for it")
    for name in ("bad-hair-color.csv", "hashed-ssn.csv", "no-event-id.csv", "no-person-id.csv", "only-nums.csv"):
        assert per_file[name] == {reason: 8}
    assert sum(sum(c.values()) for c in per_file.values()) == 66
