"""The demo exchange end to end, checked the way an operator and a receiving agency would check it."""
from __future__ import annotations

import csv
import hashlib
import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest

from exchange.config import demo_data_dir

REPO = Path(__file__).resolve().parents[2]
SCHEMA = REPO / "niem_iepd/schemas/exchange/booking-notification.xsd"


def _demo_rows() -> list[dict[str, str]]:
    with open(demo_data_dir() / "bookings.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def _messages(home: Path, recipient: str) -> list[Path]:
    return sorted((home / "var/outbox" / recipient).glob("*.xml"))


def test_every_row_is_read_and_either_delivered_to_both_recipients_or_quarantined(demo_run):
    home, summary = demo_run
    rows = _demo_rows()
    assert summary.read == len(rows) >= 250
    assert 0 < summary.quarantined < summary.read // 10
    good = summary.read - summary.quarantined
    assert summary.enqueued == summary.delivered == 2 * good
    assert summary.failed == summary.dead == 0
    for recipient in ("county-bh", "state-bh"):
        assert len(_messages(home, recipient)) == good


def test_manifest_lists_every_message_with_its_sha256(demo_run):
    home, _ = demo_run
    for recipient in ("county-bh", "state-bh"):
        directory = home / "var/outbox" / recipient
        listed = dict(reversed(line.split("  ")) for line in (directory / "MANIFEST.sha256").read_text().splitlines())
        files = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in _messages(home, recipient)}
        assert listed == files
        check = subprocess.run(["sha256sum", "--check", "--quiet", "MANIFEST.sha256"], cwd=directory)
        assert check.returncode == 0


def test_quarantine_names_row_and_field_but_never_the_value(demo_run, demo_config):
    from exchange.config import load_config, resolve_url
    from exchange.state.db import open_engine
    from exchange.state.quarantine import Quarantine

    home, summary = demo_run
    cfg = load_config(demo_config)
    entries = Quarantine(open_engine(resolve_url(home, cfg.state_url)), cfg.name).entries()
    assert len(entries) == summary.quarantined
    values = {v for row in _demo_rows() for k, v in row.items() if k != "booking_number" and len(v) >= 4}
    for entry in entries:
        assert "#row=" in entry.record and entry.field and entry.reason
        text = f"{entry.record} {entry.field} {entry.reason}"
        leaked = [v for v in values if v in text]
        assert not leaked, f"{entry.record}: quarantine text quotes a record value"


def test_receiving_agency_decrypts_verifies_and_validates_with_standard_tools(demo_run, tmp_path):
    """xmlsec1 decrypts with the recipient key, xmlsec1 verifies against the CA, xmllint validates."""
    home, _ = demo_run
    message = _messages(home, "county-bh")[0]
    plain = tmp_path / "plain.xml"
    subprocess.run(["xmlsec1", "--decrypt", "--privkey-pem", str(home / "certs/dev/recipients/county-bh.key"),
                    "--output", str(plain), str(message)], check=True, capture_output=True)
    assert b"BookingNotification" in plain.read_bytes()
    subprocess.run(["xmlsec1", "--verify", "--trusted-pem", str(home / "certs/dev/ca.pem"), str(plain)],
                   check=True, capture_output=True)
    lint = subprocess.run(["xmllint", "--noout", "--schema", str(SCHEMA), str(plain)], capture_output=True,
                          text=True)
    assert lint.returncode == 0, lint.stderr
    assert "validates" in lint.stderr

    # one changed byte inside the signed content and the signature no longer verifies
    tampered = tmp_path / "tampered.xml"
    data = plain.read_bytes()
    at = data.index(b"<nc:PersonSurName>") + len(b"<nc:PersonSurName>")
    tampered.write_bytes(data[:at] + bytes([data[at] ^ 0x01]) + data[at + 1:])
    bad = subprocess.run(["xmlsec1", "--verify", "--trusted-pem", str(home / "certs/dev/ca.pem"), str(tampered)],
                         capture_output=True)
    assert bad.returncode != 0


def test_message_for_one_recipient_cannot_be_opened_with_another_recipients_key(demo_run, tmp_path):
    home, _ = demo_run
    message = _messages(home, "county-bh")[0]
    result = subprocess.run(
        ["xmlsec1", "--decrypt", "--privkey-pem", str(home / "certs/dev/recipients/state-bh.key"),
         "--output", str(tmp_path / "nope.xml"), str(message)], capture_output=True)
    assert result.returncode != 0
    assert not (tmp_path / "nope.xml").exists() or b"BookingNotification" not in (tmp_path / "nope.xml").read_bytes()


def test_state_database_holds_no_plaintext_person_data(demo_run):
    """Every table and column of the state, except the encrypted payloads, is free of names and birth dates.

    Payloads are left out on purpose: they are ciphertext, in which any short string turns up by chance.
    """
    home, _ = demo_run
    with sqlite3.connect(home / "var/state.db") as db:
        payloads = [p for (p,) in db.execute("SELECT payload FROM outbox_payload")]
    assert payloads and all(b"EncryptedData" in p[:400] and b"<nc:" not in p for p in payloads)
    rows = _demo_rows()
    values = {r["last_name"] for r in rows if len(r["last_name"]) >= 5} | {r["dob"] for r in rows if r["dob"]}
    with sqlite3.connect(home / "var/state.db") as db:
        tables = [t for (t,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        text = []
        for table in tables:
            columns = [c[1] for c in db.execute(f"PRAGMA table_info({table})")]
            keep = [c for c in columns if not (table == "outbox_payload" and c == "payload")]
            for row in db.execute(f"SELECT {', '.join(keep)} FROM {table}"):
                text.extend(str(v) for v in row if v is not None)
    assert len(text) > 1000
    joined = "\n".join(text)
    leaked = [v for v in values if v in joined]
    assert not leaked, f"{len(leaked)} names or birth dates found in the state database"


@pytest.fixture
def fresh_home(tmp_path, demo_run):
    """A copy of the demo home's keys in a new home with no state yet."""
    home = tmp_path / "home"
    shutil.copytree(demo_run[0] / "certs", home / "certs")
    return home


def _run(config: Path, home: Path):
    from exchange import pipeline
    from exchange.runtime import open_exchange

    ex = open_exchange(config, home)
    try:
        return pipeline.run(ex)
    finally:
        ex.close()


def test_running_twice_delivers_nothing_twice(fresh_home, demo_config):
    first = _run(demo_config, fresh_home)
    files = {p.name for p in _messages(fresh_home, "county-bh")}
    second = _run(demo_config, fresh_home)
    assert first.delivered > 0
    assert second.delivered == second.enqueued == 0
    assert {p.name for p in _messages(fresh_home, "county-bh")} == files

    # even with the cursor forgotten (the whole drop read again), the outbox refuses second copies
    with sqlite3.connect(fresh_home / "var/state.db") as db:
        db.execute("DELETE FROM cursors")
    third = _run(demo_config, fresh_home)
    assert third.read == first.read
    assert third.enqueued == third.delivered == 0
    assert third.already_sent == first.read - first.quarantined
    assert {p.name for p in _messages(fresh_home, "county-bh")} == files


def test_ledger_has_one_entry_per_delivery_and_detects_edits_and_deletions(fresh_home, demo_config):
    from exchange.config import load_config, resolve_url
    from exchange.state.db import open_engine
    from exchange.state.ledger import verify_chain

    summary = _run(demo_config, fresh_home)
    url = resolve_url(fresh_home, load_config(demo_config).state_url)
    report = verify_chain(open_engine(url))
    assert report.ok and report.entries == summary.delivered

    with sqlite3.connect(fresh_home / "var/state.db") as db:
        db.execute("UPDATE ledger SET recipient_name = 'Somebody Else' WHERE seq = 7")
    assert verify_chain(open_engine(url)).broken_at == 7

    with sqlite3.connect(fresh_home / "var/state.db") as db:
        db.execute("UPDATE ledger SET recipient_name = (SELECT recipient_name FROM ledger WHERE seq = 6) WHERE seq = 7")
        db.execute("DELETE FROM ledger WHERE seq = 12")
    assert verify_chain(open_engine(url)).broken_at == 13


def test_same_person_booked_repeatedly_gets_one_shared_id(demo_run, tmp_path):
    """People booked several times (same fingerprint id) carry one shared id across their messages."""
    import re

    home, _ = demo_run
    rows = [r for r in _demo_rows() if r["fingerprint_id"]]
    by_person: dict[str, set[str]] = {}
    for r in rows:
        by_person.setdefault(r["fingerprint_id"], set()).add(r["booking_number"])
    repeat = next(fp for fp, bookings in by_person.items() if len(bookings) >= 3)

    key = home / "certs/dev/recipients/county-bh.key"
    found: dict[str, str] = {}
    for message in _messages(home, "county-bh"):
        plain = subprocess.run(["xmlsec1", "--decrypt", "--privkey-pem", str(key), str(message)],
                               check=True, capture_output=True).stdout.decode()
        booking = re.search(r"<j:BookingAgencyRecordIdentification>\s*<nc:IdentificationID>([^<]+)", plain)
        if booking and booking.group(1) in by_person[repeat]:
            found[booking.group(1)] = re.search(r"(NXP-[A-Z2-7]{12})", plain).group(1)
        if len(found) == len(by_person[repeat]):
            break
    assert len(found) >= 3
    assert len(set(found.values())) == 1


def test_a_county_that_signs_with_ecdsa_p256_delivers_what_xmlsec1_verifies(tmp_path, demo_config):
    """certs dev-pki --signing-key ec-p256, then the demo: receivers check ECDSA-SHA256 with the same tools."""
    import sys

    cli = str(Path(sys.executable).with_name("niem-exchange"))
    home = tmp_path / "home"
    minted = subprocess.run([cli, "certs", "dev-pki", "--dir", str(home / "certs/dev"), "--signing-key", "ec-p256"],
                            capture_output=True, text=True)
    assert minted.returncode == 0, minted.stderr
    ran = subprocess.run([cli, "demo", "--home", str(home)], capture_output=True, text=True)
    assert ran.returncode == 0, ran.stderr
    messages = _messages(home, "state-bh")
    assert len(messages) > 250
    plain = tmp_path / "plain.xml"
    subprocess.run(["xmlsec1", "--decrypt", "--privkey-pem", str(home / "certs/dev/recipients/state-bh.key"),
                    "--output", str(plain), str(messages[-1])], check=True, capture_output=True)
    assert b'Algorithm="http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256"' in plain.read_bytes()
    verified = subprocess.run(["xmlsec1", "--verify", "--trusted-pem", str(home / "certs/dev/ca.pem"), str(plain)],
                              capture_output=True, text=True)
    assert verified.returncode == 0, verified.stderr
    # the receiver's own toolkit accepts it too, pinned to the bare signing certificate
    received = subprocess.run(
        [cli, "receive", str(messages[-1]), "--key", str(home / "certs/dev/recipients/state-bh.key"),
         "--trust", str(home / "certs/dev/signing.pem"), "--out", str(tmp_path / "accepted")],
        capture_output=True, text=True)
    assert received.returncode == 0, received.stdout + received.stderr
    assert len(list((tmp_path / "accepted").glob("*.receipt.json"))) == 1
