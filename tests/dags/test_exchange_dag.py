"""The demo DAG runs with Airflow's dag.test() and produces exactly the messages the CLI run produced."""
from __future__ import annotations

import importlib.util
import shutil
import sqlite3
from pathlib import Path

import pytest

pytestmark = pytest.mark.airflow
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def airflow_db():
    from airflow.utils import db

    db.initdb()
    return Path(__import__("os").environ["AIRFLOW_HOME"]) / "airflow.db"


def _load_dag_module():
    spec = importlib.util.spec_from_file_location("niem_exchanges_dag", REPO / "dags/niem_exchanges.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_dag_test_delivers_the_same_messages_as_the_cli(airflow_db, demo_run, tmp_path, monkeypatch):
    cli_home, cli_summary = demo_run
    home = tmp_path / "airflow-home"
    shutil.copytree(cli_home / "certs", home / "certs")
    monkeypatch.setenv("NIEM_EXCHANGE_HOME", str(home))

    dag = _load_dag_module().demo_booking
    assert {t.task_id for t in dag.tasks} == {"plan", "process", "deliver"}
    run = dag.test()
    assert str(run.state) in ("success", "DagRunState.SUCCESS")

    for recipient in ("county-bh", "state-bh"):
        from_dag = {p.name for p in (home / "var/outbox" / recipient).glob("*.xml")}
        from_cli = {p.name for p in (cli_home / "var/outbox" / recipient).glob("*.xml")}
        assert from_dag == from_cli and len(from_dag) == cli_summary.delivered // 2

    # Airflow's metadata database (XCom, task instances) holds keys and counts, not people
    import csv

    from exchange.config import demo_data_dir

    with open(demo_data_dir() / "bookings.csv", newline="") as handle:
        surnames = {r["last_name"] for r in csv.DictReader(handle) if len(r["last_name"]) >= 6}
    with sqlite3.connect(airflow_db) as db:
        xcom = " ".join(str(v) for (v,) in db.execute("SELECT value FROM xcom"))
    assert xcom, "the DAG passed nothing through XCom"
    assert not [s for s in surnames if s in xcom]
