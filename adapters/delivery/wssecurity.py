"""WS-Security for our SOAP messages: a timestamp plus an RSA-SHA256 XML Signature, and its strict verifier.

Shared by the SOAP client (:mod:`adapters.delivery.soap`) and the inbound service (:mod:`adapters.inbound`),
in zeep's shape: an object with ``apply(envelope, headers)`` and ``verify(envelope)``.

What :meth:`WsSecurity.apply` adds to ``soap:Header/wsse:Security`` (mustUnderstand)::

    wsu:Timestamp (Created, Expires)     wsse:BinarySecurityToken (our X.509 certificate)
    ds:Signature  RSA-SHA256, exclusive C14N, SHA-256 references to soap:Body, the Timestamp and every
                  WS-Addressing header; KeyInfo -> SecurityTokenReference -> the token

zeep's own Signature signs with RSA-SHA1 by default, adds no timestamp, and verifies responses against the
client's own certificate; this one does none of that. :func:`verify_envelope` trusts only what it returns:
the verified signer and the very Body element the signature covers (defeating signature wrapping: every
referenced id must occur exactly once, and the signed Body must be the envelope's own Body).
"""
from __future__ import annotations

import base64
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import xmlsec
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from lxml import etree

from transforms.model import SecurityError

SOAP11 = "http://schemas.xmlsoap.org/soap/envelope/"
WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
WSA = "http://www.w3.org/2005/08/addressing"
DS = "http://www.w3.org/2000/09/xmldsig#"
X509V3 = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-x509-token-profile-1.0#X509v3"
BASE64 = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0#Base64Binary"
RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"
EXC_C14N = "http://www.w3.org/2001/10/xml-exc-c14n#"
_WSU_ID = f"{{{WSU}}}Id"
#: Clocks of two agencies disagree a little; more than this and a timestamp is refused.
CLOCK_SKEW = timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class Verified:
    """What a verified envelope proved: who signed it, and the Body element the signature covers."""

    signer: x509.Certificate
    body: etree._Element
    message_id: str | None
    action: str | None = None


def _utc(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _security_header(envelope: etree._Element) -> etree._Element:
    header = envelope.find(f"{{{SOAP11}}}Header")
    if header is None:
        header = etree.Element(f"{{{SOAP11}}}Header")
        envelope.insert(0, header)
    security = header.find(f"{{{WSSE}}}Security")
    if security is None:
        security = etree.SubElement(header, f"{{{WSSE}}}Security", nsmap={"wsse": WSSE, "wsu": WSU})
        security.set(f"{{{SOAP11}}}mustUnderstand", "1")
    return security


def _ensure_id(node: etree._Element, prefix: str) -> str:
    value = node.get(_WSU_ID)
    if not value:
        value = f"{prefix}-{uuid.uuid4()}"
        node.set(_WSU_ID, value)
    return value


class WsSecurity:
    """Signs outgoing envelopes with one key and certificate; verifies incoming ones against pinned certs.

    ``trusted`` are the certificates whose signatures :meth:`verify` accepts (for a client: the recipient's
    receipt-signing certificate; empty: responses are not required to be signed).
    """

    def __init__(self, key: Path, certificate: Path, *, trusted: Iterable[Path] = (),
                 clock: Callable[[], datetime], ttl: timedelta = timedelta(minutes=5),
                 require_signed_responses: bool = False) -> None:
        self._key = xmlsec.Key.from_file(str(key), xmlsec.KeyFormat.PEM)
        self._certificate = x509.load_pem_x509_certificate(Path(certificate).read_bytes())
        self._certificate_b64 = base64.b64encode(self._certificate.public_bytes(serialization.Encoding.DER)).decode()
        self._trusted = [x509.load_pem_x509_certificate(Path(p).read_bytes()) for p in trusted]
        self._clock = clock
        self._ttl = ttl
        self._require = require_signed_responses or bool(self._trusted)

    def apply(self, envelope: etree._Element, headers: dict) -> tuple[etree._Element, dict]:
        """Add the timestamp, token and signature to ``envelope`` (zeep calls this after building it)."""
        sign_envelope(envelope, self._key, self._certificate_b64, self._clock(), self._ttl)
        return envelope, headers

    def verify(self, envelope: etree._Element) -> etree._Element:
        """Check a response's signature against the trusted certificates (zeep calls this on every reply)."""
        # A Fault is not a receipt: nothing in it is trusted beyond "retry" or "refused", and receivers
        # commonly send faults unsigned (ours do), so only non-fault replies must carry a valid signature.
        if self._require and envelope.find(f"{{{SOAP11}}}Body/{{{SOAP11}}}Fault") is None:
            verify_envelope(envelope, self._trusted, now=self._clock())
        return envelope


def sign_envelope(envelope: etree._Element, key: xmlsec.Key, certificate_b64: str, now: datetime,
                  ttl: timedelta = timedelta(minutes=5)) -> None:
    """Sign Body, a fresh Timestamp and the WS-Addressing headers of ``envelope`` in place."""
    security = _security_header(envelope)
    timestamp = etree.SubElement(security, f"{{{WSU}}}Timestamp")
    etree.SubElement(timestamp, f"{{{WSU}}}Created").text = _utc(now)
    etree.SubElement(timestamp, f"{{{WSU}}}Expires").text = _utc(now + ttl)
    token = etree.SubElement(security, f"{{{WSSE}}}BinarySecurityToken", ValueType=X509V3, EncodingType=BASE64)
    token.text = certificate_b64
    token_id = _ensure_id(token, "X509")
    signature = xmlsec.template.create(envelope, xmlsec.Transform.EXCL_C14N, xmlsec.Transform.RSA_SHA256, ns="ds")
    security.append(signature)
    ctx = xmlsec.SignatureContext()
    header = envelope.find(f"{{{SOAP11}}}Header")
    targets = [envelope.find(f"{{{SOAP11}}}Body"), timestamp,
               *[h for h in header if isinstance(h.tag, str) and h.tag.startswith(f"{{{WSA}}}")]]
    for target in targets:
        node_id = _ensure_id(target, "id")
        ctx.register_id(target, "Id", WSU)
        reference = xmlsec.template.add_reference(signature, xmlsec.Transform.SHA256, uri=f"#{node_id}")
        xmlsec.template.add_transform(reference, xmlsec.Transform.EXCL_C14N)
    key_info = xmlsec.template.ensure_key_info(signature)
    token_ref = etree.SubElement(key_info, f"{{{WSSE}}}SecurityTokenReference")
    etree.SubElement(token_ref, f"{{{WSSE}}}Reference", URI=f"#{token_id}", ValueType=X509V3)
    ctx.key = key
    ctx.sign(signature)


def verify_envelope(envelope: etree._Element, trusted: Iterable[x509.Certificate], *, now: datetime,
                    subject: str = "WS-Security") -> Verified:
    """Verify ``envelope``'s WS-Security header; return the signer and the signed Body, or raise SecurityError.

    Refused: no header or signature, an algorithm other than RSA-SHA256/SHA-256/exclusive C14N, a signer
    certificate that is not one of ``trusted`` (compared byte for byte), a Body or Timestamp not covered,
    an id that occurs twice, a stale or future timestamp, and any signature that does not verify.
    """
    if envelope.tag != f"{{{SOAP11}}}Envelope":
        raise SecurityError(subject, "not a SOAP 1.1 envelope")
    header = envelope.find(f"{{{SOAP11}}}Header")
    body = envelope.find(f"{{{SOAP11}}}Body")
    security = header.find(f"{{{WSSE}}}Security") if header is not None else None
    if security is None or body is None:
        raise SecurityError(subject, "no wsse:Security header")
    signature = security.find(f"{{{DS}}}Signature")
    timestamp = security.find(f"{{{WSU}}}Timestamp")
    if signature is None or timestamp is None:
        raise SecurityError(subject, "the Security header needs a Timestamp and a Signature")
    method = signature.find(f"{{{DS}}}SignedInfo/{{{DS}}}SignatureMethod")
    c14n = signature.find(f"{{{DS}}}SignedInfo/{{{DS}}}CanonicalizationMethod")
    if method is None or method.get("Algorithm") != RSA_SHA256 or c14n is None or c14n.get("Algorithm") != EXC_C14N:
        raise SecurityError(subject, "signature must be RSA-SHA256 with exclusive C14N")
    signer = _signer(envelope, security, signature, subject)
    der = signer.public_bytes(serialization.Encoding.DER)
    if not any(t.public_bytes(serialization.Encoding.DER) == der for t in trusted):
        raise SecurityError(subject, "signer certificate is not pinned for this service")
    if not (signer.not_valid_before_utc - CLOCK_SKEW <= now <= signer.not_valid_after_utc + CLOCK_SKEW):
        raise SecurityError(subject, "signer certificate is outside its validity period")
    ctx = xmlsec.SignatureContext()
    covered: list[etree._Element] = []  # the elements themselves: lxml proxies' id() is only stable while held
    for reference in signature.findall(f"{{{DS}}}SignedInfo/{{{DS}}}Reference"):
        digest = reference.find(f"{{{DS}}}DigestMethod")
        if digest is None or digest.get("Algorithm") != SHA256:
            raise SecurityError(subject, "every reference must use SHA-256")
        uri = reference.get("URI") or ""
        if not uri.startswith("#"):
            raise SecurityError(subject, "only same-document references are accepted")
        matches = [e for e in envelope.iter(etree.Element) if e.get(_WSU_ID) == uri[1:]]
        if len(matches) != 1:
            raise SecurityError(subject, "a signed id must occur exactly once")
        ctx.register_id(matches[0], "Id", WSU)
        covered.append(matches[0])
    if not _among(body, covered) or not _among(timestamp, covered):
        raise SecurityError(subject, "the signature must cover soap:Body and wsu:Timestamp")
    wsa_headers = [h for h in header if isinstance(h.tag, str) and h.tag.startswith(f"{{{WSA}}}")]
    if not all(_among(h, covered) for h in wsa_headers):
        raise SecurityError(subject, "every WS-Addressing header must be signed")
    _check_timestamp(timestamp, now, subject)
    ctx.key = xmlsec.Key.from_memory(signer.public_bytes(serialization.Encoding.PEM), xmlsec.KeyFormat.CERT_PEM)
    try:
        ctx.verify(signature)
    except xmlsec.Error:
        raise SecurityError(subject, "signature does not verify") from None
    message_id = header.findtext(f"{{{WSA}}}MessageID")
    return Verified(signer, body, message_id, header.findtext(f"{{{WSA}}}Action"))


def _among(element: etree._Element, elements: list[etree._Element]) -> bool:
    return any(element is e for e in elements)


def _signer(envelope, security, signature, subject: str) -> x509.Certificate:
    reference = signature.find(f"{{{DS}}}KeyInfo/{{{WSSE}}}SecurityTokenReference/{{{WSSE}}}Reference")
    uri = reference.get("URI", "") if reference is not None else ""
    tokens = [t for t in security.findall(f"{{{WSSE}}}BinarySecurityToken") if f"#{t.get(_WSU_ID)}" == uri]
    if len(tokens) != 1 or tokens[0].get("ValueType") != X509V3:
        raise SecurityError(subject, "the signature must reference one X.509 BinarySecurityToken")
    try:
        return x509.load_der_x509_certificate(base64.b64decode((tokens[0].text or "").strip(), validate=True))
    except ValueError:
        raise SecurityError(subject, "the X.509 token cannot be read") from None


def _check_timestamp(timestamp: etree._Element, now: datetime, subject: str) -> None:
    try:
        created = datetime.fromisoformat(timestamp.findtext(f"{{{WSU}}}Created", "").replace("Z", "+00:00"))
        expires = datetime.fromisoformat(timestamp.findtext(f"{{{WSU}}}Expires", "").replace("Z", "+00:00"))
    except ValueError:
        raise SecurityError(subject, "timestamp Created/Expires missing or malformed") from None
    if created.tzinfo is None or expires.tzinfo is None:
        raise SecurityError(subject, "timestamp must carry a time zone")
    if created - CLOCK_SKEW > now:
        raise SecurityError(subject, "timestamp is in the future")
    if expires + CLOCK_SKEW < now:
        raise SecurityError(subject, "timestamp has expired")
