"""A records-management system's table or view, read through SQLAlchemy with an incremental cursor.

Counties expose RMS data as a database view (``vw_mh_calls``, ``ARREST_EXPORT``) with their own column names;
``columns`` maps our canonical names (see :mod:`transforms.model.rms`) to theirs. Any SQLAlchemy URL works
(SQLite by default, PostgreSQL through psycopg, SQL Server, Oracle); the same statements run on all of them:
only ``SELECT`` with ``WHERE``/``ORDER BY``/``AND``/``OR`` over the mapped columns, no dialect features.

Incremental cursor: the *updated-at watermark plus primary-key tie-break*. Rows are ordered by
``(updated_at, key)``; the cursor is the last pair committed downstream, and the next plan selects rows with
``updated_at > u OR (updated_at = u AND key > k)``. A tie-break on the key means many rows sharing one
timestamp (a bulk update) are split across windows without loss or repeat. A row updated again later gets a
new ``updated_at`` and is read again (a corrected record is a new message). Values are bound back exactly as
the driver returned them (a ``datetime`` from PostgreSQL, the stored text from SQLite) so comparisons use the
database's own ordering.

Known limits: rows whose ``updated_at`` is NULL are invisible to the cursor (``sources check`` counts them);
a writer that commits a row with an ``updated_at`` older than rows already read is missed (give the view a
trigger-maintained column); windows are planned as ``(after, through]`` ranges, so if new rows arrive between
a crash and the rerun, the crashed run's last, partial window and the new plan's first window may overlap
(the outbox refuses the repeated message, so nothing is delivered twice).
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from datetime import date, datetime, tzinfo
from typing import Any, Literal

from sqlalchemy import Engine, and_, column, create_engine, inspect, or_, select, table
from sqlalchemy.exc import DBAPIError, NoSuchTableError, SQLAlchemyError

from transforms.model import (
    Arrest,
    ConfigError,
    CrisisContact,
    PermanentError,
    RecordError,
    Rejected,
    RetryableError,
    SourceRef,
    Window,
)
from transforms.model.rms import (
    ARREST_COLUMNS,
    CRISIS_COLUMNS,
    DISPOSITIONS,
    INITIATORS,
    REQUIRED_ARREST_COLUMNS,
    REQUIRED_CRISIS_COLUMNS,
    arrest_from_row,
    crisis_contact_from_row,
)

RecordKind = Literal["crisis_contact", "arrest"]
_KINDS: dict[str, tuple[tuple[str, ...], tuple[str, ...], str]] = {
    "crisis_contact": (CRISIS_COLUMNS, REQUIRED_CRISIS_COLUMNS, "incident_number"),
    "arrest": (ARREST_COLUMNS, REQUIRED_ARREST_COLUMNS, "arrest_number"),
}
_CODE_COLUMNS = {"initiated_by": set(INITIATORS.values()), "disposition": set(DISPOSITIONS.values())}


class RmsSqlSource:
    """One RMS table or view of crisis contacts or arrests, planned by watermark and read row by row."""

    def __init__(
        self,
        engine: Engine | str,
        *,
        table_name: str,
        record_kind: RecordKind,
        today: date,
        system: str = "rms",
        schema: str | None = None,
        columns: Mapping[str, str] | None = None,
        key_column: str | None = None,
        codes: Mapping[str, Mapping[str, str]] | None = None,
        default_tz: tzinfo | None = None,
        max_windows: int = 1000,
        require_names: bool = True,
    ) -> None:
        """Read ``schema.table_name`` of ``engine`` (an Engine or a SQLAlchemy URL).

        ``columns`` maps canonical names to the table's; ``key_column`` is the table's primary key (default: the
        column mapped to ``incident_number`` / ``arrest_number``); ``codes`` adds county codes to the default
        code tables (``{"disposition": {"TRANS": "EMERGENCY_ROOM"}}``); ``default_tz`` is the zone of
        timestamps stored without an offset (rejected when None); ``today`` bounds birth dates;
        ``max_windows`` caps one plan (a first sync of a large view is planned over several runs);
        ``require_names`` False reads arrests without names (de-identified extracts; counted, never linked).
        """
        if record_kind not in _KINDS:
            raise ConfigError("rms_sql source", "record_kind", "is not known", "use crisis_contact or arrest")
        canonical, self._required, number = _KINDS[record_kind]
        if not require_names:
            if record_kind != "arrest":
                raise ConfigError("rms_sql source", "require_names", "may be false only for arrests",
                                  "a crisis contact names the person it is about")
            self._required = tuple(c for c in self._required if c not in ("first_name", "last_name"))
        self.require_names = require_names
        for key, value in (columns or {}).items():
            if key not in canonical:
                raise ConfigError("rms_sql source", f"columns.{key}", "is not a field of this record kind",
                                  "use one of: " + ", ".join(canonical))
            if not str(value).strip():
                raise ConfigError("rms_sql source", f"columns.{key}", "names no column", "give the view's column")
        for col, mapping in (codes or {}).items():
            allowed = _CODE_COLUMNS.get(col)
            if allowed is None or record_kind != "crisis_contact":
                raise ConfigError("rms_sql source", f"codes.{col}", "is not a coded field of this record kind",
                                  "use initiated_by or disposition (crisis_contact only)")
            for code, target in mapping.items():
                if target not in allowed:
                    raise ConfigError("rms_sql source", f"codes.{col}.{code}", "maps to an unknown value",
                                      "use one of: " + ", ".join(sorted(allowed)))
        if isinstance(engine, str):
            engine = create_engine(engine)
        self.engine = engine
        self.system = system
        self.table_name = table_name
        self.schema = schema
        self.record_kind: RecordKind = record_kind
        self.today = today
        self.default_tz = default_tz
        self.max_windows = max_windows
        self._codes = {k: dict(m) for k, m in (codes or {}).items()}
        self._canonical = canonical
        self._columns = {c: (columns or {}).get(c, c) for c in canonical}
        self._declared = set(columns or {})
        self._key = key_column or self._columns[number]
        self._updated = self._columns["updated_at"]
        self._present: dict[str, str] | None = None  # lower-case name -> actual name, read once

    # -- planning -------------------------------------------------------------------------------------------

    def plan(self, cursor: str | None, max_records: int = 500) -> list[Window]:
        """Windows of at most ``max_records`` rows past ``cursor``, in ``(updated_at, key)`` order."""
        if max_records < 1:
            raise ValueError("max_records must be at least 1")
        after = _read_cursor(cursor)
        present = self._table_columns()
        for role, name in (("updated_at", self._updated), ("key", self._key)):
            if name.lower() not in present:
                raise ConfigError(f"rms_sql source {self.table_name}", f"columns.{role}",
                                  f"the table has no column {name!r}", "map it to the table's column")
        u, k = self._column(self._updated), self._column(self._key)
        query = select(u, k).select_from(self._table()).where(u.is_not(None)).order_by(u, k)
        if after is not None:
            query = query.where(_past(u, k, after))
        windows: list[Window] = []
        with self._connect() as conn:
            chunk: list[tuple[Any, Any]] = []
            start = after
            for row in conn.execute(query):
                chunk.append((row[0], row[1]))
                if len(chunk) == max_records:
                    windows.append(self._window(start, chunk))
                    start, chunk = chunk[-1], []
                    if len(windows) == self.max_windows:
                        return windows  # the rest is planned by a later run, from the committed cursor
            if chunk:
                windows.append(self._window(start, chunk))
        return windows

    def _window(self, after: tuple[Any, Any] | None, chunk: list[tuple[Any, Any]]) -> Window:
        spec = {"after": _encode(after) if after is not None else None, "through": _encode(chunk[-1]),
                "rows": len(chunk)}
        digest = hashlib.sha256(json.dumps([self.table_name, spec["after"], spec["through"]],
                                           sort_keys=True).encode()).hexdigest()[:24]
        return Window(key=f"{self.table_name}:{digest}", cursor_after=json.dumps(spec["through"]), spec=spec)

    # -- reading --------------------------------------------------------------------------------------------

    def read(self, window: Window) -> Iterator[CrisisContact | Arrest | Rejected]:
        """A record or a Rejected for every row of ``window``; never raises for bad data."""
        after = _decode(window.spec["after"]) if window.spec.get("after") is not None else None
        through = _decode(window.spec["through"])
        present = self._table_columns()
        missing = next((c for c in self._canonical
                        if (c in self._required or c in self._declared) and self._columns[c].lower() not in present),
                       None)
        wanted = [c for c in self._canonical if self._columns[c].lower() in present]
        u, k = self._column(self._updated), self._column(self._key)
        cols = [self._column(self._columns[c]).label(f"c_{c}") for c in wanted]
        query = select(k.label("row_key"), *cols).select_from(self._table())
        query = query.where(u.is_not(None), or_(u < through[0], and_(u == through[0], k <= through[1])))
        if after is not None:
            query = query.where(_past(u, k, after))
        query = query.order_by(u, k)
        with self._connect() as conn:
            for row in conn.execute(query):
                mapping = row._mapping
                key = mapping["row_key"]
                ref = SourceRef(self.system, f"{self.table_name}#{self._key}={key}", str(key))
                if missing is not None:
                    yield Rejected(RecordError(str(ref), missing,
                                               f"the table has no column {self._columns[missing]!r}"))
                    continue
                values = {c: mapping[f"c_{c}"] for c in wanted}
                yield self._record(values, ref)

    def _record(self, values: dict[str, object], ref: SourceRef) -> CrisisContact | Arrest | Rejected:
        try:
            if self.record_kind == "crisis_contact":
                return crisis_contact_from_row(values, ref, today=self.today, codes=self._codes,
                                               default_tz=self.default_tz)
            return arrest_from_row(values, ref, today=self.today, default_tz=self.default_tz,
                                   require_names=self.require_names)
        except RecordError as error:
            return Rejected(error)

    # -- database -------------------------------------------------------------------------------------------

    def _connect(self):  # noqa: ANN202 - a SQLAlchemy connection context
        try:
            conn = self.engine.connect()
        except DBAPIError as exc:
            raise RetryableError(f"rms_sql {self.table_name}", "the database cannot be reached") from exc
        if self.engine.dialect.name == "sqlite":
            _decode_sqlite_text_tolerantly(conn.connection.dbapi_connection)
        return conn

    def _table_columns(self) -> dict[str, str]:
        """The table's (or view's) column names, lower-cased -> as spelt; read once per source."""
        if self._present is None:
            try:
                found = inspect(self.engine).get_columns(self.table_name, schema=self.schema)
            except NoSuchTableError:
                found = []
            except SQLAlchemyError as exc:
                raise RetryableError(f"rms_sql {self.table_name}", "the table's columns cannot be read") from exc
            if not found:
                raise ConfigError(f"rms_sql source {self.table_name}", "table", "no such table or view",
                                  "name a table or view the database user can read")
            self._present = {c["name"].lower(): c["name"] for c in found}
        return self._present

    def _column(self, name: str):  # noqa: ANN202 - an untyped column clause
        # Untyped on purpose: values come back exactly as the driver returns them (no SQLite date parsing).
        return column(self._table_columns().get(name.lower(), name))

    def _table(self):  # noqa: ANN202
        return table(self.table_name, schema=self.schema)


def _past(u, k, after: tuple[Any, Any]):  # noqa: ANN001, ANN202
    """``(u, k) > after`` spelt with OR/AND so every SQL dialect runs it."""
    return or_(u > after[0], and_(u == after[0], k > after[1]))


def _decode_sqlite_text_tolerantly(dbapi_connection: Any) -> None:
    """Make SQLite hand over text with undecodable bytes kept as surrogates instead of failing the whole query.

    The row mapping then rejects just that field ("invalid bytes"); the rest of the batch goes on.
    """
    dbapi_connection.text_factory = _surrogate_text


def _surrogate_text(data: bytes) -> str:
    return data.decode("utf-8", "surrogateescape")


def _encode(pair: tuple[Any, Any]) -> list[Any]:
    return [_tag(pair[0]), _tag(pair[1])]


def _tag(value: Any) -> Any:
    """A JSON form of a driver value that :func:`_untag` turns back into the same Python type."""
    if isinstance(value, datetime):
        return {"datetime": value.isoformat()}
    if isinstance(value, date):
        return {"date": value.isoformat()}
    if isinstance(value, (str, int, float)) and not isinstance(value, bool):
        return value
    return {"text": str(value)}  # Decimal, UUID: compared as text by every driver we support


def _untag(value: Any) -> Any:
    if isinstance(value, dict):
        if "datetime" in value:
            return datetime.fromisoformat(value["datetime"])
        if "date" in value:
            return date.fromisoformat(value["date"])
        return value["text"]
    return value


def _decode(pair: list[Any]) -> tuple[Any, Any]:
    return _untag(pair[0]), _untag(pair[1])


def _read_cursor(cursor: str | None) -> tuple[Any, Any] | None:
    if not cursor:
        return None
    try:
        pair = json.loads(cursor)
        if isinstance(pair, list) and len(pair) == 2:
            return _decode(pair)
    except (ValueError, KeyError, TypeError):
        pass
    raise PermanentError("rms_sql.plan", "the cursor was not written by this source")
