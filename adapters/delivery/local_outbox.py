"""The embedded default transport: a local directory per recipient, with a SHA-256 manifest.

Each message lands as ``<message id>.xml`` by write-to-temporary, fsync, rename, so a reader never sees a
partial file; ``MANIFEST.sha256`` lists ``<sha256>  <file>`` lines in the format ``sha256sum -c`` checks.
Delivery is idempotent per message id: delivering the same id again returns a receipt for the file that is
already there and writes nothing (and lists it in the manifest if a crash came between the two).

Durability is batched: each file's content is synced before its rename, but the directory entry and the
manifest lines are synced by :meth:`LocalOutbox.flush`, once for every message delivered since the last
flush (two fsyncs per chunk instead of three per message). A receipt therefore counts only once ``flush``
has returned; the pipeline flushes before it records any receipt, so a crash in between leaves the message
unsettled and the next pass delivers it again, which finds the file and writes nothing.
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
        self._manifest: int | None = None  # file descriptor, opened at the first line we append
        self._unflushed = False

    def deliver(self, message_id: str, payload: bytes, sha256: str) -> Receipt:
        """Write the message atomically and list it in the manifest; durable once :meth:`flush` returns."""
        if hashlib.sha256(payload).hexdigest() != sha256:
            raise PermanentError(f"deliver {message_id}", "payload does not match its SHA-256")
        filename = f"{message_id}.xml"
        target = self._dir / filename
        try:
            # Also when the file is already there: an earlier process may have crashed before its flush.
            self._unflushed = True
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

    def flush(self) -> None:
        """Make every delivery since the last flush durable: sync the directory and the manifest once.

        Raises ``RetryableError`` if the disk refuses (those deliveries must not be counted).
        """
        if not self._unflushed:
            return
        try:
            fd = os.open(self._dir, os.O_RDONLY)
            try:
                os.fsync(fd)  # the renames: every file of the chunk under its final name
            finally:
                os.close(fd)
            if self._manifest is not None:
                os.fsync(self._manifest)
        except OSError as exc:
            raise RetryableError(f"flush {self._dir.name}", f"{type(exc).__name__} ({exc.errno})") from None
        self._unflushed = False

    def close(self) -> None:
        """Release the manifest's file descriptor (the next delivery opens it again); it does not flush."""
        if self._manifest is not None:
            os.close(self._manifest)
            self._manifest = None

    def _write_atomically(self, target: Path, payload: bytes) -> None:
        temporary = target.with_name(f".{target.name}.part")
        with open(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640), "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())  # content durable before the name points at it
        os.replace(temporary, target)

    def _append_manifest(self, line: str) -> None:
        if self._manifest is None:
            self._manifest = os.open(self._dir / MANIFEST, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)
        data = line.encode()
        # One write() of a short line with O_APPEND: a killed process leaves the whole line or none of it.
        if os.write(self._manifest, data) != len(data):
            raise OSError(28, "short write to the manifest")
