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
from transforms.redaction import Redaction, Rule, Transform, category_of
from transforms.redaction.categories import PART2_CATEGORIES
# The transforms themselves (mask, zip3, token, birth_year) are the engine's own, tested on their own: this
# reference is about the walk (what is kept, removed, skipped and recorded), which the speed change rewrote.
from transforms.redaction.engine import _apply, _categories

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
    # The engine's own read of the finished tree (its fast path collects the categories during the walk instead).
    categories, part2 = _categories(out, notes)
    return Redaction(out, categories, tuple(removed), part2_record and part2)


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
            if child.getparent() is None:  # a date leaf replaced by nc:Year: the note follows it
                notes[f"{path}/nc:Year" if path else "nc:Year"] = NOTES[transform]
        _walk(child, child_path, allow, transforms, block_part2, key, removed, notes)
        if not whole:
            child.text = None
            if len(child) == 0:
                child.getparent().remove(child)
