"""The pipeline delivering over SOAP (config kind ``soap``) to our inbound service under uvicorn with mutual
TLS, through an HTTP 500, a SOAP Fault and a hang past the timeout: a later pass delivers the rest, and every
message is at the receiver exactly once with one ledger entry."""
from __future__ import annotations

import time
from datetime import timedelta

import yaml

from exchange import pipeline
from exchange.runtime import open_exchange
from exchange.state.outbox import RetryPolicy
from tests.conftest import mint_demo_home
from tests.support.drops import small_demo_drop
from tests.support.soap_server import soap_server_factory, tls_pki  # noqa: F401 (fixtures)


def test_pipeline_over_soap_through_faults_ends_exactly_once(soap_server_factory, tls_pki, demo_config, tmp_path):
    server = soap_server_factory()  # relays the encrypted messages as received (no decryption key here)
    home = mint_demo_home(tmp_path)
    raw = yaml.safe_load(demo_config.read_text())
    recipient = raw["recipients"][0]
    recipient["transport"] = {
        "kind": "soap", "endpoint": server.endpoint, "client_certificate": str(tls_pki.cert("client")),
        "client_key": str(tls_pki.key("client")), "ca_bundle": str(tls_pki.cert("ca")),
        "signing_key": str(tls_pki.key("client-signing")), "signing_certificate": str(tls_pki.cert("client-signing")),
        "receipt_certificate": str(tls_pki.cert("server-signing")), "timeout": 1.0,
    }
    raw["recipients"] = [recipient]
    raw["source"]["path"] = str(small_demo_drop(tmp_path / "drop", 40))
    config = home / "soap-exchange.yaml"
    config.write_text(yaml.safe_dump(raw))
    server.plan_faults("500", "fault", "hang", hang_seconds=2.0)

    ex = open_exchange(config, home)
    ex.outbox.policy = RetryPolicy(base=timedelta(milliseconds=100), cap=timedelta(milliseconds=300))
    try:
        first = pipeline.run(ex)
    finally:
        ex.close()
    assert first.failed == 3 and first.dead == 0 and first.delivered == first.enqueued - 3
    assert first.enqueued > 30
    errors = sorted(e.last_error.split(": ", 1)[1] for e in ex.outbox.entries(state="failed"))
    assert errors == ["HTTP 500 (will retry)", "receiver fault (Server) (will retry)", "timed out (will retry)"]

    time.sleep(0.4)  # past every (test-sized) backoff
    ex = open_exchange(config, home)
    try:
        second = pipeline.run(ex)
        assert second.delivered == 3 and second.failed == 0
        assert ex.outbox.counts() == {"delivered": first.enqueued}
        ids = {e.message_id for e in ex.outbox.entries(limit=100_000)}
        with ex.engine.connect() as conn:
            ledger_ids = [r[0] for r in conn.exec_driver_sql("SELECT message_id FROM ledger")]
    finally:
        ex.close()
    assert server.received() == {mid: 1 for mid in ids}
    assert sorted(ledger_ids) == sorted(ids)
