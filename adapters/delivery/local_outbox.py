"""The embedded default transport: a local directory per recipient, with a SHA-256 manifest.

Each message lands as ``<message id>.xml`` by write-to-temporary, fsync, rename, so a reader never sees a
partial file; ``MANIFEST.sha256`` lists ``<sha256>  <file>`` lines in the format ``sha256sum -c`` checks.
Delivery is idempotent per message id: delivering the same id again returns a receipt for the file that is
already there and writes nothing.
"""
from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from transforms.model import PermanentError, Receipt, RetryableError

MANIFEST = "MANIFEST.sha256"


class LocalOutbox:
    """Deliver into ``directory`` (created if missing)."""

    def __init__(self, directory: Path, *, clock: Callable[[], datetime], name: str = "outbox") -> None:
        self.name = name
        self._dir = directory
        self._clock = clock
        self._dir.mkdir(parents=True, exist_ok=True)
        manifest = self._dir / MANIFEST
        self._listed: set[str] = set()
        if manifest.exists():
            self._listed = {line.split("  ", 1)[1] for line in manifest.read_text().splitlines() if "  " in line}

    def deliver(self, message_id: str, payload: bytes, sha256: str) -> Receipt:
        """Write the message atomically and list it in the manifest; see the module docstring."""
        if hashlib.sha256(payload).hexdigest() != sha256:
            raise PermanentError(f"deliver {message_id}", "payload does not match its SHA-256")
        filename = f"{message_id}.xml"
        target = self._dir / filename
        try:
            if target.exists():
                if hashlib.sha256(target.read_bytes()).hexdigest() != sha256:
                    raise PermanentError(f"deliver {message_id}", "a different file already has this name")
            else:
                self._write_atomically(target, payload)
            if filename not in self._listed:
                self._append_manifest(f"{sha256}  {filename}\n")
                self._listed.add(filename)
        except OSError as exc:  # disk full, permissions: the next run may succeed
            raise RetryableError(f"deliver {message_id}", f"{type(exc).__name__} ({exc.errno})") from None
        return Receipt(message_id, str(target), sha256, self._clock(), self.name)

    def _write_atomically(self, target: Path, payload: bytes) -> None:
        temporary = target.with_name(f".{target.name}.part")
        with open(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640), "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, target)
        self._fsync_dir()

    def _append_manifest(self, line: str) -> None:
        with open(os.open(self._dir / MANIFEST, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640), "ab") as handle:
            handle.write(line.encode())
            handle.flush()
            os.fsync(handle.fileno())

    def _fsync_dir(self) -> None:
        fd = os.open(self._dir, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
