"""Default-deny redaction over built messages: properties over generated bookings x every shipped profile."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from lxml import etree

from exchange.profiles import load_profile, shipped_profiles
from niem_iepd import ns, validator
from transforms.mapping import MessageHeader, booking_notification
from transforms.redaction import (
    Rule,
    Transform,
    element_path,
    generalize_zip,
    keyed_token,
    redact,
)

from redaction_cases import bookings

KEY = b"k" * 32
PROFILES = [load_profile(p) for p in shipped_profiles()]
HEADER = MessageHeader("0f9c3a51-8c1e-4a8e-9a57-6d3c2f0e9b11", datetime(2026, 11, 24, tzinfo=timezone.utc),
                       "Example County Sheriff's Office", "Recipient", "BookingNotification")


def permitted(path: str, allow: tuple[str, ...]) -> bool:
    """On the allow-list, under an allowed path, or a container of one; nx:PrivacyMetadata is about terms."""
    return (path in allow or any(path.startswith(a + "/") or a.startswith(path + "/") for a in allow)
            or path.split("/")[0] == "nx:PrivacyMetadata")


def paths(root: etree._Element) -> list[str]:
    return [element_path(e, root) for e in root.iter() if e is not root]


def test_every_demo_recipient_class_ships_a_profile():
    names = {p.name for p in PROFILES}
    assert {"behavioral-health-provider", "law-enforcement", "state-agency", "court-corrections"} <= names


@pytest.mark.parametrize("profile", PROFILES, ids=lambda p: p.name)
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(booking=bookings())
def test_no_element_outside_the_allow_list_and_output_still_validates(profile, booking):
    built = booking_notification(booking, "NXP-ABCDEFGHJKLM", HEADER)
    rule = profile.rule("BookingNotification")
    if rule is None:  # default-deny: a profile without the message type receives nothing (pipeline skips)
        return
    result = redact(built, rule, token_key=KEY)
    for path in paths(result.root):
        assert permitted(path, rule.allow), f"{profile.name}: {path} left although not allowed"
    assert validator.validate(result.root) == [], profile.name
    assert result.categories and "other" not in result.categories


@pytest.mark.parametrize("profile", [p for p in PROFILES if p.rule("BookingNotification")], ids=lambda p: p.name)
@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(booking=bookings())
def test_redacting_in_place_gives_the_copy_s_result_in_the_given_tree(profile, booking):
    """The pipeline's form: no copy, the built tree itself becomes the redacted message, byte for byte."""
    rule = profile.rule("BookingNotification")
    copied = redact(booking_notification(booking, "NXP-ABCDEFGHJKLM", HEADER), rule, token_key=KEY)
    built = booking_notification(booking, "NXP-ABCDEFGHJKLM", HEADER)
    in_place = redact(built, rule, token_key=KEY, in_place=True)
    assert in_place.root is built
    assert etree.tostring(in_place.root) == etree.tostring(copied.root)
    assert (in_place.categories, in_place.removed, in_place.part2_disclosed) == (
        copied.categories, copied.removed, copied.part2_disclosed)


@settings(max_examples=20, deadline=None)
@given(booking=bookings())
def test_state_profile_output_carries_no_direct_identifier(booking):
    state = next(p for p in PROFILES if p.name == "state-agency").rule("BookingNotification")
    built = booking_notification(booking, "NXP-ABCDEFGHJKLM", HEADER)
    out = redact(built, state, token_key=KEY).root
    left = set(paths(out))
    for identifier in ("nc:PersonName", "nc:PersonBirthDate", "j:PersonAugmentation", "nc:ActivityDate",
                       "j:BookingAgencyRecordIdentification", "j:ChargeDescriptionText"):
        assert not any(p.endswith(identifier) or f"{identifier}/" in p for p in left), identifier
    ids = [e.text for e in out.iter(ns.q("nc", "IdentificationID"))]
    assert booking.booking_number not in ids and "NXP-ABCDEFGHJKLM" not in ids
    assert keyed_token(KEY, booking.booking_number) in ids and keyed_token(KEY, "NXP-ABCDEFGHJKLM") in ids


def test_input_tree_is_not_modified_and_comments_and_foreign_attributes_are_dropped():
    nc = ns.nc
    root = etree.Element(ns.q("bn", "BookingNotification"), nsmap={"nc": ns.NC, "bn": ns.BN})
    person = nc.Person(nc.PersonName(nc.PersonFullName("Jane Roe")), secret="attr-value")
    person.append(etree.Comment("a comment with PHI"))
    root.append(person)
    before = etree.tostring(root)
    rule = Rule("BookingNotification", ("nc:Person/nc:PersonName",), "p", "b")
    out = redact(root, rule, token_key=KEY).root
    assert etree.tostring(root) == before
    text = etree.tostring(out, encoding="unicode")
    assert "Jane Roe" in text and "comment" not in text and "attr-value" not in text


def test_drop_wins_over_an_allowed_ancestor_and_empty_containers_go():
    nc = ns.nc
    root = etree.Element(ns.q("bn", "BookingNotification"))
    root.append(nc.Person(nc.PersonName(nc.PersonGivenName("Ann"), nc.PersonSurName("Lee")),
                          nc.PersonBirthDate(nc.Date("1990-02-03"))))
    rule = Rule("BookingNotification", ("nc:Person/nc:PersonName", "nc:Person/nc:PersonBirthDate/nc:Date"), "p", "b",
                transforms=(("nc:Person/nc:PersonName/nc:PersonSurName", Transform.DROP),))
    out = redact(root, rule, token_key=KEY)
    assert paths(out.root) == ["nc:Person", "nc:Person/nc:PersonName", "nc:Person/nc:PersonName/nc:PersonGivenName",
                               "nc:Person/nc:PersonBirthDate", "nc:Person/nc:PersonBirthDate/nc:Date"]
    assert "nc:Person/nc:PersonName/nc:PersonSurName" in out.removed
    only_surname = Rule("BookingNotification", ("nc:Person/nc:PersonName/nc:PersonSurName",), "p", "b",
                        transforms=(("nc:Person/nc:PersonName/nc:PersonSurName", Transform.DROP),))
    assert len(redact(root, only_surname, token_key=KEY).root) == 0  # nothing left: no empty nc:Person


def test_field_transforms_birth_year_zip3_mask_and_keyed_token():
    nc = ns.nc
    root = etree.Element(ns.q("bn", "BookingNotification"))
    root.append(nc.Person(
        nc.PersonBirthDate(nc.Date("1961-07-30")),
        nc.PersonOtherIdentification(nc.IdentificationID("NXP-AAAA"),
                                     nc.IdentificationCategoryDescriptionText("niem-exchange shared person identifier")),
        nc.PersonName(nc.PersonFullName("Ann Lee")),
        nc.Address(nc.LocationPostalCode("33602-1234")),
    ))
    person = "nc:Person"
    rule = Rule("BookingNotification", (person,), "p", "b", transforms=(
        (f"{person}/nc:PersonBirthDate", Transform.BIRTH_YEAR),
        (f"{person}/nc:PersonOtherIdentification", Transform.TOKEN),
        (f"{person}/nc:PersonName", Transform.MASK),
        (f"{person}/nc:Address/nc:LocationPostalCode", Transform.ZIP3),
    ))
    out = redact(root, rule, token_key=KEY)
    text = etree.tostring(out.root, encoding="unicode")
    assert "<nc:Year>1961</nc:Year>" in text and "07-30" not in text
    assert ">336<" in text and "33602" not in text
    assert "Ann Lee" not in text and ">WITHHELD<" in text
    assert keyed_token(KEY, "NXP-AAAA") in text and "NXP-AAAA" not in text
    assert "niem-exchange shared person identifier" in text  # the category label is not an identifier
    assert "birth date (year only)" in out.categories and "shared person identifier (keyed token)" in out.categories


def test_birth_year_on_the_date_leaf_itself_is_recorded_as_year_only():
    # A profile may aim the transform at nc:Date rather than its container; the leaf is then replaced by
    # nc:Year and the ledger must still say that only the year went (it used to say "birth date").
    nc = ns.nc
    root = etree.Element(ns.q("bn", "BookingNotification"))
    root.append(nc.Person(nc.PersonBirthDate(nc.Date("1961-07-30")), nc.PersonName(nc.PersonFullName("Ann Lee"))))
    rule = Rule("BookingNotification", ("nc:Person",), "p", "b",
                transforms=(("nc:Person/nc:PersonBirthDate/nc:Date", Transform.BIRTH_YEAR),))
    out = redact(root, rule, token_key=KEY)
    assert "<nc:Year>1961</nc:Year>" in etree.tostring(out.root, encoding="unicode")
    assert "birth date (year only)" in out.categories and "birth date" not in out.categories


def test_tokens_are_stable_per_agreement_and_differ_across_agreements():
    assert keyed_token(KEY, "NXP-1") == keyed_token(KEY, "NXP-1")
    assert keyed_token(KEY, "NXP-1") != keyed_token(b"x" * 32, "NXP-1")
    assert keyed_token(KEY, "NXP-1") != keyed_token(KEY, "NXP-2")


@pytest.mark.parametrize("value, expected", [("33602", "336"), ("03601-0001", "000"), ("89012", "000"),
                                             ("12", "000"), ("", "000")])
def test_zip3_uses_000_for_sparse_areas_and_short_values(value, expected):
    assert generalize_zip(value) == expected


def test_a_profile_without_the_message_type_is_default_deny():
    law = next(p for p in PROFILES if p.name == "law-enforcement")
    assert law.rule("BookingNotification") is None
