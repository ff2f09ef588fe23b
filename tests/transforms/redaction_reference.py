"""A plain reference for :func:`transforms.redaction.redact`: the rule applied element by element, no shortcuts.

This is the engine as it was before it learnt to memoise decisions per path and skip wholly allowed subtrees
(commit 3cdcd5b): a path string built for every element, every permission worked out from the allow-list
again, every element visited, the ledger's categories read off the finished tree. It is slow on purpose and
kept only so the tests can check that the fast engine gives the same bytes, removals and categories; a future
optimisation that leaks a field fails against it.
"""
from __future__ import annotations

import copy

from lxml import etree

from niem_iepd import ns
from transforms.redaction import Redaction, Rule, Transform, category_of, element_path, generalize_zip, keyed_token
from transforms.redaction.categories import PART2_CATEGORIES
from transforms.redaction.engine import MASK_TEXT

NOTES = {Transform.MASK: "masked", Transform.BIRTH_YEAR: "year only", Transform.ZIP3: "3-digit ZIP",
         Transform.TOKEN: "keyed token"}


def reference_redact(root: etree._Element, rule: Rule, *, token_key: bytes, part2_record: bool = False,
                     part2_consent: bool = False) -> Redaction:
    """What ``redact`` must return for these arguments, worked out the slow, obvious way."""
    out = copy.deepcopy(root)
    transforms = dict(rule.transforms)
    block_part2 = part2_record and not part2_consent
    removed: list[str] = []
    notes: dict[str, str] = {}
    for element in out.iter():
        if isinstance(element.tag, str):
            for name in list(element.attrib):
                if etree.QName(name).namespace != ns.STRUCTURES:
                    del element.attrib[name]
    _walk(out, "", rule.allow, transforms, block_part2, token_key, removed, notes)
    found: set[str] = set()
    part2 = False
    for leaf in out.iter():
        if leaf is out or not isinstance(leaf.tag, str) or len(leaf):
            continue
        path = element_path(leaf, out)
        category = category_of(path)
        if category == "":
            continue
        category = category or "other"
        part2 = part2 or category in PART2_CATEGORIES
        note = next((n for p, n in notes.items() if path == p or path.startswith(p + "/")), "")
        found.add(f"{category} ({note})" if note else category)
    return Redaction(out, tuple(sorted(found)), tuple(removed), part2_record and part2)


def _walk(element, path, allow, transforms, block_part2, key, removed, notes) -> None:
    for child in list(element):
        if not isinstance(child.tag, str):
            element.remove(child)
            continue
        name = etree.QName(child.tag)
        prefix = next((p for p, uri in reversed(ns.PREFIXES.items()) if uri == name.namespace), "?")
        child_path = f"{path}/{prefix}:{name.localname}" if path else f"{prefix}:{name.localname}"
        whole = child_path in allow or any(child_path.startswith(a + "/") for a in allow)
        kept = whole or any(a.startswith(child_path + "/") for a in allow)
        transform = transforms.get(child_path)
        if (not kept or transform is Transform.DROP
                or (block_part2 and category_of(child_path) in PART2_CATEGORIES)):
            element.remove(child)
            removed.append(child_path)
            continue
        if transform is not None:
            _apply(child, transform, key)
            notes[child_path] = NOTES[transform]
        _walk(child, child_path, allow, transforms, block_part2, key, removed, notes)
        if not whole:
            child.text = None
            if len(child) == 0:
                child.getparent().remove(child)


def _apply(element, transform, key) -> None:
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
