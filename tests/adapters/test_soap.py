"""SOAP delivery (zeep) to our inbound service running under a real uvicorn with mutual TLS on 127.0.0.1:
WS-Security both ways, WS-Addressing, idempotent receipts, and the faults (HTTP 500, a SOAP Fault, a hang
past the timeout), each ending with every message exactly once at the receiver."""
from __future__ import annotations

import hashlib
import uuid
from datetime import datetime, timezone
from pathlib import Path

import pytest
from lxml import etree

from adapters.delivery.soap import SoapSettings, SoapTransport
from exchange.security import PrivateKey, RecipientCertificate, SigningIdentity, decrypt, encrypt, mint_dev_pki, sign
from niem_iepd import safexml
from tests.support.soap_server import soap_server_factory, tls_pki  # noqa: F401 (fixtures)
from transforms.model import PermanentError, RetryableError, SecurityError

SAMPLE = Path(__file__).resolve().parents[2] / "niem_iepd/samples/booking-notification.xml"


def _now() -> datetime:
    return datetime.now(timezone.utc)


@pytest.fixture(scope="module")
def message_pki(tmp_path_factory):
    """Our message-signing PKI and the receiver's encryption key (the same kind the pipeline uses)."""
    return mint_dev_pki(tmp_path_factory.mktemp("soap-msg-pki"), organization="Test County",
                        recipients=["receiver"], now=_now())


@pytest.fixture(scope="module")
def sealed(message_pki):
    """A valid BookingNotification, XML-signed and encrypted to the receiver, as the outbox holds it."""
    identity = SigningIdentity.load(message_pki.signing_key, message_pki.signing_certificate)
    recipient = RecipientCertificate.load(message_pki.recipient_certificate("receiver"), now=_now())
    payload = encrypt(sign(safexml.parse(SAMPLE.read_bytes()).getroot(), identity), recipient)
    return payload


@pytest.fixture(scope="module")
def opener(message_pki):
    """The receiver's decryption, handed to the inbound service."""
    key = PrivateKey.load(message_pki.recipient_key("receiver"))
    return lambda data: decrypt(data, key)


def _message(sealed: bytes) -> tuple[str, bytes, str]:
    return str(uuid.uuid4()), sealed, hashlib.sha256(sealed).hexdigest()


def _transport(server, pki, *, timeout: float = 10.0, **overrides) -> SoapTransport:
    values = dict(endpoint=server.endpoint, client_certificate=pki.cert("client"), client_key=pki.key("client"),
                  ca_bundle=pki.cert("ca"), signing_key=pki.key("client-signing"),
                  signing_certificate=pki.cert("client-signing"), receipt_certificate=pki.cert("server-signing"),
                  connect_timeout=5.0, timeout=timeout)
    values.update(overrides)
    return SoapTransport(SoapSettings(**values), clock=_now)


def test_delivers_with_a_signed_receipt_and_a_repeat_is_not_stored_twice(soap_server_factory, tls_pki, sealed,
                                                                         opener):
    server = soap_server_factory(decrypt=opener)
    transport = _transport(server, tls_pki)
    mid, payload, digest = _message(sealed)
    receipt = transport.deliver(mid, payload, digest)
    assert receipt.sha256 == digest and receipt.location.startswith(f"{server.endpoint}#receipt=")
    stored = server.store / f"{mid}.xml"
    assert b"BookingNotification" in opener(stored.read_bytes())  # the receiver can open what it stored
    again = _transport(server, tls_pki).deliver(mid, payload, digest)  # e.g. our receipt was lost
    assert again.location == receipt.location  # the first receipt, not a second copy
    assert server.received() == {mid: 1}


def test_a_receipt_signed_by_someone_else_is_refused(soap_server_factory, tls_pki, sealed, opener):
    server = soap_server_factory(decrypt=opener)
    transport = _transport(server, tls_pki, receipt_certificate=tls_pki.cert("client-signing"))
    with pytest.raises(SecurityError, match="signer certificate is not pinned"):
        transport.deliver(*_message(sealed))


def test_an_unpinned_signer_is_refused_as_permanent_and_nothing_is_stored(soap_server_factory, tls_pki, sealed,
                                                                          opener):
    server = soap_server_factory(decrypt=opener)
    transport = _transport(server, tls_pki, signing_key=tls_pki.key("rogue-signing"),
                           signing_certificate=tls_pki.cert("rogue-signing"))
    with pytest.raises(PermanentError, match="refused by the receiver"):
        transport.deliver(*_message(sealed))
    assert server.received() == {}


def test_mutual_tls_refuses_a_client_certificate_from_another_ca(soap_server_factory, tls_pki, sealed, opener):
    server = soap_server_factory(decrypt=opener)
    transport = _transport(server, tls_pki, client_certificate=tls_pki.cert("rogue-client"),
                           client_key=tls_pki.key("rogue-client"))
    with pytest.raises((SecurityError, RetryableError)):
        transport.deliver(*_message(sealed))
    assert server.received() == {}


def test_a_server_certificate_we_do_not_trust_is_a_security_error(soap_server_factory, tls_pki, sealed):
    server = soap_server_factory()
    transport = _transport(server, tls_pki, ca_bundle=tls_pki.cert("rogue-ca"))
    with pytest.raises(SecurityError, match="TLS handshake refused"):
        transport.deliver(*_message(sealed))
    assert server.received() == {}


def test_a_message_invalid_against_the_iepd_is_refused_permanently(soap_server_factory, tls_pki, message_pki,
                                                                   opener):
    server = soap_server_factory(decrypt=opener)
    doc = safexml.parse(SAMPLE.read_bytes()).getroot()
    first = next(e for e in doc.iter() if isinstance(e.tag, str) and e is not doc)
    doc.remove(first)  # drop a required element
    recipient = RecipientCertificate.load(message_pki.recipient_certificate("receiver"), now=_now())
    payload = encrypt(doc, recipient)
    with pytest.raises(PermanentError, match="refused by the receiver"):
        _transport(server, tls_pki).deliver(*_message(payload))
    assert server.received() == {}


@pytest.mark.parametrize("fault", ["500", "fault"])
def test_a_transient_server_failure_is_retryable_and_ends_exactly_once(soap_server_factory, tls_pki, sealed,
                                                                       opener, fault):
    server = soap_server_factory(decrypt=opener)
    transport = _transport(server, tls_pki)
    messages = [_message(sealed) for _ in range(3)]
    server.plan_faults(fault, fault)
    outcomes = []
    for message in messages:
        for _attempt in range(3):
            try:
                transport.deliver(*message)
                outcomes.append("ok")
                break
            except RetryableError as error:
                outcomes.append("retry")
                assert ("HTTP 500" in str(error)) if fault == "500" else ("receiver fault (Server)" in str(error))
    assert outcomes == ["retry", "retry", "ok", "ok", "ok"]
    assert server.received() == {m[0]: 1 for m in messages}


def test_an_endpoint_hanging_past_the_timeout_is_retried_without_a_second_copy(soap_server_factory, tls_pki,
                                                                                sealed, opener):
    server = soap_server_factory(decrypt=opener)
    transport = _transport(server, tls_pki, timeout=1.0)
    mid, payload, digest = _message(sealed)
    server.plan_faults("hang", hang_seconds=2.0)
    with pytest.raises(RetryableError, match="timed out"):
        transport.deliver(mid, payload, digest)
    # The hung request still reaches the service after we gave up, and is stored there.
    import time

    deadline = time.monotonic() + 10
    while mid not in server.received() and time.monotonic() < deadline:
        time.sleep(0.05)
    receipt = transport.deliver(mid, payload, digest)
    assert receipt.message_id == mid
    assert server.received() == {mid: 1}


def test_the_wsdl_is_served_with_the_public_address(soap_server_factory, tls_pki):
    import requests

    server = soap_server_factory()
    response = requests.get(server.endpoint + "?wsdl", cert=(str(tls_pki.cert("client")), str(tls_pki.key("client"))),
                            verify=str(tls_pki.cert("ca")), timeout=5)
    assert response.status_code == 200
    address = safexml.parse(response.content).getroot().find(".//{http://schemas.xmlsoap.org/wsdl/soap/}address")
    assert address.get("location") == server.endpoint


def test_inbound_hands_each_new_message_to_the_receiving_side_which_records_it(soap_server_factory, tls_pki,
                                                                               sealed, message_pki, tmp_path):
    """The composition a receiving agency runs: the service's ``on_received`` is exchange.receive's Receiver
    (decrypt, verify the XML signature against the pinned sender, validate, the ``received`` table)."""
    import sqlite3

    from exchange.receive import Receiver

    receiver = Receiver.open(key=message_pki.recipient_key("receiver"), trusted=[message_pki.signing_certificate],
                             out_dir=tmp_path / "inbox", state=tmp_path / "inbox/received.db")
    server = soap_server_factory(on_received=lambda s: receiver.receive(s.payload, source=f"soap {s.message_id}"))
    mid, payload, digest = _message(sealed)
    _transport(server, tls_pki).deliver(mid, payload, digest)
    _transport(server, tls_pki).deliver(mid, payload, digest)  # a resend is answered from the store
    rows = sqlite3.connect(tmp_path / "inbox/received.db").execute("SELECT message_type FROM received").fetchall()
    assert rows == [("BookingNotification",)]
    assert server.received() == {mid: 1}
