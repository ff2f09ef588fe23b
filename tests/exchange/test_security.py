"""exchange.security in-process: sign/verify, encrypt/decrypt, key loading and the dev PKI.

Every refusal is checked for the canary planted in the document: errors never quote a message.
Interoperability with the xmlsec1 command-line tool is in test_security_xmlsec1.py.
"""
from __future__ import annotations

import base64
import copy
import datetime as dt
import os
import re
import stat
from pathlib import Path

import pytest
import xmlsec
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from lxml import etree

from exchange.security import (
    BlockCipher,
    DigestMethod,
    KeyTransport,
    PrivateKey,
    RecipientCertificate,
    SignatureMethod,
    SigningIdentity,
    decrypt,
    encrypt,
    fingerprint,
    mint_dev_pki,
    sign,
    sign_to_serialize,
    verify,
)
from exchange.security.keys import key_id, public_xmlsec_key
from transforms.model.errors import ConfigError, SecurityError

DS = "http://www.w3.org/2000/09/xmldsig#"
XENC = "http://www.w3.org/2001/04/xmlenc#"
NS = {"ds": DS, "xenc": XENC}


def c14n(element) -> bytes:
    return etree.tostring(element, method="c14n", exclusive=True, with_comments=False)


def to_bytes(element) -> bytes:
    return etree.tostring(element, xml_declaration=True, encoding="UTF-8")


# ---------------------------------------------------------------------------------------------- signing


def test_sign_appends_an_enveloped_signature_as_last_child(document, identity):
    root = document()
    before = c14n(root)
    signed = sign(root, identity)
    assert c14n(root) == before, "sign must not modify its input"
    assert signed[-1].tag == f"{{{DS}}}Signature"
    signature = signed[-1]
    algorithm = lambda path: signature.find(path, NS).get("Algorithm")  # noqa: E731
    assert algorithm("ds:SignedInfo/ds:SignatureMethod") == SignatureMethod.RSA_SHA256.value
    assert algorithm("ds:SignedInfo/ds:CanonicalizationMethod") == "http://www.w3.org/2001/10/xml-exc-c14n#"
    assert algorithm("ds:SignedInfo/ds:Reference/ds:DigestMethod") == DigestMethod.SHA256.value
    assert signature.find("ds:SignedInfo/ds:Reference", NS).get("URI") == ""
    transforms = signature.findall("ds:SignedInfo/ds:Reference/ds:Transforms/ds:Transform", NS)
    assert [t.get("Algorithm") for t in transforms] == [
        f"{DS}enveloped-signature",
        "http://www.w3.org/2001/10/xml-exc-c14n#",
    ]
    embedded = signature.findtext("ds:KeyInfo/ds:X509Data/ds:X509Certificate", namespaces=NS)
    cert = x509.load_der_x509_certificate(base64.b64decode("".join(embedded.split())))
    assert fingerprint(cert) == identity.fingerprint


def test_verify_returns_a_fresh_tree_without_the_signature(document, identity, security_pki):
    root = document()
    signed = sign(root, identity)
    data = to_bytes(signed)
    result = verify(data, [security_pki.signing_certificate])
    assert result is not signed
    assert result.find(".//ds:Signature", NS) is None
    assert c14n(result) == c14n(root)
    # certificates may be passed as objects too, and a now inside the validity period is fine
    assert c14n(verify(data, [identity.certificate], now=dt.datetime.now(dt.timezone.utc))) == c14n(root)


def test_verify_returns_only_what_was_signed(document, identity):
    """Comments are outside URI="" and are not returned; nor are unused namespace declarations."""
    signed = sign(document(), identity)
    signed.insert(0, etree.Comment("inserted after signing"))
    data = to_bytes(signed).replace(b"<t:SecurityTestMessage ", b'<t:SecurityTestMessage xmlns:evil="urn:evil" ', 1)
    result = verify(data, [identity.certificate])
    assert not [node for node in result.iter() if isinstance(node, etree._Comment)]
    assert "evil" not in result.nsmap


def test_ecdsa_identity_signs_with_ecdsa_sha256(document, ec_signing_files):
    key, cert = ec_signing_files
    ec_identity = SigningIdentity.load(key, cert)
    assert ec_identity.method is SignatureMethod.ECDSA_SHA256
    signed = sign(document(), ec_identity)
    method = signed.find("ds:Signature/ds:SignedInfo/ds:SignatureMethod", NS).get("Algorithm")
    assert method == SignatureMethod.ECDSA_SHA256.value
    assert c14n(verify(to_bytes(signed), [cert])) == c14n(document())


def test_a_changed_byte_in_the_signed_content_is_refused(document, identity, refused, canary):
    data = to_bytes(sign(document(), identity))
    tampered = data.replace(f"{canary} 0".encode(), f"{canary} 1".encode(), 1)
    assert tampered != data and len(tampered) == len(data)
    refused("does not verify", verify, tampered, [identity.certificate])


def test_a_changed_signature_value_is_refused(document, identity, refused):
    signed = sign(document(), identity)
    value = signed.find("ds:Signature/ds:SignatureValue", NS)
    raw = bytearray(base64.b64decode(value.text))
    raw[10] ^= 1
    value.text = base64.b64encode(bytes(raw)).decode()
    refused("does not verify", verify, to_bytes(signed), [identity.certificate])


def test_an_untrusted_self_consistent_signer_is_refused(document, identity, rogue_identity, refused):
    data = to_bytes(sign(document(), rogue_identity))
    verify(data, [rogue_identity.certificate])  # self-consistent: it does verify against its own cert
    refused("not one of the trusted certificates", verify, data, [identity.certificate])


def test_our_certificate_embedded_in_a_foreign_signature_is_refused(document, identity, rogue_identity, refused):
    """Naming a trusted certificate in KeyInfo does not help: the key used is the trusted one."""
    signed = sign(document(), rogue_identity)
    ours = sign(document(), identity).find("ds:Signature/ds:KeyInfo", NS)
    signature = signed.find("ds:Signature", NS)
    signature.replace(signature.find("ds:KeyInfo", NS), copy.deepcopy(ours))
    refused("does not verify", verify, to_bytes(signed), [identity.certificate])


def test_no_trusted_certificates_refuses(document, identity, refused):
    refused("no trusted signer", verify, to_bytes(sign(document(), identity)), [])


def test_a_signature_without_certificate_is_refused(document, identity, refused):
    signed = sign(document(), identity)
    signature = signed.find("ds:Signature", NS)
    signature.remove(signature.find("ds:KeyInfo", NS))
    refused("no ds:X509Certificate", verify, to_bytes(signed), [identity.certificate])


def test_signature_wrapping_under_a_wrapper_is_refused(document, identity, refused):
    """The genuine signed element moved under an attacker's root, next to forged content."""
    signed = sign(document(), identity)
    forged = document()
    forged.find(".//{*}PersonFullName").text = "someone else"
    forged.append(etree.Element("{urn:attacker}Original"))
    forged[-1].append(signed)
    refused("must be a child of the document element", verify, to_bytes(forged), [identity.certificate])


def test_a_second_root_level_copy_is_refused(document, identity, refused):
    """A forged root carrying the genuine signature, with the genuine signed element as a sibling copy."""
    signed = sign(document(), identity)
    forged = document()
    forged.find(".//{*}PersonFullName").text = "someone else"
    original_content = copy.deepcopy(signed)
    original_content.remove(original_content.find("ds:Signature", NS))
    forged.append(original_content)
    forged.append(copy.deepcopy(signed.find("ds:Signature", NS)))
    refused("does not verify", verify, to_bytes(forged), [identity.certificate])
    # and the genuine signed document next to it, signature included: two signatures
    forged.append(copy.deepcopy(signed))
    refused("exactly one ds:Signature", verify, to_bytes(forged), [identity.certificate])


def test_signed_content_moved_into_a_wrapper_inside_the_root_is_refused(document, identity, refused):
    signed = sign(document(), identity)
    wrapper = etree.SubElement(signed, "{urn:attacker}Wrapper")
    for child in list(signed):
        if child.tag != f"{{{DS}}}Signature" and child is not wrapper:
            wrapper.append(child)
    signed.append(signed.find("ds:Signature", NS))
    refused("does not verify", verify, to_bytes(signed), [identity.certificate])


@pytest.mark.parametrize(
    ("path", "attribute", "value", "reason"),
    [
        ("ds:SignedInfo/ds:Reference", "URI", "#P0", 'URI=""'),
        ("ds:SignedInfo/ds:SignatureMethod", "Algorithm", f"{DS}rsa-sha1", "legacy algorithm RSA_SHA1"),
        ("ds:SignedInfo/ds:Reference/ds:DigestMethod", "Algorithm", f"{DS}sha1", "legacy algorithm SHA1"),
        ("ds:SignedInfo/ds:CanonicalizationMethod", "Algorithm",
         "http://www.w3.org/TR/2001/REC-xml-c14n-20010315", "unsupported algorithm"),
        ("ds:SignedInfo/ds:Reference/ds:Transforms/ds:Transform[last()]", "Algorithm",
         "http://www.w3.org/TR/1999/REC-xslt-19991116", "unsupported algorithm"),
    ],
)
def test_other_signature_shapes_are_refused(document, identity, refused, path, attribute, value, reason):
    signed = sign(document(), identity)
    signed.xpath(f"ds:Signature/{path}", namespaces=NS)[0].set(attribute, value)
    error = refused(reason, verify, to_bytes(signed), [identity.certificate])
    assert value not in str(error) or value == ""  # received attribute values are not echoed


def test_a_real_sha1_signature_is_refused(document, identity, security_pki, refused):
    """Signed by python-xmlsec with RSA-SHA1 and SHA-1, a valid signature in itself."""
    root = document()
    template = xmlsec.template.create(
        root, xmlsec.constants.TransformExclC14N, xmlsec.constants.TransformRsaSha1, ns="ds"
    )
    root.append(template)
    reference = xmlsec.template.add_reference(template, xmlsec.constants.TransformSha1, uri="")
    xmlsec.template.add_transform(reference, xmlsec.constants.TransformEnveloped)
    xmlsec.template.add_transform(reference, xmlsec.constants.TransformExclC14N)
    xmlsec.template.x509_data_add_certificate(
        xmlsec.template.add_x509_data(xmlsec.template.ensure_key_info(template))
    ).text = identity.certificate_base64
    context = xmlsec.SignatureContext()
    context.key = identity.key
    try:
        context.sign(template)
    except xmlsec.Error:
        pytest.skip("this libxmlsec build cannot sign with SHA-1")
    refused("legacy algorithm RSA_SHA1", verify, to_bytes(root), [identity.certificate])


def test_an_expired_signer_certificate_is_refused_when_now_is_given(document, identity, refused):
    data = to_bytes(sign(document(), identity))
    later = identity.certificate.not_valid_after_utc + dt.timedelta(days=1)
    refused("expired", verify, data, [identity.certificate], now=later)


@pytest.mark.parametrize(
    "data",
    [
        b'<!DOCTYPE r [<!ENTITY e "CANARY-Jane-Q-Doe-1975">]><r>&e;</r>',
        b'<!DOCTYPE r SYSTEM "http://127.0.0.1:9/evil.dtd"><r>CANARY-Jane-Q-Doe-1975</r>',
        b'<r>CANARY-Jane-Q-Doe-1975<unclosed></r>',
    ],
)
def test_hostile_or_broken_xml_is_refused_without_quoting_it(data, identity, refused):
    refused("refused", verify, data, [identity.certificate])


def test_signing_twice_is_refused(document, identity, refused):
    refused("already contains a signature", sign, sign(document(), identity), identity)


def test_sign_to_serialize_writes_what_sign_writes_and_spares_only_a_tree_alone(document, identity):
    """The pipeline's form: the same bytes as sign (RSA-SHA256 signatures are deterministic), signed in place
    when the tree is alone in its document; a tree with a comment beside it is copied and left untouched."""
    root = document()
    expected = to_bytes(sign(root, identity))
    alone = copy.deepcopy(root)
    assert sign_to_serialize(alone, identity) is alone
    assert to_bytes(alone) == expected
    assert c14n(verify(to_bytes(alone), [identity.certificate])) == c14n(root)

    beside = etree.fromstring(b"<!--kept-->" + etree.tostring(root))
    assert beside.getprevious() is not None
    before = etree.tostring(beside.getroottree())
    signed = sign_to_serialize(beside, identity)
    assert signed is not beside and etree.tostring(beside.getroottree()) == before
    assert to_bytes(signed) == expected


def test_sign_to_serialize_refuses_a_signed_document(document, identity, refused):
    refused("already contains a signature", sign_to_serialize, sign(document(), identity), identity)


# -------------------------------------------------------------------------------------------- encryption


def test_encrypt_then_decrypt_round_trips(document, identity, state_recipient, state_key, canary):
    root = document()
    signed = sign(root, identity)
    before = c14n(signed)
    message = encrypt(signed, state_recipient)
    assert c14n(signed) == before, "encrypt must not modify its input"
    assert message.startswith(b"<?xml version=")
    assert canary.encode() not in message
    tree = etree.fromstring(message)
    assert tree.tag == f"{{{XENC}}}EncryptedData"
    assert tree.get("Type") == f"{XENC}Element"
    assert tree.find("xenc:EncryptionMethod", NS).get("Algorithm") == BlockCipher.AES256_GCM.value
    key_method = tree.find("ds:KeyInfo/xenc:EncryptedKey/xenc:EncryptionMethod", NS)
    assert key_method.get("Algorithm") == KeyTransport.RSA_OAEP_MGF1P.value
    embedded = tree.findtext(
        "ds:KeyInfo/xenc:EncryptedKey/ds:KeyInfo/ds:X509Data/ds:X509Certificate", namespaces=NS
    )
    cert = x509.load_der_x509_certificate(base64.b64decode("".join(embedded.split())))
    assert fingerprint(cert) == state_recipient.fingerprint
    plaintext = decrypt(message, state_key)
    assert plaintext.startswith(b"<?xml")
    assert c14n(etree.fromstring(plaintext)) == before
    assert c14n(verify(plaintext, [identity.certificate])) == c14n(root)


def _session_keys(message: bytes, key_pem) -> list[bytes]:
    """Each EncryptedKey's session key, unwrapped with ``cryptography`` and the recipient's private key: what a
    receiver without xmlsec does (rsa-oaep-mgf1p is OAEP with SHA-1 and MGF1-SHA-1, no label)."""
    private = serialization.load_pem_private_key(Path(key_pem).read_bytes(), password=None)
    oaep = padding.OAEP(mgf=padding.MGF1(hashes.SHA1()), algorithm=hashes.SHA1(), label=None)
    found = []
    for value in etree.fromstring(message).iterfind(f"{{{DS}}}KeyInfo/{{{XENC}}}EncryptedKey/{{{XENC}}}CipherData/"
                                                    f"{{{XENC}}}CipherValue"):
        try:
            found.append(private.decrypt(base64.b64decode(value.text), oaep))
        except ValueError:
            found.append(b"")  # wrapped to another recipient's key
    return found


def test_each_message_gets_a_fresh_session_key(document, state_recipient, security_pki):
    first, second = encrypt(document(), state_recipient), encrypt(document(), state_recipient)
    (one,), (two,) = (_session_keys(m, security_pki.recipient_key("state")) for m in (first, second))
    assert len(one) == len(two) == 32  # AES-256
    assert one != two


def test_every_recipient_unwraps_the_same_session_key(document, state_recipient, provider_recipient, security_pki):
    message = encrypt(document(), [state_recipient, provider_recipient])
    state = _session_keys(message, security_pki.recipient_key("state"))
    provider = _session_keys(message, security_pki.recipient_key("provider"))
    assert state[0] == provider[1] and len(state[0]) == 32
    assert state[1] == provider[0] == b""  # each EncryptedKey opens with its own recipient's key only


def _xmlsec_wraps(root, recipients, cipher=xmlsec.constants.TransformAes256Gcm) -> bytes:
    """The EncryptedData xmlsec writes when it wraps the session key itself (encrypt() did until 2026-12):
    the recipients' public keys in a keys manager, named by key id when there are several. ``cipher``: also
    for content ciphers our encrypt() never uses."""
    template = xmlsec.template.encrypted_data_create(
        etree.Element("holder"), cipher, type=xmlsec.constants.TypeEncElement, ns="xenc")
    xmlsec.template.encrypted_data_ensure_cipher_value(template)
    key_info = xmlsec.template.encrypted_data_ensure_key_info(template, ns="ds")
    manager = xmlsec.KeysManager()
    infos = []
    for each in recipients:
        encrypted_key = xmlsec.template.add_encrypted_key(key_info, xmlsec.constants.TransformRsaOaep)
        xmlsec.template.encrypted_data_ensure_cipher_value(encrypted_key)
        info = xmlsec.template.encrypted_data_ensure_key_info(encrypted_key)
        key = public_xmlsec_key(each.certificate)
        if len(recipients) > 1:
            xmlsec.template.add_key_name(info, key_id(each.certificate))
            key.name = key_id(each.certificate)
        manager.add_key(key)
        infos.append(info)
    context = xmlsec.EncryptionContext(manager)
    context.key = xmlsec.Key.generate(xmlsec.constants.KeyDataAes, 256, xmlsec.constants.KeyDataTypeSession)
    encrypted = context.encrypt_binary(template, etree.tostring(root, encoding="UTF-8", with_tail=False))
    for each, info in zip(recipients, infos):
        data = xmlsec.template.add_x509_data(info)
        xmlsec.template.x509_data_add_certificate(data).text = each.certificate_text
    return etree.tostring(encrypted, xml_declaration=True, encoding="UTF-8")


@pytest.mark.parametrize("several", [False, True])
def test_the_encrypted_data_is_laid_out_as_xmlsec_writes_it(document, state_recipient, provider_recipient, several):
    """encrypt() wraps the session key with cryptography, not xmlsec (see its module): receivers must see the
    same document, byte for byte but for the base64 of the ciphertexts."""
    recipients = [state_recipient, provider_recipient] if several else [state_recipient]
    root = document()
    ours, xmlsecs = encrypt(root, recipients), _xmlsec_wraps(root, recipients)
    ciphertext = re.compile(rb"(<xenc:CipherValue>)[A-Za-z0-9+/=\n]+(</xenc:CipherValue>)")
    assert ciphertext.sub(rb"\1\2", ours) == ciphertext.sub(rb"\1\2", xmlsecs)
    assert len(ciphertext.findall(ours)) == len(recipients) + 1


def test_a_message_for_one_recipient_cannot_be_decrypted_by_another(document, state_recipient, provider_key, refused):
    message = encrypt(document(), state_recipient)
    refused("encrypted to a different certificate", decrypt, message, provider_key)
    # without the certificate hint, xmlsec itself fails to unwrap the key
    tree = etree.fromstring(message)
    encrypted_key = tree.find("ds:KeyInfo/xenc:EncryptedKey", NS)
    encrypted_key.remove(encrypted_key.find("ds:KeyInfo", NS))
    refused("cannot be decrypted with this key", decrypt, to_bytes(tree), provider_key)


def test_a_tampered_ciphertext_is_refused(document, state_recipient, state_key, refused):
    tree = etree.fromstring(encrypt(document(), state_recipient))
    value = tree.find("xenc:CipherData/xenc:CipherValue", NS)
    raw = bytearray(base64.b64decode(value.text))
    raw[20] ^= 1
    value.text = base64.b64encode(bytes(raw)).decode()
    refused("cannot be decrypted", decrypt, to_bytes(tree), state_key)


def test_cbc_is_refused_unless_legacy_is_allowed(document, state_recipient, state_key, refused):
    root = document()
    expected = c14n(root)
    message = _xmlsec_wraps(root, [state_recipient], xmlsec.constants.TransformAes256Cbc)
    refused("legacy algorithm AES256_CBC", decrypt, message, state_key)
    assert c14n(etree.fromstring(decrypt(message, state_key, allow_legacy=True))) == expected


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda t: t.set("Type", f"{XENC}Content"), "Type=Element"),
        (lambda t: t.find("xenc:EncryptionMethod", NS).set("Algorithm", f"{XENC}aes128-gcm-nope"),
         "unsupported algorithm"),
        (lambda t: t.find("ds:KeyInfo/xenc:EncryptedKey/xenc:EncryptionMethod", NS).set(
            "Algorithm", f"{XENC}rsa-1_5"), "legacy algorithm RSA_1_5"),
        (lambda t: t.remove(t.find("ds:KeyInfo", NS)), "no xenc:EncryptedKey"),
        (lambda t: t.find("xenc:CipherData", NS).append(etree.Element(f"{{{XENC}}}CipherReference", URI="file:///etc/passwd")),
         "CipherReference is not accepted"),
    ],
)
def test_other_encryption_shapes_are_refused(document, state_recipient, state_key, refused, mutate, reason):
    tree = etree.fromstring(encrypt(document(), state_recipient))
    mutate(tree)
    refused(reason, decrypt, to_bytes(tree), state_key)


def test_decrypt_refuses_a_plain_document(document, state_key, refused):
    refused("not xenc:EncryptedData", decrypt, to_bytes(document()), state_key)


# ------------------------------------------------------------------------------------------------- keys


def test_an_expired_or_not_yet_valid_recipient_certificate_is_refused(security_pki, refused):
    path = security_pki.recipient_certificate("state")
    cert = x509.load_pem_x509_certificate(path.read_bytes())
    refused("has expired", RecipientCertificate.load, path, now=cert.not_valid_after_utc + dt.timedelta(seconds=1))
    refused("not yet valid", RecipientCertificate.load, path, now=cert.not_valid_before_utc - dt.timedelta(days=1))
    with pytest.raises(ValueError):
        RecipientCertificate.load(path, now=dt.datetime.now())  # naive clock: a programming error


def test_a_signing_certificate_is_not_an_encryption_certificate(security_pki, security_now, refused):
    refused("key encipherment", RecipientCertificate.load, security_pki.signing_certificate, now=security_now)


def test_a_key_that_does_not_match_its_certificate_is_refused(security_pki, rogue_pki, refused):
    refused("does not belong to the certificate", SigningIdentity.load,
            rogue_pki.signing_key, security_pki.signing_certificate)


def test_unreadable_key_files_are_refused(tmp_path, refused):
    bogus = tmp_path / "bogus.key"
    bogus.write_text("not a key")
    refused("not a PEM private key", PrivateKey.load, bogus)
    with pytest.raises(FileNotFoundError):  # a configuration problem, reported by the caller
        PrivateKey.load(tmp_path / "missing.key")


def test_a_passphrase_protected_signing_key_loads(tmp_path, security_pki):
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key(security_pki.signing_key.read_bytes(), password=None)
    protected = tmp_path / "protected.key"
    protected.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"correct horse"),
    ))
    identity = SigningIdentity.load(protected, security_pki.signing_certificate, b"correct horse")
    assert identity.method is SignatureMethod.RSA_SHA256
    with pytest.raises(SecurityError, match="passphrase"):
        SigningIdentity.load(protected, security_pki.signing_certificate, b"wrong")


# -------------------------------------------------------------------------------------------------- pki


def test_private_keys_are_created_0600(security_pki):
    keys = [security_pki.ca_key, security_pki.signing_key] + [
        security_pki.recipient_key(name) for name in security_pki.recipients
    ]
    for path in keys:
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600, path.name
    assert stat.S_IMODE(os.stat(security_pki.ca_certificate).st_mode) & 0o077 != 0o077


def test_certificates_have_the_right_roles(security_pki):
    load = lambda p: x509.load_pem_x509_certificate(p.read_bytes())  # noqa: E731
    ca, signing = load(security_pki.ca_certificate), load(security_pki.signing_certificate)
    state = load(security_pki.recipient_certificate("state"))
    usage = lambda c: c.extensions.get_extension_for_class(x509.KeyUsage).value  # noqa: E731
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert usage(ca).key_cert_sign and usage(ca).crl_sign
    assert usage(signing).digital_signature and usage(signing).content_commitment
    assert not usage(signing).key_encipherment
    assert usage(state).key_encipherment and not usage(state).digital_signature
    for leaf in (signing, state):
        leaf.verify_directly_issued_by(ca)
        assert not leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
        assert leaf.public_key().key_size == 3072


def test_mint_dev_pki_is_idempotent_and_adds_new_recipients(tmp_path):
    now = dt.datetime.now(dt.timezone.utc)
    first = mint_dev_pki(tmp_path / "pki", organization="Org", recipients=["a"], now=now)
    assert first.minted
    files = sorted(p for p in (tmp_path / "pki").rglob("*") if p.is_file())
    snapshot = {p: (p.read_bytes(), os.stat(p).st_mtime_ns) for p in files}
    again = mint_dev_pki(tmp_path / "pki", organization="Org", recipients=["a"], now=now)
    assert not again.minted
    assert again == first.__class__(**{**first.__dict__, "minted": False})
    assert {p: (p.read_bytes(), os.stat(p).st_mtime_ns) for p in files} == snapshot
    grown = mint_dev_pki(tmp_path / "pki", organization="Org", recipients=["a", "b"], now=now)
    assert grown.minted and grown.recipients == ("a", "b")
    assert {p: (p.read_bytes(), os.stat(p).st_mtime_ns) for p in files} == snapshot
    ca = x509.load_pem_x509_certificate(grown.ca_certificate.read_bytes())
    x509.load_pem_x509_certificate(grown.recipient_certificate("b").read_bytes()).verify_directly_issued_by(ca)
    assert stat.S_IMODE(os.stat(grown.recipient_key("b")).st_mode) == 0o600


def test_mint_dev_pki_refuses_an_incomplete_directory_and_unsafe_names(tmp_path):
    now = dt.datetime.now(dt.timezone.utc)
    (tmp_path / "pki").mkdir()
    (tmp_path / "pki" / "ca.pem").write_text("half a PKI")
    with pytest.raises(ConfigError, match="incomplete"):
        mint_dev_pki(tmp_path / "pki", organization="Org", recipients=[], now=now)
    with pytest.raises(ConfigError, match="safe file name"):
        mint_dev_pki(tmp_path / "other", organization="Org", recipients=["../escape"], now=now)
    assert not (tmp_path / "other").exists()


def test_mint_dev_pki_can_sign_with_ecdsa_p256_and_keeps_what_it_minted(tmp_path, document):
    from cryptography.hazmat.primitives.asymmetric import ec

    now = dt.datetime.now(dt.timezone.utc)
    pki = mint_dev_pki(tmp_path / "pki", organization="Org", recipients=["a"], now=now, signing_key_type="ec-p256")
    leaf = x509.load_pem_x509_certificate(pki.signing_certificate.read_bytes())
    assert isinstance(leaf.public_key(), ec.EllipticCurvePublicKey) and leaf.public_key().curve.name == "secp256r1"
    leaf.verify_directly_issued_by(x509.load_pem_x509_certificate(pki.ca_certificate.read_bytes()))
    # key transport stays RSA-OAEP: the recipients' keys are RSA whatever signs
    assert x509.load_pem_x509_certificate(pki.recipient_certificate("a").read_bytes()).public_key().key_size == 3072
    identity = SigningIdentity.load(pki.signing_key, pki.signing_certificate, now=now)
    assert identity.method is SignatureMethod.ECDSA_SHA256
    verify(etree.tostring(sign(document(), identity)), [pki.signing_certificate], now=now)
    # an existing PKI is reused as it is (no type given), and never silently replaced by another type
    assert not mint_dev_pki(tmp_path / "pki", organization="Org", recipients=["a"], now=now).minted
    before = pki.signing_key.read_bytes()
    with pytest.raises(ConfigError, match="not rsa-3072"):
        mint_dev_pki(tmp_path / "pki", organization="Org", recipients=["a"], now=now, signing_key_type="rsa-3072")
    with pytest.raises(ConfigError, match="unknown signing key type"):
        mint_dev_pki(tmp_path / "new", organization="Org", recipients=[], now=now, signing_key_type="dsa-1024")
    assert pki.signing_key.read_bytes() == before and not (tmp_path / "new").exists()
