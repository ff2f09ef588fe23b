"""exchange.receive: the receiving agency's side, end to end with real keys, files and SQLite.

A message is the IEPD's sample BookingNotification with its own message id, signed with our dev signing key
and encrypted to recipient ``state``. Every refusal must leave the output directory and the replay table as
they were. The hostile inputs are in tests/attacks/; interop with xmlsec1 in test_receive_xmlsec1.py.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12
from lxml import etree
from sqlalchemy import func, select
from typer.testing import CliRunner

from exchange.receive import Receiver
from exchange.security import SigningIdentity, encrypt, key_id, sign
from exchange.state.db import received
from niem_iepd import ns, safexml
from transforms.model.errors import MessageInvalidError, SecurityError

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "niem_iepd/samples/booking-notification.xml"
MESSAGE_ID = ns.clark("nx:MessageMetadata/nx:MessageIdentification/nc:IdentificationID")


def booking(message_id: str) -> etree._Element:
    """The sample BookingNotification carrying ``message_id``."""
    root = safexml.parse_trusted_file(SAMPLE).getroot()
    root.find(MESSAGE_ID).text = message_id
    return root


def c14n(element) -> bytes:
    return etree.tostring(element, method="c14n", exclusive=True, with_comments=False)


@pytest.fixture
def seal(identity, state_recipient):
    """``seal(message_id, signer=identity, mutate=None)`` -> bytes as a sender would deliver them."""

    def make(message_id: str, signer: SigningIdentity = identity, mutate=None) -> bytes:
        root = booking(message_id)
        if mutate is not None:
            mutate(root)
        return encrypt(sign(root, signer), state_recipient)

    return make


@pytest.fixture
def receiver(tmp_path, security_pki):
    opened = Receiver.open(key=security_pki.recipient_key("state"), trusted=[security_pki.signing_certificate],
                           out_dir=tmp_path / "inbox", state=tmp_path / "state" / "received.db")
    yield opened
    opened.close()


def snapshot(receiver: Receiver) -> tuple[list[str], int]:
    """What a refusal must not change: the files in the output directory and the rows of the replay table."""
    with receiver.engine.connect() as conn:
        rows = conn.execute(select(func.count()).select_from(received)).scalar_one()
    return sorted(p.name for p in receiver.out_dir.iterdir()), rows


def test_an_accepted_message_leaves_plaintext_receipt_and_a_replay_row(receiver, seal, identity):
    data = seal("msg-accept-1")
    receipt = receiver.receive(data, source="in-1.xml")
    assert receipt.message_id == "msg-accept-1" and receipt.message_type == "BookingNotification"
    assert receipt.plaintext_path == receiver.out_dir / "msg-accept-1.xml"
    # the plaintext is exactly the signed content, without the signature
    plaintext = receipt.plaintext_path.read_bytes()
    assert c14n(safexml.parse(plaintext).getroot()) == c14n(booking("msg-accept-1"))
    assert b"Signature" not in plaintext
    assert stat.S_IMODE(os.stat(receipt.plaintext_path).st_mode) == 0o600
    written = json.loads(receipt.receipt_path.read_text())
    assert written["sender_certificate_sha256"] == identity.fingerprint
    assert written["sender_key_id"] == identity.key_id == key_id(identity.certificate)
    assert written["received_sha256"] == hashlib.sha256(data).hexdigest()
    assert written["plaintext_sha256"] == hashlib.sha256(plaintext).hexdigest()
    assert receiver.seen("msg-accept-1")
    assert snapshot(receiver) == (["msg-accept-1.receipt.json", "msg-accept-1.xml"], 1)


def test_a_replayed_message_id_is_refused_and_nothing_is_written(receiver, seal):
    first = seal("msg-replay-1")
    receiver.receive(first)
    before = snapshot(receiver)
    with pytest.raises(SecurityError, match="replay"):
        receiver.receive(first)
    # the same id with other (validly signed) content is a replay too
    with pytest.raises(SecurityError, match="replay"):
        receiver.receive(seal("msg-replay-1"))
    assert snapshot(receiver) == before


def test_the_replay_table_survives_a_restart(tmp_path, security_pki, seal):
    def open_receiver():
        return Receiver.open(key=security_pki.recipient_key("state"), trusted=[security_pki.signing_certificate],
                             out_dir=tmp_path / "inbox", state=tmp_path / "r.db")
    data = seal("msg-restart-1")
    first = open_receiver()
    first.receive(data)
    first.close()
    (tmp_path / "inbox" / "msg-restart-1.xml").unlink()  # even with the plaintext moved away
    (tmp_path / "inbox" / "msg-restart-1.receipt.json").unlink()
    second = open_receiver()
    with pytest.raises(SecurityError, match="replay"):
        second.receive(data)
    second.close()
    assert list((tmp_path / "inbox").iterdir()) == []


def test_a_signed_but_invalid_message_is_refused_with_the_element_path(receiver, seal):
    def break_it(root):
        root.find(ns.clark("nx:MessageMetadata/nx:MessageSentDateTime/nc:DateTime")).text = "not a date"
    before = snapshot(receiver)
    with pytest.raises(MessageInvalidError) as info:
        receiver.receive(seal("msg-invalid-1", mutate=break_it), source="bad.xml")
    assert "nx:MessageSentDateTime" in info.value.field and "not a date" not in str(info.value)
    assert "bad.xml" in str(info.value)
    assert snapshot(receiver) == before


def test_an_unsafe_message_id_is_refused(receiver, seal):
    before = snapshot(receiver)
    with pytest.raises(MessageInvalidError, match="message id"):
        receiver.receive(seal("../../etc/passwd"))
    assert snapshot(receiver) == before


def test_old_and_new_signing_keys_are_both_accepted_during_a_rotation(tmp_path, security_pki, seal, identity,
                                                                     ec_signing_files):
    key, cert = ec_signing_files
    new_identity = SigningIdentity.load(key, cert)
    assert new_identity.key_id != identity.key_id
    both = Receiver.open(key=security_pki.recipient_key("state"),
                         trusted=[security_pki.signing_certificate, cert], out_dir=tmp_path / "inbox")
    try:
        assert both.receive(seal("msg-old-key")).sender_key_id == identity.key_id
        assert both.receive(seal("msg-new-key", signer=new_identity)).sender_key_id == new_identity.key_id
    finally:
        both.close()
    only_new = Receiver.open(key=security_pki.recipient_key("state"), trusted=[cert], out_dir=tmp_path / "in2")
    try:
        with pytest.raises(SecurityError, match="not one of the trusted"):
            only_new.receive(seal("msg-old-key-2"))
    finally:
        only_new.close()


def test_a_pkcs12_key_with_a_passphrase_opens_messages(tmp_path, security_pki, seal):
    key = serialization.load_pem_private_key(security_pki.recipient_key("state").read_bytes(), password=None)
    p12 = tmp_path / "state.p12"
    p12.write_bytes(pkcs12.serialize_key_and_certificates(
        b"state", key, None, None, serialization.BestAvailableEncryption(b"s3cret")))
    opened = Receiver.open(key=p12, passphrase=b"s3cret", trusted=[security_pki.signing_certificate],
                           out_dir=tmp_path / "inbox")
    try:
        assert opened.receive(seal("msg-p12")).message_id == "msg-p12"
    finally:
        opened.close()
    with pytest.raises(SecurityError, match="passphrase"):
        Receiver.open(key=p12, passphrase=b"wrong", trusted=[security_pki.signing_certificate],
                      out_dir=tmp_path / "inbox2")


# ------------------------------------------------------------------------------------------------- CLI


def run_cli(*args: object):
    from exchange.cli import app

    return CliRunner().invoke(app, [str(a) for a in args])


def test_cli_receives_good_files_and_refuses_bad_ones_one_line_each(tmp_path, security_pki, seal, canary):
    good = tmp_path / "good.xml"
    good.write_bytes(seal("msg-cli-1"))
    tampered = tmp_path / "tampered.xml"
    tree = etree.fromstring(seal("msg-cli-2"))
    value = tree.find(f"{{{ns.XENC}}}CipherData/{{{ns.XENC}}}CipherValue")
    value.text = ("A" if value.text[0] != "A" else "B") + value.text[1:]
    tampered.write_bytes(etree.tostring(tree))
    out, state = tmp_path / "inbox", tmp_path / "state.db"
    args = ["receive", good, tampered, "--key", security_pki.recipient_key("state"),
            "--trust", security_pki.signing_certificate, "--out", out, "--state", state]
    result = run_cli(*args)
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert any(line.startswith(f"{good}: accepted BookingNotification msg-cli-1") for line in lines), lines
    assert any(line.startswith(f"{tampered}: REFUSED:") and "cannot be decrypted" in line for line in lines), lines
    assert sorted(p.name for p in out.iterdir()) == ["msg-cli-1.receipt.json", "msg-cli-1.xml"]
    # the same file again: a replay, exit 1, nothing new
    again = run_cli("receive", good, *args[3:])
    assert again.exit_code == 1 and "replay" in again.output
    assert sorted(p.name for p in out.iterdir()) == ["msg-cli-1.receipt.json", "msg-cli-1.xml"]
    assert canary not in result.output + again.output


def _protected_state_key(tmp_path, security_pki, passphrase: bytes):
    """The state agency's decryption key, written again encrypted under ``passphrase``."""
    key = serialization.load_pem_private_key(security_pki.recipient_key("state").read_bytes(), password=None)
    protected = tmp_path / "state-protected.key"
    protected.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                            serialization.BestAvailableEncryption(passphrase)))
    return protected


def test_cli_reads_a_passphrase_from_the_environment_only(tmp_path, security_pki, seal, monkeypatch):
    protected = _protected_state_key(tmp_path, security_pki, b"env-pass")
    message = tmp_path / "m.xml"
    message.write_bytes(seal("msg-cli-pass"))
    monkeypatch.setenv("RECEIVER_KEY_PASS", "env-pass")
    result = run_cli("receive", message, "--key", protected, "--passphrase-env", "RECEIVER_KEY_PASS",
                     "--trust", security_pki.signing_certificate, "--out", tmp_path / "inbox")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "inbox" / "received.db").exists()  # default state location
    missing = run_cli("receive", message, "--key", protected, "--passphrase-env", "NOT_SET_ANYWHERE",
                      "--trust", security_pki.signing_certificate, "--out", tmp_path / "inbox2")
    assert missing.exit_code == 2 and "NOT_SET_ANYWHERE" in missing.output


def test_cli_reads_a_passphrase_from_a_file_and_says_which_file_is_wrong(tmp_path, security_pki, seal):
    protected = _protected_state_key(tmp_path, security_pki, b"file-pass")
    message = tmp_path / "m.xml"
    message.write_bytes(seal("msg-cli-pass-file"))
    secret = tmp_path / "receiver.pass"
    secret.write_text("file-pass\n")  # as `echo` writes it: the newline is not part of the passphrase
    common = ("--trust", security_pki.signing_certificate)
    result = run_cli("receive", message, "--key", protected, "--passphrase-file", secret, *common,
                     "--out", tmp_path / "inbox")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "inbox" / "msg-cli-pass-file.xml").exists()
    secret.write_text("not-the-pass\n")
    wrong = run_cli("receive", message, "--key", protected, "--passphrase-file", secret, *common,
                    "--out", tmp_path / "inbox2")
    assert wrong.exit_code == 2 and "passphrase" in wrong.output and "not-the-pass" not in wrong.output
    missing = run_cli("receive", message, "--key", protected, "--passphrase-file", tmp_path / "nope.pass",
                      *common, "--out", tmp_path / "inbox3")
    assert missing.exit_code == 2 and "nope.pass" in missing.output
    both = run_cli("receive", message, "--key", protected, "--passphrase-file", secret, "--passphrase-env", "X",
                   *common, "--out", tmp_path / "inbox4")
    assert both.exit_code == 2 and "not both" in both.output


# -------------------------------------------------------------------- the sender refuses expired certs


def test_recipient_certificate_check_refuses_after_expiry(state_recipient, refused):
    state_recipient.check(state_recipient.not_valid_after - dt.timedelta(seconds=1))
    refused("has expired", state_recipient.check, state_recipient.not_valid_after + dt.timedelta(seconds=1))


def test_the_pipeline_refuses_to_encrypt_to_a_certificate_that_expired_after_loading(tmp_path, demo_config):
    from exchange import pipeline
    from exchange.commands.certs import DEMO_RECIPIENTS
    from exchange.runtime import open_exchange
    from exchange.state.db import outbox

    from exchange.security import mint_dev_pki

    now = [dt.datetime.now(dt.timezone.utc)]
    home = tmp_path / "home"
    mint_dev_pki(home / "certs/dev", organization="Example County", recipients=DEMO_RECIPIENTS, now=now[0])
    ex = open_exchange(demo_config, home, clock=lambda: now[0])
    try:
        keys = pipeline.plan(ex)
        now[0] = max(c.not_valid_after for c in ex.recipient_certs.values()) + dt.timedelta(days=1)
        with pytest.raises(SecurityError, match="has expired"):
            pipeline.process_window(ex, keys[0])
        with ex.engine.connect() as conn:
            assert conn.execute(select(func.count()).select_from(outbox)).scalar_one() == 0
    finally:
        ex.close()


def test_a_failure_while_placing_files_rolls_back_the_row_and_the_other_file(receiver, seal):
    """The plaintext is linked into place, then the receipt's name is taken: both the plaintext and the
    replay row must go, and the file that was already there stays untouched."""
    squatter = receiver.out_dir / "msg-partial-1.receipt.json"
    squatter.write_text("someone else's file")
    before = snapshot(receiver)
    with pytest.raises(SecurityError, match="already exists"):
        receiver.receive(seal("msg-partial-1"))
    assert snapshot(receiver) == before and not receiver.seen("msg-partial-1")
    assert squatter.read_text() == "someone else's file"
    squatter.unlink()
    assert receiver.receive(seal("msg-partial-1")).message_id == "msg-partial-1"  # nothing was burnt
