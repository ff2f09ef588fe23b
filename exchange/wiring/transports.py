"""Transport config -> transport adapter."""
from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from adapters.delivery.local_outbox import LocalOutbox
from exchange.config import resolve
from exchange.config.transports import OutboxTransportConfig, TransportConfig
from exchange.ports import Transport
from transforms.model import ConfigError


def build_transport(config: TransportConfig, *, recipient_id: str, home: Path,
                    clock: Callable[[], datetime]) -> Transport:
    """Open the transport a recipient's config names."""
    if isinstance(config, OutboxTransportConfig):
        return LocalOutbox(resolve(home, config.path) / recipient_id, clock=clock)
    raise ConfigError("exchange config", f"recipients.{recipient_id}.transport.kind",
                      f"no transport for {config.kind!r}", "use a listed kind")
