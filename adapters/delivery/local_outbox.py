"""The embedded default transport: a local directory per recipient, with a SHA-256 manifest.

Each message lands as ``<message id>.xml`` by write-to-temporary, fsync, rename, so a reader never sees a
partial file; ``MANIFEST.sha256`` lists ``<sha256>  <file>`` lines in the format ``sha256sum -c`` checks,
each added only once its file is in place. Delivery is idempotent per message id: delivering the same id
again returns a receipt for the file that is already there and writes nothing (and lists it in the manifest
if a crash came between the two). The manifest is read only in that case, never held in memory whole.

Durability is batched per chunk. :meth:`LocalOutbox.deliver` writes the temporary file; :meth:`LocalOutbox.flush`
syncs every temporary file of the chunk at once (concurrent fsyncs, which the filesystem commits together: about a
tenth of the cost of one fsync after another on a busy disk), renames them into place (on an ext4 without a
journal syncs them again: the rename changed their inodes), appends their manifest lines, then syncs the directory
and the manifest. A receipt therefore counts only once ``flush`` has returned: the pipeline flushes before it
records any receipt, so a crash in between leaves the chunk unsettled and the next pass delivers it again, which
finds each file (or its temporary, overwritten) and writes nothing twice. A caller that delivers without flushing
gets nothing in place.
"""
from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from transforms.model import PermanentError, Receipt, RetryableError

MANIFEST = "MANIFEST.sha256"

MAX_STAGED = 128
"""Temporary files written before :meth:`LocalOutbox.deliver` flushes by itself (bounds open descriptors)."""

_SYNC_THREADS = 16
"""fsyncs running at once in a flush; each thread syncs its share of the chunk's files in turn."""


def _ext4_without_journal(directory: Path) -> bool:
    """True if ``directory`` is on an ext4 mounted without a journal (Linux; False wherever it cannot tell)."""
    device = os.stat(directory).st_dev
    try:
        name = os.path.basename(os.path.realpath(f"/sys/dev/block/{os.major(device)}:{os.minor(device)}"))
        return Path(f"/sys/fs/ext4/{name}/journal_task").read_text().strip() == "<none>"
    except OSError:
        return False


def _sync_each(fds: list[int]) -> None:
    """fsync each descriptor in turn (one thread's share of a chunk); the first failure ends the share."""
    for fd in fds:
        os.fsync(fd)


@dataclass(frozen=True, slots=True)
class _Staged:
    """A message written to its temporary file, waiting for the flush that syncs it and moves it into place."""

    fd: int  # kept open until synced, so a writeback error is reported to us
    temporary: Path
    target: Path


class LocalOutbox:
    """Deliver into ``directory`` (created if missing)."""

    def __init__(self, directory: Path, *, clock: Callable[[], datetime], name: str = "outbox") -> None:
        self.name = name
        self._dir = directory
        self._clock = clock
        self._dir.mkdir(parents=True, exist_ok=True)
        # Names the manifest lists, read only when a file turns out to be in place already (after a crash):
        # kept for every delivery, a million names cost ~120 MB.
        self._listed: set[str] | None = None
        self._manifest: int | None = None  # file descriptor, opened at the first line we append
        self._staged: dict[str, _Staged] = {}  # file name -> written, not yet synced and renamed
        self._lines: dict[str, str] = {}  # file name -> manifest line to append at the next flush
        self._unflushed = False
        self._syncers: ThreadPoolExecutor | None = None  # started at the first flush, kept until close()
        self._resync = _ext4_without_journal(directory)  # sync renamed files again (see _flush)

    def deliver(self, message_id: str, payload: bytes, sha256: str) -> Receipt:
        """Write the message to its temporary file; it is in place and listed once :meth:`flush` returns."""
        if hashlib.sha256(payload).hexdigest() != sha256:
            raise PermanentError(f"deliver {message_id}", "payload does not match its SHA-256")
        filename = f"{message_id}.xml"
        target = self._dir / filename
        try:
            # Also when the file is already there: an earlier process may have crashed before its flush.
            self._unflushed = True
            if filename in self._staged:
                pass  # delivered again before the flush: one file, one line
            elif target.exists():
                if hashlib.sha256(target.read_bytes()).hexdigest() != sha256:
                    raise PermanentError(f"deliver {message_id}", "a different file already has this name")
                if not self._is_listed(filename):  # a crash came between placing it and listing it
                    self._lines[filename] = f"{sha256}  {filename}\n"
            else:
                self._stage(target, payload)
                self._lines[filename] = f"{sha256}  {filename}\n"
            if len(self._staged) >= MAX_STAGED:
                self._flush()
        except OSError as exc:  # disk full, permissions: the next run may succeed
            raise RetryableError(f"deliver {message_id}", f"{type(exc).__name__} ({exc.errno})") from None
        return Receipt(message_id, str(target), sha256, self._clock(), self.name)

    def flush(self) -> None:
        """Sync and move into place everything delivered since the last flush, list it, sync the directory.

        Raises ``RetryableError`` if the disk refuses; then nothing of the chunk counts (and none of its
        temporary files was renamed), and delivering the messages again later completes it.
        """
        try:
            self._flush()
        except OSError as exc:
            raise RetryableError(f"flush {self._dir.name}", f"{type(exc).__name__} ({exc.errno})") from None

    def close(self) -> None:
        """Release open files and threads; it does not flush (what was not flushed is delivered again later)."""
        self._discard_staged()
        if self._syncers is not None:
            self._syncers.shutdown()
            self._syncers = None
        if self._manifest is not None:
            os.close(self._manifest)
            self._manifest = None

    def _is_listed(self, filename: str) -> bool:
        if self._listed is None:
            manifest = self._dir / MANIFEST
            lines = manifest.read_text().splitlines() if manifest.exists() else []
            self._listed = {line.split("  ", 1)[1] for line in lines if "  " in line}
        return filename in self._listed

    def _stage(self, target: Path, payload: bytes) -> None:
        temporary = target.with_name(f".{target.name}.part")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
        try:
            view = memoryview(payload)
            while view:
                view = view[os.write(fd, view):]
        except BaseException:
            os.close(fd)
            raise
        self._staged[target.name] = _Staged(fd, temporary, target)

    def _flush(self) -> None:
        if not self._unflushed:
            return
        staged = list(self._staged.values())
        placed: set[str] = set()
        try:
            if staged:
                # Content durable before any name points at it. Concurrent fsyncs share the disk's flushes.
                # All of them here, none as each file is written: started early (an fsync, or posix_fadvise
                # DONTNEED to begin the writeback), the chunk's writeback made each following file creation
                # wait, which cost more than the flush saved (bench/RESULTS.md, 2026-12-07).
                fds = [s.fd for s in staged]
                self._sync_all(fds)  # the first failure: nothing of the chunk is renamed
                for s in staged:
                    os.replace(s.temporary, s.target)
                    placed.add(s.target.name)
                # Synced again once renamed (the rename changed each inode), on an ext4 without a journal
                # only (this VM): there an inode table block left dirty makes ext4 treat every inode freed
                # in it in the last 6 minutes, not 1, as too recent to reuse, and each following creation in
                # the block group scans past them all. After deletions nearby (another run's files, a test
                # suite's temporary directories) creations cost ~140-210 us CPU a file with the blocks left
                # dirty, ~40-100 with them clean; this round costs ~7 us CPU a file. With a journal there is
                # no such scan, and the round cost ~35 us wall a file for nothing (2026-12-07).
                if self._resync:
                    self._sync_all(fds)
        finally:
            for s in staged:  # never list a file that is not in place; delivering it again stages it anew
                if s.target.name not in placed:
                    self._lines.pop(s.target.name, None)
            self._discard_staged()
        if self._lines:
            self._append_manifest("".join(self._lines.values()))
            if self._listed is not None:
                self._listed.update(self._lines)
            self._lines.clear()
        fd = os.open(self._dir, os.O_RDONLY)
        try:
            os.fsync(fd)  # the renames: every file of the chunk under its final name
        finally:
            os.close(fd)
        if self._manifest is not None:
            os.fsync(self._manifest)
        self._unflushed = False

    def _sync_all(self, fds: list[int]) -> None:
        """fsync every descriptor, concurrently (the filesystem commits them together); raise the first failure.

        Every fsync has ended when this returns or raises: the caller may close the descriptors (map would
        stop at the first failure and leave the others running: one could fsync a reused descriptor).
        """
        if self._syncers is None:  # one pool for the pass: starting threads per chunk cost ~0.2 ms a file
            self._syncers = ThreadPoolExecutor(max_workers=_SYNC_THREADS, thread_name_prefix="fsync")
        # One task per thread, not per file: a future and a thread wake-up per file cost ~10 us CPU
        # (flush 38 -> 29 us CPU a file on this VM's ext4, same 16 fsyncs in flight).
        syncs = [self._syncers.submit(_sync_each, fds[first::_SYNC_THREADS])
                 for first in range(min(_SYNC_THREADS, len(fds)))]
        wait(syncs)
        for sync in syncs:
            sync.result()

    def _discard_staged(self) -> None:
        for s in self._staged.values():
            try:
                os.close(s.fd)
            except OSError:
                pass
        self._staged.clear()

    def _append_manifest(self, text: str) -> None:
        if self._manifest is None:
            self._manifest = os.open(self._dir / MANIFEST, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)
        data = text.encode()
        # One write() with O_APPEND: a killed process leaves whole lines (a few KiB at most per chunk).
        if os.write(self._manifest, data) != len(data):
            raise OSError(28, "short write to the manifest")
