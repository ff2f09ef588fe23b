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


def local_outbox_exchange(home: Path, demo_config: Path, recipient: str, bookings: int = 250) -> Path:
    """The demo exchange cut to ``recipient`` on the local outbox, reading a ``bookings``-row drop; its YAML path.

    250 bookings make three claim chunks of 100 (the delivery tests stop a pass inside one of them).
    """
    import yaml

    raw = yaml.safe_load(demo_config.read_text())
    raw["recipients"] = [r for r in raw["recipients"] if r["id"] == recipient]
    raw["recipients"][0]["transport"] = {"kind": "outbox", "path": "var/outbox"}
    raw["source"]["path"] = str(small_demo_drop(home / "drop", bookings))
    path = home / "local-exchange.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path
