"""Recipients that pull: an exchange with two ``kind: pull`` recipients, its messages queued by the real
pipeline, served by the inbound service under uvicorn with mutual TLS on 127.0.0.1, called with zeep.

Pull, acknowledge, re-pull after the lease, another recipient refused, an acknowledgement twice = one ledger
entry. The service's clock is the exchange's, shifted by the test to pass a lease without sleeping."""
from __future__ import annotations

import hashlib
from collections import Counter
from datetime import datetime, timedelta, timezone

import pytest
import yaml
import zeep.exceptions

from exchange import pipeline
from exchange.runtime import open_exchange
from exchange.security import PrivateKey, decrypt
from exchange.wiring.inbound import inbound_settings
from tests.conftest import mint_demo_home
from tests.support.drops import small_demo_drop
from tests.support.pull_client import PullClient
from tests.support.soap_server import serve_in_thread, tls_pki  # noqa: F401 (fixture)
from tests.support.sshd import free_port

LEASE = 60


class Clock:
    """Real UTC time plus an offset the test moves forward."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return datetime.now(timezone.utc) + self.offset


@pytest.fixture
def served(tmp_path, tls_pki, demo_config):
    """(exchange, clock, endpoint, client factory, home) with every message queued for pulling."""
    home = mint_demo_home(tmp_path / "home")
    raw = yaml.safe_load(demo_config.read_text())
    for recipient, tls, signing in ((raw["recipients"][0], "client", "client-signing"),
                                    (raw["recipients"][1], "other-client", "other-signing")):
        recipient["transport"] = {"kind": "pull", "client_certificate": str(tls_pki.cert(tls)),
                                  "signing_certificate": str(tls_pki.cert(signing)), "lease": LEASE}
    raw["source"]["path"] = str(small_demo_drop(tmp_path / "drop", 6))
    config = home / "pull-exchange.yaml"
    config.write_text(yaml.safe_dump(raw))
    clock = Clock()
    ex = open_exchange(config, home, clock=clock)
    summary = pipeline.run(ex)
    assert summary.enqueued >= 8 and summary.delivered == 0 and summary.failed == 0  # left queued for pulling
    port = free_port()
    endpoint = f"https://127.0.0.1:{port}/soap/exchange"
    from adapters.inbound import build_app

    server, thread = serve_in_thread(build_app(inbound_settings(ex, config, public_url=endpoint)), tls_pki, port)

    def client(tls: str = "client", signing: str = "client-signing") -> PullClient:
        return PullClient(endpoint, tls_pki, tls=tls, signing=signing,
                          service_certificate=home / "certs/dev/signing.pem")

    yield ex, clock, client, home
    server.should_exit = True
    thread.join(timeout=15)
    ex.close()


def _ledger(ex) -> Counter:
    with ex.engine.connect() as conn:
        return Counter(r[0] for r in conn.exec_driver_sql("SELECT message_id FROM ledger"))


def _states(ex, recipient: str) -> dict[str, str]:
    return {e.message_id: e.state for e in ex.outbox.entries(recipient=recipient)}


def test_pull_then_acknowledge_delivers_once_and_writes_one_ledger_entry(served):
    ex, _, client, home = served
    county = client()
    queued = _states(ex, "county-bh")
    pulled = county.pull(2)
    assert len(pulled.Message) == 2
    key = PrivateKey.load(home / "certs/dev/recipients/county-bh.key")
    for message in pulled.Message:
        assert queued[message.MessageID] == "queued"
        assert hashlib.sha256(message.Payload).hexdigest() == message.PayloadSHA256
        assert b"BookingNotification" in decrypt(message.Payload, key)  # the file other transports deliver
        assert message.MessageType == "BookingNotification"
    first = pulled.Message[0]

    reply = county.acknowledge(first.MessageID, first.PayloadSHA256, "INTAKE-2026/0001")
    assert reply.Status == "acknowledged" and reply.MessageID == first.MessageID
    again = county.acknowledge(first.MessageID, first.PayloadSHA256, "INTAKE-2026/0001")
    assert again.Status == "duplicate" and again.AcknowledgedAt == reply.AcknowledgedAt

    assert _ledger(ex)[first.MessageID] == 1 and sum(_ledger(ex).values()) == 1
    entry = next(e for e in ex.outbox.entries(recipient="county-bh") if e.message_id == first.MessageID)
    assert entry.state == "delivered" and entry.location == "pull:county-bh#receipt=INTAKE-2026/0001"
    assert _states(ex, "county-bh")[pulled.Message[1].MessageID] == "sending"  # pulled, not yet acknowledged


def test_an_unacknowledged_message_is_offered_again_once_its_lease_ends(served):
    ex, clock, client, _ = served
    county = client()
    everything = set(_states(ex, "county-bh"))
    first = county.pull(3)
    acked = first.Message[0]
    county.acknowledge(acked.MessageID, acked.PayloadSHA256)
    rest = county.pull(100)  # the leased ones are not handed out twice while the lease runs
    assert {m.MessageID for m in first.Message}.isdisjoint({m.MessageID for m in rest.Message})
    assert {m.MessageID for m in first.Message} | {m.MessageID for m in rest.Message} == everything
    assert county.pull(100).Message == []

    clock.offset = timedelta(seconds=LEASE + 1)
    again = county.pull(100)
    assert {m.MessageID for m in again.Message} == everything - {acked.MessageID}
    for message in again.Message:
        county.acknowledge(message.MessageID, message.PayloadSHA256)
    clock.offset = timedelta(seconds=3 * LEASE)
    assert county.pull(100).Message == []
    assert set(_states(ex, "county-bh").values()) == {"delivered"}
    assert _ledger(ex) == Counter({mid: 1 for mid in everything})
    assert pipeline.deliver(ex, "county-bh").delivered == 0  # delivery passes never touch pull recipients


def test_a_recipient_never_sees_or_acknowledges_another_recipients_messages(served):
    ex, _, client, _ = served
    county, state = client(), client("other-client", "other-signing")
    county_message = county.pull(1).Message[0]
    state_messages = state.pull(100).Message
    assert {m.MessageID for m in state_messages} == set(_states(ex, "state-bh"))

    for message_id in (county_message.MessageID, "00000000-0000-4000-8000-000000000000"):
        with pytest.raises(zeep.exceptions.Fault) as refused:
            state.acknowledge(message_id, county_message.PayloadSHA256)
        assert refused.value.code.endswith("Client")
        assert refused.value.message == "no message with this MessageID is addressed to you"
    with pytest.raises(zeep.exceptions.Fault, match="PayloadSHA256 does not match"):
        county.acknowledge(county_message.MessageID, "0" * 64)
    with pytest.raises(zeep.exceptions.Fault, match="different recipients"):
        client("other-client", "client-signing").pull(1)  # county's signature over state's TLS connection
    with pytest.raises(zeep.exceptions.Fault, match="signer certificate is not pinned"):
        client("client", "server-signing").pull(1)  # a signer pinned for nobody
    assert _ledger(ex) == Counter()
    assert _states(ex, "county-bh")[county_message.MessageID] == "sending"


def test_the_curl_recipe_pulls_checks_and_acknowledges_with_standard_tools(served, tls_pki, tmp_path):
    """adapters/inbound/examples/pull-with-curl.sh as a recipient runs it (xmllint, xmlsec1, curl)."""
    import os
    import subprocess
    from pathlib import Path

    ex, _, client, home = served
    script = Path(__file__).resolve().parents[2] / "adapters/inbound/examples/pull-with-curl.sh"
    inbox = tmp_path / "inbox"
    env = {**os.environ, "ENDPOINT": client().endpoint, "TLS_CERT": str(tls_pki.cert("client")),
           "TLS_KEY": str(tls_pki.key("client")), "CA": str(tls_pki.cert("ca")),
           "SIGN_CERT": str(tls_pki.cert("client-signing")), "SIGN_KEY": str(tls_pki.key("client-signing")),
           "SERVICE_CERT": str(home / "certs/dev/signing.pem"), "OUT": str(inbox), "MAX": "100"}
    result = subprocess.run(["sh", str(script)], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr + result.stdout
    waiting = _states(ex, "county-bh")
    assert sorted(result.stdout.split()) == sorted([*waiting, *["acknowledged"] * len(waiting)])
    entries = {e.message_id: e for e in ex.outbox.entries(recipient="county-bh")}
    for message_id in waiting:
        data = (inbox / f"{message_id}.xml").read_bytes()
        assert hashlib.sha256(data).hexdigest() == entries[message_id].sha256
        assert entries[message_id].state == "delivered"
    assert _ledger(ex) == Counter({mid: 1 for mid in waiting})

    forged = {**env, "SERVICE_CERT": str(tls_pki.cert("server-signing")), "OUT": str(tmp_path / "other")}
    refused = subprocess.run(["sh", str(script)], env=forged, capture_output=True, text=True, timeout=120)
    assert refused.returncode != 0 and "response not signed by SERVICE_CERT" in refused.stderr


def test_the_zeep_pull_example_from_the_docs(served, tls_pki, tmp_path):
    """adapters/inbound/README.md's zeep pull snippet, with the paths filled in, run as written."""
    from pathlib import Path

    ex, _, client, home = served
    readme = (Path(__file__).resolve().parents[2] / "adapters/inbound/README.md").read_text()
    snippet = readme.split("### zeep (pull)\n```python\n", 1)[1].split("```", 1)[0]
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    names = {"ENDPOINT": client().endpoint, "CLIENT_CERT": str(tls_pki.cert("client")),
             "CLIENT_KEY": str(tls_pki.key("client")), "CA_BUNDLE": str(tls_pki.cert("ca")),
             "SIGNING_KEY": str(tls_pki.key("client-signing")), "SIGNING_CERT": str(tls_pki.cert("client-signing")),
             "SERVICE_CERT": str(home / "certs/dev/signing.pem"), "OUT_DIR": str(inbox), "__name__": "readme"}
    exec(compile(snippet, "README.md", "exec"), names)  # noqa: S102 (our own documentation, run as written)
    waiting = set(_states(ex, "county-bh"))
    assert {p.stem for p in inbox.glob("*.xml")} == waiting
    assert set(_states(ex, "county-bh").values()) == {"delivered"}
    assert _ledger(ex) == Counter({mid: 1 for mid in waiting})
