"""Merges and splits re-issue what was sent under the old shared id: once, through the whole pipeline.

A real exchange in a fresh home (dev PKI, SQLite state, the local outbox transport as the receiver) runs
over a small jail drop; a clerk then merges or splits persons, and the next runs must deliver each affected
message again under the new id exactly once, write one ledger entry per re-issue, never deliver a message
that was still waiting under the old id, and send nothing on a further run.
"""
from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest
from sqlalchemy import select

from exchange.config import load_config, resolve_url
from exchange.state import person_curation as curation
from exchange.state.db import crosswalk, ledger, open_engine, outbox, outbox_payloads
from tests.conftest import mint_demo_home
from tests.exchange.lawful_helpers import exchange_yaml, run, small_drop

NOW = datetime(2026, 11, 25, tzinfo=timezone.utc)
RECIPIENTS = {"county-bh": "behavioral-health-provider", "state-bh": "state-agency"}


@pytest.fixture()
def exchange(tmp_path):
    """(config, home) of a two-recipient booking exchange over the first 12 demo bookings."""
    home = mint_demo_home(tmp_path / "home")
    config = exchange_yaml(home, small_drop(tmp_path / "drop", rows=12), RECIPIENTS)
    return config, home


@pytest.fixture(params=["sqlite", "postgresql"])
def any_state(request, exchange):
    """The same exchange with its state on SQLite (the default) or on a real PostgreSQL."""
    if request.param == "sqlite":
        yield exchange
        return
    import yaml

    from exchange.state.db import metadata

    config, home = exchange
    url = request.getfixturevalue("postgres_state_url")
    raw = yaml.safe_load(config.read_text())
    raw["state_url"] = url
    config.write_text(yaml.safe_dump(raw))
    yield exchange
    engine = open_engine(url)
    metadata.drop_all(engine)
    engine.dispose()


def _engine(config: Path, home: Path):
    return open_engine(resolve_url(home.resolve(), load_config(config).state_url))


def _files(home: Path, recipient: str) -> set[str]:
    return {p.stem for p in (home / "var/outbox" / recipient).glob("*.xml")}


def _messages(engine, record_key: str) -> list:
    with engine.connect() as conn:
        joined = outbox.outerjoin(outbox_payloads, outbox_payloads.c.message_id == outbox.c.message_id)
        return conn.execute(select(outbox, outbox_payloads.c.payload).select_from(joined)
                            .where(outbox.c.record_key == record_key).order_by(outbox.c.created_at)).all()


def _two_people(engine) -> tuple[tuple[str, str], tuple[str, str]]:
    """Two records (record key, shared id) of different people, each the only record of its person."""
    with engine.connect() as conn:
        rows = conn.execute(select(crosswalk.c.system, crosswalk.c.record_id, crosswalk.c.shared_id)
                            .order_by(crosswalk.c.record_id)).all()
    alone = [r for r in rows if sum(o.shared_id == r.shared_id for o in rows) == 1]
    (a, b) = alone[:2]
    return (f"{a.system}:{a.record_id}", a.shared_id), (f"{b.system}:{b.record_id}", b.shared_id)


def _decrypted(home: Path, recipient: str, message_id: str) -> bytes:
    from exchange.security import PrivateKey, decrypt

    key = PrivateKey.load(home / f"certs/dev/recipients/{recipient}.key")
    return decrypt((home / "var/outbox" / recipient / f"{message_id}.xml").read_bytes(), key)


def _ledger(engine, message_ids) -> list:
    with engine.connect() as conn:
        return conn.execute(select(ledger).where(ledger.c.message_id.in_(list(message_ids)))).all()


def test_merge_after_delivery_reissues_each_message_once_under_the_surviving_id(any_state):
    config, home = any_state
    first = run(config, home)
    assert first.delivered == first.enqueued > 0
    engine = _engine(config, home)
    (kept_record, keep), (moved_record, retire) = _two_people(engine)
    before = {r: _files(home, r) for r in RECIPIENTS}
    old = _messages(engine, moved_record)
    assert {m.recipient for m in old} == set(RECIPIENTS) and {m.state for m in old} == {"delivered"}

    moved = curation.merge(engine, keep, retire, "clerk", "same person, checked", NOW)
    assert [f"{m.system}:{m.record_id}" for m in moved] == [moved_record]

    second = run(config, home)
    assert second.enqueued == second.delivered == len(RECIPIENTS)
    reissued = [m for m in _messages(engine, moved_record) if m.shared_id == keep]
    assert len(reissued) == len(RECIPIENTS) and {m.state for m in reissued} == {"delivered"}
    for recipient in RECIPIENTS:
        [new] = [m.message_id for m in reissued if m.recipient == recipient]
        assert _files(home, recipient) == before[recipient] | {new}  # exactly one more message, nothing else
    plain = _decrypted(home, "county-bh", next(m.message_id for m in reissued if m.recipient == "county-bh"))
    assert keep.encode() in plain and retire.encode() not in plain
    entries = _ledger(engine, [m.message_id for m in reissued])
    assert sorted(e.recipient for e in entries) == sorted(RECIPIENTS) and {e.shared_id for e in entries} == {keep}
    assert all(m.shared_id == keep for m in _messages(engine, kept_record))  # the kept person is untouched

    third = run(config, home)
    assert third.enqueued == third.delivered == 0
    assert {r: _files(home, r) for r in RECIPIENTS} == {r: before[r] | {m.message_id for m in reissued
                                                                       if m.recipient == r} for r in RECIPIENTS}


def test_split_after_merge_reissues_again_under_the_new_id(exchange):
    config, home = exchange
    run(config, home)
    engine = _engine(config, home)
    (_, keep), (moved_record, retire) = _two_people(engine)
    curation.merge(engine, keep, retire, "clerk", "looked alike", NOW)
    run(config, home)
    before = {r: _files(home, r) for r in RECIPIENTS}
    with engine.connect() as conn:
        ledger_before = len(conn.execute(select(ledger.c.seq)).all())

    system, record_id = moved_record.split(":", 1)
    new_id, moved = curation.split(engine, keep, [(system, record_id)], "clerk", "two people after all", NOW)
    assert [m.new for m in moved] == [new_id]
    second = run(config, home)
    assert second.enqueued == second.delivered == len(RECIPIENTS)
    reissued = [m for m in _messages(engine, moved_record) if m.shared_id == new_id]
    assert {m.recipient for m in reissued} == set(RECIPIENTS) and {m.state for m in reissued} == {"delivered"}
    for recipient in RECIPIENTS:
        assert _files(home, recipient) - before[recipient] == {m.message_id for m in reissued
                                                               if m.recipient == recipient}
    plain = _decrypted(home, "county-bh", next(m.message_id for m in reissued if m.recipient == "county-bh"))
    assert new_id.encode() in plain and keep.encode() not in plain
    with engine.connect() as conn:
        assert len(conn.execute(select(ledger.c.seq)).all()) == ledger_before + len(RECIPIENTS)
    assert {e.shared_id for e in _ledger(engine, [m.message_id for m in reissued])} == {new_id}
    # the record went retire -> keep -> new: three versions, one message each per recipient
    assert sorted(m.shared_id for m in _messages(engine, moved_record) if m.recipient == "county-bh") == sorted(
        [retire, keep, new_id])

    again = run(config, home)
    assert again.enqueued == again.delivered == 0


def test_message_still_queued_under_the_old_id_is_superseded_not_sent(any_state):
    from exchange import pipeline
    from exchange.runtime import open_exchange

    config, home = any_state
    ex = open_exchange(config, home)
    try:
        for key in pipeline.plan(ex):  # built and queued, not yet delivered
            pipeline.process_window(ex, key)
    finally:
        ex.close()
    engine = _engine(config, home)
    (_, keep), (moved_record, retire) = _two_people(engine)
    stale = _messages(engine, moved_record)
    assert {m.state for m in stale} == {"queued"}

    curation.merge(engine, keep, retire, "clerk", "same person", NOW)
    assert {(m.state, m.payload) for m in _messages(engine, moved_record)} == {("superseded", None)}

    summary = run(config, home)
    assert summary.failed == summary.dead == 0
    now = _messages(engine, moved_record)
    assert {(m.shared_id, m.state) for m in now} == {(retire, "superseded"), (keep, "delivered")}
    for recipient in RECIPIENTS:
        received = _files(home, recipient)
        assert not received & {m.message_id for m in stale}  # the stale ones never reach the receiver
        assert {m.message_id for m in now if m.recipient == recipient and m.shared_id == keep} <= received
    assert not _ledger(engine, [m.message_id for m in stale])
    assert run(config, home).delivered == 0


def test_ids_of_records_never_moved_are_those_of_earlier_versions():
    """Existing outboxes are not sent again: without a move the id is the four-part id it always was."""
    import uuid

    from exchange.state.outbox import _NAMESPACE, message_id

    legacy = str(uuid.uuid5(_NAMESPACE, "ex\x1frecipient\x1fjail:BK-1\x1fdigest"))
    assert message_id("ex", "recipient", "jail:BK-1", "digest") == legacy
    assert message_id("ex", "recipient", "jail:BK-1", "digest", "") == legacy
    moved = message_id("ex", "recipient", "jail:BK-1", "digest", "NXP-AAAAAAAAAAAA#1")
    assert moved != legacy and moved != message_id("ex", "recipient", "jail:BK-1", "digest", "NXP-AAAAAAAAAAAA#2")


def test_merge_command_says_which_messages_the_next_run_reissues(exchange):
    from typer.testing import CliRunner

    from exchange.cli import app

    config, home = exchange
    run(config, home)
    engine = _engine(config, home)
    (_, keep), (moved_record, retire) = _two_people(engine)
    result = CliRunner().invoke(app, ["identity", "merge", keep, retire, "--by", "clerk", "--reason", "checked",
                                      "--config", str(config), "--home", str(home)])
    assert result.exit_code == 0, result.output
    said = " ".join(result.output.split())
    assert f"{moved_record} {retire} -> {keep}" in said
    for message in _messages(engine, moved_record):
        assert (f"re-issue message {message.message_id} to {message.recipient} (delivered); its window is "
                f"re-opened: the next run of demo-booking re-issues it under {keep}") in said
    assert run(config, home).delivered == len(RECIPIENTS)


def _add_unit(drop: Path, scratch: Path, first: int, rows: int) -> None:
    """Demo bookings ``first+1 .. first+rows`` as a second file pair in the drop (a new unit to plan)."""
    import csv

    whole = small_drop(scratch, rows=first + rows)
    for name in ("bookings.csv", "booking_charges.csv"):
        with open(whole / name, newline="") as handle:
            reader = csv.DictReader(handle)
            fields, kept = reader.fieldnames, list(reader)
        kept = kept[first:] if name == "bookings.csv" else [
            r for r in kept if r["booking_number"] in _numbers(drop / "later_bookings.csv")]
        with open(drop / f"later_{name}", "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=fields)
            writer.writeheader()
            writer.writerows(kept)


def _numbers(path: Path) -> set[str]:
    import csv

    with open(path, newline="") as handle:
        return {r["booking_number"] for r in csv.DictReader(handle)}


def test_merge_landing_between_linking_and_queueing_is_caught_and_reissued(tmp_path, monkeypatch):
    """A clerk merges a person at the instant the pipeline has linked a new record but not queued it yet."""
    from exchange import pipeline
    from exchange.runtime import open_exchange

    home = mint_demo_home(tmp_path / "home")
    drop = small_drop(tmp_path / "drop", rows=10)
    config = exchange_yaml(home, drop, RECIPIENTS)
    run(config, home)
    engine = _engine(config, home)
    (_, keep), _ = _two_people(engine)
    _add_unit(drop, tmp_path / "scratch", first=10, rows=1)
    [number] = _numbers(drop / "later_bookings.csv")

    ex = open_exchange(config, home)
    real = ex.persons.link_many
    found: list[str] = []  # the new record's shared id, when the new person turns out to be a known one

    def link_and_note(records, now, conn=None):
        links = real(records, now, conn=conn)
        found.extend(link.shared_id for (_system, record_id, _person), link in zip(records, links)
                     if record_id == number and link.shared_id != keep)
        return links

    class CommitThenClerkMerges(pipeline._Commit):
        """The pipeline commits the links of a chunk while it builds its messages: the clerk acts right after."""

        def _run(self) -> None:
            super()._run()
            while found:
                curation.merge(engine, keep, found.pop(), "clerk", "same person", NOW)

    ex.persons.link_many = link_and_note
    monkeypatch.setattr(pipeline, "_Commit", CommitThenClerkMerges)
    try:
        summary = pipeline.run(ex)
    finally:
        ex.close()
    record = f"jail:{number}"
    first = _messages(engine, record)
    assert {m.state for m in first} == {"superseded"} and len(first) == len(RECIPIENTS)
    assert summary.delivered == 0  # nothing went out under the id the record lost meanwhile

    second = run(config, home)  # the window's second reading
    assert second.enqueued == second.delivered == len(RECIPIENTS)
    reissued = [m for m in _messages(engine, record) if m.state == "delivered"]
    assert {m.shared_id for m in reissued} == {keep} and {m.recipient for m in reissued} == set(RECIPIENTS)
    for recipient in RECIPIENTS:
        assert not _files(home, recipient) & {m.message_id for m in first}
    assert run(config, home).delivered == 0
