"""The IEPD's Schematron business rules (``schematron/niem-exchange.sch``), run on one message at a time.

The rules use XPath 2.0 (date comparisons, ``matches``), which libxslt cannot evaluate. They are compiled
once per process with the ISO Schematron XSLT 1 skeleton that ships with lxml (include, abstract expansion,
SVRL), and the generated stylesheet is run at XSLT 3.0 by Saxon (saxonche). Results come back as SVRL:
every failed ``sch:assert`` and fired ``sch:report`` becomes a :class:`RuleFailure` with the rule id, the
element it points at and the rule's own text (never a value from the message).
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

from lxml import etree

from niem_iepd import safexml

__all__ = ["RuleFailure", "SCHEMATRON", "check", "compiled_stylesheet"]

SCHEMATRON = (Path(__file__).parent / "schematron" / "niem-exchange.sch").resolve()
_SVRL = "http://purl.oclc.org/dsdl/svrl"


@dataclass(frozen=True, slots=True)
class RuleFailure:
    """One business rule a message breaks: its id, the element (or None if it cannot be found) and text."""

    rule: str
    element: etree._Element | None
    message: str


def compiled_stylesheet() -> bytes:
    """The Schematron compiled to an XSLT stylesheet Saxon runs at 3.0 (the ISO skeleton's output)."""
    from lxml import isoschematron

    schema = safexml.parse_trusted_file(SCHEMATRON)
    # The skeleton refuses queryBinding="xslt2"; its output is run by an XSLT 3.0 processor, which is
    # what makes the XPath 2.0 tests legal, so the binding is relabelled in memory only.
    schema.getroot().set("queryBinding", "xslt")
    # No svrl:fired-rule elements: only failures are read, and the smaller SVRL is cheaper to write and parse.
    stylesheet = isoschematron.iso_svrl_for_xslt1(
        isoschematron.iso_abstract_expand(isoschematron.iso_dsdl_include(schema)),
        **{"generate-fired-rule": etree.XSLT.strparam("false")})
    stylesheet.getroot().set("version", "3.0")
    return etree.tostring(stylesheet)


class _Engine:
    """A Saxon processor and the compiled rules, made on first use; one transformation at a time."""

    def __init__(self) -> None:
        from saxonche import PySaxonProcessor

        self.processor = PySaxonProcessor(license=False)
        compiler = self.processor.new_xslt30_processor()
        self.executable = compiler.compile_stylesheet(stylesheet_text=compiled_stylesheet().decode("utf-8"))
        self.builder = self.processor.new_document_builder()  # cheaper per document than processor.parse_xml
        self.lock = threading.Lock()

    def run(self, message: bytes) -> bytes:
        with self.lock:
            document = self.builder.parse_xml(xml_text=message.decode("utf-8"))
            return self.executable.transform_to_string(xdm_node=document).encode("utf-8")


_engine: _Engine | None = None
_engine_lock = threading.Lock()


def _get_engine() -> _Engine:
    global _engine
    if _engine is None:
        with _engine_lock:
            if _engine is None:
                _engine = _Engine()
    return _engine


def check(root: etree._Element) -> list[RuleFailure]:
    """Every business rule ``root`` (a message's root element) breaks, in document order of the rules."""
    # Serialize the element, not its tree: no DOCTYPE or processing instruction reaches Saxon.
    svrl = safexml.parse(_get_engine().run(etree.tostring(root, encoding="UTF-8")))
    failures = []
    for node in svrl.getroot().iter(f"{{{_SVRL}}}failed-assert", f"{{{_SVRL}}}successful-report"):
        text = " ".join((node.findtext(f"{{{_SVRL}}}text") or "").split())
        failures.append(RuleFailure(node.get("id") or "NX-UNNAMED", _locate(root, node.get("location")), text))
    return failures


def _locate(root: etree._Element, location: str | None) -> etree._Element | None:
    """The element an SVRL location (``/*[local-name()='X' and namespace-uri()='...'][2]/...``) names."""
    if not location:
        return None
    try:
        found = etree.ElementTree(root).xpath(location) if root.getparent() is None else root.xpath(location)
    except etree.XPathError:
        return None
    return found[0] if found and isinstance(found[0], etree._Element) else None
