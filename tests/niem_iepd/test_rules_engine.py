"""niem_iepd.rules: the one-pass rules engine reports exactly what the ISO skeleton's SVRL reports, for one
message and for a batch, and refuses Schematron it cannot compile faithfully."""
from __future__ import annotations

import copy
from pathlib import Path

import pytest
from lxml import etree

from niem_iepd import rules, safexml, validator

SAMPLES = Path(validator.__file__).parent / "samples"
SVRL = "http://purl.oclc.org/dsdl/svrl"
NX = "http://niem-exchange.org/ns/extension/1.0/"
NC = "https://docs.oasis-open.org/niemopen/ns/model/niem-core/6.0/"


@pytest.fixture(scope="module")
def skeleton():
    """The rules as the ISO skeleton compiles them, run by Saxon, SVRL read back: the reference."""
    from saxonche import PySaxonProcessor

    processor = PySaxonProcessor(license=False)
    executable = processor.new_xslt30_processor().compile_stylesheet(
        stylesheet_text=rules.compiled_stylesheet().decode("utf-8"))

    def run(root: etree._Element) -> list[tuple[str, etree._Element | None, str]]:
        document = processor.parse_xml(xml_text=etree.tostring(root, encoding="unicode"))
        svrl = safexml.parse(executable.transform_to_string(xdm_node=document).encode("utf-8"))
        found = []
        for node in svrl.getroot().iter(f"{{{SVRL}}}failed-assert", f"{{{SVRL}}}successful-report"):
            located = etree.ElementTree(root).xpath(node.get("location"))
            found.append((node.get("id"), located[0] if located else None,
                          " ".join(node.findtext(f"{{{SVRL}}}text").split())))
        return found
    return run


def _broken_variants(root: etree._Element) -> list[etree._Element]:
    """The message as is, with every identifier blank, and with every nx count negative."""
    blank, negative = copy.deepcopy(root), copy.deepcopy(root)
    for element in blank.iter(f"{{{NC}}}IdentificationID"):
        element.text = " "
    for element in negative.iter(etree.Element):
        if element.tag.startswith(f"{{{NX}}}") and element.tag.endswith("Quantity"):
            element.text = "-3"
    return [root, blank, negative]


MESSAGES = [variant for path in sorted(SAMPLES.rglob("*.xml"))
            for variant in _broken_variants(safexml.parse(path.read_bytes()).getroot())]


def _plain(failures: list[rules.RuleFailure]) -> list[tuple[str, etree._Element | None, str]]:
    return [(f.rule, f.element, f.message) for f in failures]


def test_every_sample_and_broken_variant_fails_exactly_as_the_iso_skeleton_says(skeleton):
    broke = set()
    for root in MESSAGES:
        ours = _plain(rules.check(root))
        assert ours == skeleton(root), validator.message_type_of(root)
        broke.update(rule for rule, _, _ in ours)
    # The comparison covered most rules, several failures per message and in one rule more than one element.
    assert {"NX-MSG-1", "NX-ID-1", "NX-ID-2", "NX-COUNT-1", "NX-DATE-1", "NX-DATE-3", "NX-REL-1",
            "NX-PRIV-1", "NX-BHA-1"} <= broke
    assert any(len({f.element for f in rules.check(root) if f.rule == "NX-COUNT-1"}) > 1 for root in MESSAGES)


def test_a_batch_reports_each_message_as_if_it_were_checked_alone():
    assert rules.check_many([]) == []
    batch = rules.check_many(MESSAGES)
    assert [_plain(failures) for failures in batch] == [_plain(rules.check(root)) for root in MESSAGES]
    assert any(batch) and not all(batch)
    for root, failures in zip(MESSAGES, batch):
        assert all(f.element is None or f.element.getroottree().getroot() is root for f in failures)


def test_a_rule_that_looks_at_the_parent_sees_only_its_own_message():
    # NX-MSG-2 compares the category text with the name of the metadata's parent: in a batch that parent
    # must still be the message's own root (a shared wrapper would break every message).
    roster = safexml.parse((SAMPLES / "familiar-faces-roster.xml").read_bytes()).getroot()
    booking = safexml.parse((SAMPLES / "booking-notification.xml").read_bytes()).getroot()
    assert rules.check_many([roster, booking, roster]) == [[], [], []]


def test_an_element_inside_a_larger_tree_is_checked_as_a_message_of_its_own():
    booking = safexml.parse((SAMPLES / "invalid/blank-message-id.xml").read_bytes()).getroot()
    holder = etree.Element("holder")
    holder.append(booking)
    booking.tail = "text after the message, which is not part of it"
    (failure,) = rules.check(booking)
    assert [[f.rule for f in failures] for failures in rules.check_many([booking, booking])] == [["NX-MSG-1"]] * 2
    assert failure.rule == "NX-MSG-1" and failure.element.tag == f"{{{NX}}}MessageMetadata"
    assert failure.element.getparent() is booking


@pytest.mark.parametrize("construct", [
    '<sch:let name="x" value="1"/>',
    '<sch:rule abstract="true" id="a"><sch:assert test="true()">x</sch:assert></sch:rule>',
    '<sch:rule context="*"><sch:assert test="false()">at <sch:value-of select="."/></sch:assert></sch:rule>',
])
def test_schematron_the_engine_cannot_run_faithfully_is_refused_when_compiled(construct):
    schema = etree.fromstring(
        '<sch:schema xmlns:sch="http://purl.oclc.org/dsdl/schematron" queryBinding="xslt2">'
        f'<sch:pattern id="p">{construct}</sch:pattern></sch:schema>')
    with pytest.raises(ValueError, match="not supported"):
        rules._compile(schema)


def test_validate_many_gives_each_document_what_validate_gives_it():
    stranger = etree.fromstring("<stranger/>")
    documents = [*MESSAGES[:6], stranger, etree.ElementTree(MESSAGES[7]), *MESSAGES[8:]]
    many = validator.validate_many(documents)
    assert many == [validator.validate(document) for document in documents]
    assert many[6][0].message.startswith("root element is not a known message type")
    assert any(issue.rule.startswith("NX-") for issues in many for issue in issues)
    assert validator.validate_many(documents, business_rules=False) == [
        validator.validate(document, business_rules=False) for document in documents]
    assert validator.validate_many([]) == []

