"""Smaller copies of the bundled demo JMS drop, for delivery tests that need dozens of messages, not 300."""
from __future__ import annotations

import csv
from pathlib import Path


def small_demo_drop(directory: Path, bookings: int) -> Path:
    """Copy the first ``bookings`` rows of the demo drop (and their charges) into ``directory``; return it."""
    from exchange.config import demo_data_dir

    source = demo_data_dir()
    directory.mkdir(parents=True, exist_ok=True)
    with open(source / "bookings.csv", newline="") as handle:
        rows = list(csv.reader(handle))
    kept = rows[: bookings + 1]
    number = rows[0].index("booking_number")
    numbers = {r[number] for r in kept[1:]}
    with open(directory / "bookings.csv", "w", newline="") as handle:
        csv.writer(handle).writerows(kept)
    with open(source / "booking_charges.csv", newline="") as handle:
        charges = list(csv.reader(handle))
    with open(directory / "booking_charges.csv", "w", newline="") as handle:
        csv.writer(handle).writerows([charges[0], *[c for c in charges[1:] if c[0] in numbers]])
    return directory
