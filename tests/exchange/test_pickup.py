"""The outbox behind PullMessages/AcknowledgeMessage (exchange.pickup.OutboxMailbox), on SQLite and on a real
PostgreSQL: leases handed out once, offered again when they end, and acknowledgements racing from many threads
settling one message once with one ledger entry."""
from __future__ import annotations

import threading
from collections import Counter
from datetime import timedelta

import pytest
import yaml

from exchange import pipeline
from exchange.pickup import OutboxMailbox
from exchange.runtime import open_exchange
from tests.conftest import mint_demo_home
from tests.support.drops import small_demo_drop
from tests.support.soap_server import tls_pki  # noqa: F401 (fixture)
from transforms.model import PermanentError


@pytest.fixture(params=["sqlite", "postgresql"])
def ex(request, tmp_path, demo_config):
    """A demo exchange whose county-bh pulls, its messages queued by the pipeline."""
    home = mint_demo_home(tmp_path / "home")
    raw = yaml.safe_load(demo_config.read_text())
    raw["recipients"][0]["transport"] = {"kind": "pull", "client_certificate": "unused.pem",
                                         "signing_certificate": "unused.pem", "lease": 120}
    raw["recipients"] = raw["recipients"][:1]
    raw["source"]["path"] = str(small_demo_drop(tmp_path / "drop", 5))
    if request.param == "postgresql":
        raw["state_url"] = request.getfixturevalue("postgres_state_url")
    config = home / "pickup.yaml"
    config.write_text(yaml.safe_dump(raw))
    exchange = open_exchange(config, home)
    pipeline.run(exchange)
    yield exchange
    if request.param == "postgresql":
        from exchange.state.db import metadata

        metadata.drop_all(exchange.engine)
    exchange.close()


def _ledger(ex) -> Counter:
    with ex.engine.connect() as conn:
        return Counter(r[0] for r in conn.exec_driver_sql("SELECT message_id FROM ledger"))


def test_a_lease_is_handed_out_once_and_offered_again_when_it_ends(ex):
    mailbox, now = OutboxMailbox(ex), ex.clock()
    first = mailbox.pull("county-bh", 2, now)
    assert len(first.messages) == 2 and first.lease_expires == now + timedelta(seconds=120)
    rest = mailbox.pull("county-bh", 100, now + timedelta(seconds=119))
    assert {m.message_id for m in first.messages}.isdisjoint(m.message_id for m in rest.messages)
    again = mailbox.pull("county-bh", 100, now + timedelta(seconds=121))
    assert {m.message_id for m in again.messages} == {m.message_id for m in first.messages}


def test_a_pull_stays_within_its_byte_cap_and_always_hands_out_the_oldest(ex):
    mailbox, now = OutboxMailbox(ex), ex.clock()
    waiting = ex.outbox.due("county-bh", now)
    sizes = ex.outbox.payload_sizes(waiting)
    assert len(waiting) >= 3 and set(sizes) == set(waiting) and all(size > 1000 for size in sizes.values())
    two = sizes[waiting[0]] + sizes[waiting[1]]
    capped = mailbox.pull("county-bh", 100, now, max_bytes=two + sizes[waiting[2]] - 1)
    assert [m.message_id for m in capped.messages] == waiting[:2]  # the third would pass the cap
    assert sum(len(m.payload) for m in capped.messages) == two
    tiny = mailbox.pull("county-bh", 100, now, max_bytes=1)
    assert [m.message_id for m in tiny.messages] == waiting[2:3]  # one message even when it alone is larger


def test_racing_acknowledgements_settle_one_message_once(ex):
    mailbox, now = OutboxMailbox(ex), ex.clock()
    message = mailbox.pull("county-bh", 1, now).messages[0]
    outcomes: list[str] = []
    start = threading.Barrier(8)

    def acknowledge() -> None:
        start.wait()
        try:
            ack = mailbox.acknowledge("county-bh", message.message_id, message.sha256, None, now)
            outcomes.append("duplicate" if ack.duplicate else "acknowledged")
        except Exception as error:  # noqa: BLE001 (a lost race may be refused as busy; the caller retries)
            outcomes.append(type(error).__name__)

    threads = [threading.Thread(target=acknowledge) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert outcomes.count("acknowledged") == 1, outcomes
    assert set(outcomes) <= {"acknowledged", "duplicate", "RetryableError", "OperationalError"}, outcomes
    assert mailbox.acknowledge("county-bh", message.message_id, message.sha256, None, now).duplicate
    assert _ledger(ex) == Counter({message.message_id: 1})


def test_an_acknowledgement_for_someone_else_or_with_another_digest_is_refused(ex):
    mailbox, now = OutboxMailbox(ex), ex.clock()
    message = mailbox.pull("county-bh", 1, now).messages[0]
    with pytest.raises(PermanentError, match="PayloadSHA256 does not match"):
        mailbox.acknowledge("county-bh", message.message_id, "0" * 64, None, now)
    with pytest.raises(PermanentError, match="no message with this MessageID is addressed to you"):
        mailbox.acknowledge("county-bh", "00000000-0000-4000-8000-000000000000", message.sha256, None, now)
    assert _ledger(ex) == Counter()


def test_two_pull_recipients_may_not_share_a_certificate(tls_pki):
    from adapters.inbound.pickup import PullRecipient, Recipients
    from transforms.model import ConfigError

    pki = tls_pki
    with pytest.raises(ConfigError, match="recipients.b.transport.signing_certificate: the same certificate is "
                                          "pinned for 'a'"):
        Recipients((PullRecipient("a", pki.cert("client"), pki.cert("client-signing")),
                    PullRecipient("b", pki.cert("other-client"), pki.cert("client-signing"))))
