"""``privacy_metadata`` + ``insert_privacy_metadata``: the block the redaction profiles fill in, on every message."""
from __future__ import annotations

import pytest
from lxml import etree
from mapping_cases import CLINICAL, CRISIS, METRICS, PERIOD, RELEASED, ROSTER, SHARED_ID, BOOKING, header

from niem_iepd import ns, validator
from transforms.mapping import (
    BUILDERS,
    familiar_faces_roster,
    privacy_metadata,
    program_metrics,
)
from transforms.mapping.common import insert_privacy_metadata

NOTICE = "42 CFR part 2 prohibits unauthorized use or disclosure of these records."  # 2.32(a)(2), 2024 wording
RECORDS = {"BookingNotification": BOOKING, "ReleaseNotification": RELEASED, "CrisisContactReport": CRISIS,
           "BehavioralHealthAlert": CLINICAL}


def _messages() -> dict[str, etree._Element]:
    built = {name: BUILDERS[name].build(record, SHARED_ID, header(name)) for name, record in RECORDS.items()}
    built["FamiliarFacesRoster"] = familiar_faces_roster(ROSTER, PERIOD, header("FamiliarFacesRoster"))
    built["ProgramMetrics"] = program_metrics(METRICS, header("ProgramMetrics"))
    return built


@pytest.mark.parametrize("message_type", sorted(ns.MESSAGE_ROOTS))
def test_every_message_takes_the_block_right_after_its_metadata(message_type):
    message = _messages()[message_type]
    insert_privacy_metadata(message, privacy_metadata("V", True, NOTICE, "CONSENT-1"))
    assert [etree.QName(child).localname for child in message][:2] == ["MessageMetadata", "PrivacyMetadata"]
    assert validator.validate(message) == []


def test_block_content_and_reinsertion_keeps_one():
    message = _messages()["BehavioralHealthAlert"]
    insert_privacy_metadata(message, privacy_metadata("R", False, "", ""))
    insert_privacy_metadata(message, privacy_metadata("V", True, NOTICE, "CONSENT-9"))
    blocks = message.findall(ns.clark("nx:PrivacyMetadata"))
    assert len(blocks) == 1
    block = blocks[0]
    assert block.findtext(ns.clark("nx:ConfidentialityCode")) == "V"
    assert block.findtext(ns.clark("nx:Part2LabelIndicator")) == "true"
    assert block.findtext(ns.clark("nx:RedisclosureNoticeText")) == NOTICE
    assert block.findtext(ns.clark("nx:ConsentIdentification/nc:IdentificationID")) == "CONSENT-9"


@pytest.mark.parametrize(("notice", "consent", "rules"), [
    ("", "CONSENT-1", ["NX-PRIV-1"]),
    (NOTICE, "", ["NX-PRIV-2"]),
    ("", "", ["NX-PRIV-1", "NX-PRIV-2"]),
])
def test_part2_label_without_notice_or_consent_breaks_the_rules(notice, consent, rules):
    message = _messages()["BehavioralHealthAlert"]
    insert_privacy_metadata(message, privacy_metadata("R", True, notice, consent))
    issues = validator.validate(message)
    assert [issue.rule for issue in issues] == rules
    assert all(issue.path == "/bha:BehavioralHealthAlert/nx:PrivacyMetadata" for issue in issues)


def test_without_part2_no_notice_is_needed():
    message = _messages()["CrisisContactReport"]
    insert_privacy_metadata(message, privacy_metadata("N", False, "", ""))
    assert validator.validate(message) == []


def test_unknown_confidentiality_code_is_refused():
    with pytest.raises(ValueError, match="confidentiality"):
        privacy_metadata("SECRET", False, "", "")
