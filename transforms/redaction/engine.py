"""The redaction step: a pure function from a built message and a rule to what may leave.

Default-deny: an element stays only if its path is on the rule's allow-list, lies under an allowed path,
or is an ancestor of one (a container kept for structure; emptied containers are removed). Comments,
processing instructions and attributes outside the ``structures`` namespace never survive. Part 2
categories are removed unless a valid consent was found upstream (``part2_consent``), whatever the
allow-list says. The input tree is never modified.
"""
from __future__ import annotations

import copy
import hashlib
import hmac
from dataclasses import dataclass
from functools import lru_cache

from lxml import etree

from niem_iepd import ns
from transforms.redaction.categories import PART2_CATEGORIES, category_of
from transforms.redaction.profile import Rule, Transform

MASK_TEXT = "WITHHELD"

#: Three-digit ZIP areas with 20,000 people or fewer (HHS de-identification guidance, 2000 census):
#: Safe Harbor 164.514(b)(2)(i)(B) requires "000" for these.
SPARSE_ZIP3 = frozenset({
    "036", "059", "063", "102", "203", "556", "692", "790", "821", "823", "830", "831", "878", "879",
    "884", "890", "893",
})

_PREFIX_OF = {uri: prefix for prefix, uri in ns.PREFIXES.items()}
_TRANSFORM_NOTE = {
    Transform.MASK: "masked",
    Transform.BIRTH_YEAR: "year only",
    Transform.ZIP3: "3-digit ZIP",
    Transform.TOKEN: "keyed token",
}


@dataclass(frozen=True, slots=True)
class Redaction:
    """What is left to send, and what the ledger must say about it (categories, never values)."""

    root: etree._Element
    categories: tuple[str, ...]
    removed: tuple[str, ...]  # element paths removed, for the audit of a profile (no values)
    part2_disclosed: bool  # Part 2 categories remain: the 42 CFR 2.32 notice must go with the message


def element_path(element: etree._Element, root: etree._Element) -> str:
    """The prefixed path of ``element`` below ``root`` (``j:Booking/nc:ActivityDate``); ``?`` for unknown."""
    steps = []
    while element is not None and element is not root:
        steps.append(_step(element))
        element = element.getparent()
    return "/".join(reversed(steps))


def _step(element: etree._Element) -> str:
    tag = element.tag
    if not isinstance(tag, str):
        return "?"
    step = _STEPS.get(tag)
    if step is None:  # Clark notation -> prefixed name, once per distinct tag
        name = etree.QName(tag)
        step = _STEPS[tag] = f"{_PREFIX_OF.get(name.namespace, '?')}:{name.localname}"
    return step


_STEPS: dict[str, str] = {}


def keyed_token(key: bytes, value: str) -> str:
    """A stable pseudonym for ``value`` under one agreement's secret: HMAC-SHA256, hex, 32 characters."""
    return "TK-" + hmac.new(key, value.encode("utf-8"), hashlib.sha256).hexdigest()[:32]


def generalize_zip(value: str) -> str:
    """ZIP code -> its first three digits, or ``000`` for sparsely populated areas (Safe Harbor)."""
    digits = "".join(ch for ch in value if ch.isdigit())[:3]
    if len(digits) < 3 or digits in SPARSE_ZIP3:
        return "000"
    return digits


def redact(
    root: etree._Element,
    rule: Rule,
    *,
    token_key: bytes,
    part2_record: bool = False,
    part2_consent: bool = False,
) -> Redaction:
    """Return a redacted copy of ``root`` under ``rule``.

    ``part2_record``: the message was built from 42 CFR Part 2 data (a Part 2 program's record, or labelled
    42CFRPart2). ``part2_consent``: a valid consent naming this recipient was found. Without it, every
    element of a Part 2 category is removed even when the allow-list names it.
    """
    out = copy.deepcopy(root)
    allow = frozenset(rule.allow)
    transforms = dict(rule.transforms)
    block_part2 = part2_record and not part2_consent
    removed: list[str] = []
    notes: dict[str, str] = {}
    _strip_attributes(out)
    _walk(out, "", allow, transforms, block_part2, token_key, removed, notes)
    categories, part2 = _categories(out, notes)
    return Redaction(out, categories, tuple(removed), part2_record and part2)


@lru_cache(maxsize=8192)  # (path, allow-list) pairs repeat for every message of a type and profile
def _permitted(path: str, allow: frozenset[str]) -> tuple[bool, bool]:
    """(kept, whole subtree allowed)."""
    if path in allow or any(path.startswith(a + "/") for a in allow):
        return True, True
    return any(a.startswith(path + "/") for a in allow), False


def _walk(element, path, allow, transforms, block_part2, key, removed, notes) -> None:
    for child in list(element):
        if not isinstance(child.tag, str):  # comments and processing instructions carry no permission
            element.remove(child)
            continue
        child_path = f"{path}/{_step(child)}" if path else _step(child)
        kept, whole = _permitted(child_path, allow)
        transform = transforms.get(child_path)
        if (not kept or transform is Transform.DROP
                or (block_part2 and category_of(child_path) in PART2_CATEGORIES)):
            _remove(child)
            removed.append(child_path)
            continue
        if transform is not None:
            _apply(child, transform, key)
            notes[child_path] = _TRANSFORM_NOTE[transform]
        _walk(child, child_path, allow, transforms, block_part2, key, removed, notes)
        if not whole:
            child.text = None  # a container kept for structure carries no text of its own
            if len(child) == 0:
                _remove(child)


def _remove(element: etree._Element) -> None:
    parent = element.getparent()
    # keep the neighbours' whitespace, drop the element and whatever text followed it
    parent.remove(element)


def _strip_attributes(root: etree._Element) -> None:
    for element in root.iter():
        if not isinstance(element.tag, str):
            continue
        for name in list(element.attrib):
            if etree.QName(name).namespace != ns.STRUCTURES:
                del element.attrib[name]


def _apply(element: etree._Element, transform: Transform, key: bytes) -> None:
    leaves = [e for e in element.iter() if isinstance(e.tag, str) and len(e) == 0]
    if transform is Transform.MASK:
        for leaf in leaves:
            leaf.text = MASK_TEXT
    elif transform is Transform.ZIP3:
        for leaf in leaves:
            leaf.text = generalize_zip(leaf.text or "")
    elif transform is Transform.TOKEN:
        ids = [leaf for leaf in leaves if leaf.tag == ns.q("nc", "IdentificationID")] or leaves
        for leaf in ids:
            leaf.text = keyed_token(key, leaf.text or "")
    elif transform is Transform.BIRTH_YEAR:
        for leaf in leaves:
            if leaf.tag in (ns.q("nc", "Date"), ns.q("nc", "DateTime")):
                year = etree.Element(ns.q("nc", "Year"))
                year.text = (leaf.text or "")[:4]
                year.tail = leaf.tail
                leaf.getparent().replace(leaf, year)
            else:
                leaf.text = (leaf.text or "")[:4]


def _categories(root: etree._Element, notes: dict[str, str]) -> tuple[tuple[str, ...], bool]:
    found: set[str] = set()
    part2 = False
    for path in _leaf_paths(root, ""):
        category = category_of(path)
        if category == "":
            continue
        category = category or "other"
        part2 = part2 or category in PART2_CATEGORIES
        note = next((n for p, n in notes.items() if path == p or path.startswith(p + "/")), "")
        found.add(f"{category} ({note})" if note else category)
    return tuple(sorted(found)), part2


def _leaf_paths(element: etree._Element, path: str):
    """The paths of the element leaves below ``element`` (what :func:`element_path` gives, built on the way down)."""
    for child in element:
        if not isinstance(child.tag, str):
            continue
        child_path = f"{path}/{_step(child)}" if path else _step(child)
        if len(child):
            yield from _leaf_paths(child, child_path)
        else:
            yield child_path
