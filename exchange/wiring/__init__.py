"""Turn source and transport configs into concrete adapters (the only place that names adapter classes)."""
from exchange.wiring.sources import build_source
from exchange.wiring.transports import build_transport

__all__ = ["build_source", "build_transport"]
