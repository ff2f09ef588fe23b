"""One Airflow DAG per exchange YAML: thin tasks that call the same pipeline as the CLI.

Which YAML files: ``NIEM_EXCHANGE_CONFIGS`` (a directory of ``*.yaml`` files or one file; default: the
bundled demo exchange). Relative paths in them resolve against ``NIEM_EXCHANGE_HOME`` (default: the working
directory). Each YAML is checked by the same config models as the CLI; a broken one becomes an import error
of this file that names the YAML, the key and the fix, while every good YAML still yields its DAG.

Tasks: ``plan`` (window keys) -> ``process`` (mapped over windows) -> ``deliver`` (mapped over recipients).
XCom carries window keys and counts, never records; task logs carry counts and ids, never PHI. Credentials
come from Airflow connections (or a secrets backend) named by ``connection:`` in the YAML, resolved here and
handed to ``exchange.runtime.open_exchange(credentials=...)``; exchange/ never imports Airflow.

Parsing must stay cheap (the DAG processor re-parses this file every few minutes): at module level only the
config models are imported; the pipeline, lxml, xmlsec and SQLAlchemy are imported inside the tasks.
"""
from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from datetime import datetime, time, timezone
from pathlib import Path
from typing import Any

from airflow.sdk import DAG, Asset, AssetAll, AssetOrTimeSchedule, CronTriggerTimetable, dag, task

from exchange.config import ExchangeConfig, demo_data_dir, load_config
from exchange.config.orchestration import FailureAlerts
from transforms.model import ConfigError

log = logging.getLogger(__name__)

CONFIGS_ENV = "NIEM_EXCHANGE_CONFIGS"
HOME_ENV = "NIEM_EXCHANGE_HOME"


def config_files() -> list[Path]:
    """The exchange YAML files this deployment runs (see the module docstring)."""
    configured = os.environ.get(CONFIGS_ENV)
    if not configured:
        return [demo_data_dir() / "demo-exchange.yaml"]
    path = Path(configured)
    return sorted([*path.glob("*.yaml"), *path.glob("*.yml")]) if path.is_dir() else [path]


def exchange_home() -> Path:
    """The directory relative paths in the YAML files resolve against."""
    return Path(os.environ.get(HOME_ENV, "."))


# --- credentials: Airflow connections -> plain values for exchange.runtime -------------------------------

def connection_values(conn_id: str) -> dict[str, str]:
    """The values of one Airflow connection (env ``AIRFLOW_CONN_<ID>``, the metadata DB or a secrets backend).

    Keys: ``conn_type``, ``host``, ``port``, ``login``, ``password``, ``schema`` (those that are set) and every
    key of the connection's extra JSON (e.g. ``private_key``, ``host_key``, ``path``), as strings.
    """
    from airflow.sdk import Connection

    conn = Connection.get(conn_id)
    values = {name: getattr(conn, name) for name in ("conn_type", "host", "port", "login", "password", "schema")}
    values.update(conn.extra_dejson or {})
    return {key: str(value) for key, value in values.items() if value not in (None, "")}


def recipient_credentials(config: ExchangeConfig, recipient_ids: list[str]) -> dict[str, dict[str, str]]:
    """Resolve the connections the given recipients name, keyed by connection id."""
    wanted = {r.connection for r in config.recipients if r.id in recipient_ids and r.connection}
    return {conn_id: connection_values(conn_id) for conn_id in sorted(wanted)}


# --- failure alerts ---------------------------------------------------------------------------------------

def _alert_payload(context: Mapping[str, Any]) -> dict[str, Any]:
    """Ids only: which DAG, run, task and map index failed, and the error's type (never its records)."""
    ti = context["ti"]
    error = context.get("exception")
    return {"event": "task_failed", "dag_id": ti.dag_id, "run_id": ti.run_id, "task_id": ti.task_id,
            "map_index": ti.map_index, "try_number": ti.try_number,
            "error_type": type(error).__name__ if error is not None else None}


def post_webhook(conn_id: str, context: Mapping[str, Any]) -> None:
    """POST the failure as JSON to the URL held by an Airflow HTTP connection; a dead webhook only logs."""
    import httpx

    values = connection_values(conn_id)
    host = values.get("host", "")
    if "://" in host:
        url = host
    else:
        scheme = values.get("schema") or ("http" if values.get("conn_type") == "http" else "https")
        port = f":{values['port']}" if "port" in values else ""
        url = f"{scheme}://{host}{port}{values.get('endpoint', '')}"
    try:
        httpx.post(url, json=_alert_payload(context), timeout=10.0).raise_for_status()
    except httpx.HTTPError as exc:  # the alert must not hide the task's own failure
        log.warning("failure webhook %s did not accept the alert: %s", conn_id, type(exc).__name__)


def send_failure_email(addresses: list[str], context: Mapping[str, Any]) -> None:
    """Mail the failure (ids only) through Airflow's SMTP connection."""
    from airflow.providers.smtp.notifications.smtp import SmtpNotifier

    payload = _alert_payload(context)
    lines = "".join(f"<li>{key}: {value}</li>" for key, value in payload.items())
    SmtpNotifier(to=addresses, subject=f"[niem-exchange] {payload['dag_id']}.{payload['task_id']} failed",
                 html_content=f"<ul>{lines}</ul>")(context)


def failure_callbacks(alerts: FailureAlerts) -> list[Callable[[Mapping[str, Any]], None]]:
    """The task failure callbacks an exchange's ``airflow.on_failure`` asks for."""
    callbacks: list[Callable[[Mapping[str, Any]], None]] = []
    if alerts.webhook_connection:
        conn_id = alerts.webhook_connection
        callbacks.append(lambda context: post_webhook(conn_id, context))
    if alerts.email:
        addresses = list(alerts.email)
        callbacks.append(lambda context: send_failure_email(addresses, context))
    return callbacks


# --- the DAG ----------------------------------------------------------------------------------------------

class DeliveryIncomplete(RuntimeError):
    """A deliver task left messages undelivered: it fails so the UI shows it and Airflow retries it."""


def _schedule(config: ExchangeConfig) -> Any:
    """Cron/preset, assets, or both (an asset update or the clock, whichever comes first)."""
    consumes = [Asset(name) for name in config.airflow.consumes]
    if not consumes:
        return config.schedule
    assets = AssetAll(*consumes)
    if config.schedule is None:
        return assets
    return AssetOrTimeSchedule(timetable=CronTriggerTimetable(config.schedule, timezone="UTC"), assets=assets)


def build_dag(config: ExchangeConfig, config_path: Path) -> DAG:
    """The DAG of one exchange: plan -> process each window -> deliver to each recipient."""
    settings = config.airflow
    callbacks = failure_callbacks(settings.on_failure)
    default_args: dict[str, Any] = {
        "retries": settings.retries,
        "retry_delay": settings.retry_delay,
        "execution_timeout": settings.execution_timeout,
    }
    if callbacks:
        default_args["on_failure_callback"] = callbacks

    @dag(
        dag_id=config.name,
        schedule=_schedule(config),
        start_date=datetime.combine(settings.start_date, time(), tzinfo=timezone.utc),
        catchup=settings.catchup,
        max_active_runs=1,
        # only the DAGs this file keeps (module globals) count: one refused by load_dags must not be
        # picked up by Airflow's auto-registration and bagged anyway
        auto_register=False,
        default_args=default_args,
        tags=["niem-exchange", config.message_type, *settings.tags],
        doc_md=f"NIEM exchange `{config.name}` ({config.message_type}) from `{config_path}`: "
               f"{len(config.recipients)} recipient(s). Rerun a failed `deliver` task after fixing its "
               "recipient: messages are delivered once per message id.",
    )
    def exchange_dag() -> None:
        @task
        def plan() -> list[str]:
            """Ask the source for new windows; return the keys of every pending window."""
            from exchange import pipeline
            from exchange.runtime import open_exchange

            ex = open_exchange(config_path, exchange_home())
            try:
                keys = pipeline.plan(ex)
            finally:
                ex.close()
            log.info("%s: %d window(s) pending", config.name, len(keys))
            return keys

        @task(max_active_tis_per_dag=1, multiple_outputs=False,
              outlets=[Asset(name) for name in settings.produces])
        def process(window_key: str) -> dict[str, int]:
            """Link, map, validate, sign, encrypt and queue one window's records."""
            from exchange import pipeline
            from exchange.runtime import open_exchange

            ex = open_exchange(config_path, exchange_home())
            try:
                counts = pipeline.process_window(ex, window_key)
            finally:
                ex.close()
            result = {"records": counts.records, "quarantined": counts.quarantined,
                      "enqueued": counts.enqueued, "already_sent": counts.already_sent}
            log.info("%s window %s: %s", config.name, window_key, result)
            return result

        # none_failed: deliver also runs when there was nothing new to process (plan found no window),
        # so messages left queued by an earlier failed run are retried by the next scheduled run.
        @task(trigger_rule="none_failed", multiple_outputs=False)
        def deliver(recipient_id: str) -> dict[str, int]:
            """Send one recipient's due messages; fail if any is left undelivered."""
            from exchange import pipeline
            from exchange.runtime import open_exchange

            ex = open_exchange(config_path, exchange_home(),
                               credentials=recipient_credentials(config, [recipient_id]))
            try:
                counts = pipeline.deliver(ex, recipient_id)
                pending = sum(1 for _ in ex.outbox.queued(recipient_id))
            finally:
                ex.close()
            result = {"delivered": counts.delivered, "failed": counts.failed, "dead": counts.dead,
                      "pending": pending}
            log.info("%s -> %s: %s", config.name, recipient_id, result)
            if recipient_id in pull_recipients:  # waiting to be pulled (`niem-exchange serve`) is not a failure
                return result
            if counts.failed or counts.dead or pending:
                raise DeliveryIncomplete(f"{config.name} -> {recipient_id}: {counts.failed} failed, "
                                         f"{counts.dead} dead-lettered, {pending} still queued; see "
                                         "`niem-exchange outbox list`")
            return result

        pull_recipients = {r.id for r in config.recipients if r.transport.kind == "pull"}
        processed = process.expand(window_key=plan())
        processed >> deliver.expand(recipient_id=[r.id for r in config.recipients])

    return exchange_dag()


# --- broken YAML files: an import error of this file, the other DAGs unharmed -----------------------------

class RejectedExchanges(DAG):
    """Stands in for the YAML files that failed their check: Airflow rejects it when it validates it.

    Airflow records that rejection as an import error of this DAG file (shown in the UI and by
    ``airflow dags list-import-errors``) and still loads every other DAG this file defines, whereas an
    exception at import time would hide all of them.
    """

    def validate(self) -> None:
        """Refuse, naming each broken file, key and fix (kept in ``doc_md``, one per line)."""
        raise ExchangeConfigErrors(str(self.doc_md))


class ExchangeConfigErrors(ValueError):
    """The import error: every rejected exchange YAML as ``file: key: problem; fix: ...``."""


def load_dags(paths: list[Path]) -> tuple[dict[str, DAG], list[str]]:
    """Build a DAG per valid YAML; return them with one line per rejected file (file: key: problem; fix)."""
    dags: dict[str, DAG] = {}
    origin: dict[str, Path] = {}
    problems: list[str] = []
    for path in paths:
        try:
            config = load_config(path)
            if config.name in origin:
                raise ConfigError(str(path), "name", f"{config.name!r} is already the DAG id of "
                                  f"{origin[config.name].name}", "give each exchange a unique name")
            built = build_dag(config, path)
        except ConfigError as error:
            problems.append(str(error))
            continue
        try:
            built.validate()  # e.g. a schedule that is not a cron line: Airflow's check, named here
        except Exception as error:  # noqa: BLE001 (any refusal of one DAG must not hide the others)
            problems.append(str(ConfigError(str(path), "schedule" if "timetable" in type(error).__name__.lower()
                                            else "airflow", f"{type(error).__name__}: {error}",
                                            "use a cron line or preset such as @hourly")))
            continue
        dags[config.name] = built
        origin[config.name] = path
    return dags, problems


def _rejected(problems: list[str]) -> DAG:
    return RejectedExchanges(dag_id="niem-exchange-config-errors", schedule=None,
                             doc_md="\n".join(problems), tags=["niem-exchange"])


_dags, _problems = load_dags(config_files())
for _dag in _dags.values():
    globals()[_dag.dag_id.replace("-", "_")] = _dag
if _problems:
    niem_exchange_config_errors = _rejected(_problems)
