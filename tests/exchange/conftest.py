"""Fixtures for the exchange tests.

Security: one dev PKI per test session (our CA, signing pair, two recipients), a second, unrelated PKI for
"untrusted but self-consistent" signers, an ECDSA signing pair under our CA, and a small namespaced document
carrying a canary string that no error message may ever contain. Everything lives in pytest's tmp dirs.
"""
from __future__ import annotations

import datetime as dt
import os
import pickle
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from lxml import etree
from lxml.builder import ElementMaker

from exchange.security import (
    SecurityError,
    DevPki,
    PrivateKey,
    RecipientCertificate,
    SigningIdentity,
    mint_dev_pki,
)

#: Appears in every test document; must never appear in str() of any refusal.
CANARY = "CANARY-Jane-Q-Doe-1975"
TEST_NS = "http://niem-exchange.org/ns/exchange/security-test/1.0/"
NC_NS = "https://docs.oasis-open.org/niemopen/ns/model/niem-core/6.0/"


@pytest.fixture(scope="session")
def security_now() -> dt.datetime:
    """The clock every security fixture was minted with."""
    return dt.datetime.now(dt.timezone.utc)


@pytest.fixture(scope="session")
def security_pki(tmp_path_factory, security_now) -> DevPki:
    """Our dev PKI: CA, signing pair, recipients ``state`` and ``provider``."""
    return mint_dev_pki(
        tmp_path_factory.mktemp("security-pki") / "dev",
        organization="Test County Sheriff",
        recipients=["state", "provider"],
        now=security_now,
    )


@pytest.fixture(scope="session")
def rogue_pki(tmp_path_factory, security_now) -> DevPki:
    """An unrelated PKI: its signing key is valid and self-consistent, but nobody trusts it."""
    return mint_dev_pki(
        tmp_path_factory.mktemp("rogue-pki") / "dev",
        organization="Rogue Org",
        recipients=[],
        now=security_now,
    )


@pytest.fixture(scope="session")
def identity(security_pki, security_now) -> SigningIdentity:
    """Our RSA signing identity."""
    return SigningIdentity.load(
        security_pki.signing_key, security_pki.signing_certificate, now=security_now
    )


@pytest.fixture(scope="session")
def rogue_identity(rogue_pki) -> SigningIdentity:
    """A signing identity from the unrelated PKI."""
    return SigningIdentity.load(rogue_pki.signing_key, rogue_pki.signing_certificate)


@pytest.fixture(scope="session")
def ec_signing_files(security_pki, security_now, tmp_path_factory) -> tuple[Path, Path]:
    """(key, certificate) of a P-256 signing pair issued by our dev CA."""
    ca_cert = x509.load_pem_x509_certificate(security_pki.ca_certificate.read_bytes())
    ca_key = serialization.load_pem_private_key(security_pki.ca_key.read_bytes(), password=None)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ec signing")]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(security_now - dt.timedelta(minutes=5))
        .not_valid_after(security_now + dt.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=True, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=False, crl_sign=False,
                encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    directory = tmp_path_factory.mktemp("ec-signing")
    key_path, cert_path = directory / "ec.key", directory / "ec.pem"
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key_path, cert_path


@pytest.fixture(scope="session")
def state_recipient(security_pki, security_now) -> RecipientCertificate:
    """Recipient ``state``'s encryption certificate, loaded once."""
    return RecipientCertificate.load(security_pki.recipient_certificate("state"), now=security_now)


@pytest.fixture(scope="session")
def provider_recipient(security_pki, security_now) -> RecipientCertificate:
    """Recipient ``provider``'s encryption certificate, loaded once (a second recipient beside ``state``)."""
    return RecipientCertificate.load(security_pki.recipient_certificate("provider"), now=security_now)


@pytest.fixture(scope="session")
def state_key(security_pki) -> PrivateKey:
    """Recipient ``state``'s private key (the receiving side)."""
    return PrivateKey.load(security_pki.recipient_key("state"))


@pytest.fixture(scope="session")
def provider_key(security_pki) -> PrivateKey:
    """Recipient ``provider``'s private key: must not open messages sent to ``state``."""
    return PrivateKey.load(security_pki.recipient_key("provider"))


def build_document(extra_people: int = 0) -> etree._Element:
    """A small namespaced message: root, a person with the canary name, an activity, attributes."""
    t = ElementMaker(namespace=TEST_NS, nsmap={"t": TEST_NS, "nc": NC_NS})
    nc = ElementMaker(namespace=NC_NS)
    people = [
        nc.Person(
            nc.PersonName(nc.PersonFullName(f"{CANARY} {i}")),
            nc.PersonBirthDate(nc.Date("1975-04-0%d" % (1 + i % 9))),
            id=f"P{i}",
        )
        for i in range(1 + extra_people)
    ]
    return t.SecurityTestMessage(
        t.MessageID("msg-0001"),
        *people,
        nc.Activity(nc.ActivityDate(nc.Date("2026-11-24")), nc.ActivityDescriptionText("booking é ü")),
        version="1.0",
    )


@pytest.fixture
def document() -> Callable[..., etree._Element]:
    """Factory for fresh test documents (``document()`` or ``document(extra_people=30)``)."""
    return build_document


@pytest.fixture(scope="session")
def canary() -> str:
    """The string planted in every test document."""
    return CANARY


@pytest.fixture
def refused(canary):
    """``refused(reason, fn, *args, **kw)``: fn must raise SecurityError mentioning ``reason``, canary-free."""

    def check(reason: str, fn, *args, **kwargs) -> SecurityError:
        with pytest.raises(SecurityError) as info:
            fn(*args, **kwargs)
        error = info.value
        for text in (str(error), repr(error), str(error.__cause__ or "")):
            assert canary not in text
        assert reason in str(error), str(error)
        assert str(pickle.loads(pickle.dumps(error))) == str(error)
        return error

    return check
