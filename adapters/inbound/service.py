"""Our WSDL, served: SubmitMessage for senders, PullMessages and AcknowledgeMessage for pull recipients.

Every request: size limit, safe parse, WS-Security verified against the pinned certificates (vendors for
SubmitMessage, pull recipients for the other two), then the one operation the signed Body holds. Every
answer is signed by the service's own key. PullMessages/AcknowledgeMessage are in :mod:`adapters.inbound.pickup`.

SubmitMessage: verify, check the payload, validate against the IEPD, store, sign a receipt.

A request is refused with a SOAP 1.1 Fault (HTTP 500) whose ``faultcode`` tells the sender what to do:
``soap:Client`` = do not resend it unchanged (hostile or malformed XML, bad or unpinned signature, stale
timestamp, digest mismatch, invalid against the IEPD), ``soap:Server`` = transient, retry. Fault strings name
the check that failed and, for IEPD errors, the element path; never a value from the message.

Accepted messages land in ``store`` as ``<MessageID>.xml`` (the payload's exclusive canonical form, written
to a temporary name, fsynced and renamed) and ``<MessageID>.receipt.json``; an optional ``on_received``
callable (the composition root passes one from ``exchange/``) sees each new message first. A MessageID that
is already stored is not stored again: the first receipt is returned with Status ``duplicate``, which makes
the operation safe to retry.

Mutual TLS is enforced by the server (``serve``: ``ssl_cert_reqs=CERT_REQUIRED`` against ``client_ca``), which
also hands the app the client's certificate (:mod:`adapters.inbound.tls`): pull recipients are identified by it.
"""
from __future__ import annotations

import hashlib
import json
import os
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from lxml import etree
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from adapters.delivery.soap import canonical as canonical_form
from adapters.delivery.wssecurity import SOAP11, WSA, Verified, WsSecurity, verify_envelope
from adapters.inbound import pickup
from adapters.inbound.faults import Refused as _Refused
from adapters.inbound.faults import fault_envelope as _fault
from adapters.inbound.tls import client_certificate, server_config
from niem_iepd import safexml, validator
from niem_iepd.wsdl import ACKNOWLEDGE_ACTION, PULL_ACTION, TARGET_NAMESPACE, wsdl_path
from transforms.model import PermanentError, RecordError, SecurityError

XENC = "http://www.w3.org/2001/04/xmlenc#"
_TNS = TARGET_NAMESPACE
_CONTENT_TYPE = "text/xml; charset=utf-8"


@dataclass(frozen=True, slots=True)
class Submission:
    """One accepted message, as ``on_received`` sees it (``plaintext`` is None when it stayed encrypted)."""

    message_id: str
    payload: bytes
    plaintext: bytes | None
    message_type: str | None
    signer: str
    received_at: datetime


@dataclass(frozen=True)
class InboundSettings:
    """What the service needs. ``trusted_signers`` are the pinned vendor certificates (PEM files).

    ``mailbox`` and ``pull_recipients`` enable PullMessages/AcknowledgeMessage (without them those operations
    are refused); ``max_pull`` caps MaxMessages, ``max_pull_bytes`` the payload bytes of one response.
    """

    store: Path
    signing_key: Path
    signing_certificate: Path
    trusted_signers: tuple[Path, ...]
    clock: Callable[[], datetime]
    public_url: str = "https://localhost:8443/soap/exchange"
    path: str = "/soap/exchange"
    max_bytes: int = 20_000_000
    decrypt: Callable[[bytes], bytes] | None = field(default=None, repr=False)
    on_received: Callable[[Submission], None] | None = field(default=None, repr=False)
    mailbox: pickup.Mailbox | None = field(default=None, repr=False)
    pull_recipients: tuple[pickup.PullRecipient, ...] = ()
    max_pull: int = 100
    max_pull_bytes: int = 16_000_000


class InboundService:
    """The request handling behind the ASGI app (plain methods: testable without a server)."""

    def __init__(self, settings: InboundSettings) -> None:
        self.settings = settings
        self._signer = WsSecurity(settings.signing_key, settings.signing_certificate, clock=settings.clock)
        self._trusted = [x509.load_pem_x509_certificate(Path(p).read_bytes()) for p in settings.trusted_signers]
        self._recipients = pickup.Recipients(settings.pull_recipients)
        self._lock = threading.Lock()  # check-then-store of one MessageID must not interleave
        settings.store.mkdir(parents=True, exist_ok=True)
        wsdl = safexml.parse_trusted_file(wsdl_path())
        for address in wsdl.iter("{http://schemas.xmlsoap.org/wsdl/soap/}address"):
            address.set("location", settings.public_url)
        self.wsdl = etree.tostring(wsdl, xml_declaration=True, encoding="utf-8")

    def handle(self, body: bytes, tls_certificate: bytes | None = None) -> tuple[int, bytes]:
        """Process one POSTed envelope; return (HTTP status, response envelope).

        ``tls_certificate``: DER of the client certificate the TLS layer verified (identifies pull recipients).
        """
        try:
            return 200, self._dispatch(body, tls_certificate)
        except _Refused as refused:
            return 500, _fault(refused.code, refused.reason)
        except Exception:  # never leak internals (or payloads) into a fault; the sender may retry
            return 500, _fault("Server", "internal error; retry later")

    def _dispatch(self, body: bytes, tls_certificate: bytes | None) -> bytes:
        now = self.settings.clock()
        if len(body) > self.settings.max_bytes:
            raise _Refused("Client", "request too large")
        try:
            envelope = safexml.parse(body, max_bytes=self.settings.max_bytes).getroot()
        except safexml.UnsafeXMLError as exc:
            raise _Refused("Client", exc.reason) from None
        try:
            verified = verify_envelope(envelope, [*self._trusted, *self._recipients.signers], now=now,
                                       subject="WS-Security")
        except SecurityError as exc:
            raise _Refused("Client", f"WS-Security: {exc.reason}") from None
        operations = [c for c in verified.body if isinstance(c.tag, str)]  # only the signed Body counts
        if len(operations) != 1 or len(verified.body) != 1:
            raise _Refused("Client", "Body must hold exactly one operation request")
        request = operations[0]
        if request.tag == f"{{{_TNS}}}SubmitMessageRequest":
            if not _pinned(verified.signer, self._trusted):
                raise _Refused("Client", "WS-Security: signer certificate is not pinned for this service")
            return self._submit(verified, request, now)
        if request.tag in (f"{{{_TNS}}}PullMessagesRequest", f"{{{_TNS}}}AcknowledgeMessageRequest"):
            return self._pickup(verified, request, tls_certificate, now)
        raise _Refused("Client", "unknown operation")

    def _pickup(self, verified: Verified, request: etree._Element, tls_certificate: bytes | None,
                now: datetime) -> bytes:
        """PullMessages or AcknowledgeMessage for the recipient both certificates identify."""
        mailbox = self.settings.mailbox
        if mailbox is None:
            raise _Refused("Client", "this service has no pull recipients")
        pulling = request.tag == f"{{{_TNS}}}PullMessagesRequest"
        action = PULL_ACTION if pulling else ACKNOWLEDGE_ACTION
        if (verified.action or "").strip() != action:
            raise _Refused("Client", f"wsa:Action must be {action}")
        recipient = self._recipients.identify(verified.signer, tls_certificate)
        if pulling:
            limit = pickup.read_pull(request, self.settings.max_pull)
            return self._respond(action + "Response", verified.message_id,
                                 pickup.pull_body(mailbox.pull(recipient, limit, now,
                                                                          max_bytes=self.settings.max_pull_bytes)))
        message_id, sha256, receipt_id = pickup.read_acknowledgement(request)
        try:
            ack = mailbox.acknowledge(recipient, message_id, sha256, receipt_id, now)
        except PermanentError as error:  # its reason names the check, never a value
            raise _Refused("Client", error.reason[:400]) from None
        return self._respond(action + "Response", verified.message_id, pickup.acknowledgement_body(ack))

    def _submit(self, verified: Verified, request: etree._Element, now: datetime) -> bytes:
        message_id = (request.findtext(f"{{{_TNS}}}MessageID") or "").strip()
        digest = (request.findtext(f"{{{_TNS}}}PayloadDigest") or "").strip()
        try:
            if str(uuid.UUID(message_id)) != message_id:
                raise ValueError
        except ValueError:
            raise _Refused("Client", "MessageID must be a lower-case UUID") from None
        if verified.message_id != f"urn:uuid:{message_id}":
            raise _Refused("Client", "wsa:MessageID must be urn:uuid:<MessageID>")
        holder = request.find(f"{{{_TNS}}}Payload")
        children = [c for c in holder if isinstance(c.tag, str)] if holder is not None else []
        if len(children) != 1:
            raise _Refused("Client", "Payload must hold exactly one element")
        canonical = canonical_form(children[0])
        if hashlib.sha256(canonical).hexdigest() != digest:
            raise _Refused("Client", "PayloadDigest does not match the payload")
        with self._lock:
            stored = self._stored(message_id)
            if stored is not None:
                if stored["digest"] != digest:
                    raise _Refused("Client", "this MessageID was already used for a different payload")
                return self._receipt(stored, "duplicate", verified.message_id)
            plaintext, message_type = self._check(children[0], canonical)
            signer = verified.signer.subject.rfc4514_string()
            if self.settings.on_received is not None:
                try:
                    self.settings.on_received(Submission(message_id, canonical, plaintext, message_type, signer,
                                                         now))
                except (SecurityError, RecordError) as error:  # their text names a path, never a value
                    raise _Refused("Client", str(error)[:400]) from None
            stored = {"receipt_id": str(uuid.uuid4()), "message_id": message_id, "digest": digest,
                      "received_at": now.isoformat(), "signer": signer, "message_type": message_type}
            _write_atomically(self.settings.store / f"{message_id}.xml", canonical)
            _write_atomically(self.settings.store / f"{message_id}.receipt.json", json.dumps(stored).encode())
        return self._receipt(stored, "accepted", verified.message_id)

    def _check(self, payload: etree._Element, canonical: bytes) -> tuple[bytes | None, str | None]:
        """Decrypt (when we can) and validate against the IEPD; refuse what is not a valid message."""
        plaintext = None
        document = payload
        if payload.tag == f"{{{XENC}}}EncryptedData":
            if self.settings.decrypt is None:
                return None, None  # relayed opaque: only the recipient can open it
            try:
                plaintext = self.settings.decrypt(canonical)
                document = safexml.parse(plaintext, max_bytes=self.settings.max_bytes).getroot()
            except (SecurityError, safexml.UnsafeXMLError):
                raise _Refused("Client", "payload cannot be decrypted with our key") from None
        message_type = validator.message_type_of(document)
        if message_type is None:
            raise _Refused("Client", "payload root is not a message type of this IEPD")
        issues = validator.validate(document)
        if issues:
            raise _Refused("Client", f"invalid {message_type}: {issues[0].path}: {issues[0].message}"[:400])
        return plaintext, message_type

    def _stored(self, message_id: str) -> dict | None:
        try:
            return json.loads((self.settings.store / f"{message_id}.receipt.json").read_text())
        except FileNotFoundError:
            return None

    def _receipt(self, stored: dict, status: str, relates_to: str | None) -> bytes:
        tns = f"{{{_TNS}}}"
        response = etree.Element(tns + "SubmitMessageResponse", nsmap={"tns": _TNS})
        for name, value in (("ReceiptID", stored["receipt_id"]), ("MessageID", stored["message_id"]),
                            ("PayloadDigest", stored["digest"]), ("ReceivedAt", stored["received_at"]),
                            ("Status", status)):
            etree.SubElement(response, tns + name).text = value
        return self._respond(f"{_TNS}SubmitMessageResponse", relates_to, response)

    def _respond(self, action: str, relates_to: str | None, payload: etree._Element) -> bytes:
        """A signed response envelope: WS-Addressing Action/MessageID/RelatesTo and ``payload`` as the Body."""
        soap = f"{{{SOAP11}}}"
        envelope = etree.Element(soap + "Envelope", nsmap={"soap": SOAP11, "wsa": WSA, "tns": _TNS})
        header = etree.SubElement(envelope, soap + "Header")
        for name, value in (("Action", action), ("MessageID", f"urn:uuid:{uuid.uuid4()}"),
                            ("RelatesTo", relates_to or "")):
            etree.SubElement(header, f"{{{WSA}}}{name}").text = value
        etree.SubElement(envelope, soap + "Body").append(payload)
        self._signer.apply(envelope, {})
        return etree.tostring(envelope, xml_declaration=True, encoding="utf-8")


def _pinned(signer: x509.Certificate, trusted: list[x509.Certificate]) -> bool:
    der = signer.public_bytes(serialization.Encoding.DER)
    return any(t.public_bytes(serialization.Encoding.DER) == der for t in trusted)


def _write_atomically(target: Path, data: bytes) -> None:
    temporary = target.with_name(f".{target.name}.part")
    with open(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640), "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, target)


def build_app(settings: InboundSettings) -> Starlette:
    """The ASGI app: ``GET <path>?wsdl`` serves the WSDL, ``POST <path>`` runs the operation the Body holds."""
    service = InboundService(settings)

    async def endpoint(request: Request) -> Response:
        if request.method == "GET":
            if "wsdl" in request.query_params or request.url.query.lower() == "wsdl":
                return Response(service.wsdl, media_type=_CONTENT_TYPE)
            return Response(status_code=404)
        body = bytearray()
        try:
            async for chunk in request.stream():  # stop reading at the limit: a huge body is not buffered whole
                body += chunk
                if len(body) > settings.max_bytes:
                    return Response(_fault("Client", "request too large"), status_code=413,
                                    media_type=_CONTENT_TYPE)
        except ClientDisconnect:  # the sender gave up mid-request; nothing was stored, it will resend
            return Response(status_code=400)
        status, content = await run_in_threadpool(service.handle, bytes(body), client_certificate(request.scope))
        return Response(content, status_code=status, media_type=_CONTENT_TYPE)

    app = Starlette(routes=[Route(settings.path, endpoint, methods=["GET", "POST"])])
    app.state.service = service
    return app


def serve(app, *, host: str, port: int, certificate: Path, key: Path, client_ca: Path,
          log_level: str = "warning") -> None:
    """Run ``app`` under uvicorn with mutual TLS (clients must present a certificate ``client_ca`` issued)."""
    import uvicorn

    # on SIGTERM, requests in flight get a few seconds; idle keep-alive connections of clients (zeep keeps
    # its session open) must not hold the shutdown forever
    uvicorn.Server(server_config(app, host=host, port=port, certificate=certificate, key=key,
                                 client_ca=client_ca, log_level=log_level, timeout_graceful_shutdown=5)).run()

