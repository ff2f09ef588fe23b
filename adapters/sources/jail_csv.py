"""A jail management system file drop: bookings CSV files (and their booking-charges files) in a directory.

The county's JMS writes ``*bookings*.csv`` files (comma- or pipe-delimited) into a drop directory, each with an
optional companion whose name has ``booking_charges`` in place of ``bookings`` (``2026-10-03_bookings.csv``
-> ``2026-10-03_booking_charges.csv``), joined on ``booking_number``. Files still being written (``.part``,
``.tmp``, dot-files) are ignored. A bookings file and its charges file form one *unit*; the unit's digest is
the SHA-256 of the bookings file, or, with a charges file, the SHA-256 of the two files' hex digests joined
by newlines, so a change to either makes the unit new.

This adapter satisfies ``exchange.ports.Source`` structurally (it imports nothing from ``exchange``):

* :meth:`JailCsvSource.plan` reads each unit not yet done once, streaming (hash, then one pass over each
  file): one window per slice of at most ``max_records`` rows; the cursor is an opaque JSON text listing the
  digests of units fully done. Two units with identical content (a file re-sent under another name) are
  planned once. The plan remembers, per window, where its rows lie in the bookings file, where the charge
  rows of its bookings lie in the charges file, which of its rows repeat a booking number used earlier in
  the file, and (last window) which charge rows match no booking; a digest of exactly those bytes (and the
  two headers) and the two file sizes are in the window's spec too. Nothing in a spec is a value from a row.
  Planning holds about 8 bytes per booking of the unit in memory (:mod:`adapters.sources.first_rows`), plus
  the windows it returns.
* :meth:`JailCsvSource.read` reads only its window's bytes, so its cost per record does not grow with the
  file and its memory is one window's. If the files' sizes or the bytes it reads differ from what was
  planned, every row of the window is rejected as changed (the changed unit has a new digest and is planned
  anew). It yields a :class:`JailBooking` or a :class:`Rejected` for every row of a window, and never raises
  for bad data: a row with the wrong number of fields, undecodable bytes, a header missing a needed column
  (every row rejected, naming the column), a booking number already used earlier in the same file, and
  charge rows that match no booking (reported with the unit's last window; rarely with the window of a
  booking whose number shares the charge's 32-bit bucket, see :mod:`adapters.sources.first_rows`) all
  become Rejected.

Rows are numbered from 1 after the header, counting CSV records (a quoted field may span lines). Byte
offsets need an encoding whose line ends are plain ASCII bytes (UTF-8, Latin-1, cp1252...); with another
one (UTF-16) windows carry no offsets and each read parses the whole unit, as windows planned by an older
version of this source (no ``check`` in their spec) are read too.
"""
from __future__ import annotations

import contextlib
import fnmatch
import hashlib
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import date, tzinfo
from pathlib import Path
from typing import BinaryIO

from adapters.sources import csv_spans
from adapters.sources.done_cursor import read_done, write_done
from adapters.sources.first_rows import FirstRows
from adapters.sources.jail_rows import (
    SPACE,
    ChargeGroups,
    PlannedWindow,
    Table,
    booking_number,
    charge_problem,
    group_charges,
    is_blank,
    resolve_header,
    text_problem,
)
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

_CHANGED = "changed or vanished after planning; its current content is planned anew"


@dataclass(frozen=True, slots=True)
class _Unit:
    """A bookings file, its charges file if any, their bytes and the unit digest."""

    name: str
    charges_name: str | None
    data: bytes
    charges_data: bytes | None
    digest: str


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
            try:
                with self._open(name, charges_name) as (handle, charges):
                    digest = _unit_digest(handle, charges)
                    if digest in done:
                        continue
                    specs = self._plan_unit(name, charges_name, handle, charges, max_records, digest)
            except FileNotFoundError:
                continue  # moved away meanwhile
            if specs is None:
                continue  # changed while it was planned: still being written; planned on a later run
            for spec in specs:
                if spec["stop"] == spec["rows"]:
                    done = done | {digest}
                windows.append(Window(key=f"{digest[:16]}:rows={spec['start']}-{spec['stop']}",
                                      cursor_after=write_done(done), spec={**spec, "digest": digest}))
        return windows

    @contextlib.contextmanager
    def _open(self, name: str, charges_name: str | None) -> Iterator[tuple[BinaryIO, BinaryIO | None]]:
        """A unit's two files open for reading; FileNotFoundError when one vanished, RetryableError on I/O."""
        try:
            with contextlib.ExitStack() as stack:
                handle = stack.enter_context(open(self.directory / name, "rb"))
                charges = stack.enter_context(open(self.directory / charges_name, "rb")) if charges_name else None
                yield handle, charges
        except FileNotFoundError:
            raise
        except OSError:
            raise RetryableError(f"jail_csv read {name}", "the file cannot be read (permissions or I/O)") from None

    def _plan_unit(self, name: str, charges_name: str | None, handle: BinaryIO, charges: BinaryIO | None,
                   max_records: int, digest: str) -> list[dict] | None:
        """The specs (without the digest) of a unit's windows; none for an empty or header-only file.

        None if the files planned are not the ones hashed (``digest``): they changed in between.
        """
        delimiter = self._delimiter or csv_spans.sniff(handle)
        charges_delimiter = self._delimiter or csv_spans.sniff(charges) if charges is not None else None
        shared = {"file": name, "charges_file": charges_name, "delimiter": delimiter,
                  "charges_delimiter": charges_delimiter}
        if not csv_spans.byte_lines_ok(self._codec):
            handle.seek(0)
            rows = len(csv_spans.records_of(self._decode(handle.read()), delimiter)) - 1
            return [{**shared, "start": start, "stop": min(start + max_records - 1, rows), "rows": rows}
                    for start in range(1, rows + 1, max_records)]

        reader = csv_spans.HashingReader(handle)
        charges_reader = csv_spans.HashingReader(charges) if charges is not None else None
        records = csv_spans.scan(reader, self._codec, delimiter)
        _, header_raw, header = next(records, (0, b"", None))
        table = resolve_header(header, BOOKING_COLUMNS, REQUIRED_BOOKING_COLUMNS, "", self._columns)
        planned: list[PlannedWindow] = []
        reread: dict[int, list[list[str] | None]] = {}  # a few windows' records, for first_rows' look-ups

        def number_at(row: int) -> bytes:
            at = (row - 1) // max_records
            if at not in reread:
                if len(reread) > 8:
                    reread.clear()
                window = planned[at]
                reread[at] = csv_spans.parse(handle, window.offset, window.end, self._codec, delimiter)
            return _key(booking_number(reread[at][row - planned[at].start], table))

        # The first row of each booking number, ~8 bytes a booking: the one part of planning that grows with
        # the file (the specs aside, ~1 KB a window).
        first_rows = FirstRows(number_at)
        for n, (start, raw, record) in enumerate(records, start=1):
            if (n - 1) % max_records == 0:
                planned.append(PlannedWindow(n, start, hashlib.sha256(header_raw)))
            window = planned[-1]
            window.stop, window.end = n, start + len(raw)
            window.check.update(raw)
            if number := booking_number(record, table):
                first_rows.add(_key(number), n)
        bookings_digest = reader.hexdigest()  # before number_at moves about the file
        first_rows.freeze()
        for row in first_rows.duplicates():
            planned[(row - 1) // max_records].duplicates.append(row)
        for window in planned:
            window.duplicates.sort()
        charges_header_end = None
        if charges_reader is not None and planned:
            charge_records = csv_spans.scan(charges_reader, self._codec, charges_delimiter)
            _, charges_header_raw, charges_header = next(charge_records, (0, b"", None))
            charges_header_end = len(charges_header_raw)
            for window in planned:
                window.check.update(charges_header_raw)
            charge_table = resolve_header(charges_header, CHARGE_COLUMNS, REQUIRED_CHARGE_COLUMNS, CHARGES_PREFIX,
                                          self._columns)
            if not table.problem and not charge_table.problem:
                self._plan_charges(charge_records, charge_table, first_rows, planned, max_records)
        if _combined(bookings_digest, charges_reader.hexdigest() if charges_reader else None) != digest:
            return None
        if not planned:
            return []  # empty or header only: nothing to read; planned again once it has rows

        rows = planned[-1].stop
        sizes = {"size": os.fstat(handle.fileno()).st_size,
                 "charges_size": os.fstat(charges.fileno()).st_size if charges is not None else None,
                 "header_end": len(header_raw), "charges_header_end": charges_header_end}
        return [{**shared, **sizes, "start": w.start, "stop": w.stop, "rows": rows, "span": [w.offset, w.end],
                 "duplicates": w.duplicates, "charges": w.charges, "rejects": w.rejects,
                 "check": w.check.hexdigest()[:32]} for w in planned]

    @staticmethod
    def _plan_charges(records: Iterator[tuple[int, bytes, list[str] | None]], table: Table,
                      first_rows: FirstRows, planned: list[PlannedWindow], max_records: int) -> None:
        """Give each charges record to the window of its booking, or to the last window's rejects.

        (A charge whose booking number is in no booking but shares a bucket with one lands in that booking's
        window, which reports it as matching no booking: see :mod:`adapters.sources.first_rows`.)
        """
        for n, (start, raw, record) in enumerate(records, start=1):
            if record is not None and is_blank(record, table):
                continue
            number = booking_number(record, table)
            row = first_rows.first_row(_key(number)) if number else None
            if row is None:  # unreadable, ragged, without a booking number, or matching no booking
                planned[-1].add_run(planned[-1].rejects, n, start, raw)
            else:
                window = planned[(row - 1) // max_records]
                window.add_run(window.charges, n, start, raw)

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
        charges_digest = hashlib.sha256(charges).hexdigest() if charges is not None else None
        return _Unit(name, charges_name, data, charges, _combined(hashlib.sha256(data).hexdigest(), charges_digest))

    # -- reading --------------------------------------------------------------------------------------------

    def read(self, window: Window) -> Iterator[JailBooking | Rejected]:
        """A record or a Rejected for every non-blank row of ``window``; never raises for bad data."""
        spec = window.spec
        if "check" not in spec:
            yield from self._read_whole(spec)
            return
        name, start, stop = spec["file"], int(spec["start"]), int(spec["stop"])
        read = self._read_spans(spec)
        if read is None:
            for n in range(start, stop + 1):
                yield self._reject(name, n, "", "file", _CHANGED)
            return
        bookings, records, charges, charge_records, rejected = read
        by_booking, _ = group_charges(charges, charge_records)
        duplicates = set(spec["duplicates"])
        owned: set[str] = set()  # booking numbers whose first row is in this window
        for n, record in enumerate(records, start=start):
            verdict = self._row(name, n, record, bookings, charges, by_booking, n in duplicates, spec["charges_file"])
            if verdict is not None:
                yield verdict
            if n not in duplicates and (number := booking_number(record, bookings)):
                owned.add(number)
        for number, stray in by_booking.items():  # given to this window by a bucket its number shares
            if number not in owned:
                for n, _ in stray:
                    yield self._reject(spec["charges_file"], n, number, "booking_number", f"matches no booking in {name}")
        for n, record in rejected:  # charge rows that belong to no booking: planned into the last window only
            number = booking_number(record, charges) if charges is not None else ""
            if number:
                yield self._reject(spec["charges_file"], n, number, "booking_number", f"matches no booking in {name}")
            else:
                yield self._reject(spec["charges_file"], n, "", *charge_problem(record, charges))

    def _read_spans(self, spec: Mapping) -> tuple[Table, list, Table | None, list, list] | None:
        """The window's header, rows, charges header, charge rows and rejected charge rows, read from the
        byte spans the plan gave; None if the files are not the ones planned (sizes or bytes differ)."""
        name, charges_name = spec["file"], spec["charges_file"]
        check = hashlib.sha256()
        try:
            with self._open(name, charges_name) as (handle, charges):
                if os.fstat(handle.fileno()).st_size != spec["size"] or (
                        charges is not None and os.fstat(charges.fileno()).st_size != spec["charges_size"]):
                    return None
                header = csv_spans.parse(handle, 0, spec["header_end"], self._codec, spec["delimiter"], check.update)
                records = csv_spans.parse(handle, *spec["span"], self._codec, spec["delimiter"], check.update)
                charge_table = None
                charge_records: list[tuple[int, list[str] | None]] = []
                rejected: list[tuple[int, list[str] | None]] = []
                if charges is not None:
                    charges_header = csv_spans.parse(charges, 0, spec["charges_header_end"], self._codec,
                                                     spec["charges_delimiter"], check.update)
                    charge_table = resolve_header(charges_header[0] if charges_header else None, CHARGE_COLUMNS,
                                                REQUIRED_CHARGE_COLUMNS, CHARGES_PREFIX, self._columns)
                    runs = sorted([(run, charge_records) for run in spec["charges"]]
                                  + [(run, rejected) for run in spec["rejects"]], key=lambda r: r[0][1])
                    for (row, run_start, run_end), into in runs:
                        parsed = csv_spans.parse(charges, run_start, run_end, self._codec,
                                                 spec["charges_delimiter"], check.update)
                        into.extend(enumerate(parsed, start=row))
        except FileNotFoundError:
            return None
        if check.hexdigest()[:32] != spec["check"] or len(records) != spec["stop"] - spec["start"] + 1:
            return None
        table = resolve_header(header[0] if header else None, BOOKING_COLUMNS, REQUIRED_BOOKING_COLUMNS, "",
                               self._columns)
        return table, records, charge_table, charge_records, rejected

    def _read_whole(self, spec: Mapping) -> Iterator[JailBooking | Rejected]:
        """Read a window by parsing its whole unit: windows planned without byte spans (see the docstring)."""
        name, start, stop = spec["file"], int(spec["start"]), int(spec["stop"])
        unit = self._load(name, spec.get("charges_file"))
        if unit is None or unit.digest != spec["digest"]:
            for n in range(start, stop + 1):
                yield self._reject(name, n, "", "file", _CHANGED)
            return
        all_records = csv_spans.records_of(self._decode(unit.data), spec["delimiter"])
        bookings = resolve_header(all_records[0] if all_records else None, BOOKING_COLUMNS,
                                REQUIRED_BOOKING_COLUMNS, "", self._columns)
        charges: Table | None = None
        charge_records: list[tuple[int, list[str] | None]] = []
        if unit.charges_data is not None:
            parsed = csv_spans.records_of(self._decode(unit.charges_data), spec["charges_delimiter"])
            charges = resolve_header(parsed[0] if parsed else None, CHARGE_COLUMNS, REQUIRED_CHARGE_COLUMNS,
                                   CHARGES_PREFIX, self._columns)
            charge_records = list(enumerate(parsed[1:], start=1))
        by_booking, charge_problems = group_charges(charges, charge_records)

        seen: set[str] = set()
        for n, record in enumerate(all_records[1:stop + 1], start=1):
            number = booking_number(record, bookings)
            verdict = self._row(name, n, record, bookings, charges, by_booking, number in seen, unit.charges_name)
            if number:
                seen.add(number)
            if n >= start and verdict is not None:
                yield verdict

        # With a broken bookings header every booking is already rejected; its charges wait for the fixed file.
        if stop == int(spec["rows"]) and charges is not None and not charges.problem and not bookings.problem:
            yield from self._orphans(unit, by_booking, charge_problems, seen)

    def _row(self, name: str, n: int, record: list[str] | None, table: Table, charges: Table | None,
             by_booking: ChargeGroups, duplicate: bool, charges_name: str | None) -> JailBooking | Rejected | None:
        """Judge one bookings record; ``duplicate``: its booking number was used by an earlier well-formed row."""
        if record is None:
            return self._reject(name, n, "", "row", "cannot be read as CSV")
        if is_blank(record, table):
            return None  # a blank line holds nothing to read or to lose
        if table.problem:
            return self._reject(name, n, "", *table.problem)
        if len(record) != table.width:
            return self._reject(name, n, "", "row", f"has {len(record)} fields; the header has {table.width}")
        row = {c: record[i] for c, i in table.index.items()}
        number = SPACE.sub(" ", row.get("booking_number", "")).strip().upper()
        if number and duplicate:
            return self._reject(name, n, number, "booking_number", "duplicate booking_number in this file")
        booking_charges = by_booking.get(number, []) if number else []
        ref = SourceRef(self.system, f"{name}#row={n}", number)
        if charges is not None and charges.problem:
            field_name, reason = charges.problem
            return Rejected(RecordError(str(ref), field_name, reason))
        if problem := text_problem(row, "") or next(
            (p for i, (_, c) in enumerate(booking_charges) if (p := text_problem(c, f"charges[{i}]."))), None
        ):
            return Rejected(RecordError(str(ref), problem[0], problem[1].format(encoding=self.encoding)))
        try:
            return booking_from_row(row, [c for _, c in booking_charges], ref, today=self.today,
                                    require_charges=self.require_charges, default_tz=self.default_tz)
        except RecordError as error:
            if error.field == "charges" and charges_name is None:
                error = RecordError(error.record, "charges",
                                    "at least one charge is required, and this drop has no charges file for it")
            return Rejected(error)

    def _orphans(self, unit: _Unit, by_booking: ChargeGroups, charge_problems: list[tuple[int, str, str, str]],
                 seen: set[str]) -> Iterator[Rejected]:
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



def _unit_digest(handle: BinaryIO, charges: BinaryIO | None) -> str:
    """The unit digest of a bookings file and its charges file if any (see the module docstring)."""
    charges_digest = csv_spans.HashingReader(charges).hexdigest() if charges is not None else None
    return _combined(csv_spans.HashingReader(handle).hexdigest(), charges_digest)


def _key(number: str) -> bytes:
    """A booking number as the bytes :class:`FirstRows` keeps."""
    return number.encode("utf-8", "surrogateescape")


def _combined(digest: str, charges_digest: str | None) -> str:
    """The bookings file's SHA-256, or with a charges file the SHA-256 of both files' hex digests."""
    if charges_digest is None:
        return digest
    return hashlib.sha256(f"{digest}\n{charges_digest}\n".encode("ascii")).hexdigest()


def _charges_name(name: str) -> str | None:
    """The charges companion of a bookings file name: ``bookings`` -> ``booking_charges`` (case kept)."""
    at = name.lower().rfind("bookings")
    if at < 0:
        return None
    word = name[at:at + len("bookings")]
    return name[:at] + ("BOOKING_CHARGES" if word.isupper() else "booking_charges") + name[at + len("bookings"):]


