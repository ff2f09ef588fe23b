"""How long Airflow's DAG processor takes to parse dags/niem_exchanges.py, per exchange, against plain DAGs.

Run: ``.venv/bin/python -m bench.dag_parse [--exchanges 20] [--repeat 5]``. Writes ``--exchanges`` copies of
the example exchange YAMLs (renamed) into a temporary directory and parses the DAG file with Airflow's own
``DagBag`` (what the DAG processor does every ``min_file_process_interval``). Baseline, measured in the same
run: a hand-written Python DAG file defining the same number of DAGs with the same three tasks (plan ->
mapped process -> mapped deliver) and no YAML; ratio = ours / baseline. Also measured once each, in fresh
processes: the first parse of our file (pays for importing pydantic and the config models) vs a baseline file.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
DAG_FILE = REPO / "dags" / "niem_exchanges.py"
EXAMPLES = REPO / "exchange" / "examples"

BASELINE = '''
from datetime import datetime, timezone
from airflow.sdk import dag, task

def build(name):
    @dag(dag_id=name, schedule="@hourly", start_date=datetime(2026, 1, 1, tzinfo=timezone.utc), catchup=False)
    def exchange_dag():
        @task
        def plan() -> list[str]:
            return []
        @task
        def process(key: str) -> int:
            return 0
        @task
        def deliver(recipient: str) -> int:
            return 0
        process.expand(key=plan()) >> deliver.expand(recipient=["a", "b"])
    return exchange_dag()

for _i in range({count}):
    globals()[f"d{{_i}}"] = build(f"plain-{{_i}}")
'''


def _write_configs(directory: Path, count: int) -> None:
    examples = [yaml.safe_load(p.read_text()) for p in sorted(EXAMPLES.glob("*.yaml"))]
    for i in range(count):
        raw = dict(examples[i % len(examples)])
        raw["name"] = f"{raw['name']}-{i}"
        (directory / f"{raw['name']}.yaml").write_text(yaml.safe_dump(raw))


def _parse_seconds(path: Path, repeat: int) -> tuple[float, int]:
    from airflow.dag_processing.dagbag import DagBag

    times, dags = [], 0
    for _ in range(repeat):
        start = time.perf_counter()
        bag = DagBag(dag_folder=str(path))
        times.append(time.perf_counter() - start)
        assert not bag.import_errors, bag.import_errors
        dags = len(bag.dags)
    return statistics.median(times), dags


def _cold_seconds(path: Path, env: dict[str, str]) -> float:
    probe = ("import time, importlib.util, airflow.sdk; t = time.perf_counter(); "
             f"s = importlib.util.spec_from_file_location('probe', {str(path)!r}); "
             "m = importlib.util.module_from_spec(s); s.loader.exec_module(m); print(time.perf_counter() - t)")
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    """Print parse time per DAG for our YAML-driven file and for plain DAG files, and their ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--exchanges", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        os.environ.update({"AIRFLOW_HOME": str(tmp_path / "airflow"), "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                           "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags")})
        configs = tmp_path / "exchanges"
        configs.mkdir()
        _write_configs(configs, args.exchanges)
        os.environ["NIEM_EXCHANGE_CONFIGS"] = str(configs)
        baseline_file = tmp_path / "plain_dags.py"
        baseline_file.write_text(BASELINE.format(count=args.exchanges))

        ours, n_ours = _parse_seconds(DAG_FILE, args.repeat)
        plain, n_plain = _parse_seconds(baseline_file, args.repeat)
        assert n_ours == n_plain == args.exchanges, (n_ours, n_plain)
        print(f"warm parse, {args.exchanges} DAGs, median of {args.repeat} (DagBag):")
        print(f"  niem_exchanges.py (YAML -> DAG): {ours * 1000:8.1f} ms  = {ours / n_ours * 1000:6.2f} ms per DAG")
        print(f"  plain Python DAG file (baseline): {plain * 1000:7.1f} ms  = {plain / n_plain * 1000:6.2f} ms per DAG")
        print(f"  ratio ours / baseline: {ours / plain:.2f}")

        env = dict(os.environ)
        cold_ours, cold_plain = _cold_seconds(DAG_FILE, env), _cold_seconds(baseline_file, env)
        print("cold first parse in a fresh process (after `import airflow.sdk`):")
        print(f"  niem_exchanges.py: {cold_ours * 1000:.0f} ms   baseline: {cold_plain * 1000:.0f} ms   "
              f"ratio {cold_ours / cold_plain:.2f}")


if __name__ == "__main__":
    main()
