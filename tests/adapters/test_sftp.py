"""SFTP delivery against a real OpenSSH sshd on 127.0.0.1 (keys minted per test): atomic upload, manifest,
idempotence, resume, pinned host keys, and the transport-level faults (sshd stopped mid-upload, connection
reset, server refusing writes), each ending with every message exactly once at the receiver."""
from __future__ import annotations

import hashlib
import os
import subprocess
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest

from adapters.delivery.sftp import MANIFEST, SftpSettings, SftpTransport
from tests.support.sshd import SshServer
from transforms.model import PermanentError, RetryableError, SecurityError

REMOTE = "inbox/county-bh"


def _clock() -> datetime:
    return datetime.now(timezone.utc)


def _transport(server: SshServer, **overrides) -> SftpTransport:
    settings = SftpSettings(host=server.host, port=server.port, username=server.user,
                            private_key=server.client_key, known_hosts=server.known_hosts,
                            remote_dir=str(server.root / REMOTE), **overrides)
    return SftpTransport(settings, clock=_clock)


def _message(n: int, size: int = 2000) -> tuple[str, bytes, str]:
    payload = (f"<m n='{n}'>".encode() + os.urandom(size)).hex().encode()
    return f"00000000-0000-4000-8000-{n:012d}", payload, hashlib.sha256(payload).hexdigest()


def received(server: SshServer) -> dict[str, int]:
    """At the receiver: delivered files per message id, and manifest lines per file (both must be 1)."""
    directory = server.root / REMOTE
    files = sorted(p.name for p in directory.glob("*.xml")) if directory.exists() else []
    manifest = (directory / MANIFEST).read_text().splitlines() if (directory / MANIFEST).exists() else []
    counts = {name: 0 for name in files}
    for line in manifest:
        if "  " in line:  # a line torn by a crash is not a listing (sha256sum -c reports it as malformed)
            name = line.split("  ", 1)[1]
            counts[name] = counts.get(name, 0) + 1
    return counts


def test_delivers_atomically_with_a_manifest_sha256sum_accepts(sshd_factory):
    server = sshd_factory()
    transport = _transport(server)
    messages = [_message(n) for n in range(3)]
    receipts = [transport.deliver(*m) for m in messages]
    transport.close()
    directory = server.root / REMOTE
    for (mid, payload, digest), receipt in zip(messages, receipts):
        assert (directory / f"{mid}.xml").read_bytes() == payload
        assert receipt.sha256 == digest and receipt.location.endswith(f"{REMOTE}/{mid}.xml")
    assert not list(directory.glob(".*.part"))
    check = subprocess.run(["sha256sum", "-c", MANIFEST], cwd=directory, capture_output=True, text=True)
    assert check.returncode == 0 and check.stdout.count(": OK") == 3


def test_a_repeat_delivery_uploads_nothing(sshd_factory):
    server = sshd_factory()
    transport = _transport(server)
    message = _message(1)
    transport.deliver(*message)
    target = server.root / REMOTE / f"{message[0]}.xml"
    before = target.stat()
    again = _transport(server)  # a new process: knows nothing but what is on the server
    receipt = again.deliver(*message)
    assert receipt.message_id == message[0]
    assert target.stat().st_ino == before.st_ino and target.stat().st_mtime_ns == before.st_mtime_ns
    assert received(server) == {f"{message[0]}.xml": 1}


def test_resumes_after_a_crash_between_rename_and_manifest_and_after_a_torn_upload(sshd_factory):
    server = sshd_factory()
    directory = server.root / REMOTE
    directory.mkdir(parents=True)
    renamed, torn = _message(1), _message(2)
    (directory / f"{renamed[0]}.xml").write_bytes(renamed[1])  # renamed into place, manifest line missing
    (directory / f".{torn[0]}.xml.part").write_bytes(torn[1][:100])  # upload cut short
    (directory / MANIFEST).write_text("deadbeef")  # and a manifest line torn mid-append
    inode = (directory / f"{renamed[0]}.xml").stat().st_ino
    transport = _transport(server)
    transport.deliver(*renamed)
    transport.deliver(*torn)
    assert (directory / f"{renamed[0]}.xml").stat().st_ino == inode  # not sent again
    assert (directory / f"{torn[0]}.xml").read_bytes() == torn[1]
    assert received(server) == {f"{renamed[0]}.xml": 1, f"{torn[0]}.xml": 1}
    assert not (directory / f".{torn[0]}.xml.part").exists()
    assert (directory / MANIFEST).read_text().splitlines()[0] == "deadbeef"  # closed off, not glued onto


def test_a_different_file_under_the_same_name_is_refused(sshd_factory):
    server = sshd_factory()
    mid, payload, digest = _message(1)
    (server.root / REMOTE).mkdir(parents=True)
    (server.root / REMOTE / f"{mid}.xml").write_bytes(b"someone else's bytes")
    with pytest.raises(PermanentError, match="different file already has this name"):
        _transport(server).deliver(mid, payload, digest)


def test_an_unpinned_host_is_refused_before_connecting(sshd_factory):
    server = sshd_factory()
    server.known_hosts.write_text("")
    with pytest.raises(SecurityError, match="not pinned in known_hosts; nothing sent") as info:
        _transport(server).deliver(*_message(1))
    assert f"[127.0.0.1]:{server.port}" in str(info.value)
    assert not (server.root / "inbox").exists()


def test_a_changed_host_key_stops_delivery_and_sends_nothing(sshd_factory):
    server = sshd_factory()
    transport = _transport(server)
    transport.deliver(*_message(1))
    transport.close()
    server.rotate_host_key()
    with pytest.raises(SecurityError, match="host key CHANGED") as info:
        transport.deliver(*_message(2))
    assert "nothing sent" in str(info.value) and "update known_hosts" in str(info.value)
    assert received(server) == {f"{_message(1)[0]}.xml": 1}
    assert not list((server.root / REMOTE).glob(".*.part"))


def test_sshd_stopped_mid_upload_then_restarted_delivers_exactly_once(sshd_factory):
    server = sshd_factory()
    transport = _transport(server)
    mid, payload, digest = _message(7, size=24 * 1024 * 1024)  # ~48 MB: long enough to cut in the middle
    part = server.root / REMOTE / f".{mid}.xml.part"
    cut = threading.Event()

    def stop_when_half_sent() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if part.exists() and part.stat().st_size > 1024 * 1024:
                server.stop()
                cut.set()
                return
            time.sleep(0.002)

    watcher = threading.Thread(target=stop_when_half_sent)
    watcher.start()
    with pytest.raises(RetryableError):
        transport.deliver(mid, payload, digest)
    watcher.join()
    assert cut.is_set()
    assert not (server.root / REMOTE / f"{mid}.xml").exists()  # the receiver never saw a partial file
    with pytest.raises(RetryableError):  # still down: a clean retryable refusal, not a hang
        transport.deliver(mid, payload, digest)
    server.start()
    transport.deliver(mid, payload, digest)
    assert (server.root / REMOTE / f"{mid}.xml").read_bytes() == payload
    assert received(server) == {f"{mid}.xml": 1}


def test_a_reset_connection_is_retried_on_a_new_one_exactly_once(sshd_factory):
    server = sshd_factory()
    transport = _transport(server)
    messages = [_message(n) for n in range(6)]
    for n, message in enumerate(messages):
        if n in (2, 4):
            assert server.drop_connections() >= 1  # the server side of our reused connection dies
        for _attempt in range(2):
            try:
                transport.deliver(*message)
                break
            except RetryableError:
                continue
        else:
            pytest.fail("not delivered after a reconnect")
    assert received(server) == {f"{m[0]}.xml": 1 for m in messages}


def test_a_server_refusing_writes_is_retryable_and_nothing_is_half_written(sshd_factory):
    """As root, permissions and quotas do not bind, so the server itself refuses: OpenSSH's read-only SFTP
    (``internal-sftp -R``) answers every write with "permission denied", as a full or read-only share would."""
    server = sshd_factory()
    transport = _transport(server)
    first, second = _message(1), _message(2)
    transport.deliver(*first)
    server.restart(read_only=True)
    with pytest.raises(RetryableError, match="server refused the write"):
        transport.deliver(*second)
    assert received(server) == {f"{first[0]}.xml": 1}
    server.restart(read_only=False)
    transport.deliver(*second)
    transport.deliver(*first)
    assert received(server) == {f"{first[0]}.xml": 1, f"{second[0]}.xml": 1}


def test_settings_repr_holds_no_secret():
    settings = SftpSettings("h", 22, "u", Path("k"), Path("kh"), "/in", passphrase="s3cret-pass")
    assert "s3cret-pass" not in repr(settings)


def test_config_names_files_and_env_vars_and_a_missing_passphrase_variable_is_a_config_error(tmp_path, monkeypatch):
    from exchange.config.transports import SftpTransportConfig
    from exchange.wiring import build_transport
    from transforms.model import ConfigError

    config = SftpTransportConfig(kind="sftp", host="sftp.example.gov", username="feed", private_key="keys/id",
                                 passphrase_env="NIEM_TEST_SFTP_PASSPHRASE", known_hosts="keys/known_hosts",
                                 remote_dir="/in")
    monkeypatch.delenv("NIEM_TEST_SFTP_PASSPHRASE", raising=False)
    with pytest.raises(ConfigError, match="NIEM_TEST_SFTP_PASSPHRASE.*is not set"):
        build_transport(config, recipient_id="state", home=tmp_path, clock=_clock)
    monkeypatch.setenv("NIEM_TEST_SFTP_PASSPHRASE", "pass-value-77")
    transport = build_transport(config, recipient_id="state", home=tmp_path, clock=_clock)
    assert isinstance(transport, SftpTransport) and "pass-value-77" not in repr(transport._settings)
    assert transport._settings.private_key == tmp_path / "keys/id"
