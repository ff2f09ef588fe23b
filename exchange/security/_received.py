"""Parsing of received bytes for verify and decrypt: no DTD, no entities, no network, bounded size.

Every refusal is a :class:`SecurityError` whose text never quotes the document (parser messages can quote
element names and text, so they are dropped, and the exception is raised ``from None``).
"""
from __future__ import annotations

from lxml import etree

from transforms.model.errors import SecurityError

# TODO(security): switch to niem_iepd.safexml.parse once it lands (it raises UnsafeXMLError).
#: Refuse anything larger before parsing: the largest message we expect is well under a megabyte.
MAX_DOCUMENT_BYTES = 32 * 1024 * 1024


def _parser() -> etree.XMLParser:
    # A new parser per call: lxml parsers are not safe to share between threads.
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_blank_text=False,
    )


def parse_received(data: bytes, subject: str) -> etree._ElementTree:
    """Parse received ``data`` safely; SecurityError for oversized, malformed or DTD-bearing input."""
    if not isinstance(data, (bytes, bytearray)):
        raise TypeError("received data must be bytes")
    if len(data) > MAX_DOCUMENT_BYTES:
        raise SecurityError(subject, "document exceeds the size limit")
    try:
        tree = etree.fromstring(bytes(data), _parser()).getroottree()
    except etree.XMLSyntaxError:
        raise SecurityError(subject, "document is not well-formed XML") from None
    doctype = tree.docinfo
    if doctype.doctype or doctype.internalDTD is not None or doctype.externalDTD is not None:
        raise SecurityError(subject, "documents with a DTD are refused")
    for node in tree.iter(etree.Entity):
        raise SecurityError(subject, "entity references are refused")
    return tree
