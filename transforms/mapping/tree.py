"""Element trees described first and built once, top-down: the builders' hot path.

``nc.PersonName(nc.PersonGivenName("Ann"))`` reads like lxml's ``ElementMaker`` but returns a :class:`Node`,
a plain description of the element; :func:`build` then makes the whole message in one lxml document with
``SubElement``, so every element finds the namespace declarations of the root and nothing is moved.

Why not real elements all the way: ``etree.Element(tag, nsmap=...)`` makes a new libxml2 document per
element, and each ``append`` moves the subtree into the parent's document and reconciles its namespaces
again, so a message built bottom-up pays for its tree several times over, then once more for
``cleanup_namespaces``. Described first and built top-down, a message takes 0.5-0.6x the CPU time.
Then, since messages of one type come in a few shapes, each shape's tree is made once and copied whole for
every message of that shape, which sets just the texts (see :func:`build`): half again.

Namespaces come from the registry (:mod:`niem_iepd.ns`); prefixes are those the root declares.
"""
from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache

from lxml import etree

from niem_iepd import ns

_SubElement = etree.SubElement


class Node(list):
    """One element still to be built: its Clark tag, and its content in order as the list's items.

    Content items are child :class:`Node` objects, strings (text before the first child, otherwise the
    tail of the child before), attribute dicts, and ready lxml elements (appended, hence moved, as is).
    A list so that ``append`` and ``extend`` add content at list speed.
    """

    __slots__ = ("tag",)

    def __repr__(self) -> str:  # never the content: it may be a person's data
        return f"<Node {self.tag}>"


class NodeMaker:
    """``nc.PersonName(...)``: makes :class:`Node` objects in one namespace of the registry.

    Arguments are content items (see :class:`Node`); attributes are given as a dict argument. Each tag's
    constructor is made once and kept on the instance, so a second call does not go through
    ``__getattr__``. Content of another type (None, numbers) is refused when the tree is built, as
    ``ElementMaker`` refuses it.
    """

    def __init__(self, namespace: str) -> None:
        self._namespace = namespace

    def __getattr__(self, local: str):
        if local.startswith("_"):
            raise AttributeError(local)
        tag = f"{{{self._namespace}}}{local}"

        def make(*content: object) -> Node:
            node = Node(content)
            node.tag = tag
            return node

        make.__name__ = local
        setattr(self, local, make)
        return make


nc = NodeMaker(ns.NC)
j = NodeMaker(ns.J)
nx = NodeMaker(ns.NX)


def build(tag: str | etree.QName, nsmap: dict[str, str], *content: object) -> etree._Element:
    """Make the element ``tag`` declaring ``nsmap``, with ``content`` (nodes, text, attributes) below it.

    Elements below the root are made in the root's document, so they use its declarations; a namespace
    the root does not declare gets one generated prefix where it is first used (so declare them all).

    Messages of one type come in a handful of shapes (which optional elements are there), so a tree of
    nodes and text only is built once per shape, without its text, and kept (:func:`_template`); each
    message then copies its shape's tree in one libxml2 call and sets the text in document order. The
    result is the same tree :func:`_fill` makes element by element, for ~0.3x the CPU time (a booking
    notification: ~80 -> ~23 us besides describing it; one SubElement with its text costs ~1 us).
    Content with attributes or ready elements, or of a type :func:`_fill` refuses, takes :func:`_fill`.
    """
    name = tag if type(tag) is str else tag.text if type(tag) is etree.QName else None
    if name is not None:
        shape: list = [name, *nsmap.items()]
        texts: list[str] = []
        if _describe(content, shape, texts):
            try:
                template, targets = _template(tuple(shape), len(nsmap))
            except (ValueError, TypeError):
                pass  # lxml refuses a name in it: _fill below raises what it always raised
            else:
                return _set_texts(template.__copy__(), targets, texts)  # the whole tree, a document of its own
    root = etree.Element(tag, nsmap=nsmap)
    _fill(root, content)
    return root


def append(parent: etree._Element, *content: object) -> etree._Element:
    """Build ``content`` (nodes, text, attributes) at the end of an existing element; return ``parent``.

    The new elements use the namespace declarations in scope at ``parent``.
    """
    _fill(parent, content)
    return parent


def _fill(element: etree._Element, content: Iterable[object]) -> None:
    last = None
    for item in content:
        if type(item) is Node:
            last = _SubElement(element, item.tag)
            # Most elements hold just their text: set it here rather than recurse.
            if len(item) == 1 and type(item[0]) is str:
                last.text = item[0]
            elif item:
                _fill(last, item)
        elif isinstance(item, str):
            if last is None:
                element.text = (element.text or "") + item
            else:
                last.tail = (last.tail or "") + item
        elif isinstance(item, dict):
            for name, value in item.items():
                element.set(name, value)
        elif isinstance(item, etree._Element):
            element.append(item)
            last = item
        else:
            raise TypeError(f"{etree.QName(element).localname}: cannot add a {type(item).__name__} to an element")


# Shapes (see build): a node's tag opens an element; _LEAF right after it says the element holds one text and
# closes; _TEXT is a text item inside the open element (its text before the first child, else the tail of
# the child before); _CLOSE closes the open element. The texts are kept apart, in the same order.
_LEAF = ("leaf",)
_TEXT = ("text",)
_CLOSE = None

#: Longest shape kept (tokens): a few times a booking's; longer ones (a long roster) take _fill.
_MAX_SHAPE = 1024
#: Shapes kept; past it the least recently used is dropped (a hostile or unusual stream cannot grow memory).
_MAX_SHAPES = 512


def _describe(content: Iterable[object], shape: list, texts: list[str]) -> bool:
    """Append the shape tokens and texts of ``content`` to ``shape`` and ``texts``; False if it has anything
    but nodes and plain strings, or is too long to keep."""
    for item in content:
        if type(item) is Node:
            shape.append(item.tag)
            if len(item) == 1 and type(item[0]) is str:
                shape.append(_LEAF)
                texts.append(item[0])
            elif _describe(item, shape, texts):
                shape.append(_CLOSE)
            else:
                return False
        elif type(item) is str:
            shape.append(_TEXT)
            texts.append(item)
        else:
            return False
    return len(shape) <= _MAX_SHAPE


def _set_texts(root: etree._Element, targets: tuple, texts: list[str]) -> etree._Element:
    """Set ``texts`` on a fresh copy of a shape's tree where the shape has them, in document order."""
    elements = list(root.iter())
    leaves, general = targets
    if general is None:  # each text the only text of its element: the usual case
        for index, text in zip(leaves, texts):
            elements[index].text = text
    else:  # text around children, or several texts in a row: as _fill adds them
        for (index, tail), text in zip(general, texts):
            element = elements[index]
            if tail:
                element.tail = (element.tail or "") + text
            else:
                element.text = (element.text or "") + text
    return root


@lru_cache(maxsize=_MAX_SHAPES)
def _template(shape: tuple, declared: int) -> tuple[etree._Element, tuple]:
    """The tree of ``shape`` (its root tag and ``declared`` namespace items first), made on first sight and
    kept, and where its texts go (see :func:`_make`); callers copy it. ValueError if lxml refuses a name."""
    return _make(shape, declared)


def _make(shape: tuple, declared: int) -> tuple[etree._Element, tuple]:
    """The tree of ``shape`` without text; where its texts go: (element indices, None) when each text is the
    only text of its element, else ((), (element index, tail?) per text)."""
    root = etree.Element(shape[0], nsmap=dict(shape[1:1 + declared]))
    targets: list[tuple[int, bool]] = []
    end = _make_children(root, 0, shape, 1 + declared, [1], targets)
    if end != len(shape):
        raise ValueError("a shape closes more elements than it opens")
    indices = [index for index, _ in targets]
    if any(tail for _, tail in targets) or len(set(indices)) != len(indices):
        return root, ((), tuple(targets))
    return root, (tuple(indices), None)


def _make_children(parent: etree._Element, parent_index: int, shape: tuple, at: int, made: list[int],
                   targets: list[tuple[int, bool]]) -> int:
    """Make the elements of ``shape[at:]`` below ``parent`` up to its _CLOSE; the position after that.

    ``made[0]`` counts the elements made so far (the index of the next one in document order)."""
    last = None  # index of the last child made
    while at < len(shape):
        token = shape[at]
        if token is _CLOSE:
            return at + 1
        if token is _TEXT:
            targets.append((parent_index, False) if last is None else (last, True))
            at += 1
            continue
        element = _SubElement(parent, token)
        last = made[0]
        made[0] += 1
        if at + 1 < len(shape) and shape[at + 1] is _LEAF:
            targets.append((last, False))
            at += 2
        else:
            at = _make_children(element, last, shape, at + 1, made, targets)
    return at

