"""A delivery pass claims each chunk after the first in the commit that settles the chunk before it. A pass
stopped inside such a chunk gives every claim back uncounted, and the next pass delivers each message once.
"""
from __future__ import annotations

import sqlite3
from datetime import datetime, timezone
from pathlib import Path

import pytest

from adapters.delivery.local_outbox import MANIFEST, LocalOutbox
from exchange import pipeline
from exchange.runtime import open_exchange
from tests.conftest import mint_demo_home
from tests.support.drops import local_outbox_exchange
from transforms.model import SecurityError

RECIPIENT = "county-bh"


class StoppedAtCall(LocalOutbox):
    """The local outbox, refusing with a ``SecurityError`` at its ``stop_at``-th delivery."""

    stop_at = 0
    calls = 0

    def deliver(self, message_id: str, payload: bytes, sha256: str):
        StoppedAtCall.calls += 1
        if StoppedAtCall.calls == self.stop_at:
            raise SecurityError(f"deliver {message_id}", "refused by the test")
        return super().deliver(message_id, payload, sha256)


def test_a_pass_stopped_in_a_chunk_claimed_at_the_last_settle_gives_it_back_then_all_go_once(demo_config, tmp_path):
    home = mint_demo_home(tmp_path)
    config = local_outbox_exchange(home, demo_config, RECIPIENT)
    inbox = home / "var/outbox" / RECIPIENT
    clock = lambda: datetime.now(timezone.utc)  # noqa: E731
    StoppedAtCall.stop_at = pipeline._CLAIM_CHUNK + 20  # inside the second chunk
    ex = open_exchange(config, home, clock=clock, transports={RECIPIENT: StoppedAtCall(inbox, clock=clock)})
    for key in pipeline.plan(ex):
        pipeline.process_window(ex, key)

    with pytest.raises(SecurityError):
        pipeline.deliver(ex, RECIPIENT)
    db = sqlite3.connect(home / "var/state.db")
    states = dict(db.execute("SELECT state, count(*) FROM outbox GROUP BY state").fetchall())
    attempts = db.execute("SELECT max(attempts) FROM outbox WHERE state != 'delivered'").fetchone()[0]
    ledger = db.execute("SELECT count(*) FROM ledger").fetchone()[0]
    db.close()
    total = sum(states.values())
    assert total > 2 * pipeline._CLAIM_CHUNK
    # The first chunk and what the second (claimed in the first's settle) sent before the stop are settled;
    # the rest of the second and the third are queued again uncounted, none left leased.
    sent = StoppedAtCall.stop_at - 1
    assert states == {"delivered": sent, "queued": total - sent}, states
    assert attempts == 0 and ledger == sent

    StoppedAtCall.stop_at = 0
    assert pipeline.deliver(ex, RECIPIENT).delivered == total - sent
    db = sqlite3.connect(home / "var/state.db")
    ids = sorted(r[0] for r in db.execute("SELECT message_id FROM outbox WHERE state = 'delivered'"))
    ledger_ids = sorted(r[0] for r in db.execute("SELECT message_id FROM ledger"))
    db.close()
    listed = sorted(line.split("  ", 1)[1].removesuffix(".xml") for line in (inbox / MANIFEST).read_text()
                    .splitlines())
    assert len(ids) == total and ledger_ids == ids and listed == ids
    assert sorted(p.name.removesuffix(".xml") for p in inbox.glob("*.xml")) == ids
