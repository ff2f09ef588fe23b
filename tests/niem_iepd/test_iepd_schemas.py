"""The IEPD schema set as data: catalog coverage, relative locations, NDR 6.0 checks that need no Schematron."""
from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree

from niem_iepd import ns, safexml, validator

XS = ns.XS
SCHEMAS = validator.SCHEMAS_DIR
CATALOG = SCHEMAS / "xml-catalog.xml"
CATALOG_NS = "urn:oasis:names:tc:entity:xmlns:xml:catalog"
DOCUMENTS = sorted(SCHEMAS.rglob("*.xsd"))
NDR = "https://docs.oasis-open.org/niemopen/ns/specification/NDR/6.0/#"
CONFORMANCE = f"{{{ns.CT}}}conformanceTargets"
#: Utility documents that, like the reference, assert no conformance target.
UTILITY = {"niem/utility/structures.xsd", "niem/utility/conformanceTargets.xsd"}


def relative(path: Path) -> str:
    return path.relative_to(SCHEMAS).as_posix()


def test_catalog_maps_every_namespace_to_its_document():
    catalog = safexml.parse_trusted_file(CATALOG)
    assert catalog.docinfo.doctype == ""
    entries = {entry.get("name"): entry.get("uri") for entry in catalog.getroot().iter(f"{{{CATALOG_NS}}}uri")}
    documents = {safexml.parse_trusted_file(path).getroot().get("targetNamespace"): relative(path)
                 for path in DOCUMENTS}
    assert entries == documents
    used = {ns.STRUCTURES, ns.NIEM_XS, ns.NC, ns.J, ns.NX, *(root.namespace for root in ns.MESSAGE_ROOTS.values())}
    assert used <= entries.keys()


def test_every_message_type_has_its_exchange_schema():
    for message_type, root in ns.MESSAGE_ROOTS.items():
        schema = safexml.parse_trusted_file(validator.schema_path(message_type)).getroot()
        assert schema.get("targetNamespace") == root.namespace
        assert schema.find(f"{{{XS}}}element[@name='{root.localname}']") is not None


@pytest.mark.parametrize("path", DOCUMENTS, ids=relative)
def test_schema_locations_are_relative_and_inside_the_set(path):
    schema = safexml.parse_trusted_file(path).getroot()
    for node in schema.iter(f"{{{XS}}}import", f"{{{XS}}}include"):
        location = node.get("schemaLocation")
        assert location and "://" not in location and not location.startswith("/"), location
        assert (path.parent / location).resolve().is_relative_to(SCHEMAS)
        assert (path.parent / location).is_file()


@pytest.mark.parametrize("path", DOCUMENTS, ids=relative)
def test_ndr_documentation_nillable_and_conformance_target(path):
    schema = safexml.parse_trusted_file(path).getroot()
    name = relative(path)
    assert schema.get("{http://www.w3.org/XML/1998/namespace}lang") == "en-US"
    target = schema.get(CONFORMANCE)
    if name in UTILITY:
        assert target is None
    elif name.startswith("niem/"):
        assert target == f"{NDR}SubsetSchemaDocument"
    else:
        assert target == f"{NDR}ExtensionSchemaDocument"
    if name != "niem/utility/conformanceTargets.xsd":  # no definitions there, as in the reference
        assert schema.findtext(f"{{{XS}}}annotation/{{{XS}}}documentation"), "schema has no definition"
        for component in schema.iterchildren(*(f"{{{XS}}}{kind}" for kind in
                                               ("element", "attribute", "complexType", "simpleType"))):
            definition = component.findtext(f"{{{XS}}}annotation/{{{XS}}}documentation")
            assert definition and definition.strip(), f"{component.get('name')} has no definition"
        for enumeration in schema.iter(f"{{{XS}}}enumeration"):
            assert enumeration.findtext(f"{{{XS}}}annotation/{{{XS}}}documentation"), enumeration.get("value")
    if target is not None:
        for element in schema.iterchildren(f"{{{XS}}}element"):
            if element.get("abstract") != "true":
                assert element.get("nillable") == "true", element.get("name")


def test_schemas_compile_once_and_fast():
    import time

    started = time.perf_counter()
    etree.XMLSchema(safexml.parse_trusted_file(validator.schema_path("BookingNotification"),
                                               resolver=validator._SchemaDirResolver()))
    assert time.perf_counter() - started < 1.0
