"""The attack kit (used by conftest.py's ``kit`` fixture): keys minted for this test session and a genuine message to start every attack from.

- ``ours``: our dev PKI (CA, signing pair, recipients ``state`` and ``provider``);
- ``rogue``: an unrelated PKI whose signing key is valid and self-consistent but pinned by nobody;
- signing certificates issued by our own CA that are expired / not yet valid, and pinned anyway, so the
  validity check (not the pin) is what refuses them.
The genuine message is the IEPD sample BookingNotification with a canary given name that no refusal, and
nothing printed on stderr, may ever contain.
"""
from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from lxml import etree

from exchange.security import (
    DevPki,
    PrivateKey,
    RecipientCertificate,
    SigningIdentity,
    encrypt,
    mint_dev_pki,
    sign,
)
from niem_iepd import ns, safexml

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "niem_iepd/samples/booking-notification.xml"
CANARY = "CANARYattackGiven"


def _signing_cert_from(pki: DevPki, directory: Path, name: str, start: dt.datetime, end: dt.datetime
                       ) -> tuple[Path, Path]:
    """A signing key and certificate issued by ``pki``'s CA with the given validity window."""
    ca_cert = x509.load_pem_x509_certificate(pki.ca_certificate.read_bytes())
    ca_key = serialization.load_pem_private_key(pki.ca_key.read_bytes(), password=None)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key_path, cert_path = directory / f"{name}.key", directory / f"{name}.pem"
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key_path, cert_path


@dataclass(frozen=True)
class Kit:
    """Everything an attack needs; see the module docstring."""

    ours: DevPki
    rogue: DevPki
    identity: SigningIdentity
    rogue_identity: SigningIdentity
    expired_identity: SigningIdentity
    future_identity: SigningIdentity
    state: RecipientCertificate
    provider: RecipientCertificate
    state_key: PrivateKey
    pinned: tuple[Path, ...]

    def document(self, message_id: str) -> etree._Element:
        """The genuine, valid message (unsigned) with ``message_id`` and the canary name."""
        root = safexml.parse_trusted_file(SAMPLE).getroot()
        root.find(ns.clark("nx:MessageMetadata/nx:MessageIdentification/nc:IdentificationID")).text = message_id
        root.find(".//" + ns.clark("nc:PersonGivenName")).text = CANARY
        return root

    def signed(self, message_id: str, signer: SigningIdentity | None = None) -> etree._Element:
        """The genuine message signed (by us unless ``signer`` is given)."""
        return sign(self.document(message_id), signer or self.identity)

    def seal(self, signed: etree._Element, to: RecipientCertificate | None = None) -> bytes:
        """Encrypt a (possibly tampered) signed tree to ``state``, as anyone holding its public cert can."""
        return encrypt(signed, to or self.state)


def make_kit(base: Path) -> Kit:
    """Mint every key and certificate of the kit under ``base``."""
    now = dt.datetime.now(dt.timezone.utc)
    ours = mint_dev_pki(base / "ours", organization="Attack Test County", recipients=["state", "provider"], now=now)
    rogue = mint_dev_pki(base / "rogue", organization="Rogue Org", recipients=[], now=now)
    expired = _signing_cert_from(ours, base, "expired", now - dt.timedelta(days=30), now - dt.timedelta(days=1))
    future = _signing_cert_from(ours, base, "future", now + dt.timedelta(days=1), now + dt.timedelta(days=30))
    return Kit(
        ours=ours,
        rogue=rogue,
        identity=SigningIdentity.load(ours.signing_key, ours.signing_certificate),
        rogue_identity=SigningIdentity.load(rogue.signing_key, rogue.signing_certificate),
        expired_identity=SigningIdentity.load(*expired),
        future_identity=SigningIdentity.load(*future),
        state=RecipientCertificate.load(ours.recipient_certificate("state"), now=now),
        provider=RecipientCertificate.load(ours.recipient_certificate("provider"), now=now),
        state_key=PrivateKey.load(ours.recipient_key("state")),
        # The receiver pins our signing certificate and, on purpose, the expired and future ones.
        pinned=(ours.signing_certificate, expired[1], future[1]),
    )
