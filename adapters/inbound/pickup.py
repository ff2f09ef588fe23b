"""PullMessages and AcknowledgeMessage: recipients that fetch their messages instead of being sent them.

The service does not own the queue: a :class:`Mailbox` (the composition root passes one from ``exchange/``,
backed by the outbox and the disclosure ledger) hands out messages and settles acknowledgements. This module
identifies the caller, reads the request, asks the mailbox and writes the response body.

Who is calling: a pull recipient is pinned by two certificates, its mutual-TLS client certificate and its
WS-Security signing certificate, both compared byte for byte. A request is served only when both belong to
the same recipient, and it only ever sees messages addressed to that recipient. An acknowledgement for a
message id that is unknown or addressed to someone else gets the same answer (a ``Client`` fault), so a
caller cannot probe for other recipients' messages.
"""
from __future__ import annotations

import base64
import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Protocol

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from lxml import etree

from adapters.inbound.faults import Refused
from niem_iepd.wsdl import TARGET_NAMESPACE
from transforms.model import ConfigError

_TNS = f"{{{TARGET_NAMESPACE}}}"
_SHA256 = re.compile(r"[0-9a-f]{64}")
#: A ReceiptID is a reference (letters, digits, ``. _ : / -``), never free text: it is shown by ``outbox list``.
_RECEIPT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/-]{0,199}")
#: MaxMessages when the request names none.
DEFAULT_PULL = 10


@dataclass(frozen=True, slots=True)
class PullRecipient:
    """A recipient that fetches its messages, and the two certificates (PEM files) that identify it."""

    id: str
    tls_certificate: Path
    signing_certificate: Path


@dataclass(frozen=True, slots=True)
class PulledMessage:
    """One message handed out: the file as other transports deliver it, with its id, type and SHA-256."""

    message_id: str
    message_type: str
    payload: bytes
    sha256: str


@dataclass(frozen=True, slots=True)
class Pull:
    """The messages one PullMessages call leased to the caller, and when that lease ends."""

    messages: tuple[PulledMessage, ...]
    lease_expires: datetime


@dataclass(frozen=True, slots=True)
class Acknowledgement:
    """A settled acknowledgement: when the message was first acknowledged, and whether this was a repeat."""

    message_id: str
    acknowledged_at: datetime
    duplicate: bool


class Mailbox(Protocol):
    """The queue behind PullMessages/AcknowledgeMessage (satisfied structurally by ``exchange``'s outbox one)."""

    def pull(self, recipient: str, limit: int, now: datetime, max_bytes: int | None = None) -> Pull:
        """Lease up to ``limit`` of ``recipient``'s waiting messages (oldest first) to the caller, whose payloads
        together stay within ``max_bytes`` (the oldest is leased whatever its size; None: no cap)."""
        ...

    def acknowledge(self, recipient: str, message_id: str, sha256: str, receipt_id: str | None,
                    now: datetime) -> Acknowledgement:
        """Mark the message delivered (once); raise ``PermanentError`` for an id that is not the caller's."""
        ...


class Recipients:
    """The pinned certificates of every pull recipient; tells who is calling."""

    def __init__(self, recipients: tuple[PullRecipient, ...]) -> None:
        self._by_tls: dict[bytes, str] = {}
        self._by_signer: dict[bytes, str] = {}
        self.signers: list[x509.Certificate] = []
        for recipient in recipients:
            tls = x509.load_pem_x509_certificate(Path(recipient.tls_certificate).read_bytes())
            signer = x509.load_pem_x509_certificate(Path(recipient.signing_certificate).read_bytes())
            for pinned, certificate, key in ((self._by_tls, tls, "client_certificate"),
                                             (self._by_signer, signer, "signing_certificate")):
                der = certificate.public_bytes(serialization.Encoding.DER)
                if der in pinned:  # one certificate for two recipients: nobody could tell whose messages go
                    raise ConfigError("inbound service", f"recipients.{recipient.id}.transport.{key}",
                                      f"the same certificate is pinned for {pinned[der]!r}",
                                      "give each pull recipient its own certificates")
                pinned[der] = recipient.id
            self.signers.append(signer)

    def identify(self, signer: x509.Certificate, tls_certificate: bytes | None) -> str:
        """The recipient both certificates belong to; otherwise refuse (``Client``)."""
        if tls_certificate is None:
            raise Refused("Client", "a pull recipient must present its mutual-TLS client certificate")
        by_signer = self._by_signer.get(signer.public_bytes(serialization.Encoding.DER))
        by_tls = self._by_tls.get(tls_certificate)
        if by_signer is None or by_tls is None:
            raise Refused("Client", "caller is not a pull recipient of this service")
        if by_signer != by_tls:
            raise Refused("Client", "TLS client certificate and WS-Security signer belong to different recipients")
        return by_signer


def read_pull(request: etree._Element, cap: int) -> int:
    """MaxMessages of a PullMessagesRequest (default :data:`DEFAULT_PULL`), at most ``cap``."""
    text = (request.findtext(f"{_TNS}MaxMessages") or "").strip()
    if not text:
        return min(DEFAULT_PULL, cap)
    if not text.isdigit() or int(text) < 1:
        raise Refused("Client", "MaxMessages must be a positive integer")
    return min(int(text), cap)


def pull_body(pull: Pull) -> etree._Element:
    """The PullMessagesResponse element."""
    response = etree.Element(_TNS + "PullMessagesResponse", nsmap={"tns": TARGET_NAMESPACE})
    etree.SubElement(response, _TNS + "LeaseExpires").text = _xs_datetime(pull.lease_expires)
    for message in pull.messages:
        item = etree.SubElement(response, _TNS + "Message")
        for name, value in (("MessageID", message.message_id), ("MessageType", message.message_type),
                            ("PayloadSHA256", message.sha256),
                            ("Payload", base64.b64encode(message.payload).decode("ascii"))):
            etree.SubElement(item, _TNS + name).text = value
    return response


def read_acknowledgement(request: etree._Element) -> tuple[str, str, str | None]:
    """(MessageID, PayloadSHA256, ReceiptID or None) of an AcknowledgeMessageRequest, checked for form."""
    message_id = (request.findtext(f"{_TNS}MessageID") or "").strip()
    sha256 = (request.findtext(f"{_TNS}PayloadSHA256") or "").strip()
    receipt_id = (request.findtext(f"{_TNS}ReceiptID") or "").strip() or None
    try:
        if str(uuid.UUID(message_id)) != message_id:
            raise ValueError
    except ValueError:
        raise Refused("Client", "MessageID must be a lower-case UUID") from None
    if not _SHA256.fullmatch(sha256):
        raise Refused("Client", "PayloadSHA256 must be 64 lower-case hex digits")
    if receipt_id is not None and not _RECEIPT_ID.fullmatch(receipt_id):
        raise Refused("Client", "ReceiptID must be 1-200 letters, digits or . _ : / -")
    return message_id, sha256, receipt_id


def acknowledgement_body(ack: Acknowledgement) -> etree._Element:
    """The AcknowledgeMessageResponse element."""
    response = etree.Element(_TNS + "AcknowledgeMessageResponse", nsmap={"tns": TARGET_NAMESPACE})
    for name, value in (("MessageID", ack.message_id), ("AcknowledgedAt", _xs_datetime(ack.acknowledged_at)),
                        ("Status", "duplicate" if ack.duplicate else "acknowledged")):
        etree.SubElement(response, _TNS + name).text = value
    return response


def _xs_datetime(moment: datetime) -> str:
    if moment.tzinfo is None:  # SQLite hands timestamps back naive; they were written as UTC
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).isoformat()
