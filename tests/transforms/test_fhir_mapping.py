"""FHIR resources -> ClinicalRecord / ConsentRecord: what is kept, labels, case manager, consent provisions."""
from __future__ import annotations

import json
from datetime import date, datetime, timezone
from pathlib import Path

import pytest

from transforms.model import ClinicalRecord, ConsentRecord, RecordError, SourceRef
from transforms.model.fhir import clinical_record, consent_record, records_from_resources

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
TODAY = date(2026, 11, 24)
CANARY = "ZQXCANARY"
REF = SourceRef("ehr", "test#entry=0", "p1")


def _patient(**over: object) -> dict:
    patient = {
        "resourceType": "Patient", "id": "p1", "meta": {"lastUpdated": "2026-03-01T10:00:00Z",
                                                       "security": [{"code": "R"}]},
        "name": [{"use": "official", "family": "Rivera", "given": ["Ana", "Luz"]}],
        "gender": "female", "birthDate": "1990-02-03",
        "identifier": [
            {"type": {"coding": [{"code": "MR"}]}, "system": "urn:mrn", "value": "mrn-77"},
            {"type": {"coding": [{"code": "SS"}]}, "system": "http://hl7.org/fhir/sid/us-ssn", "value": "999-12-3456"},
        ],
    }
    patient.update(over)
    return patient


def _condition(ident: str, system: str, code: str, labels: tuple[str, ...] = ()) -> dict:
    return {"resourceType": "Condition", "id": ident, "subject": {"reference": "Patient/p1"},
            "meta": {"security": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": c}
                                  for c in labels]},
            "clinicalStatus": {"coding": [{"code": "active"}]},
            "code": {"coding": [{"system": system, "code": code, "display": "x"}]}, "recordedDate": "2025-05-06"}


def test_behavioral_conditions_are_kept_with_their_security_labels() -> None:
    related = [
        _condition("c1", "http://hl7.org/fhir/sid/icd-10-cm", "F33.1", ("PSY",)),
        _condition("c2", "http://hl7.org/fhir/sid/icd-10-cm", "F11.20", ("42CFRPart2", "ETH")),
        _condition("c3", "http://hl7.org/fhir/sid/icd-10-cm", "S93.401A"),  # a sprained ankle: not kept
        _condition("c4", "http://snomed.info/sct", "47505003"),  # PTSD
        {"resourceType": "CareTeam", "id": "t1", "status": "active", "subject": {"reference": "Patient/p1"},
         "participant": [{"role": [{"coding": [{"system": "http://snomed.info/sct", "code": "768730001"}]}],
                          "member": {"display": "Casey Manager"}}],
         "managingOrganization": [{"display": "County BH"}], "telecom": [{"system": "phone", "value": "555-0100"}]},
        {"resourceType": "CarePlan", "id": "cp", "status": "active", "title": "Crisis safety plan",
         "subject": {"reference": "Patient/p1"}},
        {"resourceType": "Encounter", "id": "e1", "subject": {"reference": "Patient/p1"},
         "period": {"start": "2026-04-01T09:00:00-05:00"}},
    ]
    record = clinical_record(_patient(), related, REF, today=TODAY)
    codes = {c.coding.code: c.security_labels for c in record.conditions}
    assert codes == {"F33.1": {"PSY"}, "F11.20": {"42CFRPart2", "ETH"}, "47505003": frozenset()}
    assert record.security_labels == {"R"} and not record.part2_program
    assert record.case_manager is not None and record.case_manager.name == "Casey Manager"
    assert record.case_manager.organization == "County BH" and record.case_manager.phone == "555-0100"
    assert record.crisis_plan and not record.advance_directive
    assert record.person.ssn == "999123456" and record.person.local_person_id == "MRN-77"
    assert record.person.middle_name == "LUZ" and record.person.sex == "F"
    # the latest of meta.lastUpdated and the clinical dates
    assert record.updated_at == datetime(2026, 4, 1, 14, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize(("patch", "field"), [
    ({"birthDate": f"02/03/{CANARY}"}, "Patient.birthDate"),
    ({"gender": CANARY}, "Patient.gender"),
    ({"name": [{"family": f"Ri\x01vera{CANARY}", "given": ["Ana"]}]}, "Patient.name.family"),
    ({"name": [{"family": "R" * 500 + CANARY, "given": ["Ana"]}]}, "Patient.name.family"),
    ({"name": []}, "Patient.name"),
])
def test_bad_patient_elements_are_named_never_quoted(patch: dict, field: str) -> None:
    with pytest.raises(RecordError) as caught:
        clinical_record(_patient(**patch), [], REF, today=TODAY)
    assert caught.value.field == field
    assert CANARY not in str(caught.value)


def test_resources_of_a_patient_not_in_the_input_are_reported() -> None:
    orphan = _condition("c9", "http://hl7.org/fhir/sid/icd-10-cm", "F20.9")
    orphan["subject"] = {"reference": "Patient/missing"}
    out = list(records_from_resources([("a#1", _patient()), ("a#2", orphan)], system="ehr", today=TODAY))
    assert isinstance(out[0], ClinicalRecord)
    assert isinstance(out[1], RecordError) and out[1].field == "Patient"


def _leap(name: str) -> dict:
    path = SHARED / "data/fhir-consent-leap-cds/consents" / name
    if not path.exists():
        pytest.skip("../shared/data/fhir-consent-leap-cds is absent")
    return json.loads(path.read_text())


@pytest.mark.shared
def test_leap_consents_keep_period_status_and_denied_actors() -> None:
    denied = consent_record(_leap("consent-boris-deny-practitioner.json"), REF)
    assert isinstance(denied, ConsentRecord)
    assert (denied.consent_id, denied.patient_id, denied.status) == ("consent-boris-deny-practitioner", "52", "active")
    assert denied.recipients == ("*", "!Practitioner/001") and denied.discloser == "Organization/53"
    assert (denied.signed_on, denied.expires_on, denied.purpose) == (date(2020, 5, 29), date(2029, 1, 1),
                                                                       "patient-privacy")
    expired = consent_record(_leap("consent-boris-expired.json"), REF)
    assert expired.expires_on == date(2016, 1, 1)
    research = consent_record(_leap("consent-boris-research.json"), REF)
    assert (research.status, research.purpose) == ("inactive", "research")
    optout = consent_record(_leap("consent-boris-optout.json"), REF)
    assert "*" not in optout.recipients  # a root deny permits nobody
    labels = consent_record(_leap("consent-boris-multiple-deny-labels.json"), REF)
    assert set(labels.information) == {"!ETHUD", "!HIV"}


def test_consent_with_unknown_status_is_rejected_by_field() -> None:
    with pytest.raises(RecordError) as caught:
        consent_record({"resourceType": "Consent", "id": "k1", "status": CANARY,
                        "patient": {"reference": "Patient/p1"}, "dateTime": "2026-01-01"}, REF)
    assert caught.value.field == "Consent.status" and CANARY not in str(caught.value)
