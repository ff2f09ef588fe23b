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

Verification follows signxml's rule "trust only what verify returns": the caller gets the signed content and
nothing else, never the bytes or a tree it handed in. The document is parsed once, through the safe parser;
xmlsec verifies that tree, and what is returned is that tree reduced to what the Reference digest covers
(see ``_keep_signed_content``).
"""
from __future__ import annotations

import binascii
import copy
import datetime as dt
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass

import xmlsec
from cryptography import x509
from lxml import etree

from exchange.security._received import MAX_DOCUMENT_BYTES, parse_received
from exchange.security.algorithms import C14N, DigestMethod, SignatureMethod, Transform, describe
from exchange.security.keys import PathLike, SigningIdentity, TrustedSigners, check_validity
from transforms.model.errors import SecurityError

DS = "http://www.w3.org/2000/09/xmldsig#"
EC_NS = "http://www.w3.org/2001/10/xml-exc-c14n#"
_SUBJECT = "signature"


def _ds(local: str) -> str:
    return f"{{{DS}}}{local}"


_SIGNATURE = _ds("Signature")
#: Indirections we never follow: a signature that holds one of these is refused outright.
_REFUSED_IN_SIGNATURE = (_ds("RetrievalMethod"), _ds("Object"), _ds("Manifest"))
_KEY_INFO = _ds("KeyInfo")
_EMBEDDED_CERTIFICATE = f"{_ds('X509Data')}/{_ds('X509Certificate')}"
#: Base64 with the line breaks and indentation signers put in it, and nothing else.
_BASE64 = re.compile(r"[A-Za-z0-9+/=\s]+")


def sign(root: etree._Element, identity: SigningIdentity) -> etree._Element:
    """Return a signed copy of ``root``: an enveloped XML Signature appended as its last child.

    The input element is not modified. The signature covers the whole document (Reference URI="") after
    the enveloped-signature transform and exclusive c14n, with SHA-256 and RSA-SHA256 (or ECDSA-SHA256
    for an EC key); the signing key id goes in ``ds:KeyInfo/ds:KeyName`` and the signing certificate in
    ``ds:KeyInfo/ds:X509Data/ds:X509Certificate``.
    """
    _refuse_signed(root)
    signed = copy.deepcopy(root)  # a new document whose element is ``signed``
    _append_signature(signed, identity)
    # Nodes that xmlsec created in C are invisible to lxml's find()/iter() by tag (their names are not
    # interned in the document's dictionary); a copy re-interns them, so callers get an ordinary tree.
    return copy.deepcopy(signed)


def sign_to_serialize(root: etree._Element, identity: SigningIdentity) -> etree._Element:
    """:func:`sign` for a tree that is only serialized next (the pipeline hands it to ``encrypt``).

    When ``root`` is alone in its document (no parent, no comment or processing instruction beside it, no
    DTD: what a copy of it would be), the signature is appended to ``root`` itself and ``root`` is returned,
    so the caller gives that tree up; otherwise a copy is signed, as :func:`sign` does. Either way the
    serialization is the one :func:`sign` gives, without its two copies of the document (~14 us each for a
    booking notification), but the signature's elements are invisible to ``find()`` and ``iter()`` by tag.
    """
    _refuse_signed(root)
    tree = root.getroottree()
    alone = (root.getparent() is None and root.getprevious() is None and root.getnext() is None
             and tree.docinfo.internalDTD is None)
    signed = root if alone else copy.deepcopy(root)
    _append_signature(signed, identity)
    return signed


def _refuse_signed(root: etree._Element) -> None:
    if next(root.iter(_ds("Signature")), None) is not None:
        raise SecurityError(_SUBJECT, "the document already contains a signature")


def _append_signature(signed: etree._Element, identity: SigningIdentity) -> None:
    """Append the signature template to ``signed`` (a document's root element) and have xmlsec fill it."""
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
    # Filled in here, not by xmlsec from a key carrying the certificate: see SigningIdentity.
    certificate = xmlsec.template.x509_data_add_certificate(xmlsec.template.add_x509_data(key_info))
    certificate.text = identity.certificate_base64
    context = xmlsec.SignatureContext()
    context.key = identity.key
    try:
        context.sign(template)
    except xmlsec.Error:
        raise SecurityError(_SUBJECT, "xmlsec could not sign the document") from None


def verify(
    data: bytes,
    trusted: TrustedSigners | Sequence[x509.Certificate | PathLike],
    *,
    now: dt.datetime | None = None,
    max_bytes: int = MAX_DOCUMENT_BYTES,
) -> etree._Element:
    """Verify an enveloped signature and return the signed document without the signature.

    ``trusted`` lists the signers' certificates (or PEM paths, or a :class:`TrustedSigners` built once) we
    accept; the certificate embedded in the document only selects which of them to use and is never trusted
    by itself. With ``now`` the trusted certificate must also be inside its validity period. Raises
    SecurityError for any other shape than the one in the module docstring, for SHA-1 and other legacy
    algorithms, an untrusted signer, a signature that does not verify, or hostile XML (DTD, entities, more
    than ``max_bytes``, too deep).
    """
    return verify_signer(data, trusted, now=now, max_bytes=max_bytes)[0]


def verify_signer(
    data: bytes,
    trusted: TrustedSigners | Sequence[x509.Certificate | PathLike],
    *,
    now: dt.datetime | None = None,
    max_bytes: int = MAX_DOCUMENT_BYTES,
) -> tuple[etree._Element, x509.Certificate]:
    """Like :func:`verify`, and also return which of the ``trusted`` certificates the signature verified with."""
    signers = TrustedSigners.load(trusted)
    if not signers:
        raise SecurityError(_SUBJECT, "no trusted signer certificates were given")
    return verify_document(parse_received(data, _SUBJECT, max_bytes=max_bytes), signers, now=now)


def verify_document(
    tree: etree._ElementTree, trusted: TrustedSigners, *, now: dt.datetime | None = None
) -> tuple[etree._Element, x509.Certificate]:
    """Verify a document already parsed by :func:`niem_iepd.safexml.parse` and return (signed content, signer).

    For callers that hold the safely parsed tree already (``receive`` gets one from ``decrypt_document``), so
    the bytes are not serialized and parsed again. The tree is consumed: the signature, and every comment
    (outside what ``URI=""`` signs), are removed from it in place, and so are namespace declarations that no
    element or attribute name uses (exclusive c14n does not sign them). What is left is exactly the content
    whose canonical form the Reference digest covers.
    """
    if not trusted:
        raise SecurityError(_SUBJECT, "no trusted signer certificates were given")
    root = tree.getroot()
    signatures = list(tree.iter(_SIGNATURE))
    if len(signatures) != 1:
        raise SecurityError(_SUBJECT, f"expected exactly one ds:Signature, found {len(signatures)}")
    signature = signatures[0]
    if signature.getparent() is not root:
        raise SecurityError(_SUBJECT, "ds:Signature must be a child of the document element")
    shape = _examine(signature)
    fingerprint = _pick_trusted(shape.embedded, trusted)
    certificate = trusted.certificates[fingerprint]
    if now is not None:
        check_validity(certificate, now, f"{_SUBJECT}: signer certificate")
    _verify_with_xmlsec(signature, trusted.keys[fingerprint], shape.method)
    _keep_signed_content(root, signature, shape.prefixes)
    return root, certificate


@dataclass(frozen=True, slots=True)
class _Shape:
    """What a ds:Signature says, once it has passed the shape checks."""

    method: SignatureMethod
    #: InclusiveNamespaces/@PrefixList of the exclusive c14n transform (usually empty).
    prefixes: tuple[str, ...]
    #: SHA-256 of each embedded ds:X509Certificate in document order; None for one that is not base64.
    embedded: tuple[str | None, ...]


def _examine(signature: etree._Element) -> _Shape:
    """Check ``signature`` against the one accepted shape (module docstring) and say what it names.

    The checks read element names, nesting, attributes and the embedded certificates, never the DigestValue
    or SignatureValue text; and every message from one sender has the same ds:Signature but for those two
    texts. So the signature serialized without them is a complete key for the outcome, and an accepted
    shape is remembered instead of walked again (the walk costs more lxml calls than anything else here).
    Only signatures without comments or processing instructions are remembered: then every '>' in the
    serialization ends a tag (text escapes it), and the text cut out is exactly those two elements' text.
    Refusals are never remembered, so each one comes from the full walk with its specific reason.
    """
    key = None
    if next(signature.iter(etree.Comment, etree.ProcessingInstruction), None) is None:
        serialized = etree.tostring(signature, with_tail=False)
        key = _cut_text_after(_cut_text_after(serialized, b"DigestValue>"), b"SignatureValue>")
        known = _ACCEPTED_SHAPES.get(key)
        if known is not None:
            return known
    shape = _walk_signature(signature)
    if key is not None:
        if len(_ACCEPTED_SHAPES) >= _MAX_ACCEPTED_SHAPES:
            _ACCEPTED_SHAPES.clear()
        _ACCEPTED_SHAPES[key] = shape
    return shape


#: Signatures (without their DigestValue and SignatureValue text) that passed the full walk.
_ACCEPTED_SHAPES: dict[bytes, _Shape] = {}
_MAX_ACCEPTED_SHAPES = 64


def _cut_text_after(serialized: bytes, tag_end: bytes) -> bytes:
    """``serialized`` without the text that follows the first ``tag_end`` (up to the next tag)."""
    start = serialized.find(tag_end)
    if start < 0:
        return serialized
    start += len(tag_end)
    end = serialized.find(b"<", start)
    return serialized[:start] + serialized[end:] if end >= 0 else serialized[:start]


def _walk_signature(signature: etree._Element) -> _Shape:
    """The full shape checks, in the order their refusals are reported."""
    refused = next(signature.iter(*_REFUSED_IN_SIGNATURE), None)
    if refused is not None:
        raise SecurityError(_SUBJECT, f"ds:{etree.QName(refused).localname} is not accepted")
    parts = _children(signature)
    signed_info = _only(parts, "SignedInfo")
    _only(parts, "SignatureValue")
    method, prefixes = _walk_signed_info(signed_info)
    key_info = signature.find(_KEY_INFO)
    embedded = [] if key_info is None else key_info.findall(_EMBEDDED_CERTIFICATE)
    if not embedded:
        raise SecurityError(_SUBJECT, "no ds:X509Certificate names the signer")
    return _Shape(method, prefixes, tuple(_embedded_fingerprint(e.text or "") for e in embedded))


def _children(parent: etree._Element) -> dict[object, list[etree._Element]]:
    """``parent``'s child elements grouped by tag, in one pass (the shape checks ask for several tags)."""
    grouped: dict[object, list[etree._Element]] = {}
    for child in parent:
        grouped.setdefault(child.tag, []).append(child)
    return grouped


def _only(grouped: dict[object, list[etree._Element]], local: str) -> etree._Element:
    found = grouped.get(_ds(local), ())
    if len(found) != 1:
        raise SecurityError(_SUBJECT, f"expected exactly one ds:{local}, found {len(found)}")
    return found[0]


def _algorithm(element: etree._Element, accepted: type, what: str):
    uri = element.get("Algorithm")
    try:
        return accepted(uri)
    except ValueError:
        raise SecurityError(_SUBJECT, f"{what} uses {describe(uri)}") from None


_ACCEPTED_TRANSFORMS = [Transform.ENVELOPED_SIGNATURE.value, C14N.EXCLUSIVE.value]


def _walk_signed_info(signed_info: etree._Element) -> tuple[SignatureMethod, tuple[str, ...]]:
    info = _children(signed_info)
    _algorithm(_only(info, "CanonicalizationMethod"), C14N, "CanonicalizationMethod")
    method = _algorithm(_only(info, "SignatureMethod"), SignatureMethod, "SignatureMethod")
    reference = _only(info, "Reference")
    if reference.get("URI") != "":
        raise SecurityError(_SUBJECT, 'the Reference must be URI="" (the whole document)')
    inside = _children(reference)
    transforms = _only(inside, "Transforms").findall(_ds("Transform"))
    uris = [t.get("Algorithm") for t in transforms]
    if uris != _ACCEPTED_TRANSFORMS:
        bad = next((u for u in uris if u not in _ACCEPTED_TRANSFORMS), None)
        detail = f"; it uses {describe(bad)}" if bad is not None else ""
        raise SecurityError(
            _SUBJECT, f"the Reference transforms must be enveloped-signature then exclusive c14n{detail}"
        )
    prefixes: tuple[str, ...] = ()
    inclusive = transforms[1].find(f"{{{EC_NS}}}InclusiveNamespaces")
    if inclusive is not None:
        prefixes = tuple((inclusive.get("PrefixList") or "").split())
    _algorithm(_only(inside, "DigestMethod"), DigestMethod, "DigestMethod")
    _only(inside, "DigestValue")
    return method, prefixes


def _pick_trusted(embedded: tuple[str | None, ...], trusted: TrustedSigners) -> str:
    """Return the fingerprint of the first trusted certificate among the embedded ones (by SHA-256)."""
    for digest in embedded:
        if digest is None:
            raise SecurityError(_SUBJECT, "an embedded certificate cannot be read")
        if digest in trusted.certificates:
            return digest
    raise SecurityError(_SUBJECT, "the signer's certificate is not one of the trusted certificates")


def _embedded_fingerprint(text: str) -> str | None:
    """SHA-256 of the DER bytes in an ``ds:X509Certificate`` text (None if it is not base64).

    The fingerprint only selects which pinned certificate to use, so the DER is hashed, never parsed.
    """
    if not _BASE64.fullmatch(text):
        return None
    try:
        der = binascii.a2b_base64(text)  # skips the line breaks the pattern allows
    except (binascii.Error, ValueError):
        return None
    return hashlib.sha256(der).hexdigest()


def _verify_with_xmlsec(signature: etree._Element, key: xmlsec.Key, method: SignatureMethod) -> None:
    context = xmlsec.SignatureContext()
    # The key is our trusted certificate's public key, so xmlsec never takes one from KeyInfo.
    context.key = key
    # Belt and braces: xmlsec itself refuses any transform outside the accepted shape.
    for transform in (Transform.ENVELOPED_SIGNATURE, C14N.EXCLUSIVE, DigestMethod.SHA256):
        context.enable_reference_transform(transform.transform)
    for transform in (C14N.EXCLUSIVE, method):
        context.enable_signature_transform(transform.transform)
    try:
        context.verify(signature)
    except xmlsec.Error:
        raise SecurityError(_SUBJECT, "the signature does not verify") from None


def _keep_signed_content(root: etree._Element, signature: etree._Element, prefixes: tuple[str, ...]) -> None:
    """Reduce the verified tree, in place, to what the Reference covered: nothing the digest did not sign.

    The shape checks pin the Reference to URI="" with exactly the enveloped-signature transform then exclusive
    c14n, and ``signature`` is the only ds:Signature and a child of ``root``. So the digest xmlsec checked is
    over this very tree minus ``signature`` (the enveloped transform), minus comments (URI="" drops them),
    canonicalized. Canonicalization also drops namespace declarations that no element or attribute name in
    their scope uses (unless InclusiveNamespaces lists their prefix): those are unsigned, so they go too.
    Everything else in the tree is in the canonical bytes, so the tree left is the signed content, without
    serializing and re-parsing it (which is what verification used to do, at twice the cost).
    """
    _remove_keeping_tail(signature)
    # Comments inside the document element and next to it; the text around each stays (with_tail=False).
    etree.strip_elements(root.getroottree(), etree.Comment, with_tail=False)
    etree.cleanup_namespaces(root, keep_ns_prefixes=prefixes or None)


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
