"""SFTP delivery (paramiko): pinned host key, key auth, atomic upload, a SHA-256 manifest, resume-safe.

One message becomes ``<remote_dir>/<message id>.xml``. The upload goes to ``.<message id>.xml.part``, its
remote size is checked against the payload, and only then is it moved into place with ``posix_rename``
(OpenSSH's atomic rename that also replaces; plain SFTP rename refuses an existing target). The directory's
``MANIFEST.sha256`` gets a ``<sha256>  <file>`` line (``sha256sum -c MANIFEST.sha256`` checks it) after the
rename, so a receiver that trusts the manifest never sees a partial file.

Idempotent per message id, and safe to rerun after a crash at any point:

- crashed mid-upload: the ``.part`` file is overwritten by the next attempt;
- crashed after the rename, before the manifest line: the next attempt finds the file, checks its SHA-256,
  does not upload it again and only adds the manifest line;
- delivered but not recorded in our outbox: same path, a receipt comes back and nothing is sent twice.

The host key is pinned from a known_hosts file: a host that is not in it, or that presents a different key,
is refused with :class:`SecurityError` before anything is sent (paramiko's ``RejectPolicy``, never
auto-add). One connection is reused for every message of a delivery pass; :meth:`SftpTransport.close` ends it.
Errors name the operation and the error kind, never file contents.
"""
from __future__ import annotations

import hashlib
import posixpath
import re
import socket
import stat
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import paramiko

from adapters.ssh import connect_pinned
from transforms.model import PermanentError, Receipt, RetryableError, SecurityError

MANIFEST = "MANIFEST.sha256"
_MANIFEST_LINE = re.compile(r"^([0-9a-f]{64})  (\S+)$")
_CHUNK = 32768


@dataclass(frozen=True, slots=True)
class SftpSettings:
    """Where and how to connect. Paths name files; no secret value is ever held in the settings."""

    host: str
    port: int
    username: str
    private_key: Path
    known_hosts: Path
    remote_dir: str
    passphrase: str | None = None
    connect_timeout: float = 15.0
    timeout: float = 60.0

    def __repr__(self) -> str:  # the passphrase must not reach a log line through repr()
        return f"SftpSettings({self.username}@{self.host}:{self.port}{self.remote_dir})"


class SftpTransport:
    """Deliver messages to one recipient's SFTP directory; see the module docstring."""

    def __init__(self, settings: SftpSettings, *, clock: Callable[[], datetime], name: str = "sftp") -> None:
        self.name = name
        self._settings = settings
        self._clock = clock
        self._client: paramiko.SSHClient | None = None
        self._sftp: paramiko.SFTPClient | None = None
        self._listed: set[str] = set()
        self._present: set[str] = set()
        self._manifest: paramiko.SFTPFile | None = None
        self._manifest_needs_newline = False

    @property
    def _where(self) -> str:
        s = self._settings
        return f"sftp {s.username}@{s.host}:{s.port}"

    def deliver(self, message_id: str, payload: bytes, sha256: str) -> Receipt:
        """Upload one message atomically and list it in the manifest (idempotent per ``message_id``)."""
        operation = f"sftp deliver {message_id}"
        if hashlib.sha256(payload).hexdigest() != sha256:
            raise PermanentError(operation, "payload does not match its SHA-256")
        filename = f"{message_id}.xml"
        target = posixpath.join(self._settings.remote_dir, filename)
        try:
            sftp = self._connected()
            # The directory was listed once at connect: a file already there (a rerun after a crash, or a
            # message delivered but not recorded) is checked by hash instead of being sent again.
            existing = self._size(sftp, target) if filename in self._present else None
            if existing is None:
                self._upload(sftp, target, payload, operation)
                self._present.add(filename)
            elif existing != len(payload) or self._remote_sha256(sftp, target) != sha256:
                raise PermanentError(operation, "a different file already has this name on the server")
            if filename not in self._listed:
                self._append_manifest(sftp, f"{sha256}  {filename}\n")
                self._listed.add(filename)
        except (PermanentError, SecurityError):
            raise
        except PermissionError as exc:
            # The server refused a write (read-only mount, permissions, quota): the recipient can fix it, so
            # we keep retrying with backoff until max_attempts, then dead-letter.
            self.close()
            raise RetryableError(operation, f"server refused the write ({type(exc).__name__})") from None
        except (OSError, EOFError, paramiko.SSHException, socket.timeout) as exc:
            self.close()
            errno = getattr(exc, "errno", None)
            raise RetryableError(operation, f"{type(exc).__name__}{f' (errno {errno})' if errno else ''}") from None
        s = self._settings
        return Receipt(message_id, f"sftp://{s.username}@{s.host}:{s.port}{target}", sha256, self._clock(),
                       self.name)

    def close(self) -> None:
        """Close the connection (the next delivery opens a new one)."""
        for resource in (self._manifest, self._sftp, self._client):
            if resource is not None:
                try:
                    resource.close()
                except Exception:  # closing a dead connection may raise anything; it is gone either way
                    pass
        self._manifest = self._sftp = self._client = None

    # -- connection --------------------------------------------------------------------------------------

    def _connected(self) -> paramiko.SFTPClient:
        if self._sftp is not None and self._client is not None:
            transport = self._client.get_transport()
            if transport is not None and transport.is_active():
                return self._sftp
            self.close()
        s = self._settings
        client = connect_pinned(host=s.host, port=s.port, username=s.username, private_key=s.private_key,
                                known_hosts=s.known_hosts, passphrase=s.passphrase,
                                connect_timeout=s.connect_timeout, channel_timeout=s.timeout, where=self._where,
                                consequence="nothing sent")
        sftp = client.open_sftp()
        sftp.get_channel().settimeout(s.timeout)
        self._client, self._sftp = client, sftp
        self._ensure_dir(sftp)
        self._listed = self._read_manifest(sftp)
        self._present = {n for n in sftp.listdir(s.remote_dir) if n.endswith(".xml") and not n.startswith(".")}
        return sftp

    def _ensure_dir(self, sftp: paramiko.SFTPClient) -> None:
        path = ""
        for part in self._settings.remote_dir.strip("/").split("/"):
            path = f"{path}/{part}" if self._settings.remote_dir.startswith("/") or path else part
            try:
                if not stat.S_ISDIR(sftp.stat(path).st_mode):
                    raise PermanentError(self._where, f"remote path {path!r} is not a directory")
            except FileNotFoundError:
                sftp.mkdir(path)

    # -- files -------------------------------------------------------------------------------------------

    @staticmethod
    def _size(sftp: paramiko.SFTPClient, path: str) -> int | None:
        try:
            return sftp.stat(path).st_size
        except FileNotFoundError:
            return None

    @staticmethod
    def _remote_sha256(sftp: paramiko.SFTPClient, path: str) -> str:
        digest = hashlib.sha256()
        with sftp.open(path, "rb") as handle:
            handle.prefetch()
            while chunk := handle.read(_CHUNK):
                digest.update(chunk)
        return digest.hexdigest()

    def _upload(self, sftp: paramiko.SFTPClient, target: str, payload: bytes, operation: str) -> None:
        directory, name = posixpath.split(target)
        temporary = posixpath.join(directory, f".{name}.part")
        with sftp.open(temporary, "wb") as handle:
            handle.set_pipelined(True)
            view = memoryview(payload)
            for start in range(0, len(view), _CHUNK):
                handle.write(view[start:start + _CHUNK])
        size = sftp.stat(temporary).st_size
        if size != len(payload):
            raise RetryableError(operation, f"remote size {size} after upload, expected {len(payload)}")
        sftp.posix_rename(temporary, target)

    def _read_manifest(self, sftp: paramiko.SFTPClient) -> set[str]:
        path = posixpath.join(self._settings.remote_dir, MANIFEST)
        try:
            with sftp.open(path, "rb") as handle:
                text = handle.read().decode("ascii", "replace")
        except FileNotFoundError:
            self._manifest_needs_newline = False
            return set()
        # A line torn by a crash mid-append is ignored here and closed off before the next append.
        self._manifest_needs_newline = bool(text) and not text.endswith("\n")
        return {m.group(2) for line in text.splitlines() if (m := _MANIFEST_LINE.match(line))}

    def _append_manifest(self, sftp: paramiko.SFTPClient, line: str) -> None:
        path = posixpath.join(self._settings.remote_dir, MANIFEST)
        data = ("\n" + line if self._manifest_needs_newline else line).encode("ascii")
        if self._manifest is None:  # kept open in append mode for the connection: one round trip per line
            self._manifest = sftp.open(path, "ab")
        self._manifest.write(data)
        self._manifest.flush()
        self._manifest_needs_newline = False


__all__ = ["MANIFEST", "SftpSettings", "SftpTransport"]
