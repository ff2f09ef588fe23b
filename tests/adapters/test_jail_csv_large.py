"""adapters.sources.jail_csv on a large drop: windows read only their own bytes and add up to one full read."""
from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from adapters.sources.jail_csv import JailCsvSource
from exchange.demo.generate import write_demo_drop
from transforms.model import JailBooking, Rejected

TODAY = date(2026, 11, 24)
BOOKINGS = 20_000


@pytest.fixture(scope="module")
def large(tmp_path_factory) -> Path:
    """A generated drop of 20,000 bookings (one re-sent row makes 20,001) with their charges."""
    directory = tmp_path_factory.mktemp("large")
    write_demo_drop(directory, seed=11, bookings=BOOKINGS)
    return directory


def _row(item) -> int:
    locator = item.ref.locator if isinstance(item, JailBooking) else item.error.record
    return int(locator.rsplit("#row=", 1)[1])


def _from(item) -> str:
    locator = item.ref.locator if isinstance(item, JailBooking) else item.error.record
    return locator.split("#", 1)[0].rsplit(":", 1)[-1]


def _plain(items) -> list:
    """Records as they are, rejections as (record, field, reason): exceptions compare by identity."""
    return [i if isinstance(i, JailBooking) else (i.error.record, i.error.field, i.error.reason) for i in items]


def test_a_large_drop_read_window_by_window_equals_one_full_read(large):
    source = JailCsvSource(large, today=TODAY)
    windows = source.plan(None, 1000)
    assert len(windows) == 21 and windows[-1].spec["rows"] == BOOKINGS + 1
    size = (large / "bookings.csv").stat().st_size

    union = []
    for window in windows:
        start, stop = window.spec["start"], window.spec["stop"]
        span = window.spec["span"]
        assert span[1] - span[0] < size / 15  # the window's own slice of the file, not the file
        items = list(source.read(window))
        rows = [_row(item) for item in items if _from(item) == "bookings.csv"]
        assert rows == list(range(start, stop + 1))  # exactly its rows, in order, each once
        charge_rejects = [item for item in items if _from(item) == "booking_charges.csv"]
        assert not charge_rejects or window is windows[-1]
        union.extend(items)

    (whole,) = source.plan(None, 10 * BOOKINGS)
    full = list(source.read(whole))
    assert _plain(union) == _plain(full)
    records = [item for item in full if isinstance(item, JailBooking)]
    assert len(records) > 0.9 * BOOKINGS and all(record.charges for record in records)
    assert len(full) - len(records) == sum(isinstance(item, Rejected) for item in full) > 0


def test_bytes_changed_after_planning_reject_only_the_window_that_reads_them(large, tmp_path):
    directory = tmp_path / "drop"
    directory.mkdir()
    for name in ("bookings.csv", "booking_charges.csv"):
        (directory / name).write_bytes((large / name).read_bytes())
    source = JailCsvSource(directory, today=TODAY)
    windows = source.plan(None, 1000)
    before = _plain(source.read(windows[0]))

    # Same size, one letter different inside window 5's rows: only window 5 sees it.
    path = directory / "bookings.csv"
    data = bytearray(path.read_bytes())
    at = windows[5].spec["span"][0] + 20
    data[at] = ord("Q") if data[at] != ord("Q") else ord("R")
    path.write_bytes(bytes(data))

    assert _plain(source.read(windows[0])) == before
    changed = list(source.read(windows[5]))
    assert len(changed) == 1000 and all(isinstance(i, Rejected) and i.error.field == "file" for i in changed)
    # The changed unit is new: planned again in full from the last window's cursor.
    replanned = source.plan(windows[-1].cursor_after, 1000)
    assert len(replanned) == 21 and replanned[0].spec["digest"] != windows[0].spec["digest"]


def test_a_charge_sharing_a_bucket_with_a_booking_is_still_reported_as_matching_no_booking(tmp_path, monkeypatch):
    # The planner's index keeps 32-bit buckets of booking numbers, not the numbers: force the one case it
    # leaves unchecked (an orphan charge whose bucket holds exactly one booking) and show it is not lost.
    from adapters.sources import first_rows

    monkeypatch.setattr(first_rows, "bucket_of", lambda key: 7 if key in (b"B1", b"X9") else len(key) + 100)
    header = "booking_number,first_name,last_name,dob,sex,jail_entry_date\n"
    (tmp_path / "bookings.csv").write_text(header + "B1,Ann,Lee,1980-01-02,F,2026-10-01T10:00:00-05:00\n"
                                           + "B2,Bob,Ray,1981-01-02,M,2026-10-01T11:00:00-05:00\n")
    (tmp_path / "booking_charges.csv").write_text(
        "booking_number,charge_sequence,statute,description,severity,counts\n"
        "X9,1,810.09,Trespass,M,1\nB1,1,843.02,Resisting,M,1\nB2,1,843.02,Resisting,M,1\n")
    source = JailCsvSource(tmp_path, today=TODAY)
    first, second = source.plan(None, 1)
    assert [run[0] for run in first.spec["charges"]] == [1]  # one run from charges row 1: X9's row and B1's
    items = _plain(source.read(first))
    assert isinstance(items[0], JailBooking) and len(items[0].charges) == 1
    assert items[1:] == [("jail:booking_charges.csv#row=1", "booking_number", "matches no booking in bookings.csv")]
    assert [type(i) for i in source.read(second)] == [JailBooking]


@pytest.mark.parametrize("buckets", [None, 3])  # real CRC-32 buckets, and three buckets for everything
def test_the_first_rows_index_answers_exactly_what_a_dict_of_every_key_would(buckets, monkeypatch):
    import random

    from adapters.sources import first_rows

    if buckets:
        monkeypatch.setattr(first_rows, "bucket_of", lambda key: len(key) % buckets)
    rng = random.Random(4)
    keys = {row: f"B{rng.randint(1, 3000)}".encode() for row in range(1, 5001)}
    index = first_rows.FirstRows(keys.__getitem__)
    for row, key in keys.items():
        index.add(key, row)
    index.freeze()
    first: dict[bytes, int] = {}
    for row, key in keys.items():
        first.setdefault(key, row)
    assert sorted(index.duplicates()) == [row for row, key in keys.items() if first[key] != row]
    assert all(index.first_row(key) == row for key, row in first.items())
    assert index.first_row(b"B0") is None  # in no row (and in no one-row bucket here)
