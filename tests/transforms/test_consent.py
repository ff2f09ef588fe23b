"""Consent decisions (42 CFR 2.31 elements): expiry, revocation, recipient by name or class, purpose, Part 2."""
from __future__ import annotations

from datetime import date

import pytest

from transforms.consent import check, decide, names_recipient

from redaction_cases import consent

TODAY = date(2026, 11, 24)
LAW = ("law-enforcement",)


def decision(c, *, recipient="pd", classes=LAW, purpose="PUBHLTH", on=TODAY, part2=True):
    return check(c, recipient_id=recipient, recipient_classes=classes, purpose=purpose, on=on, part2=part2)


def test_a_complete_active_consent_naming_the_class_is_valid():
    result = decision(consent())
    assert result.valid and result.consent_id == "C-1"


@pytest.mark.parametrize("changes, reason", [
    ({"expires_on": date(2026, 11, 23)}, "expired on 2026-11-23"),
    ({"revoked_on": date(2026, 11, 24)}, "revoked on 2026-11-24"),
    ({"status": "inactive"}, "status is inactive"),
    ({"status": "draft"}, "status is draft"),
    ({"signed_on": None}, "not signed"),
    ({"signed_on": date(2026, 12, 1)}, "signed after the disclosure date"),
    ({"expires_on": None}, "no expiration date or event"),
    ({"recipients": ("class:behavioral-health-provider",)}, "does not name this recipient"),
    ({"recipients": ("other-pd",)}, "does not name this recipient"),
    ({"purpose": ""}, "states no purpose"),
    ({"purpose": "TREAT"}, "purpose does not cover"),
    ({"part2": False}, "does not authorize Part 2"),
])
def test_invalid_consents_say_why(changes, reason):
    result = decision(consent(**changes))
    assert not result.valid and reason in result.reason


def test_expiry_day_itself_is_still_covered_and_the_next_day_is_not():
    c = consent(expires_on=TODAY)
    assert decision(c, on=TODAY).valid
    assert not decision(c, on=date(2026, 11, 25)).valid


def test_revocation_counts_from_its_day_on_not_before():
    c = consent(revoked_on=date(2026, 12, 1))
    assert decision(c, on=TODAY).valid
    assert not decision(c, on=date(2026, 12, 1)).valid


def test_an_expiry_event_instead_of_a_date_is_accepted():
    assert decision(consent(expires_on=None, expiry_event="end of treatment")).valid


def test_recipient_named_directly_or_by_class_case_insensitively():
    assert names_recipient(consent(recipients=("PD",)), "pd", ())
    assert names_recipient(consent(recipients=("class:Law-Enforcement",)), "pd", ("law-enforcement",))
    assert names_recipient(consent(recipients=("class:law-enforcement",)), "pd", ("class:law-enforcement",))
    assert not names_recipient(consent(recipients=("class:law-enforcement",)), "pd", ("court-corrections",))
    assert not names_recipient(consent(recipients=("law-enforcement",)), "pd", ("law-enforcement",))  # not a class


def test_non_part2_disclosure_does_not_need_part2_authorization():
    assert decision(consent(part2=False), part2=False).valid


def test_decide_picks_any_valid_consent_else_reports_the_last_refusal():
    expired = consent(consent_id="C-0", expires_on=date(2020, 1, 1))
    good = consent(consent_id="C-2")
    assert decide([expired, good], recipient_id="pd", recipient_classes=LAW, purpose="PUBHLTH", on=TODAY,
                  part2=True).consent_id == "C-2"
    refused = decide([expired], recipient_id="pd", recipient_classes=LAW, purpose="PUBHLTH", on=TODAY, part2=True)
    assert not refused.valid and "expired" in refused.reason
    assert decide([], recipient_id="pd", recipient_classes=LAW, purpose="", on=TODAY, part2=False).reason == \
        "no consent on file"
