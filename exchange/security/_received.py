"""Parsing of received bytes for verify and decrypt, through the project's one safe loader.

:func:`niem_iepd.safexml.parse` refuses DTDs, entities, network access and oversized or over-deep input;
here its :class:`~niem_iepd.safexml.UnsafeXMLError` becomes a :class:`SecurityError` for the security
layer's callers. The text never quotes the document (safexml's reasons do not), and the exception is
raised ``from None`` so no parser message travels along as a cause.
"""
from __future__ import annotations

from lxml import etree

from niem_iepd import safexml
from transforms.model.errors import SecurityError

#: The one size limit for received documents (bytes), checked before the parser sees a byte. Callers that
#: expect larger messages pass ``max_bytes`` to ``decrypt``/``verify``/``receive`` instead of editing this.
MAX_DOCUMENT_BYTES = safexml.DEFAULT_MAX_BYTES


def parse_received(data: bytes, subject: str, *, max_bytes: int = MAX_DOCUMENT_BYTES) -> etree._ElementTree:
    """Parse received ``data`` safely; SecurityError for oversized, malformed, DTD- or entity-bearing input."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError("received data must be bytes")
    try:
        return safexml.parse(data, max_bytes=max_bytes)
    except safexml.UnsafeXMLError as error:
        raise SecurityError(subject, f"XML refused: {error.reason}") from None
