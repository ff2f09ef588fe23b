"""Sign, encrypt, verify and decrypt NIEM messages (W3C XML Signature and XML Encryption), and the dev PKI.

Load keys once (``SigningIdentity.load``, ``RecipientCertificate.load``, ``PrivateKey.load``), then call::

    signed = sign(root, identity)                  # enveloped RSA-SHA256 / ECDSA-SHA256, exclusive c14n
    message = encrypt(signed, recipient)           # AES-256-GCM + RSA-OAEP, bytes with an XML declaration
    message = encrypt(signed, [state, provider])   # one EncryptedKey per recipient, where a profile allows
    plaintext = decrypt(message, private_key)      # receiving side
    document = verify(plaintext, signers)          # only what was signed; signers = TrustedSigners.load([...])

Every refusal is a ``transforms.model.errors.SecurityError`` that never quotes the document.
Both ends interoperate with the ``xmlsec1`` command-line tool.
"""
from exchange.security.algorithms import (
    C14N,
    BlockCipher,
    DigestMethod,
    KeyTransport,
    Legacy,
    SignatureMethod,
    Transform,
)
from exchange.security.encryption import decrypt, decrypt_document, encrypt
from exchange.security.keys import (
    PrivateKey,
    RecipientCertificate,
    RecipientCertificates,
    SigningIdentity,
    TrustedSigners,
    fingerprint,
    key_id,
)
from exchange.security.pki import DevPki, SigningKeyType, mint_dev_pki
from exchange.security.signing import sign, sign_to_serialize, verify, verify_document, verify_signer
from transforms.model.errors import SecurityError

__all__ = [
    "C14N",
    "BlockCipher",
    "DevPki",
    "DigestMethod",
    "KeyTransport",
    "Legacy",
    "PrivateKey",
    "RecipientCertificate",
    "RecipientCertificates",
    "SecurityError",
    "SignatureMethod",
    "SigningIdentity",
    "SigningKeyType",
    "Transform",
    "TrustedSigners",
    "decrypt",
    "decrypt_document",
    "encrypt",
    "fingerprint",
    "key_id",
    "mint_dev_pki",
    "sign",
    "sign_to_serialize",
    "verify",
    "verify_document",
    "verify_signer",
]
