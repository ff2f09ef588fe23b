"""The RMS SQL source on SQLite and on a real PostgreSQL server: mapping, bad rows, incremental cursor, crashes."""
from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from tests.support.postgres import available, running_postgres

from adapters.sources.rms_sql import RmsSqlSource
from exchange.state.db import open_engine
from exchange.state.windows import WindowCounts, WindowStore
from transforms.model import ConfigError, CrisisContact, Rejected

TODAY = date(2026, 11, 24)
T0 = datetime(2026, 11, 1, 8, 0, tzinfo=timezone(timedelta(hours=-5)))
CANARY = "ZQXCANARY"

# A county's view, with its own column names (as RMS vendors name them).
COLUMNS = {
    "incident_number": "CALL_NO", "first_name": "FNAME", "last_name": "LNAME", "dob": "DOB", "sex": "SEX",
    "contact_at": "CALL_TIME", "agency": "AGENCY", "initiated_by": "SOURCE", "reason": "NATURE",
    "disposition": "DISPO", "co_responder": "CIT_CLINICIAN", "updated_at": "LAST_MODIFIED",
}
CODES = {"disposition": {"TRANS-ER": "EMERGENCY_ROOM"}}


def _make_table(engine: sa.Engine, name: str = "vw_mh_calls") -> sa.Table:
    stamp = sa.DateTime(timezone=True).with_variant(sa.String(40), "sqlite")
    meta = sa.MetaData()
    view = sa.Table(
        name, meta,
        sa.Column("CALL_NO", sa.String(40), primary_key=True),
        sa.Column("FNAME", sa.Text()), sa.Column("LNAME", sa.Text()), sa.Column("DOB", sa.String(20)),
        sa.Column("SEX", sa.String(10)), sa.Column("CALL_TIME", stamp), sa.Column("AGENCY", sa.String(80)),
        sa.Column("SOURCE", sa.String(20)), sa.Column("NATURE", sa.Text()), sa.Column("DISPO", sa.String(20)),
        sa.Column("CIT_CLINICIAN", sa.String(3)), sa.Column("LAST_MODIFIED", stamp),
    )
    meta.drop_all(engine)
    meta.create_all(engine)
    return view


def _row(engine: sa.Engine, n: int, updated: datetime, **over: object) -> dict:
    def stamp(value: datetime) -> object:
        return value.isoformat() if engine.dialect.name == "sqlite" else value

    row = {"CALL_NO": f"C{n:05d}", "FNAME": "Ana", "LNAME": f"Doe{chr(65 + n % 26)}", "DOB": "1990-02-03",
           "SEX": "F", "CALL_TIME": stamp(T0 + timedelta(minutes=n)), "AGENCY": "Example PD", "SOURCE": "911",
           "NATURE": "welfare check", "DISPO": "TRANS-ER", "CIT_CLINICIAN": "Y", "LAST_MODIFIED": stamp(updated)}
    row.update(over)
    return row


def _insert(engine: sa.Engine, view: sa.Table, rows: list[dict]) -> None:
    with engine.begin() as conn:
        conn.execute(sa.insert(view), rows)


def _source(engine: sa.Engine, **kw: object) -> RmsSqlSource:
    return RmsSqlSource(engine, table_name=kw.pop("table_name", "vw_mh_calls"), record_kind="crisis_contact",
                        today=TODAY, columns=COLUMNS, codes=CODES, system="county-rms", **kw)


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    """One real PostgreSQL 15 server for this module (Debian's binaries, started here on 127.0.0.1)."""
    if not available():
        pytest.skip("PostgreSQL 15 server binaries are not installed")
    with running_postgres() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def rms_engine(request, tmp_path) -> Iterator[sa.Engine]:
    """The RMS database: a SQLite file, or the real PostgreSQL server."""
    if request.param == "sqlite":
        engine = sa.create_engine(f"sqlite:///{tmp_path / 'rms.db'}")
    else:
        engine = sa.create_engine(request.getfixturevalue("postgres_url"))
    yield engine
    engine.dispose()


def _run(source: RmsSqlSource, store: WindowStore, batch: int, *, crash_after: int | None = None) -> list:
    """What the pipeline does: plan past the cursor, read each pending window, commit it (or crash)."""
    store.add(source.plan(store.cursor(), batch))
    items = []
    for done, key in enumerate(store.pending()):
        if crash_after is not None and done == crash_after:
            break
        got = list(source.read(store.get(key)))
        items.extend(got)
        store.complete(key, WindowCounts(records=len(got)), datetime.now(timezone.utc))
    return items


def test_rows_map_to_crisis_contacts_through_the_county_column_names(rms_engine) -> None:
    view = _make_table(rms_engine)
    _insert(rms_engine, view, [_row(rms_engine, n, T0 + timedelta(hours=n)) for n in range(3)])
    source = _source(rms_engine)
    windows = source.plan(None, 500)
    assert len(windows) == 1
    records = list(source.read(windows[0]))
    assert [r.incident_number for r in records] == ["C00000", "C00001", "C00002"]
    first = records[0]
    assert isinstance(first, CrisisContact)
    assert first.person.given_name == "ANA" and first.person.birth_date == date(1990, 2, 3)
    assert first.initiated_by == "911_CALL" and first.disposition == "EMERGENCY_ROOM" and first.co_responder
    assert first.contact_at == T0 and first.reason == "welfare check"
    assert str(first.ref) == "county-rms:vw_mh_calls#CALL_NO=C00000"


def test_bad_rows_are_rejected_by_field_and_the_rest_of_the_batch_goes_on(rms_engine) -> None:
    view = _make_table(rms_engine)
    base = T0 + timedelta(days=1)
    _insert(rms_engine, view, [
        _row(rms_engine, 0, base),
        _row(rms_engine, 1, base, DOB=f"03/02/{CANARY}"),                 # bad date
        _row(rms_engine, 2, base, DISPO=CANARY),                           # unknown code
        _row(rms_engine, 3, base, NATURE=CANARY * 50),                     # huge field
        _row(rms_engine, 4, base, LNAME=f"Do\x0be{CANARY}"),               # XML-illegal control character
        _row(rms_engine, 5, base, FNAME=None),                             # missing required value
        _row(rms_engine, 6, base),
    ])
    source = _source(rms_engine)
    items = [i for w in source.plan(None, 500) for i in source.read(w)]
    assert len(items) == 7
    rejected = {i.error.record.rsplit("=", 1)[1]: i.error for i in items if isinstance(i, Rejected)}
    assert {k: e.field for k, e in rejected.items()} == {
        "C00001": "dob", "C00002": "disposition", "C00003": "reason", "C00004": "last_name", "C00005": "first_name",
    }
    assert all(CANARY not in str(e) for e in rejected.values())
    assert sum(isinstance(i, CrisisContact) for i in items) == 2


def test_second_run_reads_only_new_and_updated_rows(rms_engine) -> None:
    view = _make_table(rms_engine)
    _insert(rms_engine, view, [_row(rms_engine, n, T0 + timedelta(minutes=n)) for n in range(10)])
    store = WindowStore(open_engine("sqlite://"), "rms-test")
    source = _source(rms_engine)
    first = _run(source, store, 4)
    assert [r.incident_number for r in first] == [f"C{n:05d}" for n in range(10)]
    assert _run(source, store, 4) == []  # nothing new: nothing read

    later = T0 + timedelta(days=2)
    _insert(rms_engine, view, [_row(rms_engine, n, later) for n in range(10, 13)])
    stamp = later.isoformat() if rms_engine.dialect.name == "sqlite" else later
    with rms_engine.begin() as conn:  # a correction to an old row moves it past the watermark
        conn.execute(sa.update(view).where(view.c.CALL_NO == "C00002").values(DISPO="ARREST", LAST_MODIFIED=stamp))
    second = _run(source, store, 4)
    assert [r.incident_number for r in second] == ["C00002", "C00010", "C00011", "C00012"]
    assert second[0].disposition == "ARREST"


def test_crash_mid_batch_then_rerun_reads_every_row_exactly_once(rms_engine) -> None:
    view = _make_table(rms_engine)
    same = T0 + timedelta(days=3)  # a bulk update: many rows share one timestamp, split by the key tie-break
    _insert(rms_engine, view, [_row(rms_engine, n, same) for n in range(11)])
    store = WindowStore(open_engine("sqlite://"), "rms-crash")
    source = _source(rms_engine)
    before = _run(source, store, 3, crash_after=2)  # two windows committed, then the process dies
    assert len(before) == 6
    after = _run(_source(rms_engine), store, 3)  # a fresh process
    numbers = [r.incident_number for r in before + after]
    assert sorted(numbers) == [f"C{n:05d}" for n in range(11)]
    assert len(numbers) == len(set(numbers))


def test_a_missing_column_rejects_every_row_naming_it(rms_engine) -> None:
    view = _make_table(rms_engine)
    _insert(rms_engine, view, [_row(rms_engine, n, T0) for n in range(2)])
    source = RmsSqlSource(
        rms_engine, table_name="vw_mh_calls", record_kind="crisis_contact", today=TODAY,
        columns={**COLUMNS, "reason": "CALL_NATURE"}, codes=CODES)
    items = [i for w in source.plan(None, 10) for i in source.read(w)]
    assert [(i.error.field, "CALL_NATURE" in i.error.reason) for i in items] == [("reason", True)] * 2


def test_config_mistakes_are_config_errors(tmp_path) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'x.db'}")
    with pytest.raises(ConfigError, match="columns.nickname"):
        RmsSqlSource(engine, table_name="t", record_kind="crisis_contact", today=TODAY, columns={"nickname": "N"})
    with pytest.raises(ConfigError, match="codes.disposition.X"):
        RmsSqlSource(engine, table_name="t", record_kind="crisis_contact", today=TODAY,
                     codes={"disposition": {"X": "JAIL"}})
    with pytest.raises(ConfigError, match="no such table"):
        RmsSqlSource(engine, table_name="nope", record_kind="arrest", today=TODAY).plan(None, 10)


def test_undecodable_bytes_in_sqlite_text_reject_only_that_row(tmp_path) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'rms.db'}")
    view = _make_table(engine)
    _insert(engine, view, [_row(engine, 0, T0), _row(engine, 1, T0)])
    with engine.begin() as conn:  # Latin-1 bytes written by a legacy client into a TEXT column
        conn.exec_driver_sql("UPDATE vw_mh_calls SET NATURE = CAST(X'77656C66617265E9' AS TEXT) WHERE CALL_NO='C00001'")
    source = _source(engine)
    items = [i for w in source.plan(None, 10) for i in source.read(w)]
    assert isinstance(items[0], CrisisContact)
    assert isinstance(items[1], Rejected) and items[1].error.field == "reason"


def test_a_large_first_sync_is_planned_over_several_runs(tmp_path) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'rms.db'}")
    view = _make_table(engine)
    _insert(engine, view, [_row(engine, n, T0 + timedelta(seconds=n)) for n in range(10)])
    store = WindowStore(open_engine("sqlite://"), "rms-cap")
    source = _source(engine, max_windows=2)
    seen = []
    for _ in range(3):
        seen += [r.incident_number for r in _run(source, store, 2)]
    assert seen == [f"C{n:05d}" for n in range(10)]
