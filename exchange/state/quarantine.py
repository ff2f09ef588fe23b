"""Quarantine: records that could not be used, each with the field and the reason, never the values.

An entry is unique per (exchange, record, field, reason): reading the same bad row again bumps its
``times_seen`` instead of piling up copies.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, insert, select, update
from sqlalchemy.exc import IntegrityError

from exchange.state.db import quarantine
from transforms.model import RecordError


@dataclass(frozen=True, slots=True)
class QuarantineEntry:
    """One quarantined record as an operator sees it."""

    record: str
    field: str
    reason: str
    kind: str
    times_seen: int


class Quarantine:
    """Store and list quarantined records for one exchange."""

    def __init__(self, engine: Engine, exchange: str) -> None:
        self._engine = engine
        self._exchange = exchange

    def put(self, error: RecordError, now: datetime) -> None:
        """Quarantine the record ``error`` names."""
        key = dict(exchange=self._exchange, record=error.record[:300], field=error.field[:200],
                   reason=error.reason[:500])
        with self._engine.begin() as conn:
            try:
                with conn.begin_nested():
                    conn.execute(insert(quarantine).values(**key, kind=type(error).__name__, first_seen=now,
                                                           last_seen=now, times_seen=1))
            except IntegrityError:
                conn.execute(
                    update(quarantine)
                    .where(*(getattr(quarantine.c, k) == v for k, v in key.items()))
                    .values(last_seen=now, times_seen=quarantine.c.times_seen + 1)
                )

    def entries(self) -> list[QuarantineEntry]:
        """Everything quarantined for this exchange, in the order first seen."""
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(quarantine).where(quarantine.c.exchange == self._exchange).order_by(quarantine.c.id)
            ).all()
        return [QuarantineEntry(r.record, r.field, r.reason, r.kind, r.times_seen) for r in rows]
