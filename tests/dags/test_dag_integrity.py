"""DAG integrity: every example exchange YAML yields a DAG, broken ones are import errors that name the file
and key without taking the other DAGs down, and parsing stays cheap (no pipeline machinery at parse time).

Parsing is checked through Airflow's own DagBag, the way the DAG processor loads dags/. Parse *time* is
measured in bench/dag_parse.py, not asserted here.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
import yaml

from dag_helpers import DAG_FILE, EXAMPLES, REPO

pytestmark = pytest.mark.airflow


def _dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(REPO / "dags"))


def _example_names() -> dict[str, dict]:
    return {raw["name"]: raw for raw in (yaml.safe_load(p.read_text()) for p in sorted(EXAMPLES.glob("*.yaml")))}


def test_every_example_exchange_yields_its_dag_with_no_import_error(monkeypatch):
    monkeypatch.setenv("NIEM_EXCHANGE_CONFIGS", str(EXAMPLES))
    examples = _example_names()
    assert len(examples) >= 2

    bag = _dagbag()

    assert bag.import_errors == {}
    assert set(bag.dags) == set(examples)
    for name, raw in examples.items():
        dag = bag.dags[name]
        settings = raw.get("airflow", {})
        assert {t.task_id for t in dag.tasks} == {"plan", "process", "deliver"}
        assert dag.catchup is False and dag.max_active_runs == 1
        deliver = dag.get_task("deliver")
        assert deliver.retries == settings["retries"]
        assert deliver.execution_timeout is not None and deliver.execution_timeout <= timedelta(hours=2)
        assert deliver.trigger_rule == "none_failed"
        assert deliver.on_failure_callback, f"{name}: on_failure in the YAML but no callback on the tasks"
        outlets = {a.name for a in dag.get_task("process").outlets}
        assert outlets == set(settings.get("produces", []))


def test_a_consumer_exchange_is_scheduled_by_the_asset_its_producer_updates(monkeypatch):
    from airflow.sdk import AssetOrTimeSchedule

    monkeypatch.setenv("NIEM_EXCHANGE_CONFIGS", str(EXAMPLES))
    bag = _dagbag()
    produced = {a.name for d in bag.dags.values() for a in d.get_task("process").outlets}
    consumers = [d for d in bag.dags.values() if _example_names()[d.dag_id].get("airflow", {}).get("consumes")]
    assert consumers, "no example exchange consumes an asset"
    for dag in consumers:
        assert isinstance(dag.timetable, AssetOrTimeSchedule)  # the asset, or the cron if nothing landed
        consumed = {a.name for a in dag.timetable.asset_condition.objects}
        assert consumed and consumed <= produced


def test_broken_yaml_files_are_import_errors_naming_file_and_key_and_the_other_dags_still_load(
        tmp_path, monkeypatch):
    configs = tmp_path / "exchanges"
    shutil.copytree(EXAMPLES, configs)
    good = _example_names()
    raw = next(iter(good.values()))
    missing_key = {**raw, "name": "missing-basis",
                   "recipients": [{k: v for k, v in raw["recipients"][0].items() if k != "legal_basis"}]}
    (configs / "missing-basis.yaml").write_text(yaml.safe_dump(missing_key))
    (configs / "bad-retries.yaml").write_text(yaml.safe_dump({**raw, "name": "bad-retries",
                                                              "airflow": {"retries": "often"}}))
    (configs / "not-yaml.yaml").write_text("name: [unclosed\n")
    (configs / "bad-cron.yaml").write_text(yaml.safe_dump({**raw, "name": "bad-cron", "schedule": "every hour"}))
    (configs / "same-name.yaml").write_text(yaml.safe_dump(raw))  # a second DAG with an existing id
    monkeypatch.setenv("NIEM_EXCHANGE_CONFIGS", str(configs))

    bag = _dagbag()

    assert set(bag.dags) == set(good)  # every good exchange still has its DAG
    assert list(bag.import_errors) == [str(DAG_FILE)]
    error = bag.import_errors[str(DAG_FILE)]
    assert "missing-basis.yaml: recipients.0.legal_basis: field required; fix: add this key" in error
    assert "bad-retries.yaml: airflow.retries:" in error
    assert "not-yaml.yaml: line 1" in error or "not-yaml.yaml: line 2" in error
    assert "same-name.yaml: name:" in error
    assert "bad-cron.yaml: schedule: AirflowTimetableInvalid" in error


def test_parsing_the_dag_file_loads_config_models_only_not_the_pipeline(tmp_path):
    probe = f"""
import importlib.util, json, sys
import airflow.sdk  # loaded by the DAG processor before any DAG file
before = set(sys.modules)
spec = importlib.util.spec_from_file_location("niem_exchanges_probe", {str(DAG_FILE)!r})
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
print(json.dumps({{"dags": sorted(module._dags), "problems": module._problems,
                  "new": sorted(set(sys.modules) - before)}}))
"""
    env = {**os.environ, "NIEM_EXCHANGE_CONFIGS": str(EXAMPLES), "AIRFLOW_HOME": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", probe], env=env, cwd=REPO, capture_output=True, text=True,
                         timeout=120, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])

    assert result["dags"] == sorted(_example_names()) and result["problems"] == []
    heavy_roots = {"lxml", "xmlsec", "sqlalchemy", "paramiko", "zeep", "httpx", "saxonche", "duckdb", "splink",
                   "cryptography", "adapters", "niem_iepd"}
    heavy = [m for m in result["new"] if m.split(".")[0] in heavy_roots
             or m.startswith(("exchange.pipeline", "exchange.runtime", "exchange.state", "exchange.security",
                              "exchange.wiring", "transforms.mapping", "transforms.identity"))]
    assert heavy == []
    assert "exchange.config" in result["new"]  # the probe did load our code
