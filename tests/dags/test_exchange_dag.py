"""The exchange DAG under Airflow's dag.test() on SQLite: same messages as the CLI, ledger entries, nothing
delivered twice, no PHI anywhere in Airflow's metadata database or task logs."""
from __future__ import annotations

import logging
import os
import sqlite3
from collections import Counter
from pathlib import Path

import pytest

from dag_helpers import (
    ledger_rows, load_dag, metadata_text, outbox_files, run_state, task_log_text, task_states, utc,
)

pytestmark = pytest.mark.airflow


def test_dag_runs_the_exchange_writes_the_ledger_and_leaks_no_phi(
        airflow_db, demo_run, write_exchange, exchange_home, phi_canaries, caplog, capsys):
    caplog.set_level(logging.INFO)
    cli_home, cli_summary = demo_run
    # the demo's own name: message ids derive from (exchange, recipient, record), so they match the CLI's
    write_exchange("demo-booking", lambda raw: raw["airflow"].update(produces=["test/jail-bookings"]))

    dag = load_dag("demo-booking")
    assert {t.task_id for t in dag.tasks} == {"plan", "process", "deliver"}
    run = dag.test(logical_date=utc(2026, 3, 1))
    assert run_state(run) == "success"

    # the same messages the CLI run produced (message ids derive from content), one ledger entry each
    per_recipient = Counter(recipient for recipient, _ in ledger_rows(exchange_home, "demo-booking"))
    for recipient in ("county-bh", "state-bh"):
        from_dag = outbox_files(exchange_home / "var/outbox" / recipient)
        from_cli = outbox_files(cli_home / "var/outbox" / recipient)
        assert from_dag == from_cli and len(from_dag) == cli_summary.delivered // 2
        assert per_recipient[recipient] == len(from_dag)

    # a processed batch updated the asset the YAML says this exchange produces (data-aware scheduling)
    with sqlite3.connect(airflow_db) as db:
        events = db.execute("SELECT count(*) FROM asset_event JOIN asset ON asset.id = asset_event.asset_id "
                            "WHERE asset.name = 'test/jail-bookings'").fetchone()[0]
    assert events >= 1

    # XCom and the task logs carry window keys and counts ...
    with sqlite3.connect(airflow_db) as db:
        xcom = " ".join(str(v) for (v,) in db.execute("SELECT value FROM xcom WHERE dag_id='demo-booking'"))
    assert '"delivered"' in xcom and '"records"' in xcom
    # dag.test() runs tasks in this process: their logs are what caplog and stdout caught (a deployment
    # writes the same lines to files under AIRFLOW_HOME/logs, scanned too in case there are any)
    logs = "\n".join([caplog.text, capsys.readouterr().out, task_log_text(Path(os.environ["AIRFLOW_HOME"]))])
    assert "demo-booking -> county-bh: {'delivered': " in logs and "'quarantined': " in logs
    # ... and no person: scan every row of every metadata table and every task log file for canaries
    leaks = {(table, value) for table, text in metadata_text(airflow_db) for value in phi_canaries if value in text}
    leaks |= {("logs", value) for value in phi_canaries if value in logs}
    assert not leaks, sorted(leaks)[:5]

    # a second run finds nothing new: delivers nothing, writes no ledger entry
    before = ledger_rows(exchange_home, "demo-booking")
    second = load_dag("demo-booking").test(logical_date=utc(2026, 3, 2))
    assert run_state(second) == "success"
    assert ledger_rows(exchange_home, "demo-booking") == before
    states = task_states(airflow_db, "demo-booking", second.run_id)
    assert states[("process", -1)] == "skipped" and states[("deliver", 0)] == "success"
    with sqlite3.connect(airflow_db) as db:
        delivered = [v for (v,) in db.execute("SELECT value FROM xcom WHERE dag_id='demo-booking' AND run_id=? "
                                              "AND task_id='deliver' AND key='return_value'", (second.run_id,))]
    assert len(delivered) == 2 and all('"delivered": 0' in str(v) for v in delivered)
