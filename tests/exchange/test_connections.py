"""``AIRFLOW_CONN_<ID>`` read without Airflow: the same values Airflow's own parser gives, in both formats."""
from __future__ import annotations

import json

import pytest

from exchange.connections import from_environment, parse
from transforms.model import ConfigError

URIS = [
    "soap://hub.example.gov:8443/?endpoint=%2Fsoap%2Fexchange&client_key=%2Fkeys%2Fclient.key",
    "soap://https://hub.example.gov:8443/soap",
    "sftp://feed:p%40ss%2Fword@sftp.example.gov:2222/incoming?__extra__=%7B%22key_file%22%3A+%22%2Fk%22%7D",
    "fs://",
]


@pytest.mark.parametrize("uri", URIS)
def test_uri_values_match_airflows_parser(uri):
    from airflow.models.connection import Connection

    conn = Connection(conn_id="x", uri=uri)
    expected = {name: getattr(conn, name) for name in ("conn_type", "host", "port", "login", "password", "schema")}
    expected.update(conn.extra_dejson)
    assert parse("x", uri) == {k: str(v) for k, v in expected.items() if v not in (None, "")}


def test_json_values_and_only_the_named_variables_are_read():
    environ = {"AIRFLOW_CONN_SOAP_HUB": json.dumps({"conn_type": "http", "host": "10.0.0.5", "port": 8443,
                                                    "extra": json.dumps({"ca_bundle": "/ca.pem"})}),
               "AIRFLOW_CONN_OTHER": "soap://elsewhere"}
    assert from_environment(["soap_hub", "absent"], environ) == {
        "soap_hub": {"conn_type": "http", "host": "10.0.0.5", "port": "8443", "ca_bundle": "/ca.pem"}}


@pytest.mark.parametrize("raw", ['{"host": ', "not a uri", "soap://h?__extra__=%5B1%5D", '{"extra": [1]}'])
def test_a_malformed_value_is_refused_naming_the_variable_never_echoing_it(raw):
    with pytest.raises(ConfigError) as refused:
        parse("soap_hub", raw + "SECRET-CANARY")
    assert "AIRFLOW_CONN_SOAP_HUB" in str(refused.value) and "SECRET-CANARY" not in str(refused.value)
