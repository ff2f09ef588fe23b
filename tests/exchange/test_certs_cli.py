"""``niem-exchange certs import | list | rotate`` on real files, keys minted per test."""
from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from lxml import etree
from typer.testing import CliRunner

from exchange.cli import app
from exchange.security import SignatureMethod, SigningIdentity, fingerprint, key_id, mint_dev_pki, sign, verify
from transforms.model.errors import ConfigError, SecurityError

NOW = dt.datetime.now(dt.timezone.utc)


def cli(*args: object):
    return CliRunner().invoke(app, [str(a) for a in args])


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def issue(pki, path: Path, name: str, start: dt.datetime, end: dt.datetime) -> Path:
    """An encryption certificate from ``pki``'s CA with a chosen validity window."""
    ca_cert = x509.load_pem_x509_certificate(pki.ca_certificate.read_bytes())
    ca_key = serialization.load_pem_private_key(pki.ca_key.read_bytes(), password=None)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(ca_cert.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(start).not_valid_after(end)
            .sign(ca_key, hashes.SHA256()))
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


def test_import_pins_a_recipient_certificate_with_its_fingerprint(tmp_path, security_pki):
    source = security_pki.recipient_certificate("state")
    expected = fingerprint(x509.load_pem_x509_certificate(source.read_bytes()))
    store = tmp_path / "certs"
    result = cli("certs", "import", "state-agency", source, "--dir", store)
    assert result.exit_code == 0, result.output
    assert expected in result.output and "check this fingerprint" in result.output
    pinned = store / "recipients" / "state-agency.pem"
    assert fingerprint(x509.load_pem_x509_certificate(pinned.read_bytes())) == expected
    pins = json.loads((store / "recipients" / "pins.json").read_text())
    assert pins["state-agency"]["sha256"] == expected
    # the out-of-band fingerprint, in openssl's colon form, is accepted when it matches
    colons = ":".join(expected[i:i + 2] for i in range(0, 64, 2)).upper()
    again = cli("certs", "import", "state-agency", source, "--dir", store, "--fingerprint", colons)
    assert again.exit_code == 0, again.output
    assert "check this fingerprint" not in again.output


def test_import_refuses_a_wrong_fingerprint_a_signing_cert_and_a_silent_replacement(tmp_path, security_pki):
    store = tmp_path / "certs"
    state, provider = security_pki.recipient_certificate("state"), security_pki.recipient_certificate("provider")
    wrong = cli("certs", "import", "state", state, "--dir", store, "--fingerprint", "00" * 32)
    assert isinstance(wrong.exception, SecurityError) and "fingerprint" in str(wrong.exception)
    assert not (store / "recipients" / "state.pem").exists()
    signing = cli("certs", "import", "state", security_pki.signing_certificate, "--dir", store)
    assert isinstance(signing.exception, SecurityError) and "key encipherment" in str(signing.exception)
    assert cli("certs", "import", "state", state, "--dir", store).exit_code == 0
    swapped = cli("certs", "import", "state", provider, "--dir", store)
    assert isinstance(swapped.exception, ConfigError) and "already pinned" in str(swapped.exception)
    assert cli("certs", "import", "state", provider, "--dir", store, "--replace").exit_code == 0
    assert json.loads((store / "recipients" / "pins.json").read_text())["state"]["sha256"] == fingerprint(
        x509.load_pem_x509_certificate(provider.read_bytes()))


def test_import_refuses_an_expired_certificate(tmp_path, security_pki):
    old = issue(security_pki, tmp_path / "old.pem", "old", NOW - dt.timedelta(days=60), NOW - dt.timedelta(days=1))
    result = cli("certs", "import", "old", old, "--dir", tmp_path / "certs")
    assert isinstance(result.exception, SecurityError) and "expired" in str(result.exception)


def test_list_shows_expiry_warns_30_days_ahead_and_fails_on_expired_or_swapped(tmp_path, security_pki):
    store = tmp_path / "certs"
    assert cli("certs", "import", "state", security_pki.recipient_certificate("state"), "--dir", store).exit_code == 0
    soon = issue(security_pki, tmp_path / "soon.pem", "soon", NOW - dt.timedelta(days=1), NOW + dt.timedelta(days=10, hours=1))
    assert cli("certs", "import", "soon", soon, "--dir", store).exit_code == 0
    healthy = cli("certs", "list", "--dir", store)
    assert healthy.exit_code == 0, healthy.output
    assert "recipients/soon.pem expires in 10 days" in healthy.output  # CliRunner mixes stderr in
    assert "expires soon" in healthy.output and "ok" in healthy.output
    # an expired certificate dropped into the store, and a pinned file swapped on disk
    issue(security_pki, store / "expired.pem", "expired", NOW - dt.timedelta(days=60), NOW - dt.timedelta(days=2))
    shutil.copyfile(security_pki.recipient_certificate("provider"), store / "recipients" / "state.pem")
    broken = cli("certs", "list", "--dir", store)
    assert broken.exit_code == 1
    assert "expired.pem: expired" in broken.output
    assert "recipients/state.pem: pin mismatch" in broken.output


def test_rotating_an_ecdsa_signing_key_keeps_ecdsa(tmp_path):
    """A county that chose ECDSA P-256 (receivers set up for ECDSA-SHA256) is not switched to RSA by a rotation."""
    pki = mint_dev_pki(tmp_path / "dev", organization="Fast County", recipients=[], now=NOW, signing_key_type="ec-p256")
    result = cli("certs", "rotate", "--dir", pki.directory)
    assert result.exit_code == 0, result.output
    rotated = SigningIdentity.load(pki.signing_key, pki.signing_certificate)
    assert rotated.method is SignatureMethod.ECDSA_SHA256
    signed = etree.tostring(sign(etree.fromstring(b"<m xmlns='urn:r'><v>1</v></m>"), rotated))
    assert verify(signed, [pki.signing_certificate]) is not None


def test_rotate_with_the_dev_ca_keeps_the_old_pair_and_signs_with_a_new_key_id(tmp_path):
    pki = mint_dev_pki(tmp_path / "dev", organization="Rotating County", recipients=[], now=NOW)
    old_cert = x509.load_pem_x509_certificate(pki.signing_certificate.read_bytes())
    old_id = key_id(old_cert)
    result = cli("certs", "rotate", "--dir", pki.directory)
    assert result.exit_code == 0, result.output
    new_identity = SigningIdentity.load(pki.signing_key, pki.signing_certificate)
    assert new_identity.key_id != old_id
    assert f"{old_id} -> {new_identity.key_id}" in result.output
    previous_key, previous_cert = (pki.directory / "previous" / f"signing-{old_id}.key",
                                   pki.directory / "previous" / f"signing-{old_id}.pem")
    assert mode(pki.signing_key) == 0o600 and mode(previous_key) == 0o600
    old_identity = SigningIdentity.load(previous_key, previous_cert)
    assert old_identity.fingerprint == fingerprint(old_cert)
    # new certificate from the same CA with the same role
    ca = x509.load_pem_x509_certificate(pki.ca_certificate.read_bytes())
    new_identity.certificate.verify_directly_issued_by(ca)
    assert new_identity.certificate.extensions.get_extension_for_class(x509.KeyUsage).value.digital_signature
    # a receiver holding both accepts both during the change
    document = etree.fromstring(b'<m xmlns="urn:rotation"><v>1</v></m>')
    for identity in (old_identity, new_identity):
        data = etree.tostring(sign(document, identity))
        assert verify(data, [previous_cert, pki.signing_certificate]) is not None


def test_rotate_without_a_ca_key_writes_a_csr_then_activates_the_issued_certificate(tmp_path):
    pki = mint_dev_pki(tmp_path / "dev", organization="Real CA County", recipients=[], now=NOW)
    ca_key = serialization.load_pem_private_key(pki.ca_key.read_bytes(), password=None)
    ca_cert = x509.load_pem_x509_certificate(pki.ca_certificate.read_bytes())
    pki.ca_key.unlink()  # the CA lives elsewhere, as in production
    old_id = key_id(x509.load_pem_x509_certificate(pki.signing_certificate.read_bytes()))
    started = cli("certs", "rotate", "--dir", pki.directory)
    assert started.exit_code == 0, started.output
    assert "signing-next.csr" in started.output
    assert mode(pki.directory / "signing-next.key") == 0o600
    assert key_id(x509.load_pem_x509_certificate(pki.signing_certificate.read_bytes())) == old_id  # unchanged
    again = cli("certs", "rotate", "--dir", pki.directory)
    assert isinstance(again.exception, ConfigError) and "already pending" in str(again.exception)
    # the CA issues the certificate for the request
    csr = x509.load_pem_x509_csr((pki.directory / "signing-next.csr").read_bytes())
    assert csr.is_signature_valid
    issued = (x509.CertificateBuilder().subject_name(csr.subject).issuer_name(ca_cert.subject)
              .public_key(csr.public_key()).serial_number(x509.random_serial_number())
              .not_valid_before(NOW - dt.timedelta(minutes=5)).not_valid_after(NOW + dt.timedelta(days=30))
              .sign(ca_key, hashes.SHA256()))
    issued_path = tmp_path / "issued.pem"
    issued_path.write_bytes(issued.public_bytes(serialization.Encoding.PEM))
    # a certificate for some other key is refused
    other = issue_for_other_key = tmp_path / "other.pem"
    other.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    refused = cli("certs", "rotate", "--dir", pki.directory, "--certificate", issue_for_other_key)
    assert isinstance(refused.exception, SecurityError)
    done = cli("certs", "rotate", "--dir", pki.directory, "--certificate", issued_path)
    assert done.exit_code == 0, done.output
    identity = SigningIdentity.load(pki.signing_key, pki.signing_certificate)
    assert identity.fingerprint == fingerprint(issued) and identity.key_id != old_id
    assert (pki.directory / "previous" / f"signing-{old_id}.pem").exists()
    assert not (pki.directory / "signing-next.key").exists() and mode(pki.signing_key) == 0o600


def test_certs_errors_print_an_error_line_and_exit_2(tmp_path, security_pki):
    done = subprocess.run(
        [str(Path(sys.executable).with_name("niem-exchange")), "certs", "import", "state",
         str(security_pki.signing_certificate), "--dir", str(tmp_path / "certs")],
        capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr.startswith("error:") and "Traceback" not in done.stderr
    assert "key encipherment" in " ".join(done.stderr.split())  # rich may wrap the line at 80 columns
