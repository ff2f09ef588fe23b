"""A real OpenSSH ``sshd`` on 127.0.0.1 for SFTP tests: keys minted per run, own config, start/stop/restart.

Use the ``sshd_factory`` fixture (exported from ``tests/conftest.py``)::

    def test_upload(sshd_factory):
        server = sshd_factory()             # started, accepting, stopped at teardown
        server.known_hosts                  # file with the pinned "[127.0.0.1]:PORT ssh-ed25519 AAAA..." line
        server.client_key, server.user      # key auth as the current user (root in the CI container)
        server.stop(); server.start()       # same port, same host key
        server.rotate_host_key()            # the server now presents a different key than the pinned one
        server.drop_connections()           # kill the per-connection sshd processes (a connection reset)

Facts this relies on (measured in shared/research/deps.md §4): sshd needs an absolute path, ``/run/sshd``,
``StrictModes no`` for keys under /tmp; it accepts within ~20 ms. Each connection is served by a child that
calls ``setsid()``, so stopping the listener alone leaves live sessions running: ``stop()`` also kills them.
"""
from __future__ import annotations

import getpass
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

SSHD = Path("/usr/sbin/sshd")


def write_ed25519_key(path: Path) -> str:
    """Write a new OpenSSH ed25519 private key (0600) to ``path``; return its public line ``ssh-ed25519 AAAA...``."""
    key = ed25519.Ed25519PrivateKey.generate()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                       serialization.NoEncryption()))
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                           serialization.PublicFormat.OpenSSH).decode()
    path.with_suffix(".pub").write_text(public + "\n")
    return public


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _children(pid: int) -> list[int]:
    """Every process whose parent is ``pid`` (read from /proc; sshd's session children)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # "pid (comm) state ppid ...": comm may hold spaces, so split after the closing parenthesis.
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry.name))
    return found


@dataclass
class SshServer:
    """One sshd serving SFTP from ``root`` on 127.0.0.1:``port``."""

    directory: Path
    port: int
    root: Path
    user: str
    client_key: Path
    host_key: Path
    known_hosts: Path
    read_only: bool = False
    process: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def host(self) -> str:
        """Where it listens."""
        return "127.0.0.1"

    def known_hosts_line(self) -> str:
        """The pin for the current host key, as a known_hosts line."""
        return f"[{self.host}]:{self.port} {self.host_key.with_suffix('.pub').read_text().strip()}"

    def start(self) -> None:
        """Write the config and start sshd; return once it answers with its SSH banner."""
        Path("/run/sshd").mkdir(exist_ok=True)
        sftp = "internal-sftp -R" if self.read_only else "internal-sftp"
        config = self.directory / "sshd_config"
        config.write_text("\n".join([
            f"Port {self.port}", "ListenAddress 127.0.0.1", f"HostKey {self.host_key}",
            f"PidFile {self.directory / 'sshd.pid'}", f"AuthorizedKeysFile {self.directory / 'authorized_keys'}",
            "StrictModes no", "PubkeyAuthentication yes", "PasswordAuthentication no",
            "KbdInteractiveAuthentication no", "PermitRootLogin prohibit-password", "UsePAM no",
            f"AllowUsers {self.user}", f"Subsystem sftp {sftp}", "LogLevel ERROR", "MaxStartups 100", "",
        ]))
        log = open(self.directory / "sshd.log", "ab")
        self.process = subprocess.Popen([str(SSHD), "-D", "-e", "-f", str(config)], stdout=log,
                                        stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"sshd exited: {(self.directory / 'sshd.log').read_text()[-500:]}")
            try:
                with socket.create_connection((self.host, self.port), timeout=1) as sock:
                    if sock.recv(8).startswith(b"SSH-"):
                        return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError("sshd did not accept connections within 10 s")

    def drop_connections(self) -> int:
        """Kill every live session (the server side of each connection); the listener stays up."""
        if self.process is None:
            return 0
        killed = 0
        for child in _children(self.process.pid):
            for grandchild in _children(child):
                _kill(grandchild)
            killed += _kill(child)
        return killed

    def stop(self) -> None:
        """Stop the listener and every live session, as a machine going down would."""
        if self.process is None:
            return
        self.drop_connections()
        self.process.kill()
        self.process.wait(timeout=10)
        self.process = None

    def restart(self, *, read_only: bool | None = None) -> None:
        """Stop and start again on the same port with the same keys (optionally toggling read-only SFTP)."""
        self.stop()
        if read_only is not None:
            self.read_only = read_only
        self.start()

    def rotate_host_key(self) -> None:
        """Replace the host key and restart: the pin in ``known_hosts`` no longer matches."""
        self.stop()
        self.host_key.unlink()
        write_ed25519_key(self.host_key)
        self.start()


def _kill(pid: int) -> int:
    try:
        os.kill(pid, signal.SIGKILL)
        return 1
    except ProcessLookupError:
        return 0


def start_sshd(directory: Path, *, read_only: bool = False) -> SshServer:
    """Mint a host key and a client key into ``directory``, pin the host key, start sshd; see the module doc."""
    if not SSHD.exists():
        pytest.skip("OpenSSH server not installed (/usr/sbin/sshd)")
    if os.geteuid() != 0 and not os.access("/run/sshd", os.W_OK):
        pytest.skip("sshd needs /run/sshd (create it as root once)")
    directory.mkdir(parents=True, exist_ok=True)
    root = directory / "sftp-root"
    root.mkdir(exist_ok=True)
    host_key, client_key = directory / "host_ed25519", directory / "client_ed25519"
    write_ed25519_key(host_key)
    (directory / "authorized_keys").write_text(write_ed25519_key(client_key) + "\n")
    server = SshServer(directory, free_port(), root, getpass.getuser(), client_key, host_key,
                       directory / "known_hosts", read_only)
    server.start()
    server.known_hosts.write_text(server.known_hosts_line() + "\n")
    return server


@pytest.fixture
def sshd_factory(tmp_path_factory) -> Iterator[Callable[..., SshServer]]:
    """``sshd_factory(read_only=False)`` starts a fresh sshd; every one is stopped at teardown."""
    servers: list[SshServer] = []

    def make(*, read_only: bool = False) -> SshServer:
        server = start_sshd(tmp_path_factory.mktemp("sshd"), read_only=read_only)
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()
