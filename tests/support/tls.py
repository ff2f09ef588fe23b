"""A throwaway PKI for TLS and WS-Security tests, minted with ``cryptography`` (never committed).

``mint_tls_pki(directory)`` writes a CA, a server certificate for 127.0.0.1/localhost (serverAuth), a client
certificate (clientAuth), and two WS-Security signing pairs (client and server), a second client pair
(``other-client``, ``other-signing``: another party under the same CA), plus an unrelated "rogue" CA and
client pair that nobody trusts.
"""
from __future__ import annotations

import datetime as dt
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@dataclass(frozen=True)
class TlsPki:
    """Paths of the minted files (``<name>.pem`` certificate, ``<name>.key`` private key)."""

    directory: Path

    def cert(self, name: str) -> Path:
        """Certificate of ``name`` (ca, server, client, client-signing, server-signing, other-client,
        other-signing, rogue-ca, rogue-client, rogue-signing)."""
        return self.directory / f"{name}.pem"

    def key(self, name: str) -> Path:
        """Private key of ``name``."""
        return self.directory / f"{name}.key"


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "niem-exchange tests"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _write(directory: Path, name: str, key, cert: x509.Certificate) -> None:
    fd = os.open(directory / f"{name}.key", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    (directory / f"{name}.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def _issue(subject: str, key, issuer: x509.Name, issuer_key, now: dt.datetime, *, ca: bool = False,
           usage: list | None = None, sans: list | None = None) -> x509.Certificate:
    builder = (x509.CertificateBuilder().subject_name(_name(subject)).issuer_name(issuer)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=2))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False))
    if ca:
        builder = builder.add_extension(x509.KeyUsage(
            digital_signature=True, content_commitment=False, key_encipherment=False, data_encipherment=False,
            key_agreement=False, key_cert_sign=True, crl_sign=True, encipher_only=False, decipher_only=False),
            critical=True)
    else:
        builder = builder.add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
            issuer_key.public_key()), critical=False)
    if usage:
        builder = builder.add_extension(x509.ExtendedKeyUsage(usage), critical=False)
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def mint_tls_pki(directory: Path) -> TlsPki:
    """Mint every file into ``directory`` (2048-bit RSA: test speed, not production strength)."""
    directory.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.timezone.utc)
    for ca_name, leaves in (("ca", ("server", "client", "client-signing", "server-signing", "other-client",
                                    "other-signing")),
                            ("rogue-ca", ("rogue-client", "rogue-signing"))):
        ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        ca_cert = _issue(f"test {ca_name}", ca_key, _name(f"test {ca_name}"), ca_key, now, ca=True)
        _write(directory, ca_name, ca_key, ca_cert)
        for leaf in leaves:
            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            usage = {"server": [ExtendedKeyUsageOID.SERVER_AUTH]}.get(
                leaf, [ExtendedKeyUsageOID.CLIENT_AUTH] if leaf.endswith("client") else None)
            sans = ([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
                    if leaf == "server" else None)
            _write(directory, leaf, key, _issue(f"test {leaf}", key, ca_cert.subject, ca_key, now,
                                                usage=usage, sans=sans))
    return TlsPki(directory)
