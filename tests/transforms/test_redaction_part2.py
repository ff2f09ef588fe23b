"""42 CFR Part 2: the need flag never rests on Part 2 data without consent; Part 2 content never leaves without
a valid consent; with one, the 2.32 notice goes along. Over generated clinical records x consents."""
from __future__ import annotations

from datetime import date, datetime, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from exchange.config import RecipientConfig
from exchange.disclosure import RecipientPolicy, part2_labelled, part2_whole, prepare
from exchange.profiles import load_profile, shipped_dir
from niem_iepd import ns, validator
from transforms.model import ClinicalRecord, Coding, Condition, SourceRef, PersonIdentity
from transforms.redaction import PART2_NOTICE, derive_need_flag, element_path

from redaction_cases import NOW, clinical_records, consent

mapping = pytest.importorskip("transforms.mapping.behavioral_health", reason="BehavioralHealthAlert mapping absent")
from transforms.mapping import MessageHeader  # noqa: E402

LAW = load_profile(shipped_dir() / "law-enforcement.yaml")
POLICY = RecipientPolicy(LAW, (LAW.recipient_class,), b"k" * 32)
RECIPIENT = RecipientConfig(id="pd", organization="Exampleton Police Department", certificate="c.pem",
                            transport={"kind": "outbox", "path": "var/outbox"}, purpose="p", legal_basis="b",
                            profile="law-enforcement")
HEADER = MessageHeader("0f9c3a51-8c1e-4a8e-9a57-6d3c2f0e9b11", NOW, "County BH", "Exampleton PD",
                       "BehavioralHealthAlert")


def icd(code: str, *labels: str, active: bool = True) -> Condition:
    return Condition(Coding("http://hl7.org/fhir/sid/icd-10-cm", code), active=active, security_labels=frozenset(labels))


def record(*conditions: Condition, part2_program: bool = False, crisis_plan: bool = False) -> ClinicalRecord:
    return ClinicalRecord(SourceRef("ehr", "Patient/1", "1"), "Patient/1",
                          PersonIdentity("Ann", "Lee", date(1980, 1, 2)), NOW, tuple(conditions),
                          crisis_plan=crisis_plan, part2_program=part2_program)


def test_need_flag_from_mental_health_condition_needs_no_consent():
    assert derive_need_flag(record(icd("F32.9")), part2_consent=False).need


def test_need_flag_from_a_substance_use_disorder_alone_needs_consent_and_is_part2():
    sud_only = record(icd("F11.20"))
    assert not derive_need_flag(sud_only, part2_consent=False).need
    with_consent = derive_need_flag(sud_only, part2_consent=True)
    assert with_consent.need and with_consent.part2_used
    labelled = record(icd("Z00.0", "42CFRPart2"))  # the label decides, whatever the code
    assert not derive_need_flag(labelled, part2_consent=False).need


def test_nothing_from_a_part2_program_counts_without_consent():
    assert not derive_need_flag(record(icd("F32.9"), part2_program=True, crisis_plan=True), part2_consent=False).need


def test_inactive_conditions_do_not_raise_the_flag():
    assert not derive_need_flag(record(icd("F32.9", active=False)), part2_consent=False).need


def _alert(rec: ClinicalRecord) -> etree._Element:
    return mapping.behavioral_health_alert(rec, "NXP-ABCDEFGHJKLM", HEADER)


consents = st.sampled_from([
    None,
    consent(patient_id="?"),  # patient id replaced below
    consent(expires_on=date(2026, 1, 1)),
    consent(revoked_on=date(2026, 6, 1)),
    consent(recipients=("class:court-corrections",)),
    consent(part2=False),
])


@settings(max_examples=60, deadline=None)
@given(rec=clinical_records(), on_file=consents)
def test_part2_content_never_leaves_without_a_valid_consent(rec, on_file):
    files = [] if on_file is None else [on_file.__class__(**{**{f: getattr(on_file, f) for f in on_file.__slots__},
                                                             "patient_id": rec.patient_id})]
    valid = bool(files) and on_file.expires_on > NOW.date() and on_file.revoked_on is None \
        and "class:law-enforcement" in on_file.recipients and (on_file.part2 or not part2_labelled(rec))
    out = prepare(POLICY, RECIPIENT, "BehavioralHealthAlert", rec, _alert(rec), NOW, files)
    if not valid:
        # the law-enforcement rule requires consent: nothing at all leaves
        assert out is None
        return
    assert out is not None
    assert validator.validate(out.root) == []
    for element in out.root.iter():
        path = element_path(element, out.root)
        assert path == "" or path.startswith("nx:PrivacyMetadata") or any(
            path == a or path.startswith(a + "/") or a.startswith(path + "/") for a in out.rule.allow), path
    flag = out.root.find(".//" + ns.clark("nx:BehavioralHealthNeedIndicator")).text
    label = out.root.find(".//" + ns.clark("nx:Part2LabelIndicator"))
    notice = out.root.find(".//" + ns.clark("nx:RedisclosureNoticeText"))
    # a consent that does not cover Part 2 leaves substance-use data out of the flag (disclosure re-derives it)
    derived = derive_need_flag(rec, part2_consent=on_file.part2)
    assert flag == ("true" if derived.need else "false")
    if part2_whole(rec) or derived.part2_used:
        assert label.text == "true" and notice is not None and notice.text.startswith(PART2_NOTICE)
        assert "42 CFR Part 2 information" in out.categories


@settings(max_examples=40, deadline=None)
@given(rec=clinical_records())
def test_without_part2_consent_the_flag_ignores_part2_data(rec):
    """A consent that covers the flag but not Part 2: Part 2 records send nothing, others a Part 2-free flag."""
    files = [consent(patient_id=rec.patient_id, part2=False)]
    out = prepare(POLICY, RECIPIENT, "BehavioralHealthAlert", rec, _alert(rec), NOW, files)
    if part2_labelled(rec):
        assert out is None  # the consent does not authorize Part 2 information: nothing leaves
        return
    flag = out.root.find(".//" + ns.clark("nx:BehavioralHealthNeedIndicator")).text
    assert flag == ("true" if derive_need_flag(rec, part2_consent=False).need else "false")
    assert out.root.find(".//" + ns.clark("nx:Part2LabelIndicator")).text == "false"
    text = etree.tostring(out.root, encoding="unicode")
    assert "LastEncounterDate" not in text and "Diagnosis" not in text
