"""A development PKI minted by a command: a dev CA, our signing certificate, one encryption key per recipient.

For demos and tests only. Real deployments load certificates issued by the agencies' own CAs; nothing here
is ever committed (``.gitignore`` keeps ``*.pem`` and ``certs/**/*.key`` out).

Layout under ``directory``::

    ca.pem  ca.key  signing.pem  signing.key  recipients/<name>.pem  recipients/<name>.key

Our signing key is RSA-3072 by default or, with ``signing_key_type=SigningKeyType.EC_P256``, ECDSA P-256
(signatures become ECDSA-SHA256): on a 2-core machine an RSA-3072 signature costs ~2.5 ms of CPU and a P-256
one ~0.05 ms, which decides how many messages an hour one machine can sign (bench/RESULTS.md). The CA and the
recipients' encryption keys stay RSA-3072 (key transport is RSA-OAEP).

Private keys are created with mode 0600 from the first byte: the file is opened with ``os.open(..., 0o600)``,
never created wider and narrowed afterwards. They are written unencrypted (the demo receiver needs them),
except our signing key when a ``signing_passphrase`` is given: then ``signing.key`` is encrypted PKCS#8 and,
with ``pkcs12=True``, ``signing.p12`` holds the key and its certificate under the same passphrase.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from transforms.model.errors import ConfigError

RSA_BITS = 3072
#: Certificates start slightly before ``now`` so a receiver whose clock lags a little still accepts them.
CLOCK_SKEW = dt.timedelta(minutes=5)
_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")

_AnyPrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
_AnyPublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey


class SigningKeyType(str, Enum):
    """The kinds of signing key the dev PKI mints; the values are what ``certs dev-pki --signing-key`` takes."""

    RSA_3072 = "rsa-3072"
    """RSA 3072 bits, RSA-SHA256 signatures: what every XML Signature toolkit verifies (the default)."""
    EC_P256 = "ec-p256"
    """ECDSA on NIST P-256, ECDSA-SHA256 signatures: about fifty times cheaper to sign than RSA-3072."""

    @classmethod
    def of(cls, public_key: _AnyPublicKey) -> SigningKeyType | None:
        """The type of an existing key, or None for a key the dev PKI would not have minted."""
        if isinstance(public_key, rsa.RSAPublicKey) and public_key.key_size == RSA_BITS:
            return cls.RSA_3072
        if isinstance(public_key, ec.EllipticCurvePublicKey) and isinstance(public_key.curve, ec.SECP256R1):
            return cls.EC_P256
        return None


@dataclass(frozen=True)
class DevPki:
    """The files of a dev PKI; ``minted`` says whether this call created any of them."""

    directory: Path
    ca_certificate: Path
    ca_key: Path
    signing_certificate: Path
    signing_key: Path
    recipients: tuple[str, ...]
    minted: bool

    def recipient_certificate(self, name: str) -> Path:
        """Path of the encryption certificate of recipient ``name``."""
        return _recipient_paths(self.directory, self._known(name))[0]

    def recipient_key(self, name: str) -> Path:
        """Path of the private key of recipient ``name`` (the demo receiver decrypts with it)."""
        return _recipient_paths(self.directory, self._known(name))[1]

    def _known(self, name: str) -> str:
        if name not in self.recipients:
            raise KeyError(name)
        return name


def mint_dev_pki(
    directory: Path,
    *,
    organization: str,
    recipients: Sequence[str],
    now: dt.datetime,
    days: int = 365,
    signing_passphrase: bytes | None = None,
    pkcs12: bool = False,
    signing_key_type: SigningKeyType | str | None = None,
) -> DevPki:
    """Create (or reuse) the dev PKI in ``directory`` and return its paths.

    Idempotent: when the CA, the signing pair and every named recipient pair exist, nothing is touched and
    ``minted`` is False. A recipient named for the first time is added under the existing CA. A directory
    holding only part of a CA or signing pair is refused (ConfigError) rather than silently overwritten.
    ``now`` must be timezone-aware; certificates are valid from ``now`` (minus a small skew) for ``days``.
    ``signing_passphrase`` encrypts a newly minted signing key (and ``pkcs12`` also writes ``signing.p12``).
    ``signing_key_type`` picks the new signing key's algorithm (default RSA-3072); given for a PKI that
    already exists, it must match the signing certificate there (ConfigError otherwise: the existing key is
    never replaced behind the caller's back).
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    try:
        wanted = None if signing_key_type is None else SigningKeyType(signing_key_type)
    except ValueError:
        raise ConfigError(
            "mint_dev_pki", "signing_key_type", "unknown signing key type",
            f"use one of {', '.join(t.value for t in SigningKeyType)}",
        ) from None
    if pkcs12 and not signing_passphrase:
        raise ConfigError("mint_dev_pki", "pkcs12", "a PKCS#12 file needs a passphrase", "give a signing passphrase")
    names = tuple(dict.fromkeys(recipients))
    for name in names:
        if not _SAFE_NAME.fullmatch(name):
            raise ConfigError(
                "mint_dev_pki", "recipients", "a recipient name is not a safe file name",
                "use letters, digits, '.', '_' or '-' (at most 64 characters)",
            )
    directory = Path(directory)
    pki = DevPki(
        directory=directory,
        ca_certificate=directory / "ca.pem",
        ca_key=directory / "ca.key",
        signing_certificate=directory / "signing.pem",
        signing_key=directory / "signing.key",
        recipients=names,
        minted=False,
    )
    core = (pki.ca_certificate, pki.ca_key, pki.signing_certificate, pki.signing_key)
    present = [p.exists() for p in core]
    if any(present) and not all(present):
        raise ConfigError(
            str(directory), "dev PKI", "the CA or signing files are incomplete",
            "remove the directory and mint again",
        )
    minted = False
    if all(present):
        ca_cert = x509.load_pem_x509_certificate(pki.ca_certificate.read_bytes())
        ca_key = serialization.load_pem_private_key(pki.ca_key.read_bytes(), password=None)
        if wanted is not None:
            existing = x509.load_pem_x509_certificate(pki.signing_certificate.read_bytes()).public_key()
            if SigningKeyType.of(existing) is not wanted:
                raise ConfigError(
                    str(directory), "signing_key_type", f"the existing signing key is not {wanted.value}",
                    "mint into another directory, or remove this one and mint again",
                )
    else:
        directory.mkdir(parents=True, exist_ok=True)
        ca_key = _new_key()
        ca_cert = _ca_certificate(ca_key, organization, now, days)
        signing_key = _new_key(wanted or SigningKeyType.RSA_3072)
        signing_cert = _leaf_certificate(
            ca_cert, ca_key, signing_key.public_key(), f"{organization} signing", now, days,
            x509.KeyUsage(
                digital_signature=True, content_commitment=True, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=False, crl_sign=False,
                encipher_only=False, decipher_only=False,
            ),
        )
        # Leaves first and the CA last: a crash part-way leaves an incomplete pair that the next call refuses.
        _write_private_key(pki.signing_key, signing_key, signing_passphrase)
        _write_certificate(pki.signing_certificate, signing_cert)
        if pkcs12:
            _write_pkcs12(directory / "signing.p12", signing_key, signing_cert, signing_passphrase)
        _write_private_key(pki.ca_key, ca_key)
        _write_certificate(pki.ca_certificate, ca_cert)
        minted = True
    for name in names:
        cert_path, key_path = _recipient_paths(directory, name)
        if cert_path.exists() and key_path.exists():
            continue
        if cert_path.exists() or key_path.exists():
            raise ConfigError(
                str(directory), f"recipients/{name}", "only one of the certificate and key exists",
                "remove both files and mint again",
            )
        key = _new_key()
        cert = _leaf_certificate(
            ca_cert, ca_key, key.public_key(), name, now, days,
            x509.KeyUsage(
                digital_signature=False, content_commitment=False, key_encipherment=True,
                data_encipherment=False, key_agreement=False, key_cert_sign=False, crl_sign=False,
                encipher_only=False, decipher_only=False,
            ),
        )
        key_path.parent.mkdir(parents=True, exist_ok=True)
        _write_private_key(key_path, key)
        _write_certificate(cert_path, cert)
        minted = True
    return dataclasses.replace(pki, minted=minted)


def _recipient_paths(directory: Path, name: str) -> tuple[Path, Path]:
    base = Path(directory) / "recipients"
    return base / f"{name}.pem", base / f"{name}.key"


def _new_key(kind: SigningKeyType = SigningKeyType.RSA_3072) -> _AnyPrivateKey:
    if kind is SigningKeyType.EC_P256:
        return ec.generate_private_key(ec.SECP256R1())
    return rsa.generate_private_key(public_exponent=65537, key_size=RSA_BITS)


def _name(common_name: str, organization: str | None = None) -> x509.Name:
    attributes = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if organization:
        attributes.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    return x509.Name(attributes)


def _ca_certificate(
    key: rsa.RSAPrivateKey, organization: str, now: dt.datetime, days: int
) -> x509.Certificate:
    name = _name(f"{organization} dev CA", organization)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )


def _leaf_certificate(
    ca_cert: x509.Certificate,
    ca_key: rsa.RSAPrivateKey,
    public_key: _AnyPublicKey,
    common_name: str,
    now: dt.datetime,
    days: int,
    usage: x509.KeyUsage,
) -> x509.Certificate:
    organization = ca_cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    return (
        x509.CertificateBuilder()
        .subject_name(_name(common_name, str(organization[0].value) if organization else None))
        .issuer_name(ca_cert.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(usage, critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )


def _write_private_key(path: Path, key: _AnyPrivateKey, passphrase: bytes | None = None) -> None:
    encryption = (serialization.BestAvailableEncryption(passphrase) if passphrase
                  else serialization.NoEncryption())
    data = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)
    _write_new(path, data, 0o600)


def _write_pkcs12(path: Path, key: _AnyPrivateKey, certificate: x509.Certificate, passphrase: bytes) -> None:
    """The key and its certificate in one passphrase-protected PKCS#12 file (0600)."""
    from cryptography.hazmat.primitives.serialization import pkcs12

    data = pkcs12.serialize_key_and_certificates(
        b"signing", key, certificate, None, serialization.BestAvailableEncryption(passphrase)
    )
    _write_new(path, data, 0o600)


def _write_certificate(path: Path, cert: x509.Certificate) -> None:
    _write_new(path, cert.public_bytes(serialization.Encoding.PEM), 0o644)


def _write_new(path: Path, data: bytes, mode: int) -> None:
    """Write ``data`` to a new file created with ``mode``; O_EXCL so an existing file is never replaced."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
