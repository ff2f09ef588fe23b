"""A passphrase-protected signing key (PEM or PKCS#12), minted by ``niem-exchange certs dev-pki``: the exchange
YAML names where the passphrase is (an environment variable or a file), never the passphrase itself, and
every wrong or missing passphrase is a ConfigError naming the setting and never the secret.
"""
from __future__ import annotations

import stat
from pathlib import Path

import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from typer.testing import CliRunner

from exchange import pipeline
from exchange.cli import app
from exchange.config import demo_data_dir
from exchange.receive import Receiver
from exchange.runtime import open_exchange
from exchange.security import SigningIdentity, key_id
from exchange.security.keys import load_certificate
from tests.exchange.test_recipient_certificates import mini_drop
from transforms.model import ConfigError

SECRET = "correct horse battery staple 4711"
VARIABLE = "NIEM_TEST_SIGNING_PASSPHRASE"


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    """A home whose dev PKI was minted by the CLI with a passphrase-protected signing key and signing.p12."""
    home = tmp_path / "home"
    monkeypatch.setenv(VARIABLE, SECRET)
    result = CliRunner().invoke(app, ["certs", "dev-pki", "--dir", str(home / "certs/dev"), "--recipient",
                                      "state-bh", "--passphrase-env", VARIABLE, "--pkcs12"])
    assert result.exit_code == 0, result.output
    assert SECRET not in result.output
    mini_drop(home / "drop", rows=2)
    return home


def write_config(home: Path, **signing) -> Path:
    raw = yaml.safe_load((demo_data_dir() / "demo-exchange.yaml").read_text())
    raw["source"]["path"] = str(home / "drop")
    raw["recipients"] = [r for r in raw["recipients"] if r["id"] == "state-bh"]
    raw["signing"] = signing
    path = home / "exchange.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def refused(home: Path, setting: str, **signing) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        open_exchange(write_config(home, **signing), home)
    error = caught.value
    assert error.key == setting, str(error)
    assert SECRET not in str(error) + repr(error)
    return error


def test_the_cli_mints_a_protected_key_and_a_pkcs12_file(home):
    key = home / "certs/dev/signing.key"
    with pytest.raises(TypeError):  # encrypted: cryptography wants a password
        serialization.load_pem_private_key(key.read_bytes(), password=None)
    serialization.load_pem_private_key(key.read_bytes(), password=SECRET.encode())
    for path in (key, home / "certs/dev/signing.p12"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_passphrase_from_the_environment_signs_what_the_receiver_verifies(home, tmp_path):
    config = write_config(home, key="certs/dev/signing.key", certificate="certs/dev/signing.pem",
                          passphrase_env=VARIABLE)
    assert SECRET not in config.read_text()
    ex = open_exchange(config, home)
    try:
        assert pipeline.run(ex).delivered > 0
    finally:
        ex.close()
    message = sorted((home / "var/outbox/state-bh").glob("*.xml"))[0]
    receiver = Receiver.open(key=home / "certs/dev/recipients/state-bh.key",
                             trusted=[home / "certs/dev/signing.pem"], out_dir=tmp_path / "inbox")
    try:
        receipt = receiver.receive(message.read_bytes(), source=message.name)
    finally:
        receiver.close()
    assert receipt.sender_key_id == key_id(load_certificate(home / "certs/dev/signing.pem"))


def test_a_passphrase_file_and_a_pkcs12_key_without_a_certificate_setting(home):
    secret_file = home / "signing.pass"
    secret_file.write_text(SECRET + "\n")  # the newline `echo` adds is not part of it
    ex = open_exchange(write_config(home, key="certs/dev/signing.key", certificate="certs/dev/signing.pem",
                                    passphrase_file="signing.pass"), home)
    ex.close()
    ex = open_exchange(write_config(home, key="certs/dev/signing.p12", passphrase_env=VARIABLE), home)
    try:
        assert ex.signer.fingerprint == SigningIdentity.load(
            home / "certs/dev/signing.key", home / "certs/dev/signing.pem", SECRET.encode()).fingerprint
    finally:
        ex.close()


def test_wrong_or_missing_passphrases_name_the_setting_never_the_secret(home, monkeypatch):
    pem = {"key": "certs/dev/signing.key", "certificate": "certs/dev/signing.pem"}
    error = refused(home, "signing.key", **pem)
    assert "passphrase-protected" in error.problem and "signing.passphrase_env" in error.fix
    monkeypatch.setenv("NIEM_TEST_WRONG", SECRET + "x")
    error = refused(home, "signing.passphrase_env", passphrase_env="NIEM_TEST_WRONG", **pem)
    assert "does not open" in error.problem
    refused(home, "signing.passphrase_env", key="certs/dev/signing.p12", passphrase_env="NIEM_TEST_WRONG")
    error = refused(home, "signing.passphrase_env", passphrase_env="NIEM_TEST_NOT_SET_ANYWHERE", **pem)
    assert "NIEM_TEST_NOT_SET_ANYWHERE is not set" in error.problem
    monkeypatch.setenv("NIEM_TEST_EMPTY", "")
    assert "empty" in refused(home, "signing.passphrase_env", passphrase_env="NIEM_TEST_EMPTY", **pem).problem
    (home / "wrong.pass").write_text("not it\n")
    refused(home, "signing.passphrase_file", passphrase_file="wrong.pass", **pem)
    assert "not found" in refused(home, "signing.passphrase_file", passphrase_file="nowhere.pass", **pem).problem
    # a passphrase named for a key that has none
    plain = home / "plain"
    CliRunner().invoke(app, ["certs", "dev-pki", "--dir", str(plain), "--recipient", "state-bh"])
    error = refused(home, "signing.passphrase_env", key=str(plain / "signing.key"),
                    certificate=str(plain / "signing.pem"), passphrase_env=VARIABLE)
    assert "not passphrase-protected" in error.problem


@pytest.mark.parametrize(("signing", "problem"), [
    ({"key": "k.key", "certificate": "c.pem", "passphrase_env": VARIABLE, "passphrase_file": "p"}, "not both"),
    ({"key": "k.key"}, "certificate is required"),
    ({"key": "k.key", "certificate": "c.pem", "passphrase_env": "not a variable name"}, "pattern"),
    ({"key": "k.key", "certificate": "c.pem", "passphrase": SECRET}, "extra"),
])
def test_the_yaml_cannot_hold_the_passphrase_or_two_sources(home, signing, problem):
    from exchange.config import load_config

    with pytest.raises(ConfigError) as caught:
        load_config(write_config(home, **signing))
    assert caught.value.key.startswith("signing") and problem in str(caught.value)
    assert SECRET not in str(caught.value)


def test_rotation_keeps_the_new_key_protected(home, monkeypatch):
    result = CliRunner().invoke(app, ["certs", "rotate", "--dir", str(home / "certs/dev"),
                                      "--passphrase-env", VARIABLE])
    assert result.exit_code == 0, result.output
    with pytest.raises(TypeError):
        serialization.load_pem_private_key((home / "certs/dev/signing.key").read_bytes(), password=None)
    SigningIdentity.load(home / "certs/dev/signing.key", home / "certs/dev/signing.pem", SECRET.encode())


def test_the_cli_refuses_pkcs12_without_a_passphrase(tmp_path):
    result = CliRunner().invoke(app, ["certs", "dev-pki", "--dir", str(tmp_path / "d"), "--pkcs12"])
    assert result.exit_code == 2 and not (tmp_path / "d").exists()
