"""Our schema documents against the NIEM NDR 6.0 rules for their conformance targets, one test per rule.

The rules are the NDR's own Schematron (``../shared/niem/ndr/6.0``: ``subTarget-6.0.sch`` for the subset
documents under ``schemas/niem``, ``extTarget-6.0.sch`` for nx and the exchange schemas), read in place.
Each rule file a target includes is one test id (``sub-rule7-38a``...), so the test report lists every rule
checked and its result: passed, or failed with the documents and the rule's messages. 24 rules call the
NDR function library (``nf:``, ``src/ndr-functions.xsl``), which is not in ``../shared``: the five functions
they use are written here (``_FUNCTIONS``) from the NDR's description and added to the compiled rules.
Rule 8-19 (subset definitions match the reference) has no Schematron; test_reference_conformance checks it.

The rules use XPath 2.0; they are assembled in memory into one ISO Schematron per target, compiled with
lxml's ISO skeleton and run at XSLT 3.0 by Saxon (saxonche), as niem_iepd.rules does for our own rules.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from lxml import etree

from niem_iepd import validator

REPO = Path(__file__).resolve().parents[2]
NDR = REPO.parent / "shared/niem/ndr/6.0"
SCH = "http://purl.oclc.org/dsdl/schematron"
SVRL = "http://purl.oclc.org/dsdl/svrl"
SCHEMAS = validator.SCHEMAS_DIR
TARGETS = {
    # The utility documents (structures, conformanceTargets) assert no conformance target, as in the reference.
    "sub": ("subTarget-6.0.sch", sorted(path for path in (SCHEMAS / "niem").rglob("*.xsd")
                                        if path.parent.name != "utility")),
    "ext": ("extTarget-6.0.sch", sorted((SCHEMAS / "extension").glob("*.xsd"))
            + sorted((SCHEMAS / "exchange").glob("*.xsd"))),
}
_PARSER = etree.XMLParser(no_network=True, resolve_entities=False)

#: The five functions of the NDR function library the rules call, written for this test from what the
#: NDR says they mean (the library itself, src/ndr-functions.xsl, is not in ../shared). Namespaces are
#: resolved through the xs:import schemaLocations of the document, which is how our IEPD is assembled.
_FUNCTIONS = """
<xsl:stylesheet version="3.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform"
    xmlns:xs="http://www.w3.org/2001/XMLSchema"
    xmlns:ct="https://docs.oasis-open.org/niemopen/ns/specification/conformanceTargets/6.0/"
    xmlns:nf="https://docs.oasis-open.org/niemopen/ns/specification/NDR/6.0/#NDRFunctions">
  <xsl:function name="nf:get-document-element" as="element()">
    <xsl:param name="context" as="node()"/>
    <xsl:sequence select="root($context)/*[1]"/>
  </xsl:function>
  <xsl:function name="nf:get-target-namespace" as="xs:anyURI?">
    <xsl:param name="context" as="node()"/>
    <xsl:sequence select="for $ns in nf:get-document-element($context)/@targetNamespace return xs:anyURI($ns)"/>
  </xsl:function>
  <xsl:function name="nf:has-effective-conformance-target-identifier" as="xs:boolean">
    <xsl:param name="context" as="node()"/>
    <xsl:param name="target" as="xs:anyURI"/>
    <xsl:sequence select="string($target) = tokenize(normalize-space(
        nf:get-document-element($context)/@ct:conformanceTargets), ' ')"/>
  </xsl:function>
  <xsl:function name="nf:resolve-namespace" as="element(xs:schema)*">
    <xsl:param name="context" as="node()"/>
    <xsl:param name="namespace" as="xs:anyURI"/>
    <xsl:variable name="document" select="nf:get-document-element($context)"/>
    <xsl:sequence select="($document[@targetNamespace = $namespace]
        | (for $import in $document/xs:import[@namespace = $namespace][@schemaLocation]
           return doc(resolve-uri($import/@schemaLocation, base-uri($import)))/xs:schema))"/>
  </xsl:function>
  <xsl:function name="nf:resolve-type" as="element()*">
    <xsl:param name="context" as="node()"/>
    <xsl:param name="qname" as="xs:QName"/>
    <xsl:sequence select="for $schema in nf:resolve-namespace($context,
          xs:anyURI(namespace-uri-from-QName($qname)))
        return $schema/xs:*[(self::xs:complexType or self::xs:simpleType)
                            and @name = local-name-from-QName($qname)]"/>
  </xsl:function>
</xsl:stylesheet>
"""


def _rule_files(target: str) -> list[Path]:
    """The rule files the target's Schematron includes, in its order ([] when ../shared is absent)."""
    sch = NDR / TARGETS[target][0]
    if not sch.is_file():
        return []
    root = etree.parse(str(sch), _PARSER).getroot()
    return [NDR / node.get("href") for node in root.iter(f"{{{SCH}}}include")]


CASES = [(target, rule_file) for target in TARGETS for rule_file in _rule_files(target)]
if not CASES:
    pytest.skip(f"NIEM NDR 6.0 Schematron not found under {NDR}", allow_module_level=True)

pytestmark = pytest.mark.shared


def _assemble(target: str) -> etree._Element:
    """One ISO Schematron of every rule ``target`` includes, in its order."""
    source = etree.parse(str(NDR / TARGETS[target][0]), _PARSER).getroot()
    schema = etree.Element(f"{{{SCH}}}schema", nsmap={None: SCH, "xs": "http://www.w3.org/2001/XMLSchema"})
    schema.set("queryBinding", "xslt")  # relabelled for the XSLT 1 skeleton; Saxon runs it at 3.0
    for ns_declaration in source.iterfind(f"{{{SCH}}}ns"):
        schema.append(etree.fromstring(etree.tostring(ns_declaration)))
    for rule_file in _rule_files(target):
        schema.append(etree.parse(str(rule_file), _PARSER).getroot())
    return schema


@pytest.fixture(scope="module")
def engines():
    """A Saxon processor and, per target, the compiled rules with our NDR functions."""
    from lxml import isoschematron
    from saxonche import PySaxonProcessor

    processor = PySaxonProcessor(license=False)
    compiled = {}
    for target in TARGETS:
        stylesheet = isoschematron.iso_svrl_for_xslt1(
            isoschematron.iso_abstract_expand(isoschematron.iso_dsdl_include(etree.ElementTree(_assemble(target)))))
        stylesheet.getroot().set("version", "3.0")
        for function in etree.fromstring(_FUNCTIONS):
            stylesheet.getroot().append(function)
        compiled[target] = processor.new_xslt30_processor().compile_stylesheet(
            stylesheet_text=etree.tostring(stylesheet).decode())
    return processor, compiled


def _run(engines, target: str, document: Path) -> dict[str, list[str]]:
    """Pattern id -> failures (``document: message``) of every rule of ``target`` on ``document``."""
    processor, compiled = engines
    node = processor.parse_xml(xml_file_name=str(document.resolve()))
    svrl = etree.fromstring(compiled[target].transform_to_string(xdm_node=node).encode(), _PARSER)
    found: dict[str, list[str]] = {}
    pattern = None
    for item in svrl.iterchildren(etree.Element):
        local = etree.QName(item).localname
        if local == "active-pattern":
            pattern = item.get("id")
            found.setdefault(pattern, [])
        elif local in ("failed-assert", "successful-report") and item.get("role") != "warning":
            text = " ".join((item.findtext(f"{{{SVRL}}}text") or "").split())
            found[pattern].append(f"{document.name}: {text}")
    return found


@pytest.fixture(scope="module")
def results(engines) -> dict[tuple[str, str], list[str]]:
    """(target, pattern id) -> failures over every document of the target."""
    found: dict[tuple[str, str], list[str]] = {}
    for target, (_, documents) in TARGETS.items():
        for document in documents:
            for pattern, failures in _run(engines, target, document).items():
                found.setdefault((target, pattern), []).extend(failures)
    return found


def test_the_harness_catches_a_broken_document(engines, tmp_path):
    # nx.xsd without one definition and without its conformance target must break rules 7-38 and 8-13:
    # the rules, the functions included, really run on our documents.
    shutil.copytree(SCHEMAS, tmp_path / "schemas")
    broken = tmp_path / "schemas/extension/nx.xsd"
    schema = etree.parse(str(broken), _PARSER)
    annotation = schema.getroot().find("{http://www.w3.org/2001/XMLSchema}complexType/"
                                       "{http://www.w3.org/2001/XMLSchema}annotation")
    annotation.getparent().remove(annotation)
    del schema.getroot().attrib["{https://docs.oasis-open.org/niemopen/ns/specification/conformanceTargets/6.0/}"
                                "conformanceTargets"]
    schema.write(str(broken))
    failures = _run(engines, "ext", broken)
    assert any(failures.get(f"rule7-38{suffix}") for suffix in "abcd"), failures
    assert failures.get("rule8-13") and failures.get("rule9-2"), failures
    assert not any(_run(engines, "ext", SCHEMAS / "extension/nx.xsd").values())


@pytest.mark.parametrize(("target", "rule_file"), CASES,
                         ids=[f"{target}-{rule_file.stem}" for target, rule_file in CASES])
def test_ndr_rule(results, target, rule_file):
    title = etree.parse(str(rule_file), _PARSER).getroot().findtext(f"{{{SCH}}}title") or ""
    pattern = etree.parse(str(rule_file), _PARSER).getroot().get("id")
    assert (target, pattern) in results, f"{pattern} did not run"
    assert results[(target, pattern)] == [], f"NDR {pattern} ({title})"


def test_every_document_has_exactly_one_target():
    covered = [path for _, documents in TARGETS.values() for path in documents]
    assert sorted(covered) == sorted(set(covered))
    utility = {SCHEMAS / "niem/utility/structures.xsd", SCHEMAS / "niem/utility/conformanceTargets.xsd"}
    assert set(SCHEMAS.rglob("*.xsd")) - utility <= set(covered)
