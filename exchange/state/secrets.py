"""Local secrets of an installation (person-index key, per-agreement token keys): 32 random bytes in a file.

Created on first use with mode 0600 (``O_EXCL``, so two processes never mint two different keys); losing
one changes every hash or token made with it, so back these files up with the state database.
"""
from __future__ import annotations

import os
import secrets
from pathlib import Path


def load_or_create_secret(path: Path) -> bytes:
    """Read the hex secret at ``path``, creating it (0600, 32 random bytes) if it does not exist yet."""
    try:
        return bytes.fromhex(path.read_text().strip())
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        value = secrets.token_bytes(32)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process won the race: use its key
            return bytes.fromhex(path.read_text().strip())
        with open(fd, "w") as handle:
            handle.write(value.hex())
        return value
