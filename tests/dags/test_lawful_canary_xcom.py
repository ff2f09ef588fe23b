"""Canary run under Airflow: every field of every booking carries a unique value; after one ``dag.test()`` run of
the exchange DAG, no canary appears in any XCom value Airflow stored, in its task logs, or anywhere in its
metadata database, while what each recipient's profile allows does reach that recipient (so the check can see a
value when one leaks). One booking is quarantined with a canary in the very field that is wrong."""
from __future__ import annotations

import csv
import json
import logging
import os
from pathlib import Path

import pytest

from dag_helpers import load_dag, metadata_text, run_state, task_log_text, utc
from tests.exchange.lawful_helpers import received
from tests.exchange.test_lawful_canary import ALLOWED, ROWS, write_drop

pytestmark = pytest.mark.airflow

BAD_DOB = "QZBADDOB8X"  # the quarantined booking's date of birth: not a date, and a canary of its own


def seed_drop(directory: Path) -> list[dict[str, str]]:
    """The lawful canary drop, its last booking made bad through ``dob`` (a canary) instead of ``sex``."""
    seeded = write_drop(directory)
    path = directory / "bookings.csv"
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        fields, rows = reader.fieldnames, list(reader)
    rows[ROWS].update(sex="F", dob=BAD_DOB)
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    seeded[ROWS]["dob"] = BAD_DOB
    return seeded


def xcom_values(dag_id: str, run_id: str) -> list[tuple[str, str]]:
    """(task id, value as stored) of every XCom of one run, read from Airflow's metadata DB with SQLAlchemy."""
    from airflow import settings
    from sqlalchemy import MetaData, Table, select

    xcom = Table("xcom", MetaData(), autoload_with=settings.engine)
    with settings.engine.connect() as conn:
        rows = conn.execute(select(xcom.c.task_id, xcom.c.value)
                            .where(xcom.c.dag_id == dag_id, xcom.c.run_id == run_id)).all()
    return [(task_id, value if isinstance(value, str) else json.dumps(value)) for task_id, value in rows]


def test_no_canary_reaches_xcom_task_logs_or_the_metadata_db(
        airflow_db, write_exchange, exchange_home, caplog, capsys):
    caplog.set_level(logging.DEBUG)
    seeded = seed_drop(exchange_home / "drop")

    def edit(raw: dict) -> None:
        raw["source"]["path"] = str(exchange_home / "drop")
        raw["recipients"] = [r for r in raw["recipients"] if r["id"] in ALLOWED]

    write_exchange("lawful-canary", edit)
    run = load_dag("lawful-canary").test(logical_date=utc(2026, 4, 1))
    assert run_state(run) == "success"

    # the run did what it must: every good booking to both recipients, the bad one quarantined through dob
    xcoms = xcom_values("lawful-canary", run.run_id)
    counts = [json.loads(v) for task, v in xcoms if task in ("process", "deliver")]
    assert sum(c.get("records", 0) for c in counts) == ROWS + 1
    assert sum(c.get("quarantined", 0) for c in counts) == 1
    assert sum(c.get("delivered", 0) for c in counts) == 2 * ROWS
    from exchange.state.db import open_engine
    from exchange.state.quarantine import Quarantine

    (entry,) = Quarantine(open_engine(f"sqlite:///{exchange_home}/var/state.db"), "lawful-canary").entries()
    assert entry.field == "dob" and BAD_DOB not in f"{entry.record} {entry.reason}"

    # allowed values do leave, to the recipient allowed them, and only there
    for recipient, allowed in ALLOWED.items():
        text = b"\n".join(received(exchange_home, recipient)).decode().upper()
        for c in seeded[:ROWS]:
            for field, value in c.items():
                if field in allowed and field != "dob":  # a date of birth may be reformatted or generalized
                    assert value.upper() in text, f"{recipient} did not get its allowed {field}"
                elif field not in allowed:
                    assert value.upper() not in text, f"{recipient} received {field}"
        assert seeded[ROWS]["first_name"].upper() not in text  # the quarantined booking left to nobody

    # no canary, of any field, in XCom, the task logs or any row of any table of Airflow's metadata DB
    xcom_text = "\n".join(v for _, v in xcoms).upper()
    logs = "\n".join([caplog.text, capsys.readouterr().out, task_log_text(Path(os.environ["AIRFLOW_HOME"]))])
    assert "lawful-canary -> county-bh: {'delivered': " in logs  # the task logs were captured
    metadata = "\n".join(text for _, text in metadata_text(airflow_db)).upper()
    assert "LAWFUL-CANARY" in metadata  # this run's rows are in what is scanned
    for c in seeded:
        for field, value in c.items():
            assert value.upper() not in xcom_text, f"XCom holds {field}"
            assert value.upper() not in logs.upper(), f"a task log holds {field}"
            assert value.upper() not in metadata, f"Airflow's metadata DB holds {field}"
