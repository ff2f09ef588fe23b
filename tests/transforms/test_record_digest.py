"""``record_digest``: the content hash inside every message id must never drift.

A changed digest for unchanged content would give every record a new message id, so a rerun would deliver
everything a second time. The pinned values were computed by the first implementation (``json.dumps`` with
``sort_keys`` and a ``default=`` hook); any rewrite must reproduce them.
"""
from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timezone

import pytest
from mapping_cases import BOOKING, CLINICAL, CRISIS, RELEASED

from transforms.model import Charge, ConsentRecord, SourceRef, record_digest

CONSENT = ConsentRecord(
    SourceRef("ehr", "Consent/1", "1"), "C-1", "8841", "Example Program", ("class:law-enforcement", "prov-2"),
    "TREAT", ("identity", "behavioral-health-need"), "active", date(2026, 1, 2), None,
    datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc), part2=True,
)

PINNED = {
    # nested records, a tuple of them, aware datetimes, None
    "booking": (BOOKING, "3dc7bdaec3cfa838fb23ecbaadbfae4971cc9f43fc7f7707f8e6d30cee67f6e8"),
    "released": (RELEASED, "13b3b4f46b68548307da4628ec3c3ca6ce2a22776a2a50c9593e86a4b7d6badf"),
    "crisis": (CRISIS, "550a3d204974572c5ad7393cb09d2d7c21c71cdb78f613f7ad985cda50c81b7f"),
    # frozensets of security labels (sorted), a record inside a record inside a tuple
    "clinical": (CLINICAL, "d45622c425d324af314328fdef2d09af8e89801657ac6b05652c5836617a1d1d"),
    # dates, a None date, tuples of strings
    "consent": (CONSENT, "7140a600993904e4eb55084b91ef2dcac924d5979600c94536c95d4bcb8b878a"),
}


@pytest.mark.parametrize("name", sorted(PINNED))
def test_digest_of_known_content_is_unchanged(name):
    record, digest = PINNED[name]
    assert record_digest(record) == digest


def test_the_source_reference_is_not_content_but_everything_else_is():
    assert record_digest(replace(BOOKING, ref=SourceRef("jms", "other.csv:99", "B2026-004211"))) == \
        record_digest(BOOKING)
    corrected = replace(BOOKING, charges=(Charge(1, "810.09", "Trespass on property other than structure", True),))
    assert record_digest(corrected) != record_digest(BOOKING)
    assert record_digest(replace(BOOKING.person, ssn="900-00-0001")) != record_digest(BOOKING.person)
