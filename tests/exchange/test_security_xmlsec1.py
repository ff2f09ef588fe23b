"""Interoperability with the ``xmlsec1`` command-line tool, the way receivers will check us.

Our output -> xmlsec1: it verifies our signatures (against the CA, and against the bare signing
certificate) and decrypts our messages. xmlsec1 -> us: we verify what it signs and decrypt what it
encrypts, from templates built here with lxml. Both sides refuse tampering and the wrong recipient key.
"""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from lxml import etree
from lxml.builder import ElementMaker

from exchange.security import (
    BlockCipher,
    DigestMethod,
    KeyTransport,
    SignatureMethod,
    SigningIdentity,
    decrypt,
    encrypt,
    sign,
    verify,
)

XMLSEC1 = shutil.which("xmlsec1")
pytestmark = pytest.mark.skipif(XMLSEC1 is None, reason="the xmlsec1 tool is not installed (apt-get install xmlsec1)")

DS = "http://www.w3.org/2000/09/xmldsig#"
XENC = "http://www.w3.org/2001/04/xmlenc#"
EXC_C14N = "http://www.w3.org/2001/10/xml-exc-c14n#"
ENVELOPED = f"{DS}enveloped-signature"
TEST_NS = "http://niem-exchange.org/ns/exchange/security-test/1.0/"

ds = ElementMaker(namespace=DS, nsmap={"ds": DS})
xenc = ElementMaker(namespace=XENC, nsmap={"xenc": XENC})


def c14n(element) -> bytes:
    return etree.tostring(element, method="c14n", exclusive=True, with_comments=False)


def to_bytes(element) -> bytes:
    return etree.tostring(element, xml_declaration=True, encoding="UTF-8")


def xmlsec1(*args: object) -> subprocess.CompletedProcess:
    """Run xmlsec1 with ``args``; never raises on a non-zero exit (tests assert on returncode)."""
    return subprocess.run([XMLSEC1, *map(str, args)], capture_output=True, timeout=60, check=False)


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def signature_template(method: str, digest: str, prefix_list: str | None = None) -> etree._Element:
    """An empty enveloped ds:Signature for ``xmlsec1 --sign`` to fill in."""
    c14n_transform = ds.Transform(Algorithm=EXC_C14N)
    if prefix_list is not None:
        c14n_transform.append(
            etree.Element(f"{{{EXC_C14N}}}InclusiveNamespaces", PrefixList=prefix_list, nsmap={"ec": EXC_C14N})
        )
    return ds.Signature(
        ds.SignedInfo(
            ds.CanonicalizationMethod(Algorithm=EXC_C14N),
            ds.SignatureMethod(Algorithm=method),
            ds.Reference(
                ds.Transforms(ds.Transform(Algorithm=ENVELOPED), c14n_transform),
                ds.DigestMethod(Algorithm=digest),
                ds.DigestValue(),
                URI="",
            ),
        ),
        ds.SignatureValue(),
        ds.KeyInfo(ds.X509Data(ds.X509Certificate())),
    )


def encryption_template(cipher: str, with_certificate: bool = True) -> etree._Element:
    """An empty document-level xenc:EncryptedData for ``xmlsec1 --encrypt`` to fill in."""
    key_info = [ds.KeyInfo(ds.X509Data(ds.X509Certificate()))] if with_certificate else []
    return xenc.EncryptedData(
        xenc.EncryptionMethod(Algorithm=cipher),
        ds.KeyInfo(
            xenc.EncryptedKey(
                xenc.EncryptionMethod(Algorithm=KeyTransport.RSA_OAEP_MGF1P.value),
                *key_info,
                xenc.CipherData(xenc.CipherValue()),
            )
        ),
        xenc.CipherData(xenc.CipherValue()),
        Type=f"{XENC}Element",
    )


def xmlsec1_encrypt(tmp_path: Path, root, certificate: Path, cipher: str, **template) -> bytes:
    message = write(tmp_path / "plain.xml", to_bytes(root))
    tmpl = write(tmp_path / "enc-tmpl.xml", to_bytes(encryption_template(cipher, **template)))
    out = tmp_path / "xmlsec1-enc.xml"
    done = xmlsec1(
        "--encrypt", "--pubkey-cert-pem", certificate, "--session-key", "aes-256",
        "--xml-data", message, "--node-name", f"{TEST_NS}:SecurityTestMessage", "--output", out, tmpl,
    )
    assert done.returncode == 0, done.stderr.decode()
    return out.read_bytes()


# ------------------------------------------------------------------------------------ ours -> xmlsec1


@pytest.mark.parametrize(
    "trust",
    [
        lambda pki: ["--trusted-pem", pki.ca_certificate],
        lambda pki: ["--pubkey-cert-pem", pki.signing_certificate, "--enabled-key-data", "key-name,key-value"],
    ],
    ids=["trusted-ca", "pubkey-cert"],
)
def test_xmlsec1_verifies_our_signature(tmp_path, document, identity, security_pki, trust):
    signed = write(tmp_path / "signed.xml", to_bytes(sign(document(), identity)))
    done = xmlsec1("--verify", *trust(security_pki), signed)
    assert done.returncode == 0, done.stderr.decode()
    assert b"OK" in done.stdout + done.stderr


def test_xmlsec1_verifies_our_ecdsa_signature(tmp_path, document, ec_signing_files, security_pki):
    key, cert = ec_signing_files
    signed = write(tmp_path / "signed-ec.xml", to_bytes(sign(document(), SigningIdentity.load(key, cert))))
    done = xmlsec1("--verify", "--trusted-pem", security_pki.ca_certificate, signed)
    assert done.returncode == 0, done.stderr.decode()


def test_xmlsec1_decrypts_our_signed_message(tmp_path, document, identity, security_pki, state_recipient):
    root = document()
    encrypted = write(tmp_path / "enc.xml", encrypt(sign(root, identity), state_recipient))
    done = xmlsec1("--decrypt", "--privkey-pem", security_pki.recipient_key("state"), encrypted)
    assert done.returncode == 0, done.stderr.decode()
    plaintext = done.stdout
    # what the receiver's xmlsec1 decrypted still verifies, with xmlsec1 and with us
    decrypted = write(tmp_path / "decrypted.xml", plaintext)
    check = xmlsec1("--verify", "--trusted-pem", security_pki.ca_certificate, decrypted)
    assert check.returncode == 0, check.stderr.decode()
    assert c14n(verify(plaintext, [security_pki.signing_certificate])) == c14n(root)


def test_a_changed_byte_fails_xmlsec1_and_us(tmp_path, document, identity, security_pki, refused, canary):
    data = to_bytes(sign(document(), identity))
    tampered = data.replace(f"{canary} 0".encode(), f"{canary} 7".encode(), 1)
    assert tampered != data
    done = xmlsec1("--verify", "--trusted-pem", security_pki.ca_certificate, write(tmp_path / "t.xml", tampered))
    assert done.returncode != 0
    refused("does not verify", verify, tampered, [security_pki.signing_certificate])


def test_a_message_for_state_cannot_be_opened_with_the_provider_key(
    tmp_path, document, security_pki, state_recipient, provider_key, refused
):
    message = encrypt(document(), state_recipient)
    done = xmlsec1("--decrypt", "--privkey-pem", security_pki.recipient_key("provider"), write(tmp_path / "e.xml", message))
    assert done.returncode != 0
    refused("different certificate", decrypt, message, provider_key)


def test_xmlsec1_refuses_a_signature_from_outside_our_ca(tmp_path, document, rogue_identity, security_pki, refused):
    data = to_bytes(sign(document(), rogue_identity))
    done = xmlsec1("--verify", "--trusted-pem", security_pki.ca_certificate, write(tmp_path / "r.xml", data))
    assert done.returncode != 0
    refused("not one of the trusted", verify, data, [security_pki.signing_certificate])


# ------------------------------------------------------------------------------------ xmlsec1 -> us


def _xmlsec1_sign(tmp_path: Path, root, pki, template) -> bytes:
    tmpl = write(tmp_path / "sig-tmpl.xml", to_bytes(root) if template is None else template)
    out = tmp_path / "xmlsec1-signed.xml"
    done = xmlsec1(
        "--sign", "--privkey-pem", f"{pki.signing_key},{pki.signing_certificate}", "--output", out, tmpl
    )
    assert done.returncode == 0, done.stderr.decode()
    return out.read_bytes()


def test_we_verify_what_xmlsec1_signs(tmp_path, document, security_pki):
    root = document()
    expected = c14n(root)
    root.append(signature_template(SignatureMethod.RSA_SHA256.value, DigestMethod.SHA256.value))
    data = _xmlsec1_sign(tmp_path, root, security_pki, None)
    assert c14n(verify(data, [security_pki.signing_certificate])) == expected


def test_we_verify_xmlsec1_signatures_in_awkward_places(tmp_path, document, security_pki):
    """A processing instruction before the root, the signature between children (with text after it), and
    an InclusiveNamespaces PrefixList: our own re-digest of the signed bytes must agree with xmlsec."""
    root = document()
    root.insert(1, signature_template(SignatureMethod.RSA_SHA256.value, DigestMethod.SHA256.value, "nc t"))
    root[1].tail = "\n  text after the signature\n  "
    data = b'<?xml version="1.0" encoding="UTF-8"?>\n<?niem-exchange test="yes"?>\n' + etree.tostring(root)
    signed = _xmlsec1_sign(tmp_path, None, security_pki, data)
    result = verify(signed, [security_pki.signing_certificate])
    expected = document()
    expected[0].tail = (expected[0].tail or "") + "\n  text after the signature\n  "
    assert c14n(result) == c14n(expected)
    assert "nc" in result.nsmap and "t" in result.nsmap


def test_we_refuse_an_xmlsec1_sha1_signature(tmp_path, document, security_pki, refused):
    root = document()
    root.append(signature_template(f"{DS}rsa-sha1", f"{DS}sha1"))
    tmpl = write(tmp_path / "sha1-tmpl.xml", to_bytes(root))
    out = tmp_path / "sha1.xml"
    done = xmlsec1(
        "--sign", "--privkey-pem", f"{security_pki.signing_key},{security_pki.signing_certificate}",
        "--output", out, tmpl,
    )
    if done.returncode != 0:
        pytest.skip("this xmlsec1 build refuses to sign with SHA-1 itself")
    refused("legacy algorithm RSA_SHA1", verify, out.read_bytes(), [security_pki.signing_certificate])


@pytest.mark.parametrize("with_certificate", [True, False], ids=["x509-named", "unnamed"])
def test_we_decrypt_what_xmlsec1_encrypts(tmp_path, document, security_pki, state_key, provider_key, refused, with_certificate):
    root = document()
    message = xmlsec1_encrypt(
        tmp_path, root, security_pki.recipient_certificate("state"), BlockCipher.AES256_GCM.value,
        with_certificate=with_certificate,
    )
    assert b"aes256-gcm" in message
    assert c14n(etree.fromstring(decrypt(message, state_key))) == c14n(root)
    refused("different certificate" if with_certificate else "cannot be decrypted", decrypt, message, provider_key)


def test_we_refuse_xmlsec1_cbc_unless_legacy_is_allowed(tmp_path, document, security_pki, state_key, refused):
    root = document()
    message = xmlsec1_encrypt(
        tmp_path, root, security_pki.recipient_certificate("state"), f"{XENC}aes256-cbc"
    )
    refused("legacy algorithm AES256_CBC", decrypt, message, state_key)
    assert c14n(etree.fromstring(decrypt(message, state_key, allow_legacy=True))) == c14n(root)
