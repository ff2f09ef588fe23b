"""SubmitMessage, served: verify WS-Security, check the payload, validate against the IEPD, store, sign a receipt.

A request is refused with a SOAP 1.1 Fault (HTTP 500) whose ``faultcode`` tells the sender what to do:
``soap:Client`` = do not resend it unchanged (hostile or malformed XML, bad or unpinned signature, stale
timestamp, digest mismatch, invalid against the IEPD), ``soap:Server`` = transient, retry. Fault strings name
the check that failed and, for IEPD errors, the element path; never a value from the message.

Accepted messages land in ``store`` as ``<MessageID>.xml`` (the payload's exclusive canonical form, written
to a temporary name, fsynced and renamed) and ``<MessageID>.receipt.json``; an optional ``on_received``
callable (the composition root passes one from ``exchange/``) sees each new message first. A MessageID that
is already stored is not stored again: the first receipt is returned with Status ``duplicate``, which makes
the operation safe to retry. Every response is signed by the service's own key.

Mutual TLS is enforced by the server (``serve``: ``ssl_cert_reqs=CERT_REQUIRED`` against ``client_ca``).
"""
from __future__ import annotations

import hashlib
import json
import os
import ssl
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from cryptography import x509
from lxml import etree
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from adapters.delivery.soap import canonical as canonical_form
from adapters.delivery.wssecurity import SOAP11, WSA, WsSecurity, verify_envelope
from niem_iepd import safexml, validator
from niem_iepd.wsdl import TARGET_NAMESPACE, wsdl_path
from transforms.model import RecordError, SecurityError

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
    """What the service needs. ``trusted_signers`` are the pinned vendor certificates (PEM files)."""

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


class _Refused(Exception):
    """A request the sender must fix (``Client``) or may retry (``Server``)."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(code, reason)
        self.code, self.reason = code, reason


class InboundService:
    """The request handling behind the ASGI app (plain methods: testable without a server)."""

    def __init__(self, settings: InboundSettings) -> None:
        self.settings = settings
        self._signer = WsSecurity(settings.signing_key, settings.signing_certificate, clock=settings.clock)
        self._trusted = [x509.load_pem_x509_certificate(Path(p).read_bytes()) for p in settings.trusted_signers]
        self._lock = threading.Lock()  # check-then-store of one MessageID must not interleave
        settings.store.mkdir(parents=True, exist_ok=True)
        wsdl = safexml.parse_trusted_file(wsdl_path())
        for address in wsdl.iter("{http://schemas.xmlsoap.org/wsdl/soap/}address"):
            address.set("location", settings.public_url)
        self.wsdl = etree.tostring(wsdl, xml_declaration=True, encoding="utf-8")

    def handle(self, body: bytes) -> tuple[int, bytes]:
        """Process one POSTed envelope; return (HTTP status, response envelope)."""
        try:
            return 200, self._submit(body)
        except _Refused as refused:
            return 500, _fault(refused.code, refused.reason)
        except Exception:  # never leak internals (or payloads) into a fault; the sender may retry
            return 500, _fault("Server", "internal error; retry later")

    def _submit(self, body: bytes) -> bytes:
        now = self.settings.clock()
        if len(body) > self.settings.max_bytes:
            raise _Refused("Client", "request too large")
        try:
            envelope = safexml.parse(body, max_bytes=self.settings.max_bytes).getroot()
        except safexml.UnsafeXMLError as exc:
            raise _Refused("Client", exc.reason) from None
        try:
            verified = verify_envelope(envelope, self._trusted, now=now, subject="SubmitMessage")
        except SecurityError as exc:
            raise _Refused("Client", f"WS-Security: {exc.reason}") from None
        request = verified.body.find(f"{{{_TNS}}}SubmitMessageRequest")  # only the signed Body counts
        if request is None or len(verified.body) != 1:
            raise _Refused("Client", "Body must hold exactly one SubmitMessageRequest")
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
        soap, tns = f"{{{SOAP11}}}", f"{{{_TNS}}}"
        envelope = etree.Element(soap + "Envelope", nsmap={"soap": SOAP11, "wsa": WSA, "tns": _TNS})
        header = etree.SubElement(envelope, soap + "Header")
        for name, value in (("Action", f"{_TNS}SubmitMessageResponse"), ("MessageID", f"urn:uuid:{uuid.uuid4()}"),
                            ("RelatesTo", relates_to or "")):
            etree.SubElement(header, f"{{{WSA}}}{name}").text = value
        response = etree.SubElement(etree.SubElement(envelope, soap + "Body"), tns + "SubmitMessageResponse")
        for name, value in (("ReceiptID", stored["receipt_id"]), ("MessageID", stored["message_id"]),
                            ("PayloadDigest", stored["digest"]), ("ReceivedAt", stored["received_at"]),
                            ("Status", status)):
            etree.SubElement(response, tns + name).text = value
        self._signer.apply(envelope, {})
        return etree.tostring(envelope, xml_declaration=True, encoding="utf-8")


def _fault(code: str, reason: str) -> bytes:
    soap = f"{{{SOAP11}}}"
    envelope = etree.Element(soap + "Envelope", nsmap={"soap": SOAP11})
    fault = etree.SubElement(etree.SubElement(envelope, soap + "Body"), soap + "Fault")
    etree.SubElement(fault, "faultcode").text = f"soap:{code}"
    etree.SubElement(fault, "faultstring").text = reason
    return etree.tostring(envelope, xml_declaration=True, encoding="utf-8")


def _write_atomically(target: Path, data: bytes) -> None:
    temporary = target.with_name(f".{target.name}.part")
    with open(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640), "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, target)


def build_app(settings: InboundSettings) -> Starlette:
    """The ASGI app: ``GET <path>?wsdl`` serves the WSDL, ``POST <path>`` is SubmitMessage."""
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
        status, content = await run_in_threadpool(service.handle, bytes(body))
        return Response(content, status_code=status, media_type=_CONTENT_TYPE)

    app = Starlette(routes=[Route(settings.path, endpoint, methods=["GET", "POST"])])
    app.state.service = service
    return app


def serve(app, *, host: str, port: int, certificate: Path, key: Path, client_ca: Path,
          log_level: str = "warning") -> None:
    """Run ``app`` under uvicorn with mutual TLS (clients must present a certificate ``client_ca`` issued)."""
    import uvicorn

    uvicorn.run(app, host=host, port=port, ssl_certfile=str(certificate), ssl_keyfile=str(key),
                ssl_ca_certs=str(client_ca), ssl_cert_reqs=ssl.CERT_REQUIRED, log_level=log_level,
                access_log=False)

