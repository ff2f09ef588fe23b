"""The vendor documentation's examples run for real: the curl + xmlsec1 recipe and the zeep snippet, each
against the inbound service under uvicorn with mutual TLS."""
from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path

from lxml import etree

from niem_iepd import safexml
from tests.support.soap_server import soap_server_factory, tls_pki  # noqa: F401 (fixtures)

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "adapters/inbound/examples"
SAMPLE = REPO / "niem_iepd/samples/booking-notification.xml"
TNS = "{http://niem-exchange.org/ns/wsdl/exchange/1.0/}"


def _curl(server, pki, payload: Path, message_id: str, **overrides) -> subprocess.CompletedProcess:
    env = {**os.environ, "ENDPOINT": server.endpoint, "TLS_CERT": str(pki.cert("client")),
           "TLS_KEY": str(pki.key("client")), "CA": str(pki.cert("ca")), "SIGN_CERT": str(pki.cert("client-signing")),
           "SIGN_KEY": str(pki.key("client-signing")), "PAYLOAD": str(payload), "MESSAGE_ID": message_id, **overrides}
    return subprocess.run(["sh", str(EXAMPLES / "submit-with-curl.sh")], env=env, capture_output=True, text=True,
                          timeout=60)


def test_the_curl_recipe_submits_a_valid_message_and_gets_a_signed_receipt(soap_server_factory, tls_pki):
    from datetime import datetime, timezone

    from adapters.delivery.wssecurity import verify_envelope
    from cryptography import x509

    server = soap_server_factory()  # plaintext NIEM payloads are validated against the IEPD
    message_id = str(uuid.uuid4())
    result = _curl(server, tls_pki, SAMPLE, message_id)
    assert result.returncode == 0, result.stderr + result.stdout
    receipt = safexml.parse(result.stdout.encode()).getroot()
    verified = verify_envelope(receipt, [x509.load_pem_x509_certificate(tls_pki.cert("server-signing").read_bytes())],
                               now=datetime.now(timezone.utc))
    response = verified.body.find(f"{TNS}SubmitMessageResponse")
    assert response.findtext(f"{TNS}MessageID") == message_id
    assert response.findtext(f"{TNS}Status") == "accepted"
    assert server.received() == {message_id: 1}
    again = _curl(server, tls_pki, SAMPLE, message_id)
    assert "<tns:Status>duplicate</tns:Status>" in again.stdout
    assert server.received() == {message_id: 1}


def test_the_curl_recipe_with_an_unpinned_signer_gets_a_client_fault(soap_server_factory, tls_pki):
    server = soap_server_factory()
    result = _curl(server, tls_pki, SAMPLE, str(uuid.uuid4()), SIGN_CERT=str(tls_pki.cert("rogue-signing")),
                   SIGN_KEY=str(tls_pki.key("rogue-signing")))
    assert result.returncode != 0
    assert "soap:Client" in result.stdout and "not pinned" in result.stdout
    assert server.received() == {}


def test_an_invalid_message_is_refused_naming_the_element_not_the_value(soap_server_factory, tls_pki, tmp_path):
    server = soap_server_factory()
    broken = tmp_path / "broken.xml"
    canary = "CANARY-7781"
    doc = safexml.parse(SAMPLE.read_bytes())
    date = next(e for e in doc.iter() if isinstance(e.tag, str) and e.tag.endswith("}Date"))
    date.text = canary  # not a date
    broken.write_bytes(etree.tostring(doc))
    result = _curl(server, tls_pki, broken, str(uuid.uuid4()))
    assert result.returncode != 0 and "soap:Client" in result.stdout and "invalid BookingNotification" in result.stdout
    assert canary not in result.stdout
    assert server.received() == {}


def test_the_zeep_example_from_the_docs(soap_server_factory, tls_pki):
    """The README's zeep snippet, with the paths filled in."""
    server = soap_server_factory()
    readme = (REPO / "adapters/inbound/README.md").read_text()
    snippet = readme.split("```python\n", 1)[1].split("```", 1)[0]
    names = {"ENDPOINT": server.endpoint, "CLIENT_CERT": str(tls_pki.cert("client")),
             "CLIENT_KEY": str(tls_pki.key("client")), "CA_BUNDLE": str(tls_pki.cert("ca")),
             "SIGNING_KEY": str(tls_pki.key("client-signing")), "SIGNING_CERT": str(tls_pki.cert("client-signing")),
             "RECEIPT_CERT": str(tls_pki.cert("server-signing")), "MESSAGE_FILE": str(SAMPLE)}
    scope: dict = {**names, "__name__": "readme"}
    exec(compile(snippet, "README.md", "exec"), scope)  # noqa: S102 (our own documentation, run as written)
    reply = scope["reply"]
    assert reply.Status == "accepted"
    assert server.received() == {reply.MessageID: 1}
