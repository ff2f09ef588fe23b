"""The IEPD's Schematron business rules (``schematron/niem-exchange.sch``): :func:`check` one message,
:func:`check_many` a batch in one Saxon call.

The rules use XPath 2.0 (date comparisons, ``matches``), which libxslt cannot evaluate, so they run in Saxon
(saxonche) at XSLT 3.0. The schema is compiled once per process, here, into one XSLT 3.0 stylesheet that
visits the document once: every rule becomes a template in one mode (priority in schema order), and each
template checks its asserts and reports, then hands the node to the next matching rule with
``xsl:next-match``; a tunnelled list of the patterns that already fired on the node keeps ISO Schematron's
rule that only the first matching rule of a pattern fires. The stylesheet returns one short string per
message that breaks a rule (the number of the assert and the element's position in document order)
instead of an SVRL report, so nothing has to be serialized or parsed on the way back, and nothing at all is
returned for a valid message. Rule ids and texts come from the schema, never from the message.

That compiler covers the part of ISO Schematron the IEPD uses (``ns``, ``pattern``, ``rule/@context``,
``assert`` and ``report`` with plain text, ``title`` and ``p``); anything else (``let``, abstract rules and
patterns, ``include``, ``phase``, ``value-of`` in a text...) is refused when the rules are compiled, so a
new rule cannot be silently ignored. :func:`compiled_stylesheet` still gives the rules compiled by the ISO
skeleton that ships with lxml (SVRL output): what anyone can run without niem-exchange, and what the tests
compare this engine against.

Where the time goes, per booking notification (3 KB, CPU time on the shared dev machine, 2026-11-24):
serializing the lxml tree ~6 us, Saxon parsing it ~90-120 us (Saxon/C's parser; batching does not make
parsing cheaper per message), running the stylesheet ~40 us: ~190 us for :func:`check`, ~160 us per message
for :func:`check_many` over 100 messages (the fixed cost of a Saxon call is shared). The ISO skeleton's
stylesheet with SVRL took ~780 us (one pass over the document per pattern, then the SVRL serialized and
parsed back); ``bench/iepd_validation.py`` measures both in one run.
"""
from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from lxml import etree

from niem_iepd import safexml

__all__ = ["RuleFailure", "SCHEMATRON", "check", "check_many", "compiled_stylesheet"]

SCHEMATRON = (Path(__file__).parent / "schematron" / "niem-exchange.sch").resolve()
_SCH = "http://purl.oclc.org/dsdl/schematron"
_XSL = "http://www.w3.org/1999/XSL/Transform"
_BATCH = "rules-batch"
"""Name of the element that wraps a batch of messages (no namespace; never seen by the rules)."""


@dataclass(frozen=True, slots=True)
class RuleFailure:
    """One business rule a message breaks: its id, the element (or None if it cannot be found) and text."""

    rule: str
    element: etree._Element | None
    message: str


def compiled_stylesheet() -> bytes:
    """The Schematron compiled by the ISO skeleton to an XSLT stylesheet (SVRL output) Saxon runs at 3.0.

    Not what :func:`check` runs (see the module docstring): the reference it is tested against, and how to
    run the rules with any XSLT 2/3 processor.
    """
    from lxml import isoschematron

    schema = safexml.parse_trusted_file(SCHEMATRON)
    # The skeleton refuses queryBinding="xslt2"; its output is run by an XSLT 3.0 processor, which is
    # what makes the XPath 2.0 tests legal, so the binding is relabelled in memory only.
    schema.getroot().set("queryBinding", "xslt")
    stylesheet = isoschematron.iso_svrl_for_xslt1(
        isoschematron.iso_abstract_expand(isoschematron.iso_dsdl_include(schema)),
        **{"generate-fired-rule": etree.XSLT.strparam("false")})
    stylesheet.getroot().set("version", "3.0")
    return etree.tostring(stylesheet)


# --- the compiler ------------------------------------------------------------------------------------------

def _sch(name: str) -> str:
    return f"{{{_SCH}}}{name}"


def _refuse(element: etree._Element, what: str) -> ValueError:
    return ValueError(f"{SCHEMATRON.name} line {element.sourceline}: {what} is not supported by "
                      "niem_iepd.rules; keep to ns, pattern, rule, assert and report with plain text")


def _children(element: etree._Element, allowed: set[str]) -> list[etree._Element]:
    """The element children of ``element``; a Schematron element not in ``allowed`` is refused."""
    found = []
    for child in element:
        if not isinstance(child.tag, str):
            continue  # comments and processing instructions
        if child.tag not in {_sch(name) for name in allowed}:
            raise _refuse(child, f"<{etree.QName(child).localname}> here")
        found.append(child)
    return found


def _compile(schema: etree._Element) -> tuple[bytes, bytes, list[tuple[int, str, str]]]:
    """(stylesheet for one message, stylesheet for a batch, [(pattern, rule id, text)] by assert number)."""
    namespaces = {}
    for child in _children(schema, {"title", "ns", "pattern", "p"}):
        if child.tag == _sch("ns"):
            namespaces[child.get("prefix")] = child.get("uri")
    x = f"{{{_XSL}}}"
    sheet = etree.Element(x + "stylesheet", nsmap={"xsl": _XSL, **namespaces}, version="3.0")
    etree.SubElement(sheet, x + "mode", name="r", **{"on-no-match": "deep-skip"})
    # deep-skip still walks into a document node's children: end the chain at the document node instead.
    etree.SubElement(sheet, x + "template", match="document-node()", mode="r", priority="-1")
    checks: list[tuple[int, str, str]] = []
    ordered = [(p, r) for p, pattern in enumerate(schema.iter(_sch("pattern")))
               for r in _pattern_rules(pattern)]
    for order, (pattern, rule) in enumerate(ordered):
        template = etree.SubElement(sheet, x + "template", match=rule.get("context"), mode="r",
                                    priority=str(len(ordered) - order))
        etree.SubElement(template, x + "param", name="done", tunnel="yes", select="()")
        choose = etree.SubElement(template, x + "choose")
        # Only the first rule of a pattern that matches a node fires on it (ISO Schematron 6.4).
        etree.SubElement(etree.SubElement(choose, x + "when", test=f"$done = {pattern}"), x + "next-match")
        otherwise = etree.SubElement(choose, x + "otherwise")
        for test in _children(rule, {"assert", "report", "p"}):
            if test.tag == _sch("p"):
                continue
            if len(test) or not test.get("test"):
                raise _refuse(test, "an assert or report without a test, or with markup in its text,")
            condition = f"not({test.get('test')})" if test.tag == _sch("assert") else f"({test.get('test')})"
            where = "if (self::*) then count(ancestor::*) + count(preceding::*) else -1"
            etree.SubElement(etree.SubElement(otherwise, x + "if", test=condition), x + "sequence",
                             select=f"'{len(checks)}:' || ({where})")
            checks.append((pattern, test.get("id") or "NX-UNNAMED", " ".join((test.text or "").split())))
        etree.SubElement(etree.SubElement(otherwise, x + "next-match"), x + "with-param",
                         name="done", select=f"($done, {pattern})", tunnel="yes")
    single = _entry(sheet, "/", ".")
    batch = _entry(sheet, f"/{_BATCH}/*", "$message")
    return single, batch, checks


def _pattern_rules(pattern: etree._Element) -> list[etree._Element]:
    if pattern.get("abstract") or pattern.get("is-a"):
        raise _refuse(pattern, "an abstract pattern")
    rules = [r for r in _children(pattern, {"title", "rule", "p"}) if r.tag == _sch("rule")]
    for rule in rules:
        if rule.get("abstract") or not rule.get("context"):
            raise _refuse(rule, "an abstract rule or a rule without a context")
    return rules


def _entry(sheet: etree._Element, each: str, document: str) -> bytes:
    """The stylesheet with its entry template: one result string per message of ``each`` that fails."""
    x = f"{{{_XSL}}}"
    sheet = etree.fromstring(etree.tostring(sheet))
    loop = etree.SubElement(etree.SubElement(sheet, x + "template", match="/"), x + "for-each", select=each)
    if document == "$message":
        # A copy as its own document: the rules see each message exactly as they would see it alone.
        holder = etree.SubElement(loop, x + "variable", name="message", **{"as": "document-node()"})
        etree.SubElement(etree.SubElement(holder, x + "document"), x + "copy-of", select=".")
    found = etree.SubElement(loop, x + "variable", name="found",
                             **{"as": "Q{http://www.w3.org/2001/XMLSchema}string*"})
    # Every node an ISO Schematron pattern visits: the document, elements, comments, processing instructions.
    etree.SubElement(found, x + "apply-templates", mode="r",
                     select=f"{document}/descendant-or-self::node()[not(self::text())]")
    test = etree.SubElement(loop, x + "if", test="exists($found)")
    etree.SubElement(test, x + "sequence", select="string-join((string(position()), $found), ' ')")
    return etree.tostring(sheet)


# --- the engine ----------------------------------------------------------------------------------------

class _Engine:
    """A Saxon processor and the compiled rules, made on first use; one transformation at a time."""

    def __init__(self) -> None:
        from saxonche import PySaxonProcessor

        single, batch, self.checks = _compile(safexml.parse_trusted_file(SCHEMATRON).getroot())
        self.processor = PySaxonProcessor(license=False)
        compiler = self.processor.new_xslt30_processor()
        self.single = compiler.compile_stylesheet(stylesheet_text=single.decode("utf-8"))
        self.batch = compiler.compile_stylesheet(stylesheet_text=batch.decode("utf-8"))
        for executable in (self.single, self.batch):
            executable.set_result_as_raw_value(True)  # the strings themselves, no result tree to serialize
        self.builder = self.processor.new_document_builder()  # cheaper per document than processor.parse_xml
        self.lock = threading.Lock()

    def run(self, text: str, batch: bool) -> list[str]:
        """One string per failing message: ``position check:node check:node ...``."""
        with self.lock:
            document = self.builder.parse_xml(xml_text=text)
            result = (self.batch if batch else self.single).transform_to_value(xdm_node=document)
            return [] if result is None or result.size == 0 else [str(item) for item in result]


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
    engine = _get_engine()
    # Serialize the element, not its tree: no DOCTYPE or processing instruction reaches Saxon (nor the text
    # after the element, when it sits inside a larger tree).
    lines = engine.run(etree.tostring(root, encoding="unicode", with_tail=False), batch=False)
    return _failures(engine, root, lines[0]) if lines else []


def check_many(roots: Sequence[etree._Element]) -> list[list[RuleFailure]]:
    """:func:`check` for each of ``roots`` in one Saxon call: a list of failures per message, in order.

    Each message is checked as its own document (a rule sees nothing of the others), so the result is the
    same as calling :func:`check` on each; only the fixed cost of a Saxon call is shared.
    """
    if not roots:
        return []
    engine = _get_engine()
    text = (f"<{_BATCH}>" + "".join(etree.tostring(root, encoding="unicode", with_tail=False) for root in roots)
            + f"</{_BATCH}>")
    results: list[list[RuleFailure]] = [[] for _ in roots]
    for line in engine.run(text, batch=True):
        position = int(line.split(" ", 1)[0])
        results[position - 1] = _failures(engine, roots[position - 1], line)
    return results


def _failures(engine: _Engine, root: etree._Element, line: str) -> list[RuleFailure]:
    """The failures one result string lists, in the order of the rules in the schema."""
    elements: list[etree._Element] | None = None
    found = []
    for item in line.split(" ")[1:]:
        number, _, position = item.partition(":")
        found.append((engine.checks[int(number)][0], int(position), int(number)))
    failures = []
    # The stylesheet walks the document once, rules inside each node; the ISO skeleton's SVRL lists patterns
    # first, each pattern's failures in document order: sort into that order.
    for _, position, number in sorted(found):
        _, rule, message = engine.checks[number]
        element = None
        if position >= 0:
            elements = elements if elements is not None else list(root.iter(etree.Element))
            element = elements[position] if position < len(elements) else None
        failures.append(RuleFailure(rule, element, message))
    return failures
