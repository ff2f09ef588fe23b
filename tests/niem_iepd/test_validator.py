"""The validator against the IEPD schemas: the sample is valid, each broken variant fails at the right path,
and no value from the message ever shows in an issue."""
from __future__ import annotations

import copy
import shutil
import subprocess
from pathlib import Path

import pytest
from lxml import etree

from niem_iepd import ns, safexml, validator
from niem_iepd.validator import SchemaIssue

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "niem_iepd/samples/booking-notification.xml"
CANARY = "CANARY-Richardson-4711"
ROOT = "/bn:BookingNotification"
BOOKING = f"{ROOT}/j:Booking"
PERSON = f"{BOOKING}/j:BookingSubject/nc:EntityPerson"


@pytest.fixture()
def sample() -> etree._ElementTree:
    """A fresh copy of the contract sample, parsed the way received XML is."""
    return safexml.parse(SAMPLE.read_bytes())


def at(tree: etree._ElementTree, path: str) -> etree._Element:
    """The one element at a registry-prefixed path like ``j:Booking/nc:ActivityDate``."""
    found = tree.getroot().findall(ns.clark(path))
    assert len(found) == 1, path
    return found[0]


def move_activity_date_first(tree):
    booking = at(tree, "j:Booking")
    booking.insert(0, at(tree, "j:Booking/nc:ActivityDate"))


def drop(path):
    def mutate(tree):
        element = at(tree, path)
        element.getparent().remove(element)
    return mutate


def set_text(path, value):
    def mutate(tree):
        at(tree, path).text = value
    return mutate


INVALID = [
    # (id, mutation, expected path, fragment of the expected message)
    ("wrong-order", move_activity_date_first, f"{BOOKING}/nc:ActivityIdentification",
     "Expected is one of ( nc:ActivityDate"),
    ("bad-date", set_text("j:Booking/j:BookingSubject/nc:EntityPerson/nc:PersonBirthDate/nc:Date", "1987-13-45"),
     f"{PERSON}/nc:PersonBirthDate/nc:Date", "[value] is not a valid value of the atomic type 'xs:date'"),
    ("missing-metadata", drop("nx:MessageMetadata"), BOOKING, "Expected is ( nx:MessageMetadata )"),
    ("missing-booking", drop("j:Booking"), ROOT, "Missing child element(s). Expected is one of ( nx:PrivacyMetadata, j:Booking )"),
    ("missing-sender", drop("nx:MessageMetadata/nx:MessageSenderOrganization"),
     f"{ROOT}/nx:MessageMetadata/nx:MessageRecipientOrganization", "Expected is ( nx:MessageSenderOrganization )"),
    ("ncic-race-letter", set_text("j:Booking/j:BookingSubject/nc:EntityPerson/j:PersonRaceCode", "W"),
     f"{PERSON}/j:PersonRaceCode", "[facet 'enumeration'] The value [value] is not an element of the set"),
    ("bad-count", set_text("j:Booking/j:Arrest/j:ArrestCharge/j:ChargeCountQuantity", CANARY),
     f"{BOOKING}/j:Arrest/j:ArrestCharge/j:ChargeCountQuantity", "[value] is not a valid value"),
    ("text-in-complex", set_text("j:Booking/j:Arrest", CANARY), f"{BOOKING}/j:Arrest",
     "Character content other than whitespace is not allowed"),
]


def test_sample_is_valid(sample):
    assert validator.validate(sample) == []
    assert validator.is_valid(sample)
    assert validator.is_valid(sample.getroot())  # an element works as well as a tree


@pytest.mark.parametrize(("mutate", "path", "fragment"), [case[1:] for case in INVALID],
                         ids=[case[0] for case in INVALID])
def test_invalid_variant_is_reported_at_its_path(sample, mutate, path, fragment):
    mutate(sample)
    # The schema's verdict; a business rule may fire as well (no booking also means no shared ID).
    issues = [issue for issue in validator.validate(sample) if issue.rule == "XSD"]
    assert not validator.is_valid(sample)
    assert [issue.path for issue in issues] == [path]
    assert fragment in issues[0].message
    assert isinstance(issues[0].line, int) and issues[0].line > 0


@pytest.mark.parametrize("value", [
    CANARY,
    f"{CANARY}' is not a valid value of the atomic type 'xs:date",  # tries to end the quote early
    f"a'{CANARY}'b",  # an even number of quotes
    f"x'{CANARY}",  # an odd number
    f"{{{ns.NC}}}{CANARY}",  # looks like a schema name
])
@pytest.mark.parametrize("path", [
    "j:Booking/j:BookingSubject/nc:EntityPerson/nc:PersonBirthDate/nc:Date",
    "j:Booking/j:BookingSubject/nc:EntityPerson/j:PersonSexCode",
    "j:Booking/j:Arrest/j:ArrestCharge/j:ChargeFelonyIndicator",
])
def test_no_value_reaches_an_issue(sample, path, value):
    at(sample, path).text = value
    issues = validator.validate(sample)
    assert issues, "the canary value should be invalid here"
    for issue in issues:
        assert "Richardson" not in f"{issue} {issue!r} {issue.message} {issue.path}"


def test_attribute_values_are_scrubbed_too(sample):
    booking = at(sample, "j:Booking")
    booking.set(f"{{{ns.STRUCTURES}}}id", f"1 {CANARY}")
    booking.set(f"{{{ns.XSI}}}type", CANARY)
    issues = validator.validate(sample)
    assert {issue.path for issue in issues} == {BOOKING}
    assert any("attribute 'structures:id'" in issue.message for issue in issues)
    assert all("Richardson" not in str(issue) for issue in issues)


def test_unknown_root_is_an_issue_not_an_exception():
    issues = validator.validate(etree.fromstring(b'<o:Other xmlns:o="urn:example:other"><o:x/></o:Other>'))
    assert [(issue.path, issue.line) for issue in issues] == [("/Q{urn:example:other}Other", 1)]
    assert "bn:BookingNotification" in issues[0].message


def test_document_without_root_is_an_issue():
    assert [issue.path for issue in validator.validate(etree.ElementTree())] == ["/"]


def test_bytes_are_not_accepted():
    with pytest.raises(TypeError):
        validator.validate(SAMPLE.read_bytes())  # type: ignore[arg-type]


def test_paths_use_registry_prefixes_whatever_the_message_uses(sample):
    # Same message with a default namespace for bn and odd prefixes elsewhere; positions where needed.
    text = SAMPLE.read_bytes()
    for old, new in ((b"bn:", b""), (b"xmlns:bn=", b"xmlns="), (b"nc:", b"core:"), (b"xmlns:nc=", b"xmlns:core=")):
        text = text.replace(old, new)
    tree = safexml.parse(text)
    charges = at(tree, "j:Booking/j:Arrest")
    charges.append(copy.deepcopy(charges[-1]))
    charges[-1].find(ns.clark("j:ChargeFelonyIndicator")).text = "maybe"
    issues = validator.validate(tree)
    assert [issue.path for issue in issues] == [f"{BOOKING}/j:Arrest/j:ArrestCharge[2]/j:ChargeFelonyIndicator"]


def test_built_tree_has_no_line(sample):
    root = copy.deepcopy(sample.getroot())
    rebuilt = etree.fromstring(etree.tostring(root))  # fresh tree: lines are 1
    rebuilt.find(ns.clark("j:Booking")).append(etree.Element("{urn:example:x}Extra"))
    issues = validator.validate(rebuilt)
    assert [(issue.path, issue.line) for issue in issues] == [(f"{BOOKING}/Q{{urn:example:x}}Extra", None)]


def test_enveloped_signature_is_allowed_only_as_last_child(sample):
    signature = etree.SubElement(sample.getroot(), f"{{{ns.DS}}}Signature")
    etree.SubElement(signature, f"{{{ns.DS}}}SignedInfo")
    assert validator.validate(sample) == []
    sample.getroot().insert(1, signature)
    assert [issue.path for issue in validator.validate(sample)] == [f"{ROOT}/ds:Signature"]


def test_dangling_structures_ref_is_reported(sample):
    arrest = at(sample, "j:Booking/j:Arrest")
    arrest.set(f"{{{ns.STRUCTURES}}}ref", CANARY)
    issues = validator.validate(sample)
    assert [issue.path for issue in issues] == [f"{BOOKING}/j:Arrest"]
    assert "Richardson" not in str(issues[0])
    at(sample, "j:Booking/j:BookingAgency").set(f"{{{ns.STRUCTURES}}}id", CANARY)
    assert validator.validate(sample) == []


def test_metadata_ref_naming_any_unknown_id_is_reported(sample):
    booking = at(sample, "j:Booking")
    booking.set(f"{{{ns.NC}}}metadataRef", f"m1 {CANARY}")
    at(sample, "nx:MessageMetadata").set(f"{{{ns.STRUCTURES}}}id", "m1")
    dangling = [issue for issue in validator.validate(sample) if issue.rule == "NX-REF-1"]
    assert [issue.path for issue in dangling] == [BOOKING] and "Richardson" not in str(dangling[0])
    at(sample, "j:Booking/j:Arrest").set(f"{{{ns.STRUCTURES}}}id", CANARY)
    assert [issue.rule for issue in validator.validate(sample)] == ["XSD"]  # metadataRef is not declared here
    booking.set("metadataRef", "m9")  # no namespace, and a ref in another one: not references
    booking.set("{urn:example:x}ref", "m9")
    assert not any(issue.rule == "NX-REF-1" for issue in validator.validate(sample))


def test_issue_is_frozen_and_printable():
    issue = SchemaIssue(BOOKING, 3, "broken")
    with pytest.raises(AttributeError):
        issue.line = 4  # type: ignore[misc]
    assert str(issue) == f"{BOOKING} (line 3): broken"


def test_schema_path_and_unknown_message_type():
    path = validator.schema_path("BookingNotification")
    assert path == validator.SCHEMAS_DIR / "exchange/booking-notification.xsd" and path.is_file()
    with pytest.raises(ValueError, match="unknown message type"):
        validator.schema_path("NoSuchMessage")


def test_message_type_of(sample):
    assert validator.message_type_of(sample) == "BookingNotification"
    assert validator.message_type_of(etree.Element("{urn:x}Other")) is None


def test_schema_is_compiled_once_per_process():
    first, _ = validator._schema("BookingNotification")
    again, _ = validator._schema("BookingNotification")
    assert first is again


def test_schema_imports_cannot_leave_the_schemas_directory(tmp_path):
    hostile = tmp_path / "hostile.xsd"
    hostile.write_text(
        '<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" targetNamespace="urn:example:h">'
        f'<xs:import namespace="urn:example:secret" schemaLocation="{tmp_path / "secret.xsd"}"/>'
        '<xs:import namespace="urn:example:web" schemaLocation="http://127.0.0.1:9/web.xsd"/>'
        "</xs:schema>")
    (tmp_path / "secret.xsd").write_text(
        '<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" targetNamespace="urn:example:secret"/>')
    document = safexml.parse_trusted_file(hostile, resolver=validator._SchemaDirResolver())
    with pytest.raises(etree.XMLSchemaParseError, match="Failed to parse"):
        etree.XMLSchema(document)


@pytest.mark.skipif(shutil.which("xmllint") is None, reason="xmllint not installed")
def test_xmllint_validates_the_sample_standalone():
    result = subprocess.run(
        ["xmllint", "--noout", "--nonet", "--schema", str(validator.schema_path("BookingNotification")),
         str(SAMPLE)], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("message", [
    # Shapes libxml2 has no template for here: the generic scrub must still hide the value.
    f"Element '{{urn:x}}y': Something '{CANARY}' happened.",
    f"Element '{{urn:x}}y': Something 'a'{CANARY}'b' happened.",  # even number of quotes
    f"Element '{{urn:x}}y': Something 'a'{CANARY} happened.",  # odd number
    f"Element '{{urn:x}}y': Duplicate key-sequence ['{CANARY}'] in unique identity-constraint.",
])
def test_unknown_message_shapes_never_show_the_value(message):
    assert "Richardson" not in validator._sanitize(message)


def test_leak_guard_withholds_a_message_that_still_shows_the_value():
    element = etree.Element("x")
    element.text = f"a'{CANARY}'b"
    leaked = f"Something [value]{CANARY}[value] happened."
    assert validator._withhold_leaks(leaked, element) == "invalid content (details withheld)"
    assert validator._withhold_leaks("[value] is not a valid value", element) == "[value] is not a valid value"
