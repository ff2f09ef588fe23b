"""The seams between the core and the outside world, as structural Protocols.

Adapters satisfy these without importing them (every import points down a floor); the composition roots
(the CLI and the DAGs, through :mod:`exchange.runtime`) pass concrete adapters in.
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol, runtime_checkable

from transforms.model import JailBooking, Receipt, Rejected, Window


@runtime_checkable
class Source(Protocol):
    """Something records come from: planned into windows cheaply, each window read on its own."""

    system: str

    def plan(self, cursor: str | None, max_records: int) -> list[Window]:
        """Windows of at most ``max_records`` not yet covered by ``cursor`` (None: from the beginning)."""
        ...

    def read(self, window: Window) -> Iterable[JailBooking | Rejected]:
        """Every record of the window, or a Rejected naming the row and field that could not be read."""
        ...


@runtime_checkable
class Transport(Protocol):
    """Something that carries one message to one recipient and proves it did.

    Optional methods, looked up with ``getattr``: ``flush()`` for a transport that batches durability (the
    local outbox): its receipts count only once ``flush()`` has returned, and the pipeline calls it before
    recording any receipt of a chunk; ``close()`` ends a delivery pass (releases a connection).
    """

    name: str

    def deliver(self, message_id: str, payload: bytes, sha256: str) -> Receipt:
        """Deliver ``payload`` exactly once per ``message_id`` (a repeat returns the first receipt).

        Raises ``RetryableError`` for transient failures and ``PermanentError`` for refusals.
        """
        ...
