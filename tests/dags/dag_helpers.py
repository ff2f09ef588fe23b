"""Helpers for the Airflow tests: load the DAG file, read run states, ledger, outboxes, metadata and logs."""
from __future__ import annotations

import importlib.util
import sqlite3
import uuid
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DAG_FILE = REPO / "dags" / "niem_exchanges.py"
EXAMPLES = REPO / "exchange" / "examples"


def load_dag_module():
    """Execute dags/niem_exchanges.py as a fresh module under the current environment."""
    spec = importlib.util.spec_from_file_location(f"niem_exchanges_{uuid.uuid4().hex}", DAG_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_dag(dag_id: str):
    """The DAG ``dag_id`` from a fresh load of the DAG file."""
    module = load_dag_module()
    return module._dags[dag_id]


def run_state(run) -> str:
    """'success' / 'failed' whatever enum flavour dag.test() returns."""
    return str(getattr(run.state, "value", run.state))


def task_states(airflow_db: Path, dag_id: str, run_id: str) -> dict[tuple[str, int], str]:
    """(task id, map index) -> state of every task instance of one run."""
    with sqlite3.connect(airflow_db) as db:
        rows = db.execute("SELECT task_id, map_index, state FROM task_instance WHERE dag_id=? AND run_id=?",
                          (dag_id, run_id)).fetchall()
    return {(task_id, map_index): state for task_id, map_index, state in rows}


def ledger_rows(home: Path, exchange: str) -> list[tuple[str, str]]:
    """(recipient, message id) of every ledger entry the exchange wrote."""
    with sqlite3.connect(home / "var" / "state.db") as db:
        columns = {row[1] for row in db.execute("PRAGMA table_info(ledger)")}
        assert {"recipient", "message_id", "exchange"} <= columns, columns
        return db.execute("SELECT recipient, message_id FROM ledger WHERE exchange=?", (exchange,)).fetchall()


def outbox_files(directory: Path) -> set[str]:
    """Message files delivered into one recipient's outbox directory."""
    return {p.name for p in directory.glob("*.xml")}


def metadata_text(airflow_db: Path) -> Iterator[tuple[str, str]]:
    """(table, text of one row) for every row of every table of the Airflow metadata database."""
    with sqlite3.connect(airflow_db) as db:
        tables = [name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        for table in tables:
            for row in db.execute(f'SELECT * FROM "{table}"'):
                yield table, " ".join(v.decode("latin-1") if isinstance(v, bytes) else str(v) for v in row)


def task_log_text(airflow_home: Path) -> str:
    """Every task log file Airflow wrote under AIRFLOW_HOME/logs."""
    logs = airflow_home / "logs"
    return "\n".join(p.read_text(errors="replace") for p in logs.rglob("*") if p.is_file()) if logs.is_dir() else ""


def utc(year: int, month: int, day: int) -> datetime:
    """An aware UTC date (logical dates of test runs)."""
    return datetime(year, month, day, tzinfo=timezone.utc)


def rerun_task_instance(dag, run_id: str, task_id: str, map_index: int) -> str:
    """Clear one task instance of a finished run and run just it again, as "Clear" on it in the UI does.

    dag.test() can only clear and rerun a whole run; this uses the same in-process runner it uses
    (``airflow.sdk.definitions.dag._run_task``) on the one cleared task instance. Returns its new state.
    """
    from airflow import settings
    from airflow.models.taskinstance import TaskInstance, clear_task_instances
    from airflow.sdk.definitions.dag import _run_task
    from airflow.utils.state import TaskInstanceState
    from sqlalchemy import select

    def current(session) -> TaskInstance:
        return session.scalars(select(TaskInstance).where(
            TaskInstance.dag_id == dag.dag_id, TaskInstance.run_id == run_id,
            TaskInstance.task_id == task_id, TaskInstance.map_index == map_index)).one()

    session = settings.Session()
    try:
        clear_task_instances([current(session)], session)  # the old try moves to task_instance_history
        session.commit()
        ti = current(session)
        ti.try_number += 1  # what the scheduler does when it schedules the cleared instance
        ti.state = TaskInstanceState.SCHEDULED
        session.commit()
        _run_task(ti=ti, task=dag.task_dict[task_id])
        session.commit()
        session.expire_all()
        state = current(session).state
        return str(getattr(state, "value", state))
    finally:
        session.close()
