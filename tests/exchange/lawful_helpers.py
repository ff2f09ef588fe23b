"""Helpers for the lawful-sharing tests: small exchanges in a fresh home, decrypting what a recipient got."""
from __future__ import annotations

import csv
from pathlib import Path

import yaml

from exchange.config import demo_data_dir


def small_drop(directory: Path, rows: int = 25) -> Path:
    """The first ``rows`` demo bookings and their charges, as a drop of its own."""
    directory.mkdir(parents=True, exist_ok=True)
    with open(demo_data_dir() / "bookings.csv", newline="") as handle:
        reader = csv.DictReader(handle)
        fields, kept = reader.fieldnames, [r for _, r in zip(range(rows), reader)]
    numbers = {r["booking_number"] for r in kept}
    _write(directory / "bookings.csv", fields, kept)
    with open(demo_data_dir() / "booking_charges.csv", newline="") as handle:
        reader = csv.DictReader(handle)
        charges = [r for r in reader if r["booking_number"] in numbers]
        _write(directory / "booking_charges.csv", reader.fieldnames, charges)
    return directory


def _write(path: Path, fields, rows) -> None:
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)


def exchange_yaml(home: Path, drop: Path, recipients: dict[str, str]) -> Path:
    """An exchange YAML in ``home`` reading ``drop``, one recipient per (id -> profile)."""
    config = yaml.safe_load((demo_data_dir() / "demo-exchange.yaml").read_text())
    config["source"]["path"] = str(drop)
    config["recipients"] = [
        {"id": rid, "organization": f"Organization {rid}", "certificate": f"certs/dev/recipients/{rid}.pem",
         "transport": {"kind": "outbox", "path": "var/outbox"}, "purpose": "stated purpose",
         "legal_basis": "stated basis", "profile": profile}
        for rid, profile in recipients.items()
    ]
    path = home / "exchange.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def run(config: Path, home: Path):
    """Run the exchange once; returns the summary."""
    from exchange import pipeline
    from exchange.runtime import open_exchange

    ex = open_exchange(config, home)
    try:
        return pipeline.run(ex)
    finally:
        ex.close()


def received(home: Path, recipient: str) -> list[bytes]:
    """Every message in the recipient's outbox, decrypted with the recipient's key (as the recipient would)."""
    from exchange.security import PrivateKey, decrypt

    key = PrivateKey.load(home / f"certs/dev/recipients/{recipient}.key")
    return [decrypt(p.read_bytes(), key) for p in sorted((home / "var/outbox" / recipient).glob("*.xml"))]
