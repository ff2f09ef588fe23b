"""Canary run: every field of every booking carries a unique value; after a full run of the pipeline, the value
of every field a recipient's profile does not allow is absent from what that recipient can decrypt, and
person values are absent from logs, error texts, the quarantine and the state database (outbox, ledger)."""
from __future__ import annotations

import csv
import logging
from datetime import datetime, timezone
from pathlib import Path

import pytest

from exchange.security import mint_dev_pki
from tests.exchange.lawful_helpers import exchange_yaml, received, run

ROWS = 8
BOOKING_FIELDS = ("internal_person_id", "inmate_number", "first_name", "middle_name", "last_name", "suffix", "dob",
                  "sex", "race", "fingerprint_id", "ssn", "booking_number", "jail_entry_date", "jail_exit_date",
                  "facility", "booking_agency", "arresting_agency", "updated_date")
CHARGE_FIELDS = ("booking_number", "charge_sequence", "statute", "description", "severity", "counts")

#: field -> what leaves to whom (the shipped demo profiles); everything else must not reach that recipient.
ALLOWED = {
    "county-bh": {"first_name", "middle_name", "last_name", "dob", "booking_number", "jail_entry_date", "facility",
                  "booking_agency"},
    "state-bh": {"facility", "booking_agency", "arresting_agency", "statute"},
}
#: Values that must never be stored or logged in plaintext anywhere (the booking number is the record key).
PERSON_FIELDS = ("internal_person_id", "inmate_number", "first_name", "middle_name", "last_name", "dob",
                 "fingerprint_id", "ssn", "description")


def canaries(i: int) -> dict[str, str]:
    """Unique, parseable values for booking ``i``: field -> the string that would betray it."""
    tag = chr(ord("A") + i) * 2
    return {
        "internal_person_id": f"QZPID{i:03d}X", "inmate_number": f"QZINM{i:03d}X", "first_name": f"Qzfirst{tag}",
        "middle_name": f"Qzmid{tag}", "last_name": f"Qzlast{tag}", "dob": f"1931-{i + 1:02d}-17",
        "fingerprint_id": f"QZFP{i:03d}X", "ssn": f"{900 + i}765432", "booking_number": f"7300{i:04d}9",
        "jail_entry_date": f"2025-03-{i + 1:02d}T04:17", "facility": f"Qzfacility{tag}",
        "booking_agency": f"Qzbookagency{tag}", "arresting_agency": f"Qzarrest{tag}", "statute": f"QZ{i:02d}.01",
        "description": f"Qzcharge{tag}",
    }


def write_drop(directory: Path) -> list[dict[str, str]]:
    directory.mkdir(parents=True)
    seeded = [canaries(i) for i in range(ROWS + 1)]
    bookings, charges = [], []
    for i, c in enumerate(seeded):
        bookings.append({
            "internal_person_id": c["internal_person_id"], "inmate_number": c["inmate_number"],
            "first_name": c["first_name"], "middle_name": c["middle_name"], "last_name": c["last_name"], "suffix": "",
            "dob": c["dob"], "sex": "Q" if i == ROWS else "F",  # the last row is bad: quarantined
            "race": "W", "fingerprint_id": c["fingerprint_id"], "ssn": c["ssn"], "booking_number": c["booking_number"],
            "jail_entry_date": c["jail_entry_date"] + ":00-06:00", "jail_exit_date": "", "facility": c["facility"],
            "booking_agency": c["booking_agency"], "arresting_agency": c["arresting_agency"],
            "updated_date": c["jail_entry_date"].replace("T04", "T09") + ":00-06:00",
        })
        charges.append({"booking_number": c["booking_number"], "charge_sequence": "1", "statute": c["statute"],
                        "description": c["description"], "severity": "F", "counts": "1"})
    for name, fields, rows in (("bookings.csv", BOOKING_FIELDS, bookings),
                               ("booking_charges.csv", CHARGE_FIELDS, charges)):
        with open(directory / name, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=fields)
            writer.writeheader()
            writer.writerows(rows)
    return seeded


@pytest.fixture(scope="module")
def canary_run(tmp_path_factory):
    home = tmp_path_factory.mktemp("canary-home")
    mint_dev_pki(home / "certs/dev", organization="Example County Sheriff's Office",
                 recipients=["county-bh", "state-bh"], now=datetime.now(timezone.utc))
    seeded = write_drop(home / "drop")
    config = exchange_yaml(home, home / "drop",
                           {"county-bh": "behavioral-health-provider", "state-bh": "state-agency"})
    handler = _Capture()
    root = logging.getLogger()
    root.addHandler(handler)
    old_level = root.level
    root.setLevel(logging.DEBUG)
    try:
        summary = run(config, home)
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
    return home, config, seeded, summary, "\n".join(handler.lines)


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record) + (str(record.exc_info[1]) if record.exc_info else ""))


def test_the_run_delivered_and_quarantined_as_expected(canary_run):
    _, _, _, summary, _ = canary_run
    assert summary.read == ROWS + 1 and summary.quarantined == 1
    assert summary.delivered == 2 * ROWS


@pytest.mark.parametrize("recipient", sorted(ALLOWED))
def test_disallowed_canaries_never_reach_the_recipient(canary_run, recipient):
    home, _, seeded, _, _ = canary_run
    text = b"\n".join(received(home, recipient)).decode().upper()
    allowed_seen = 0
    for c in seeded[:ROWS]:
        for field, value in c.items():
            if field in ALLOWED[recipient]:
                allowed_seen += value.upper() in text
            else:
                assert value.upper() not in text, f"{recipient} received {field}"
    assert allowed_seen >= ROWS * len(ALLOWED[recipient]) // 2  # the check can see values when they do leave


def test_person_canaries_are_absent_from_logs_quarantine_and_the_state_database(canary_run):
    from exchange.config import load_config, resolve_url
    from exchange.state.db import open_engine
    from exchange.state.quarantine import Quarantine

    home, config, seeded, _, logs = canary_run
    entries = Quarantine(open_engine(resolve_url(home, load_config(config).state_url)), "demo-booking").entries()
    quarantine = " ".join(f"{e.record} {e.field} {e.reason}" for e in entries)
    assert entries and "sex" in quarantine
    database = b"".join(p.read_bytes() for p in (home / "var").glob("state.db*")).upper()
    for c in seeded:
        for field in PERSON_FIELDS:
            value = c[field].upper()
            assert value not in logs.upper(), f"log holds {field}"
            assert value not in quarantine.upper(), f"quarantine holds {field}"
            assert value.encode() not in database, f"state database holds {field}"
