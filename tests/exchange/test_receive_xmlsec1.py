"""Receiving interop with ``xmlsec1``, an implementation we did not write, in both directions.

- what xmlsec1 signs and then encrypts (a full BookingNotification) our ``receive`` accepts;
- what we sign and encrypt, to one recipient or to several at once, xmlsec1 decrypts with each recipient's
  key and then verifies;
- during a signing-key rotation, xmlsec1 holding the old and the new certificate under their key ids
  (``--pubkey-cert-pem:<key id>``) picks the right one from our ``ds:KeyName``.
"""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from lxml import etree
from lxml.builder import ElementMaker

from exchange.receive import Receiver
from exchange.security import (
    DigestMethod,
    KeyTransport,
    RecipientCertificate,
    SignatureMethod,
    SigningIdentity,
    decrypt,
    encrypt,
    key_id,
    sign,
)
from niem_iepd import ns, safexml

XMLSEC1 = shutil.which("xmlsec1")
pytestmark = pytest.mark.skipif(XMLSEC1 is None, reason="the xmlsec1 tool is not installed (apt-get install xmlsec1)")

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "niem_iepd/samples/booking-notification.xml"
DS, XENC = ns.DS, ns.XENC
EXC_C14N = "http://www.w3.org/2001/10/xml-exc-c14n#"
ds = ElementMaker(namespace=DS, nsmap={"ds": DS})
xenc = ElementMaker(namespace=XENC, nsmap={"xenc": XENC})


def xmlsec1(*args: object) -> subprocess.CompletedProcess:
    return subprocess.run([XMLSEC1, *map(str, args)], capture_output=True, timeout=60, check=False)


def booking(message_id: str) -> etree._Element:
    root = safexml.parse_trusted_file(SAMPLE).getroot()
    root.find(ns.clark("nx:MessageMetadata/nx:MessageIdentification/nc:IdentificationID")).text = message_id
    return root


def c14n(element) -> bytes:
    return etree.tostring(element, method="c14n", exclusive=True, with_comments=False)


def to_bytes(element) -> bytes:
    return etree.tostring(element, xml_declaration=True, encoding="UTF-8")


def test_receive_accepts_what_xmlsec1_signs_and_encrypts(tmp_path, security_pki):
    root = booking("msg-xmlsec1-1")
    expected = c14n(root)
    root.append(ds.Signature(
        ds.SignedInfo(
            ds.CanonicalizationMethod(Algorithm=EXC_C14N),
            ds.SignatureMethod(Algorithm=SignatureMethod.RSA_SHA256.value),
            ds.Reference(ds.Transforms(ds.Transform(Algorithm=f"{DS}enveloped-signature"),
                                       ds.Transform(Algorithm=EXC_C14N)),
                         ds.DigestMethod(Algorithm=DigestMethod.SHA256.value), ds.DigestValue(), URI=""),
        ),
        ds.SignatureValue(),
        ds.KeyInfo(ds.X509Data(ds.X509Certificate())),
    ))
    (tmp_path / "sig-tmpl.xml").write_bytes(to_bytes(root))
    done = xmlsec1("--sign", "--privkey-pem", f"{security_pki.signing_key},{security_pki.signing_certificate}",
                   "--output", tmp_path / "signed.xml", tmp_path / "sig-tmpl.xml")
    assert done.returncode == 0, done.stderr.decode()
    template = xenc.EncryptedData(
        xenc.EncryptionMethod(Algorithm="http://www.w3.org/2009/xmlenc11#aes256-gcm"),
        ds.KeyInfo(xenc.EncryptedKey(xenc.EncryptionMethod(Algorithm=KeyTransport.RSA_OAEP_MGF1P.value),
                                     ds.KeyInfo(ds.X509Data(ds.X509Certificate())),
                                     xenc.CipherData(xenc.CipherValue()))),
        xenc.CipherData(xenc.CipherValue()),
        Type=f"{XENC}Element",
    )
    (tmp_path / "enc-tmpl.xml").write_bytes(to_bytes(template))
    done = xmlsec1("--encrypt", "--pubkey-cert-pem", security_pki.recipient_certificate("state"),
                   "--session-key", "aes-256", "--xml-data", tmp_path / "signed.xml",
                   "--node-name", f"{ns.BN}:BookingNotification", "--output", tmp_path / "message.xml",
                   tmp_path / "enc-tmpl.xml")
    assert done.returncode == 0, done.stderr.decode()
    receiver = Receiver.open(key=security_pki.recipient_key("state"), trusted=[security_pki.signing_certificate],
                             out_dir=tmp_path / "inbox")
    try:
        receipt = receiver.receive((tmp_path / "message.xml").read_bytes(), source="message.xml")
    finally:
        receiver.close()
    assert receipt.message_id == "msg-xmlsec1-1"
    assert c14n(safexml.parse(receipt.plaintext_path.read_bytes()).getroot()) == expected


def test_xmlsec1_decrypts_and_verifies_a_message_to_several_recipients(
    tmp_path, security_pki, security_now, identity, state_recipient, state_key, provider_key
):
    provider = RecipientCertificate.load(security_pki.recipient_certificate("provider"), now=security_now)
    root = booking("msg-multi-1")
    message = encrypt(sign(root, identity), [state_recipient, provider])
    tree = etree.fromstring(message)
    keys = tree.findall(f"{{{DS}}}KeyInfo/{{{XENC}}}EncryptedKey")
    assert len(keys) == 2
    assert [k.findtext(f"{{{DS}}}KeyInfo/{{{DS}}}KeyName") for k in keys] == [
        key_id(c.certificate) for c in (state_recipient, provider)
    ]
    path = tmp_path / "multi.xml"
    path.write_bytes(message)
    for name, key in (("state", state_key), ("provider", provider_key)):
        done = xmlsec1("--decrypt", "--privkey-pem", security_pki.recipient_key(name), "--output",
                       tmp_path / f"{name}.xml", path)
        assert done.returncode == 0, (name, done.stderr.decode())
        check = xmlsec1("--verify", "--trusted-pem", security_pki.ca_certificate, tmp_path / f"{name}.xml")
        assert check.returncode == 0, (name, check.stderr.decode())
        # and our own decrypt opens it with either key
        assert c14n(etree.fromstring(decrypt(message, key))) == c14n(etree.fromstring((tmp_path / f"{name}.xml").read_bytes()))
    # a key that is neither recipient's opens nothing
    rogue = tmp_path / "rogue.key"
    rogue.write_bytes(security_pki.signing_key.read_bytes())
    assert xmlsec1("--decrypt", "--privkey-pem", rogue, path).returncode != 0


def test_a_single_recipient_list_is_the_single_recipient_shape(identity, state_recipient, state_key):
    message = encrypt(sign(booking("msg-one"), identity), [state_recipient])
    tree = etree.fromstring(message)
    assert len(tree.findall(f"{{{DS}}}KeyInfo/{{{XENC}}}EncryptedKey")) == 1
    assert etree.fromstring(decrypt(message, state_key)) is not None
    with pytest.raises(ValueError):
        encrypt(booking("msg-none"), [])
    with pytest.raises(ValueError):
        encrypt(booking("msg-twice"), [state_recipient, state_recipient])


def test_xmlsec1_picks_old_or_new_signing_key_by_key_name(tmp_path, security_pki, identity, ec_signing_files):
    new_key, new_cert = ec_signing_files
    new_identity = SigningIdentity.load(new_key, new_cert)
    holding_both = ["--pubkey-cert-pem:" + identity.key_id, security_pki.signing_certificate,
                    "--pubkey-cert-pem:" + new_identity.key_id, new_cert, "--enabled-key-data", "key-name"]
    for label, signer in (("old", identity), ("new", new_identity)):
        signed = sign(booking(f"msg-rotate-{label}"), signer)
        assert signed.findtext(f"{{{DS}}}Signature/{{{DS}}}KeyInfo/{{{DS}}}KeyName") == signer.key_id
        path = tmp_path / f"{label}.xml"
        path.write_bytes(to_bytes(signed))
        done = xmlsec1("--verify", *holding_both, path)
        assert done.returncode == 0, (label, done.stderr.decode())
        # holding only the other key, xmlsec1 refuses it
        other = identity if signer is new_identity else new_identity
        other_cert = security_pki.signing_certificate if other is identity else new_cert
        alone = xmlsec1("--verify", "--pubkey-cert-pem:" + other.key_id, other_cert,
                        "--enabled-key-data", "key-name", path)
        assert alone.returncode != 0, label
