"""FHIR bundle and Bulk Data NDJSON sources on the Synthea samples (read in place) and on broken files."""
from __future__ import annotations

import json
import shutil
from collections import Counter
from datetime import date
from pathlib import Path

import pytest

from adapters.sources.fhir import FhirBundleSource, FhirNdjsonSource
from transforms.model import ClinicalRecord, Rejected

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
TODAY = date(2026, 11, 24)
CANARY = "ZQXCANARY"
BUNDLES = SHARED / "data/synthea-r4-smart-generated/bundles"
NDJSON = SHARED / "data/synthea-bulk-ndjson-10"


def _need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"{path} is absent")
    return path


def _all(source, cursor=None, batch=500) -> list:
    return [item for w in source.plan(cursor, batch) for item in source.read(w)]


@pytest.mark.shared
def test_synthea_bundles_give_one_clinical_record_per_patient_with_their_bh_conditions() -> None:
    source = FhirBundleSource(_need(BUNDLES), today=TODAY, system="synthea")
    items = _all(source)
    assert len(items) == 21 and all(isinstance(i, ClinicalRecord) for i in items)
    by_name = {(i.person.given_name, i.person.surname): i for i in items}
    darron = by_name[("DARRON", "FEENEY")]  # MDD + opioid abuse (README)
    assert {c.coding.code for c in darron.conditions} == {"370143000", "5602001"}
    assert darron.person.ssn.startswith("999") and darron.person.birth_date is not None
    # the README's categories: 11 patients with an MH/SUD code, 10 controls with none
    assert sum(bool(i.conditions) for i in items) == 11
    counts = Counter(c.coding.code for i in items for c in i.conditions)
    assert counts["55680006"] == 4 and counts["192127007"] == 3  # drug overdose, child ADD
    assert all(i.ref.locator.split("#")[1].startswith("entry=") for i in items)


@pytest.mark.shared
def test_bundle_cursor_skips_files_done_and_reads_a_new_one(tmp_path: Path) -> None:
    names = sorted(p.name for p in _need(BUNDLES).glob("*.json"))[:4]
    for name in names[:2]:
        shutil.copyfile(BUNDLES / name, tmp_path / name)  # a drop directory of our own (temp, not the repo)
    source = FhirBundleSource(tmp_path, today=TODAY)
    windows = source.plan(None, 1)
    assert [[f for f, _ in w.spec["files"]] for w in windows] == [[names[0]], [names[1]]]
    cursor = windows[-1].cursor_after
    assert source.plan(cursor, 500) == []
    shutil.copyfile(BUNDLES / names[2], tmp_path / names[2])
    (tmp_path / "half-written.json.part").write_bytes(b"{")
    again = source.plan(cursor, 500)
    assert [[f for f, _ in w.spec["files"]] for w in again] == [[names[2]]]
    # a file archived away is forgotten by the cursor, which stays as small as the drop
    (tmp_path / names[0]).unlink()
    shutil.copyfile(BUNDLES / names[3], tmp_path / names[3])
    (latest,) = source.plan(again[-1].cursor_after, 500)
    assert [f for f, _ in latest.spec["files"]] == [names[3]]
    assert len(json.loads(latest.cursor_after)["done"]) == 3


@pytest.mark.shared
def test_bulk_ndjson_export_joins_resources_to_their_patients_across_windows() -> None:
    source = FhirNdjsonSource(_need(NDJSON), today=TODAY)
    windows = source.plan(None, 3)
    assert len(windows) == 3  # 7 patients in slices of 3
    items = [i for w in windows for i in source.read(w)]
    assert len(items) == 7 and all(isinstance(i, ClinicalRecord) for i in items)
    assert sum(len(i.conditions) for i in items) > 0
    # README: 6 patients have Stress (73595000), 2 unhealthy alcohol drinking, 1 severe anxiety
    having = Counter(code for i in items for code in {c.coding.code for c in i.conditions})
    assert (having["73595000"], having["10939881000119105"], having["80583007"]) == (6, 2, 1)
    assert sum(i.person.birth_date == date(1927, 5, 21) for i in items) == 3
    assert all(i.last_encounter_at is not None for i in items)
    assert source.plan(windows[-1].cursor_after, 3) == []


def _bundle(*entries: dict) -> bytes:
    return json.dumps({"resourceType": "Bundle", "type": "collection", "entry": list(entries)}).encode()


def _patient(pid: str, **over: object) -> dict:
    resource = {"resourceType": "Patient", "id": pid, "name": [{"family": "Doe", "given": ["Jo"]}],
                "birthDate": "1980-01-01", "meta": {"lastUpdated": "2026-01-01T00:00:00Z"}}
    resource.update(over)
    return {"fullUrl": f"urn:uuid:{pid}", "resource": resource}


def test_bad_bundles_are_rejected_by_file_and_field_and_good_ones_still_read(tmp_path: Path) -> None:
    (tmp_path / "a-good.json").write_bytes(_bundle(_patient("p1"), {"resource": {"id": "no-type"}},
                                                   _patient("p2", birthDate=f"1980-13-{CANARY}")))
    (tmp_path / "b-not-json.json").write_bytes(b'{"resourceType": "Bundle", ' + CANARY.encode())
    (tmp_path / "c-latin1.json").write_bytes(_bundle(_patient("p3")).replace(b"Doe", b"D\xf6e"))
    (tmp_path / "d-control.json").write_bytes(_bundle(_patient("p4", name=[{"family": "Do\u0007e", "given": ["X"]}])))
    (tmp_path / "e-patient.json").write_bytes(json.dumps(_patient("p5")["resource"]).encode())
    items = _all(FhirBundleSource(tmp_path, today=TODAY))
    good = [i for i in items if isinstance(i, ClinicalRecord)]
    assert [g.patient_id for g in good] == ["p1"]
    reasons = sorted((i.error.record.split(":", 1)[1], i.error.field) for i in items if isinstance(i, Rejected))
    assert reasons == [
        ("a-good.json#entry=1", "Bundle.entry[1].resource"),
        ("a-good.json#entry=2", "Patient.birthDate"),
        ("b-not-json.json", "(json)"),
        ("c-latin1.json", "(file)"),
        ("d-control.json#entry=0", "Patient.name.family"),
        ("e-patient.json", "resourceType"),
    ]
    assert all(CANARY not in str(i.error) for i in items if isinstance(i, Rejected))


def test_bad_ndjson_lines_and_orphans_are_reported_once_with_the_last_window(tmp_path: Path) -> None:
    patients = [json.dumps(_patient(f"p{n}")["resource"]) for n in range(4)]
    (tmp_path / "Patient.ndjson").write_text("\n".join(patients[:2] + ["{not json " + CANARY] + patients[2:]) + "\n")
    condition = {"resourceType": "Condition", "id": "c1", "subject": {"reference": "Patient/p3"},
                 "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "F32.9"}]}}
    orphan = dict(condition, id="c2", subject={"reference": "Patient/ghost"})
    (tmp_path / "Condition.ndjson").write_text(json.dumps(condition) + "\n" + json.dumps(orphan) + "\n[1]\n")
    source = FhirNdjsonSource(tmp_path, today=TODAY)
    items = _all(source, batch=2)
    records = {i.patient_id: i for i in items if isinstance(i, ClinicalRecord)}
    assert sorted(records) == ["p0", "p1", "p2", "p3"]
    assert [c.coding.code for c in records["p3"].conditions] == ["F32.9"]
    rejected = sorted((i.error.record.split(":", 1)[1], i.error.field) for i in items if isinstance(i, Rejected))
    assert rejected == [("Condition.ndjson#line=2", "Condition.subject"), ("Condition.ndjson#line=3", "resourceType"),
                        ("Patient.ndjson#line=3", "(json)")]
