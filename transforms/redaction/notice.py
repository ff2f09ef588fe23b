"""The notice that must accompany every disclosure of Part 2 information made with consent (42 CFR 2.32).

2.32(a) requires one of two statements; we always send Statement 1, the full one, and 2.32(b) adds "a
copy of the consent or a clear explanation of the scope of the consent", which :func:`part2_notice`
appends from the consent record.

Source: 42 CFR 2.32 as amended by the 2024 final rule (89 FR 12472, 2024-02-16, effective 2024-04-16),
https://www.ecfr.gov/current/title-42/chapter-I/subchapter-A/part-2/section-2.32 ; the Federal Register text is
https://www.federalregister.gov/d/2024-02544 .

What was checked, and against what (2026-11-24): the stored copies of the eCFR and Cornell LII pages are the
2018/2020 text ("This information has been disclosed to you from records protected by federal
confidentiality rules...", Statement 2 "... prohibits unauthorized disclosure of these records."), which the
2024 rule replaced; they are NOT the current text. The only stored copy of the current section
(https://compliancecosmos.org/notice-and-copy-consent-accompany-disclosure, heading "2.32 Notice and copy of
consent to accompany disclosure") breaks off after "...unless at least one of the following applies:". Our
Statement 1 matches it word for word up to there (tests/transforms/test_part2_notice.py holds that cited
text and compares). Clauses (i)-(iii), the closing sentence and Statement 2 (:data:`PART2_NOTICE_SHORT`)
follow the project's research notes and the 2024 rule as we understand it, but could not be checked against
a stored copy of the eCFR: check them at the eCFR address above before relying on them.
"""
from __future__ import annotations

PART2_NOTICE = (
    "This record which has been disclosed to you is protected by Federal confidentiality rules "
    "(42 CFR part 2). These rules prohibit you from using or disclosing this record, or testimony that "
    "describes the information contained in this record, in any civil, criminal, administrative, or "
    "legislative proceedings by any Federal, State, or local authority, against the patient, unless "
    "authorized by the consent of the patient, except as provided at 42 CFR 2.12(c)(5) or as authorized "
    "by a court in accordance with 42 CFR 2.64 or 2.65. In addition, the Federal rules prohibit you from "
    "making any other use or disclosure of this record unless at least one of the following applies: "
    "(i) Further use or disclosure is expressly permitted by the written consent of the individual whose "
    "information is being disclosed in this record or as otherwise permitted by 42 CFR part 2. (ii) You "
    "are a covered entity or business associate and have received the record for treatment, payment, or "
    "health care operations, or (iii) You have received the record from a covered entity or business "
    "associate as permitted by 45 CFR part 164, subparts A and E. A general authorization for the "
    "release of medical or other information is NOT sufficient to meet the required elements of written "
    "consent to further use or redisclose the record (see 42 CFR 2.31)."
)

#: 2.32(a)(2), "Statement 2", the abbreviated notice (not sent by us; kept so the text is in one place).
PART2_NOTICE_SHORT = "42 CFR part 2 prohibits unauthorized use or disclosure of these records."


def part2_notice(consent_id: str, purpose: str, information: tuple[str, ...], expires: str) -> str:
    """Statement 1 followed by a plain explanation of the consent's scope (2.32(b))."""
    scope = ", ".join(information) if information else "the information described in the consent"
    return (f"{PART2_NOTICE} Scope of consent {consent_id}: {scope}; purpose: {purpose}; "
            f"expires: {expires}.")
