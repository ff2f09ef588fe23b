"""Validate messages against the project's IEPD schemas and rules: ``validate``, ``is_valid``, ``iter_errors``.

The message type is read from the root element's qualified name (``ns.MESSAGE_ROOTS``); its exchange
schema, ``niem_iepd/schemas/exchange/<message-type>.xsd``, is compiled once per process with lxml and
kept. Schema documents are loaded through :mod:`niem_iepd.safexml` and a resolver that opens files
inside ``niem_iepd/schemas`` only, so a schemaLocation can never reach the network or the rest of the disk.

Issues carry the element's XPath (with the registry's prefixes, whatever prefixes the message used), a
line number and a message. libxml2 quotes offending values in its messages (``'1987-13-45' is not a
valid value``); every quoted value is replaced by ``[value]`` before it reaches a :class:`SchemaIssue`,
so no PHI ends up in an exception, a log line or the quarantine table.

libxml2 does not check ID/IDREF integrity in XSD validation, so ``structures:ref`` and ``nc:metadataRef``
values that match no ``structures:id`` in the message are reported here as issues too (rule ``NX-REF-1``).
Then the IEPD's Schematron business rules run (:mod:`niem_iepd.rules`); every issue names its rule:
``XSD`` for the schema, ``NX-REF-1`` for references, the Schematron id (``NX-DATE-1``...) otherwise.
:func:`validate_many` validates a batch with the same result per document, the business rules of the whole
batch in one Saxon call (cheaper per message than one call each).
"""
from __future__ import annotations

import re
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from lxml import etree

from niem_iepd import ns, rules, safexml

__all__ = ["SchemaIssue", "iter_errors", "validate", "validate_many", "is_valid", "schema_path", "message_type_of",
           "SCHEMAS_DIR"]

SCHEMAS_DIR = (Path(__file__).parent / "schemas").resolve()

#: Namespace -> prefix used in issue paths and messages: the registry, plus the W3C namespaces.
_PREFIX_OF: dict[str, str] = {
    **{uri: prefix for prefix, uri in ns.PREFIXES.items()},
    ns.XS: "xs",
    ns.XSI: "xsi",
    ns.DS: "ds",
}
_ROOT_TYPES: dict[str, str] = {root.text: message_type for message_type, root in ns.MESSAGE_ROOTS.items()}

_STRUCTURES_ID = f"{{{ns.STRUCTURES}}}id"
_STRUCTURES_REF = f"{{{ns.STRUCTURES}}}ref"
_METADATA_REF = f"{{{ns.NC}}}metadataRef"  # NIEM 6: xs:IDREFS, a space-separated list


@dataclass(frozen=True, slots=True)
class SchemaIssue:
    """One reason a message is invalid. Never holds a value from the message.

    ``path`` is the XPath of the offending element (``/bn:BookingNotification/j:Booking/nc:ActivityDate``),
    ``line`` its source line when the document was parsed (None for a tree built in memory), ``message``
    what is wrong, with any quoted value replaced by ``[value]``, ``rule`` the rule broken (``XSD``,
    ``NX-REF-1`` or a Schematron rule id; empty for an issue made elsewhere).
    """

    path: str
    line: int | None
    message: str
    rule: str = ""

    def __str__(self) -> str:
        where = f" (line {self.line})" if self.line else ""
        rule = f" [{self.rule}]" if self.rule else ""
        return f"{self.path}{where}:{rule} {self.message}"


# --- schemas -----------------------------------------------------------------------------------------

def _file_name(message_type: str) -> str:
    """``BookingNotification`` -> ``booking-notification``."""
    return re.sub(r"(?<!^)(?=[A-Z])", "-", message_type).lower()


def schema_path(message_type: str) -> Path:
    """The exchange schema of ``message_type`` (for ``xmllint --schema``); ValueError if unknown."""
    if message_type not in ns.MESSAGE_ROOTS:
        known = ", ".join(sorted(ns.MESSAGE_ROOTS))
        raise ValueError(f"unknown message type {message_type!r}; known: {known}")
    return SCHEMAS_DIR / "exchange" / f"{_file_name(message_type)}.xsd"


class _SchemaDirResolver(etree.Resolver):
    """Open schema documents from ``SCHEMAS_DIR`` only, each vetted by safexml; refuse anything else."""

    def resolve(self, system_url, public_id, context):  # noqa: D102 (lxml's interface)
        path = _local_path(system_url)
        if path is None or not path.is_relative_to(SCHEMAS_DIR) or not path.is_file():
            raise safexml.UnsafeXMLError("schema reference outside niem_iepd/schemas refused")
        data = path.read_bytes()
        safexml.parse(data)  # the same refusals as for received XML: no DTD, no entities
        return self.resolve_string(data, context, base_url=str(path))


def _local_path(system_url: str | None) -> Path | None:
    """A plain path or file: URL as an absolute path; None for anything with another scheme."""
    if not system_url:
        return None
    url = system_url
    if url.startswith("file://"):
        url = url[len("file://"):]
    elif re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:", url):
        return None  # http:, https:, ftp:, urn: ... never followed
    if "\\" in url or "?" in url or "#" in url:
        return None
    # libxml2 percent-escapes some characters (a space in the install path): decode them. Decoding
    # cannot open a way out: the caller checks the *resolved* path against SCHEMAS_DIR.
    raw = re.sub(rb"%([0-9A-Fa-f]{2})", lambda m: bytes([int(m.group(1), 16)]), url.encode("utf-8"))
    try:
        return Path(raw.decode("utf-8")).resolve()
    except (UnicodeDecodeError, ValueError, OSError):
        return None


_cache_lock = threading.Lock()
_schemas: dict[str, tuple[etree.XMLSchema, threading.Lock]] = {}


def _schema(message_type: str) -> tuple[etree.XMLSchema, threading.Lock]:
    """The compiled schema of ``message_type`` and the lock that guards its error log (one per process)."""
    entry = _schemas.get(message_type)
    if entry is None:
        with _cache_lock:
            entry = _schemas.get(message_type)
            if entry is None:
                document = safexml.parse_trusted_file(schema_path(message_type), resolver=_SchemaDirResolver())
                entry = (etree.XMLSchema(document), threading.Lock())
                _schemas[message_type] = entry
    return entry


# --- paths and messages ------------------------------------------------------------------------------

def _step(element: etree._Element) -> str:
    qname = etree.QName(element)
    if qname.namespace is None:
        name = qname.localname
    elif qname.namespace in _PREFIX_OF:
        name = f"{_PREFIX_OF[qname.namespace]}:{qname.localname}"
    else:
        name = f"Q{{{qname.namespace}}}{qname.localname}"  # XPath 3.1 EQName for foreign namespaces
    parent = element.getparent()
    if parent is None:
        return name
    same = [sibling for sibling in parent if sibling.tag == element.tag]
    return f"{name}[{same.index(element) + 1}]" if len(same) > 1 else name


def _element_path(element: etree._Element) -> str:
    """XPath of ``element`` with the registry's prefixes, positions only where siblings share a name."""
    steps = [_step(node) for node in reversed([element, *element.iterancestors()])]
    return "/" + "/".join(steps)


def _document_prefixes(root: etree._Element) -> dict[str, str] | None:
    """Every prefix the document binds, for evaluating libxml2's paths; None if one is bound twice."""
    prefixes: dict[str, str] = {}
    for element in root.iter(etree.Element):
        for prefix, uri in element.nsmap.items():
            if prefix is None:
                continue
            if prefixes.setdefault(prefix, uri) != uri:
                return None
    return prefixes


def _find(root: etree._Element, libxml_path: str, prefixes: dict[str, str] | None) -> etree._Element | None:
    """The element libxml2's path (document prefixes, ``*`` for default-namespace steps) points at."""
    if prefixes is None or not libxml_path.startswith("/"):
        return None
    try:
        found = root.getroottree().xpath(libxml_path, namespaces=prefixes)
    except etree.XPathError:
        return None
    return found[0] if found and isinstance(found[0], etree._Element) else None


_CLARK = re.compile(r"\{([^{}'\s]*)\}([A-Za-z_][\w.\-]*|\*)")
_HEAD = re.compile(r"^Element '(?P<element>[^']*)'(?:, attribute '(?P<attribute>[^']*)')?: (?P<detail>.*)$", re.S)
_LENGTH = re.compile(r"has a length of '\d+'")
# A quoted run as libxml2 writes one: the quotes stand at word boundaries. A value such as a'Smith'b has
# quotes inside words, so it never matches, its quotes are left over, and the whole text is withheld.
_QUOTED = re.compile(r"(?<![^\s(\[{,])'([^'\n]*)'(?=[\s.,:;)\]}]|$)")
_KEEP_QUOTED = {"element-only", "empty", "mixed", "nilled", "simple", "xsi:type", "xsi:nil"}
# Messages that quote an instance value, with the value's position pinned between fixed text. The value
# group is greedy and the tail is anchored at the end, so quotes inside the value cannot shift the split.
_VALUE_TEMPLATES = (
    re.compile(r"^()'(?s:.*)'( is not a valid value of the (?:local )?(?:atomic|list|union) type '[^']*'\.)$"),
    re.compile(r"^(\[facet '\w+'\] The value )'(?s:.*)'( is not an element of the set \{[^{}]*\}\.)$"),
    re.compile(r"^(\[facet '\w+'\] The value )'(?s:.*)'( is not accepted by the pattern '[^']*'\.)$"),
    re.compile(r"^((?:\[facet '\w+'\] )?The value )'(?s:.*)'( (?:has|is|does|must)\b[^']*(?:'[^'\n]*'[^']*)*)$"),
    re.compile(r"^(The QName value )'(?s:.*)'( of the xsi:type attribute does not resolve to a type definition\.)$"),
)


def _display_name(match: re.Match) -> str:
    prefix = _PREFIX_OF.get(match.group(1))
    return f"{prefix}:{match.group(2)}" if prefix else match.group(0)


def _scrub_quoted(text: str) -> str:
    """Replace every quoted run that is not a schema name with ``[value]``; withhold text with stray quotes."""
    def keep_or_hide(match: re.Match) -> str:
        inner = match.group(1)
        if inner in _KEEP_QUOTED or re.fullmatch(r"xs:[A-Za-z]+", inner):
            return match.group(0)
        clark = _CLARK.fullmatch(inner)
        if clark and clark.group(1) in _PREFIX_OF:
            return match.group(0)
        return "[value]"

    scrubbed = _QUOTED.sub(keep_or_hide, text)
    return scrubbed if "'" not in _QUOTED.sub("", scrubbed) else "invalid content (details withheld)"


def _sanitize(message: str) -> str:
    """libxml2's message without any instance value, with Clark names shortened to registry prefixes."""
    text = message.strip()
    attribute = None
    head = _HEAD.match(text)
    if head:
        attribute, text = head.group("attribute"), head.group("detail")
    for template in _VALUE_TEMPLATES:
        matched = template.match(text)
        if matched:
            # The tail is schema text (type names, enumerations, limits) except the value's length.
            text = f"{matched.group(1)}[value]{_LENGTH.sub('has a length of [value]', matched.group(2))}"
            break
    else:
        text = _scrub_quoted(text)
    if attribute is not None:
        text = f"attribute '{attribute}': {text}"
    return _CLARK.sub(_display_name, text)


def _withhold_leaks(message: str, element: etree._Element | None) -> str:
    """Second line of defence: withhold the message if a value of the offending element still shows.

    Checks the element's text and attribute values, whole and split at quotes (a value with quotes in
    it is the one case that could fool the templates above).
    """
    if element is None:
        return message
    visible = message.replace("[value]", "")
    values = [element.text or "", *element.attrib.values()]
    for value in values:
        collapsed = " ".join(value.split())
        for fragment in {collapsed, *collapsed.split("'")}:
            if len(fragment.strip()) >= 3 and fragment.strip() in visible:
                return "invalid content (details withheld)"
    return message


# --- validation --------------------------------------------------------------------------------------

def _root_of(doc: etree._Element | etree._ElementTree) -> etree._Element | None:
    if isinstance(doc, etree._ElementTree):
        return doc.getroot()
    if isinstance(doc, etree._Element):
        return doc
    raise TypeError("validator takes an lxml element or element tree (parse bytes with niem_iepd.safexml)")


def message_type_of(doc: etree._Element | etree._ElementTree) -> str | None:
    """The message type named by the document's root element, or None if it is not one of ours."""
    root = _root_of(doc)
    return None if root is None else _ROOT_TYPES.get(root.tag if isinstance(root.tag, str) else "")


# Whether anything in the message refers to an id: one compiled XPath (~1.5 us) instead of a Python walk over
# every element (~25 us of a booking notification's 36 us XSD check). Most messages refer to nothing. The
# namespaces are compared as strings: registering prefixes costs an XPath call ~10 us more.
_REFERS = etree.XPath(
    f"boolean(descendant-or-self::*/@*[(local-name() = 'ref' and namespace-uri() = '{ns.STRUCTURES}') or "
    f"(local-name() = 'metadataRef' and namespace-uri() = '{ns.NC}')])")


def _reference_issues(root: etree._Element) -> Iterator[SchemaIssue]:
    """``structures:ref`` / ``nc:metadataRef`` values that match no ``structures:id`` (libxml2 does not check)."""
    if not _REFERS(root):
        return
    ids = {element.get(_STRUCTURES_ID) for element in root.iter(etree.Element)} - {None}
    for element in root.iter(etree.Element):
        ref = element.get(_STRUCTURES_REF)
        if ref is not None and ref not in ids:
            yield SchemaIssue(_element_path(element), element.sourceline,
                              "attribute 'structures:ref': [value] matches no structures:id in the message",
                              "NX-REF-1")
        refs = element.get(_METADATA_REF)
        if refs is not None and any(ref not in ids for ref in refs.split()):
            yield SchemaIssue(_element_path(element), element.sourceline,
                              "attribute 'nc:metadataRef': [value] matches no structures:id in the message",
                              "NX-REF-1")


def iter_errors(doc: etree._Element | etree._ElementTree, *, business_rules: bool = True) -> Iterator[SchemaIssue]:
    """Yield every reason ``doc`` is not a valid message of its type; nothing if it is valid.

    XSD issues come first, then reference issues, then (unless ``business_rules`` is False) the
    Schematron rules, which run even on a schema-invalid message so one pass reports everything.
    """
    root, refused = _message_root(doc)
    if refused is not None:
        yield refused
        return
    yield from _schema_issues(root)
    if business_rules:
        yield from _rule_issues(root, rules.check(root))


def _message_root(doc: etree._Element | etree._ElementTree) -> tuple[etree._Element, SchemaIssue | None]:
    """The root element, and the issue that stops validation before the schema if it is not one of ours."""
    root = _root_of(doc)
    if root is None or not isinstance(root.tag, str):
        return root, SchemaIssue("/", None, "document has no root element")
    if message_type_of(root) is None:
        expected = ", ".join(f"{_PREFIX_OF[r.namespace]}:{r.localname}" for r in ns.MESSAGE_ROOTS.values())
        return root, SchemaIssue(_element_path(root), root.sourceline,
                                 f"root element is not a known message type; expected one of: {expected}")
    return root, None


def _schema_issues(root: etree._Element) -> Iterator[SchemaIssue]:
    """The XSD issues of a message of ours, then its reference issues."""
    schema, lock = _schema(message_type_of(root))
    with lock:  # the error log lives on the schema object: one validation at a time
        valid = schema.validate(root)
        entries = [] if valid else [(entry.path, entry.line, entry.message) for entry in schema.error_log]
    prefixes = _document_prefixes(root) if entries else None
    for libxml_path, line, message in entries:
        element = _find(root, libxml_path or "", prefixes)
        path = _element_path(element) if element is not None else _CLARK.sub(_display_name, libxml_path or "/")
        if not line and element is not None:
            line = element.sourceline
        yield SchemaIssue(path, line or None, _withhold_leaks(_sanitize(message), element), "XSD")
    yield from _reference_issues(root)


def _rule_issues(root: etree._Element, failures: list[rules.RuleFailure]) -> Iterator[SchemaIssue]:
    """Business-rule failures as issues at the element each names (the root if it cannot be found)."""
    for failure in failures:
        element = failure.element
        path = _element_path(element) if element is not None else _element_path(root)
        yield SchemaIssue(path, element.sourceline if element is not None else None, failure.message,
                          failure.rule)


def validate_many(docs: Sequence[etree._Element | etree._ElementTree], *,
                  business_rules: bool = True) -> list[list[SchemaIssue]]:
    """:func:`validate` for each of ``docs`` (a list of issues per document, in order), with the business
    rules of all of them run in one Saxon call (:func:`niem_iepd.rules.check_many`).

    Each document is still validated on its own: the result equals ``[validate(d) for d in docs]``; what a
    batch shares is the fixed cost of calling Saxon.
    """
    results: list[list[SchemaIssue]] = []
    checked: list[tuple[int, etree._Element]] = []
    for doc in docs:
        root, refused = _message_root(doc)
        if refused is not None:
            results.append([refused])
            continue
        results.append(list(_schema_issues(root)))
        checked.append((len(results) - 1, root))
    if business_rules and checked:
        for (at, root), failures in zip(checked, rules.check_many([root for _, root in checked])):
            results[at].extend(_rule_issues(root, failures))
    return results


def validate(doc: etree._Element | etree._ElementTree, *, business_rules: bool = True) -> list[SchemaIssue]:
    """Every issue of ``doc`` as a list (empty when valid); see :func:`iter_errors`."""
    return list(iter_errors(doc, business_rules=business_rules))


def is_valid(doc: etree._Element | etree._ElementTree, *, business_rules: bool = True) -> bool:
    """True if ``doc`` is a valid message of the type its root element names (and meets its rules)."""
    return next(iter_errors(doc, business_rules=business_rules), None) is None
