"""SOAP delivery (zeep): our WSDL's SubmitMessage, WS-Security, WS-Addressing, mutual TLS, timeouts.

Each message goes as the document/literal ``Payload`` of ``SubmitMessageRequest`` (the encrypted message
element itself, not base64), with ``PayloadDigest`` = SHA-256 of its exclusive canonical form (with comments) so the
receiver can check it whatever whitespace or prefixes the envelope gives it. The header carries
``wsa:MessageID`` = ``urn:uuid:<message id>``, ``wsa:To`` and ``wsa:Action``, and a WS-Security timestamp
and RSA-SHA256 signature over Body, Timestamp and those headers (:mod:`adapters.delivery.wssecurity`).
TLS: the server must chain to ``ca_bundle`` (verification always on) and we present our client certificate.

The receiver is idempotent per MessageID, so resending after a timeout or a lost response never makes a
second copy; the receipt it returns (signed, checked against the pinned ``receipt_certificate`` when set)
must echo our MessageID and digest.

Errors are mapped at this seam: a SOAP Fault ``Client`` (refused: invalid, unauthorized) is permanent, a
Fault ``Server``, HTTP 5xx/408/429, a timeout or a broken connection is retryable; a TLS failure or a receipt
that does not verify is a SecurityError. Messages name the operation and the kind, never the payload.
"""
from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import requests
from lxml import etree

from adapters.delivery.wssecurity import WSA, WsSecurity
from niem_iepd import safexml
from niem_iepd.wsdl import SUBMIT_ACTION, wsdl_path
from transforms.model import PermanentError, Receipt, RetryableError, SecurityError

_BINDING = "{http://niem-exchange.org/ns/wsdl/exchange/1.0/}MessageExchangeBinding"


@dataclass(frozen=True, slots=True)
class SoapSettings:
    """Where and how to call. Paths name files; the settings hold no secret value."""

    endpoint: str
    client_certificate: Path
    client_key: Path
    ca_bundle: Path
    signing_key: Path
    signing_certificate: Path
    wsdl: str | None = None
    receipt_certificate: Path | None = None
    connect_timeout: float = 10.0
    timeout: float = 30.0


def payload_digest(element: etree._Element) -> str:
    """SHA-256 (hex) of the exclusive canonical form (with comments) of ``element``: the WSDL's ``PayloadDigest``.

    With comments because that is what ``xmllint --exc-c14n`` produces, so a vendor with standard tools can
    compute the same value (see adapters/inbound/examples/submit-with-curl.sh).
    """
    return hashlib.sha256(canonical(element)).hexdigest()


def canonical(element: etree._Element) -> bytes:
    """Exclusive XML canonical form, with comments, of ``element`` on its own."""
    return etree.tostring(element, method="c14n", exclusive=True, with_comments=True)


class SoapTransport:
    """Deliver messages by calling the recipient's SubmitMessage operation; see the module docstring."""

    def __init__(self, settings: SoapSettings, *, clock: Callable[[], datetime], name: str = "soap") -> None:
        self.name = name
        self._settings = settings
        self._clock = clock
        self._service = None
        self._session: requests.Session | None = None

    def _client(self):
        if self._service is not None:
            return self._service
        import zeep
        from zeep.transports import Transport

        s = self._settings
        session = requests.Session()
        # requests lets REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE in the environment override session.verify; the
        # pinned CA bundle must win, so the environment is not consulted (no env proxies either).
        session.trust_env = False
        session.verify = str(s.ca_bundle)
        session.cert = (str(s.client_certificate), str(s.client_key))
        transport = Transport(session=session, timeout=s.connect_timeout,
                              operation_timeout=(s.connect_timeout, s.timeout))
        settings = zeep.Settings(strict=True, forbid_dtd=True, forbid_entities=True, forbid_external=True,
                                 xml_huge_tree=False)
        wsse = WsSecurity(s.signing_key, s.signing_certificate, clock=self._clock,
                          trusted=[s.receipt_certificate] if s.receipt_certificate else ())
        client = zeep.Client(s.wsdl or str(wsdl_path()), transport=transport, settings=settings, wsse=wsse)
        self._session = session
        self._service = client.create_service(_BINDING, s.endpoint)
        return self._service

    def deliver(self, message_id: str, payload: bytes, sha256: str) -> Receipt:
        """Submit one message and return the receiver's receipt (idempotent per ``message_id``)."""
        import zeep.exceptions

        operation = f"soap deliver {message_id}"
        if hashlib.sha256(payload).hexdigest() != sha256:
            raise PermanentError(operation, "payload does not match its SHA-256")
        try:
            element = safexml.parse(payload).getroot()
        except safexml.UnsafeXMLError as exc:
            raise PermanentError(operation, exc.reason) from None
        digest = payload_digest(element)
        headers = _addressing(message_id, self._settings.endpoint)
        try:
            service = self._client()
            reply = service.SubmitMessage(MessageID=message_id, PayloadDigest=digest,
                                          Payload={"_value_1": element}, _soapheaders=headers)
        except zeep.exceptions.Fault as fault:
            code = (fault.code or "").rsplit(":", 1)[-1]
            if code == "Client":
                raise PermanentError(operation, "refused by the receiver (SOAP Fault Client)") from None
            raise RetryableError(operation, f"receiver fault ({code or 'unknown'})") from None
        except zeep.exceptions.TransportError as exc:
            status = exc.status_code
            if status >= 500 or status in (408, 429):
                raise RetryableError(operation, f"HTTP {status}") from None
            raise PermanentError(operation, f"HTTP {status}") from None
        except zeep.exceptions.SignatureVerificationFailed:
            raise SecurityError(operation, "receipt signature does not verify") from None
        except requests.exceptions.SSLError:
            self.close()
            raise SecurityError(operation, "TLS handshake refused (server certificate not trusted, or our "
                                "client certificate refused)") from None
        except requests.exceptions.Timeout:
            self.close()
            raise RetryableError(operation, "timed out") from None
        except (requests.exceptions.ConnectionError, OSError) as exc:
            self.close()
            raise RetryableError(operation, type(exc).__name__) from None
        except zeep.exceptions.XMLSyntaxError:
            raise RetryableError(operation, "response is not well-formed XML") from None
        except zeep.exceptions.Error as exc:  # a reply that does not match the WSDL: the receiver may recover
            raise RetryableError(operation, f"unexpected response ({type(exc).__name__})") from None
        if reply.MessageID != message_id or reply.PayloadDigest != digest:
            raise PermanentError(operation, "receipt does not match the message sent")
        return Receipt(message_id, f"{self._settings.endpoint}#receipt={reply.ReceiptID}", sha256, self._clock(),
                       self.name)

    def close(self) -> None:
        """Drop the HTTP session (the next delivery opens a new one)."""
        if self._session is not None:
            self._session.close()
        self._session = self._service = None


def _addressing(message_id: str, endpoint: str) -> list[etree._Element]:
    """WS-Addressing headers: our message id as the MessageID, so the receiver can deduplicate on it."""
    elements = []
    for name, value in (("Action", SUBMIT_ACTION), ("MessageID", f"urn:uuid:{message_id}"), ("To", endpoint)):
        element = etree.Element(f"{{{WSA}}}{name}", nsmap={"wsa": WSA})
        element.text = value
        elements.append(element)
    return elements

