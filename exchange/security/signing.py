"""W3C XML Signature: enveloped signatures over the whole document, and their strict verification.

The one shape we write and the only shape we accept::

    <root> ... <ds:Signature>                      (a child of the document element; we append it last)
      <ds:SignedInfo>
        <ds:CanonicalizationMethod exclusive c14n/>
        <ds:SignatureMethod RSA-SHA256 | ECDSA-SHA256/>
        <ds:Reference URI="">                      (the whole document, so no Id lookups to wrap)
          <ds:Transforms> enveloped-signature, exclusive c14n </ds:Transforms>
          <ds:DigestMethod SHA-256/> <ds:DigestValue/>
      <ds:SignatureValue/>
      <ds:KeyInfo><ds:KeyName>key id</ds:KeyName><ds:X509Data><ds:X509Certificate/>

Verification follows signxml's rule "trust only what verify returns": the caller gets a fresh tree parsed
from the exact canonical bytes whose digest the signature covers, never the tree that was checked.
"""
from __future__ import annotations

import base64
import binascii
import copy
import datetime as dt
import hashlib
import hmac
from collections.abc import Sequence

import xmlsec
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from lxml import etree

from exchange.security._received import MAX_DOCUMENT_BYTES, parse_received
from exchange.security.algorithms import C14N, DigestMethod, SignatureMethod, Transform, describe
from exchange.security.keys import PathLike, SigningIdentity, check_validity, fingerprint, load_trusted
from transforms.model.errors import SecurityError

DS = "http://www.w3.org/2000/09/xmldsig#"
EC_NS = "http://www.w3.org/2001/10/xml-exc-c14n#"
_SUBJECT = "signature"


def _ds(local: str) -> str:
    return f"{{{DS}}}{local}"


def sign(root: etree._Element, identity: SigningIdentity) -> etree._Element:
    """Return a signed copy of ``root``: an enveloped XML Signature appended as its last child.

    The input element is not modified. The signature covers the whole document (Reference URI="") after
    the enveloped-signature transform and exclusive c14n, with SHA-256 and RSA-SHA256 (or ECDSA-SHA256
    for an EC key); the signing key id goes in ``ds:KeyInfo/ds:KeyName`` and the signing certificate in
    ``ds:KeyInfo/ds:X509Data/ds:X509Certificate``.
    """
    if next(root.iter(_ds("Signature")), None) is not None:
        raise SecurityError(_SUBJECT, "the document already contains a signature")
    signed = copy.deepcopy(root)  # a new document whose element is ``signed``
    template = xmlsec.template.create(
        signed, C14N.EXCLUSIVE.transform, identity.method.transform, ns="ds"
    )
    signed.append(template)
    reference = xmlsec.template.add_reference(template, DigestMethod.SHA256.transform, uri="")
    xmlsec.template.add_transform(reference, Transform.ENVELOPED_SIGNATURE.transform)
    xmlsec.template.add_transform(reference, C14N.EXCLUSIVE.transform)
    key_info = xmlsec.template.ensure_key_info(template)
    if identity.key_id:
        # The key id first: a receiver holding old and new keys during a rotation selects by name.
        xmlsec.template.add_key_name(key_info, identity.key_id)
    xmlsec.template.x509_data_add_certificate(xmlsec.template.add_x509_data(key_info))
    context = xmlsec.SignatureContext()
    context.key = identity.key
    try:
        context.sign(template)
    except xmlsec.Error:
        raise SecurityError(_SUBJECT, "xmlsec could not sign the document") from None
    # Nodes that xmlsec created in C are invisible to lxml's find()/iter() by tag (their names are not
    # interned in the document's dictionary); a copy re-interns them, so callers get an ordinary tree.
    return copy.deepcopy(signed)


def verify(
    data: bytes,
    trusted: Sequence[x509.Certificate | PathLike],
    *,
    now: dt.datetime | None = None,
    max_bytes: int = MAX_DOCUMENT_BYTES,
) -> etree._Element:
    """Verify an enveloped signature and return the signed document, freshly parsed, without the signature.

    ``trusted`` lists the signers' certificates (or PEM paths) we accept; the certificate embedded in the
    document only selects which of them to use and is never trusted by itself. With ``now`` the trusted
    certificate must also be inside its validity period. Raises SecurityError for any other shape than the
    one in the module docstring, for SHA-1 and other legacy algorithms, an untrusted signer, a signature
    that does not verify, or hostile XML (DTD, entities, more than ``max_bytes``, too deep).
    """
    return verify_signer(data, trusted, now=now, max_bytes=max_bytes)[0]


def verify_signer(
    data: bytes,
    trusted: Sequence[x509.Certificate | PathLike],
    *,
    now: dt.datetime | None = None,
    max_bytes: int = MAX_DOCUMENT_BYTES,
) -> tuple[etree._Element, x509.Certificate]:
    """Like :func:`verify`, and also return which of the ``trusted`` certificates the signature verified with."""
    pinned = load_trusted(trusted)
    if not pinned:
        raise SecurityError(_SUBJECT, "no trusted signer certificates were given")
    tree = parse_received(data, _SUBJECT, max_bytes=max_bytes)
    root = tree.getroot()
    signatures = list(tree.iter(_ds("Signature")))
    if len(signatures) != 1:
        raise SecurityError(_SUBJECT, f"expected exactly one ds:Signature, found {len(signatures)}")
    signature = signatures[0]
    if signature.getparent() is not root:
        raise SecurityError(_SUBJECT, "ds:Signature must be a child of the document element")
    for tag in ("RetrievalMethod", "Object", "Manifest"):
        if next(signature.iter(_ds(tag)), None) is not None:
            raise SecurityError(_SUBJECT, f"ds:{tag} is not accepted")
    shape = _check_signed_info(signature)
    certificate = _pick_trusted_certificate(signature, pinned)
    if now is not None:
        check_validity(certificate, now, f"{_SUBJECT}: signer certificate")
    _verify_with_xmlsec(signature, certificate, shape.method)
    return _signed_content(tree, signature, shape, max_bytes), certificate


class _Shape:
    """What SignedInfo says, after it has been checked against the one shape we accept."""

    def __init__(self, method: SignatureMethod, digest: DigestMethod, value: bytes, prefixes: list[str]):
        self.method, self.digest, self.value, self.prefixes = method, digest, value, prefixes


def _only_child(parent: etree._Element, local: str) -> etree._Element:
    found = parent.findall(_ds(local))
    if len(found) != 1:
        raise SecurityError(_SUBJECT, f"expected exactly one ds:{local}, found {len(found)}")
    return found[0]


def _algorithm(element: etree._Element, accepted: type, what: str):
    uri = element.get("Algorithm")
    try:
        return accepted(uri)
    except ValueError:
        raise SecurityError(_SUBJECT, f"{what} uses {describe(uri)}") from None


def _check_signed_info(signature: etree._Element) -> _Shape:
    signed_info = _only_child(signature, "SignedInfo")
    _only_child(signature, "SignatureValue")
    _algorithm(_only_child(signed_info, "CanonicalizationMethod"), C14N, "CanonicalizationMethod")
    method = _algorithm(_only_child(signed_info, "SignatureMethod"), SignatureMethod, "SignatureMethod")
    reference = _only_child(signed_info, "Reference")
    if reference.get("URI") != "":
        raise SecurityError(_SUBJECT, 'the Reference must be URI="" (the whole document)')
    transforms = _only_child(reference, "Transforms").findall(_ds("Transform"))
    uris = [t.get("Algorithm") for t in transforms]
    if uris != [Transform.ENVELOPED_SIGNATURE.value, C14N.EXCLUSIVE.value]:
        bad = next((u for u in uris if u not in (Transform.ENVELOPED_SIGNATURE.value, C14N.EXCLUSIVE.value)), None)
        detail = f"; it uses {describe(bad)}" if bad is not None else ""
        raise SecurityError(
            _SUBJECT, f"the Reference transforms must be enveloped-signature then exclusive c14n{detail}"
        )
    prefixes: list[str] = []
    inclusive = transforms[1].find(f"{{{EC_NS}}}InclusiveNamespaces")
    if inclusive is not None:
        prefixes = (inclusive.get("PrefixList") or "").split()
    digest = _algorithm(_only_child(reference, "DigestMethod"), DigestMethod, "DigestMethod")
    try:
        value = base64.b64decode(_only_child(reference, "DigestValue").text or "", validate=False)
    except (binascii.Error, ValueError):
        raise SecurityError(_SUBJECT, "DigestValue is not base64") from None
    return _Shape(method, digest, value, prefixes)


def _pick_trusted_certificate(
    signature: etree._Element, pinned: dict[str, x509.Certificate]
) -> x509.Certificate:
    """Return the trusted certificate named by the embedded ones (compared by SHA-256 fingerprint)."""
    key_info = signature.find(_ds("KeyInfo"))
    embedded = [] if key_info is None else key_info.findall(f"{_ds('X509Data')}/{_ds('X509Certificate')}")
    if not embedded:
        raise SecurityError(_SUBJECT, "no ds:X509Certificate names the signer")
    for element in embedded:
        try:
            der = base64.b64decode("".join((element.text or "").split()), validate=True)
        except (binascii.Error, ValueError):
            raise SecurityError(_SUBJECT, "an embedded certificate cannot be read") from None
        # The fingerprint is the SHA-256 of the DER bytes: no need to parse what we only compare.
        trusted = pinned.get(hashlib.sha256(der).hexdigest())
        if trusted is not None:
            return trusted
    raise SecurityError(_SUBJECT, "the signer's certificate is not one of the trusted certificates")


#: Trusted certificate fingerprint -> its xmlsec key. Loading a key is a third of a verification's cost;
#: the trusted set is small and fixed per process, so keep them (bounded, in case it is not).
_VERIFICATION_KEYS: dict[str, xmlsec.Key] = {}
_MAX_CACHED_KEYS = 64


def _verification_key(certificate: x509.Certificate) -> xmlsec.Key:
    digest = fingerprint(certificate)
    key = _VERIFICATION_KEYS.get(digest)
    if key is None:
        try:
            key = xmlsec.Key.from_memory(
                certificate.public_bytes(serialization.Encoding.PEM), xmlsec.constants.KeyDataFormatCertPem
            )
        except xmlsec.Error:
            raise SecurityError(_SUBJECT, "the trusted certificate's key cannot be used") from None
        if len(_VERIFICATION_KEYS) >= _MAX_CACHED_KEYS:
            _VERIFICATION_KEYS.clear()
        _VERIFICATION_KEYS[digest] = key
    return key


def _verify_with_xmlsec(
    signature: etree._Element, certificate: x509.Certificate, method: SignatureMethod
) -> None:
    context = xmlsec.SignatureContext()
    # The key comes from our trusted certificate, so xmlsec never takes one from KeyInfo.
    context.key = _verification_key(certificate)
    # Belt and braces: xmlsec itself refuses any transform outside the accepted shape.
    for transform in (Transform.ENVELOPED_SIGNATURE, C14N.EXCLUSIVE, DigestMethod.SHA256):
        context.enable_reference_transform(transform.transform)
    for transform in (C14N.EXCLUSIVE, method):
        context.enable_signature_transform(transform.transform)
    try:
        context.verify(signature)
    except xmlsec.Error:
        raise SecurityError(_SUBJECT, "the signature does not verify") from None


def _signed_content(
    tree: etree._ElementTree, signature: etree._Element, shape: _Shape, max_bytes: int
) -> etree._Element:
    """Apply the Reference's transforms ourselves, check the digest, and parse the result afresh."""
    _remove_keeping_tail(signature)
    canonical = etree.tostring(
        tree,
        method="c14n",
        exclusive=True,
        with_comments=False,  # URI="" drops comments before the transforms run
        inclusive_ns_prefixes=shape.prefixes or None,
    )
    digest = hashlib.new(shape.digest.hashlib_name, canonical).digest()
    if not hmac.compare_digest(digest, shape.value):
        raise SecurityError(_SUBJECT, "the signed content does not match the Reference digest")
    return parse_received(canonical, _SUBJECT, max_bytes=max_bytes).getroot()


def _remove_keeping_tail(element: etree._Element) -> None:
    """Remove ``element`` but keep the text after it, as the enveloped-signature transform does."""
    parent = element.getparent()
    tail = element.tail
    if tail:
        previous = element.getprevious()
        if previous is not None:
            previous.tail = (previous.tail or "") + tail
        else:
            parent.text = (parent.text or "") + tail
    parent.remove(element)
