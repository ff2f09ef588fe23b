"""Roster entries -> ``ffr:FamiliarFacesRoster`` (NIEM 6.0): people with repeated contacts in a period.

The mapping table lives in ``niem_iepd/docs/familiar-faces-roster.md``. A roster is built from an
aggregate (made by the pipeline from the person index), not from one record; it names each person by
the shared identifier only, never by name or birth date.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date

from lxml import etree

from transforms.mapping.common import (
    MessageHeader,
    Period,
    a_date,
    calendar_day,
    message,
    reporting_period,
    shared_person_identification,
)
from transforms.mapping.tree import nx

_PREFIXES = ("ffr", "nx", "nc", "structures")


@dataclass(frozen=True, slots=True)
class RosterEntry:
    """One person on the roster: shared ID, contacts per source system, first and last contact day."""

    shared_id: str
    counts_by_system: Mapping[str, int]  # e.g. {"jail": 3, "police": 5, "crisis": 2}
    first_seen: date
    last_seen: date


def familiar_faces_roster(entries: Iterable[RosterEntry], period: Period, header: MessageHeader) -> etree._Element:
    """Build the FamiliarFacesRoster of ``entries`` for ``period``; entries keep their given order.

    ValueError if an entry has no per-system count (the schema requires at least one).
    """
    body = [reporting_period(period)]
    for entry in entries:
        if not entry.counts_by_system:
            raise ValueError("roster entry has no per-system count")
        element = nx.RosterEntry(
            nx.RosterPerson(shared_person_identification(entry.shared_id)),
            a_date(nx.FirstContactDate, calendar_day(entry.first_seen)),
            a_date(nx.LastContactDate, calendar_day(entry.last_seen)),
        )
        for system in sorted(entry.counts_by_system):
            element.append(nx.SystemContactCount(
                nx.SourceSystemText(system), nx.CountQuantity(str(entry.counts_by_system[system]))))
        body.append(element)
    return message("FamiliarFacesRoster", _PREFIXES, header, *body)


__all__ = ["RosterEntry", "familiar_faces_roster"]
