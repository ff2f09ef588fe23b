"""The 42 CFR 2.32 notice we attach is the 2024 rule's Statement 1, compared with the cited text (not with itself).

CITED is 2.32(a)(1) of the 2024 final rule (89 FR 12472) as far as the stored copy at
https://compliancecosmos.org/notice-and-copy-consent-accompany-disclosure reaches (it breaks off at "applies:");
the current section is https://www.ecfr.gov/current/title-42/chapter-I/subchapter-A/part-2/section-2.32 .
"""
from __future__ import annotations

from pathlib import Path

from niem_iepd import ns, safexml
from transforms.redaction import PART2_NOTICE, part2_notice
from transforms.redaction.notice import PART2_NOTICE_SHORT

CITED = (
    "This record which has been disclosed to you is protected by Federal confidentiality rules (42 CFR part 2). "
    "These rules prohibit you from using or disclosing this record, or testimony that describes the information "
    "contained in this record, in any civil, criminal, administrative, or legislative proceedings by any Federal, "
    "State, or local authority, against the patient, unless authorized by the consent of the patient, except as "
    "provided at 42 CFR 2.12(c)(5) or as authorized by a court in accordance with 42 CFR 2.64 or 2.65. In "
    "addition, the Federal rules prohibit you from making any other use or disclosure of this record unless at "
    "least one of the following applies:"
)
#: Wording of the 2018/2020 section that the 2024 rule replaced: must not be what we send.
SUPERSEDED = ("This information has been disclosed to you from records protected by federal confidentiality rules",
              "The federal rules prohibit you from making any further disclosure",
              "42 CFR part 2 prohibits unauthorized disclosure of these records.")
SAMPLE = Path(__file__).resolve().parents[2] / "niem_iepd/samples/behavioral-health-alert-part2.xml"


def test_statement_1_is_the_cited_2024_text_word_for_word():
    assert PART2_NOTICE.startswith(CITED)
    rest = PART2_NOTICE[len(CITED):]
    # the part the stored source does not show: the three cases and the closing sentence, in that order
    assert rest.index("(i) Further use or disclosure") < rest.index("(ii) You are a covered entity") \
        < rest.index("(iii) You have received the record") < rest.index("is NOT sufficient")
    assert rest.endswith("(see 42 CFR 2.31).")


def test_no_superseded_wording_is_sent():
    for old in SUPERSEDED:
        assert old not in PART2_NOTICE and old != PART2_NOTICE_SHORT
    assert PART2_NOTICE_SHORT == "42 CFR part 2 prohibits unauthorized use or disclosure of these records."


def test_the_notice_carries_statement_1_then_the_scope_of_the_consent():
    notice = part2_notice("C-9", "TREAT", ("need flag", "crisis plan"), "2027-01-01")
    assert notice == f"{PART2_NOTICE} Scope of consent C-9: need flag, crisis plan; purpose: TREAT; expires: 2027-01-01."


def test_the_iepd_sample_of_a_part2_message_carries_the_same_notice():
    root = safexml.parse(SAMPLE.read_bytes()).getroot()
    text = root.findtext(".//" + ns.clark("nx:RedisclosureNoticeText"))
    assert text is not None and text.startswith(PART2_NOTICE + " Scope of consent ")
