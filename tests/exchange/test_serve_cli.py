"""``niem-exchange serve`` as an operator runs it: a subprocess serving an exchange's pull recipient and a
vendor over mutual TLS, called with zeep and httpx; and the one-line errors for missing TLS files."""
from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml

from exchange import pipeline
from exchange.runtime import open_exchange
from tests.conftest import mint_demo_home
from tests.support.drops import small_demo_drop
from tests.support.pull_client import PullClient
from tests.support.soap_server import tls_pki  # noqa: F401 (fixture)
from tests.support.sshd import free_port

CLI = str(Path(sys.executable).with_name("niem-exchange"))


@pytest.fixture(scope="module")
def pki_home(tmp_path_factory) -> Path:
    """One dev PKI for the module (minting 3072-bit keys is slow); each test copies it into its own home."""
    return mint_demo_home(tmp_path_factory.mktemp("serve-pki"))


def _exchange(tmp_path: Path, tls_pki, demo_config: Path, pki_home: Path, **inbound) -> tuple[Path, Path]:
    home = tmp_path / "home"
    shutil.copytree(pki_home / "certs", home / "certs")
    raw = yaml.safe_load(demo_config.read_text())
    raw["recipients"][0]["transport"] = {"kind": "pull", "client_certificate": str(tls_pki.cert("client")),
                                         "signing_certificate": str(tls_pki.cert("client-signing"))}
    raw["source"]["path"] = str(small_demo_drop(tmp_path / "drop", 3))
    if inbound:
        raw["inbound"] = inbound
    config = home / "served.yaml"
    config.write_text(yaml.safe_dump(raw))
    return home, config


def _tls(pki) -> list[str]:
    return ["--certfile", str(pki.cert("server")), "--keyfile", str(pki.key("server")),
            "--client-ca", str(pki.cert("ca"))]


def _wait_for(port: int, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"serve exited: {process.communicate()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError("serve did not start listening")


def test_serve_runs_the_service_with_mutual_tls_for_pull_recipients(tmp_path, tls_pki, demo_config, pki_home):
    home, config = _exchange(tmp_path, tls_pki, demo_config, pki_home, vendors=[str(tls_pki.cert("other-signing"))])
    ex = open_exchange(config, home)
    try:
        assert pipeline.run(ex).enqueued >= 3
        waiting = {e.message_id for e in ex.outbox.entries(recipient="county-bh")}
    finally:
        ex.close()
    # serving reads no records, so it needs none of the source's secrets (here: an RMS URL that is not set)
    raw = yaml.safe_load(config.read_text())
    raw["source"] = {"kind": "rms_sql", "url_env": "NIEM_TEST_RMS_URL_NOT_SET", "table": "vw_arrests",
                     "record_kind": "arrest"}
    config.write_text(yaml.safe_dump(raw))
    port = free_port()
    process = subprocess.Popen([CLI, "serve", str(config), "--home", str(home), "--port", str(port), *_tls(tls_pki)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(port, process)
        endpoint = f"https://127.0.0.1:{port}/soap/exchange"
        context = ssl.create_default_context(cafile=str(tls_pki.cert("ca")))
        context.load_cert_chain(tls_pki.cert("client"), tls_pki.key("client"))
        with httpx.Client(verify=context, trust_env=False) as http:
            wsdl = http.get(endpoint + "?wsdl")
        assert wsdl.status_code == 200 and b"PullMessages" in wsdl.content and endpoint.encode() in wsdl.content
        with httpx.Client(verify=str(tls_pki.cert("ca")), trust_env=False) as anonymous, \
                pytest.raises(httpx.HTTPError):  # no client certificate: the handshake is refused
            anonymous.get(endpoint + "?wsdl")

        county = PullClient(endpoint, tls_pki, tls="client", signing="client-signing",
                            service_certificate=home / "certs/dev/signing.pem")
        pulled = county.pull(100)
        assert {m.MessageID for m in pulled.Message} == waiting
        assert all(county.acknowledge(m.MessageID, m.PayloadSHA256).Status == "acknowledged" for m in pulled.Message)
        assert county.pull(100).Message == []
        county.close()
    finally:
        process.terminate()
        out, err = process.communicate(timeout=30)
    assert f"serving demo-booking at {endpoint} (mutual TLS; pull recipients: county-bh; vendors: 1)" in out, out + err
    ex = open_exchange(config, home, open_source=False)
    try:
        assert {e.state for e in ex.outbox.entries(recipient="county-bh")} == {"delivered"}
        with ex.engine.connect() as conn:
            ledger = [r[0] for r in conn.exec_driver_sql("SELECT message_id FROM ledger WHERE recipient='county-bh'")]
    finally:
        ex.close()
    assert sorted(ledger) == sorted(waiting)


@pytest.mark.parametrize("case, expected", [
    ("missing certfile", "--certfile: file {missing} not found"),
    ("no certfile at all", "--certfile: not given, and inbound.tls_certificate is not set in {config}"),
    ("missing client ca", "--client-ca: file {missing} not found"),
    ("missing pinned recipient certificate", "recipients.county-bh.transport.signing_certificate: file"),
])
def test_serve_refuses_missing_files_with_one_clear_line(tmp_path, tls_pki, demo_config, pki_home, case, expected):
    home, config = _exchange(tmp_path, tls_pki, demo_config, pki_home)
    missing = tmp_path / "nowhere.pem"
    args = _tls(tls_pki)
    if case == "missing certfile":
        args[1] = str(missing)
    elif case == "no certfile at all":
        args = args[2:]
    elif case == "missing client ca":
        args[5] = str(missing)
    else:
        raw = yaml.safe_load(config.read_text())
        raw["recipients"][0]["transport"]["signing_certificate"] = str(missing)
        config.write_text(yaml.safe_dump(raw))
    result = subprocess.run([CLI, "serve", str(config), "--home", str(home), "--port", str(free_port()), *args],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    message = " ".join(result.stderr.split())
    assert expected.format(missing=missing, config=config) in message, result.stderr
    assert "Traceback" not in result.stderr
