"""The redaction engine against the plain reference walk: same bytes, removals, categories and Part 2 verdict.

The engine decides each element path once per rule and skips wholly allowed subtrees; the reference
(``redaction_reference``) checks every element the obvious way. Generated trees mix the NIEM names the
profiles and the category table use with unknown ones, comments, processing instructions and attributes;
generated rules allow and transform paths of those trees. Real messages: the IEPD samples and golden files
of all six message types, generated bookings and behavioral-health alerts, under every shipped rule. Each
runs with the engine's per-path decisions kept and with none kept (as past its cap on a hostile tree).
"""
from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from exchange.profiles import load_profile, shipped_profiles
from niem_iepd import ns, safexml
from transforms.mapping import MessageHeader, behavioral_health_alert, booking_notification
from transforms.redaction import Rule, Transform, element_path, redact
from transforms.redaction import engine

from redaction_cases import bookings, clinical_records
from redaction_reference import reference_redact

KEY = b"k" * 32
PROFILES = [load_profile(p) for p in shipped_profiles()]
RULES = [rule for profile in PROFILES for rule in profile.rules.values()]
ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = sorted([*(ROOT / "niem_iepd/samples").glob("*.xml"), *(ROOT / "tests/transforms/golden").glob("*.xml")])
HEADER = MessageHeader("0f9c3a51-8c1e-4a8e-9a57-6d3c2f0e9b11", datetime(2026, 11, 24, tzinfo=timezone.utc),
                       "Example County Sheriff's Office", "Recipient", "BookingNotification")
PART2 = [(False, False), (True, False), (True, True)]  # (part2_record, part2_consent)

#: Element names the profiles, the category table and the transforms care about, and some nobody knows.
STEPS = ["nc:PersonName", "nc:PersonGivenName", "nc:PersonBirthDate", "nc:Date", "nc:DateTime", "nc:Year",
         "nc:IdentificationID", "nc:PersonOtherIdentification", "nc:ActivityIdentification", "nc:ActivityDate",
         "nc:ContactInformation", "nc:TelephoneNumberFullID", "nc:Address", "nc:LocationPostalCode",
         "j:Booking", "j:PersonAugmentation", "j:ArrestCharge", "nx:MessageMetadata", "nx:PrivacyMetadata",
         "nx:Diagnosis", "nx:LastEncounterDate", "nx:BehavioralHealthNeedIndicator", "nx:CaseManagerContact"]
UNKNOWN = ["{urn:example:other}Thing", "Plain"]


def same(got, want) -> None:
    """Everything a user or the ledger sees of a redaction is equal."""
    assert etree.tostring(got.root) == etree.tostring(want.root)
    assert got.categories == want.categories
    assert got.removed == want.removed
    assert got.part2_disclosed == want.part2_disclosed


def check(root: etree._Element, rule: Rule, part2_record: bool, part2_consent: bool) -> None:
    before = etree.tostring(root)
    try:
        want = reference_redact(root, rule, token_key=KEY, part2_record=part2_record, part2_consent=part2_consent)
    except AttributeError:  # a birth_year on a bare nc:Date kept only as a container: both give up alike
        with pytest.raises(AttributeError):
            redact(root, rule, token_key=KEY, part2_record=part2_record, part2_consent=part2_consent)
        return
    same(redact(root, rule, token_key=KEY, part2_record=part2_record, part2_consent=part2_consent), want)
    assert etree.tostring(root) == before


def clark(step: str) -> str:
    prefix, local = step.split(":")
    return f"{{{ns.PREFIXES[prefix]}}}{local}"


_text = st.none() | st.sampled_from(["", "  ", "1987-10-02", "33602-1234", "NXP-7QF3K2M9TB", "Jane"])


@st.composite
def trees(draw, odd: bool, depth: int = 0) -> etree._Element:
    """An element with a known or unknown name, text, tail, attributes and (up to depth 4) children; comments
    and processing instructions among them when ``odd`` (they turn the engine's subtree skipping off)."""
    tag = draw(st.sampled_from([clark(s) for s in STEPS] + UNKNOWN))
    element = etree.Element(tag, nsmap={"nc": ns.NC})
    element.text = draw(_text)
    element.tail = draw(_text)
    for name in draw(st.lists(st.sampled_from(["secret", f"{{{ns.STRUCTURES}}}id", "{urn:x}a"]),
                              max_size=2, unique=True)):
        element.set(name, "attr")
    if depth < 4:
        for _ in range(draw(st.integers(0, 4 if depth < 2 else 2))):
            kind = draw(st.integers(0 if odd else 2, 12))
            if kind == 0:
                child = etree.Comment("a comment")
            elif kind == 1:
                child = etree.ProcessingInstruction("pi", "x")
            else:
                child = draw(trees(odd, depth + 1))
            child.tail = draw(_text)
            element.append(child)
    return element


@st.composite
def cases(draw) -> tuple[etree._Element, Rule, bool, bool]:
    """A message-like tree and a rule over paths that occur in it (and some that do not)."""
    root = etree.Element(ns.q("bn", "BookingNotification"))
    odd = draw(st.integers(0, 3)) == 0
    for child in draw(st.lists(trees(odd), min_size=1, max_size=4)):
        root.append(child)
    found = sorted({element_path(e, root) for e in root.iter() if e is not root and isinstance(e.tag, str)})
    candidates = st.sampled_from(found) | st.sampled_from(STEPS) | st.sampled_from(STEPS).map(
        lambda step: f"j:Booking/{step}")
    allow = tuple(draw(st.lists(candidates, max_size=6)))
    # transforms below an allowed path are where skipping a wholly allowed subtree could go wrong
    below = [p for p in found if any(p.startswith(a + "/") for a in allow)]
    targets = st.sampled_from(below) | candidates if below else candidates
    transforms = tuple(draw(st.lists(st.tuples(targets, st.sampled_from(list(Transform))), max_size=4)))
    rule = Rule("BookingNotification", allow, "p", "b", transforms=transforms)
    part2_record, part2_consent = draw(st.sampled_from(PART2))
    return root, rule, part2_record, part2_consent


@pytest.fixture(params=[True, False], ids=["memoised", "unmemoised"])
def memo(request, monkeypatch):
    """Run with decisions kept per path, and with none kept (as past the cap on a hostile tree)."""
    if not request.param:
        monkeypatch.setattr(engine, "_MAX_NODES", 0)
        engine._plan.cache_clear()
    yield
    engine._plan.cache_clear()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=cases())
def test_generated_trees_and_rules_redact_as_the_reference_does(memo, case):
    check(*case)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(booking=bookings(), index=st.integers(0, len(RULES) - 1), part2=st.sampled_from(PART2))
def test_generated_bookings_under_every_shipped_rule_redact_as_the_reference_does(memo, booking, index, part2):
    check(booking_notification(booking, "NXP-ABCDEFGHJKLM", HEADER), RULES[index], *part2)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(record=clinical_records(), index=st.integers(0, len(RULES) - 1), part2=st.sampled_from(PART2))
def test_generated_alerts_under_every_shipped_rule_redact_as_the_reference_does(memo, record, index, part2):
    check(behavioral_health_alert(record, "NXP-ABCDEFGHJKLM", HEADER), RULES[index], *part2)


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_samples_and_golden_messages_redact_as_the_reference_does_under_every_shipped_rule(document):
    root = safexml.parse_trusted_file(document).getroot()
    for rule in RULES:
        for part2_record, part2_consent in PART2:
            check(root, rule, part2_record, part2_consent)


@pytest.mark.parametrize("transforms", [
    (("nc:Person/nc:PersonBirthDate/nc:Date", Transform.BIRTH_YEAR),),  # the date swaps itself for nc:Year
    (("nc:Person/nc:PersonBirthDate", Transform.BIRTH_YEAR),),
    (("nc:Person", Transform.MASK), ("nc:Person/nc:PersonBirthDate", Transform.BIRTH_YEAR)),  # outermost note
])
def test_birth_year_transforms_are_recorded_as_the_reference_records_them(transforms):
    nc = ns.nc
    root = etree.Element(ns.q("bn", "BookingNotification"))
    root.append(nc.Person(nc.PersonBirthDate(nc.Date("1961-07-30")), nc.PersonName(nc.PersonFullName("Ann Lee"))))
    rule = Rule("BookingNotification", ("nc:Person",), "p", "b", transforms=transforms)
    check(root, rule, False, False)
