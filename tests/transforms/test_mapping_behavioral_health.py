"""BehavioralHealthAlert from a ClinicalRecord: the need flag and a contact, never a diagnosis."""
from __future__ import annotations

from dataclasses import replace

from lxml import etree
from mapping_cases import CLINICAL, SHARED_ID, check_golden, header

from niem_iepd import ns, validator
from transforms.mapping import BUILDERS, behavioral_health_alert

NEED = "nx:BehavioralHealthNeed"


def test_alert_matches_golden_and_validates():
    check_golden(behavioral_health_alert(CLINICAL, SHARED_ID, header("BehavioralHealthAlert")),
                 "behavioral-health-alert")


def test_alert_carries_flag_plan_directive_and_case_manager():
    message = BUILDERS["BehavioralHealthAlert"].build(CLINICAL, SHARED_ID, header("BehavioralHealthAlert"))
    assert message.findtext(ns.clark(f"{NEED}/nx:BehavioralHealthNeedIndicator")) == "true"
    assert message.findtext(ns.clark(f"{NEED}/nx:CrisisPlanOnFileIndicator")) == "true"
    assert message.findtext(ns.clark(f"{NEED}/nx:AdvanceDirectiveOnFileIndicator")) == "false"
    contact = f"{NEED}/nx:CaseManagerContact"
    assert message.findtext(ns.clark(f"{contact}/nc:PersonName/nc:PersonFullName")) == "Dana Whitfield"
    assert message.findtext(ns.clark(f"{contact}/nc:TelephoneNumberFullID")) == "555-0142"


def test_no_diagnosis_ever_leaves():
    message = behavioral_health_alert(CLINICAL, SHARED_ID, header("BehavioralHealthAlert"))
    text = etree.tostring(message).decode()
    assert "CANARY-DIAGNOSIS" not in text and "F20.9" not in text and "icd-10" not in text.lower()


def test_record_without_any_sign_of_need_sends_false():
    quiet = replace(CLINICAL, conditions=(), crisis_plan=False, case_manager=None, last_encounter_at=None)
    message = behavioral_health_alert(quiet, SHARED_ID, header("BehavioralHealthAlert"))
    assert message.findtext(ns.clark(f"{NEED}/nx:BehavioralHealthNeedIndicator")) == "false"
    assert message.find(ns.clark(f"{NEED}/nx:CaseManagerContact")) is None
    assert validator.validate(message) == []


def test_a_diagnosis_element_slipped_in_is_refused_by_rule_nx_bha_1():
    message = behavioral_health_alert(CLINICAL, SHARED_ID, header("BehavioralHealthAlert"))
    subject = message.find(ns.clark(f"{NEED}/nx:AlertSubject"))
    # A foreign element is XSD-invalid too; the Schematron rule names why it must never be there.
    etree.SubElement(subject, f"{{{ns.J}}}TreatmentDiagnosisText").text = "withheld"
    assert "NX-BHA-1" in {issue.rule for issue in validator.validate(message)}
