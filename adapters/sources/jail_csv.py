"""A jail management system file drop: bookings CSV files (and their booking-charges files) in a directory.

The county's JMS writes ``*bookings*.csv`` files (comma- or pipe-delimited) into a drop directory, each with an
optional companion whose name has ``booking_charges`` in place of ``bookings`` (``2026-10-03_bookings.csv``
-> ``2026-10-03_booking_charges.csv``), joined on ``booking_number``. Files still being written (``.part``,
``.tmp``, dot-files) are ignored. A bookings file and its charges file form one *unit*; the unit's digest is
the SHA-256 of the bookings file, or, with a charges file, the SHA-256 of the two files' hex digests joined
by newlines, so a change to either makes the unit new.

This adapter satisfies ``exchange.ports.Source`` structurally (it imports nothing from ``exchange``):

* :meth:`JailCsvSource.plan` is cheap (hash and count rows): one window per slice of at most ``max_records``
  rows of each unit not yet done; the cursor is an opaque JSON text listing the digests of units fully done.
  Two units with identical content (a file re-sent under another name) are planned once.
* :meth:`JailCsvSource.read` yields a :class:`JailBooking` or a :class:`Rejected` for every row of a window,
  and never raises for bad data: a row with the wrong number of fields, undecodable bytes, a header missing a
  needed column (every row rejected, naming the column), a booking number already used earlier in the same
  file, and charge rows that match no booking (reported with the unit's last window) all become Rejected.

Rows are numbered from 1 after the header, counting CSV records (a quoted field may span lines).
"""
from __future__ import annotations

import csv
import fnmatch
import hashlib
import io
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, tzinfo
from pathlib import Path

from adapters.sources.done_cursor import read_done, write_done
from transforms.model import (
    ConfigError,
    JailBooking,
    RecordError,
    Rejected,
    RetryableError,
    SourceRef,
    Window,
)
from transforms.model.jail import (
    BOOKING_COLUMNS,
    CHARGE_COLUMNS,
    REQUIRED_BOOKING_COLUMNS,
    REQUIRED_CHARGE_COLUMNS,
    booking_from_row,
)

PARTIAL_SUFFIXES = (".part", ".tmp")
"""Names ending so are files still being written: never read."""

CHARGES_PREFIX = "charges."
"""Prefix of ``columns`` keys that name a column of the charges file (``charges.statute``)."""

_UNDECODABLE = re.compile(r"[\udc80-\udcff]")  # what surrogateescape leaves for bytes the encoding rejects
_SPACE = re.compile(r"\s+")

_ChargeGroups = dict[str, list[tuple[int, dict[str, str]]]]  # booking number -> [(charges row, row)]


@dataclass(frozen=True, slots=True)
class _Unit:
    """A bookings file, its charges file if any, their bytes and the unit digest."""

    name: str
    charges_name: str | None
    data: bytes
    charges_data: bytes | None
    digest: str


@dataclass(slots=True)
class _Table:
    """A parsed CSV file: header width, canonical column -> index, a whole-file problem, the records."""

    width: int = 0
    index: dict[str, int] = field(default_factory=dict)
    problem: tuple[str, str] | None = None  # (field, reason) that rejects every row
    records: list[list[str] | None] = field(default_factory=list)  # None: a record the CSV reader refused


class JailCsvSource:
    """A JMS CSV file drop, planned into windows by file slice and read row by row into typed bookings."""

    def __init__(
        self,
        directory: Path,
        *,
        system: str = "jail",
        columns: Mapping[str, str] | None = None,
        delimiter: str | None = None,
        today: date,
        pattern: str = "*bookings*.csv",
        require_charges: bool = True,
        default_tz: tzinfo | None = None,
        encoding: str = "utf-8",
    ) -> None:
        """Read the drop in ``directory``.

        ``columns`` maps our canonical names (``dob``; ``charges.statute`` for the charges file) to the
        county's column names, matched case-insensitively; a column named here must be in every file's
        header. ``delimiter`` is sniffed (comma or pipe) from each header when None. ``today`` bounds dates
        (nothing may lie in the future). ``pattern`` selects bookings files by name. ``require_charges``
        False accepts bookings without charges (a JMS that exports no charges file). ``default_tz`` is the
        zone of date-times written without a UTC offset (rejected when None). ``encoding`` decodes files.
        """
        known = set(BOOKING_COLUMNS) | {CHARGES_PREFIX + c for c in CHARGE_COLUMNS}
        for key, value in (columns or {}).items():
            if key not in known:
                raise ConfigError("jail_csv source", f"columns.{key}", "is not a field of this source",
                                  "use one of: " + ", ".join(sorted(known)))
            if not str(value).strip():
                raise ConfigError("jail_csv source", f"columns.{key}", "names no column", "give the county's column name")
        if delimiter is not None and len(delimiter) != 1:
            raise ConfigError("jail_csv source", "delimiter", "must be a single character", "use ',' or '|'")
        self.directory = Path(directory)
        self.system = system
        self.today = today
        self.pattern = pattern
        self.require_charges = require_charges
        self.default_tz = default_tz
        self.encoding = encoding
        # A UTF-8 byte-order mark (Excel writes one) is not part of the first column's name.
        self._codec = "utf-8-sig" if encoding.replace("_", "-").lower() in ("utf-8", "utf8") else encoding
        self._delimiter = delimiter
        self._columns = dict(columns or {})

    # -- planning -------------------------------------------------------------------------------------------

    def plan(self, cursor: str | None, max_records: int = 500) -> list[Window]:
        """Windows of at most ``max_records`` rows over every unit not listed in ``cursor``, in name order.

        Each window's ``cursor_after`` lists the units done once it and every window before it are done.
        """
        if max_records < 1:
            raise ValueError("max_records must be at least 1")
        done = read_done(cursor, "jail_csv.plan")
        windows: list[Window] = []
        for name, charges_name in self._candidates():
            unit = self._load(name, charges_name)
            if unit is None or unit.digest in done:
                continue
            delimiter = self._delimiter or _sniff(unit.data)
            charges_delimiter = None
            if unit.charges_data is not None:
                charges_delimiter = self._delimiter or _sniff(unit.charges_data)
            rows = len(_records(self._decode(unit.data), delimiter)) - 1
            if rows < 1:
                continue  # empty or header only: nothing to read; planned again once it has rows
            for start in range(1, rows + 1, max_records):
                stop = min(start + max_records - 1, rows)
                if stop == rows:
                    done = done | {unit.digest}
                windows.append(Window(
                    key=f"{unit.digest[:16]}:rows={start}-{stop}",
                    cursor_after=write_done(done),
                    spec={"file": name, "charges_file": charges_name, "digest": unit.digest, "start": start,
                          "stop": stop, "rows": rows, "delimiter": delimiter,
                          "charges_delimiter": charges_delimiter},
                ))
        return windows

    def _candidates(self) -> list[tuple[str, str | None]]:
        """(bookings file, charges file or None) for every complete bookings file, in name order."""
        try:
            names = sorted(p.name for p in self.directory.iterdir() if p.is_file())
        except FileNotFoundError:
            raise RetryableError("jail_csv.plan", "the drop directory does not exist or is not mounted") from None
        except OSError:
            raise RetryableError("jail_csv.plan", "the drop directory cannot be listed") from None
        complete = [n for n in names if not n.startswith(".") and not n.lower().endswith(PARTIAL_SUFFIXES)]
        present = set(complete)
        pairs = []
        for name in complete:
            if fnmatch.fnmatchcase(name.lower(), self.pattern.lower()):
                charges = _charges_name(name)
                pairs.append((name, charges if charges in present else None))
        companions = {c for _, c in pairs if c}
        return [(n, c) for n, c in pairs if n not in companions]

    def _load(self, name: str, charges_name: str | None) -> _Unit | None:
        """Read a unit's bytes and digest; None when a file vanished meanwhile (it was being moved)."""
        try:
            data = (self.directory / name).read_bytes()
            charges = (self.directory / charges_name).read_bytes() if charges_name else None
        except FileNotFoundError:
            return None
        except OSError:
            raise RetryableError(f"jail_csv read {name}", "the file cannot be read (permissions or I/O)") from None
        digest = hashlib.sha256(data).hexdigest()
        if charges is not None:
            pair = f"{digest}\n{hashlib.sha256(charges).hexdigest()}\n"
            digest = hashlib.sha256(pair.encode("ascii")).hexdigest()
        return _Unit(name, charges_name, data, charges, digest)

    # -- reading --------------------------------------------------------------------------------------------

    def read(self, window: Window) -> Iterator[JailBooking | Rejected]:
        """A record or a Rejected for every non-blank row of ``window``; never raises for bad data."""
        spec = window.spec
        name, start, stop = spec["file"], int(spec["start"]), int(spec["stop"])
        unit = self._load(name, spec.get("charges_file"))
        if unit is None or unit.digest != spec["digest"]:
            for n in range(start, stop + 1):
                yield self._reject(name, n, "", "file",
                                   "changed or vanished after planning; its current content is planned anew")
            return

        bookings = self._table(unit.data, spec["delimiter"], BOOKING_COLUMNS, REQUIRED_BOOKING_COLUMNS, "")
        charges: _Table | None = None
        if unit.charges_data is not None:
            charges = self._table(unit.charges_data, spec["charges_delimiter"], CHARGE_COLUMNS,
                                  REQUIRED_CHARGE_COLUMNS, CHARGES_PREFIX)
        by_booking, charge_problems = _group_charges(charges)

        seen: set[str] = set()
        for n, record in enumerate(bookings.records[1:stop + 1], start=1):
            verdict = self._row(name, n, record, bookings, charges, by_booking, seen, unit)
            if n >= start and verdict is not None:
                yield verdict

        # With a broken bookings header every booking is already rejected; its charges wait for the fixed file.
        if stop == int(spec["rows"]) and charges is not None and not charges.problem and not bookings.problem:
            yield from self._orphans(unit, charges, by_booking, charge_problems, seen)

    def _row(self, name: str, n: int, record: list[str] | None, table: _Table, charges: _Table | None,
             by_booking: _ChargeGroups, seen: set[str], unit: _Unit) -> JailBooking | Rejected | None:
        """Judge one bookings record; ``seen`` collects booking numbers of well-formed rows, in file order."""
        if record is None:
            return self._reject(name, n, "", "row", "cannot be read as CSV")
        if not record or (len(record) == 1 and not record[0].strip() and table.width > 1):
            return None  # a blank line holds nothing to read or to lose
        if table.problem:
            return self._reject(name, n, "", *table.problem)
        if len(record) != table.width:
            return self._reject(name, n, "", "row", f"has {len(record)} fields; the header has {table.width}")
        row = {c: record[i] for c, i in table.index.items()}
        number = _SPACE.sub(" ", row.get("booking_number", "")).strip().upper()
        if number:
            if number in seen:
                return self._reject(name, n, number, "booking_number", "duplicate booking_number in this file")
            seen.add(number)
        booking_charges = by_booking.get(number, []) if number else []
        ref = SourceRef(self.system, f"{name}#row={n}", number)
        if charges is not None and charges.problem:
            field_name, reason = charges.problem
            return Rejected(RecordError(str(ref), field_name, reason))
        if problem := _text_problem(row, "") or next(
            (p for i, (_, c) in enumerate(booking_charges) if (p := _text_problem(c, f"charges[{i}]."))), None
        ):
            return Rejected(RecordError(str(ref), problem[0], problem[1].format(encoding=self.encoding)))
        try:
            return booking_from_row(row, [c for _, c in booking_charges], ref, today=self.today,
                                    require_charges=self.require_charges, default_tz=self.default_tz)
        except RecordError as error:
            if error.field == "charges" and unit.charges_name is None:
                error = RecordError(error.record, "charges",
                                    "at least one charge is required, and this drop has no charges file for it")
            return Rejected(error)

    def _orphans(self, unit: _Unit, charges: _Table, by_booking: _ChargeGroups,
                 charge_problems: list[tuple[int, str, str, str]], seen: set[str]) -> Iterator[Rejected]:
        """Charge rows that belong to no booking of the unit, or could not be read: never silently dropped."""
        rejected = list(charge_problems)
        for number, rows in by_booking.items():
            if number not in seen:
                reason = f"matches no booking in {unit.name}" if number else "is required"
                rejected.extend((n, number, "booking_number", reason) for n, _ in rows)
        for n, number, field_name, reason in sorted(rejected, key=lambda r: r[0]):
            yield self._reject(unit.charges_name, n, number, field_name, reason)

    def _reject(self, name: str, n: int, record_id: str, field_name: str, reason: str) -> Rejected:
        ref = SourceRef(self.system, f"{name}#row={n}", record_id)
        return Rejected(RecordError(str(ref), field_name, reason))

    def _decode(self, data: bytes) -> str:
        return data.decode(self._codec, errors="surrogateescape")

    def _table(self, data: bytes, delimiter: str, canonical: tuple[str, ...], required: tuple[str, ...],
               prefix: str) -> _Table:
        """Parse a file and resolve its header against our canonical columns (through ``columns``)."""
        table = _Table(records=_records(self._decode(data), delimiter))
        header = table.records[0] if table.records and table.records[0] is not None else []
        table.width = len(header)
        positions: dict[str, list[int]] = {}
        for i, cell in enumerate(header):
            positions.setdefault(cell.strip().lower(), []).append(i)
        for name in canonical:
            declared = prefix + name in self._columns
            column = self._columns.get(prefix + name, name)
            found = positions.get(column.strip().lower(), [])
            if len(found) > 1 and table.problem is None:
                table.problem = (prefix + name, f"column {column!r} appears more than once in the header")
            elif not found and (declared or name in required) and table.problem is None:
                where = "the charges file's header" if prefix else "the header"
                table.problem = (prefix + name, f"{where} has no column {column!r}")
            if found:
                table.index[name] = found[0]
        return table


def _group_charges(charges: _Table | None) -> tuple[_ChargeGroups, list[tuple[int, str, str, str]]]:
    """Charge rows by booking number (file order), and the charge rows that cannot be read at all."""
    by_booking: dict[str, list[tuple[int, dict[str, str]]]] = {}
    problems: list[tuple[int, str, str, str]] = []
    if charges is None or charges.problem:
        return by_booking, problems
    for n, record in enumerate(charges.records[1:], start=1):
        if record is None:
            problems.append((n, "", "row", "cannot be read as CSV"))
        elif not record or (len(record) == 1 and not record[0].strip() and charges.width > 1):
            continue
        elif len(record) != charges.width:
            problems.append((n, "", "row", f"has {len(record)} fields; the header has {charges.width}"))
        else:
            row = {c: record[i] for c, i in charges.index.items()}
            number = _SPACE.sub(" ", row.get("booking_number", "")).strip().upper()
            by_booking.setdefault(number, []).append((n, row))
    return by_booking, problems


def _text_problem(row: Mapping[str, str], prefix: str) -> tuple[str, str] | None:
    """A field holding undecodable bytes or a line break (an unbalanced quote swallowing rows), if any."""
    for name, value in row.items():
        if _UNDECODABLE.search(value):
            return prefix + name, "contains bytes that are not valid {encoding} text"
        if "\n" in value or "\r" in value:
            return prefix + name, "contains a line break (an unbalanced quote may have swallowed later rows)"
    return None


def _records(text: str, delimiter: str) -> list[list[str] | None]:
    """Every CSV record of ``text``, header first; None for a record the reader refuses (oversized field)."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    records: list[list[str] | None] = []
    while True:
        try:
            records.append(next(reader))
        except StopIteration:
            return records
        except csv.Error:
            records.append(None)


def _sniff(data: bytes) -> str:
    """Comma or pipe, whichever the header line holds more of (ties: comma)."""
    header = data.split(b"\n", 1)[0]
    return "|" if header.count(b"|") > header.count(b",") else ","


def _charges_name(name: str) -> str | None:
    """The charges companion of a bookings file name: ``bookings`` -> ``booking_charges`` (case kept)."""
    at = name.lower().rfind("bookings")
    if at < 0:
        return None
    word = name[at:at + len("bookings")]
    return name[:at] + ("BOOKING_CHARGES" if word.isupper() else "booking_charges") + name[at + len("bookings"):]


