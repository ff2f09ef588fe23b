"""One way to open an SSH connection: the server's host key pinned from known_hosts, never auto-added.

Both the SFTP transport (delivering) and the SFTP drop (pulling) connect through :func:`connect_pinned`, so
both refuse an unknown or changed host key the same way, before any byte of ours leaves or of theirs is read.
"""
from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import paramiko

from transforms.model import RetryableError, SecurityError


def connect_pinned(
    *,
    host: str,
    port: int,
    username: str,
    private_key: Path,
    known_hosts: Path,
    passphrase: str | None,
    connect_timeout: float,
    where: str,
    consequence: str,
    channel_timeout: float | None = None,
) -> paramiko.SSHClient:
    """Connect with key authentication to a server whose host key ``known_hosts`` pins.

    ``where`` names the connection in errors and ``consequence`` says what did not happen ("nothing sent").
    A missing pin, a changed host key, an unreadable client key or a refused login is a SecurityError;
    a network failure is a RetryableError. Errors name key types and fingerprints, never key material.
    """
    client = paramiko.SSHClient()
    host_keys = client.get_host_keys()
    try:
        host_keys.load(str(known_hosts))
    except FileNotFoundError:
        raise SecurityError(where, f"known_hosts file not found; pin the server's host key first; {consequence}") \
            from None
    lookup = host if port == 22 else f"[{host}]:{port}"
    if host_keys.lookup(lookup) is None:
        raise SecurityError(where, f"host key of {lookup} is not pinned in known_hosts; {consequence} (get the "
                            "key from the other party out of band and add it)")
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    try:
        pkey = paramiko.PKey.from_path(private_key, passphrase.encode() if passphrase else None)
    except FileNotFoundError:
        raise SecurityError(where, "client private key file not found") from None
    except paramiko.SSHException:
        raise SecurityError(where, "client private key cannot be read (wrong passphrase or format)") from None
    try:
        client.connect(host, port, username=username, pkey=pkey, look_for_keys=False, allow_agent=False,
                       timeout=connect_timeout, banner_timeout=connect_timeout, auth_timeout=connect_timeout,
                       channel_timeout=channel_timeout)
    except paramiko.BadHostKeyException as exc:
        client.close()
        raise SecurityError(where, f"host key CHANGED: server presented {exc.key.get_name()} "
                            f"SHA256:{fingerprint(exc.key)}, pinned SHA256:{fingerprint(exc.expected_key)}; "
                            f"{consequence} (verify with the other party, then update known_hosts)") from None
    except paramiko.AuthenticationException:
        client.close()
        raise SecurityError(where, "authentication refused for our client key") from None
    except (OSError, EOFError, paramiko.SSHException) as exc:
        client.close()
        raise RetryableError(f"{where} connect", type(exc).__name__) from None
    return client


def fingerprint(key: paramiko.PKey) -> str:
    """The OpenSSH-style SHA256 fingerprint of a public key (base64, no padding)."""
    return base64.b64encode(hashlib.sha256(key.asbytes()).digest()).decode().rstrip("=")
