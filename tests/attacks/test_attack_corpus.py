"""The attack corpus: every hostile input is refused by ``receive`` with a clear reason, and nothing is written.

Two kinds of items:
- committed files in this folder (``*.xml``): DTD, external entity, parameter entity, billion laughs, UTF-16
  entity and XInclude payloads. They need no keys, so they are plain files anyone can feed to a receiver;
- items generated at test time from a genuine message signed and encrypted with keys minted for this session
  (see conftest.py): signature wrapping, tampering, key swaps, unpinned / expired / not-yet-valid signers,
  SHA-1 and CBC, hostile XML hidden inside the ciphertext, oversized and deeply nested documents.
The replayed message id is its own test (it needs the genuine message accepted first).

For each item: the refusal names the reason (asserted below), its text and stderr never contain the canary
planted in the message, and the output directory and the replay table are exactly as before.
"""
from __future__ import annotations

import base64
import copy
from collections.abc import Callable
from pathlib import Path

import pytest
import xmlsec
from lxml import etree
from sqlalchemy import func, select
from typer.testing import CliRunner

from attack_kit import CANARY, Kit
from exchange.receive import Receiver
from exchange.security import sign
from exchange.security._received import MAX_DOCUMENT_BYTES
from exchange.state.db import received
from niem_iepd import ns
from transforms.model.errors import MessageInvalidError, SecurityError

HERE = Path(__file__).resolve().parent
DS = ns.DS
XENC = ns.XENC
NSMAP = {"ds": DS, "xenc": XENC}


def to_bytes(element) -> bytes:
    return etree.tostring(element, xml_declaration=True, encoding="UTF-8")


def flip_base64(element: etree._Element, index: int = 20) -> None:
    """Change one byte of the base64 content of ``element``."""
    raw = bytearray(base64.b64decode("".join(element.text.split())))
    raw[index % len(raw)] ^= 0x01
    element.text = base64.b64encode(bytes(raw)).decode()


def encrypt_raw(kit: Kit, plaintext: bytes, cipher=xmlsec.constants.TransformAes256Gcm) -> bytes:
    """What an attacker holding only the recipient's public certificate can send: any bytes, encrypted
    to it and labelled Type=Element."""
    template = xmlsec.template.encrypted_data_create(
        etree.Element("placeholder"), cipher, type=xmlsec.constants.TypeEncElement, ns="xenc"
    )
    xmlsec.template.encrypted_data_ensure_cipher_value(template)
    key_info = xmlsec.template.encrypted_data_ensure_key_info(template, ns="ds")
    encrypted_key = xmlsec.template.add_encrypted_key(key_info, xmlsec.constants.TransformRsaOaep)
    xmlsec.template.encrypted_data_ensure_cipher_value(encrypted_key)
    context = xmlsec.EncryptionContext(kit.state.manager)
    size = 192 if cipher == xmlsec.constants.TransformDes3Cbc else 256
    data = xmlsec.constants.KeyDataDes if cipher == xmlsec.constants.TransformDes3Cbc else xmlsec.constants.KeyDataAes
    context.key = xmlsec.Key.generate(data, size, xmlsec.constants.KeyDataTypeSession)
    return to_bytes(context.encrypt_binary(template, plaintext))


def signature(tree: etree._Element) -> etree._Element:
    return tree.find("ds:Signature", NSMAP)


# --------------------------------------------------------------------------------- signature wrapping


def wrapping_moved_under_a_wrapper(kit: Kit) -> bytes:
    """The genuine signed message moved under an attacker's root that carries forged content."""
    forged = kit.document("forged-1")
    forged.find(".//" + ns.clark("nc:PersonSurName")).text = "Forged"
    holder = etree.SubElement(forged, "{urn:attacker}Original")
    holder.append(kit.signed("wrap-1"))
    return kit.seal(forged)


def wrapping_forged_root_with_the_genuine_signature(kit: Kit) -> bytes:
    """A forged root carrying the genuine signature, with the genuine content tucked inside as a child."""
    signed = kit.signed("wrap-2")
    genuine = copy.deepcopy(signed)
    genuine.remove(signature(genuine))
    forged = kit.document("wrap-2")
    forged.find(".//" + ns.clark("nc:PersonSurName")).text = "Forged"
    forged.append(genuine)
    forged.append(copy.deepcopy(signature(signed)))
    return kit.seal(forged)


def wrapping_duplicated_signed_element(kit: Kit) -> bytes:
    """The genuine signed element duplicated inside itself: two signatures, one of them out of place."""
    signed = kit.signed("wrap-3")
    signed.insert(1, copy.deepcopy(signed))
    return kit.seal(signed)


def wrapping_reference_to_an_id(kit: Kit) -> bytes:
    """The Reference pointed at one element by Id, so the rest of the document would be unsigned."""
    signed = kit.signed("wrap-4")
    signature(signed).find("ds:SignedInfo/ds:Reference", NSMAP).set("URI", "#booking")
    return kit.seal(signed)


def second_root_after_the_signed_document(kit: Kit) -> bytes:
    """The ciphertext holds the genuine signed document followed by a second, unsigned root."""
    extra = kit.document("second-root")
    extra.find(".//" + ns.clark("nc:PersonSurName")).text = "Forged"
    return encrypt_raw(kit, etree.tostring(kit.signed("root-1")) + etree.tostring(extra))


def second_root_before_the_signed_document(kit: Kit) -> bytes:
    """An unsigned root first (the one a naive receiver would read), then the genuine signed document."""
    extra = kit.document("second-root")
    return encrypt_raw(kit, etree.tostring(extra) + etree.tostring(kit.signed("root-2")))


def comment_injection_in_a_signed_text(kit: Kit) -> bytes:
    """A comment inserted into a signed text node: exclusive c14n drops it, so the digest still matches,
    and a consumer reading ``.text`` would see the text cut short."""
    signed = kit.signed("comment-1")
    given = signed.find(".//" + ns.clark("nc:PersonGivenName"))
    given.text = CANARY[:6]
    comment = etree.Comment("x")
    comment.tail = CANARY[6:]
    given.append(comment)
    return kit.seal(signed)


# --------------------------------------------------------------------------------------- tampering


def changed_byte_in_the_ciphertext(kit: Kit) -> bytes:
    tree = etree.fromstring(kit.seal(kit.signed("tamper-1")))
    flip_base64(tree.find("xenc:CipherData/xenc:CipherValue", NSMAP))
    return to_bytes(tree)


def changed_byte_in_the_wrapped_key(kit: Kit) -> bytes:
    tree = etree.fromstring(kit.seal(kit.signed("tamper-2")))
    flip_base64(tree.find("ds:KeyInfo/xenc:EncryptedKey/xenc:CipherData/xenc:CipherValue", NSMAP))
    return to_bytes(tree)


def changed_byte_in_the_signature_value(kit: Kit) -> bytes:
    signed = kit.signed("tamper-3")
    flip_base64(signature(signed).find("ds:SignatureValue", NSMAP), index=7)
    return kit.seal(signed)


def changed_signed_content(kit: Kit) -> bytes:
    signed = kit.signed("tamper-4")
    signed.find(".//" + ns.clark("nc:PersonSurName")).text = "Changed"
    return kit.seal(signed)


# ------------------------------------------------------------------------------------ keys and trust


def our_certificate_swapped_into_a_foreign_signature(kit: Kit) -> bytes:
    """Signed with the rogue key, but KeyInfo names our pinned certificate (and our key id)."""
    signed = kit.signed("swap-1", kit.rogue_identity)
    ours = signature(kit.signed("swap-1")).find("ds:KeyInfo", NSMAP)
    sig = signature(signed)
    sig.replace(sig.find("ds:KeyInfo", NSMAP), copy.deepcopy(ours))
    return kit.seal(signed)


def our_key_name_on_a_foreign_signature(kit: Kit) -> bytes:
    """Signed and certified by the rogue key, claiming our key id in ds:KeyName."""
    signed = kit.signed("swap-2", kit.rogue_identity)
    signature(signed).find("ds:KeyInfo/ds:KeyName", NSMAP).text = kit.identity.key_id
    return kit.seal(signed)


def recipient_certificate_swapped_in_the_encrypted_key(kit: Kit) -> bytes:
    """Encrypted to ``provider`` but relabelled as if for ``state``... and the reverse: labelled for provider."""
    tree = etree.fromstring(kit.seal(kit.signed("swap-3")))
    other = etree.fromstring(kit.seal(kit.signed("swap-3"), to=kit.provider))
    path = "ds:KeyInfo/xenc:EncryptedKey/ds:KeyInfo/ds:X509Data/ds:X509Certificate"
    tree.find(path, NSMAP).text = other.find(path, NSMAP).text
    return to_bytes(tree)


def encrypted_for_another_recipient(kit: Kit) -> bytes:
    return kit.seal(kit.signed("other-1"), to=kit.provider)


def signer_not_pinned(kit: Kit) -> bytes:
    return kit.seal(kit.signed("rogue-1", kit.rogue_identity))


def signer_certificate_expired(kit: Kit) -> bytes:
    return kit.seal(kit.signed("expired-1", kit.expired_identity))


def signer_certificate_not_yet_valid(kit: Kit) -> bytes:
    return kit.seal(kit.signed("future-1", kit.future_identity))


def unsigned_message(kit: Kit) -> bytes:
    return kit.seal(kit.document("unsigned-1"))


def signed_but_not_encrypted(kit: Kit) -> bytes:
    return to_bytes(kit.signed("plain-1"))


# --------------------------------------------------------------------------------------- algorithms


def sha1_signature(kit: Kit) -> bytes:
    """A genuine RSA-SHA1 / SHA-1 signature made with our own (pinned) key."""
    root = kit.document("sha1-1")
    template = xmlsec.template.create(root, xmlsec.constants.TransformExclC14N,
                                      xmlsec.constants.TransformRsaSha1, ns="ds")
    root.append(template)
    reference = xmlsec.template.add_reference(template, xmlsec.constants.TransformSha1, uri="")
    xmlsec.template.add_transform(reference, xmlsec.constants.TransformEnveloped)
    xmlsec.template.add_transform(reference, xmlsec.constants.TransformExclC14N)
    # the identity's key carries no certificate: write it, as exchange.security.sign does
    xmlsec.template.x509_data_add_certificate(
        xmlsec.template.add_x509_data(xmlsec.template.ensure_key_info(template))).text = kit.identity.certificate_base64
    context = xmlsec.SignatureContext()
    context.key = kit.identity.key
    try:
        context.sign(template)
    except xmlsec.Error:  # a build without SHA-1 signing: label it SHA-1, the refusal is the same
        root = kit.signed("sha1-1")
        signature(root).find("ds:SignedInfo/ds:SignatureMethod", NSMAP).set("Algorithm", f"{DS}rsa-sha1")
    return kit.seal(copy.deepcopy(root))


def sha1_digest(kit: Kit) -> bytes:
    signed = kit.signed("sha1-2")
    signature(signed).find("ds:SignedInfo/ds:Reference/ds:DigestMethod", NSMAP).set("Algorithm", f"{DS}sha1")
    return kit.seal(signed)


def aes_cbc_content(kit: Kit) -> bytes:
    return encrypt_raw(kit, etree.tostring(kit.signed("cbc-1")), xmlsec.constants.TransformAes256Cbc)


def triple_des_content(kit: Kit) -> bytes:
    return encrypt_raw(kit, etree.tostring(kit.signed("cbc-2")), xmlsec.constants.TransformDes3Cbc)


def rsa_1_5_key_transport(kit: Kit) -> bytes:
    tree = etree.fromstring(kit.seal(kit.signed("rsa15-1")))
    tree.find("ds:KeyInfo/xenc:EncryptedKey/xenc:EncryptionMethod", NSMAP).set("Algorithm", f"{XENC}rsa-1_5")
    return to_bytes(tree)


# --------------------------------------------------------------------- hostile XML inside the ciphertext


def billion_laughs_inside_the_ciphertext(kit: Kit) -> bytes:
    return encrypt_raw(kit, (HERE / "billion-laughs.xml").read_bytes().replace(
        b"xenc:EncryptedData", b"r").replace(b' xmlns:xenc="http://www.w3.org/2001/04/xmlenc#"', b""))


def external_entity_inside_the_ciphertext(kit: Kit) -> bytes:
    return encrypt_raw(kit, b'<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>')


def deeply_nested_inside_the_ciphertext(kit: Kit) -> bytes:
    return encrypt_raw(kit, b"<a>" * 5000 + b"</a>" * 5000)


def deeply_nested_signed_content(kit: Kit) -> bytes:
    """A document nested 300 deep, genuinely signed by us: the limits apply to signed content too."""
    root = kit.document("deep-1")
    inner = root
    for _ in range(300):
        inner = etree.SubElement(inner, "{urn:deep}n")
    return kit.seal(sign(root, kit.identity))


def deeply_nested_outer_document(kit: Kit) -> bytes:
    return b'<?xml version="1.0"?>' + b"<xenc:EncryptedData xmlns:xenc='http://www.w3.org/2001/04/xmlenc#'>" \
        + b"<a>" * 5000 + b"</a>" * 5000 + b"</xenc:EncryptedData>"


def oversized_message(kit: Kit) -> bytes:
    """A genuine message padded with whitespace (legal after the root) past the size limit."""
    data = kit.seal(kit.signed("big-1"))
    return data + b" " * (MAX_DOCUMENT_BYTES + 1 - len(data))


GENERATED: dict[str, tuple[str, Callable[[Kit], bytes]]] = {
    "wrapping-moved-under-a-wrapper": ("must be a child of the document element", wrapping_moved_under_a_wrapper),
    "wrapping-forged-root-with-the-genuine-signature": ("does not verify",
                                                        wrapping_forged_root_with_the_genuine_signature),
    "wrapping-duplicated-signed-element": ("exactly one ds:Signature, found 2", wrapping_duplicated_signed_element),
    "wrapping-reference-to-an-id": ('URI=""', wrapping_reference_to_an_id),
    "second-root-after-the-signed-document": ("not well-formed", second_root_after_the_signed_document),
    "second-root-before-the-signed-document": ("not well-formed", second_root_before_the_signed_document),
    "comment-injection-in-a-signed-text": ("comment", comment_injection_in_a_signed_text),
    "changed-byte-in-the-ciphertext": ("cannot be decrypted", changed_byte_in_the_ciphertext),
    "changed-byte-in-the-wrapped-key": ("cannot be decrypted", changed_byte_in_the_wrapped_key),
    "changed-byte-in-the-signature-value": ("does not verify", changed_byte_in_the_signature_value),
    "changed-signed-content": ("does not verify", changed_signed_content),
    "our-certificate-swapped-into-a-foreign-signature": ("does not verify",
                                                         our_certificate_swapped_into_a_foreign_signature),
    "our-key-name-on-a-foreign-signature": ("not one of the trusted certificates", our_key_name_on_a_foreign_signature),
    "recipient-certificate-swapped-in-the-encrypted-key": ("encrypted to a different certificate",
                                                           recipient_certificate_swapped_in_the_encrypted_key),
    "encrypted-for-another-recipient": ("encrypted to a different certificate", encrypted_for_another_recipient),
    "signer-not-pinned": ("not one of the trusted certificates", signer_not_pinned),
    "signer-certificate-expired": ("certificate has expired", signer_certificate_expired),
    "signer-certificate-not-yet-valid": ("certificate is not yet valid", signer_certificate_not_yet_valid),
    "unsigned-message": ("exactly one ds:Signature, found 0", unsigned_message),
    "signed-but-not-encrypted": ("not xenc:EncryptedData", signed_but_not_encrypted),
    "sha1-signature": ("legacy algorithm RSA_SHA1", sha1_signature),
    "sha1-digest": ("legacy algorithm SHA1", sha1_digest),
    "aes-cbc-content": ("legacy algorithm AES256_CBC", aes_cbc_content),
    "triple-des-content": ("legacy algorithm TRIPLEDES_CBC", triple_des_content),
    "rsa-1_5-key-transport": ("legacy algorithm RSA_1_5", rsa_1_5_key_transport),
    "billion-laughs-inside-the-ciphertext": ("entity declaration", billion_laughs_inside_the_ciphertext),
    "external-entity-inside-the-ciphertext": ("entity declaration", external_entity_inside_the_ciphertext),
    "deeply-nested-inside-the-ciphertext": ("beyond the parser's limits", deeply_nested_inside_the_ciphertext),
    "deeply-nested-signed-content": ("beyond the parser's limits", deeply_nested_signed_content),
    "deeply-nested-outer-document": ("beyond the parser's limits", deeply_nested_outer_document),
    "oversized-message": ("over the size limit", oversized_message),
}

#: The committed files and the reason each must be refused with.
FILES: dict[str, str] = {
    "billion-laughs.xml": "entity declaration",
    "xxe-local-file.xml": "entity declaration",
    "xxe-parameter-entity.xml": "entity declaration",
    "external-dtd.xml": "DOCTYPE",
    "utf16-entity.xml": "entity declaration",
    "xinclude.xml": "content cipher uses a missing algorithm",
}


@pytest.fixture
def receiver(tmp_path, kit):
    opened = Receiver.open(key=kit.ours.recipient_key("state"), trusted=list(kit.pinned),
                           out_dir=tmp_path / "inbox", state=tmp_path / "inbox" / "received.db")
    yield opened
    opened.close()


def snapshot(receiver: Receiver) -> tuple[list[str], int]:
    with receiver.engine.connect() as conn:
        rows = conn.execute(select(func.count()).select_from(received)).scalar_one()
    return sorted(p.name for p in receiver.out_dir.iterdir()), rows


def assert_refused(receiver: Receiver, data: bytes, source: str, reason: str, capfd) -> None:
    before = snapshot(receiver)
    capfd.readouterr()
    with pytest.raises((SecurityError, MessageInvalidError)) as info:
        receiver.receive(data, source=source)
    text = str(info.value)
    assert reason in text, text
    assert source in text, text
    out, err = capfd.readouterr()
    assert CANARY not in text + repr(info.value) + out + err
    assert snapshot(receiver) == before, "a refused message left something behind"


def test_the_genuine_message_is_accepted(receiver, kit):
    """The control: without the attack, the same kit produces a message the receiver accepts."""
    receipt = receiver.receive(kit.seal(kit.signed("genuine-1")), source="genuine.xml")
    assert receipt.plaintext_path.exists() and receipt.message_id == "genuine-1"


@pytest.mark.parametrize("name", sorted(GENERATED))
def test_generated_attack_is_refused_and_leaves_nothing(name, kit, receiver, capfd):
    reason, build = GENERATED[name]
    assert_refused(receiver, build(kit), f"{name}.xml", reason, capfd)


@pytest.mark.parametrize("name", sorted(FILES))
def test_committed_attack_file_is_refused_and_leaves_nothing(name, receiver, capfd):
    assert_refused(receiver, (HERE / name).read_bytes(), name, FILES[name], capfd)


def test_every_committed_attack_file_is_in_the_corpus():
    assert sorted(p.name for p in HERE.glob("*.xml")) == sorted(FILES)


def test_a_replayed_message_id_is_refused_and_leaves_nothing(receiver, kit, capfd):
    data = kit.seal(kit.signed("replay-1"))
    receiver.receive(data, source="first.xml")
    assert_refused(receiver, data, "again.xml", "replay", capfd)
    # a fresh encryption of a fresh signature over the same message id is still a replay
    assert_refused(receiver, kit.seal(kit.signed("replay-1")), "resigned.xml", "replay", capfd)


def test_the_cli_refuses_the_whole_corpus_one_line_each(tmp_path, kit):
    from exchange.cli import app

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name, (_reason, build) in GENERATED.items():
        if name != "oversized-message":  # 20 MB on disk adds nothing the library test does not show
            (corpus / f"{name}.xml").write_bytes(build(kit))
    for name in FILES:
        (corpus / name).write_bytes((HERE / name).read_bytes())
    files = sorted(corpus.iterdir())
    out = tmp_path / "inbox"
    args = ["receive", *map(str, files), "--key", str(kit.ours.recipient_key("state")), "--out", str(out)]
    for pinned in kit.pinned:
        args += ["--trust", str(pinned)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1, result.output
    refused = [line for line in result.output.splitlines() if ": REFUSED: " in line]
    assert len(refused) == len(files), result.output
    assert "accepted" not in result.output and CANARY not in result.output
    assert sorted(p.name for p in out.iterdir()) == ["received.db"]
