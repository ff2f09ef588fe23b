"""Consent through the whole pipeline, from the CLI: an EHR's FHIR bundles -> BehavioralHealthAlert -> a police
agency under the law-enforcement profile (requires a consent). Nothing leaves before a consent is loaded; after
``consents load`` the next version of the record leaves (the registry matches the record's bare patient id to the
consent's ``Patient/...`` reference by keyed hash) and ``consents list`` shows the person's shared id; after
``consents revoke`` the next version does not leave."""
from __future__ import annotations

import json
import sqlite3
from datetime import datetime, timezone
from pathlib import Path

import yaml
from typer.testing import CliRunner

from exchange.cli import app
from tests.exchange.lawful_helpers import exchange_yaml, received, run, small_drop
from tests.exchange.test_lawful_consents_cli import HEADER

PATIENT = "QZPAT4417"


def patient_resources(patient_id: str, stamp: str, code: str) -> list[dict]:
    """A patient with one active ICD-10-CM condition ``code`` and a crisis plan on file."""
    patient = {"resourceType": "Patient", "id": patient_id, "meta": {"lastUpdated": stamp}, "gender": "female",
               "name": [{"use": "official", "family": "Qzfamily", "given": [f"Qz{patient_id}"]}],
               "birthDate": "1984-05-06"}
    condition = {"resourceType": "Condition", "id": f"c-{patient_id}", "meta": {"lastUpdated": stamp},
                 "subject": {"reference": f"Patient/{patient_id}"}, "recordedDate": "2025-12-01",
                 "clinicalStatus": {"coding": [{"code": "active"}]},
                 "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": code}]}}
    plan = {"resourceType": "CarePlan", "id": f"p-{patient_id}", "status": "active", "title": "Crisis safety plan",
            "meta": {"lastUpdated": stamp}, "subject": {"reference": f"Patient/{patient_id}"}}
    return [patient, condition, plan]


def write_bundle(drop: Path, version: int, patients: dict[str, str] | None = None) -> None:
    """Version ``version`` of each patient's record (patient id -> condition code; default: depression F32.1)."""
    stamp = f"2026-0{version}-10T12:00:00Z"
    resources = [r for pid, code in (patients or {PATIENT: "F32.1"}).items()
                 for r in patient_resources(pid, stamp, code)]
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": r} for r in resources]}
    drop.mkdir(exist_ok=True)
    (drop / f"{version}.json").write_text(json.dumps(bundle))


def ehr_exchange(tmp_path: Path) -> tuple[Path, Path, list[str]]:
    """(home, config, CLI options) of an EHR -> BehavioralHealthAlert -> "pd" (law-enforcement) exchange."""
    from exchange.security import mint_dev_pki

    home = tmp_path / "home"
    mint_dev_pki(home / "certs/dev", organization="Example County Behavioral Health", recipients=["pd"],
                 now=datetime.now(timezone.utc))
    config = exchange_yaml(home, small_drop(home / "unused", rows=1), {"pd": "law-enforcement"})
    raw = yaml.safe_load(config.read_text())
    raw.update(name="ehr-alerts", message_type="BehavioralHealthAlert",
               source={"kind": "fhir_bundle", "path": "drop", "system": "ehr"})
    config.write_text(yaml.safe_dump(raw))
    return home, config, ["--config", str(config), "--home", str(home)]


def test_consent_loaded_then_revoked_governs_the_next_run(tmp_path):
    home, config, cli = ehr_exchange(tmp_path)
    runner = CliRunner()

    write_bundle(home / "drop", 1)
    first = run(config, home)
    assert first.read == 1 and first.quarantined == 0 and first.delivered == 0  # no consent on file: nothing

    sheet = tmp_path / "consents.csv"
    sheet.write_text(HEADER + f"C-7,Patient/{PATIENT},County BH,class:law-enforcement,PUBHLTH,need flag;contact,"
                              "active,2026-01-01,2099-12-31,,no,\n")
    assert runner.invoke(app, ["consents", "load", str(sheet), *cli]).exit_code == 0
    write_bundle(home / "drop", 2)
    second = run(config, home)
    assert second.delivered == 1
    (message,) = received(home, "pd")
    assert b"<nc:IdentificationID>C-7<" in message and f"QZ{PATIENT}".encode() in message  # under consent C-7, to identify
    assert b"NeedIndicator>true<" in message and b"F32" not in message  # the need flag, not the diagnosis
    listed = runner.invoke(app, ["consents", "list", *cli], env={"COLUMNS": "250"}).output
    line = next(x for x in listed.splitlines() if "C-7" in x)
    assert "NXP-" in line and PATIENT not in listed  # the pipeline linked the person; no patient reference shown

    today = datetime.now(timezone.utc).date().isoformat()
    assert runner.invoke(app, ["consents", "revoke", "C-7", "--on", today, *cli]).exit_code == 0
    write_bundle(home / "drop", 3)
    third = run(config, home)
    assert third.read == 1 and third.delivered == 0
    assert len(received(home, "pd")) == 1
    with sqlite3.connect(home / "var/state.db") as db:  # the registry's rows: no patient reference, the person
        rows = [" ".join(str(v) for v in row) for row in db.execute("SELECT * FROM consents")]
    assert len(rows) == 1 and PATIENT not in rows[0] and "NXP-" in rows[0]


def test_a_person_first_linked_in_the_run_that_discloses_is_shown_on_the_consent(tmp_path):
    """Consent on file before the record is ever seen: the run that links the person and discloses under the
    consent also stamps the person's shared id on it (the link is committed before redaction looks it up)."""
    home, config, cli = ehr_exchange(tmp_path)
    runner = CliRunner()
    sheet = tmp_path / "consents.csv"
    sheet.write_text(HEADER + f"C-7,Patient/{PATIENT},County BH,class:law-enforcement,PUBHLTH,need flag;contact,"
                              "active,2026-01-01,2099-12-31,,no,\n")
    assert runner.invoke(app, ["consents", "load", str(sheet), *cli]).exit_code == 0
    before = runner.invoke(app, ["consents", "list", *cli], env={"COLUMNS": "250"}).output
    assert "(not linked yet)" in next(x for x in before.splitlines() if "C-7" in x)

    write_bundle(home / "drop", 1)
    first = run(config, home)
    assert first.read == 1 and first.delivered == 1
    listed = runner.invoke(app, ["consents", "list", *cli], env={"COLUMNS": "250"}).output
    line = next(x for x in listed.splitlines() if "C-7" in x)
    assert "NXP-" in line and "(not linked yet)" not in line


def test_part2_data_leaves_only_under_a_part2_consent_and_with_the_cited_2_32_notice(tmp_path):
    """Two patients with an opioid use disorder (F11.20: Part 2 information); both consented to the police
    agency's class, only one of the consents authorizes Part 2 information. Only that patient's alert leaves, and
    it carries the 2.32 notice as cited (tests/transforms/test_part2_notice.py) and the consent's scope."""
    from niem_iepd import ns, safexml
    from tests.transforms.test_part2_notice import CITED
    from transforms.redaction import PART2_NOTICE

    home, config, cli = ehr_exchange(tmp_path)
    sheet = tmp_path / "consents.csv"
    sheet.write_text(HEADER + "P2-YES,Patient/QZSUD1,County BH,class:law-enforcement,PUBHLTH,need flag,active,"
                              "2026-01-01,2099-12-31,,yes,\n"
                              "P2-NO,Patient/QZSUD2,County BH,class:law-enforcement,PUBHLTH,need flag,active,"
                              "2026-01-01,2099-12-31,,no,\n")
    assert CliRunner().invoke(app, ["consents", "load", str(sheet), *cli]).exit_code == 0
    write_bundle(home / "drop", 1, {"QZSUD1": "F11.20", "QZSUD2": "F11.20"})
    summary = run(config, home)
    assert summary.read == 2 and summary.quarantined == 0 and summary.delivered == 1
    (message,) = received(home, "pd")
    assert b"QZQZSUD1" in message and b"QZSUD2" not in message and b"F11" not in message
    privacy = safexml.parse(message).getroot().find(ns.clark("nx:PrivacyMetadata"))
    assert privacy.findtext(ns.clark("nx:Part2LabelIndicator")) == "true"
    notice = privacy.findtext(ns.clark("nx:RedisclosureNoticeText"))
    assert notice.startswith(CITED) and notice.startswith(PART2_NOTICE + " Scope of consent P2-YES: need flag;")
