"""``transforms.mapping.tree``: nodes described in ElementMaker style, built top-down into one document."""
from __future__ import annotations

import pytest
from lxml import etree

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
