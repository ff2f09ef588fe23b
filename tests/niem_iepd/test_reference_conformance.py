"""Our NIEM 6.0 subset against the reference schemas in ../shared (skipped when they are absent).

(a) every component our subset declares in a NIEM namespace exists in the reference with the same name,
    namespace, kind, type, base type, substitution group, abstract and nillable; each of our sequences is
    an in-order subsequence of the reference's, with occurrences inside the reference's; enumerations,
    attributes and wildcards are a subset of the reference's (the NDR 6.0 "subset rule"); definitions are
    the reference's, word for word (NDR 6.0 rule 8-19);
(b) every valid sample of every message type, and valid variants of the booking sample, validate against
    the REFERENCE NIEM 6.0 schemas plus our nx and exchange schemas, loaded through a resolver that swaps
    our subset for the reference files.
"""
from __future__ import annotations

import copy
from pathlib import Path

import pytest
from lxml import etree

from niem_iepd import ns, safexml, validator

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared"
REFERENCE = SHARED / "niem/6.0/xsd"
if not (REFERENCE / "niem-core.xsd").is_file():
    pytest.skip(f"NIEM 6.0 reference schemas not found under {REFERENCE}", allow_module_level=True)

pytestmark = pytest.mark.shared

XS = ns.XS
SUBSET = validator.SCHEMAS_DIR / "niem"
SUBSET_FILES = sorted(path.relative_to(SUBSET).as_posix() for path in SUBSET.rglob("*.xsd"))
SAMPLE = REPO / "niem_iepd/samples/booking-notification.xml"
KINDS = ("element", "attribute", "complexType", "simpleType", "attributeGroup")


def load(path: Path) -> etree._Element:
    return etree.parse(str(path), etree.XMLParser(no_network=True, resolve_entities=False)).getroot()


def qname(node: etree._Element, value: str | None) -> tuple[str | None, str] | None:
    """A QName-valued attribute as (namespace, local name), resolved against ``node``'s prefixes."""
    if value is None:
        return None
    prefix, _, local = value.rpartition(":")
    return node.nsmap.get(prefix or None), local


def components(schema: etree._Element) -> dict[tuple[str, str], etree._Element]:
    return {(etree.QName(child).localname, child.get("name")): child
            for child in schema if isinstance(child.tag, str) and etree.QName(child).localname in KINDS}


def occurs(node: etree._Element) -> tuple[int, float]:
    high = node.get("maxOccurs", "1")
    return int(node.get("minOccurs", "1")), float("inf") if high == "unbounded" else int(high)


def particles(type_node: etree._Element) -> list[tuple[object, tuple[int, float]]]:
    """The type's own sequence: (element ref QName or ('any', namespace, processContents), occurs)."""
    found = []
    for node in type_node.iterfind(f".//{{{XS}}}sequence/*"):
        local = etree.QName(node).localname
        if local == "element":
            found.append((qname(node, node.get("ref")), occurs(node)))
        elif local == "any":
            found.append((("any", node.get("namespace"), node.get("processContents")), occurs(node)))
    return found


def attribute_uses(node: etree._Element) -> set[object]:
    uses = {("attribute", qname(a, a.get("ref"))) for a in node.iter(f"{{{XS}}}attribute") if a.get("ref")}
    uses |= {("group", qname(g, g.get("ref"))) for g in node.iter(f"{{{XS}}}attributeGroup") if g.get("ref")}
    uses |= {("any", w.get("namespace"), w.get("processContents")) for w in node.iter(f"{{{XS}}}anyAttribute")}
    return uses


def derivation(type_node: etree._Element) -> tuple[object, ...]:
    for content in ("simpleContent", "complexContent"):
        for method in ("extension", "restriction"):
            step = type_node.find(f"{{{XS}}}{content}/{{{XS}}}{method}")
            if step is not None:
                return content, method, qname(step, step.get("base"))
    step = type_node.find(f"{{{XS}}}restriction")
    if step is not None:
        return "simpleType", "restriction", qname(step, step.get("base"))
    listed = type_node.find(f".//{{{XS}}}list")
    if listed is not None:
        return "list", qname(listed, listed.get("itemType"))
    return ("none",)


def enumerations(node: etree._Element) -> set[str]:
    return {e.get("value") for e in node.iter(f"{{{XS}}}enumeration")}


def is_subsequence(ours: list, reference: list) -> bool:
    remaining = iter(reference)
    return all(any(item == candidate for candidate in remaining) for item in ours)


def test_subset_layout_mirrors_the_reference():
    assert SUBSET_FILES, "no subset schema documents found"
    for relative in SUBSET_FILES:
        assert (REFERENCE / relative).is_file(), relative


@pytest.mark.parametrize("relative", SUBSET_FILES)
def test_subset_components_match_the_reference(relative):
    ours, reference = load(SUBSET / relative), load(REFERENCE / relative)
    assert ours.get("targetNamespace") == reference.get("targetNamespace")
    theirs = components(reference)
    problems = []
    for key, mine in components(ours).items():
        other = theirs.get(key)
        if other is None:
            problems.append(f"{key} is not in the reference")
            continue
        for attribute in ("type", "substitutionGroup", "base"):
            if qname(mine, mine.get(attribute)) != qname(other, other.get(attribute)):
                problems.append(f"{key}: {attribute} differs")
        for attribute, default in (("abstract", "false"), ("nillable", "false"), ("default", None),
                                   ("fixed", None)):
            if mine.get(attribute, default) != other.get(attribute, default):
                problems.append(f"{key}: {attribute} differs")
        definition = f"{{{XS}}}annotation/{{{XS}}}documentation"
        if mine.findtext(definition) != other.findtext(definition):
            problems.append(f"{key}: definition differs from the reference's (NDR 6.0 rule 8-19)")
        if key[0] in ("complexType", "simpleType", "attribute") and derivation(mine) != derivation(other):
            problems.append(f"{key}: derivation or base type differs")
        mine_particles, their_particles = particles(mine), particles(other)
        refs = [ref for ref, _ in their_particles]
        if not is_subsequence([ref for ref, _ in mine_particles], refs):
            problems.append(f"{key}: sequence is not an in-order subsequence of the reference's")
        for ref, (low, high) in mine_particles:
            if ref in refs:
                their_low, their_high = their_particles[refs.index(ref)][1]
                if low < their_low or high > their_high:
                    problems.append(f"{key}: occurrences of {ref} are wider than the reference's")
        if not attribute_uses(mine) <= attribute_uses(other):
            problems.append(f"{key}: attributes not in the reference: {attribute_uses(mine) - attribute_uses(other)}")
        if not enumerations(mine) <= enumerations(other):
            problems.append(f"{key}: enumerations not in the reference: {enumerations(mine) - enumerations(other)}")
    assert problems == []


def test_registry_namespaces_are_the_reference_target_namespaces():
    for uri, relative in ((ns.NC, "niem-core.xsd"), (ns.J, "domains/justice.xsd"), (ns.HS, "domains/hs.xsd"),
                          (ns.STRUCTURES, "utility/structures.xsd"), (ns.NIEM_XS, "adapters/niem-xs.xsd"),
                          (ns.CT, "utility/conformanceTargets.xsd")):
        assert load(REFERENCE / relative).get("targetNamespace") == uri, relative


class _SubsetToReference(etree.Resolver):
    """Load the reference document wherever our schemas import a document of the subset."""

    def resolve(self, system_url, public_id, context):
        path = Path(system_url.removeprefix("file://")).resolve()
        if path.is_relative_to(SUBSET):
            return self.resolve_filename(str(REFERENCE / path.relative_to(SUBSET)), context)
        return None


@pytest.fixture(scope="module")
def reference_schema() -> etree.XMLSchema:
    """Every exchange schema + nx on top of the full NIEM 6.0 reference, in one set (about 3 s with lxml)."""
    parser = etree.XMLParser(no_network=True, resolve_entities=False)
    parser.resolvers.add(_SubsetToReference())
    wrapper = etree.Element(f"{{{XS}}}schema", nsmap={"xs": XS})
    for message_type, root in ns.MESSAGE_ROOTS.items():
        etree.SubElement(wrapper, f"{{{XS}}}import", namespace=root.namespace,
                         schemaLocation=validator.schema_path(message_type).as_uri())
    document = etree.fromstring(etree.tostring(wrapper), parser, base_url=str(validator.SCHEMAS_DIR / "wrapper.xsd"))
    return etree.XMLSchema(document)


MANIFEST = REPO / "niem_iepd/samples/manifest.csv"


def _valid_samples() -> list[str]:
    import csv

    with MANIFEST.open(newline="") as handle:
        return [row["file"] for row in csv.DictReader(handle) if row["expect"] == "valid"]


@pytest.mark.parametrize("name", _valid_samples())
def test_every_valid_sample_is_valid_against_the_reference(reference_schema, name):
    tree = safexml.parse((REPO / "niem_iepd/samples" / name).read_bytes())
    assert validator.validate(tree) == []
    assert reference_schema.validate(tree), str(reference_schema.error_log)


def test_every_message_type_has_a_valid_sample():
    covered = {validator.message_type_of(safexml.parse((REPO / "niem_iepd/samples" / name).read_bytes()))
               for name in _valid_samples()}
    assert covered == set(ns.MESSAGE_ROOTS)


def _with_suffix_and_second_charge(tree: etree._ElementTree) -> None:
    name = tree.getroot().find(ns.clark("j:Booking/j:BookingSubject/nc:EntityPerson/nc:PersonName"))
    etree.SubElement(name, ns.q("nc", "PersonNameSuffixText")).text = "JR"
    arrest = tree.getroot().find(ns.clark("j:Booking/j:Arrest"))
    arrest.append(copy.deepcopy(arrest[-1]))


def _signed(tree: etree._ElementTree) -> None:
    signature = etree.SubElement(tree.getroot(), f"{{{ns.DS}}}Signature")
    etree.SubElement(signature, f"{{{ns.DS}}}SignedInfo")


@pytest.mark.parametrize("mutate", [None, _with_suffix_and_second_charge, _signed],
                         ids=["sample", "suffix-and-two-charges", "signed"])
def test_valid_messages_are_valid_against_the_reference(reference_schema, mutate):
    tree = safexml.parse(SAMPLE.read_bytes())
    if mutate:
        mutate(tree)
    assert validator.validate(tree) == []
    assert reference_schema.validate(tree), str(reference_schema.error_log)


def test_reference_also_rejects_ncic_race_letters(reference_schema):
    tree = safexml.parse(SAMPLE.read_bytes())
    tree.getroot().find(ns.clark("j:Booking/j:BookingSubject/nc:EntityPerson/j:PersonRaceCode")).text = "W"
    assert not reference_schema.validate(tree)


def test_reference_schema_really_is_the_reference(reference_schema):
    # nc:PersonMaidenName is in the reference's nc:PersonNameType but not in our subset: only the
    # reference accepts it, which shows the resolver swapped the documents.
    tree = safexml.parse(SAMPLE.read_bytes())
    name = tree.getroot().find(ns.clark("j:Booking/j:BookingSubject/nc:EntityPerson/nc:PersonName"))
    etree.SubElement(name, ns.q("nc", "PersonMaidenName")).text = "Roe"
    assert reference_schema.validate(tree), str(reference_schema.error_log)
    assert not validator.is_valid(tree)
