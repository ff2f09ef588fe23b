"""Pulling a jail drop from a real OpenSSH sftp server (tests/support/sshd.py) into the local jail CSV source."""
from __future__ import annotations

import os
from datetime import date
from pathlib import Path

import pytest

from adapters.sources.jail_csv import JailCsvSource
from adapters.sources.sftp_drop import PulledDropSource, SftpDropPuller, SftpPullSettings
from tests.support.sshd import SshServer
from transforms.model import JailBooking, SecurityError

HEADER = ("booking_number,first_name,last_name,dob,sex,jail_entry_date,facility,booking_agency,arresting_agency,"
          "updated_date\n")


def _bookings(*numbers: str) -> bytes:
    rows = "".join(f"{n},Ana,Doe,1990-02-03,F,2026-11-01T10:00:00-05:00,Main Jail,SO,PD,2026-11-01T10:00:00-05:00\n"
                   for n in numbers)
    return (HEADER + rows).encode()


def _settings(server: SshServer, **over: object) -> SftpPullSettings:
    values = dict(host=server.host, port=server.port, username=server.user, private_key=server.client_key,
                  known_hosts=server.known_hosts, remote_dir=str(server.root / "jms"), settle_seconds=0.0)
    values.update(over)
    return SftpPullSettings(**values)  # type: ignore[arg-type]


def _old(path: Path) -> None:
    """Back-date a remote file so its listing is stable."""
    os.utime(path, (1_700_000_000, 1_700_000_000))


def test_pull_then_archive_and_the_local_source_reads_only_complete_files(sshd_factory, tmp_path: Path) -> None:
    server = sshd_factory()
    remote = server.root / "jms"
    remote.mkdir()
    (remote / "2026-11-01_bookings.csv").write_bytes(_bookings("B1", "B2"))
    (remote / ".2026-11-02_bookings.csv").write_bytes(_bookings("B3"))   # dot-file: the JMS is writing it
    (remote / "2026-11-02_bookings.csv.part").write_bytes(b"booking_number,fir")
    for path in remote.iterdir():
        _old(path)
    local = tmp_path / "drop"
    source = PulledDropSource(SftpDropPuller(_settings(server)), local,
                              JailCsvSource(local, today=date(2026, 11, 24), require_charges=False))
    windows = source.plan(None, 500)
    assert source.last_pull is not None and source.last_pull.pulled == ["2026-11-01_bookings.csv"]
    records = [r for w in windows for r in source.read(w)]
    assert [r.booking_number for r in records if isinstance(r, JailBooking)] == ["B1", "B2"]
    assert sorted(p.name for p in local.iterdir()) == ["2026-11-01_bookings.csv"]
    assert (remote / "archive" / "2026-11-01_bookings.csv").read_bytes() == _bookings("B1", "B2")
    assert not (remote / "2026-11-01_bookings.csv").exists()

    # the next day's file arrives; the second run pulls and reads only it
    (remote / "2026-11-02_bookings.csv").write_bytes(_bookings("B3"))
    _old(remote / "2026-11-02_bookings.csv")
    again = source.plan(windows[-1].cursor_after, 500)
    assert source.last_pull.pulled == ["2026-11-02_bookings.csv"]
    assert [r.booking_number for w in again for r in source.read(w)] == ["B3"]


def test_a_file_still_growing_is_left_for_the_next_pull(sshd_factory, tmp_path: Path) -> None:
    server = sshd_factory()
    remote = server.root / "jms"
    remote.mkdir()
    growing = remote / "bookings.csv"
    growing.write_bytes(_bookings("B1"))

    def writer_appends(_seconds: float) -> None:  # between the two listings, the JMS writes more rows
        with growing.open("ab") as handle:
            handle.write(b"B2,Bo,Roe,1980-01-01,M,2026-11-01T11:00:00-05:00,Main Jail,SO,PD,2026-11-01T11:00:00-05:00\n")

    report = SftpDropPuller(_settings(server), sleep=writer_appends).pull(tmp_path / "drop")
    assert report.unsettled == ["bookings.csv"] and report.pulled == []
    assert list((tmp_path / "drop").iterdir()) == []
    assert growing.exists()


def test_ready_marker_and_mark_mode(sshd_factory, tmp_path: Path) -> None:
    server = sshd_factory()
    remote = server.root / "jms"
    remote.mkdir()
    (remote / "a_bookings.csv").write_bytes(_bookings("A1"))
    (remote / "b_bookings.csv").write_bytes(_bookings("B1"))
    (remote / "a_bookings.csv.ok").write_bytes(b"")
    puller = SftpDropPuller(_settings(server, ready_suffix=".ok", after="mark"))
    report = puller.pull(tmp_path / "drop")
    assert (report.pulled, report.unsettled) == (["a_bookings.csv"], ["b_bookings.csv"])
    assert sorted(p.name for p in remote.iterdir()) == ["a_bookings.csv.processed", "b_bookings.csv"]


def test_crash_before_archiving_pulls_nothing_twice(sshd_factory, tmp_path: Path) -> None:
    server = sshd_factory()
    remote = server.root / "jms"
    remote.mkdir()
    (remote / "bookings.csv").write_bytes(_bookings("B1"))
    local = tmp_path / "drop"
    local.mkdir()
    (local / "bookings.csv").write_bytes(_bookings("B1"))  # pulled before the crash, never archived remotely
    report = SftpDropPuller(_settings(server)).pull(local)
    assert (report.pulled, report.already_local) == ([], ["bookings.csv"])
    assert (remote / "archive" / "bookings.csv").exists()


def test_an_unpinned_or_changed_host_key_is_refused_before_reading(sshd_factory, tmp_path: Path) -> None:
    server = sshd_factory()
    (server.root / "jms").mkdir()
    server.rotate_host_key()
    with pytest.raises(SecurityError, match="CHANGED"):
        SftpDropPuller(_settings(server)).pull(tmp_path / "drop")
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    with pytest.raises(SecurityError, match="not pinned"):
        SftpDropPuller(_settings(server, known_hosts=empty)).pull(tmp_path / "drop")


def test_an_exchange_config_with_a_pull_block_wires_the_pull(sshd_factory, tmp_path: Path) -> None:
    from datetime import datetime, timezone

    from pydantic import TypeAdapter

    from exchange.config.sources import SourceConfig
    from exchange.wiring import build_source

    server = sshd_factory()
    (server.root / "jms").mkdir()
    (server.root / "jms" / "bookings.csv").write_bytes(_bookings("W1"))
    _old(server.root / "jms" / "bookings.csv")
    config = TypeAdapter(SourceConfig).validate_python({
        "kind": "jail_csv", "path": "drop", "pull": {
            "host": server.host, "port": server.port, "username": server.user, "private_key": str(server.client_key),
            "known_hosts": str(server.known_hosts), "remote_dir": str(server.root / "jms"), "settle_seconds": 0}})
    source = build_source(config, home=tmp_path, now=datetime(2026, 11, 24, tzinfo=timezone.utc),
                          config_path=tmp_path / "x.yaml")
    windows = source.plan(None, 100)
    assert (tmp_path / "drop" / "bookings.csv").exists() and len(windows) == 1
