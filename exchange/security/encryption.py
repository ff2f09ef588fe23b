"""W3C XML Encryption of a whole document to one recipient or several, and decryption on the receiving side.

What we write (``xmlsec1 --decrypt --privkey-pem recipient.key`` reads it)::

    <xenc:EncryptedData Type="...#Element">
      <xenc:EncryptionMethod AES-256-GCM/>
      <ds:KeyInfo><xenc:EncryptedKey>
          <xenc:EncryptionMethod RSA-OAEP (MGF1)/>
          <ds:KeyInfo><ds:X509Data><ds:X509Certificate/>   (tells the receiver which key to use)
          <xenc:CipherData/>
      </xenc:EncryptedKey></ds:KeyInfo>
      <xenc:CipherData/>

A fresh AES-256 session key comes from the operating system's CSPRNG (``secrets``) for every message. xmlsec
encrypts the content with it (EncryptedData, AES-256-GCM); each EncryptedKey is the session key wrapped with
``cryptography``'s RSA-OAEP (rsa-oaep-mgf1p: SHA-1 digest, MGF1 with SHA-1, no OAEPparams, as the algorithm
defines), written in the shape xmlsec writes it. xmlsec wrapped it itself until 2026-12 and the output has
not changed (a test compares the two shapes); it was slower because xmlsec 1.3.9 on OpenSSL 3 matches the
recipient's key to the key request by reading the key's type, which exports the whole RSA key to an
``OSSL_PARAM`` list and back, twice per EncryptedKey: a third of an encryption to an RSA-3072 certificate
(156 us -> 110 us a booking notification, ``bench/RESULTS.md``).

Several recipients (where a profile allows one message for all of them): one EncryptedKey per recipient,
each wrapping the same session key to that recipient's certificate and naming it twice, by
``ds:KeyName`` (the key id, :func:`exchange.security.keys.key_id`) and by ``ds:X509Certificate``. Each
recipient decrypts with only its own key: ``xmlsec1 --decrypt --privkey-pem own.key`` (1.2.37 tries the
EncryptedKeys in turn and uses the one its key unwraps) or :func:`decrypt`.
"""
from __future__ import annotations

import base64
import binascii
import secrets
from collections.abc import Sequence

import xmlsec
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from lxml import etree

from exchange.security._received import MAX_DOCUMENT_BYTES, parse_received
from exchange.security.algorithms import LEGACY_BLOCK_CIPHERS, BlockCipher, KeyTransport, describe
from exchange.security.keys import (
    PrivateKey,
    RecipientCertificate,
    key_id,
    public_key_digest,
)
from transforms.model.errors import SecurityError

XENC = "http://www.w3.org/2001/04/xmlenc#"
DS = "http://www.w3.org/2000/09/xmldsig#"
TYPE_ELEMENT = f"{XENC}Element"
_SUBJECT = "encryption"


def _enc(local: str) -> str:
    return f"{{{XENC}}}{local}"


def _ds(local: str) -> str:
    return f"{{{DS}}}{local}"


def encrypt(root: etree._Element, recipient: RecipientCertificate | Sequence[RecipientCertificate]) -> bytes:
    """Encrypt the whole document element to ``recipient`` (or to each of several) and return the EncryptedData.

    AES-256-GCM content encryption (Type=Element), the session key wrapped with RSA-OAEP to each recipient's
    certificate, which is also written into its EncryptedKey's KeyInfo (with the key id as ``ds:KeyName``
    when there are several). The input is not modified. The result starts with an XML declaration (UTF-8).
    Callers check each certificate's validity first (``RecipientCertificate.check``).
    """
    recipients = (recipient,) if isinstance(recipient, RecipientCertificate) else tuple(recipient)
    if not recipients:
        raise ValueError("encrypt needs at least one recipient certificate")
    if len({r.fingerprint for r in recipients}) != len(recipients):
        raise ValueError("a recipient certificate is listed twice")
    session = secrets.token_bytes(_SESSION_KEY_BYTES)
    # The template lives in a small document of its own and xmlsec encrypts the serialized element
    # (encrypt_binary): encrypt_xml would replace the node it encrypts, and so needs a copy of the input.
    template = xmlsec.template.encrypted_data_create(
        etree.Element("holder"), BlockCipher.AES256_GCM.transform, type=xmlsec.constants.TypeEncElement,
        ns="xenc",
    )
    xmlsec.template.encrypted_data_ensure_cipher_value(template)
    context = xmlsec.EncryptionContext()
    try:
        context.key = xmlsec.Key.from_binary_data(xmlsec.constants.KeyDataAes, session)
        # The bytes encrypt_xml encrypts for Type=Element: the element alone (no tail, no siblings), UTF-8.
        encrypted = context.encrypt_binary(template, etree.tostring(root, encoding="UTF-8", with_tail=False))
    except xmlsec.Error:
        raise SecurityError(_SUBJECT, "xmlsec could not encrypt the document") from None
    # ds:KeyInfo goes between EncryptionMethod and CipherData, where xmlsec's own template puts it.
    encrypted.insert(1, _key_info(session, recipients))
    return etree.tostring(encrypted, xml_declaration=True, encoding="UTF-8")


_SESSION_KEY_BYTES = 32  # AES-256
_OAEP = padding.OAEP(mgf=padding.MGF1(hashes.SHA1()), algorithm=hashes.SHA1(), label=None)
"""rsa-oaep-mgf1p as XML Encryption 1.1 defines it without DigestMethod and OAEPparams (what xmlsec wrote)."""


def _key_info(session: bytes, recipients: tuple[RecipientCertificate, ...]) -> etree._Element:
    """``ds:KeyInfo`` holding one EncryptedKey per recipient: ``session`` wrapped to its certificate.

    Laid out as xmlsec writes it (a newline before the first child and after each), so receivers see the
    bytes they always saw: EncryptionMethod (rsa-oaep-mgf1p), KeyInfo (KeyName when there are several
    recipients, then the certificate), CipherData/CipherValue (base64 in lines of 64).
    """
    key_info = etree.Element(_ds("KeyInfo"), nsmap={"ds": DS})
    key_info.text = key_info.tail = "\n"
    for each in recipients:
        try:
            wrapped = each.public_key.encrypt(session, _OAEP)
        except ValueError:
            raise SecurityError(_SUBJECT, "the session key cannot be wrapped to a recipient certificate") from None
        encrypted_key = etree.SubElement(key_info, _enc("EncryptedKey"))
        encrypted_key.text = encrypted_key.tail = "\n"
        method = etree.SubElement(encrypted_key, _enc("EncryptionMethod"),
                                  Algorithm=KeyTransport.RSA_OAEP_MGF1P.value)
        method.tail = "\n"
        recipient_info = etree.SubElement(encrypted_key, _ds("KeyInfo"))
        recipient_info.tail = "\n"
        if len(recipients) > 1:
            # A receiver holding several keys picks its EncryptedKey by this name.
            name = etree.SubElement(recipient_info, _ds("KeyName"))
            recipient_info.text, name.text, name.tail = "\n", key_id(each.certificate), "\n"
        _add_certificate(recipient_info, each.certificate_text)
        cipher_data = etree.SubElement(encrypted_key, _enc("CipherData"))
        cipher_data.text = cipher_data.tail = "\n"
        cipher_value = etree.SubElement(cipher_data, _enc("CipherValue"))
        cipher_value.text, cipher_value.tail = _base64_lines(wrapped), "\n"
    return key_info


def _base64_lines(data: bytes) -> str:
    """Base64 as xmlsec writes a CipherValue: lines of 64 characters, a newline before and after."""
    text = base64.b64encode(data).decode("ascii")
    return "\n" + "\n".join(text[i:i + 64] for i in range(0, len(text), 64)) + "\n"


def _add_certificate(key_info: etree._Element, text: str) -> None:
    """Append ``ds:X509Data/ds:X509Certificate`` to ``key_info`` with the newlines xmlsec's templates put
    around a child (one before the first child, one after each), so the output is what it used to write."""
    if len(key_info) == 0:
        key_info.text = "\n"
    data = etree.SubElement(key_info, _ds("X509Data"))
    data.text = data.tail = "\n"
    certificate = etree.SubElement(data, _ds("X509Certificate"))
    certificate.text = text
    certificate.tail = "\n"


def decrypt(
    data: bytes, key: PrivateKey, *, allow_legacy: bool = False, max_bytes: int = MAX_DOCUMENT_BYTES
) -> bytes:
    """Decrypt a document-level EncryptedData sent to ``key`` and return the plaintext document bytes.

    The bytes of :func:`decrypt_document`'s tree, with an XML declaration (UTF-8); see there.
    """
    document = decrypt_document(data, key, allow_legacy=allow_legacy, max_bytes=max_bytes)
    return etree.tostring(document, xml_declaration=True, encoding="UTF-8")


def decrypt_document(
    data: bytes, key: PrivateKey, *, allow_legacy: bool = False, max_bytes: int = MAX_DOCUMENT_BYTES
) -> etree._ElementTree:
    """Decrypt a document-level EncryptedData sent to ``key`` and return the plaintext, parsed by safexml.

    The content cipher must be AES-256-GCM (AES-CBC and 3DES-CBC only with ``allow_legacy=True``) and the
    key transport RSA-OAEP; the message must be encrypted to our key. Input over ``max_bytes`` is refused
    before parsing; the decrypted bytes pass through safexml with the same limit (a DTD, entities or a
    second root inside the ciphertext are refused), so the tree can go straight to
    :func:`exchange.security.signing.verify_document` without being serialized and parsed again. A message
    with one EncryptedKey per recipient opens with any one recipient's key.
    """
    tree = parse_received(data, _SUBJECT, max_bytes=max_bytes)
    encrypted = tree.getroot()
    if encrypted.tag != _enc("EncryptedData"):
        raise SecurityError(_SUBJECT, "the document element is not xenc:EncryptedData")
    if encrypted.get("Type") != TYPE_ELEMENT:
        raise SecurityError(_SUBJECT, "only Type=Element encryption of the whole document is accepted")
    for tag in (_enc("CipherReference"), _ds("RetrievalMethod"), _enc("AgreementMethod")):
        if next(encrypted.iter(tag), None) is not None:
            raise SecurityError(_SUBJECT, f"{etree.QName(tag).localname} is not accepted")
    _check_cipher(encrypted.find(_enc("EncryptionMethod")), allow_legacy)
    _check_encrypted_keys(encrypted, key)
    # Without Type, xmlsec hands back the decrypted bytes instead of parsing them into the tree itself.
    # We parse them with the safe loader: our limits and refusals apply to the plaintext too, a second root
    # smuggled after (or before) the real one is refused as not well-formed, and libxml2 never prints
    # fragments of decrypted content to stderr.
    del encrypted.attrib["Type"]
    context = xmlsec.EncryptionContext(key.manager)
    try:
        plaintext = context.decrypt(encrypted)
    except xmlsec.Error:
        raise SecurityError(_SUBJECT, "the message cannot be decrypted with this key") from None
    if not isinstance(plaintext, bytes):
        raise SecurityError(_SUBJECT, "the decrypted content is not a document")
    try:
        return parse_received(plaintext, _SUBJECT, max_bytes=max_bytes)
    except SecurityError as error:
        raise SecurityError(_SUBJECT, f"the decrypted content: {error.reason}") from None


def _check_cipher(method: etree._Element | None, allow_legacy: bool) -> None:
    uri = None if method is None else method.get("Algorithm")
    if uri == BlockCipher.AES256_GCM.value:
        return
    if allow_legacy and uri in LEGACY_BLOCK_CIPHERS:
        return
    raise SecurityError(_SUBJECT, f"the content cipher uses {describe(uri)}")


def _check_encrypted_keys(encrypted: etree._Element, key: PrivateKey) -> None:
    """Every EncryptedKey must use RSA-OAEP; if any names a certificate, one must be ours."""
    encrypted_keys = encrypted.findall(f"{_ds('KeyInfo')}/{_enc('EncryptedKey')}")
    if not encrypted_keys:
        raise SecurityError(_SUBJECT, "no xenc:EncryptedKey carries the content key")
    named = []
    for encrypted_key in encrypted_keys:
        method = encrypted_key.find(_enc("EncryptionMethod"))
        uri = None if method is None else method.get("Algorithm")
        if uri != KeyTransport.RSA_OAEP_MGF1P.value:
            raise SecurityError(_SUBJECT, f"the key transport uses {describe(uri)}")
        for element in encrypted_key.iterfind(f"{_ds('KeyInfo')}/{_ds('X509Data')}/{_ds('X509Certificate')}"):
            try:
                der = base64.b64decode("".join((element.text or "").split()), validate=True)
                named.append(public_key_digest(x509.load_der_x509_certificate(der).public_key()))
            except (binascii.Error, ValueError, TypeError):
                raise SecurityError(_SUBJECT, "a recipient certificate cannot be read") from None
    if named and key.public_key_sha256 not in named:
        raise SecurityError(_SUBJECT, "the message is encrypted to a different certificate")
