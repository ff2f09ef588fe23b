"""Transport config -> transport adapter."""
from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path

from adapters.delivery.local_outbox import LocalOutbox
from exchange.config import resolve
from exchange.config.transports import (
    SOAP_REQUIRED,
    OutboxTransportConfig,
    PullTransportConfig,
    SftpTransportConfig,
    SoapTransportConfig,
    TransportConfig,
)
from exchange.ports import Transport
from transforms.model import ConfigError


def build_transport(config: TransportConfig, *, recipient_id: str, home: Path,
                    clock: Callable[[], datetime], credentials: Mapping[str, str] | None = None) -> Transport:
    """Open the transport a recipient's config names (remote transports connect on first delivery).

    ``credentials``: the values of the connection the recipient names (``connection:``), resolved by the front
    end (the DAGs read Airflow connections): host, port, login, password, schema and the connection's extras.
    """
    if isinstance(config, OutboxTransportConfig):
        # an Airflow "File (path)" connection may move the outbox (a per-deployment mount point)
        directory = (credentials or {}).get("path") or config.path
        return LocalOutbox(resolve(home, directory) / recipient_id, clock=clock)
    if isinstance(config, SftpTransportConfig):
        from adapters.delivery.sftp import SftpSettings, SftpTransport

        # an Airflow SFTP connection overrides the YAML: host, port, login, and the extras key_file,
        # known_hosts, remote_dir, private_key_passphrase (the SFTP provider's names where it has one)
        conn = credentials or {}
        passphrase = conn.get("private_key_passphrase") or _secret(config.passphrase_env, recipient_id,
                                                                    "passphrase_env")
        settings = SftpSettings(
            host=conn.get("host", config.host), port=int(conn.get("port", config.port)),
            username=conn.get("login", config.username),
            private_key=resolve(home, conn.get("key_file", config.private_key)),
            known_hosts=resolve(home, conn.get("known_hosts", config.known_hosts)),
            remote_dir=conn.get("remote_dir", config.remote_dir), passphrase=passphrase,
            connect_timeout=config.connect_timeout, timeout=config.timeout,
        )
        return SftpTransport(settings, clock=clock)
    if isinstance(config, SoapTransportConfig):
        from adapters.delivery.soap import SoapSettings, SoapTransport

        # an Airflow connection overrides the YAML: the endpoint from host/port (+ the `endpoint` extra) and
        # the files from extras named like the YAML keys (client_certificate, client_key, ca_bundle, ...)
        conn = credentials or {}
        endpoint = _soap_endpoint(conn, recipient_id) or config.endpoint
        value = {key: conn.get(key) or getattr(config, key) for key in (*SOAP_REQUIRED, "wsdl", "receipt_certificate")}
        value["endpoint"] = endpoint
        for key in SOAP_REQUIRED:
            if not value[key]:
                raise ConfigError("exchange config", f"recipients.{recipient_id}.transport.{key}",
                                  "not set in the YAML nor in the recipient's connection",
                                  f"set it in the YAML or as the connection's {key!r} extra")
        wsdl = value["wsdl"]
        settings = SoapSettings(
            endpoint=endpoint, wsdl=str(resolve(home, wsdl)) if wsdl and "://" not in wsdl else wsdl,
            client_certificate=resolve(home, value["client_certificate"]),
            client_key=resolve(home, value["client_key"]), ca_bundle=resolve(home, value["ca_bundle"]),
            signing_key=resolve(home, value["signing_key"]),
            signing_certificate=resolve(home, value["signing_certificate"]),
            receipt_certificate=resolve(home, value["receipt_certificate"]) if value["receipt_certificate"] else None,
            connect_timeout=config.connect_timeout, timeout=float(conn.get("timeout", config.timeout)),
        )
        return SoapTransport(settings, clock=clock)
    if isinstance(config, PullTransportConfig):
        raise ConfigError("exchange config", f"recipients.{recipient_id}.transport.kind",
                          "a pull recipient is not sent to: it fetches its messages",
                          "run `niem-exchange serve` for it; delivery passes leave its messages queued")
    raise ConfigError("exchange config", f"recipients.{recipient_id}.transport.kind",
                      f"no transport for {config.kind!r}", "use a listed kind")


def _soap_endpoint(conn: Mapping[str, str], recipient_id: str) -> str | None:
    """The service URL a connection gives: its ``endpoint`` extra when that is a whole URL, else
    ``https://host[:port]`` + the ``endpoint`` extra as the path (a ``host`` holding a URL is taken as is)."""
    endpoint = conn.get("endpoint", "")
    host = conn.get("host", "")
    if "://" in endpoint:
        url = endpoint
    elif "://" in host:
        url = host.rstrip("/") + endpoint
    elif host:
        port = f":{conn['port']}" if conn.get("port") else ""
        url = f"https://{host}{port}{endpoint}"
    else:
        return None
    if not url.startswith("https://"):
        raise ConfigError("exchange config", f"recipients.{recipient_id}.connection",
                          "the connection's SOAP endpoint is not https", "use an https:// URL")
    return url


def _secret(env_name: str | None, recipient_id: str, key: str) -> str | None:
    """Read a secret from the environment variable a config names (the YAML never holds the value)."""
    if env_name is None:
        return None
    value = os.environ.get(env_name)
    if value is None:
        raise ConfigError("exchange config", f"recipients.{recipient_id}.transport.{key}",
                          f"environment variable {env_name!r} is not set", "export it before running")
    return value
