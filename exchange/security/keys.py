"""Keys and certificates, loaded once per process and reused for every message.

Loading is the slow part (reading and parsing PEM, building an xmlsec key store): re-loading a recipient
certificate per message drops encryption from thousands to about a hundred messages a second
(shared/research/deps.md, section 8). So each holder below is built once with ``load`` and then passed to
``sign``, ``encrypt`` or ``decrypt`` as often as needed.

Refusals raise :class:`SecurityError` naming the file, never its contents. A missing or unreadable file is
not a refusal: its ``OSError`` (``FileNotFoundError``) propagates for the caller to report as configuration.
"""
from __future__ import annotations

import base64
import datetime as dt
import functools
import hashlib
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import xmlsec
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12

from exchange.security.algorithms import SignatureMethod
from transforms.model.errors import SecurityError

PathLike = str | os.PathLike[str]


@functools.lru_cache(maxsize=1024)  # certificates are immutable and hashable; verify asks per message
def fingerprint(certificate: x509.Certificate) -> str:
    """The SHA-256 fingerprint of a certificate (lower-case hex of its DER encoding)."""
    return hashlib.sha256(certificate.public_bytes(serialization.Encoding.DER)).hexdigest()


def public_key_digest(public_key: rsa.RSAPublicKey | ec.EllipticCurvePublicKey) -> str:
    """SHA-256 (hex) of a public key's SubjectPublicKeyInfo: matches a private key to a certificate."""
    spki = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(spki).hexdigest()


@functools.lru_cache(maxsize=1024)  # encrypt names each of several recipients' keys per message
def key_id(certificate: x509.Certificate) -> str:
    """The key id we write as ``ds:KeyName``: the first 16 hex digits of the SHA-256 of the public key.

    Derived from the key (not the certificate), so a renewed certificate for the same key keeps its id and
    a rotated key always gets a new one; a receiver can compute it from the certificate alone.
    """
    return public_key_digest(certificate.public_key())[:16]


def load_certificate(path: PathLike, *, subject: str = "certificate") -> x509.Certificate:
    """Read one PEM certificate from ``path``; SecurityError if it is not a certificate.

    A missing or unreadable file raises the ``OSError`` (``FileNotFoundError``...) as is: that is a
    configuration problem for the caller to report, not a security refusal.
    """
    path = Path(path)
    data = path.read_bytes()
    try:
        return x509.load_pem_x509_certificate(data)
    except ValueError:
        raise SecurityError(f"{subject} {path.name}", "not a PEM certificate") from None


def check_validity(certificate: x509.Certificate, now: dt.datetime, subject: str) -> None:
    """Refuse a certificate that is not yet valid or has expired at ``now`` (timezone-aware)."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    if now < certificate.not_valid_before_utc:
        raise SecurityError(subject, "certificate is not yet valid")
    if now > certificate.not_valid_after_utc:
        raise SecurityError(subject, "certificate has expired")


def _key_usage(certificate: x509.Certificate) -> x509.KeyUsage | None:
    try:
        return certificate.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return None


#: Refusal reasons a caller can tell apart (the config layer turns each into its own fix).
PASSPHRASE_MISSING = "the key is passphrase-protected and no passphrase was given"
PASSPHRASE_UNNEEDED = "a passphrase was given but the key is not passphrase-protected"


def _load_private_key(data: bytes, passphrase: bytes | None, subject: str):
    try:
        key = serialization.load_pem_private_key(data, password=passphrase)
    except TypeError:
        # cryptography's TypeError: a passphrase given for an unencrypted key or missing for an encrypted one.
        raise SecurityError(subject, PASSPHRASE_MISSING if passphrase is None else PASSPHRASE_UNNEEDED) from None
    except ValueError:
        raise SecurityError(subject, "not a PEM private key, or the passphrase is wrong") from None
    if not isinstance(key, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey)):
        raise SecurityError(subject, "only RSA and EC private keys are supported")
    if isinstance(key, rsa.RSAPrivateKey) and key.key_size < 2048:
        raise SecurityError(subject, "RSA keys shorter than 2048 bits are refused")
    return key


#: File suffixes read as PKCS#12 (a key and its certificate in one passphrase-protected file).
PKCS12_SUFFIXES = (".p12", ".pfx")


def _read_key_file(path: Path, passphrase: bytes | None, subject: str):
    """Read a private key from a PEM file, or from a PKCS#12 file by its ``.p12``/``.pfx`` suffix."""
    return _read_key_and_certificate(path, passphrase, subject)[0]


def _read_key_and_certificate(path: Path, passphrase: bytes | None, subject: str):
    """(private key, certificate or None): PKCS#12 files carry their certificate, PEM key files do not."""
    data = path.read_bytes()
    if path.suffix.lower() not in PKCS12_SUFFIXES:
        return _load_private_key(data, passphrase, subject), None
    try:
        key, certificate, _chain = pkcs12.load_key_and_certificates(data, passphrase)
    except (ValueError, TypeError):
        raise SecurityError(subject, "not a PKCS#12 file, or the passphrase is wrong") from None
    if key is None:
        raise SecurityError(subject, "the PKCS#12 file holds no private key")
    # Same checks as a PEM key: re-encode it through the one loader rather than duplicate them.
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return _load_private_key(pem, None, subject), certificate


def _xmlsec_private_key(private_key, subject: str) -> xmlsec.Key:
    """Hand xmlsec the key cryptography already decrypted (xmlsec wants a ``str`` passphrase; ours are bytes)."""
    pkcs8 = private_key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    try:
        return xmlsec.Key.from_memory(pkcs8, xmlsec.constants.KeyDataFormatDer)
    except xmlsec.Error:
        raise SecurityError(subject, "xmlsec cannot load the key") from None


def certificate_base64(certificate: x509.Certificate) -> str:
    """The certificate's DER in base64 as ``ds:X509Certificate`` text: 64-column lines between newlines."""
    text = base64.b64encode(certificate.public_bytes(serialization.Encoding.DER)).decode("ascii")
    return "\n" + "\n".join(text[i:i + 64] for i in range(0, len(text), 64)) + "\n"


@dataclass(frozen=True, eq=False)
class SigningIdentity:
    """Our signing key (an ``xmlsec.Key``) and its certificate, ready to sign many messages.

    The key holds no certificate: xmlsec copies the key into every signing context, and a key carrying its
    X.509 data costs ~300 us more a copy than the bare key (more than a whole ECDSA P-256 signature), so
    :func:`~exchange.security.signing.sign` writes ``certificate_base64`` into ``ds:X509Certificate`` itself.
    """

    key: xmlsec.Key = field(repr=False)
    certificate: x509.Certificate = field(repr=False)
    fingerprint: str
    method: SignatureMethod
    #: Written as ``ds:KeyName`` in every signature, so receivers holding old and new keys during a
    #: rotation (``xmlsec1 --pubkey-cert-pem:<key id> cert.pem``) pick the right one.
    key_id: str = ""

    @functools.cached_property
    def certificate_base64(self) -> str:
        """The certificate as ``ds:X509Certificate`` text (see :func:`certificate_base64`), made once."""
        return certificate_base64(self.certificate)

    @classmethod
    def load(
        cls,
        key_pem: PathLike,
        cert_pem: PathLike | None = None,
        passphrase: bytes | None = None,
        *,
        now: dt.datetime | None = None,
    ) -> SigningIdentity:
        """Load a private key (PEM, or PKCS#12 by its ``.p12``/``.pfx`` suffix) and its PEM certificate.

        ``cert_pem`` may be left out for a PKCS#12 file: the certificate inside it is used. Refuses a key
        that does not belong to the certificate, a certificate whose KeyUsage does not allow digital
        signatures, and (when ``now`` is given) a certificate outside its validity period.
        """
        key_path = Path(key_pem)
        subject = f"signing key {key_path.name}"
        private_key, bundled = _read_key_and_certificate(key_path, passphrase, subject)
        if cert_pem is not None:
            certificate = load_certificate(cert_pem, subject="signing certificate")
            cert_subject = f"signing certificate {Path(cert_pem).name}"
        elif bundled is not None:
            certificate, cert_subject = bundled, f"signing certificate in {key_path.name}"
        else:
            raise SecurityError(subject, "a PEM key needs its certificate (only PKCS#12 files carry one)")
        if public_key_digest(private_key.public_key()) != public_key_digest(certificate.public_key()):
            raise SecurityError(subject, "the key does not belong to the certificate")
        usage = _key_usage(certificate)
        if usage is not None and not usage.digital_signature:
            raise SecurityError(cert_subject, "KeyUsage does not allow digital signatures")
        if now is not None:
            check_validity(certificate, now, cert_subject)
        key = _xmlsec_private_key(private_key, subject)
        method = (
            SignatureMethod.ECDSA_SHA256
            if isinstance(private_key, ec.EllipticCurvePrivateKey)
            else SignatureMethod.RSA_SHA256
        )
        return cls(key=key, certificate=certificate, fingerprint=fingerprint(certificate), method=method,
                   key_id=key_id(certificate))


def public_xmlsec_key(certificate: x509.Certificate) -> xmlsec.Key:
    """The certificate's public key alone as an ``xmlsec.Key`` (no X.509 data), for xmlsec's own RSA-OAEP.

    What :class:`RecipientCertificate`'s manager holds: loading it proves xmlsec can use the certificate, and
    it is what raw xmlsec encryption needs (tests crafting messages our ``encrypt`` never writes, the
    benchmark's baseline). ``encrypt`` itself wraps session keys with ``cryptography`` (see there). A key that
    carried its certificate would be parsed again on every copy xmlsec makes. Raises ``xmlsec.Error`` if xmlsec
    cannot load the key.
    """
    spki = certificate.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return xmlsec.Key.from_memory(spki, xmlsec.constants.KeyDataFormatDer)


@dataclass(frozen=True, eq=False)
class RecipientCertificate:
    """A recipient's encryption certificate, checked and loaded once for many messages.

    :func:`~exchange.security.encryption.encrypt` wraps session keys to :attr:`public_key` and writes
    ``certificate_text`` into ``ds:X509Certificate``. ``manager`` holds the bare public key for xmlsec
    (:func:`public_xmlsec_key`): loading it checks that xmlsec can read the certificate, and raw xmlsec
    encryption (tests, the benchmark's baseline) uses it.
    """

    certificate: x509.Certificate = field(repr=False)
    manager: xmlsec.KeysManager = field(repr=False)
    fingerprint: str
    not_valid_after: dt.datetime
    #: Read once: validity is checked per message, and cryptography builds these datetimes on every access.
    not_valid_before: dt.datetime | None = None
    #: The key id written as ``ds:KeyName`` when a message has several EncryptedKeys.
    key_id: str = ""

    @classmethod
    def load(cls, cert_pem: PathLike, *, now: dt.datetime) -> RecipientCertificate:
        """Load a recipient's PEM certificate, refusing one that is expired or not yet valid at ``now``.

        Also refused: a non-RSA key (the key transport is RSA-OAEP), an RSA key under 2048 bits and a
        KeyUsage without keyEncipherment.
        """
        loaded = cls.read(cert_pem)
        check_validity(loaded.certificate, now, f"recipient certificate {Path(cert_pem).name}")
        return loaded

    @classmethod
    def read(cls, cert_pem: PathLike) -> RecipientCertificate:
        """Like :meth:`load` but without the validity check, for a set that is checked per message
        (:class:`RecipientCertificates`: a not-yet-valid certificate becomes usable while the process runs)."""
        path = Path(cert_pem)
        subject = f"recipient certificate {path.name}"
        certificate = load_certificate(path, subject="recipient certificate")
        public_key = certificate.public_key()
        if not isinstance(public_key, rsa.RSAPublicKey):
            raise SecurityError(subject, "RSA-OAEP key transport needs an RSA key")
        if public_key.key_size < 2048:
            raise SecurityError(subject, "RSA keys shorter than 2048 bits are refused")
        usage = _key_usage(certificate)
        if usage is not None and not usage.key_encipherment:
            raise SecurityError(subject, "KeyUsage does not allow key encipherment")
        manager = xmlsec.KeysManager()
        try:
            manager.add_key(public_xmlsec_key(certificate))
        except xmlsec.Error:
            raise SecurityError(subject, "xmlsec cannot load the certificate") from None
        return cls(
            certificate=certificate,
            manager=manager,
            fingerprint=fingerprint(certificate),
            not_valid_after=certificate.not_valid_after_utc,
            not_valid_before=certificate.not_valid_before_utc,
            key_id=key_id(certificate),
        )

    @functools.cached_property
    def public_key(self) -> rsa.RSAPublicKey:
        """The certificate's RSA public key (:meth:`read` refuses any other), loaded once: ``encrypt`` wraps each
        message's session key with it."""
        return self.certificate.public_key()

    @functools.cached_property
    def certificate_text(self) -> str:
        """The certificate as ``ds:X509Certificate`` text in an EncryptedKey, made once.

        Laid out as xmlsec wrote it when it filled the element from a key carrying the certificate: the
        base64 DER in 64-column lines, each followed by a newline (unlike a signature's, no leading one).
        """
        return certificate_base64(self.certificate)[1:]

    def check(self, now: dt.datetime) -> None:
        """Refuse (SecurityError) to use this certificate at ``now`` if it has expired or is not yet valid.

        ``load`` checks once; a long-running process calls this before each encryption, so a certificate
        that expired after it was loaded is never encrypted to.
        """
        check_validity(self.certificate, now, f"recipient certificate {self.fingerprint[:16]}")


@dataclass(frozen=True, eq=False)
class RecipientCertificates:
    """All the certificates one recipient lists (one, or e.g. old and new during its key rotation).

    A message goes to every certificate valid at the time, each with its own EncryptedKey, so whichever
    private key the recipient holds opens it. A sequence of :class:`RecipientCertificate` (``encrypt``
    takes it as is), plus :meth:`usable` to pick the ones valid now.
    """

    certificates: tuple[RecipientCertificate, ...]
    #: Names each certificate in warnings and refusals (e.g. the config key, never the file's content).
    labels: tuple[str, ...] = ()
    #: The recipient's id, for refusals.
    recipient: str = ""

    def __post_init__(self) -> None:
        if not self.certificates:
            raise ValueError("a recipient needs at least one certificate")

    def __len__(self) -> int:
        return len(self.certificates)

    def __iter__(self):
        return iter(self.certificates)

    def __getitem__(self, index: int) -> RecipientCertificate:
        return self.certificates[index]

    @property
    def not_valid_after(self) -> dt.datetime:
        """When the last of them expires: after that nothing can be encrypted to this recipient."""
        return max(c.not_valid_after for c in self.certificates)

    def label(self, index: int) -> str:
        """How warnings and refusals name certificate ``index``."""
        return self.labels[index] if index < len(self.labels) else f"certificate {index + 1}"

    def unusable(self, now: dt.datetime) -> list[tuple[str, str]]:
        """(label, reason) for each certificate that is expired or not yet valid at ``now``."""
        return [(self.label(index), reason) for index, reason in self._problems(now).items()]

    def _problems(self, now: dt.datetime) -> dict[int, str]:
        """Index -> why that certificate cannot be used at ``now`` (the reasons of :func:`check_validity`)."""
        if now.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        problems = {}
        for index, each in enumerate(self.certificates):
            before = each.not_valid_before or each.certificate.not_valid_before_utc
            if now < before:
                problems[index] = "certificate is not yet valid"
            elif now > each.not_valid_after:
                problems[index] = "certificate has expired"
        return problems

    def usable(self, now: dt.datetime) -> tuple[RecipientCertificate, ...]:
        """The certificates valid at ``now``, one per key (the latest-expiring certificate of a renewed key).

        Raises SecurityError when none is valid: never encrypt to an expired or not-yet-valid certificate.
        The same objects come back each time, so ``encrypt``'s key-manager cache keeps working.
        """
        problems = self._problems(now)
        by_key: dict[str, RecipientCertificate] = {}
        for index, each in enumerate(self.certificates):
            if index in problems:
                continue
            kid = each.key_id or key_id(each.certificate)
            if kid not in by_key or each.not_valid_after > by_key[kid].not_valid_after:
                by_key[kid] = each
        if not by_key:
            reasons = "; ".join(f"{self.label(i)}: {reason}" for i, reason in problems.items())
            raise SecurityError(f"recipient {self.recipient or '?'}", f"no certificate is valid now ({reasons})")
        return tuple(by_key.values())

    def check(self, now: dt.datetime) -> None:
        """Refuse (SecurityError) if none of the certificates is valid at ``now``."""
        self.usable(now)


@dataclass(frozen=True, eq=False)
class PrivateKey:
    """Our decryption key on the receiving side, in a preloaded ``xmlsec.KeysManager``."""

    manager: xmlsec.KeysManager = field(repr=False)
    public_key_sha256: str

    @classmethod
    def load(cls, key_pem: PathLike, passphrase: bytes | None = None) -> PrivateKey:
        """Load an RSA private key (PEM, or PKCS#12 by suffix) used to unwrap the content keys sent to us."""
        path = Path(key_pem)
        subject = f"private key {path.name}"
        private_key = _read_key_file(path, passphrase, subject)
        if not isinstance(private_key, rsa.RSAPrivateKey):
            raise SecurityError(subject, "RSA-OAEP key transport needs an RSA key")
        manager = xmlsec.KeysManager()
        manager.add_key(_xmlsec_private_key(private_key, subject))
        return cls(manager=manager, public_key_sha256=public_key_digest(private_key.public_key()))


def load_trusted(trusted: Iterable[x509.Certificate | PathLike]) -> dict[str, x509.Certificate]:
    """Map SHA-256 fingerprint -> certificate for a list of certificates or PEM paths."""
    result: dict[str, x509.Certificate] = {}
    for item in trusted:
        certificate = item if isinstance(item, x509.Certificate) else load_certificate(
            item, subject="trusted certificate"
        )
        result[fingerprint(certificate)] = certificate
    return result


@functools.lru_cache(maxsize=64)  # the pinned set is small and fixed per process; bounded in case it is not
def verification_key(certificate: x509.Certificate) -> xmlsec.Key:
    """The xmlsec key that checks signatures made by ``certificate``'s key: its public key only.

    Only the public key, not the certificate: xmlsec copies the key into every signature context, and copying
    a key that carries its X.509 certificate costs about 40 us per verification (and the verify itself about
    15 us more) for nothing, since we pick the certificate ourselves and never let xmlsec read one from KeyInfo.
    """
    spki = certificate.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    try:
        return xmlsec.Key.from_memory(spki, xmlsec.constants.KeyDataFormatPem)
    except xmlsec.Error:
        raise SecurityError(f"trusted certificate {fingerprint(certificate)[:16]}",
                            "xmlsec cannot use its public key") from None


@dataclass(frozen=True, eq=False)
class TrustedSigners:
    """The pinned signer certificates, by SHA-256 fingerprint, with their verification keys loaded once.

    Build it once per trust store (``TrustedSigners.load``) and pass it to every ``verify``; a plain list
    of certificates or paths works too but is looked up again on each call.
    """

    certificates: dict[str, x509.Certificate] = field(repr=False)
    keys: dict[str, xmlsec.Key] = field(repr=False)

    @classmethod
    def load(cls, trusted: Iterable[x509.Certificate | PathLike] | TrustedSigners) -> TrustedSigners:
        """Load certificates (objects or PEM paths) and their keys; an existing ``TrustedSigners`` is returned as is."""
        if isinstance(trusted, TrustedSigners):
            return trusted
        certificates = load_trusted(trusted)
        return cls(certificates, {digest: verification_key(c) for digest, c in certificates.items()})

    def __len__(self) -> int:
        return len(self.certificates)
