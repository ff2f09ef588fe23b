"""How long Airflow takes to parse dags/niem_exchanges.py, per exchange, against plain Python DAGs.

Run: ``.venv/bin/python -m bench.dag_parse [--exchanges 20] [--repeat 5]``. Writes ``--exchanges`` renamed
copies of the example exchange YAMLs and a DAG folder holding our DAG file beside a baseline file: a
hand-written Python DAG file (``bench/baseline_dag.py.txt``) defining the same number of DAGs with the same
three tasks (plan -> mapped process -> mapped deliver) and no YAML. Airflow's own ``airflow dags report``
parses the folder (what the DAG processor does every ``min_file_process_interval``) and reports each file's
parse duration; each report is a fresh process, so the durations include what a file imports beyond
``airflow.sdk`` (for ours: pydantic and the config models). Median of ``--repeat`` reports; ratio = ours /
baseline. Airflow runs only as a command here: nothing outside ``dags/`` imports it.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from datetime import timedelta
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
DAG_FILE = REPO / "dags" / "niem_exchanges.py"
EXAMPLES = REPO / "exchange" / "examples"
BASELINE = Path(__file__).with_name("baseline_dag.py.txt")
AIRFLOW = Path(sys.executable).with_name("airflow")


def _write_configs(directory: Path, count: int) -> None:
    examples = [yaml.safe_load(p.read_text()) for p in sorted(EXAMPLES.glob("*.yaml"))]
    for i in range(count):
        raw = dict(examples[i % len(examples)])
        raw["name"] = f"{raw['name']}-{i}"
        (directory / f"{raw['name']}.yaml").write_text(yaml.safe_dump(raw))


def _seconds(text: str) -> float:
    """Airflow prints durations as ``H:MM:SS.ffffff``."""
    hours, minutes, seconds = text.split(":")
    return timedelta(hours=int(hours), minutes=int(minutes), seconds=float(seconds)).total_seconds()


def _report(env: dict[str, str]) -> dict[str, tuple[float, int]]:
    """One ``airflow dags report``: file name -> (parse seconds, DAGs found)."""
    out = subprocess.run([str(AIRFLOW), "dags", "report", "-o", "json"], env=env, capture_output=True,
                         text=True, check=True).stdout
    rows = json.loads(next(line for line in reversed(out.splitlines()) if line.startswith("[")))
    return {row["file"]: (_seconds(row["duration"]), int(row["dag_num"])) for row in rows}


def main() -> None:
    """Print parse time per DAG for our YAML-driven file and for a plain DAG file, and their ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--exchanges", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        dags, configs = tmp_path / "dags", tmp_path / "exchanges"
        dags.mkdir()
        configs.mkdir()
        shutil.copy(DAG_FILE, dags / DAG_FILE.name)
        (dags / "plain_dags.py").write_text(BASELINE.read_text().format(count=args.exchanges))
        _write_configs(configs, args.exchanges)
        env = {**os.environ, "AIRFLOW_HOME": str(tmp_path / "airflow"), "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
               "AIRFLOW__CORE__DAGS_FOLDER": str(dags), "NIEM_EXCHANGE_CONFIGS": str(configs)}
        subprocess.run([str(AIRFLOW), "db", "migrate"], env=env, capture_output=True, check=True)

        reports = [_report(env) for _ in range(args.repeat)]
        ours = statistics.median(r[DAG_FILE.name][0] for r in reports)
        plain = statistics.median(r["plain_dags.py"][0] for r in reports)
        n_ours, n_plain = reports[0][DAG_FILE.name][1], reports[0]["plain_dags.py"][1]
        assert n_ours == n_plain == args.exchanges, (n_ours, n_plain)
        print(f"parse per file in a fresh process, {args.exchanges} DAGs, median of {args.repeat} "
              "(airflow dags report):")
        print(f"  niem_exchanges.py (YAML -> DAG): {ours * 1000:8.1f} ms  = {ours / n_ours * 1000:6.2f} ms per DAG")
        print(f"  plain Python DAG file (baseline): {plain * 1000:7.1f} ms  = {plain / n_plain * 1000:6.2f} ms per DAG")
        print(f"  ratio ours / baseline: {ours / plain:.2f}")


if __name__ == "__main__":
    main()
