"""The local outbox on a real directory: nothing visible before a flush, everything in place and listed once
after it, idempotent per message id across restarts, and `sha256sum -c` agrees with the manifest."""
from __future__ import annotations

import errno
import hashlib
import os
import subprocess
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest

from adapters.delivery.local_outbox import MANIFEST, MAX_STAGED, LocalOutbox, _ext4_without_journal
from transforms.model import PermanentError, RetryableError

NOW = datetime(2026, 11, 24, 12, tzinfo=timezone.utc)


def _message(n: int) -> tuple[str, bytes, str]:
    payload = f"<enc n='{n}'/>".encode()
    return f"00000000-0000-0000-0000-{n:012d}", payload, hashlib.sha256(payload).hexdigest()


def _listed(directory) -> list[str]:
    return [line.split("  ", 1)[1] for line in (directory / MANIFEST).read_text().splitlines()]


def test_a_chunk_appears_only_at_flush_then_in_place_and_listed_once(tmp_path):
    box = LocalOutbox(tmp_path, clock=lambda: NOW)
    receipts = [box.deliver(*_message(n)) for n in range(5)]
    box.deliver(*_message(2))  # the same id again before the flush: still one file, one line
    assert not list(tmp_path.glob("*.xml")) and not (tmp_path / MANIFEST).exists()
    box.flush()
    assert sorted(p.name for p in tmp_path.glob("*.xml")) == sorted(f"{_message(n)[0]}.xml" for n in range(5))
    assert sorted(_listed(tmp_path)) == sorted(f"{_message(n)[0]}.xml" for n in range(5))
    assert not list(tmp_path.glob(".*.part"))
    assert all((tmp_path / f"{r.message_id}.xml").read_bytes() == _message(n)[1] for n, r in enumerate(receipts))
    assert subprocess.run(["sha256sum", "--quiet", "-c", MANIFEST], cwd=tmp_path).returncode == 0
    box.close()


def test_a_restarted_outbox_finishes_what_a_crash_left_and_writes_nothing_twice(tmp_path):
    first = LocalOutbox(tmp_path, clock=lambda: NOW)
    for n in range(3):
        first.deliver(*_message(n))
    first.flush()
    first.deliver(*_message(3))  # written to its temporary file, then the process "dies"
    (tmp_path / f"{_message(4)[0]}.xml").write_bytes(_message(4)[1])  # renamed, manifest line never written
    again = LocalOutbox(tmp_path, clock=lambda: NOW)
    for n in range(5):
        again.deliver(*_message(n))
    again.flush()
    assert sorted(_listed(tmp_path)) == sorted(f"{_message(n)[0]}.xml" for n in range(5))  # each exactly once
    assert not list(tmp_path.glob(".*.part"))
    assert subprocess.run(["sha256sum", "--quiet", "-c", MANIFEST], cwd=tmp_path).returncode == 0
    first.close()
    again.close()


def test_a_different_file_under_the_same_name_is_refused(tmp_path):
    box = LocalOutbox(tmp_path, clock=lambda: NOW)
    mid, _, _ = _message(1)
    (tmp_path / f"{mid}.xml").write_bytes(b"someone else's bytes")
    _, payload, digest = _message(1)
    with pytest.raises(PermanentError, match="different file"):
        box.deliver(mid, payload, digest)


def test_many_deliveries_without_a_flush_are_flushed_in_bounded_chunks(tmp_path):
    box = LocalOutbox(tmp_path, clock=lambda: NOW)
    for n in range(MAX_STAGED + 3):
        box.deliver(*_message(n))
    assert len(list(tmp_path.glob("*.xml"))) == MAX_STAGED  # at most MAX_STAGED files held open
    box.flush()
    assert len(_listed(tmp_path)) == MAX_STAGED + 3
    box.close()


def test_a_failed_fsync_places_nothing_and_no_other_fsync_outlives_its_descriptor(tmp_path, monkeypatch):
    real_fsync, calls, lost = os.fsync, [], []
    lock = threading.Lock()

    def failing_fsync(fd: int) -> None:
        with lock:
            calls.append(fd)
        if os.readlink(f"/proc/self/fd/{fd}").endswith(f"{_message(0)[0]}.xml.part"):  # the chunk's first
            raise OSError(errno.EIO, "injected writeback error")
        time.sleep(0.1)  # still syncing when the first failure is known
        try:
            os.fstat(fd)
        except OSError:
            lost.append(fd)  # closed under us: a reused number would have synced another file

    box = LocalOutbox(tmp_path, clock=lambda: NOW)
    for n in range(20):
        box.deliver(*_message(n))
    monkeypatch.setattr(os, "fsync", failing_fsync)
    with pytest.raises(RetryableError):
        box.flush()
    box.close()  # waits for its threads: any fsync still running has ended
    monkeypatch.setattr(os, "fsync", real_fsync)
    assert calls and not lost
    assert not list(tmp_path.glob("*.xml")) and not (tmp_path / MANIFEST).exists()
    box = LocalOutbox(tmp_path, clock=lambda: NOW)
    for n in range(20):  # the next pass delivers them again: each in place and listed once
        box.deliver(*_message(n))
    box.flush()
    assert sorted(_listed(tmp_path)) == sorted(f"{_message(n)[0]}.xml" for n in range(20))
    assert not list(tmp_path.glob(".*.part"))
    box.close()


def test_every_file_of_a_chunk_is_synced_before_it_gets_its_name(tmp_path, monkeypatch):
    real_fsync, synced = os.fsync, []
    lock = threading.Lock()

    def watched_fsync(fd: int) -> None:
        path = os.readlink(f"/proc/self/fd/{fd}")
        if path.endswith(".xml.part"):
            final = os.path.join(os.path.dirname(path), os.path.basename(path)[1:].removesuffix(".part"))
            with lock:
                synced.append((os.path.basename(final), os.path.exists(final)))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", watched_fsync)
    box = LocalOutbox(tmp_path, clock=lambda: NOW)
    for size in (1, 37, MAX_STAGED):  # fewer files than sync threads, a share each, and a full chunk
        synced.clear()
        names = [box.deliver(*_message(n)).message_id + ".xml" for n in range(1000 * size, 1000 * size + size)]
        box.flush()
        assert sorted(name for name, _ in synced) == sorted(names)  # each once
        assert not any(existed for _, existed in synced)  # and before its name existed
        assert all((tmp_path / name).exists() for name in names)
    box.close()


@pytest.mark.skipif(not _ext4_without_journal(Path(tempfile.gettempdir())),
                    reason="files are synced again after the renames on an ext4 without a journal only")
def test_a_failed_fsync_after_the_renames_lists_nothing_yet_and_the_next_pass_lists_each_once(tmp_path, monkeypatch):
    real_fsync = os.fsync

    def failing_after_rename(fd: int) -> None:
        if os.readlink(f"/proc/self/fd/{fd}").endswith(f"{_message(3)[0]}.xml"):  # in place, synced again
            raise OSError(errno.EIO, "injected writeback error")
        real_fsync(fd)

    box = LocalOutbox(tmp_path, clock=lambda: NOW)
    for n in range(10):
        box.deliver(*_message(n))
    monkeypatch.setattr(os, "fsync", failing_after_rename)
    with pytest.raises(RetryableError):
        box.flush()
    box.close()
    monkeypatch.setattr(os, "fsync", real_fsync)
    assert len(list(tmp_path.glob("*.xml"))) == 10  # renamed, but the flush did not succeed: none counts
    assert not (tmp_path / MANIFEST).exists()
    box = LocalOutbox(tmp_path, clock=lambda: NOW)
    for n in range(10):  # delivered again: each found in place, listed once
        box.deliver(*_message(n))
    box.flush()
    assert sorted(_listed(tmp_path)) == sorted(f"{_message(n)[0]}.xml" for n in range(10))
    assert subprocess.run(["sha256sum", "--quiet", "-c", MANIFEST], cwd=tmp_path).returncode == 0
    box.close()
