"""Value parsers shared by the source row mappings (RMS, FHIR, HL7 v2, NIBRS): text, dates, codes.

Each parser takes what a source gives (a database driver's ``datetime``, a JSON string, ``None``) and returns
a plain value or raises :class:`FieldProblem` with a reason that never quotes the value; the row mappings
turn that into a :class:`~transforms.model.errors.RecordError` naming the record and the field path.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, datetime, timedelta, timezone, tzinfo

from transforms.model.records import Sex

MAX_TEXT = 200
"""Longest plain text field we accept (names, agencies, codes): longer is a shifted or garbled column."""

EARLIEST_BIRTH_DATE = date(1900, 1, 1)

_SPACE = re.compile(r"\s+")
# C0 controls other than tab/LF/CR, DEL, and lone surrogates (undecodable bytes kept by surrogateescape):
# none of them can be written into XML 1.0, so a field holding one cannot be carried into a message.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff\ufffe\uffff]")
_LETTER = re.compile(r"[^\W\d_]")
_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})")
_DATETIME = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?)?"
    r"\s*(?:(?P<utc>[Zz])|(?P<sign>[+-])(?P<oh>\d{2})(?::?(?P<om>\d{2}))?)?"
)

_SEX: dict[str, Sex] = {
    "F": "F", "FEMALE": "F", "M": "M", "MALE": "M", "U": "U", "UNK": "U", "UNKNOWN": "U",
    "X": "X", "O": "X", "OTHER": "X", "NON-BINARY": "X",
}
_RACE = {
    "W": "W", "WHITE": "W", "B": "B", "BLACK": "B", "BLACK OR AFRICAN AMERICAN": "B", "A": "A", "ASIAN": "A",
    "P": "A", "NATIVE HAWAIIAN OR OTHER PACIFIC ISLANDER": "A", "I": "I", "AMERICAN INDIAN OR ALASKA NATIVE": "I",
    "U": "U", "UNKNOWN": "U",
}


class FieldProblem(ValueError):
    """A field value that cannot be used; ``args[0]`` is the reason (never the value)."""


def text(value: object, *, required: bool = False, limit: int = MAX_TEXT) -> str:
    """Trimmed, whitespace-collapsed text; refuses control characters, undecodable bytes and overlong text."""
    if value is None:
        value = ""
    if isinstance(value, bytes):
        try:
            value = value.decode("utf-8")
        except UnicodeDecodeError:
            raise FieldProblem("contains bytes that are not valid UTF-8 text") from None
    value = str(value)
    if _CONTROL.search(value):
        raise FieldProblem("contains characters that are not allowed in XML (control characters or invalid bytes)")
    value = _SPACE.sub(" ", value).strip()
    if len(value) > limit:
        raise FieldProblem(f"is longer than {limit} characters")
    if required and not value:
        raise FieldProblem("is required")
    return value


def name(value: object, *, required: bool = False) -> str:
    """A person's name part, upper-cased (the NCIC convention); must hold a letter when given."""
    cleaned = text(value, required=required)
    if cleaned and not _LETTER.search(cleaned):
        raise FieldProblem("contains no letters")
    return cleaned.upper()


def sex(value: object) -> Sex:
    """F/M/U/X from the common spellings; blank is U."""
    cleaned = text(value).upper()
    if not cleaned:
        return "U"
    code = _SEX.get(cleaned)
    if code is None:
        raise FieldProblem("is not a recognised sex code (expected F, M, U or X)")
    return code


def race(value: object) -> str:
    """NCIC race letter; blank stays blank, anything unrecognised is U."""
    cleaned = text(value).upper()
    return _RACE.get(cleaned, "U") if cleaned else ""


def a_date(value: object, *, required: bool = False) -> date | None:
    """A date from a ``date``/``datetime`` or an ISO ``YYYY-MM-DD`` text (a time part is ignored)."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    cleaned = text(value)
    if not cleaned:
        if required:
            raise FieldProblem("is required")
        return None
    match = _DATE.match(cleaned)
    try:
        if match:
            return date(int(match[1]), int(match[2]), int(match[3]))
    except ValueError:
        pass
    raise FieldProblem("is not a valid date (expected YYYY-MM-DD)")


def birth_date(value: object, *, today: date, required: bool = False) -> date | None:
    """A plausible date of birth: not in the future, not before 1900."""
    born = a_date(value, required=required)
    if born is not None and born > today:
        raise FieldProblem("is in the future")
    if born is not None and born < EARLIEST_BIRTH_DATE:
        raise FieldProblem("is before 1900-01-01")
    return born


def a_datetime(value: object, *, default_tz: tzinfo | None = None, required: bool = True) -> datetime | None:
    """An aware date-time from a driver's ``datetime`` or ISO text; a naive one takes ``default_tz`` or is refused.

    A date alone (FHIR allows ``2020-01-02`` in a dateTime) is midnight in ``default_tz`` (UTC when None).
    """
    if isinstance(value, datetime):
        if value.tzinfo is None:
            if default_tz is None:
                raise FieldProblem("has no UTC offset and no time zone is configured for this source")
            return value.replace(tzinfo=default_tz)
        return value
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=default_tz or timezone.utc)
    cleaned = text(value)
    if not cleaned:
        if required:
            raise FieldProblem("is required")
        return None
    match = _DATETIME.fullmatch(cleaned)
    if not match:
        raise FieldProblem("is not a valid date-time (expected YYYY-MM-DDTHH:MM:SS±HH:MM)")
    zone: tzinfo | None
    if match["utc"]:
        zone = timezone.utc
    elif match["sign"]:
        offset = timedelta(hours=int(match["oh"]), minutes=int(match["om"] or 0))
        zone = timezone(-offset if match["sign"] == "-" else offset) if offset < timedelta(hours=15) else None
        if zone is None:
            raise FieldProblem("is not a valid date-time (UTC offset out of range)")
    elif match[4] is None:
        zone = default_tz or timezone.utc
    elif default_tz is not None:
        zone = default_tz
    else:
        raise FieldProblem("has no UTC offset and no time zone is configured for this source")
    try:
        return datetime(int(match[1]), int(match[2]), int(match[3]), int(match[4] or 0), int(match[5] or 0),
                        int(match[6] or 0), int((match[7] or "0")[:6].ljust(6, "0")), tzinfo=zone)
    except ValueError:
        raise FieldProblem("is not a valid date-time (no such day or time)") from None


def code(value: object, table: Mapping[str, str], *, required: bool = True) -> str:
    """Look a code up (case-insensitively) in ``table``; an unknown code is refused, naming no value."""
    cleaned = text(value).upper()
    if not cleaned:
        if required:
            raise FieldProblem("is required")
        return ""
    found = table.get(cleaned)
    if found is None:
        raise FieldProblem("is not a known code (add it to the source's code mapping)")
    return found


def flag(value: object) -> bool:
    """A yes/no column: booleans, 1/0, Y/N, YES/NO, TRUE/FALSE; blank is False."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value != 0
    cleaned = text(value).upper()
    if cleaned in ("", "0", "N", "NO", "F", "FALSE"):
        return False
    if cleaned in ("1", "Y", "YES", "T", "TRUE"):
        return True
    raise FieldProblem("is not a yes/no value")
