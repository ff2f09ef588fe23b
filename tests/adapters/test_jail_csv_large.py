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
