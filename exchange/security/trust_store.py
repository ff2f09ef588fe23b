"""The trust store on disk: pin recipients' certificates, list every certificate with its expiry, rotate our
signing key.

Layout under the trust-store directory (``certs/`` by default; see ``certs/README.md``)::

    recipients/<name>.pem      a recipient's encryption certificate, as imported
    recipients/pins.json       name -> SHA-256 fingerprint (and expiry, import time) of what was imported
    signing.key, signing.pem   our current signing pair (the dev PKI's layout)
    previous/signing-<key id>.key|.pem   earlier signing pairs, kept until every receiver has the new one
    signing-next.key, signing-next.csr   a pending rotation waiting for the CA to issue its certificate

Pinning: a certificate file whose fingerprint no longer matches ``pins.json`` (swapped on disk) is reported
by :func:`list_certificates` as a pin mismatch. Private keys are created 0600 from the first byte.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID

from exchange.security.keys import RecipientCertificate, fingerprint, key_id, load_certificate
from exchange.security.pki import (
    SigningKeyType,
    _leaf_certificate,
    _new_key,
    _write_certificate,
    _write_new,
    _write_private_key,
)
from transforms.model.errors import ConfigError, SecurityError

#: ``certs list`` warns this long before a certificate expires.
WARN_BEFORE = dt.timedelta(days=30)
_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
PINS = "pins.json"


@dataclass(frozen=True, slots=True)
class PinnedCertificate:
    """A recipient certificate that was imported and pinned."""

    name: str
    path: Path
    fingerprint: str
    not_valid_after: dt.datetime


@dataclass(frozen=True, slots=True)
class CertificateStatus:
    """One certificate file as ``certs list`` shows it."""

    path: Path
    subject: str
    fingerprint: str
    key_id: str
    not_valid_after: dt.datetime | None
    days_left: int | None
    status: str  # ok | expires soon | expired | not yet valid | pin mismatch | unreadable

    @property
    def failing(self) -> bool:
        """True when the certificate must not be used as it is."""
        return self.status in ("expired", "not yet valid", "pin mismatch", "unreadable")


def _pins(directory: Path) -> dict[str, dict[str, str]]:
    path = directory / "recipients" / PINS
    if not path.exists():
        return {}
    return json.loads(path.read_text())


def _write_pins(directory: Path, pins: dict[str, dict[str, str]]) -> None:
    path = directory / "recipients" / PINS
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(pins, indent=2, sort_keys=True) + "\n")
    os.replace(temporary, path)


def import_recipient(
    directory: Path,
    name: str,
    certificate_file: Path,
    *,
    now: dt.datetime,
    expected_fingerprint: str | None = None,
    replace: bool = False,
) -> PinnedCertificate:
    """Check a recipient's certificate and pin it as ``<directory>/recipients/<name>.pem``.

    The certificate must be usable for encryption now (RSA >= 2048, keyEncipherment, inside its validity
    period; :meth:`RecipientCertificate.load` decides). ``expected_fingerprint`` is the SHA-256 fingerprint
    the recipient gave you out of band (``openssl x509 -noout -fingerprint -sha256``, colons optional); a
    mismatch is refused. A different certificate under an existing name is refused unless ``replace``.
    """
    if not _SAFE_NAME.fullmatch(name):
        raise ConfigError("certs import", "NAME", "not a safe file name", "use letters, digits, '.', '_', '-'")
    loaded = RecipientCertificate.load(certificate_file, now=now)
    if expected_fingerprint is not None:
        wanted = expected_fingerprint.replace(":", "").strip().lower()
        if wanted != loaded.fingerprint:
            raise SecurityError(f"recipient certificate {Path(certificate_file).name}",
                                "its SHA-256 fingerprint is not the one given with --fingerprint")
    directory = Path(directory)
    (directory / "recipients").mkdir(parents=True, exist_ok=True)
    target = directory / "recipients" / f"{name}.pem"
    pins = _pins(directory)
    known = pins.get(name, {}).get("sha256")
    if known is not None and known != loaded.fingerprint and not replace:
        raise ConfigError("certs import", name, "a different certificate is already pinned under this name",
                          "check the new fingerprint with the recipient, then pass --replace")
    pem = loaded.certificate.public_bytes(serialization.Encoding.PEM)  # re-encoded: nothing but the cert
    temporary = target.with_suffix(".pem.tmp")
    temporary.write_bytes(pem)
    os.replace(temporary, target)
    pins[name] = {
        "sha256": loaded.fingerprint,
        "not_after": loaded.not_valid_after.isoformat(),
        "imported_at": now.isoformat(),
        "file": target.name,
    }
    _write_pins(directory, pins)
    return PinnedCertificate(name, target, loaded.fingerprint, loaded.not_valid_after)


def list_certificates(directory: Path, *, now: dt.datetime, warn_before: dt.timedelta = WARN_BEFORE
                      ) -> list[CertificateStatus]:
    """Every ``*.pem`` certificate under ``directory`` with its expiry and a status, soonest expiry first."""
    directory = Path(directory)
    pins = _pins(directory)
    pinned_files = {entry.get("file", f"{name}.pem"): entry["sha256"] for name, entry in pins.items()}
    result = []
    for path in sorted(directory.rglob("*.pem")):
        try:
            certificate = load_certificate(path)
        except SecurityError:
            result.append(CertificateStatus(path, "?", "", "", None, None, "unreadable"))
            continue
        names = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        subject = str(names[0].value) if names else certificate.subject.rfc4514_string()
        after = certificate.not_valid_after_utc
        days_left = (after - now).days
        digest = fingerprint(certificate)
        if path.parent.name == "recipients" and path.name in pinned_files and pinned_files[path.name] != digest:
            status = "pin mismatch"
        elif now > after:
            status = "expired"
        elif now < certificate.not_valid_before_utc:
            status = "not yet valid"
        elif after - now <= warn_before:
            status = "expires soon"
        else:
            status = "ok"
        result.append(CertificateStatus(path, subject, digest, key_id(certificate), after, days_left, status))
    return sorted(result, key=lambda s: (s.not_valid_after is not None, s.not_valid_after or now))


@dataclass(frozen=True, slots=True)
class Rotation:
    """What ``certs rotate`` did: the key ids before and after, and where each pair now lives."""

    old_key_id: str | None
    new_key_id: str | None
    signing_certificate: Path
    previous_certificate: Path | None
    pending_request: Path | None = None


def rotate_signing_key(directory: Path, *, now: dt.datetime, days: int = 365,
                       passphrase: bytes | None = None) -> Rotation:
    """Replace our signing key: keep the old pair under ``previous/``, put a new one in place.

    With the dev CA's key in ``directory`` the new certificate is issued at once. Without it (a real CA),
    a new key and a certificate signing request are written as ``signing-next.key``/``signing-next.csr``
    and nothing else changes until :func:`activate_signing_certificate` is given the issued certificate.
    Either way the old certificate stays available for receivers to hold alongside the new one. With
    ``passphrase`` the new key is written encrypted under it (the old key file is moved as it is). The new
    key is of the current one's type (ECDSA P-256 stays ECDSA P-256); any other key is replaced by RSA-3072.
    """
    directory = Path(directory)
    key_path, cert_path = directory / "signing.key", directory / "signing.pem"
    if not cert_path.exists():
        raise ConfigError(str(directory), "signing.pem", "no current signing certificate",
                          "run `niem-exchange certs dev-pki` or put the signing pair there")
    current = load_certificate(cert_path, subject="signing certificate")
    ca_key_path, ca_cert_path = directory / "ca.key", directory / "ca.pem"
    # Same algorithm as before (receivers configured for ECDSA-SHA256 keep getting it); RSA-3072 otherwise.
    new_key = _new_key(SigningKeyType.of(current.public_key()) or SigningKeyType.RSA_3072)
    if not ca_key_path.exists():
        next_key, request = directory / "signing-next.key", directory / "signing-next.csr"
        if next_key.exists():
            raise ConfigError(str(directory), "signing-next.key", "a rotation is already pending",
                              "activate it with --certificate ISSUED.pem, or remove signing-next.*")
        csr = (x509.CertificateSigningRequestBuilder().subject_name(current.subject)
               .sign(new_key, hashes.SHA256()))
        _write_private_key(next_key, new_key, passphrase)
        _write_new(request, csr.public_bytes(serialization.Encoding.PEM), 0o644)
        return Rotation(key_id(current), None, cert_path, None, pending_request=request)
    ca_cert = load_certificate(ca_cert_path, subject="CA certificate")
    ca_key = serialization.load_pem_private_key(ca_key_path.read_bytes(), password=None)
    usage = current.extensions.get_extension_for_class(x509.KeyUsage).value
    names = current.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    common_name = str(names[0].value) if names else "signing"
    new_cert = _leaf_certificate(ca_cert, ca_key, new_key.public_key(), common_name, now, days, usage)
    previous = _archive(directory, current, key_path, cert_path)
    _write_private_key(key_path, new_key, passphrase)
    _write_certificate(cert_path, new_cert)
    return Rotation(key_id(current), key_id(new_cert), cert_path, previous)


def activate_signing_certificate(directory: Path, issued: Path) -> Rotation:
    """Finish a rotation started without a CA key: install the issued certificate for ``signing-next.key``."""
    directory = Path(directory)
    next_key = directory / "signing-next.key"
    if not next_key.exists():
        raise ConfigError(str(directory), "signing-next.key", "no rotation is pending", "run `certs rotate` first")
    certificate = load_certificate(issued, subject="issued certificate")
    request = directory / "signing-next.csr"
    # The request carries the pending public key, so a passphrase-protected key need not be opened here.
    pending = (x509.load_pem_x509_csr(request.read_bytes()).public_key() if request.exists()
               else serialization.load_pem_private_key(next_key.read_bytes(), password=None).public_key())
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    if (certificate.public_key().public_bytes(serialization.Encoding.DER, spki)
            != pending.public_bytes(serialization.Encoding.DER, spki)):
        raise SecurityError(f"issued certificate {Path(issued).name}", "it is not for the pending key")
    key_path, cert_path = directory / "signing.key", directory / "signing.pem"
    current = load_certificate(cert_path, subject="signing certificate")
    previous = _archive(directory, current, key_path, cert_path)
    os.replace(next_key, key_path)
    _write_certificate(cert_path, certificate)
    (directory / "signing-next.csr").unlink(missing_ok=True)
    return Rotation(key_id(current), key_id(certificate), cert_path, previous)


def _archive(directory: Path, current: x509.Certificate, key_path: Path, cert_path: Path) -> Path:
    """Move the current signing pair to ``previous/signing-<key id>.*`` (renames keep the key's 0600)."""
    archive = directory / "previous"
    archive.mkdir(exist_ok=True)
    old_id = key_id(current)
    old_cert = archive / f"signing-{old_id}.pem"
    if old_cert.exists():
        raise ConfigError(str(directory), old_cert.name, "this key was archived before", "remove it first")
    os.replace(key_path, archive / f"signing-{old_id}.key")
    os.replace(cert_path, old_cert)
    return old_cert
