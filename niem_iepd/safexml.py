"""The one loader for XML we did not build ourselves: no DTD, no entities, no network, bounded size.

Every document that comes from outside the process (a received message, a file named on the command line,
a decrypted payload) goes through :func:`parse`. It refuses, with :class:`UnsafeXMLError`:

- input larger than ``max_bytes`` (checked before the parser sees a byte);
- any DOCTYPE, internal or external DTD subset, and any entity declaration. These are looked for twice:
  in the raw bytes (UTF-8 and UTF-16), so a billion-laughs or XXE payload is refused before libxml2 reads
  its DTD, and in the parsed document, which catches encodings a byte scan cannot see (UTF-7, EBCDIC);
- anything libxml2 will not parse with entity substitution, DTD loading and network access switched
  off and its default size, depth and entity-amplification limits on (``huge_tree=False``).

Refusal messages name the reason and at most a line and column; they never quote the document, and they
are raised ``from None`` because libxml2's own messages can quote element content.

:func:`parse_trusted_file` loads the project's packaged files (schemas, samples) with the same parser
settings and refusals, plus their file name as base URL so relative references resolve.
"""
from __future__ import annotations

import threading
from pathlib import Path

from lxml import etree

__all__ = ["MalformedXMLError", "UnsafeXMLError", "parse", "parse_trusted_file", "DEFAULT_MAX_BYTES"]

#: Largest document :func:`parse` accepts by default. Our messages are far below a megabyte.
DEFAULT_MAX_BYTES = 20_000_000

#: Packaged files are ours, but a limit still guards against a corrupt or swapped file.
_TRUSTED_MAX_BYTES = 50_000_000

_DOCTYPE = "<!DOCTYPE"
_ENTITY = "<!ENTITY"


class UnsafeXMLError(Exception):
    """XML refused before or during parsing. ``reason`` names why; the document is never quoted."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason

    def __str__(self) -> str:
        return f"XML refused: {self.reason}"


class MalformedXMLError(UnsafeXMLError):
    """Input that is not well-formed XML, or that exceeds libxml2's depth, size or amplification limits."""


def _encoded(marker: str) -> tuple[bytes, ...]:
    return (marker.encode("ascii"), marker.encode("utf-16-le"), marker.encode("utf-16-be"))


_BYTE_MARKERS: tuple[tuple[str, tuple[bytes, ...]], ...] = (
    # Entity declarations first: they are the more specific (and more dangerous) reason.
    ("entity declaration (DTD) is not allowed", _encoded(_ENTITY)),
    ("DOCTYPE / DTD is not allowed", _encoded(_DOCTYPE)),
)


_PER_THREAD = threading.local()


def _thread_parser() -> etree.XMLParser:
    """This thread's parser, made once: lxml parsers may be reused, never shared between threads."""
    parser = getattr(_PER_THREAD, "parser", None)
    if parser is None:
        parser = _PER_THREAD.parser = _parser()
    return parser


def _parser() -> etree.XMLParser:
    # Fresh, for callers that add resolvers to it; see _thread_parser for the shared per-thread one.
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=False,
    )


def _scan_bytes(data: bytes) -> None:
    """Refuse DTD markup visible in the raw bytes, before libxml2 reads any of it.

    A marker inside a comment or CDATA section is refused too: false positives are acceptable here,
    a DTD slipping through is not.
    """
    if b"!" not in data:  # every marker, in each encoding, holds the byte of "!": one fast scan for most input
        return
    for reason, markers in _BYTE_MARKERS:
        if any(marker in data for marker in markers):
            raise UnsafeXMLError(reason)


def _check_tree(tree: etree._ElementTree) -> None:
    """Refuse DTD content that reached the parsed document (encodings the byte scan cannot read)."""
    info = tree.docinfo
    internal = info.internalDTD
    if internal is not None and any(True for _ in internal.iterentities()):
        raise UnsafeXMLError("entity declaration (DTD) is not allowed")
    if info.doctype or internal is not None or info.externalDTD is not None or info.system_url:
        raise UnsafeXMLError("DOCTYPE / DTD is not allowed")
    root = tree.getroot()
    if root is not None and any(True for _ in root.iter(etree.Entity)):
        raise UnsafeXMLError("entity reference is not allowed")


def _as_bytes(data: bytes | bytearray | memoryview) -> bytes:
    if isinstance(data, str):
        # A str has lost its encoding declaration's meaning; the caller must pass what was received.
        raise TypeError("safexml.parse takes the received bytes, not str")
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError("safexml.parse takes bytes")
    return bytes(data)


def _parse(data: bytes, *, max_bytes: int, base_url: str | None,
           resolver: etree.Resolver | None = None) -> etree._ElementTree:
    if max_bytes <= 0:
        raise ValueError("max_bytes must be positive")
    if len(data) > max_bytes:
        raise UnsafeXMLError(f"document is {len(data)} bytes, over the limit of {max_bytes}")
    if not data or data.isspace():  # (strip() would copy the whole document)
        raise MalformedXMLError("document is empty")
    _scan_bytes(data)
    if resolver is None:
        parser = _thread_parser()
    else:
        parser = _parser()
        parser.resolvers.add(resolver)
    try:
        root = etree.fromstring(data, parser, base_url=base_url)
    except etree.XMLSyntaxError as error:
        line, column = error.position if error.position else (0, 0)
        where = f" (line {line}, column {column})" if line else ""
        raise MalformedXMLError(f"not well-formed XML, or beyond the parser's limits{where}") from None
    tree = root.getroottree()
    _check_tree(tree)
    return tree


def parse(data: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES) -> etree._ElementTree:
    """Parse XML received from outside; raise :class:`UnsafeXMLError` for anything unsafe.

    ``data`` must be the bytes as received (bytes, bytearray or memoryview). The result has no base URL:
    nothing in it is ever resolved against the file system or the network.
    """
    return _parse(_as_bytes(data), max_bytes=max_bytes, base_url=None)


def parse_trusted_file(path: str | Path, *, resolver: etree.Resolver | None = None) -> etree._ElementTree:
    """Parse one of the project's own packaged files (a schema, a sample, a catalog).

    Same parser settings and refusals as :func:`parse`; the file's absolute path becomes the document's
    base URL so relative references (``xs:import/@schemaLocation``) resolve next to it. ``resolver`` is
    attached to the parser so a caller can confine what those references may open (the validator uses
    it to keep schema imports inside ``niem_iepd/schemas``).
    """
    file = Path(path).resolve()
    return _parse(file.read_bytes(), max_bytes=_TRUSTED_MAX_BYTES, base_url=str(file), resolver=resolver)
