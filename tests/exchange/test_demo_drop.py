"""exchange.demo.generate: the shipped demo JMS drop is exactly what the generator makes from its defaults."""
from __future__ import annotations

import csv
import io
from collections import Counter
from pathlib import Path

from exchange.demo.generate import (
    BOOKING_HEADER,
    CHARGE_HEADER,
    POOL_BOOKINGS,
    SURNAMES,
    generate_demo_drop,
    main,
    surname_pool,
    write_demo_drop,
)

DEMO = Path(__file__).resolve().parents[2] / "exchange/demo"


def test_regenerating_with_the_default_seed_reproduces_the_shipped_files_byte_for_byte(tmp_path):
    write_demo_drop(tmp_path)
    for name in ("bookings.csv", "booking_charges.csv"):
        assert (tmp_path / name).read_bytes() == (DEMO / name).read_bytes(), f"{name}: run python -m exchange.demo.generate"


def test_the_command_line_writes_the_same_drop(tmp_path, capsys):
    main([str(tmp_path), "--seed", "2026", "--bookings", "300"])
    assert (tmp_path / "bookings.csv").read_bytes() == (DEMO / "bookings.csv").read_bytes()
    assert "12 deliberate defects" in capsys.readouterr().out


def test_another_seed_makes_another_drop_of_the_requested_size():
    other = generate_demo_drop(seed=1, bookings=120)
    rows = list(csv.DictReader(io.StringIO(other.bookings_csv)))
    assert len(rows) == 121  # plus the re-sent row
    assert other.bookings_csv != generate_demo_drop().bookings_csv


def test_the_demo_drop_has_the_promised_shape():
    drop = generate_demo_drop()
    bookings = list(csv.DictReader(io.StringIO(drop.bookings_csv)))
    charges = list(csv.DictReader(io.StringIO(drop.charges_csv)))
    assert tuple(bookings[0]) == BOOKING_HEADER and tuple(charges[0]) == CHARGE_HEADER
    assert len(bookings) == 301
    people = Counter(r["fingerprint_id"] for r in bookings)
    assert len(people) == 220
    assert 2 <= max(people.values()) <= 6 + 1  # familiar faces (+1: a re-sent row)
    names = {}
    for r in bookings:
        names.setdefault(r["fingerprint_id"], set()).add((r["first_name"], r["last_name"]))
    assert sum(len(n) > 1 for n in names.values()) >= 3  # spelled differently, same fingerprint
    per_booking = Counter(c["booking_number"] for c in charges)
    assert set(per_booking.values()) <= {1, 2, 3, 4}
    assert {c["severity"] for c in charges} == {"F", "M"}
    assert all(r["ssn"] == "" or r["ssn"].startswith("9") for r in bookings)  # never-issued SSN area
    assert Counter(d.kind for d in drop.defects) == {
        "missing_dob": 2, "impossible_dob": 1, "future_dob": 1, "unknown_sex": 2, "missing_booking_number": 1,
        "unparseable_entry_date": 2, "empty_statute": 1, "non_numeric_counts": 1, "duplicate_booking_number": 1,
    }
    assert len(drop.defects) / len(bookings) < 0.05


def test_a_large_drop_draws_from_more_surnames_and_a_drop_up_to_the_pool_size_from_the_common_list():
    assert surname_pool(300) == surname_pool(POOL_BOOKINGS) == SURNAMES
    larger = surname_pool(POOL_BOOKINGS + 1)
    assert larger[:len(SURNAMES)] == SURNAMES and len(set(larger)) == 2 * len(SURNAMES)
    million = surname_pool(1_000_000)
    assert len(set(million)) == len(million) == 50 * len(SURNAMES)
