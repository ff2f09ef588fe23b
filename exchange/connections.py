"""Connection values for the command line, read from ``AIRFLOW_CONN_<ID>`` environment variables.

Under Airflow the DAG resolves a recipient's ``connection:`` through Airflow itself (its connections, any
secrets backend, and these same variables) and hands the values to :func:`exchange.runtime.open_exchange`.
``niem-exchange run`` has no Airflow; it reads the variable Airflow would read, in either of Airflow's
documented formats, and produces the same keys as the DAG's ``connection_values``:

* JSON: ``{"conn_type": "soap", "host": "hub.example.gov", "port": 8443, "extra": {"client_key": "..."}}``
  (``extra`` may also be a JSON string);
* URI: ``conn-type://login:password@host:port/schema?key=value&...`` with every part URL-encoded; the query is
  the extras (``__extra__=<JSON>`` for nested ones); ``soap://https%3A%2F%2Fhub.example.gov`` or the
  two-scheme form ``soap://https://hub.example.gov`` puts a URL in ``host``.

Values are secrets: nothing here logs them or puts them in an error message.
"""
from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from urllib.parse import parse_qsl, unquote, urlsplit

from transforms.model import ConfigError

PREFIX = "AIRFLOW_CONN_"


def environment_variable(conn_id: str) -> str:
    """The variable Airflow reads for ``conn_id``."""
    return PREFIX + conn_id.upper()


def from_environment(conn_ids: Iterable[str], environ: Mapping[str, str] | None = None) -> dict[str, dict[str, str]]:
    """The values of every named connection whose variable is set (the others are left out, so the exchange
    refuses a recipient whose connection is missing with its own clear error)."""
    environ = os.environ if environ is None else environ
    found = {}
    for conn_id in conn_ids:
        raw = environ.get(environment_variable(conn_id))
        if raw is not None:
            found[conn_id] = parse(conn_id, raw)
    return found


def parse(conn_id: str, raw: str) -> dict[str, str]:
    """One connection's values (``conn_type``, ``host``, ``port``, ``login``, ``password``, ``schema`` when set,
    and every extra) as strings."""
    values = _from_json(conn_id, raw) if raw.lstrip().startswith("{") else _from_uri(conn_id, raw)
    return {key: str(value) for key, value in values.items() if value not in (None, "")}


def _refuse(conn_id: str, problem: str) -> ConfigError:
    return ConfigError(environment_variable(conn_id), "(value)", problem,
                       "use Airflow's JSON or URI connection format")


def _from_json(conn_id: str, raw: str) -> dict[str, object]:
    try:
        document = json.loads(raw)
        extra = document.get("extra") or {}
        if isinstance(extra, str):
            extra = json.loads(extra)
    except (ValueError, AttributeError):
        raise _refuse(conn_id, "is not valid connection JSON") from None
    if not isinstance(extra, dict):
        raise _refuse(conn_id, "extra must be a JSON object")
    values = {key: document.get(key) for key in ("conn_type", "host", "port", "login", "password", "schema")}
    return {**values, **extra}


def _from_uri(conn_id: str, raw: str) -> dict[str, object]:
    if raw.count("://") not in (1, 2):
        raise _refuse(conn_id, "is not a connection URI")
    scheme, rest = raw.split("://", 1)
    protocol = None
    if "://" in rest:  # conn-type://https://host...: the host carries its own protocol
        protocol, rest = rest.split("://", 1)
        if "@" in protocol or ":" in protocol:
            raise _refuse(conn_id, "is not a connection URI")
    try:
        parts = urlsplit("//" + rest)
        port = parts.port
    except ValueError:
        raise _refuse(conn_id, "has an invalid host or port") from None
    host = unquote(parts.hostname or "")
    if host and protocol:
        host = f"{protocol}://{host}"
    values: dict[str, object] = {
        "conn_type": scheme.replace("-", "_"), "host": host, "port": port,
        "login": unquote(parts.username) if parts.username else None,
        "password": unquote(parts.password) if parts.password else None,
        "schema": unquote(parts.path[1:]) if parts.path else None,
    }
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    if "__extra__" in query:
        try:
            extra = json.loads(query["__extra__"])
        except ValueError:
            raise _refuse(conn_id, "__extra__ is not valid JSON") from None
        if not isinstance(extra, dict):
            raise _refuse(conn_id, "__extra__ must be a JSON object")
        values.update(extra)
    else:
        values.update(query)
    return values
