"""Pull a jail's file drop from an SFTP server into the local drop directory, then archive or mark it remotely.

Jail management systems often write their exports to an SFTP server (theirs or the county's) instead of a
share we can mount. :class:`SftpDropPuller` brings new files over so the local file-drop source
(:class:`adapters.sources.jail_csv.JailCsvSource`) reads them exactly as if they had been dropped locally;
:class:`PulledDropSource` runs the pull at the start of every plan.

A partial file is never read:

* names that say "still being written" are never pulled: dot-files, ``*.part``, ``*.tmp``, ``*.filepart``;
* a file is pulled only once it is *settled*: its size and modification time are the same on two listings
  ``settle_seconds`` apart (a writer still appending changes one of them);
* optionally, only once a ready marker exists (``ready_suffix=".ok"``: ``bookings.csv`` waits for
  ``bookings.csv.ok``), for JMS that write such markers;
* the download goes to ``.<name>.part`` locally (ignored by the local source), is checked against the remote
  size and re-stat (a file that changed while we read it is discarded and pulled next time), fsynced, and only
  then renamed into place.

After the local rename the remote file is archived (moved into ``archive_dir``, created if missing) or marked
(renamed to ``<name>.processed``), so the next pull does not see it. A crash between the local rename and the
remote archive leaves the file in both places; the next pull finds an identical local copy (same SHA-256),
does not download it again and archives it. The local source plans each file's content once either way.

The host key is pinned from a known_hosts file (an unknown or changed key is a :class:`SecurityError`, nothing
is read); the client authenticates with a key file only. Errors name the operation, never file contents.
"""
from __future__ import annotations

import fnmatch
import hashlib
import os
import posixpath
import stat
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

import paramiko

from adapters.ssh import connect_pinned
from transforms.model import RetryableError, Window

PARTIAL_SUFFIXES = (".part", ".tmp", ".filepart", ".processed")
"""Remote names never pulled: still being written, or already marked processed."""


@dataclass(frozen=True, slots=True)
class SftpPullSettings:
    """Where to pull from and how to authenticate; paths name files, no secret value is held here."""

    host: str
    port: int
    username: str
    private_key: Path
    known_hosts: Path
    remote_dir: str
    pattern: str = "*.csv"
    after: Literal["archive", "mark"] = "archive"
    archive_dir: str = "archive"  # relative to remote_dir unless absolute
    settle_seconds: float = 5.0
    ready_suffix: str = ""
    passphrase: str | None = None
    timeout: float = 30.0

    def __repr__(self) -> str:  # the passphrase must not reach a log line through repr()
        return f"SftpPullSettings({self.username}@{self.host}:{self.port}{self.remote_dir})"


@dataclass(slots=True)
class PullReport:
    """What one pull did, by file name (names only, no content)."""

    pulled: list[str] = field(default_factory=list)
    already_local: list[str] = field(default_factory=list)  # identical copy found locally; only archived
    unsettled: list[str] = field(default_factory=list)  # still changing, or waiting for its ready marker
    changed_during_download: list[str] = field(default_factory=list)


class SftpDropPuller:
    """Pulls settled files of one remote directory into a local directory (see the module docstring)."""

    def __init__(self, settings: SftpPullSettings, *, sleep: Callable[[float], None] = time.sleep) -> None:
        """Pull with ``settings``; ``sleep`` waits between the two listings of the settle check."""
        self.settings = settings
        self._sleep = sleep
        self._all_names: set[str] = set()

    def pull(self, local_dir: Path) -> PullReport:
        """Pull every settled file into ``local_dir`` and archive or mark it on the server."""
        local_dir.mkdir(parents=True, exist_ok=True)
        report = PullReport()
        client = self._connect()
        try:
            sftp = client.open_sftp()
            sftp.get_channel().settimeout(self.settings.timeout)
            first = self._listing(sftp)
            if first:
                self._sleep(self.settings.settle_seconds)
            second = self._listing(sftp)
            for name in sorted(second):
                attrs = second[name]
                ready = not self.settings.ready_suffix or name + self.settings.ready_suffix in self._all_names
                if first.get(name) != attrs or not ready:
                    report.unsettled.append(name)
                    continue
                self._pull_one(sftp, name, attrs, local_dir, report)
            sftp.close()
        except (OSError, EOFError, paramiko.SSHException) as exc:
            raise RetryableError(f"sftp pull {self.settings.host}", type(exc).__name__) from None
        finally:
            client.close()
        return report

    # -- steps ----------------------------------------------------------------------------------------------

    def _listing(self, sftp: paramiko.SFTPClient) -> dict[str, tuple[int, int]]:
        """Candidate regular files -> (size, mtime); also remembers every name for the ready-marker check."""
        entries = sftp.listdir_attr(self.settings.remote_dir)
        self._all_names = {e.filename for e in entries}
        found = {}
        for e in entries:
            name = e.filename
            if (name.startswith(".") or name.lower().endswith(PARTIAL_SUFFIXES) or e.st_mode is None
                    or not stat.S_ISREG(e.st_mode)):
                continue
            if self.settings.ready_suffix and name.endswith(self.settings.ready_suffix):
                continue
            if fnmatch.fnmatchcase(name.lower(), self.settings.pattern.lower()):
                found[name] = (int(e.st_size or 0), int(e.st_mtime or 0))
        return found

    def _pull_one(self, sftp: paramiko.SFTPClient, name: str, attrs: tuple[int, int], local_dir: Path,
                  report: PullReport) -> None:
        remote = posixpath.join(self.settings.remote_dir, name)
        target = local_dir / name
        part = local_dir / f".{name}.part"
        digest = hashlib.sha256()
        with sftp.open(remote, "rb") as handle, open(part, "wb") as out:
            handle.prefetch(attrs[0])
            while chunk := handle.read(65536):
                digest.update(chunk)
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        after = sftp.stat(remote)
        if part.stat().st_size != attrs[0] or (int(after.st_size or 0), int(after.st_mtime or 0)) != attrs:
            part.unlink()
            report.changed_during_download.append(name)
            return
        if target.exists() and _sha256(target) == digest.hexdigest():
            part.unlink()
            report.already_local.append(name)
        elif target.exists():
            part.unlink()  # a different file of the same name is already in the drop: never overwrite it
            raise RetryableError(f"sftp pull {name}", "a different local file has this name; move it first")
        else:
            os.replace(part, target)
            _fsync_dir(local_dir)
            report.pulled.append(name)
        self._retire(sftp, name)

    def _retire(self, sftp: paramiko.SFTPClient, name: str) -> None:
        """Archive (move into archive_dir) or mark (rename to .processed) the pulled remote file."""
        remote = posixpath.join(self.settings.remote_dir, name)
        if self.settings.after == "mark":
            sftp.posix_rename(remote, remote + ".processed")
        else:
            archive = self.settings.archive_dir
            if not archive.startswith("/"):
                archive = posixpath.join(self.settings.remote_dir, archive)
            try:
                sftp.stat(archive)
            except FileNotFoundError:
                sftp.mkdir(archive)
            sftp.posix_rename(remote, posixpath.join(archive, name))
        if self.settings.ready_suffix:
            try:
                sftp.remove(remote + self.settings.ready_suffix)
            except FileNotFoundError:
                pass

    def _connect(self) -> paramiko.SSHClient:
        """An SSH connection with the host key pinned from known_hosts (never auto-added)."""
        s = self.settings
        client = connect_pinned(host=s.host, port=s.port, username=s.username, private_key=s.private_key,
                                known_hosts=s.known_hosts, passphrase=s.passphrase, connect_timeout=s.timeout,
                                where=f"sftp pull {s.username}@{s.host}:{s.port}", consequence="nothing read")
        return client


class _Source(Protocol):
    system: str

    def plan(self, cursor: str | None, max_records: int) -> list[Window]:
        """Windows past the cursor."""

    def read(self, window: Window) -> Iterator[object]:
        """Items of a window."""


class PulledDropSource:
    """A local file-drop source whose planning first pulls new files from an SFTP server."""

    def __init__(self, puller: SftpDropPuller, local_dir: Path, inner: _Source) -> None:
        """Pull into ``local_dir`` (the directory ``inner`` reads) before each plan."""
        self.puller = puller
        self.local_dir = local_dir
        self.inner = inner
        self.system = inner.system
        self.last_pull: PullReport | None = None

    def plan(self, cursor: str | None, max_records: int = 500) -> list[Window]:
        """Pull, then plan the local drop. A server that cannot be reached fails the plan (RetryableError), so the
        run is retried instead of silently carrying on without the day's files."""
        self.last_pull = self.puller.pull(self.local_dir)
        return self.inner.plan(cursor, max_records)

    def read(self, window: Window) -> Iterator[object]:
        """Read a window of the local drop."""
        return self.inner.read(window)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
