"""The rows of a JMS CSV unit, as :mod:`adapters.sources.jail_csv` judges them: headers resolved against our
column names, blank and well-formed records, booking numbers, charge rows grouped by booking; and what the
planner notes about each window (:class:`PlannedWindow`).

Plain functions over parsed CSV records (lists of strings, None for a record the CSV reader refused), shared
by the planning and the reading of the jail CSV source; no I/O.
"""
from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

UNDECODABLE = re.compile(r"[\udc80-\udcff]")  # what surrogateescape leaves for bytes the encoding rejects
SPACE = re.compile(r"\s+")

ChargeGroups = dict[str, list[tuple[int, dict[str, str]]]]  # booking number -> [(charges row, row)]

@dataclass(slots=True)
class Table:
    """A CSV file's header: its width, canonical column -> index, a whole-file problem."""

    width: int = 0
    index: dict[str, int] = field(default_factory=dict)
    problem: tuple[str, str] | None = None  # (field, reason) that rejects every row



def resolve_header(header: list[str] | None, canonical: tuple[str, ...], required: tuple[str, ...], prefix: str,
               columns: Mapping[str, str]) -> Table:
    """Resolve a header record against our canonical column names (through ``columns``, case-insensitive)."""
    header = header or []
    table = Table(width=len(header))
    positions: dict[str, list[int]] = {}
    for i, cell in enumerate(header):
        positions.setdefault(cell.strip().lower(), []).append(i)
    for name in canonical:
        declared = prefix + name in columns
        column = columns.get(prefix + name, name)
        found = positions.get(column.strip().lower(), [])
        if len(found) > 1 and table.problem is None:
            table.problem = (prefix + name, f"column {column!r} appears more than once in the header")
        elif not found and (declared or name in required) and table.problem is None:
            where = "the charges file's header" if prefix else "the header"
            table.problem = (prefix + name, f"{where} has no column {column!r}")
        if found:
            table.index[name] = found[0]
    return table


def is_blank(record: list[str], table: Table) -> bool:
    """A blank line: nothing to read or to lose."""
    return not record or (len(record) == 1 and not record[0].strip() and table.width > 1)


def booking_number(record: list[str] | None, table: Table) -> str:
    """The booking number of a well-formed record (normalised); empty for any other record."""
    if record is None or is_blank(record, table) or table.problem or len(record) != table.width:
        return ""
    at = table.index.get("booking_number")
    return "" if at is None else SPACE.sub(" ", record[at]).strip().upper()


def charge_problem(record: list[str] | None, charges: Table | None) -> tuple[str, str]:
    """(field, reason) for a charges record that is not a well-formed row with a booking number."""
    if record is None:
        return "row", "cannot be read as CSV"
    width = charges.width if charges is not None else 0
    if len(record) != width:
        return "row", f"has {len(record)} fields; the header has {width}"
    return "booking_number", "is required"


def group_charges(charges: Table | None, records: list[tuple[int, list[str] | None]],
                   ) -> tuple[ChargeGroups, list[tuple[int, str, str, str]]]:
    """Charge rows (numbered) by booking number in file order, and the charge rows that cannot be read."""
    by_booking: dict[str, list[tuple[int, dict[str, str]]]] = {}
    problems: list[tuple[int, str, str, str]] = []
    if charges is None or charges.problem:
        return by_booking, problems
    for n, record in records:
        if record is not None and is_blank(record, charges):
            continue
        if record is None or len(record) != charges.width:
            problems.append((n, "", *charge_problem(record, charges)))
        else:
            row = {c: record[i] for c, i in charges.index.items()}
            number = SPACE.sub(" ", row.get("booking_number", "")).strip().upper()
            by_booking.setdefault(number, []).append((n, row))
    return by_booking, problems


def text_problem(row: Mapping[str, str], prefix: str) -> tuple[str, str] | None:
    """A field holding undecodable bytes or a line break (an unbalanced quote swallowing rows), if any."""
    text = "".join(row.values())
    if text.isascii() and "\n" not in text and "\r" not in text:
        return None  # the usual row, in three tests in C (undecodable bytes are never ASCII)
    for name, value in row.items():
        if UNDECODABLE.search(value):
            return prefix + name, "contains bytes that are not valid {encoding} text"
        if "\n" in value or "\r" in value:
            return prefix + name, "contains a line break (an unbalanced quote may have swallowed later rows)"
    return None


@dataclass(slots=True)
class PlannedWindow:
    """One window while its unit is being planned: rows, byte spans, duplicates and the digest of its bytes."""

    start: int
    offset: int
    check: hashlib._Hash
    stop: int = 0
    end: int = 0
    duplicates: list[int] = field(default_factory=list)  # rows repeating a booking number used earlier
    charges: list[list[int]] = field(default_factory=list)  # [first charges row, start, end] runs
    rejects: list[list[int]] = field(default_factory=list)  # charge rows that belong to no booking

    def add_run(self, runs: list[list[int]], row: int, start: int, raw: bytes) -> None:
        """Add one charges record to ``runs``, extending the last run when the bytes follow on."""
        self.check.update(raw)
        if runs and runs[-1][2] == start:
            runs[-1][2] = start + len(raw)
        else:
            runs.append([row, start, start + len(raw)])
