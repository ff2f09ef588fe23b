"""Credentials come from an Airflow connection, never the YAML: the exchange YAML names ``connection:
sftp_state_bh`` and placeholder server details; the DAG resolves ``AIRFLOW_CONN_SFTP_STATE_BH`` and delivers
to a real OpenSSH sshd on 127.0.0.1 (tests/support/sshd.py, keys minted per test) with the pinned host key."""
from __future__ import annotations

import json
from collections import Counter

import pytest

from dag_helpers import ledger_rows, load_dag, run_state, utc

pytestmark = pytest.mark.airflow


def test_the_dag_delivers_over_sftp_with_the_airflow_connection_the_yaml_names(
        airflow_db, write_exchange, exchange_home, small_drop, sshd_factory, monkeypatch):
    server = sshd_factory()
    inbox = server.root / "inbox" / "state-bh"
    monkeypatch.setenv("AIRFLOW_CONN_SFTP_STATE_BH", json.dumps({
        "conn_type": "sftp", "host": server.host, "port": server.port, "login": server.user,
        "extra": {"key_file": str(server.client_key), "known_hosts": str(server.known_hosts),
                  "remote_dir": str(inbox)},
    }))

    def edit(raw):
        raw["source"]["path"] = str(small_drop)
        state = raw["recipients"][1]
        state["transport"] = {"kind": "sftp", "host": "sftp.state.example.gov", "username": "feed",
                              "private_key": "keys/not-here", "known_hosts": "keys/not-here", "remote_dir": "/in"}
        state["connection"] = "sftp_state_bh"
        raw["recipients"] = [state]

    yaml_path = write_exchange("dag-sftp", edit)
    assert "127.0.0.1" not in yaml_path.read_text() and str(server.client_key) not in yaml_path.read_text()

    run = load_dag("dag-sftp").test(logical_date=utc(2026, 5, 1))

    assert run_state(run) == "success"
    delivered = {p.name for p in inbox.glob("*.xml")}
    entries = ledger_rows(exchange_home, "dag-sftp")
    assert delivered and Counter(r for r, _ in entries) == {"state-bh": len(delivered)}
    assert {f"{message_id}.xml" for _, message_id in entries} == delivered
    assert len((inbox / "MANIFEST.sha256").read_text().splitlines()) == len(delivered)
