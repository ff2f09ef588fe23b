"""``transforms.mapping.tree``: nodes described in ElementMaker style, built top-down into one document."""
from __future__ import annotations

import pytest
from lxml import etree
from lxml.builder import ElementMaker

from niem_iepd import ns
from transforms.mapping import tree

NSMAP = {"nx": ns.NX, "nc": ns.NC, "j": ns.J}


def _described(m_nc, m_j):
    """One description, written against either factory: text, tails, attribute dicts, nested and empty."""
    name = m_nc.PersonName(m_nc.PersonGivenName("Ann"), "tail & <more>", {"id": "n1"})
    name.append(m_nc.PersonSurName("Lee"))
    return [m_nc.EntityPerson("lead ", name, m_j.PersonSexCode("F"), m_nc.PersonMiddleName(""), m_nc.Empty())]


def test_built_tree_equals_the_real_element_factories_output():
    root = etree.Element(ns.q("nx", "Root"), nsmap=NSMAP)
    root.extend(_described(ns.nc, ns.j))
    etree.cleanup_namespaces(root)
    built = tree.build(ns.q("nx", "Root"), NSMAP, *_described(tree.nc, tree.j))
    assert etree.tostring(built) == etree.tostring(root)


def test_append_builds_below_an_existing_element_in_its_namespace_scope():
    root = etree.Element(ns.q("nx", "Root"), nsmap=NSMAP)
    tree.append(root, tree.nc.PersonName(tree.nc.PersonFullName("Ann Lee")))
    assert etree.tostring(root).count(b"xmlns") == len(NSMAP)
    assert root.findtext(ns.clark("nc:PersonName/nc:PersonFullName")) == "Ann Lee"


@pytest.mark.parametrize("bad", [None, 3, 1.5, b"bytes"])
def test_content_that_is_not_text_a_node_or_attributes_is_refused(bad):
    with pytest.raises(TypeError, match="PersonName"):
        tree.build(ns.q("nx", "Root"), NSMAP, tree.nc.PersonName(bad))


def test_a_node_repr_names_the_element_not_its_content():
    assert repr(tree.nc.PersonGivenName("CANARY")) == f"<Node {{{ns.NC}}}PersonGivenName>"


def _text_only(m_nc, m_j, given="Ann", tail="tail & <more>"):
    """Nodes and strings only (what build copies from a kept shape): texts around children, several in a row."""
    return [m_nc.EntityPerson("lead ", "more lead ", m_nc.PersonName(m_nc.PersonGivenName(given), tail, "and more"),
                              m_j.PersonSexCode("F"), m_nc.PersonMiddleName(""), m_nc.Empty(), m_nc.Both("x", "y")),
            m_nc.PersonSurName("Lee"), "root tail"]


def _reference(content) -> bytes:
    root = ElementMaker(nsmap=NSMAP)(ns.q("nx", "Root"), *content)
    etree.cleanup_namespaces(root)
    return etree.tostring(root)


@pytest.mark.parametrize("given, tail", [("Ann", "tail"), ("Ñandú", ""), ("", "a & b"), ("O'Neil <x>", " ")])
def test_messages_of_one_shape_each_get_their_own_texts(given, tail):
    for _ in range(2):  # the second is copied from the shape the first left
        built = tree.build(ns.q("nx", "Root"), NSMAP, *_text_only(tree.nc, tree.j, given, tail))
        etree.cleanup_namespaces(built)
        assert etree.tostring(built) == _reference(_text_only(ns.nc, ns.j, given, tail))


def test_a_built_message_shares_nothing_with_the_next_of_its_shape():
    first = tree.build(ns.q("nx", "Root"), NSMAP, tree.nc.PersonName(tree.nc.PersonGivenName("Ann")))
    first[0][0].text = "CHANGED"
    first[0].append(etree.Element(ns.q("nc", "Extra")))
    second = tree.build(ns.q("nx", "Root"), NSMAP, tree.nc.PersonName(tree.nc.PersonGivenName("Bob")))
    etree.cleanup_namespaces(second)
    assert etree.tostring(second) == _reference([ns.nc.PersonName(ns.nc.PersonGivenName("Bob"))])
    assert first.getroottree() is not second.getroottree()


def test_text_lxml_refuses_is_refused_as_before():
    for _ in range(2):
        with pytest.raises(ValueError, match="XML compatible"):
            tree.build(ns.q("nx", "Root"), NSMAP, tree.nc.PersonName(tree.nc.PersonGivenName("A\x01")))


def test_kept_shapes_are_bounded_and_long_messages_are_still_built():
    tree._template.cache_clear()
    nc = tree.nc
    shapes = [(given, sur) for given in range(30) for sur in range(20)]  # 600 short shapes, more than are kept
    for given, sur in shapes:
        built = tree.build(ns.q("nx", "Root"), NSMAP, nc.PersonName(
            *(nc.PersonGivenName(f"g{i}") for i in range(given)), *(nc.PersonSurName(f"s{i}") for i in range(sur))))
        assert [e.text for e in built[0]] == [f"g{i}" for i in range(given)] + [f"s{i}" for i in range(sur)]
    assert tree._template.cache_info().currsize == tree._MAX_SHAPES < len(shapes)
    for count in (tree._MAX_SHAPE, 2 * tree._MAX_SHAPE):  # longer than a kept shape: built all the same
        built = tree.build(ns.q("nx", "Root"), NSMAP, nc.PersonName(*(nc.PersonGivenName(str(i)) for i in range(count))))
        assert [e.text for e in built[0]] == [str(i) for i in range(count)]
