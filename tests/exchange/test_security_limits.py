"""exchange.security on received bytes: one configurable size limit, safexml refusals as SecurityError, PKCS#12."""
from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12
from lxml import etree

from exchange.security import SigningIdentity, decrypt, encrypt, sign, verify
from exchange.security._received import MAX_DOCUMENT_BYTES, parse_received
from niem_iepd import safexml


def to_bytes(element) -> bytes:
    return etree.tostring(element, xml_declaration=True, encoding="UTF-8")


def test_the_default_limit_is_safexmls_and_each_call_can_lower_it(document, identity, state_recipient, state_key,
                                                                   refused):
    assert MAX_DOCUMENT_BYTES == safexml.DEFAULT_MAX_BYTES
    message = encrypt(sign(document(extra_people=5), identity), state_recipient)
    assert decrypt(message, state_key)  # fits the default
    refused("over the limit", decrypt, message, state_key, max_bytes=len(message) - 1)
    signed = to_bytes(sign(document(), identity))
    assert verify(signed, [identity.certificate], max_bytes=len(signed)) is not None
    refused("over the limit", verify, signed, [identity.certificate], max_bytes=len(signed) - 1)


def test_unsafe_xml_becomes_a_security_error_with_safexmls_reason(refused):
    refused("entity declaration", parse_received, b'<!DOCTYPE r [<!ENTITY e "x">]><r>&e;</r>', "test")
    refused("not well-formed", parse_received, b"<r><unclosed></r>", "test")
    refused("beyond the parser's limits", parse_received, b"<a>" * 3000 + b"</a>" * 3000, "test")
    with pytest.raises(TypeError):
        parse_received("<r/>", "test")  # str has lost its encoding: a programming error


def test_a_plaintext_with_a_second_root_is_refused_after_decryption(document, identity, state_recipient,
                                                                   state_key, refused):
    """decrypt parses what xmlsec decrypted with safexml, so content after the real root cannot ride along."""
    import xmlsec

    plaintext = etree.tostring(sign(document(), identity)) + b"<forged/>"
    template = xmlsec.template.encrypted_data_create(etree.Element("x"), xmlsec.constants.TransformAes256Gcm,
                                                     type=xmlsec.constants.TypeEncElement, ns="xenc")
    xmlsec.template.encrypted_data_ensure_cipher_value(template)
    key_info = xmlsec.template.encrypted_data_ensure_key_info(template, ns="ds")
    encrypted_key = xmlsec.template.add_encrypted_key(key_info, xmlsec.constants.TransformRsaOaep)
    xmlsec.template.encrypted_data_ensure_cipher_value(encrypted_key)
    context = xmlsec.EncryptionContext(state_recipient.manager)
    context.key = xmlsec.Key.generate(xmlsec.constants.KeyDataAes, 256, xmlsec.constants.KeyDataTypeSession)
    message = to_bytes(context.encrypt_binary(template, plaintext))
    refused("the decrypted content", decrypt, message, state_key)


def test_a_signing_key_in_pkcs12_signs_like_the_pem_one(tmp_path, security_pki, identity, document):
    key = serialization.load_pem_private_key(security_pki.signing_key.read_bytes(), password=None)
    p12 = tmp_path / "signing.p12"
    p12.write_bytes(pkcs12.serialize_key_and_certificates(
        b"signing", key, None, None, serialization.BestAvailableEncryption(b"p12-pass")))
    from_p12 = SigningIdentity.load(p12, security_pki.signing_certificate, b"p12-pass")
    assert from_p12.key_id == identity.key_id and from_p12.fingerprint == identity.fingerprint
    assert verify(to_bytes(sign(document(), from_p12)), [identity.certificate]) is not None
    with pytest.raises(Exception, match="passphrase"):
        SigningIdentity.load(p12, security_pki.signing_certificate, b"wrong")
