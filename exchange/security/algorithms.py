"""The algorithms of W3C XML Signature and XML Encryption we use, and the legacy ones we refuse.

Each Enum value is the algorithm's W3C URI exactly as it appears in an ``Algorithm`` attribute, so a
received document can be checked with ``SignatureMethod(uri)`` and written with ``member.value``.
The sending side only ever uses the members below; the receiving side accepts only them and names
the legacy URIs in :data:`LEGACY` so a refusal can say *why* (legacy) rather than just "unknown".
"""
from __future__ import annotations

import enum

import xmlsec

_DSIG = "http://www.w3.org/2000/09/xmldsig#"
_DSIG_MORE = "http://www.w3.org/2001/04/xmldsig-more#"
_XENC = "http://www.w3.org/2001/04/xmlenc#"
_XENC11 = "http://www.w3.org/2009/xmlenc11#"


class SignatureMethod(enum.Enum):
    """``ds:SignatureMethod/@Algorithm`` values we sign with and accept."""

    RSA_SHA256 = f"{_DSIG_MORE}rsa-sha256"
    ECDSA_SHA256 = f"{_DSIG_MORE}ecdsa-sha256"

    @property
    def transform(self) -> object:
        """The python-xmlsec transform constant for this method."""
        return {
            SignatureMethod.RSA_SHA256: xmlsec.constants.TransformRsaSha256,
            SignatureMethod.ECDSA_SHA256: xmlsec.constants.TransformEcdsaSha256,
        }[self]


class DigestMethod(enum.Enum):
    """``ds:DigestMethod/@Algorithm`` values we digest with and accept."""

    SHA256 = f"{_XENC}sha256"

    @property
    def transform(self) -> object:
        """The python-xmlsec transform constant for this method."""
        return xmlsec.constants.TransformSha256

    @property
    def hashlib_name(self) -> str:
        """The :mod:`hashlib` name of this digest (used to re-check what was signed)."""
        return "sha256"


class C14N(enum.Enum):
    """Canonicalization: exclusive c14n without comments, for SignedInfo and for the reference."""

    EXCLUSIVE = "http://www.w3.org/2001/10/xml-exc-c14n#"

    @property
    def transform(self) -> object:
        """The python-xmlsec transform constant for this method."""
        return xmlsec.constants.TransformExclC14N


class Transform(enum.Enum):
    """Reference transforms: the enveloped-signature transform (the c14n one is :class:`C14N`)."""

    ENVELOPED_SIGNATURE = f"{_DSIG}enveloped-signature"

    @property
    def transform(self) -> object:
        """The python-xmlsec transform constant for this method."""
        return xmlsec.constants.TransformEnveloped


class BlockCipher(enum.Enum):
    """``xenc:EncryptedData/xenc:EncryptionMethod/@Algorithm``: the content cipher."""

    AES256_GCM = f"{_XENC11}aes256-gcm"

    @property
    def transform(self) -> object:
        """The python-xmlsec transform constant for this cipher."""
        return xmlsec.constants.TransformAes256Gcm


class KeyTransport(enum.Enum):
    """``xenc:EncryptedKey/xenc:EncryptionMethod/@Algorithm``: how the content key reaches the recipient.

    RSA-OAEP with MGF1: the OAEP digest stays the default (SHA-1) because that is what every
    ``xmlsec1`` 1.2 receiver reads; SHA-1 inside OAEP needs no collision resistance and is not refused.
    """

    RSA_OAEP_MGF1P = f"{_XENC}rsa-oaep-mgf1p"

    @property
    def transform(self) -> object:
        """The python-xmlsec transform constant for this key transport."""
        return xmlsec.constants.TransformRsaOaep


class Legacy(enum.Enum):
    """Algorithms refused on the receiving side (CBC only with ``allow_legacy=True`` in decrypt)."""

    RSA_SHA1 = f"{_DSIG}rsa-sha1"
    DSA_SHA1 = f"{_DSIG}dsa-sha1"
    ECDSA_SHA1 = f"{_DSIG_MORE}ecdsa-sha1"
    HMAC_SHA1 = f"{_DSIG}hmac-sha1"
    SHA1 = f"{_DSIG}sha1"
    AES128_CBC = f"{_XENC}aes128-cbc"
    AES192_CBC = f"{_XENC}aes192-cbc"
    AES256_CBC = f"{_XENC}aes256-cbc"
    TRIPLEDES_CBC = f"{_XENC}tripledes-cbc"
    RSA_1_5 = f"{_XENC}rsa-1_5"


#: Legacy content ciphers that ``decrypt(..., allow_legacy=True)`` will accept.
LEGACY_BLOCK_CIPHERS: frozenset[str] = frozenset(
    m.value for m in (Legacy.AES128_CBC, Legacy.AES192_CBC, Legacy.AES256_CBC, Legacy.TRIPLEDES_CBC)
)
#: Every legacy URI, for error messages that say "legacy algorithm" rather than "unknown algorithm".
LEGACY: frozenset[str] = frozenset(m.value for m in Legacy)


def describe(uri: str | None) -> str:
    """Name an algorithm URI for an error message without echoing received text.

    Known legacy URIs are named by our own Enum member; anything else is only "an unsupported algorithm",
    because the attribute came from the received document and messages never quote a document.
    """
    if not uri:
        return "a missing algorithm"
    if uri in LEGACY:
        return f"legacy algorithm {Legacy(uri).name}"
    return "an unsupported algorithm"
