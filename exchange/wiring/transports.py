"""Transport config -> transport adapter."""
from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path

from adapters.delivery.local_outbox import LocalOutbox
from exchange.config import resolve
from exchange.config.transports import OutboxTransportConfig, TransportConfig
from exchange.ports import Transport
from transforms.model import ConfigError


def build_transport(config: TransportConfig, *, recipient_id: str, home: Path,
                    clock: Callable[[], datetime], credentials: Mapping[str, str] | None = None) -> Transport:
    """Open the transport a recipient's config names; ``credentials``: its connection's values, if any."""
    if isinstance(config, OutboxTransportConfig):
        # an Airflow "File (path)" connection may move the outbox (a per-deployment mount point)
        directory = (credentials or {}).get("path") or config.path
        return LocalOutbox(resolve(home, directory) / recipient_id, clock=clock)
    raise ConfigError("exchange config", f"recipients.{recipient_id}.transport.kind",
                      f"no transport for {config.kind!r}", "use a listed kind")
