"""adapters.sources.jail_csv: the JMS file drop, from the shipped demo drop to every kind of broken file."""
from __future__ import annotations

import csv
import io
import json
import re
import shutil
from collections import Counter
from datetime import date, timedelta, timezone
from pathlib import Path

import pytest

from adapters.sources.jail_csv import JailCsvSource
from exchange.demo.generate import generate_demo_drop
from transforms.model import ConfigError, JailBooking, PermanentError, Rejected

DEMO = Path(__file__).resolve().parents[2] / "exchange/demo"
TODAY = date(2026, 11, 24)

# What the parser says about each kind of defect the generator injects.
REASONS = {
    "missing_dob": "is required",
    "impossible_dob": "is not a valid date (expected YYYY-MM-DD)",
    "future_dob": "is in the future",
    "unknown_sex": "is not a recognised sex code (expected F, M, U or X)",
    "missing_booking_number": "is required",
    "unparseable_entry_date": "is not a valid date-time (expected YYYY-MM-DDTHH:MM:SS±HH:MM)",
    "empty_statute": "is required",
    "non_numeric_counts": "is not a whole number",
    "duplicate_booking_number": "duplicate booking_number in this file",
}


def read_all(source: JailCsvSource, cursor: str | None = None, max_records: int = 500):
    """(records, rejected, windows) of one full run."""
    windows = source.plan(cursor, max_records)
    items = [item for window in windows for item in source.read(window)]
    records = [i for i in items if isinstance(i, JailBooking)]
    rejected = [i.error for i in items if isinstance(i, Rejected)]
    assert len(records) + len(rejected) == len(items)
    return records, rejected, windows


def csv_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def row_of(locator: str) -> int:
    return int(locator.rsplit("#row=", 1)[1])


@pytest.fixture
def drop(tmp_path: Path) -> Path:
    """A private copy of the shipped demo drop, free to change."""
    directory = tmp_path / "drop"
    directory.mkdir()
    for name in ("bookings.csv", "booking_charges.csv"):
        shutil.copyfile(DEMO / name, directory / name)
    return directory


def write(path: Path, text: str) -> Path:
    path.write_bytes(text.encode("utf-8"))
    return path


# -- the shipped demo drop ----------------------------------------------------------------------------------

def test_the_demo_drop_yields_every_good_booking_and_rejects_exactly_the_injected_defects():
    source = JailCsvSource(DEMO, today=TODAY)
    records, rejected, windows = read_all(source, max_records=100)
    defects = generate_demo_drop().defects

    assert len(windows) == 4
    assert len(records) == 289 and len(rejected) == 12
    assert len(records) + len(rejected) == len(csv_rows(DEMO / "bookings.csv")) == 301
    assert Counter(e.field for e in rejected) == {
        "dob": 4, "sex": 2, "jail_entry_date": 2, "booking_number": 2,
        "charges[0].counts": 1, "charges[0].statute": 1,
    }
    assert Counter(e.reason for e in rejected) == {
        "is required": 4,
        "is not a recognised sex code (expected F, M, U or X)": 2,
        "is not a valid date-time (expected YYYY-MM-DDTHH:MM:SS±HH:MM)": 2,
        "is not a valid date (expected YYYY-MM-DD)": 1,
        "is in the future": 1,
        "is not a whole number": 1,
        "duplicate booking_number in this file": 1,
    }
    got = sorted((row_of(e.record), e.field, e.reason) for e in rejected)
    want = sorted((d.row, d.field, REASONS[d.kind]) for d in defects)
    assert got == want
    assert all(e.record.startswith("jail:bookings.csv#row=") for e in rejected)


def test_demo_records_carry_their_source_reference_and_every_charge():
    records, _, _ = read_all(JailCsvSource(DEMO, today=TODAY))
    charges = Counter(r["booking_number"] for r in csv_rows(DEMO / "booking_charges.csv"))
    for booking in records:
        assert booking.ref.system == "jail" and booking.ref.record_id == booking.booking_number
        assert booking.ref.locator.startswith("bookings.csv#row=")
        assert len(booking.charges) == charges[booking.booking_number] >= 1
    assert len({b.booking_number for b in records}) == len(records)
    by_fingerprint = Counter(b.person.state_id for b in records)
    assert max(by_fingerprint.values()) >= 3  # familiar faces


def test_no_rejected_reason_quotes_a_value_of_its_row():
    rows = csv_rows(DEMO / "bookings.csv")
    charges: dict[str, list[dict[str, str]]] = {}
    for charge in csv_rows(DEMO / "booking_charges.csv"):
        charges.setdefault(charge["booking_number"], []).append(charge)
    _, rejected, _ = read_all(JailCsvSource(DEMO, today=TODAY))
    for error in rejected:
        row = rows[row_of(error.record) - 1]
        if error.field.startswith("charges["):
            index, name = error.field[len("charges["):].split("].")
            bad = charges[row["booking_number"]][int(index)][name]
        else:
            bad = row[error.field]
        words = re.findall(r"[\w/:-]+", f"{error.field} {error.reason}")
        assert not bad.strip() or (bad not in str(error) and bad not in words), error
        assert not [v for v in row.values() if len(v) >= 3 and v in str(error)], error


# -- planning and the cursor --------------------------------------------------------------------------------

def test_plan_slices_a_file_into_windows_and_the_cursor_advances_only_at_its_end(drop):
    source = JailCsvSource(drop, today=TODAY)
    windows = source.plan(None, 100)
    assert [w.key.split(":")[1] for w in windows] == ["rows=1-100", "rows=101-200", "rows=201-300", "rows=301-301"]
    assert len({w.key.split(":")[0] for w in windows}) == 1
    assert [json.loads(w.cursor_after)["done"] for w in windows[:3]] == [[], [], []]
    assert len(json.loads(windows[-1].cursor_after)["done"]) == 1
    for window in windows:
        json.dumps(window.spec)  # travels through XCom
        assert not any(v in json.dumps(window.spec) for v in ("2026000001", "FL", "Example"))
    assert source.plan(None, 100) == windows  # planning is repeatable


def test_a_finished_run_plans_nothing_a_new_file_plans_windows_a_changed_file_is_new(drop):
    source = JailCsvSource(drop, today=TODAY)
    _, _, windows = read_all(source)
    cursor = windows[-1].cursor_after
    assert source.plan(cursor) == []

    extra = generate_demo_drop(seed=7, bookings=60)
    write(drop / "2026-11-02_bookings.csv", extra.bookings_csv)
    write(drop / "2026-11-02_booking_charges.csv", extra.charges_csv)
    new = source.plan(cursor)
    assert [w.spec["file"] for w in new] == ["2026-11-02_bookings.csv"]
    assert new[0].spec["charges_file"] == "2026-11-02_booking_charges.csv"
    records, rejected, _ = read_all(source, cursor)
    assert len(records) + len(rejected) == 61
    assert sorted(e.field for e in rejected) == sorted(d.field for d in extra.defects)

    cursor = new[-1].cursor_after
    assert source.plan(cursor) == []
    with open(drop / "booking_charges.csv", "a", encoding="utf-8") as handle:
        handle.write("2026000001,9,843.02,Resisting an officer without violence,M,1\n")
    changed = source.plan(cursor)
    assert {w.spec["file"] for w in changed} == {"bookings.csv"}
    assert changed[0].key.split(":")[0] != windows[0].key.split(":")[0]


def test_the_same_content_under_another_name_is_planned_once(drop):
    shutil.copyfile(drop / "bookings.csv", drop / "resent_bookings.csv")
    shutil.copyfile(drop / "booking_charges.csv", drop / "resent_booking_charges.csv")
    windows = JailCsvSource(drop, today=TODAY).plan(None)
    assert [w.spec["file"] for w in windows] == ["bookings.csv"]


def test_partial_and_hidden_files_are_ignored(drop):
    text = (drop / "bookings.csv").read_text(encoding="utf-8")
    for name in ("next_bookings.csv.part", "next_bookings.csv.tmp", ".next_bookings.csv", "notes.txt"):
        write(drop / name, text[: len(text) // 2])
    (drop / "archive_bookings.csv").mkdir()
    windows = JailCsvSource(drop, today=TODAY).plan(None)
    assert {w.spec["file"] for w in windows} == {"bookings.csv"}


def test_an_empty_or_header_only_file_plans_nothing(drop):
    write(drop / "a_bookings.csv", "")
    write(drop / "b_bookings.csv", "booking_number,first_name\n")
    assert {w.spec["file"] for w in JailCsvSource(drop, today=TODAY).plan(None)} == {"bookings.csv"}


def test_a_cursor_this_source_did_not_write_is_refused(drop):
    with pytest.raises(PermanentError):
        JailCsvSource(drop, today=TODAY).plan("not json")
    with pytest.raises(PermanentError):
        JailCsvSource(drop, today=TODAY).plan('{"done": "abc"}')


def test_a_file_changed_between_plan_and_read_rejects_the_window_rows(drop):
    source = JailCsvSource(drop, today=TODAY)
    window = source.plan(None, 10)[0]
    with open(drop / "bookings.csv", "a", encoding="utf-8") as handle:
        handle.write("\n")
    items = list(source.read(window))
    assert len(items) == 10 and all(isinstance(i, Rejected) and i.error.field == "file" for i in items)


# -- county layouts ------------------------------------------------------------------------------------------

RENAMED = {
    "booking_number": "BookingNo", "first_name": "First Name", "last_name": "Last Name", "dob": "DOB",
    "jail_entry_date": "BookingDateTime", "sex": "Gender", "fingerprint_id": "SID",
    "charges.booking_number": "BookingNo", "charges.statute": "StatuteCode", "charges.severity": "Level",
}


def relabel(path: Path, target: Path, mapping: dict[str, str], delimiter: str) -> None:
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    rows[0] = [mapping.get(c, c) for c in rows[0]]
    out = io.StringIO()
    csv.writer(out, delimiter=delimiter, lineterminator="\r\n").writerows(rows)
    target.write_bytes(out.getvalue().encode("utf-8"))


def test_a_column_mapping_and_a_pipe_delimiter_read_a_county_layout(drop, tmp_path):
    county = tmp_path / "county"
    county.mkdir()
    relabel(drop / "bookings.csv", county / "JMS_BOOKINGS.CSV",
            {k: v for k, v in RENAMED.items() if "." not in k}, "|")
    relabel(drop / "booking_charges.csv", county / "JMS_BOOKING_CHARGES.CSV",
            {k.split(".")[1]: v for k, v in RENAMED.items() if "." in k}, "|")
    source = JailCsvSource(county, columns=RENAMED, today=TODAY)
    records, rejected, windows = read_all(source)
    assert windows[0].spec["delimiter"] == "|" and windows[0].spec["charges_file"] == "JMS_BOOKING_CHARGES.CSV"
    baseline, base_rejected, _ = read_all(JailCsvSource(drop, today=TODAY))
    assert [r.booking_number for r in records] == [r.booking_number for r in baseline]
    assert [r.charges for r in records] == [r.charges for r in baseline]
    assert [(e.field, e.reason) for e in rejected] == [(e.field, e.reason) for e in base_rejected]


def test_a_header_missing_a_needed_column_rejects_every_row_naming_the_column(drop):
    relabel(drop / "bookings.csv", drop / "bookings.csv", {"dob": "birth_date"}, ",")
    records, rejected, _ = read_all(JailCsvSource(drop, today=TODAY))
    assert records == [] and len(rejected) == 301
    assert {(e.field, e.reason) for e in rejected} == {("dob", "the header has no column 'dob'")}


def test_a_declared_optional_column_must_be_present(drop):
    records, rejected, _ = read_all(JailCsvSource(drop, columns={"race": "RaceCode"}, today=TODAY))
    assert records == [] and {(e.field, e.reason) for e in rejected} == {("race", "the header has no column 'RaceCode'")}


def test_a_charges_file_missing_a_needed_column_rejects_every_booking(drop):
    relabel(drop / "booking_charges.csv", drop / "booking_charges.csv", {"severity": "level"}, ",")
    records, rejected, _ = read_all(JailCsvSource(drop, today=TODAY))
    assert records == [] and len(rejected) == 301
    fields = Counter(e.field for e in rejected)
    assert fields == {"charges.severity": 300, "booking_number": 1}  # the re-sent row is a duplicate first
    assert {e.reason for e in rejected if e.field == "charges.severity"} == {
        "the charges file's header has no column 'severity'"}


def test_unknown_column_keys_and_bad_delimiters_are_config_errors(drop):
    with pytest.raises(ConfigError) as caught:
        JailCsvSource(drop, columns={"birthdate": "DOB"}, today=TODAY)
    assert caught.value.key == "columns.birthdate"
    with pytest.raises(ConfigError):
        JailCsvSource(drop, delimiter="||", today=TODAY)


# -- broken rows and files -----------------------------------------------------------------------------------

HEADER = "booking_number,first_name,last_name,dob,sex,jail_entry_date\n"
CHARGES = "booking_number,charge_sequence,statute,description,severity,counts\n"


def small_drop(directory: Path, bookings: bytes, charges: bytes | None) -> Path:
    directory.mkdir(exist_ok=True)
    (directory / "bookings.csv").write_bytes(bookings)
    if charges is not None:
        (directory / "booking_charges.csv").write_bytes(charges)
    return directory


def outcome(directory: Path, **options) -> list[tuple[str, str, str]]:
    source = JailCsvSource(directory, today=TODAY, **options)
    return [(i.ref.locator, "record", "") if isinstance(i, JailBooking) else (
        i.error.record.split(":", 1)[1], i.error.field, i.error.reason)
        for w in source.plan(None, 2) for i in source.read(w)]


def test_ragged_undecodable_duplicate_and_blank_rows(tmp_path):
    bookings = (HEADER
                + "B1,Ann,Lee,1980-01-02,F,2026-10-01T10:00:00-05:00\n"
                + "B2,Bob,Ray,1981-01-02,M\n"
                + "\n"
                + "B1,Ann,Lee,1980-01-02,F,2026-10-01T10:00:00-05:00\n").encode() + (
                "B3,J\xf6rg,Stein,1979-05-06,M,2026-10-02T10:00:00-05:00\n".encode("latin-1")) + (
                "B4,Cy,Orr,1977-07-07,M,2026-10-03T10:00:00-05:00\n").encode()
    charges = (CHARGES + "B1,1,843.02,Resisting,M,1\nB3,1,843.02,Resisting,M,1\nB4,1,843.02,Resisting,M,1\n"
               + "B2,1,843.02,Resisting,M,1\n").encode()
    result = outcome(small_drop(tmp_path / "d", bookings, charges))
    assert result == [
        ("bookings.csv#row=1", "record", ""),
        ("bookings.csv#row=2", "row", "has 5 fields; the header has 6"),
        ("bookings.csv#row=4", "booking_number", "duplicate booking_number in this file"),
        ("bookings.csv#row=5", "first_name", "contains bytes that are not valid utf-8 text"),
        ("bookings.csv#row=6", "record", ""),
        ("booking_charges.csv#row=4", "booking_number", "matches no booking in bookings.csv"),
    ]


def test_a_bad_charge_row_rejects_its_booking_and_orphans_are_reported_once(tmp_path):
    bookings = (HEADER + "B1,Ann,Lee,1980-01-02,F,2026-10-01T10:00:00-05:00\n"
                + "B2,Bob,Ray,1981-01-02,M,2026-10-01T11:00:00-05:00\n").encode()
    charges = (CHARGES + "B1,1,843.02,Resisting,M,1\nB1,2,,Battery,M,1\nB2,1,843.02\n"
               + ",1,810.09,Trespass,M,1\nB9,1,810.09,Trespass,M,1\n").encode()
    assert outcome(small_drop(tmp_path / "d", bookings, charges)) == [
        ("bookings.csv#row=1", "charges[1].statute", "is required"),
        ("bookings.csv#row=2", "charges", "at least one charge is required"),
        ("booking_charges.csv#row=3", "row", "has 3 fields; the header has 6"),
        ("booking_charges.csv#row=4", "booking_number", "is required"),
        ("booking_charges.csv#row=5", "booking_number", "matches no booking in bookings.csv"),
    ]


def test_without_a_charges_file_bookings_are_rejected_unless_charges_are_optional(tmp_path):
    bookings = (HEADER + "B1,Ann,Lee,1980-01-02,F,2026-10-01T10:00:00-05:00\n").encode()
    directory = small_drop(tmp_path / "d", bookings, None)
    assert outcome(directory) == [("bookings.csv#row=1", "charges",
                                   "at least one charge is required, and this drop has no charges file for it")]
    assert outcome(directory, require_charges=False) == [("bookings.csv#row=1", "record", "")]


def test_an_unbalanced_quote_is_rejected_not_silently_merged(tmp_path):
    bookings = (HEADER + 'B1,"Ann,Lee,1980-01-02,F,2026-10-01T10:00:00-05:00\n'
                + "B2,Bob,Ray,1981-01-02,M,2026-10-01T11:00:00-05:00\n").encode()
    result = outcome(small_drop(tmp_path / "d", bookings, None), require_charges=False)
    assert result == [("bookings.csv#row=1", "row", "has 2 fields; the header has 6")]


def test_a_utf8_bom_crlf_and_header_case_are_tolerated(tmp_path):
    bookings = ("\ufeff" + HEADER.upper() + "B1,Ann,Lee,1980-01-02,F,2026-10-01T10:00:00-05:00\n").replace(
        "\n", "\r\n").encode()
    assert outcome(small_drop(tmp_path / "d", bookings, None), require_charges=False) == [
        ("bookings.csv#row=1", "record", "")]


def test_naive_times_take_the_configured_zone(tmp_path):
    bookings = (HEADER + "B1,Ann,Lee,1980-01-02,F,2026-10-01 10:00:00\n").encode()
    directory = small_drop(tmp_path / "d", bookings, None)
    assert outcome(directory, require_charges=False)[0][1:] == (
        "jail_entry_date", "has no UTC offset (expected YYYY-MM-DDTHH:MM:SS±HH:MM)")
    zone = timezone(timedelta(hours=-5))
    source = JailCsvSource(directory, today=TODAY, require_charges=False, default_tz=zone)
    (booking,) = [i for w in source.plan(None) for i in source.read(w)]
    assert booking.booked_at.utcoffset() == timedelta(hours=-5)


def test_the_source_satisfies_the_exchange_source_protocol(drop):
    from exchange.ports import Source

    assert isinstance(JailCsvSource(drop, today=TODAY), Source)


def test_the_adapter_imports_nothing_from_exchange():
    text = (Path(__file__).resolve().parents[2] / "adapters/sources/jail_csv.py").read_text()
    assert "from exchange" not in text and "import exchange" not in text
