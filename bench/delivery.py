"""Messages per second delivered over SFTP (one connection reused) and SOAP, each against a raw baseline.

Run: ``.venv/bin/python -m bench.delivery [--messages 10000] [--size 6000]``. Everything runs on this machine:
a real OpenSSH sshd and our inbound SOAP service under uvicorn with mutual TLS, both on 127.0.0.1, started
by the bench (the servers from ``tests/support``), keys minted into a temporary directory.

- local: ``LocalOutbox`` (write, fsync, rename, manifest): the embedded default, for scale.
- sftp ours: ``SftpTransport.deliver`` per message: stat, upload to ``.part``, remote size check,
  ``posix_rename``, manifest append. sftp raw: paramiko ``putfo`` + ``posix_rename`` on the same kind of
  connection, nothing else. Ratio = ours / raw time per message.
- soap ours: ``SoapTransport.deliver``: zeep builds the envelope, WS-Security signs it (RSA-2048 test key),
  the service verifies, stores and signs a receipt, zeep checks that signature. soap raw: ``requests.post``
  of one envelope signed once beforehand, on a kept-alive session (the service still verifies it and signs
  its receipt, answering "duplicate"). Ratio = ours / raw time per message.

- pull ours: a recipient pulling its queue (``niem-exchange serve``'s app: the exchange's outbox behind
  PullMessages/AcknowledgeMessage) with zeep, 100 per PullMessages, then one AcknowledgeMessage per message
  (each marks the outbox row delivered and appends the ledger entry). pull raw: ``requests.post`` of one
  pre-signed AcknowledgeMessage on a kept-alive session (answered "duplicate": both WS-Security signatures
  and a row read, no write): the floor of one signed round trip. Ratio = ours per message / raw per call.

Payloads are synthetic ``xenc:EncryptedData`` documents of ``--size`` bytes (the demo's encrypted
BookingNotifications are about 6 kB). The SOAP service runs in a thread of this process, so client and server
share one GIL and the SOAP rates are a floor; the raw SOAP baseline hits the "duplicate" path (no store, no
fsync), so its ratio also counts the server's two fsyncs per accepted message.

Measured on the 2-core CI container (10,000 messages of 5.9 kB): local outbox 113 msg/s; SFTP ours 336 msg/s
vs raw 437 msg/s (ours/raw time 1.30); SOAP ours 29 msg/s vs raw 109 msg/s (3.78).
Pull (2,000 messages, same container, loaded by other work: rough): pull ours 41 msg/s vs raw 83 calls/s
(2.01), with SOAP push in the same run at 32 msg/s: a recipient pulling in batches of 100 and acknowledging
each message is about as fast as being pushed to (one signed round trip per message either way).
"""
from __future__ import annotations

import argparse
import base64
import hashlib
import io
import os
import tempfile
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

XENC = "http://www.w3.org/2001/04/xmlenc#"


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _payloads(count: int, size: int) -> list[tuple[str, bytes, str]]:
    raw = os.urandom(max(16, size * 3 // 4 - 200))
    out = []
    for n in range(count):
        body = base64.b64encode(n.to_bytes(4, "big") + raw).decode()
        payload = (f'<xenc:EncryptedData xmlns:xenc="{XENC}" Type="{XENC}Element"><xenc:CipherData>'
                   f"<xenc:CipherValue>{body}</xenc:CipherValue></xenc:CipherData></xenc:EncryptedData>").encode()
        out.append((str(uuid.uuid4()), payload, hashlib.sha256(payload).hexdigest()))
    return out


def _mtls_session(pki) -> "requests.Session":
    """A requests session presenting the test client certificate and trusting only the test CA."""
    import requests

    session = requests.Session()
    session.trust_env = False  # no proxy from the environment between us and 127.0.0.1
    session.verify, session.cert = str(pki.cert("ca")), (str(pki.cert("client")), str(pki.key("client")))
    return session


def _rate(count: int, seconds: float) -> str:
    return f"{count / seconds:8.0f} msg/s  ({seconds * 1000 / count:.2f} ms/msg)"


def bench_local(messages, work: Path) -> float:
    from adapters.delivery.local_outbox import LocalOutbox

    box = LocalOutbox(work / "local", clock=_now)
    start = time.perf_counter()
    for message in messages:
        box.deliver(*message)
    box.flush()  # receipts count once the directory and manifest are synced (once per batch, as the pipeline does)
    return time.perf_counter() - start


def bench_sftp(messages, work: Path) -> tuple[float, float]:
    import paramiko

    from adapters.delivery.sftp import SftpSettings, SftpTransport
    from tests.support.sshd import start_sshd

    server = start_sshd(work / "sshd")
    try:
        settings = SftpSettings(server.host, server.port, server.user, server.client_key, server.known_hosts,
                                str(server.root / "ours"))
        transport = SftpTransport(settings, clock=_now)
        start = time.perf_counter()
        for message in messages:
            transport.deliver(*message)
        ours = time.perf_counter() - start
        transport.close()

        client = paramiko.SSHClient()
        client.get_host_keys().load(str(server.known_hosts))
        client.set_missing_host_key_policy(paramiko.RejectPolicy())
        client.connect(server.host, server.port, username=server.user, key_filename=str(server.client_key),
                       look_for_keys=False, allow_agent=False)
        sftp = client.open_sftp()
        sftp.mkdir(str(server.root / "raw"))
        start = time.perf_counter()
        for mid, payload, _digest in messages:
            target = f"{server.root}/raw/{mid}.xml"
            sftp.putfo(io.BytesIO(payload), target + ".part", confirm=False)
            sftp.posix_rename(target + ".part", target)
        raw = time.perf_counter() - start
        client.close()
        assert len(list((server.root / "ours").glob("*.xml"))) == len(messages)
        return ours, raw
    finally:
        server.stop()


def bench_soap(messages, work: Path) -> tuple[float, float]:
    from lxml import etree

    from adapters.delivery.soap import SoapSettings, SoapTransport, _addressing, payload_digest
    from adapters.delivery.wssecurity import SOAP11, WsSecurity
    from niem_iepd.wsdl import TARGET_NAMESPACE
    from tests.support.soap_server import start_soap_server
    from tests.support.tls import mint_tls_pki

    pki = mint_tls_pki(work / "pki")
    server = start_soap_server(work / "soap", pki)
    try:
        settings = SoapSettings(endpoint=server.endpoint, client_certificate=pki.cert("client"),
                                client_key=pki.key("client"), ca_bundle=pki.cert("ca"),
                                signing_key=pki.key("client-signing"), signing_certificate=pki.cert("client-signing"),
                                receipt_certificate=pki.cert("server-signing"))
        transport = SoapTransport(settings, clock=_now)
        transport.deliver(*messages[0])  # load the WSDL and open the session outside the timing
        start = time.perf_counter()
        for message in messages[1:]:
            transport.deliver(*message)
        ours = time.perf_counter() - start
        transport.close()
        assert len(server.received()) == len(messages)

        mid, payload, _ = messages[0]
        tns = f"{{{TARGET_NAMESPACE}}}"
        envelope = etree.Element(f"{{{SOAP11}}}Envelope", nsmap={"soap": SOAP11})
        header = etree.SubElement(envelope, f"{{{SOAP11}}}Header")
        header.extend(_addressing(mid, server.endpoint))
        request = etree.SubElement(etree.SubElement(envelope, f"{{{SOAP11}}}Body"), tns + "SubmitMessageRequest")
        element = etree.fromstring(payload)
        etree.SubElement(request, tns + "MessageID").text = mid
        etree.SubElement(request, tns + "PayloadDigest").text = payload_digest(element)
        etree.SubElement(request, tns + "Payload").append(element)
        WsSecurity(pki.key("client-signing"), pki.cert("client-signing"), clock=_now).apply(envelope, {})
        body = etree.tostring(envelope, xml_declaration=True, encoding="utf-8")
        session = _mtls_session(pki)
        headers = {"Content-Type": "text/xml; charset=utf-8", "SOAPAction": f'"{TARGET_NAMESPACE}SubmitMessage"'}
        start = time.perf_counter()
        for _ in messages[1:]:
            response = session.post(server.endpoint, data=body, headers=headers, timeout=30)
            assert response.status_code == 200, response.text[:300]
        raw = time.perf_counter() - start
        return ours, raw
    finally:
        server.stop()


def bench_pull(messages, work: Path) -> tuple[float, float]:
    import yaml
    from lxml import etree

    from adapters.delivery.wssecurity import SOAP11, WSA, WsSecurity
    from adapters.inbound import build_app
    from exchange.config import demo_data_dir
    from exchange.runtime import open_exchange
    from exchange.security import mint_dev_pki
    from exchange.state.outbox import QueuedMessage
    from exchange.wiring.inbound import inbound_settings
    from niem_iepd.wsdl import ACKNOWLEDGE_ACTION, TARGET_NAMESPACE
    from tests.support.pull_client import PullClient
    from tests.support.soap_server import serve_in_thread
    from tests.support.sshd import free_port
    from tests.support.tls import mint_tls_pki

    pki = mint_tls_pki(work / "pull-pki")
    home = work / "pull-home"
    mint_dev_pki(home / "certs/dev", organization="Bench County", recipients=["county-bh"], now=_now())
    raw_config = yaml.safe_load((demo_data_dir() / "demo-exchange.yaml").read_text())
    raw_config["recipients"] = raw_config["recipients"][:1]
    raw_config["recipients"][0]["transport"] = {"kind": "pull", "client_certificate": str(pki.cert("client")),
                                                "signing_certificate": str(pki.cert("client-signing"))}
    config = home / "pull.yaml"
    config.write_text(yaml.safe_dump(raw_config))
    ex = open_exchange(config, home)
    now = _now()
    for n, (mid, payload, sha) in enumerate(messages):
        ex.outbox.enqueue(QueuedMessage(mid, "county-bh", f"NXP-BENCH{n:06d}", "BookingNotification", payload, sha,
                                        ("booking",), 0), f"bench:{n}", now)
    port = free_port()
    endpoint = f"https://127.0.0.1:{port}/soap/exchange"
    server, thread = serve_in_thread(build_app(inbound_settings(ex, config, public_url=endpoint)), pki, port)
    try:
        client = PullClient(endpoint, pki, tls="client", signing="client-signing",
                            service_certificate=home / "certs/dev/signing.pem")
        first = client.pull(1).Message[0]  # load the WSDL and open the session outside the timing
        client.acknowledge(first.MessageID, first.PayloadSHA256)
        start = time.perf_counter()
        done = 1
        while True:
            batch = client.pull(100).Message
            if not batch:
                break
            for message in batch:
                assert hashlib.sha256(message.Payload).hexdigest() == message.PayloadSHA256
                client.acknowledge(message.MessageID, message.PayloadSHA256)
            done += len(batch)
        ours = time.perf_counter() - start
        assert done == len(messages) and ex.outbox.counts() == {"delivered": len(messages)}

        tns = f"{{{TARGET_NAMESPACE}}}"
        envelope = etree.Element(f"{{{SOAP11}}}Envelope", nsmap={"soap": SOAP11})
        header = etree.SubElement(envelope, f"{{{SOAP11}}}Header")
        for name, value in (("Action", ACKNOWLEDGE_ACTION), ("MessageID", f"urn:uuid:{uuid.uuid4()}"),
                            ("To", endpoint)):
            etree.SubElement(header, f"{{{WSA}}}{name}").text = value
        request = etree.SubElement(etree.SubElement(envelope, f"{{{SOAP11}}}Body"), tns + "AcknowledgeMessageRequest")
        etree.SubElement(request, tns + "MessageID").text = first.MessageID
        etree.SubElement(request, tns + "PayloadSHA256").text = first.PayloadSHA256
        WsSecurity(pki.key("client-signing"), pki.cert("client-signing"), clock=_now).apply(envelope, {})
        body = etree.tostring(envelope, xml_declaration=True, encoding="utf-8")
        session = _mtls_session(pki)
        headers = {"Content-Type": "text/xml; charset=utf-8", "SOAPAction": f'"{ACKNOWLEDGE_ACTION}"'}
        start = time.perf_counter()
        for _ in messages[1:]:
            response = session.post(endpoint, data=body, headers=headers, timeout=30)
            assert response.status_code == 200 and b"duplicate" in response.content, response.text[:300]
        raw = time.perf_counter() - start
        return ours, raw
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        ex.close()


def main() -> None:
    """Run the four benches and print rates and ratios."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--size", type=int, default=6000, help="payload bytes")
    parser.add_argument("--only", choices=["local", "sftp", "soap", "pull"], action="append")
    args = parser.parse_args()
    messages = _payloads(args.messages, args.size)
    chosen = args.only or ["local", "sftp", "soap", "pull"]
    with tempfile.TemporaryDirectory(prefix="bench-delivery-") as tmp:
        work = Path(tmp)
        print(f"{args.messages} messages of {len(messages[0][1])} bytes")
        if "local" in chosen:
            print(f"local outbox   {_rate(len(messages), bench_local(messages, work))}")
        if "sftp" in chosen:
            ours, raw = bench_sftp(messages, work)
            print(f"sftp ours      {_rate(len(messages), ours)}")
            print(f"sftp raw       {_rate(len(messages), raw)}   ours/raw time = {ours / raw:.2f}")
        if "soap" in chosen:
            ours, raw = bench_soap(messages, work)
            print(f"soap ours      {_rate(len(messages) - 1, ours)}")
            print(f"soap raw       {_rate(len(messages) - 1, raw)}   ours/raw time = {ours / raw:.2f}")
        if "pull" in chosen:
            ours, raw = bench_pull(messages, work)
            print(f"pull ours      {_rate(len(messages) - 1, ours)}")
            print(f"pull raw       {_rate(len(messages) - 1, raw)}   ours/raw time = {ours / raw:.2f}")


if __name__ == "__main__":
    main()
