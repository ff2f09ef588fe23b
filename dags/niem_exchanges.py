"""One Airflow DAG per exchange YAML: thin tasks that call the same pipeline as the CLI.

Which YAML files: ``NIEM_EXCHANGE_CONFIGS`` (a directory of ``*.yaml`` or a single file; default: the
bundled demo exchange). Relative paths in them resolve against ``NIEM_EXCHANGE_HOME`` (default: the
working directory). Tasks pass window keys and counts through XCom, never records; task logs carry
counts and ids, never PHI.
"""
from __future__ import annotations

import os
from datetime import datetime, timezone
from pathlib import Path

from airflow.sdk import dag, task

from exchange.config import demo_data_dir, load_config


def _config_files() -> list[Path]:
    configured = os.environ.get("NIEM_EXCHANGE_CONFIGS")
    if not configured:
        return [demo_data_dir() / "demo-exchange.yaml"]
    path = Path(configured)
    return sorted(path.glob("*.yaml")) if path.is_dir() else [path]


def _home() -> Path:
    return Path(os.environ.get("NIEM_EXCHANGE_HOME", "."))


def build_dag(config_path: Path):
    """The DAG of one exchange: plan -> process each window -> deliver to each recipient."""
    config = load_config(config_path)

    @dag(
        dag_id=config.name,
        schedule=config.schedule,
        start_date=datetime(2026, 1, 1, tzinfo=timezone.utc),
        catchup=False,
        max_active_runs=1,
        tags=["niem-exchange", config.message_type],
        doc_md=f"NIEM exchange `{config.name}` ({config.message_type}) from `{config_path}`.",
    )
    def exchange_dag():
        @task
        def plan() -> list[str]:
            from exchange import pipeline
            from exchange.runtime import open_exchange

            ex = open_exchange(config_path, _home())
            try:
                return pipeline.plan(ex)
            finally:
                ex.close()

        @task(max_active_tis_per_dag=1)
        def process(window_key: str) -> dict[str, int]:
            from exchange import pipeline
            from exchange.runtime import open_exchange

            ex = open_exchange(config_path, _home())
            try:
                counts = pipeline.process_window(ex, window_key)
            finally:
                ex.close()
            return {"records": counts.records, "quarantined": counts.quarantined,
                    "enqueued": counts.enqueued, "already_sent": counts.already_sent}

        @task(retries=3)
        def deliver(recipient_id: str) -> dict[str, int]:
            from exchange import pipeline
            from exchange.runtime import open_exchange

            ex = open_exchange(config_path, _home())
            try:
                counts = pipeline.deliver(ex, recipient_id)
            finally:
                ex.close()
            return {"delivered": counts.delivered, "failed": counts.failed, "dead": counts.dead}

        processed = process.expand(window_key=plan())
        processed >> deliver.expand(recipient_id=[r.id for r in config.recipients])

    return exchange_dag()


for _path in _config_files():
    _dag = build_dag(_path)
    globals()[_dag.dag_id.replace("-", "_")] = _dag
