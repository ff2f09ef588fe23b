"""A recipient that lists several certificates (its old and new key during a rotation, or a primary and a
disaster-recovery key): the exchange encrypts each message once, with one EncryptedKey per certificate valid
at the time, and either private key opens the delivered file, with our ``receive`` and with ``xmlsec1``.
Expired or not-yet-valid certificates are skipped with a warning while one is valid; none valid refuses.
"""
from __future__ import annotations

import csv
import datetime as dt
import logging
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from lxml import etree

from exchange import pipeline
from exchange.config import demo_data_dir
from exchange.receive import Receiver
from exchange.runtime import open_exchange
from exchange.security import SecurityError, key_id, mint_dev_pki
from exchange.security.keys import load_certificate
from niem_iepd import ns
from transforms.model import ConfigError

XMLSEC1 = shutil.which("xmlsec1")
RECIPIENT = "state-bh"
KEYS = f"{{{ns.DS}}}KeyInfo/{{{ns.XENC}}}EncryptedKey"


def mini_drop(directory: Path, rows: int = 4) -> Path:
    """The first ``rows`` bookings of the demo drop, with their charges."""
    directory.mkdir()
    with (demo_data_dir() / "bookings.csv").open(newline="") as handle:
        reader = csv.reader(handle)
        kept = [next(reader)] + [row for _, row in zip(range(rows), reader)]
    numbers = {row[11] for row in kept[1:]}
    with (directory / "bookings.csv").open("w", newline="") as handle:
        csv.writer(handle).writerows(kept)
    with (demo_data_dir() / "booking_charges.csv").open(newline="") as handle:
        reader = csv.reader(handle)
        charges = [next(reader)] + [row for row in reader if row[0] in numbers]
    with (directory / "booking_charges.csv").open("w", newline="") as handle:
        csv.writer(handle).writerows(charges)
    return directory


@pytest.fixture
def home(tmp_path) -> Path:
    """An exchange home whose dev PKI has, for the state agency, a current key, the next key and a retired
    (expired) one."""
    home = tmp_path / "home"
    now = dt.datetime.now(dt.timezone.utc)
    certs = home / "certs/dev"
    mint_dev_pki(certs, organization="Example County", recipients=[RECIPIENT, f"{RECIPIENT}-next"], now=now)
    mint_dev_pki(certs, organization="Example County", recipients=[f"{RECIPIENT}-retired"],
                 now=now - dt.timedelta(days=10), days=2)
    mini_drop(home / "drop")
    return home


def write_config(home: Path, certificate: str | list[str]) -> Path:
    raw = yaml.safe_load((demo_data_dir() / "demo-exchange.yaml").read_text())
    raw["source"]["path"] = str(home / "drop")
    raw["recipients"] = [r for r in raw["recipients"] if r["id"] == RECIPIENT]
    raw["recipients"][0]["certificate"] = certificate
    path = home / "exchange.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def cert(name: str) -> str:
    return f"certs/dev/recipients/{name}.pem"


def key(home: Path, name: str) -> Path:
    return home / f"certs/dev/recipients/{name}.key"


def test_either_key_opens_a_message_sent_to_both_certificates(home, tmp_path, caplog):
    config = write_config(home, [cert(RECIPIENT), cert(f"{RECIPIENT}-next"), cert(f"{RECIPIENT}-retired")])
    with caplog.at_level(logging.WARNING, logger="exchange.keystore"):
        ex = open_exchange(config, home)
    try:
        warnings = [r.getMessage() for r in caplog.records]
        assert any(f"recipients.{RECIPIENT}.certificate[2]" in w and "has expired" in w for w in warnings), warnings
        summary = pipeline.run(ex)
    finally:
        ex.close()
    delivered = sorted((home / "var/outbox" / RECIPIENT).glob("*.xml"))
    assert summary.delivered == len(delivered) > 0
    message = delivered[0]
    encrypted_keys = etree.fromstring(message.read_bytes()).findall(KEYS)
    assert [k.findtext(f"{{{ns.DS}}}KeyInfo/{{{ns.DS}}}KeyName") for k in encrypted_keys] == [
        key_id(load_certificate(home / cert(name))) for name in (RECIPIENT, f"{RECIPIENT}-next")
    ], "one EncryptedKey per valid certificate, none for the expired one"

    receipts = []
    for name in (RECIPIENT, f"{RECIPIENT}-next"):
        receiver = Receiver.open(key=key(home, name), trusted=[home / "certs/dev/signing.pem"],
                                 out_dir=tmp_path / f"inbox-{name}")
        try:
            receipts.append(receiver.receive(message.read_bytes(), source=message.name))
        finally:
            receiver.close()
    assert receipts[0].plaintext_path.read_bytes() == receipts[1].plaintext_path.read_bytes()
    retired = Receiver.open(key=key(home, f"{RECIPIENT}-retired"), trusted=[home / "certs/dev/signing.pem"],
                            out_dir=tmp_path / "inbox-retired")
    try:
        with pytest.raises(SecurityError, match="encrypted to a different certificate"):
            retired.receive(message.read_bytes(), source=message.name)
    finally:
        retired.close()

    if XMLSEC1 is None:
        pytest.skip("the xmlsec1 tool is not installed (apt-get install xmlsec1)")
    opened = []
    for name in (RECIPIENT, f"{RECIPIENT}-next"):
        out = tmp_path / f"xmlsec1-{name}.xml"
        done = subprocess.run([XMLSEC1, "--decrypt", "--privkey-pem", str(key(home, name)), "--output", str(out),
                               str(message)], capture_output=True, timeout=60, check=False)
        assert done.returncode == 0, (name, done.stderr.decode())
        check = subprocess.run([XMLSEC1, "--verify", "--trusted-pem", str(home / "certs/dev/ca.pem"), str(out)],
                               capture_output=True, timeout=60, check=False)
        assert check.returncode == 0, (name, check.stderr.decode())
        opened.append(etree.tostring(etree.parse(str(out)), method="c14n", exclusive=True))
    assert opened[0] == opened[1]
    refused = subprocess.run([XMLSEC1, "--decrypt", "--privkey-pem", str(key(home, f"{RECIPIENT}-retired")),
                              str(message)], capture_output=True, timeout=60, check=False)
    assert refused.returncode != 0


def test_a_single_certificate_still_gets_the_single_recipient_shape(home):
    ex = open_exchange(write_config(home, cert(RECIPIENT)), home)
    try:
        pipeline.run(ex)
    finally:
        ex.close()
    message = sorted((home / "var/outbox" / RECIPIENT).glob("*.xml"))[0]
    encrypted_keys = etree.fromstring(message.read_bytes()).findall(KEYS)
    assert len(encrypted_keys) == 1 and encrypted_keys[0].find(f"{{{ns.DS}}}KeyInfo/{{{ns.DS}}}KeyName") is None


def test_none_valid_refuses_to_start_naming_each(home):
    config = write_config(home, [cert(f"{RECIPIENT}-retired")])
    with pytest.raises(ConfigError) as caught:
        open_exchange(config, home)
    assert caught.value.key == f"recipients.{RECIPIENT}.certificate"
    assert "has expired" in caught.value.problem
    config = write_config(home, [cert(f"{RECIPIENT}-retired"), cert(f"{RECIPIENT}-retired-too")])
    with pytest.raises(ConfigError) as caught:  # a missing file names its list position
        open_exchange(config, home)
    assert caught.value.key == f"recipients.{RECIPIENT}.certificate[1]"


def test_the_pull_service_opens_although_a_recipient_certificate_expired(home):
    """`serve` only hands out messages already encrypted: a recipient whose certificates all expired stops
    the pipeline (above), not the service other recipients pull from."""
    config = write_config(home, [cert(f"{RECIPIENT}-retired")])
    ex = open_exchange(config, home, open_source=False)
    try:
        assert ex.recipient_certs == {} and [r.id for r in ex.config.recipients] == [RECIPIENT]
    finally:
        ex.close()


def test_certificates_that_expire_while_running_are_dropped_then_encryption_refused(home):
    """Loaded while valid; per message only the ones valid now are used, and none valid refuses."""
    now = [dt.datetime.now(dt.timezone.utc)]
    config = write_config(home, [cert(RECIPIENT), cert(f"{RECIPIENT}-next")])
    ex = open_exchange(config, home, clock=lambda: now[0])
    try:
        certificates = ex.recipient_certs[RECIPIENT]
        assert len(certificates.usable(now[0])) == 2
        keys = pipeline.plan(ex)
        now[0] = certificates.not_valid_after + dt.timedelta(days=1)
        with pytest.raises(SecurityError, match="no certificate is valid now"):
            pipeline.process_window(ex, keys[0])
    finally:
        ex.close()


@pytest.mark.parametrize(("value", "problem"), [([], "at least one certificate"),
                                                 (["a.pem", "a.pem"], "listed twice")])
def test_a_bad_certificate_list_is_a_config_error(home, value, problem):
    from exchange.config import load_config

    with pytest.raises(ConfigError) as caught:
        load_config(write_config(home, value))
    assert caught.value.key == "recipients.0.certificate" and problem in caught.value.problem
