"""Plain values that cross the adapter seam: what a source could not read, what a transport delivered."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from transforms.model.errors import RecordError


@dataclass(frozen=True, slots=True)
class Rejected:
    """A source row that could not become a record; the pipeline quarantines it and carries on."""

    error: RecordError


@dataclass(frozen=True, slots=True)
class Receipt:
    """A transport's proof of delivery: where the bytes went, their SHA-256, and when."""

    message_id: str
    location: str
    sha256: str
    delivered_at: datetime
    transport: str


@dataclass(frozen=True, slots=True)
class Window:
    """A slice of a source that one task reads: planned cheaply, read later, possibly in another process.

    ``key`` names the slice uniquely and stably (a file digest plus a row range, a watermark range);
    ``cursor_after`` is the source's cursor once this slice and all before it are done; ``spec`` is a
    JSON-able dict only the source that planned it interprets. No record values live here: windows travel
    through Airflow's XCom.
    """

    key: str
    cursor_after: str
    spec: dict
