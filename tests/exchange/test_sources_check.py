"""``niem-exchange sources check``: the real CLI on real files and databases; nothing is written or sent."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared"
CANARY = "ZQXCANARY"


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "exchange.cli", "sources", "check", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=120, env={"PYTHONPATH": str(REPO), "PATH": "", "COLUMNS": "200"})


def test_rms_sql_check_counts_records_and_quarantine_reasons_without_values(tmp_path: Path) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'rms.db'}")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE arrests (arrest_no TEXT PRIMARY KEY, first_name TEXT, last_name TEXT, "
                             "arrested_at TEXT, updated_at TEXT)")
        conn.exec_driver_sql("INSERT INTO arrests VALUES ('A1','Ana','Doe','2026-11-01T10:00:00-05:00',"
                             "'2026-11-01T10:00:00-05:00'), ('A2','Bo','Roe','2026-11-01T11:00:00-05:00',"
                             "'2026-11-01T11:00:00-05:00'), ('A3','Cy',?, 'not a time','2026-11-01T12:00:00-05:00')",
                             (CANARY,))
    before = sorted(p.name for p in tmp_path.iterdir())
    done = _cli("rms-sql", str(tmp_path / "rms.db"), "--table", "arrests", "--record-kind", "arrest",
                "--column", "arrest_number=arrest_no", "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["records"] == {"Arrest": 2}
    assert report["quarantined"] == {"arrested_at: is not a valid date-time (expected YYYY-MM-DDTHH:MM:SS±HH:MM)": 1}
    assert CANARY not in done.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no state database, no outbox


@pytest.mark.shared
def test_fhir_bundle_check_on_synthea_prints_a_table(tmp_path: Path) -> None:
    bundles = SHARED / "data/synthea-r4-smart-generated/bundles"
    if not bundles.exists():
        pytest.skip("../shared/data/synthea-r4-smart-generated is absent")
    done = _cli("fhir-bundle", str(bundles), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "fhir-bundle: 21 record(s) in 1 window(s), 0 quarantined" in done.stdout
    assert "ClinicalRecord" in done.stdout


def test_unknown_kind_and_missing_path_are_usage_errors(tmp_path: Path) -> None:
    assert _cli("ldap", "x", cwd=tmp_path).returncode == 2
    missing = _cli("fhir-ndjson", str(tmp_path / "nope"), cwd=tmp_path)
    assert missing.returncode == 2 and "does not exist" in " ".join(missing.stderr.split())


def test_fhir_rest_check_with_smart_auth_against_a_real_server(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    from tests.support.fhir_server import CLIENT_ID, FhirServer

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    (tmp_path / "client.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    server = FhirServer(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                      serialization.PublicFormat.SubjectPublicKeyInfo))
    stamp = {"lastUpdated": "2026-11-01T12:00:00+00:00"}
    server.resources = [
        {"resourceType": "Patient", "id": "p1", "meta": stamp, "name": [{"family": "Doe", "given": ["Jo"]}]},
        {"resourceType": "Condition", "id": "c1", "meta": stamp, "subject": {"reference": "Patient/p1"},
         "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "F20.9"}]}},
        {"resourceType": "Condition", "id": "c2", "meta": stamp, "subject": {"reference": "Patient/ghost"}},
    ]
    server.thread.start()
    try:
        done = _cli("fhir-rest", f"{server.base}/fhir", "--token-url", f"{server.base}/token", "--client-id",
                    CLIENT_ID, "--private-key", str(tmp_path / "client.pem"), "--key-id", "k1", "--json",
                    cwd=tmp_path)
    finally:
        server.httpd.shutdown()
        server.httpd.server_close()
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["records"] == {"ClinicalRecord": 1}
    assert list(report["quarantined"]) == ["Patient: is referred to by changed resources but the server has no "
                                           "such Patient"]
