"""Messages validated per second: the IEPD validator (XSD + reference check + Schematron) vs a plain lxml loop.

Run: ``.venv/bin/python -m bench.iepd_validation [--seconds 2] [--cpu]`` (``--cpu``: this process's CPU time
instead of wall time, steadier when the machine is busy). Messages are the IEPD's valid samples
(every message type), parsed once. Each side validates the same messages in turn, in short alternating
rounds so drift hits all sides alike; each side's best round counts.

- floor: ``lxml.etree.XMLSchema(...).validate(tree)`` per message, one schema compiled per message type
  beforehand. This is the least any XSD check costs.
- xsd: ``niem_iepd.validator.validate(tree, business_rules=False)``: the same libxml2 validation behind a
  lock, plus the ``structures:ref`` / ``nc:metadataRef`` check.
- full: ``niem_iepd.validator.validate(tree)``: the above plus the Schematron rules (serialize, Saxon parse,
  one-pass XSLT 3.0 transformation returning only failures).
- full, validate_many: ``niem_iepd.validator.validate_many(trees)``: the same, the rules of all the messages in
  one Saxon call.

The Schematron rules alone, three ways (the before/after of issue 10, measured in the same run):

- rules, ISO skeleton + SVRL: what ``niem_iepd.rules.check`` did before: the ISO skeleton's stylesheet
  (``rules.compiled_stylesheet()``), the message serialized and parsed by Saxon, the SVRL report serialized,
  parsed by lxml and its locations evaluated.
- rules, check: ``niem_iepd.rules.check(root)`` per message (one pass over the document, failures only).
- rules, check_many: ``niem_iepd.rules.check_many(roots)`` over all the messages in one Saxon call.
"""
from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

from lxml import etree

from niem_iepd import rules, safexml, validator

SAMPLES = Path(validator.__file__).parent / "samples"


def _messages() -> list[etree._ElementTree]:
    return [safexml.parse(path.read_bytes()) for path in sorted(SAMPLES.glob("*.xml"))]


def _floor(messages: list[etree._ElementTree]) -> Callable[[], None]:
    schemas = {}
    for tree in messages:
        message_type = validator.message_type_of(tree)
        if message_type not in schemas:
            schemas[message_type] = etree.XMLSchema(etree.parse(str(validator.schema_path(message_type))))
    pairs = [(schemas[validator.message_type_of(tree)], tree) for tree in messages]

    def run() -> None:
        for schema, tree in pairs:
            if not schema.validate(tree):
                raise AssertionError("a sample is invalid")
    return run


def _ours(messages: list[etree._ElementTree], business_rules: bool) -> Callable[[], None]:
    def run() -> None:
        for tree in messages:
            if validator.validate(tree, business_rules=business_rules):
                raise AssertionError("a sample is invalid")
    return run


def _many(messages: list[etree._ElementTree]) -> Callable[[], None]:
    def run() -> None:
        if any(validator.validate_many(messages)):
            raise AssertionError("a sample is invalid")
    return run


def _skeleton(messages: list[etree._ElementTree]) -> Callable[[], None]:
    """The rules as they ran before: ISO skeleton XSLT, SVRL serialized and parsed back, locations found."""
    from saxonche import PySaxonProcessor

    processor = PySaxonProcessor(license=False)
    executable = processor.new_xslt30_processor().compile_stylesheet(
        stylesheet_text=rules.compiled_stylesheet().decode("utf-8"))
    builder = processor.new_document_builder()
    svrl = "{http://purl.oclc.org/dsdl/svrl}"
    roots = [tree.getroot() for tree in messages]

    def run() -> None:
        for root in roots:
            document = builder.parse_xml(xml_text=etree.tostring(root, encoding="UTF-8").decode("utf-8"))
            report = safexml.parse(executable.transform_to_string(xdm_node=document).encode("utf-8"))
            for node in report.getroot().iter(f"{svrl}failed-assert", f"{svrl}successful-report"):
                etree.ElementTree(root).xpath(node.get("location"))
                raise AssertionError("a sample breaks a rule")
    return run


def _rules(messages: list[etree._ElementTree], batch: bool) -> Callable[[], None]:
    roots = [tree.getroot() for tree in messages]

    def run() -> None:
        found = rules.check_many(roots) if batch else [rules.check(root) for root in roots]
        if any(found):
            raise AssertionError("a sample breaks a rule")
    return run


def main() -> None:
    """Measure and print messages per second and each side's time relative to the floor."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="time per side (split into rounds)")
    parser.add_argument("--cpu", action="store_true", help="count this process's CPU time instead of wall time "
                                                           "(steadier on a busy machine)")
    arguments = parser.parse_args()
    clock = time.process_time if arguments.cpu else time.perf_counter
    messages = _messages()
    sides = {"floor (lxml XMLSchema loop)": _floor(messages), "xsd (validator, no rules)": _ours(messages, False),
             "full (validator, XSD + Schematron)": _ours(messages, True),
             "full, validate_many (one Saxon call)": _many(messages),
             "rules, ISO skeleton + SVRL (before)": _skeleton(messages),
             "rules, check (one pass)": _rules(messages, False),
             "rules, check_many (one Saxon call)": _rules(messages, True)}
    for run in sides.values():  # warm up: compile schemas, start Saxon, compile the rules
        run()
    best = {name: float("inf") for name in sides}
    rounds = 10
    deadline = time.perf_counter() + arguments.seconds * len(sides)
    while time.perf_counter() < deadline:
        for name, run in sides.items():
            started = clock()
            for _ in range(rounds):
                run()
            best[name] = min(best[name], (clock() - started) / (rounds * len(messages)))
    floor = best["floor (lxml XMLSchema loop)"]
    print(f"{len(messages)} sample messages ({', '.join(sorted({validator.message_type_of(t) for t in messages}))}), "
          f"{'CPU' if arguments.cpu else 'wall'} time")
    for name, seconds in best.items():
        print(f"{name:38} {1 / seconds:10.0f} msg/s  {seconds * 1e6:9.1f} us/msg  x{seconds / floor:6.1f} floor")


if __name__ == "__main__":
    main()
