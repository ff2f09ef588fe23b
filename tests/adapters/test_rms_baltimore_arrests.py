"""The RMS SQL source on Baltimore's real "BPD Arrests" extract, loaded into SQLite as a county view would be.

The shared file is read in place and its rows inserted into a temporary SQLite table with the open-data
column names; the adapter maps them through ``columns`` (as a county configures it). The extract has no
names (de-identified), so the source runs with ``require_names=False``.
"""
from __future__ import annotations

import json
from collections import Counter
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from adapters.sources.rms_sql import RmsSqlSource
from transforms.model import Arrest, Rejected

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "baltimore-bpd-arrests"
BALTIMORE = ZoneInfo("America/New_York")
COLUMNS = {"arrest_number": "Arrest", "arrested_at": "ArrestDate", "updated_at": "ArrestDate", "sex": "Sex",
           "race": "Race", "statute": "Charge", "charge_description": "ChargeDescription",
           "location": "ArrestLocation"}


@pytest.mark.shared
def test_baltimore_arrests_through_a_county_column_mapping(tmp_path: Path) -> None:
    path = DATA / "BPD_Arrests_4_28-29.json"
    if not path.exists():
        pytest.skip("../shared/data/baltimore-bpd-arrests is absent")
    export = json.loads(path.read_text())
    names = [c["name"] for c in export["meta"]["view"]["columns"]]
    keep = ["sid", "Arrest", "Sex", "Race", "ArrestDate", "ArrestLocation", "Charge", "ChargeDescription"]
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'bpd.db'}")
    with engine.begin() as conn:
        conn.exec_driver_sql('CREATE TABLE bpd_arrests (sid INTEGER PRIMARY KEY, "Arrest" TEXT, "Sex" TEXT, '
                             '"Race" TEXT, "ArrestDate" TEXT, "ArrestLocation" TEXT, "Charge" TEXT, '
                             '"ChargeDescription" TEXT)')
        conn.exec_driver_sql("INSERT INTO bpd_arrests VALUES (?,?,?,?,?,?,?,?)",
                             [tuple(row[names.index(k)] for k in keep) for row in export["data"]])
    source = RmsSqlSource(engine, table_name="bpd_arrests", record_kind="arrest", today=date(2026, 11, 24),
                          system="bpd", columns=COLUMNS, key_column="sid", default_tz=BALTIMORE,
                          require_names=False)
    items = [i for w in source.plan(None, 50) for i in source.read(w)]
    assert len(items) == 195
    arrests = [i for i in items if isinstance(i, Arrest)]
    rejected = [i for i in items if isinstance(i, Rejected)]
    # README: the arrest number is empty in 26 of 195 rows
    assert (len(arrests), len(rejected)) == (169, 26)
    assert {r.error.field for r in rejected} == {"arrest_number"}
    first = next(a for a in arrests if a.arrest_number == "15067191")
    assert first.arrested_at == datetime(2015, 4, 29, tzinfo=BALTIMORE)
    assert first.charges[0].statute == "1 1415" and first.location_text == "200 E PRATT ST"
    assert (first.person.sex, first.person.race, first.person.surname) == ("M", "B", "")
    every_sex = Counter(row[names.index("Sex")] for row in export["data"])
    assert every_sex == {"M": 151, "F": 44}  # the README's counts, over all rows
    assert sum(not a.charges for a in arrests) == sum(
        1 for row in export["data"] if row[names.index("Arrest")] and not row[names.index("Charge")])
