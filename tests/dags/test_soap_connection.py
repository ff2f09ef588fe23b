"""A SOAP recipient whose endpoint and files come from an Airflow connection: the YAML says only ``kind: soap``
and ``connection: soap_state_hub``; the DAG resolves ``AIRFLOW_CONN_SOAP_STATE_HUB`` (host, port and extras)
and delivers to our inbound service under uvicorn with mutual TLS on 127.0.0.1 (tests/support/soap_server.py).
The command line reads the same variable without Airflow (Airflow's URI format here)."""
from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path
from urllib.parse import quote, urlencode

import pytest

from dag_helpers import ledger_rows, load_dag, run_state, utc
from tests.support.soap_server import soap_server_factory, tls_pki  # noqa: F401 (fixtures)

pytestmark = pytest.mark.airflow


def _extras(pki) -> dict[str, str]:
    return {"endpoint": "/soap/exchange", "client_certificate": str(pki.cert("client")),
            "client_key": str(pki.key("client")), "ca_bundle": str(pki.cert("ca")),
            "signing_key": str(pki.key("client-signing")), "signing_certificate": str(pki.cert("client-signing")),
            "receipt_certificate": str(pki.cert("server-signing"))}


def _soap_by_connection(raw) -> None:
    state = raw["recipients"][1]
    state["transport"] = {"kind": "soap"}  # nothing about the server or our keys in the YAML
    state["connection"] = "soap_state_hub"
    raw["recipients"] = [state]


def test_the_dag_delivers_over_soap_with_the_airflow_connection_the_yaml_names(
        airflow_db, write_exchange, exchange_home, small_drop, soap_server_factory, tls_pki, monkeypatch):
    server = soap_server_factory()  # relays the encrypted messages (no decryption key here)
    monkeypatch.setenv("AIRFLOW_CONN_SOAP_STATE_HUB", json.dumps(
        {"conn_type": "http", "host": "127.0.0.1", "port": server.port, "extra": _extras(tls_pki)}))

    def edit(raw):
        raw["source"]["path"] = str(small_drop)
        _soap_by_connection(raw)

    yaml_path = write_exchange("dag-soap", edit)
    assert "127.0.0.1" not in yaml_path.read_text() and str(tls_pki.directory) not in yaml_path.read_text()

    run = load_dag("dag-soap").test(logical_date=utc(2026, 5, 2))

    assert run_state(run) == "success"
    entries = ledger_rows(exchange_home, "dag-soap")
    assert entries and Counter(r for r, _ in entries) == {"state-bh": len(entries)}
    assert server.received() == {message_id: 1 for _, message_id in entries}


def test_the_command_line_reads_the_same_connection_from_its_environment_variable(
        write_exchange, exchange_home, small_drop, soap_server_factory, tls_pki):
    server = soap_server_factory()

    def edit(raw):
        raw["source"]["path"] = str(small_drop)
        _soap_by_connection(raw)

    yaml_path = write_exchange("cli-soap", edit)
    cli = str(Path(sys.executable).with_name("niem-exchange"))
    command = [cli, "run", str(yaml_path), "--home", str(exchange_home)]
    missing = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert missing.returncode == 2
    assert "recipients.state-bh.connection" in missing.stderr and "AIRFLOW_CONN_SOAP_STATE_HUB" in missing.stderr
    assert server.received() == {}

    uri = f"http://127.0.0.1:{server.port}/?" + urlencode(_extras(tls_pki), quote_via=quote)
    result = subprocess.run(command, capture_output=True, text=True, timeout=300,
                            env={**_environment(), "AIRFLOW_CONN_SOAP_STATE_HUB": uri})
    assert result.returncode == 0, result.stderr
    entries = ledger_rows(exchange_home, "cli-soap")
    assert entries and server.received() == {message_id: 1 for _, message_id in entries}


def _environment() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW_CONN_")}
