"""The consent registry keeps no patient reference in clear: ``consents load`` stores a keyed hash, ``consents
list`` shows consent id, shared person id, recipients, purpose, expiry and status, and an older state database
that stored references in clear is migrated (every consent and revocation kept) with the references gone from
the file itself."""
from __future__ import annotations

import sqlite3
from datetime import date, datetime, timezone
from pathlib import Path

from typer.testing import CliRunner

from exchange.cli import app
from tests.exchange.test_lawful_consents_cli import HEADER

PATIENTS = ("Patient/QZPAT7731", "Patient/QZPAT8842")


def _raw(home: Path) -> bytes:
    """The state database as bytes on disk (main file, WAL and shared memory), upper-cased."""
    return b"".join(p.read_bytes() for p in sorted((home / "var").glob("state.db*"))).upper()


def _sheet(tmp_path: Path) -> Path:
    sheet = tmp_path / "consents.csv"
    sheet.write_text(HEADER
                     + f"C-1,{PATIENTS[0]},County BH,class:law-enforcement,PUBHLTH,need flag,active,2026-01-01,"
                       "2027-01-01,,yes,\n"
                     + f"C-2,{PATIENTS[1]},County BH,county-bh,TREAT,care plan,active,2026-02-01,2026-12-31,,no,\n")
    return sheet


def test_load_stores_no_patient_reference_and_list_shows_the_person(tmp_path):
    from exchange.config import load_config, resolve
    from exchange.state.db import open_engine
    from exchange.state.person_index import PersonIndex
    from exchange.state.secrets import load_or_create_secret
    from exchange.commands.common import demo_config
    from transforms.model import PersonIdentity

    home = ["--home", str(tmp_path)]
    runner = CliRunner()
    sheet = _sheet(tmp_path)
    loaded = runner.invoke(app, ["consents", "load", str(sheet), *home])
    assert loaded.exit_code == 0, loaded.output
    raw = _raw(tmp_path)
    assert b"C-1" in raw and b"CLASS:LAW-ENFORCEMENT" in raw  # the consents are in the file ...
    for patient in PATIENTS:  # ... their patients are not
        assert patient.split("/")[1].encode() not in raw, "the state database holds a patient reference"

    # the person index links the first patient's record (the demo config's source system is "jail"); a reload
    # picks its shared id up. (The index's crosswalk keeps source record ids: that is the index's own concern.)
    config = load_config(demo_config())
    index = PersonIndex(open_engine(f"sqlite:///{tmp_path}/var/state.db"),
                        load_or_create_secret(resolve(tmp_path, config.index_secret)), exchange=config.name)
    shared = index.link(config.source.system, "QZPAT7731",
                        PersonIdentity("Qzgiven", "Qzsur", date(1980, 1, 1)), datetime.now(timezone.utc)).shared_id
    assert runner.invoke(app, ["consents", "load", str(sheet), *home]).exit_code == 0

    listed = runner.invoke(app, ["consents", "list", *home], env={"COLUMNS": "250"})
    assert listed.exit_code == 0, listed.output
    line = next(x for x in listed.output.splitlines() if "C-1" in x)
    for shown in (shared, "active", "class:law-enforcement", "PUBHLTH", "2027-01-01"):
        assert shown in line, shown
    assert "(not linked yet)" in next(x for x in listed.output.splitlines() if "C-2" in x)
    assert "QZPAT" not in listed.output
    # a privacy officer can still ask by patient (hashed for the lookup) or by person
    by_patient = runner.invoke(app, ["consents", "list", "QZPAT8842", *home], env={"COLUMNS": "250"}).output
    assert "C-2" in by_patient and "C-1" not in by_patient  # "QZPAT8842" and "Patient/QZPAT8842" are one patient
    by_person = runner.invoke(app, ["consents", "list", "--person", shared, *home], env={"COLUMNS": "250"}).output
    assert "C-1" in by_person and "C-2" not in by_person

    # a reload that cannot look the person up (no source system given) keeps the shared id already learned
    from exchange.consent_registry import ConsentRegistry

    registry = ConsentRegistry(index._engine, load_or_create_secret(resolve(tmp_path, config.index_secret)))
    registry.load(sheet)
    assert {row.consent.consent_id: row.shared_id for row in registry.on_file()} == {"C-1": shared, "C-2": None}


def test_a_state_database_with_references_in_clear_is_migrated(tmp_path):
    from exchange.consent_registry import ConsentRegistry
    from exchange.state.db import open_engine

    (tmp_path / "var").mkdir()
    path = tmp_path / "var/state.db"
    with sqlite3.connect(path) as db:  # the consents table as the previous version created it
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("CREATE TABLE consents (consent_id VARCHAR(200) PRIMARY KEY, source VARCHAR(500) NOT NULL, "
                   "patient_id VARCHAR(200) NOT NULL, discloser VARCHAR(300) NOT NULL, recipients TEXT NOT NULL, "
                   "purpose VARCHAR(200) NOT NULL, information TEXT NOT NULL, status VARCHAR(32) NOT NULL, "
                   "signed_on VARCHAR(10), expires_on VARCHAR(10), revoked_on VARCHAR(10), part2 INTEGER NOT NULL, "
                   "expiry_event VARCHAR(300) NOT NULL, updated_at DATETIME NOT NULL)")
        db.execute("CREATE INDEX ix_consents_patient_id ON consents (patient_id)")
        db.execute("INSERT INTO consents VALUES ('C-1', '/x/consents.csv', 'Patient/QZPAT7731', 'County BH', "
                   "'[\"pd\"]', 'PUBHLTH', '[]', 'active', '2026-01-01', '2027-01-01', '2026-11-20', 1, '', "
                   "'2026-01-01 00:00:00.000000')")
    assert b"QZPAT7731" in path.read_bytes() + (tmp_path / "var/state.db-wal").read_bytes()

    registry = ConsentRegistry(open_engine(f"sqlite:///{path}"), b"s" * 32)
    (consent,) = registry.for_patient("Patient/QZPAT7731")  # the first read migrates
    assert consent.consent_id == "C-1" and consent.revoked_on == date(2026, 11, 20) and consent.part2
    assert b"QZPAT7731" not in _raw(tmp_path)
    with sqlite3.connect(path) as db:
        columns = {row[1] for row in db.execute("PRAGMA table_info(consents)")}
    assert "patient_id" not in columns and {"patient_key", "shared_id"} <= columns
    assert registry.for_patient("QZPAT7731") and not registry.for_patient("Patient/QZPAT0000")


def test_the_migration_also_runs_on_postgresql():
    """Same migration on a real PostgreSQL 15 (the failed statement aborts its transaction: migrate, retry)."""
    import pytest
    import sqlalchemy as sa

    from exchange.consent_registry import ConsentRegistry
    from exchange.state.db import open_engine
    from tests.support.postgres import available, running_postgres

    if not available():
        pytest.skip("PostgreSQL 15 server binaries are not installed")
    with running_postgres() as url:
        with sa.create_engine(url).begin() as conn:  # the consents table as the previous version created it
            conn.exec_driver_sql(
                "CREATE TABLE consents (consent_id VARCHAR(200) PRIMARY KEY, source VARCHAR(500) NOT NULL, "
                "patient_id VARCHAR(200) NOT NULL, discloser VARCHAR(300) NOT NULL, recipients TEXT NOT NULL, "
                "purpose VARCHAR(200) NOT NULL, information TEXT NOT NULL, status VARCHAR(32) NOT NULL, "
                "signed_on VARCHAR(10), expires_on VARCHAR(10), revoked_on VARCHAR(10), part2 INTEGER NOT NULL, "
                "expiry_event VARCHAR(300) NOT NULL, updated_at TIMESTAMP WITH TIME ZONE NOT NULL)")
            conn.exec_driver_sql("CREATE INDEX ix_consents_patient_id ON consents (patient_id)")
            conn.exec_driver_sql("INSERT INTO consents VALUES ('C-1', '/x/c.csv', 'Patient/QZPAT7731', 'County BH', "
                                 "'[\"pd\"]', 'PUBHLTH', '[]', 'active', '2026-01-01', '2027-01-01', NULL, 0, '', "
                                 "'2026-01-01T00:00:00Z')")
        engine = open_engine(url)
        registry = ConsentRegistry(engine, b"s" * 32)
        assert registry.revoke("C-1", date(2026, 11, 20))  # a write migrates too
        (consent,) = registry.for_patient("QZPAT7731")
        assert consent.revoked_on == date(2026, 11, 20)
        with engine.connect() as conn:
            columns = {c["name"] for c in sa.inspect(conn).get_columns("consents")}
            stored = " ".join(str(v) for row in conn.exec_driver_sql("SELECT * FROM consents") for v in row)
        engine.dispose()
    assert "patient_id" not in columns and "QZPAT7731" not in stored
