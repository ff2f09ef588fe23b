"""The redaction step: a pure function from a built message and a rule to what may leave.

Default-deny: an element stays only if its path is on the rule's allow-list, lies under an allowed path,
or is an ancestor of one (a container kept for structure; emptied containers are removed). Comments,
processing instructions and attributes outside the ``structures`` namespace never survive. Part 2
categories are removed unless a valid consent was found upstream (``part2_consent``), whatever the
allow-list says. The input tree is never modified.

Speed (issue #10): what a rule decides for an element depends only on the element's path, and messages of
one type share their paths, so each rule's decisions are kept as a tree of nodes by tag (:class:`_Plan`)
and each element costs a dict lookup. Below a wholly allowed element with no transform or Part 2 block
under it nothing can change, so the walk does not go there (unless the message holds comments or
processing instructions, which must be removed wherever they are); it only collects the ledger categories
of the leaves. ``tests/transforms/redaction_reference.py`` is the plain element-by-element walk the
property tests hold this to.
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
    return _step_of_tag(tag) if isinstance(tag, str) else "?"


def _step_of_tag(tag: str) -> str:
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
    in_place: bool = False,
) -> Redaction:
    """Return a redacted copy of ``root`` under ``rule``.

    ``part2_record``: the message was built from 42 CFR Part 2 data (a Part 2 program's record, or labelled
    42CFRPart2). ``part2_consent``: a valid consent naming this recipient was found. Without it, every
    element of a Part 2 category is removed even when the allow-list names it. ``in_place``: ``root`` itself
    is redacted and returned, no copy made (the caller gives its tree up; the pipeline's built message).
    """
    out = root if in_place else copy.deepcopy(root)
    block_part2 = part2_record and not part2_consent
    plan = _plan(rule.allow, rule.transforms, block_part2)
    _strip_attributes(out)
    # Skipping the walk below a wholly allowed element is only sound when there is nothing there to remove:
    # comments and processing instructions (rare: built messages have none) send us down every branch.
    skip = next(out.iter(etree.Comment, etree.ProcessingInstruction, etree.Entity), None) is None
    walk = _Walk(plan, skip, token_key)
    walk.children(out, plan.root)
    if walk.replaced:  # a transformed element replaced itself: work the categories out from the tree
        categories, part2 = _categories(out, walk.notes)
    else:
        categories = tuple(sorted({label for label, _ in walk.labels}))
        part2 = any(part2_leaf for _, part2_leaf in walk.labels)
    return Redaction(out, categories, tuple(walk.removed), part2_record and part2)


@lru_cache(maxsize=8192)  # (path, allow-list) pairs repeat for every message of a type and profile
def _permitted(path: str, allow: frozenset[str]) -> tuple[bool, bool]:
    """(kept, whole subtree allowed)."""
    if path in allow or any(path.startswith(a + "/") for a in allow):
        return True, True
    return any(a.startswith(path + "/") for a in allow), False


class _Node:
    """What a rule decides for every element at one path, and the decided paths one step below it.

    Messages of one type share their shapes, so a path is decided once per rule and then found by a dict
    lookup per element (by Clark tag) instead of a path string built and matched per element.
    """

    __slots__ = ("path", "remove", "whole", "transform", "descend", "label", "children")

    def __init__(self, path: str, remove: bool, whole: bool, transform: Transform | None, descend: bool,
                 label: tuple[str, bool] | None) -> None:
        self.path = path
        self.remove = remove  # not allowed, dropped, or Part 2 without consent
        self.whole = whole  # the element and everything under it are allowed
        self.transform = transform
        self.descend = descend  # something below may change: the walk must visit the children
        self.label = label  # (ledger category with its transform note, Part 2?) as a leaf; None: not personal
        self.children: dict[str, _Node] = {}


#: Decided paths kept per plan; past it, paths are decided per element (a hostile tree cannot grow memory).
_MAX_NODES = 1024


class _Plan:
    """One rule's decisions (allow-list, transforms, Part 2 blocking) as a tree of :class:`_Node` by tag."""

    __slots__ = ("allow", "transforms", "block_part2", "root", "size")

    def __init__(self, allow: tuple[str, ...], transforms: tuple[tuple[str, Transform], ...],
                 block_part2: bool) -> None:
        self.allow = frozenset(allow)
        self.transforms = dict(transforms)
        self.block_part2 = block_part2
        self.root = _Node("", False, False, None, True, None)
        self.size = 0

    def child(self, node: _Node, tag: str) -> _Node:
        """The decision for an element with ``tag`` under an element decided by ``node``."""
        found = node.children.get(tag)
        if found is None:
            step = _step_of_tag(tag)
            found = self._decide(f"{node.path}/{step}" if node.path else step)
            if self.size < _MAX_NODES:
                node.children[tag] = found
                self.size += 1
        return found

    def _decide(self, path: str) -> _Node:
        kept, whole = _permitted(path, self.allow)
        transform = self.transforms.get(path)
        remove = (not kept or transform is Transform.DROP
                  or (self.block_part2 and category_of(path) in PART2_CATEGORIES))
        below = path + "/"
        descend = not whole or self.block_part2 or any(p.startswith(below) for p in self.transforms)
        return _Node(path, remove, whole, transform, descend, self._label(path))

    def _label(self, path: str) -> tuple[str, bool] | None:
        # What the ledger says of a leaf at ``path``: its category, with the note of the outermost transform
        # applied at or above it (the first one the walk meets, as the notes are kept in walk order).
        category = category_of(path)
        if category == "":
            return None
        part2 = category in PART2_CATEGORIES
        category = category or "other"
        steps = path.split("/")
        for end in range(1, len(steps) + 1):
            transform = self.transforms.get("/".join(steps[:end]))
            if transform is not None and transform is not Transform.DROP:
                return f"{category} ({_TRANSFORM_NOTE[transform]})", part2
        return category, part2


@lru_cache(maxsize=32)  # one plan per (rule, Part 2 blocked?): a run uses a handful
def _plan(allow: tuple[str, ...], transforms: tuple[tuple[str, Transform], ...], block_part2: bool) -> _Plan:
    return _Plan(allow, transforms, block_part2)


class _Walk:
    """One redaction walk over the copy: removes, transforms, and collects what the ledger needs."""

    __slots__ = ("plan", "skip", "key", "removed", "notes", "labels", "replaced")

    def __init__(self, plan: _Plan, skip: bool, key: bytes) -> None:
        self.plan = plan
        self.skip = skip
        self.key = key
        self.removed: list[str] = []
        self.notes: dict[str, str] = {}
        self.labels: set[tuple[str, bool]] = set()
        self.replaced = False

    def children(self, element: etree._Element, node: _Node) -> None:
        """Redact the children of ``element``, decided by ``node``, in document order."""
        decided = node.children
        for child in list(element):
            tag = child.tag
            if not isinstance(tag, str):  # comments and processing instructions carry no permission
                element.remove(child)
                continue
            found = decided.get(tag) or self.plan.child(node, tag)
            if found.remove:
                _remove(child)
                self.removed.append(found.path)
                continue
            if found.transform is not None:
                _apply(child, found.transform, self.key)
                self.notes[found.path] = _TRANSFORM_NOTE[found.transform]
                if child.getparent() is None:  # a birth_year leaf swapped itself for nc:Year: note that path too
                    self.replaced = True
                    parent_path = found.path.rpartition("/")[0]
                    year_path = f"{parent_path}/{_YEAR_STEP}" if parent_path else _YEAR_STEP
                    self.notes[year_path] = _TRANSFORM_NOTE[found.transform]
            if self.skip and not found.descend:  # wholly allowed, nothing below to change
                if len(child):
                    self.leaves(child, found)
                elif found.label is not None:
                    self.labels.add(found.label)
                continue
            self.children(child, found)
            if not found.whole:
                child.text = None  # a container kept for structure carries no text of its own
                if len(child) == 0:
                    _remove(child)
            elif len(child) == 0 and found.label is not None:
                self.labels.add(found.label)

    def leaves(self, element: etree._Element, node: _Node) -> None:
        """Collect the labels of the element leaves below ``element`` (left as they are)."""
        for child in element:
            found = node.children.get(child.tag) or self.plan.child(node, child.tag)
            if len(child):
                self.leaves(child, found)
            elif found.label is not None:
                self.labels.add(found.label)


def _remove(element: etree._Element) -> None:
    parent = element.getparent()
    # keep the neighbours' whitespace, drop the element and whatever text followed it
    parent.remove(element)


def _strip_attributes(root: etree._Element) -> None:
    for value in _ATTRIBUTES(root):  # one XPath call finds them all; most messages have none
        name = value.attrname
        if not name.startswith(_STRUCTURES_PREFIX):
            del value.getparent().attrib[name]


_ATTRIBUTES = etree.XPath("descendant-or-self::*/@*")
_STRUCTURES_PREFIX = "{%s}" % ns.STRUCTURES


# Names _apply compares with, made once rather than per leaf.
_IDENTIFICATION_ID = ns.q("nc", "IdentificationID")
_DATES = (ns.q("nc", "Date"), ns.q("nc", "DateTime"))
_YEAR = ns.q("nc", "Year")
_YEAR_STEP = _step_of_tag(_YEAR)


def _apply(element: etree._Element, transform: Transform, key: bytes) -> None:
    leaves = [e for e in element.iter() if isinstance(e.tag, str) and len(e) == 0]
    if transform is Transform.MASK:
        for leaf in leaves:
            leaf.text = MASK_TEXT
    elif transform is Transform.ZIP3:
        for leaf in leaves:
            leaf.text = generalize_zip(leaf.text or "")
    elif transform is Transform.TOKEN:
        ids = [leaf for leaf in leaves if leaf.tag == _IDENTIFICATION_ID] or leaves
        for leaf in ids:
            leaf.text = keyed_token(key, leaf.text or "")
    elif transform is Transform.BIRTH_YEAR:
        for leaf in leaves:
            if leaf.tag in _DATES:
                year = etree.Element(_YEAR)
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
