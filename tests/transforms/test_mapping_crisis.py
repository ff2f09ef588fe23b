"""CrisisContactReport from a CrisisContact: golden file, initiator / reason / disposition where expected."""
from __future__ import annotations

from dataclasses import replace

import pytest
from lxml import etree
from mapping_cases import CRISIS, SHARED_ID, check_golden, header

from niem_iepd import ns, validator
from transforms.mapping import BUILDERS, crisis_contact_report
from transforms.model.records import CrisisDisposition

ENCOUNTER = "nc:PersonEncounter"
AUGMENTATION = f"{ENCOUNTER}/nx:PersonEncounterAugmentation"


def test_crisis_contact_matches_golden_and_validates():
    check_golden(crisis_contact_report(CRISIS, SHARED_ID, header("CrisisContactReport")), "crisis-contact-report")


def test_who_why_and_how_it_ended():
    message = BUILDERS["CrisisContactReport"].build(CRISIS, SHARED_ID, header("CrisisContactReport"))
    assert message.findtext(ns.clark(f"{AUGMENTATION}/nx:ContactInitiatorCode")) == "911_CALL"
    assert message.findtext(ns.clark(f"{ENCOUNTER}/nc:ActivityReasonText")) == "welfare check"
    disposition = f"{ENCOUNTER}/nc:ActivityDisposition/nx:CrisisDispositionCode"
    assert message.findtext(ns.clark(disposition)) == "LEFT_ON_SCENE_WITH_REFERRAL"
    assert message.findtext(ns.clark(f"{AUGMENTATION}/nx:CoResponderIndicator")) == "true"
    referral = f"{AUGMENTATION}/nx:ReferralOrganization/nc:OrganizationName"
    assert message.findtext(ns.clark(referral)) == "Example County Mobile Crisis Team"
    shared = f"{AUGMENTATION}/nx:EncounterSubject/nc:PersonOtherIdentification/nc:IdentificationID"
    assert message.findtext(ns.clark(shared)) == SHARED_ID


@pytest.mark.parametrize("disposition", CrisisDisposition.__args__)
def test_every_disposition_the_model_knows_is_valid(disposition):
    contact = replace(CRISIS, disposition=disposition, referral_to="", reason="", agency="")
    assert validator.validate(crisis_contact_report(contact, SHARED_ID, header("CrisisContactReport"))) == []


def test_an_unknown_disposition_fails_at_its_path():
    message = crisis_contact_report(CRISIS, SHARED_ID, header("CrisisContactReport"))
    message.find(ns.clark(f"{ENCOUNTER}/nc:ActivityDisposition/nx:CrisisDispositionCode")).text = "JAIL"
    issues = validator.validate(etree.ElementTree(message))
    assert [issue.path for issue in issues] == [
        "/ccr:CrisisContactReport/nc:PersonEncounter/nc:ActivityDisposition/nx:CrisisDispositionCode"]
