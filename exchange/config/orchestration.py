"""The optional ``airflow:`` block of an exchange YAML: how Airflow runs the exchange's DAG.

Only ``dags/`` reads it (this module imports nothing from Airflow). Secrets never go here: a failure webhook
is named by an Airflow connection id, whose URL (and any token in it) lives in Airflow's connections or a
secrets backend.
"""
from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated

from pydantic import Field

from exchange.config.base import Strict

ConnectionId = Annotated[str, Field(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,249}$")]
"""An Airflow connection id. Use letters, digits and ``_`` if it is to be set as ``AIRFLOW_CONN_<ID>``."""

AssetName = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:/-]{0,1499}$")]
"""An Airflow asset name, e.g. ``example-county/jail-bookings``; producers and consumers must agree on it."""


class FailureAlerts(Strict):
    """Who hears about a failed task (after its last retry)."""

    email: list[str] = Field(default_factory=list, description="Addresses mailed through Airflow's SMTP "
                             "connection (smtp_default); needs apache-airflow-providers-smtp.")
    webhook_connection: ConnectionId | None = Field(None, description="Airflow HTTP connection whose host "
                                                    "holds the webhook URL; it receives a JSON POST naming "
                                                    "the DAG, run, task and map index (never record data).")


class AirflowConfig(Strict):
    """How Airflow schedules and retries this exchange (every key optional)."""

    start_date: date = Field(date(2026, 1, 1), description="First logical date the schedule counts from.")
    catchup: bool = Field(False, description="Run every missed interval since start_date when the DAG is "
                          "enabled (off: only the latest; use `airflow backfill create` for a date range).")
    retries: int = Field(2, ge=0, le=50, description="Times Airflow retries a failed task.")
    retry_delay: timedelta = Field(timedelta(minutes=5), description="Wait before a retry "
                                   "(seconds, or ISO 8601 like PT10M).")
    execution_timeout: timedelta | None = Field(timedelta(hours=1), description="A task running longer is "
                                                "failed (and retried); null: no limit.")
    on_failure: FailureAlerts = Field(default_factory=FailureAlerts, description="Alerts on task failure.")
    produces: list[AssetName] = Field(default_factory=list, description="Assets updated each time a batch "
                                      "of this exchange's records has been processed.")
    consumes: list[AssetName] = Field(default_factory=list, description="Assets that trigger this exchange "
                                      "when all have been updated (combined with `schedule` if both set).")
    tags: list[str] = Field(default_factory=list, description="Extra tags shown in the Airflow UI.")
