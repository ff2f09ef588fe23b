"""The FHIR REST source against a real HTTP server on 127.0.0.1 serving Synthea patients.

The server (``tests/support/fhir_server.py``: stdlib ``http.server`` in a thread) pages search results through ``next`` links, filters by
``_lastUpdated`` (gt/le), serves ``Patient/<id>`` and ``?patient=<id>`` searches, and only answers requests
carrying a bearer token from its token endpoint, which checks the SMART client-assertion JWT's signature
against the public key registered for the client (a key pair minted per test run).
"""
from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from adapters.sources.fhir import FhirBundleSource
from adapters.sources.fhir_rest import FhirRestSource, SmartBackendAuth
from tests.support.fhir_server import CLIENT_ID, FhirServer
from transforms.model import ClinicalRecord, ConfigError, ConsentRecord, Rejected, SecurityError

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
TODAY = date(2026, 11, 24)
BUNDLES = SHARED / "data/synthea-r4-smart-generated/bundles"
T1 = datetime(2026, 11, 1, 12, 0, tzinfo=timezone.utc)


def _load_synthea(n: int) -> list[dict]:
    """The first ``n`` Synthea bundles as a server would store them: ids, Patient/<id> references."""
    if not BUNDLES.exists():
        pytest.skip("../shared/data/synthea-r4-smart-generated is absent")
    out: list[dict] = []
    for path in sorted(BUNDLES.glob("*.json"))[:n]:
        bundle = json.loads(path.read_text())
        alias = {e["fullUrl"]: f"Patient/{e['resource']['id']}" for e in bundle["entry"]
                 if e["resource"]["resourceType"] == "Patient"}
        for entry in bundle["entry"]:
            resource = entry["resource"]
            if resource["resourceType"] not in ("Patient", "Condition", "Encounter", "CarePlan"):
                continue
            for key in ("subject", "patient"):
                if isinstance(resource.get(key), dict) and resource[key].get("reference") in alias:
                    resource[key] = {"reference": alias[resource[key]["reference"]]}
            resource["meta"] = {"lastUpdated": T1.isoformat()}
            out.append(resource)
    return out


@pytest.fixture()
def keypair() -> tuple[bytes, bytes]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return private, public


@pytest.fixture()
def fhir_server(keypair) -> Iterator[FhirServer]:
    server = FhirServer(keypair[1])
    server.thread.start()
    yield server
    server.httpd.shutdown()
    server.httpd.server_close()


@pytest.mark.shared
def test_incremental_sync_with_paging_and_smart_backend_auth(fhir_server: FhirServer, keypair) -> None:
    fhir_server.resources = _load_synthea(3)
    now = [T1 + timedelta(hours=1)]
    auth = SmartBackendAuth(f"{fhir_server.base}/token", CLIENT_ID, keypair[0], key_id="k1")
    source = FhirRestSource(f"{fhir_server.base}/fhir", today=TODAY, auth=auth, page_size=7, clock=lambda: now[0])

    windows = source.plan(None, 500)
    first = [i for w in windows for i in source.read(w)]
    assert len(first) == 3 and all(isinstance(i, ClinicalRecord) for i in first)
    assert any("_offset=" in r for r in fhir_server.requests)  # results came over several pages
    patients = sorted(i.patient_id for i in first)
    # every page was followed: the same conditions and latest encounter as reading the bundle files directly
    direct = {}
    for path in sorted(BUNDLES.glob("*.json"))[:3]:
        bundle_source = FhirBundleSource(path, today=TODAY)
        direct.update({r.patient_id: r for w in bundle_source.plan(None, 10) for r in bundle_source.read(w)})
    assert {i.patient_id: (i.conditions, i.last_encounter_at) for i in first} == {
        k: (r.conditions, r.last_encounter_at) for k, r in direct.items()}
    cursor = windows[-1].cursor_after

    now[0] += timedelta(hours=1)
    assert [i for w in source.plan(cursor, 500) for i in source.read(w)] == []  # nothing changed: nothing read

    changed = patients[1]
    fhir_server.resources.append({
        "resourceType": "Condition", "id": "new-f-code", "meta": {"lastUpdated": (now[0] - timedelta(minutes=40))
                                                                  .isoformat(), "security": [{"code": "PSY"}]},
        "subject": {"reference": f"Patient/{changed}"}, "recordedDate": "2026-11-01",
        "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "F20.9"}]}})
    fhir_server.resources.append({
        "resourceType": "Consent", "id": "k1", "status": "active", "meta": {"lastUpdated": now[0].isoformat()},
        "patient": {"reference": f"Patient/{changed}"}, "dateTime": "2026-11-01",
        "provision": {"type": "permit", "actor": [{"reference": {"reference": "Organization/county-bh"}}]}})
    now[0] += timedelta(minutes=5)
    windows = source.plan(cursor, 500)
    second = [i for w in windows for i in source.read(w)]
    assert [type(i).__name__ for i in second] == ["ClinicalRecord", "ConsentRecord"]
    record, consent = second
    assert record.patient_id == changed
    assert ("F20.9", frozenset({"PSY"})) in {(c.coding.code, c.security_labels) for c in record.conditions}
    assert isinstance(consent, ConsentRecord) and consent.recipients == ("Organization/county-bh",)


def test_token_endpoint_refuses_an_assertion_signed_with_another_key(fhir_server: FhirServer) -> None:
    fhir_server.resources = []
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    auth = SmartBackendAuth(f"{fhir_server.base}/token", CLIENT_ID, stranger, key_id="k1")
    source = FhirRestSource(f"{fhir_server.base}/fhir", today=TODAY, auth=auth)
    with pytest.raises(SecurityError, match="refused"):
        list(source.read(source.plan(None, 10)[0]))


def test_without_a_token_the_server_refuses_and_the_source_says_so(fhir_server: FhirServer) -> None:
    source = FhirRestSource(f"{fhir_server.base}/fhir", today=TODAY)
    with pytest.raises(SecurityError):
        list(source.read(source.plan(None, 10)[0]))


def test_a_changed_resource_of_an_unknown_patient_is_rejected_not_dropped(fhir_server: FhirServer, keypair) -> None:
    fhir_server.resources = [{"resourceType": "Condition", "id": "c1", "meta": {"lastUpdated": T1.isoformat()},
                              "subject": {"reference": "Patient/ghost"}}]
    auth = SmartBackendAuth(f"{fhir_server.base}/token", CLIENT_ID, keypair[0], key_id="k1")
    source = FhirRestSource(f"{fhir_server.base}/fhir", today=TODAY, auth=auth)
    items = list(source.read(source.plan(None, 10)[0]))
    assert len(items) == 1 and isinstance(items[0], Rejected) and items[0].error.field == "Patient"


def test_plain_http_is_refused_off_host() -> None:
    with pytest.raises(ConfigError, match="plain http"):
        FhirRestSource("http://ehr.example.org/fhir", today=TODAY)
