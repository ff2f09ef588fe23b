"""A ``kind: pull`` recipient under Airflow: its deliver task succeeds and reports the messages waiting to be
pulled (they stay queued for PullMessages), while a normal recipient in the same run is delivered to."""
from __future__ import annotations

import sqlite3

import pytest

from dag_helpers import ledger_rows, load_dag, run_state, utc
from tests.support.soap_server import tls_pki  # noqa: F401 (fixture)

pytestmark = pytest.mark.airflow


def test_a_pull_recipients_messages_wait_queued_and_its_deliver_task_succeeds(
        airflow_db, write_exchange, exchange_home, small_drop, tls_pki):
    def edit(raw):
        raw["source"]["path"] = str(small_drop)
        raw["recipients"][1]["transport"] = {"kind": "pull", "client_certificate": str(tls_pki.cert("client")),
                                             "signing_certificate": str(tls_pki.cert("client-signing"))}

    write_exchange("dag-pull", edit)
    run = load_dag("dag-pull").test(logical_date=utc(2026, 5, 3))

    assert run_state(run) == "success"
    with sqlite3.connect(exchange_home / "var" / "state.db") as db:
        states = dict(db.execute("SELECT state, count(*) FROM outbox WHERE exchange='dag-pull' AND recipient='state-bh' "
                                 "GROUP BY state").fetchall())
    assert set(states) == {"queued"} and states["queued"] > 0
    assert {recipient for recipient, _ in ledger_rows(exchange_home, "dag-pull")} == {"county-bh"}
