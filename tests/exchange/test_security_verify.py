"""Verification after the single-parse rewrite: what verify returns, the trust store built once, and that a
signature shape accepted once (and remembered) never lets a changed shape through.
"""
from __future__ import annotations

import copy

import pytest
from lxml import etree

from exchange.security import TrustedSigners, decrypt_document, encrypt, sign, verify, verify_document
from exchange.security.signing import verify_signer
from niem_iepd import safexml

DS = "http://www.w3.org/2000/09/xmldsig#"
EXC = "http://www.w3.org/2001/10/xml-exc-c14n#"
NS = {"ds": DS, "ec": EXC}


def c14n(element) -> bytes:
    return etree.tostring(element, method="c14n", exclusive=True, with_comments=False)


def to_bytes(element) -> bytes:
    return etree.tostring(element, xml_declaration=True, encoding="UTF-8")


def test_the_returned_tree_is_exactly_the_signed_content(document, identity):
    """Comments anywhere (inside the root, before and after it) are dropped with the text around them kept,
    and a namespace declaration nobody uses is dropped: none of them is covered by the digest."""
    signed = sign(document(), identity)
    person = signed.find(".//{*}PersonFullName")
    signed_text = person.text
    person.text = signed_text[:4]
    comment = etree.Comment("not signed")
    comment.tail = signed_text[4:]
    person.append(comment)
    data = b"<!--before-->" + to_bytes(signed).split(b"?>", 1)[1] + b"<!--after-->"
    data = data.replace(b"<t:SecurityTestMessage ", b'<t:SecurityTestMessage xmlns:unused="urn:unused" ', 1)
    root = verify(data, [identity.certificate])
    assert root.find(".//{*}PersonFullName").text == signed_text
    assert b"<!--" not in etree.tostring(root.getroottree())
    assert "unused" not in root.nsmap
    assert root.find("ds:Signature", NS) is None


def test_a_trust_store_built_once_verifies_like_a_list(document, identity, rogue_identity, refused):
    signers = TrustedSigners.load([identity.certificate])
    assert TrustedSigners.load(signers) is signers
    data = to_bytes(sign(document(), identity))
    root, signer = verify_signer(data, signers)
    assert signer == identity.certificate
    assert c14n(root) == c14n(document())
    refused("not one of the trusted certificates", verify, to_bytes(sign(document(), rogue_identity)), signers)
    refused("no trusted signer", verify, data, TrustedSigners.load([]))


def test_a_decrypted_tree_is_verified_without_a_second_parse(document, identity, state_recipient, state_key):
    message = encrypt(sign(document(), identity), state_recipient)
    tree = decrypt_document(message, state_key)
    root, _signer = verify_document(tree, TrustedSigners.load([identity.certificate]))
    assert root is tree.getroot()  # the same tree, reduced to the signed content
    assert c14n(root) == c14n(document())


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda s: s.find("ds:SignedInfo/ds:Reference", NS).set("URI", "#P0"), 'URI=""'),
        (lambda s: s.find("ds:SignedInfo/ds:SignatureMethod", NS).set("Algorithm", f"{DS}rsa-sha1"),
         "legacy algorithm RSA_SHA1"),
        (lambda s: s.find("ds:SignedInfo/ds:Reference/ds:Transforms", NS).remove(
            s.find("ds:SignedInfo/ds:Reference/ds:Transforms/ds:Transform", NS)), "enveloped-signature then"),
        (lambda s: s.find("ds:SignedInfo", NS).append(copy.deepcopy(s.find("ds:SignedInfo/ds:Reference", NS))),
         "exactly one ds:Reference"),
        (lambda s: s.append(etree.Element(f"{{{DS}}}Object")), "ds:Object is not accepted"),
        (lambda s: s.find("ds:KeyInfo", NS).remove(s.find("ds:KeyInfo/ds:X509Data", NS)), "no ds:X509Certificate"),
        (lambda s: setattr(s.find("ds:KeyInfo/ds:X509Data/ds:X509Certificate", NS), "text", "not*base64"),
         "cannot be read"),
        # A comment turns the remembered-shape shortcut off: the full walk still refuses the change.
        (lambda s: (s.find("ds:SignedInfo", NS).insert(0, etree.Comment("c")),
                    s.find("ds:SignedInfo/ds:Reference", NS).set("URI", "#P0")), 'URI=""'),
    ],
)
def test_a_changed_shape_is_refused_after_the_genuine_one_was_accepted(document, identity, refused, change, reason):
    genuine = sign(document(), identity)
    assert verify(to_bytes(genuine), [identity.certificate]) is not None  # its shape is now remembered
    changed = copy.deepcopy(genuine)
    change(changed.find("ds:Signature", NS))
    refused(reason, verify, to_bytes(changed), [identity.certificate])


def test_inclusive_namespace_prefixes_are_kept(document, identity):
    """A PrefixList in the exclusive c14n transform signs those declarations: they stay in the result."""
    import xmlsec

    root = document()
    root.set("{http://www.w3.org/2001/XMLSchema-instance}type", "q:Thing")
    etree.cleanup_namespaces(root, top_nsmap={"q": "urn:qnames"}, keep_ns_prefixes=["q"])
    template = xmlsec.template.create(root, xmlsec.constants.TransformExclC14N,
                                      xmlsec.constants.TransformRsaSha256, ns="ds")
    root.append(template)
    reference = xmlsec.template.add_reference(template, xmlsec.constants.TransformSha256, uri="")
    xmlsec.template.add_transform(reference, xmlsec.constants.TransformEnveloped)
    exclusive = xmlsec.template.add_transform(reference, xmlsec.constants.TransformExclC14N)
    xmlsec.template.transform_add_c14n_inclusive_namespaces(exclusive, ["q"])
    # the identity's key carries no certificate: write it, as exchange.security.sign does
    xmlsec.template.x509_data_add_certificate(
        xmlsec.template.add_x509_data(xmlsec.template.ensure_key_info(template))).text = identity.certificate_base64
    context = xmlsec.SignatureContext()
    context.key = identity.key
    context.sign(template)
    result = verify(to_bytes(root), [identity.certificate])
    assert result.nsmap.get("q") == "urn:qnames"


def test_verify_parses_the_received_bytes_only_once(document, identity, monkeypatch):
    calls = []
    original = safexml.parse

    def counting(data, **kwargs):
        calls.append(len(data))
        return original(data, **kwargs)

    monkeypatch.setattr(safexml, "parse", counting)
    verify(to_bytes(sign(document(), identity)), [identity.certificate])
    assert len(calls) == 1
